"""Disputes: opened by a party while the money is in escrow, resolved by staff."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from accounts.policies import ensure_active, ensure_staff
from biddt.audit import audit_record
from biddt.errors import Conflict, invalid
from biddt.money import money_text
from escrow import ledger
from escrow.models import Dispute, Transaction
from escrow.payments import gateway_get
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

DECIDING_SECONDS = 120


class DisputeBusy(Conflict):
    default_detail = "Another staff member is deciding this dispute right now; reload it."
    default_code = "dispute_busy"


@contextmanager
def _deciding(dispute_id: Any) -> Iterator[None]:
    """One staff decision at a time per dispute, across processes (a cache key, Redis in
    production). A refund or split calls the provider before it takes the row lock (no
    network calls under a lock), so without this a release decided in the same seconds could
    win the row after the provider had already refunded part of the money."""
    key = f"dispute-deciding:{dispute_id}"
    if not cache.add(key, 1, timeout=DECIDING_SECONDS):
        raise DisputeBusy()
    try:
        yield
    finally:
        cache.delete(key)


def dispute_open(*, user, transaction_id: Any, reason: str) -> Dispute:
    """Buyer or seller, while `in_escrow`: → `disputed`; staff resolve it."""
    ensure_active(user)
    txn = _party_or_404(user=user, transaction_id=transaction_id)
    reason = (reason or "").strip()
    if not reason:
        raise invalid("blank", _("Say what went wrong."), attr="reason")
    with transaction.atomic():
        txn = _lock(txn.pk)
        if not _move(txn, to=Status.DISPUTED, frm=(Status.IN_ESCROW,)):
            raise _invalid_state(txn, "dispute")
        dispute = Dispute.objects.create(transaction=txn, opened_by=user, reason=reason[:2000])
        _notify(txn, user_ids=[txn.buyer_id, txn.seller_id], type="dispute_update",
                title=_("Dispute opened"),
                body=format_lazy(_("A dispute was opened on “{title}”; our team will review "
                                   "it."), title=txn.listing.title),
                key="dispute_opened")
        _system_line(txn, _("A dispute was opened. The money stays in escrow until staff "
                            "resolve it."))
        transaction_announce(txn)
    return dispute


def _dispute_close(dispute: Dispute, *, status: str, staff_user, note: str,
                   details: dict[str, Any] | None = None) -> None:
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
                                "transaction_id": str(dispute.transaction_id),
                                **(details or {})},
                         reason=note)


def dispute_resolve_refund(*, dispute_id: Any, staff_user, note: str = "") -> Dispute:
    """Staff: refund the buyer (`disputed → refunded`). Idempotent: a resolved dispute or an
    already refunded transaction changes nothing more."""
    ensure_staff(staff_user, detail=_("Only staff can resolve a dispute."))
    dispute = Dispute.objects.select_related("transaction").get(pk=dispute_id)
    if dispute.status == Dispute.Status.OPEN:
        with _deciding(dispute.pk):
            _refund_and_close(dispute, staff_user=staff_user, note=note)
    dispute.refresh_from_db()
    return dispute


def _refund_and_close(dispute: Dispute, *, staff_user, note: str) -> None:
    transaction_refund(transaction_id=dispute.transaction_id, frm=(Status.DISPUTED,),
                       reason=_("The dispute was resolved with a refund."))
    if Transaction.objects.filter(pk=dispute.transaction_id, status=Status.REFUNDED).exists():
        _dispute_close(dispute, status=Dispute.Status.REFUNDED, staff_user=staff_user,
                       note=note)


def dispute_resolve_release(*, dispute_id: Any, staff_user, note: str = "") -> Dispute:
    """Staff: release to the seller (`disputed → released`), then the payout as usual."""
    ensure_staff(staff_user, detail=_("Only staff can resolve a dispute."))
    dispute = Dispute.objects.select_related("transaction").get(pk=dispute_id)
    if dispute.status != Dispute.Status.OPEN:
        return dispute
    with _deciding(dispute.pk), transaction.atomic():
        txn = _lock(dispute.transaction_id)
        if dispute.status == Dispute.Status.OPEN and _move(
                txn, to=Status.RELEASED, frm=(Status.DISPUTED,), released_at=timezone.now()):
            _dispute_close(dispute, status=Dispute.Status.RELEASED, staff_user=staff_user,
                           note=note)
            _notify(txn, user_ids=[txn.buyer_id, txn.seller_id], type="dispute_update",
                    title=_("Dispute resolved"),
                    body=_("The money was released to the seller."),
                    key="dispute_released")
            _release_effects(txn, reason=_("The dispute was resolved: the money was "
                                           "released to the seller."))
    dispute.refresh_from_db()
    return dispute


def dispute_split_amounts(txn: Transaction, refund_cents: int) -> dict[str, int]:
    """The money movement of a split: what the buyer gets back, what is released, the fees
    the platform keeps (the same as on a release) and the seller's payout. Raises
    `invalid` (400) for a refund that isn't strictly between 0 and the amount held, or that
    leaves less than the fees to release."""
    total = txn.total_charged_cents
    fees = txn.fee_cents + txn.escrow_fee_cents
    if isinstance(refund_cents, bool) or not isinstance(refund_cents, int):
        raise invalid("invalid", "The refund is a whole number of cents.", attr="refund_cents")
    if not 0 < refund_cents < total:
        raise invalid("out_of_range", f"A split refunds more than 0 and less than the "
                      f"{total} cents held; use refund or release for all of it.",
                      attr="refund_cents")
    if total - refund_cents <= fees:
        raise invalid("out_of_range", f"The rest ({total - refund_cents} cents) must be more "
                      f"than the fees ({fees} cents); refund the buyer in full instead.",
                      attr="refund_cents")
    return {"refund_cents": refund_cents, "released_cents": total - refund_cents,
            "fee_cents": txn.fee_cents, "escrow_fee_cents": txn.escrow_fee_cents,
            "seller_payout_cents": total - refund_cents - fees}


def dispute_resolve_split(*, dispute_id: Any, staff_user, refund_cents: int,
                          note: str) -> Dispute:
    """Staff: refund part of the payment to the buyer and release the rest to the seller
    (`disputed → released`, dispute `split`). The platform keeps its usual fees out of the
    released part; the seller's payout (`seller_payout_cents`) becomes the rest less fees.

    Order, so a crash or a retry at any point pays nobody twice: the provider's partial
    refund first, outside any lock, with an idempotency key per transaction (a retry gets
    the same Refund back); then one database transaction that locks the transaction row,
    moves it with a conditional UPDATE, writes the split journal (escrow/ledger.py), closes
    the dispute with its audit entry and queues the payout after commit. A dispute that is
    no longer open changes nothing. The note is required (it goes to the audit log).
    """
    ensure_staff(staff_user, detail=_("Only staff can resolve a dispute."))
    note = (note or "").strip()
    if not note:
        raise invalid("blank", "Write a note: it goes to the audit log.", attr="note")
    dispute = Dispute.objects.select_related("transaction").get(pk=dispute_id)
    txn = dispute.transaction
    if dispute.status != Dispute.Status.OPEN or txn.status != Status.DISPUTED:
        return dispute
    amounts = dispute_split_amounts(txn, refund_cents)
    with _deciding(dispute.pk):
        _split_apply(dispute, txn, staff_user=staff_user, refund_cents=refund_cents,
                     note=note, amounts=amounts)
    dispute.refresh_from_db()
    return dispute


def _split_apply(dispute: Dispute, txn: Transaction, *, staff_user, refund_cents: int,
                 note: str, amounts: dict[str, int]) -> None:
    if not Dispute.objects.filter(pk=dispute.pk, status=Dispute.Status.OPEN).exists():
        return  # decided by someone else between the read above and the claim
    refund_id = gateway_get(txn.payment_backend).create_partial_refund(
        txn, amount_cents=refund_cents)
    with transaction.atomic():
        txn = _lock(txn.pk)
        dispute.refresh_from_db()
        if dispute.status == Dispute.Status.OPEN and _move(
                txn, to=Status.RELEASED, frm=(Status.DISPUTED,), released_at=timezone.now(),
                refund_id=refund_id, refunded_cents=refund_cents,
                seller_payout_cents=amounts["seller_payout_cents"]):
            _dispute_close(dispute, status=Dispute.Status.SPLIT, staff_user=staff_user,
                           note=note, details={**amounts, "refund_id": refund_id})
            _notify(txn, user_ids=[txn.buyer_id, txn.seller_id], type="dispute_update",
                    title="Dispute resolved",
                    body=f"Part of the money ({money_text(refund_cents, txn.currency)}) was "
                         f"refunded to the buyer and the rest released to the seller.",
                    key="dispute_split")
            _release_effects(txn, journal=ledger.journal_split, reason=(
                f"The dispute was resolved with a split: "
                f"{money_text(refund_cents, txn.currency)} refunded to the buyer, the rest "
                f"released to the seller."))
