"""Paying into escrow, the provider's webhooks, and refunds back to the buyer."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from accounts.policies import ensure_active
from biddt.i18n import Money
from escrow import ledger
from escrow.models import PaymentEvent, Transaction
from escrow.payments import (
    ACCOUNT_EVENTS,
    PAYMENT_INTENT_EVENTS,
    MalformedEvent,
    PaymentIntentInfo,
    UnknownObject,
    gateway_get,
)
from escrow.services.common import (
    _invalid_state,
    _lock,
    _move,
    _notify,
    _party_or_404,
    _system_line,
    transaction_announce,
)
from escrow.services.wallet import wallet_apply_account
from escrow.stripe_mirror import event_store
from notifications.services import notify

logger = logging.getLogger(__name__)
Status = Transaction.Status


def transaction_pay(*, user, transaction_id: Any) -> PaymentIntentInfo:
    """Create (once) the PaymentIntent for `total_charged_cents` and return it (buyer only).

    The idempotency key derived from the transaction makes concurrent or repeated calls get
    the same PaymentIntent. Funds count as held only when the provider confirms (webhook, or
    at once with the simulated backend) → `in_escrow`.
    """
    ensure_active(user)
    txn = _party_or_404(user=user, transaction_id=transaction_id, role="buyer")
    if txn.status != Status.PENDING_PAYMENT:
        raise _invalid_state(txn, "pay")
    gateway = gateway_get(txn.payment_backend)
    if txn.payment_intent_id:
        pi = gateway.retrieve_payment_intent(txn.payment_intent_id)
    else:
        pi = gateway.create_payment_intent(txn)
        Transaction.objects.filter(pk=txn.pk, payment_intent_id__isnull=True).update(
            payment_intent_id=pi.id, updated_at=timezone.now())
    if pi.status == "succeeded":  # simulated: confirmed at once, as a test card would be
        payment_succeeded_apply(payment_intent=pi)
    return pi


def _txn_for_intent(pi: PaymentIntentInfo) -> Transaction | None:
    txn = Transaction.objects.filter(payment_intent_id=pi.id).first()
    if txn is None and pi.metadata.get("transaction_id"):
        txn = Transaction.objects.filter(pk=pi.metadata["transaction_id"],
                                         payment_intent_id__isnull=True).first()
    return txn


def payment_succeeded_apply(*, payment_intent: PaymentIntentInfo) -> bool:
    """`pending_payment → in_escrow` for a PaymentIntent re-read from the provider.

    Exactly one caller wins however many webhook deliveries (and the simulated `pay`) race:
    the transaction row is locked and moved by a conditional UPDATE; only the winner writes
    the funds_held journal, notifies the seller (`payment_received`) and posts the events.
    """
    pi = payment_intent
    if pi.status != "succeeded":
        return False
    txn = _txn_for_intent(pi)
    if txn is None:
        logger.warning("payment intent %s matches no transaction", pi.id)
        return False
    if pi.amount != txn.total_charged_cents or pi.currency.lower() != txn.currency.lower():
        logger.error("payment intent %s amount/currency differ from %s", pi.id, txn.pk)
        return False
    with transaction.atomic():
        txn = _lock(txn.pk)
        moved = _move(txn, to=Status.IN_ESCROW, frm=(Status.PENDING_PAYMENT,),
                      paid_at=timezone.now(), payment_intent_id=pi.id)
        if moved:
            ledger.journal_funds_held(txn)
            _notify(txn, user_ids=[txn.seller_id], type="payment_received",
                    title=_("Payment received"),
                    body=format_lazy(_("The buyer paid {price} for “{title}”. The money is "
                                       "held in escrow until you scan their code at the "
                                       "meetup."),
                                     price=Money(txn.amount_cents, txn.currency),
                                     title=txn.listing.title),
                    key="payment_received")
            _system_line(txn, _("Payment received: the money is held in escrow until the "
                                "handoff."))
            transaction_announce(txn)
    if moved:
        return True
    if txn.status == Status.CANCELLED:
        # Paid after the unpaid window closed the sale: the money must go back.
        return _late_payment_refund(txn, pi)
    return False


def _late_payment_refund(txn: Transaction, pi: PaymentIntentInfo) -> bool:
    """A payment that succeeded after the unpaid window cancelled the sale: give it back.

    The provider refund carries the transaction's idempotency key (a replayed webhook refunds
    once); the row is claimed by a conditional UPDATE on `refund_id`, so the funds_held and
    refund journals are written once and the books stay balanced. No lock is held during
    the provider call. The transaction stays `cancelled`.
    """
    if txn.refund_id:
        return False
    if not txn.payment_intent_id:
        Transaction.objects.filter(pk=txn.pk, payment_intent_id__isnull=True).update(
            payment_intent_id=pi.id)
        txn.payment_intent_id = pi.id
    refund_id = gateway_get(txn.payment_backend).create_refund(txn)
    now = timezone.now()
    with transaction.atomic():
        txn = _lock(txn.pk)
        if not Transaction.objects.filter(pk=txn.pk, status=Status.CANCELLED,
                                          refund_id="").update(
                refund_id=refund_id, refunded_at=now, paid_at=now, updated_at=now):
            return False
        txn.refresh_from_db()
        ledger.journal_funds_held(txn)
        ledger.journal_refund(txn)
        _notify(txn, user_ids=[txn.buyer_id], type="transaction_update",
                title=_("Payment refunded"),
                body=format_lazy(_("Your payment for “{title}” arrived after the sale was "
                                   "cancelled, so it has been refunded in full."),
                                 title=txn.listing.title),
                key="late_payment_refunded")
    logger.warning("late payment %s on cancelled transaction %s refunded", pi.id, txn.pk)
    return True


def payment_failed_apply(*, payment_intent: PaymentIntentInfo, event_id: str) -> bool:
    """Tell the buyer their payment failed (once per provider event)."""
    txn = _txn_for_intent(payment_intent)
    if txn is None or txn.status != Status.PENDING_PAYMENT:
        return False
    notify(user_id=txn.buyer_id, type="transaction_update", title=_("Payment failed"),
           body=payment_intent.last_error or _("Your payment didn't go through. Try another "
                                               "card."),
           data={"transaction_id": str(txn.pk), "status": txn.status,
                 "payment_intent_id": payment_intent.id},
           dedupe_key=f"payment_failed:{event_id}")
    return True


def transaction_refund(*, transaction_id: Any, frm: tuple[str, ...], reason: str) -> bool:
    """Refund the buyer in full: the provider refund (idempotency key from the transaction,
    made before any lock), then `frm → refunded` with the refund journal, once."""
    txn = Transaction.objects.select_related("listing").get(pk=transaction_id)
    if txn.status not in frm:
        return False
    refund_id = gateway_get(txn.payment_backend).create_refund(txn)
    with transaction.atomic():
        txn = _lock(txn.pk)
        if not _move(txn, to=Status.REFUNDED, frm=frm, refunded_at=timezone.now(),
                     refund_id=refund_id):
            return False
        ledger.journal_refund(txn)
        _notify(txn, user_ids=[txn.buyer_id, txn.seller_id], type="dispute_update",
                title=_("Refunded"), body=reason, key="refunded")
        _system_line(txn, format_lazy(_("Refunded to the buyer. {reason}"), reason=reason))
        transaction_announce(txn)
    return True


def _event_object(event: dict[str, Any]) -> dict[str, Any]:
    """The event's `data.object`, checked for the shape every Stripe event has; raises
    MalformedEvent (400) for anything else, before the event is stored."""
    if not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str):
        raise MalformedEvent("`id` and `type` must be strings")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        raise MalformedEvent("`data.object` must be an object")
    if event["type"] in PAYMENT_INTENT_EVENTS + ACCOUNT_EVENTS:
        object_id = obj.get("id")
        if not isinstance(object_id, str) or not 0 < len(object_id) <= 255:
            raise MalformedEvent("`data.object.id` must be a non-empty string")
    return obj


def webhook_receive(*, payload: bytes, sig_header: str | None) -> PaymentEvent | None:
    """Verify, store once by event id, and handle a provider event; None for a duplicate.

    The verified event is stored in dj-stripe's `Event` table (once per id) and in our
    `PaymentEvent` (whose `processed_at` marks it handled; reconciliation reads it).

    The event body is only a trigger: the PaymentIntent or Account is re-read from the
    provider and a state-guarded transition applied, so duplicated, replayed and out-of-order
    deliveries change the state once. Raises WebhookSignatureInvalid and MalformedEvent
    (400), GatewayError and database lock timeouts (503, so the provider retries). An event
    about an object the provider doesn't have (UnknownObject) or that matches nothing of
    ours is stored and acknowledged: retrying can't change that, and reconciliation
    (`reconcile_payments`) lists it for a person to look at.
    """
    gateway = gateway_get()
    event = gateway.verify_webhook(payload, sig_header)
    obj = _event_object(event)
    with transaction.atomic():
        event_store(event)  # dj-stripe's Event store: once per Stripe event id
        stored, created = PaymentEvent.objects.get_or_create(
            provider="stripe", event_id=event["id"][:255],
            defaults={"type": event["type"][:128], "payload": event})
    if not created and stored.processed_at is not None:
        return None
    etype = stored.type
    try:
        if etype in PAYMENT_INTENT_EVENTS:
            pi = gateway.retrieve_payment_intent(obj["id"])
            if pi.status == "succeeded":
                payment_succeeded_apply(payment_intent=pi)
            elif etype == "payment_intent.payment_failed":
                payment_failed_apply(payment_intent=pi, event_id=stored.event_id)
        elif etype in ACCOUNT_EVENTS:
            wallet_apply_account(account=gateway.retrieve_account(obj["id"]))
    except UnknownObject:
        logger.warning("payment event %s (%s) is about %s, which the provider doesn't have",
                       stored.event_id, etype, obj["id"])
    PaymentEvent.objects.filter(pk=stored.pk, processed_at__isnull=True).update(
        processed_at=timezone.now())
    return stored

