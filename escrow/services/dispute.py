"""Disputes: opened by a party while the money is in escrow, resolved by staff."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.policies import ensure_active, ensure_staff
from biddt.audit import audit_record
from biddt.errors import invalid
from escrow.models import Dispute, Transaction
from escrow.services.common import (
    _invalid_state,
    _lock,
    _move,
    _notify,
    _party_or_404,
    _system_line,
    transaction_announce,
)
from escrow.services.handoff import _release_effects
from escrow.services.payment import transaction_refund

Status = Transaction.Status


def dispute_open(*, user, transaction_id: Any, reason: str) -> Dispute:
    """Buyer or seller, while `in_escrow`: → `disputed`; staff resolve it."""
    ensure_active(user)
    txn = _party_or_404(user=user, transaction_id=transaction_id)
    reason = (reason or "").strip()
    if not reason:
        raise invalid("blank", "Say what went wrong.", attr="reason")
    with transaction.atomic():
        txn = _lock(txn.pk)
        if not _move(txn, to=Status.DISPUTED, frm=(Status.IN_ESCROW,)):
            raise _invalid_state(txn, "dispute")
        dispute = Dispute.objects.create(transaction=txn, opened_by=user, reason=reason[:2000])
        _notify(txn, user_ids=[txn.buyer_id, txn.seller_id], type="dispute_update",
                title="Dispute opened",
                body=f"A dispute was opened on “{txn.listing.title}”; our team will review it.",
                key="dispute_opened")
        _system_line(txn, "A dispute was opened. The money stays in escrow until staff "
                          "resolve it.")
        transaction_announce(txn)
    return dispute


def _dispute_close(dispute: Dispute, *, status: str, staff_user, note: str) -> None:
    with transaction.atomic():
        if Dispute.objects.filter(pk=dispute.pk, status=Dispute.Status.OPEN).update(
                status=status, resolved_by=staff_user, resolution_note=note,
                resolved_at=timezone.now()):
            txn_status = (Transaction.objects.filter(pk=dispute.transaction_id)
                          .values_list("status", flat=True).first())
            audit_record(actor=staff_user, action=f"dispute.resolve_{status}", obj=dispute,
                         before={"status": Dispute.Status.OPEN,
                                 "transaction_status": Status.DISPUTED},
                         after={"status": status, "transaction_status": txn_status,
                                "transaction_id": str(dispute.transaction_id)},
                         reason=note)


def dispute_resolve_refund(*, dispute_id: Any, staff_user, note: str = "") -> Dispute:
    """Staff: refund the buyer (`disputed → refunded`). Idempotent: a resolved dispute or an
    already refunded transaction changes nothing more."""
    ensure_staff(staff_user, detail="Only staff can resolve a dispute.")
    dispute = Dispute.objects.select_related("transaction").get(pk=dispute_id)
    if dispute.status == Dispute.Status.OPEN:
        transaction_refund(transaction_id=dispute.transaction_id, frm=(Status.DISPUTED,),
                           reason="The dispute was resolved with a refund.")
        if Transaction.objects.filter(pk=dispute.transaction_id,
                                      status=Status.REFUNDED).exists():
            _dispute_close(dispute, status=Dispute.Status.REFUNDED, staff_user=staff_user,
                           note=note)
    dispute.refresh_from_db()
    return dispute


def dispute_resolve_release(*, dispute_id: Any, staff_user, note: str = "") -> Dispute:
    """Staff: release to the seller (`disputed → released`), then the payout as usual."""
    ensure_staff(staff_user, detail="Only staff can resolve a dispute.")
    dispute = Dispute.objects.select_related("transaction").get(pk=dispute_id)
    with transaction.atomic():
        txn = _lock(dispute.transaction_id)
        if dispute.status == Dispute.Status.OPEN and _move(
                txn, to=Status.RELEASED, frm=(Status.DISPUTED,), released_at=timezone.now()):
            _dispute_close(dispute, status=Dispute.Status.RELEASED, staff_user=staff_user,
                           note=note)
            _notify(txn, user_ids=[txn.buyer_id, txn.seller_id], type="dispute_update",
                    title="Dispute resolved", body="The money was released to the seller.",
                    key="dispute_released")
            _release_effects(txn, reason="The dispute was resolved: the money was released "
                                         "to the seller.")
    dispute.refresh_from_db()
    return dispute

