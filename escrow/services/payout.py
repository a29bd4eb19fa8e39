"""Payouts of released money to the seller's connected account."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Wallet
from accounts.policies import ensure_staff
from biddt.audit import audit_record
from biddt.events import on_commit, task_on_commit
from biddt.metrics import PAYOUTS
from escrow import ledger, tasks
from escrow.models import Transaction
from escrow.payments import (
    gateway_get,
)
from escrow.services.common import _lock

Status = Transaction.Status


def _failure_reason(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__)[:500]


def _has_payout_wallet(seller_id: Any) -> bool:
    return Wallet.objects.filter(user_id=seller_id, status=Wallet.Status.ACTIVE,
                                 stripe_account_id__isnull=False).exists()


def payout_send(*, transaction_id: Any) -> str:
    """Pay a released transaction's `seller_payout_cents` to the seller's connected account.

    Safe to run any number of times, concurrently or after being killed mid-way: the claim
    is a conditional UPDATE to `pending`; a run that finds `pending` (a killed or concurrent
    run) repeats the provider call with the same idempotency key, which returns the same
    Transfer; `pending → paid` is conditional and writes the payout journal once. Without an
    active wallet the payout waits (`waiting_wallet`; the money shows as available balance)
    until `account.updated` activates it. Returns the payout status.
    """
    P = Transaction.PayoutStatus
    txn = Transaction.objects.get(pk=transaction_id)
    if txn.status != Status.RELEASED or txn.payout_status == P.PAID:
        return txn.payout_status
    wallet = Wallet.objects.filter(user_id=txn.seller_id, status=Wallet.Status.ACTIVE,
                                   stripe_account_id__isnull=False).first()
    if wallet is None:
        Transaction.objects.filter(pk=txn.pk, payout_status__in=[P.NONE, P.FAILED]).update(
            payout_status=P.WAITING_WALLET, updated_at=timezone.now())
        return P.WAITING_WALLET
    Transaction.objects.filter(
        pk=txn.pk, status=Status.RELEASED,
        payout_status__in=[P.NONE, P.WAITING_WALLET, P.FAILED],
    ).update(payout_status=P.PENDING, updated_at=timezone.now())
    txn.refresh_from_db()
    if txn.payout_status != P.PENDING:
        return txn.payout_status
    try:
        transfer_id = gateway_get(txn.payment_backend).create_transfer(
            txn, destination=wallet.stripe_account_id)
    except Exception as exc:
        # The provider's reason, for the staff console's failed-payouts queue.
        Transaction.objects.filter(pk=txn.pk, payout_status=P.PENDING).update(
            payout_status=P.FAILED, payout_failure_reason=_failure_reason(exc),
            updated_at=timezone.now())
        PAYOUTS.labels(result="failed").inc()
        raise
    with transaction.atomic():
        txn = _lock(txn.pk)
        if Transaction.objects.filter(pk=txn.pk, payout_status=P.PENDING).update(
                payout_status=P.PAID, payout_transfer_id=transfer_id,
                payout_failure_reason="", updated_at=timezone.now()):
            ledger.journal_payout(txn)
            on_commit(PAYOUTS.labels(result="paid").inc)
    return P.PAID


def payouts_retry() -> int:
    """Queue payouts stuck in `failed`, or for 10 minutes in `pending` (a killed run) or
    `none` (a task killed before its claim, or never queued), for active wallets."""
    P = Transaction.PayoutStatus
    stale = timezone.now() - timedelta(minutes=10)
    pks = list(Transaction.objects.filter(
        Q(payout_status=P.FAILED)
        | Q(payout_status__in=[P.PENDING, P.NONE], updated_at__lt=stale),
        status=Status.RELEASED, seller__wallet__status=Wallet.Status.ACTIVE,
    ).values_list("pk", flat=True)[:500])
    for pk in pks:
        tasks.payout_send.delay(str(pk))
    return len(pks)


class ResendOutcome(StrEnum):
    """What `payout_resend` did with one transaction."""

    QUEUED = "queued"                  # the payout task was queued
    WAITING_WALLET = "waiting_wallet"  # nothing queued: the seller has no active wallet yet
    ALREADY_PAID = "already_paid"      # nothing to do
    NOT_RELEASED = "not_released"      # no money released to pay out (yet, or ever)


def payout_resend(*, transaction_id: Any, staff_user, reason: str = "") -> ResendOutcome:
    """Staff: queue the payout task again for a released transaction not yet paid out
    (`failed`, or `pending`/`none` left by a killed run). The task is the normal, idempotent
    `payout_send` (same provider idempotency key), so a resend never pays twice. A seller
    without an active wallet gets nothing queued (the payout starts by itself when
    `account.updated` activates the wallet): the outcome says so. Audited when queued."""
    ensure_staff(staff_user, detail=_("Only staff can resend a payout."))
    P = Transaction.PayoutStatus
    with transaction.atomic():
        txn = _lock(transaction_id)
        if txn.status != Status.RELEASED:
            return ResendOutcome.NOT_RELEASED
        if txn.payout_status == P.PAID:
            return ResendOutcome.ALREADY_PAID
        if not _has_payout_wallet(txn.seller_id):
            if txn.payout_status in (P.NONE, P.FAILED):
                Transaction.objects.filter(pk=txn.pk).update(
                    payout_status=P.WAITING_WALLET, updated_at=timezone.now())
            return ResendOutcome.WAITING_WALLET
        audit_record(actor=staff_user, action="transaction.payout_resend", obj=txn,
                     before={"payout_status": txn.payout_status},
                     after={"payout_status": txn.payout_status, "queued": True},
                     reason=reason)
        task_on_commit(tasks.payout_send, str(txn.pk))
    return ResendOutcome.QUEUED
