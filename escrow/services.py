"""Escrow writes: the transaction of a sale, payment, QR handoff, release, payout, refunds,
disputes, expiry, meetups and ratings. Every money movement writes a balanced ledger journal
(escrow/ledger.py); every state change is a conditional UPDATE on the locked row."""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from rest_framework.exceptions import Throttled

from accounts.models import Rating, User, Wallet
from accounts.policies import ensure_active
from biddt.crypto import blind_index
from biddt.errors import Conflict, NotFound, PermissionDenied, invalid
from biddt.events import on_commit, send_to_group_on_commit, task_on_commit
from biddt.metrics import PAYOUTS
from escrow import ledger
from escrow.messages import TRANSACTION_UPDATE
from escrow.models import Dispute, PaymentEvent, Transaction
from escrow.payments import (
    ACCOUNT_EVENTS,
    PAYMENT_INTENT_EVENTS,
    AccountInfo,
    MalformedEvent,
    PaymentIntentInfo,
    UnknownObject,
    gateway_get,
)


def fee_cents_for(amount_cents: int) -> int:
    """The commission: `BIDDT_FEE_PERCENT` of the amount, rounded half up to the cent."""
    fee = Decimal(amount_cents) * Decimal(str(settings.BIDDT_FEE_PERCENT)) / Decimal(100)
    return int(fee.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def transaction_create_for_sale(*, listing, amount_cents: int, source: str, buyer=None,
                                buyer_id=None, winning_bid=None,
                                winning_bid_id=None, decided: bool = False) -> Transaction:
    """Create the one transaction of a sale in `pending_payment`, or return the existing one.

    Idempotent through the one-to-one on `listing`: a second call (a retried close, a
    duplicate task) returns the first row and creates nothing. Call it inside the transaction
    that marks the listing sold, so the sale and its transaction commit together.
    `decided=True`: the caller's own conditional update made it the one seller of this
    listing (an auction's close), so the row is inserted without looking for one first; a row
    that exists anyway fails the insert, and the caller's transaction, on the unique key.
    """
    fee = fee_cents_for(amount_cents)
    escrow_fee = settings.BIDDT_ESCROW_FEE_CENTS
    fields = {
        "buyer_id": buyer.pk if buyer is not None else buyer_id,
        "seller_id": listing.seller_id,
        "winning_bid_id": winning_bid.pk if winning_bid is not None else winning_bid_id,
        "source": source,
        "currency": listing.currency,
        "amount_cents": amount_cents,
        "fee_cents": fee,
        "escrow_fee_cents": escrow_fee,
        "total_charged_cents": amount_cents,
        "seller_payout_cents": amount_cents - fee - escrow_fee,
        "status": Transaction.Status.PENDING_PAYMENT,
        "payment_backend": settings.BIDDT_PAYMENTS_BACKEND,
        "payment_due_at": timezone.now()
        + timedelta(hours=settings.BIDDT_PAYMENT_WINDOW_HOURS),
    }
    if decided:
        return Transaction.objects.create(listing=listing, **fields)
    txn, _ = Transaction.objects.get_or_create(listing=listing, defaults=fields)
    return txn


# =========================================================================================
# Payments, QR handoff, release, payout, disputes, expiry, meetup and ratings (issue 5).
#
# Every state change is a conditional UPDATE on the transaction row (the allowed moves are
# Transaction.TRANSITIONS) made while holding that row's lock; its row count says whether this
# caller won. Ledger journals, notifications, system chat lines and socket events are written
# in the same database transaction and sent after commit (biddt.events). Calls to the payment
# provider are never made while a row lock is held; they carry idempotency keys derived from
# the transaction, so repeating one is harmless.
# =========================================================================================

logger = logging.getLogger(__name__)
Status = Transaction.Status


class InvalidState(Conflict):
    default_detail = "The transaction is not in a state that allows this."
    default_code = "invalid_state"


def _invalid_state(txn: Transaction, action: str) -> InvalidState:
    return InvalidState(f"Can't {action} a transaction that is {txn.status}.")


def _lock(transaction_id: Any) -> Transaction:
    """Lock the transaction row (callers lock transaction before listing or user rows)."""
    return Transaction.objects.select_for_update(of=("self",), no_key=True).get(pk=transaction_id)


def _move(txn: Transaction, *, to: str, frm: tuple[str, ...], **fields: Any) -> bool:
    """The conditional UPDATE `status IN frm → to`; True for the one caller that moved it."""
    assert all(to in Transaction.TRANSITIONS[s] for s in frm), (frm, to)
    now = timezone.now()
    moved = Transaction.objects.filter(pk=txn.pk, status__in=frm).update(
        status=to, updated_at=now, **fields)
    if moved:
        txn.refresh_from_db()
    return bool(moved)


def _party_or_404(*, user, transaction_id: Any, role: str | None = None) -> Transaction:
    """The transaction if the user is its buyer/seller (role None: either), else 404."""
    qs = Transaction.objects.select_related("listing")
    if role == "buyer":
        qs = qs.filter(buyer=user)
    elif role == "seller":
        qs = qs.filter(seller=user)
    else:
        qs = qs.filter(Q(buyer=user) | Q(seller=user))
    try:
        return qs.get(pk=transaction_id)
    except (Transaction.DoesNotExist, ValueError, DjangoValidationError):
        raise NotFound() from None


def transaction_announce(txn: Transaction, *, user_ids: tuple | None = None) -> None:
    """`{type: 'transaction_update', transactionId, status}` to the parties' `user.<id>` groups
    after commit."""
    for uid in user_ids or (txn.buyer_id, txn.seller_id):
        send_to_group_on_commit(f"user.{uid}", {
            "type": "ws.event",
            "payload": TRANSACTION_UPDATE.build(transactionId=str(txn.pk),
                                                         status=str(txn.status)),
        })


def _system_line(txn: Transaction, content: str) -> None:
    from chat.services import message_system_post

    message_system_post(transaction_id=txn.pk, content=content)


def _notify(txn: Transaction, *, user_ids, type: str, title: str, body: str, key: str) -> None:
    from notifications.services import notify

    for uid in user_ids:
        notify(user_id=uid, type=type, title=title, body=body,
               data={"transaction_id": str(txn.pk), "status": txn.status},
               dedupe_key=f"{key}:{txn.pk}:{uid}")


# --- Wallets ------------------------------------------------------------------------------

def _wallet_status_for(account: AccountInfo) -> str:
    if account.details_submitted and account.payouts_enabled:
        return Wallet.Status.ACTIVE
    if account.details_submitted:
        return Wallet.Status.RESTRICTED
    return Wallet.Status.PENDING


def wallet_create(*, user) -> tuple[Wallet, str | None, bool]:
    """The seller's payout account (a Stripe Express connected account), created once.

    Returns `(wallet, onboarding_url, created)`; the url is None once the account is active.
    A repeated call returns the same wallet: the row is unique per user and the provider call
    carries an idempotency key derived from the user.
    """
    ensure_active(user)
    with transaction.atomic():
        wallet, created = Wallet.objects.get_or_create(
            user=user, defaults={"currency": settings.BIDDT_CURRENCY})
    gateway = gateway_get()
    if not wallet.stripe_account_id:
        account = gateway.create_connected_account(user)
        Wallet.objects.filter(pk=wallet.pk, stripe_account_id__isnull=True).update(
            stripe_account_id=account.id, updated_at=timezone.now())
        wallet.refresh_from_db()
        if wallet.stripe_account_id == account.id:
            wallet_apply_account(account=account)
            wallet.refresh_from_db()
    url = None
    if wallet.status != Wallet.Status.ACTIVE:
        url = gateway.create_onboarding_link(wallet.stripe_account_id)
    return wallet, url, created


def wallet_apply_account(*, account: AccountInfo) -> Wallet | None:
    """Set the wallet's status from the provider's account (re-read, never the webhook body);
    when it becomes active, queue the payouts that were waiting for it."""
    with transaction.atomic():
        wallet = (Wallet.objects.select_for_update(of=("self",), no_key=True)
                  .filter(stripe_account_id=account.id).first())
        if wallet is None:
            return None
        new_status = _wallet_status_for(account)
        became_active = (new_status == Wallet.Status.ACTIVE
                         and wallet.status != Wallet.Status.ACTIVE)
        Wallet.objects.filter(pk=wallet.pk).update(
            status=new_status, charges_enabled=account.charges_enabled,
            payouts_enabled=account.payouts_enabled,
            details_submitted=account.details_submitted, updated_at=timezone.now())
        wallet.refresh_from_db()
        if new_status == Wallet.Status.ACTIVE:
            _queue_waiting_payouts(seller_id=wallet.user_id)
        if became_active:
            logger.info("wallet %s active", wallet.pk)
    return wallet


def _queue_waiting_payouts(*, seller_id) -> None:
    from escrow.tasks import payout_send

    waiting = Transaction.objects.filter(
        seller_id=seller_id, status=Status.RELEASED,
        payout_status__in=[Transaction.PayoutStatus.WAITING_WALLET,
                           Transaction.PayoutStatus.FAILED],
    ).values_list("pk", flat=True)
    for pk in waiting:
        task_on_commit(payout_send, str(pk))


# --- Claim and pay ------------------------------------------------------------------------

def transaction_claim(*, user, listing_id: Any) -> tuple[Transaction, bool]:
    """The one transaction of a sale, for its winner. `(txn, created)`.

    The sale (auction close or buy now) already created it; this returns it. Anyone but the
    buyer: 404. A listing that isn't sold: 409 `listing_not_sold`.
    """
    ensure_active(user)
    from listings.models import Listing

    try:
        listing = Listing.objects.get(pk=listing_id)
    except (Listing.DoesNotExist, ValueError, DjangoValidationError):
        raise NotFound() from None
    txn = Transaction.objects.filter(listing=listing).first()
    if txn is not None:
        if txn.buyer_id != user.pk:
            raise NotFound()
        return txn, False
    if listing.status in (Listing.Status.DRAFT, Listing.Status.REMOVED) \
            and listing.seller_id != user.pk:
        raise NotFound()
    if listing.status != Listing.Status.SOLD:
        raise Conflict("This listing has not been sold.", code="listing_not_sold")
    if listing.leader_id != user.pk:
        raise NotFound()
    with transaction.atomic():  # a sold auction whose transaction is missing: make it now
        txn = transaction_create_for_sale(listing=listing, buyer=user,
                                          amount_cents=listing.current_price_cents,
                                          source=Transaction.Source.AUCTION)
    return txn, True


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
                    title="Payment received",
                    body=f"The buyer paid for “{txn.listing.title}”. The money is held in "
                         f"escrow until you scan their code at the meetup.",
                    key="payment_received")
            _system_line(txn, "Payment received: the money is held in escrow until the "
                              "handoff.")
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
                title="Payment refunded",
                body=f"Your payment for “{txn.listing.title}” arrived after the sale was "
                     f"cancelled, so it has been refunded in full.",
                key="late_payment_refunded")
    logger.warning("late payment %s on cancelled transaction %s refunded", pi.id, txn.pk)
    return True


def payment_failed_apply(*, payment_intent: PaymentIntentInfo, event_id: str) -> bool:
    """Tell the buyer their payment failed (once per provider event)."""
    txn = _txn_for_intent(payment_intent)
    if txn is None or txn.status != Status.PENDING_PAYMENT:
        return False
    from notifications.services import notify

    notify(user_id=txn.buyer_id, type="transaction_update", title="Payment failed",
           body=payment_intent.last_error or "Your payment didn't go through. Try another card.",
           data={"transaction_id": str(txn.pk), "status": txn.status,
                 "payment_intent_id": payment_intent.id},
           dedupe_key=f"payment_failed:{event_id}")
    return True


# --- Webhooks -----------------------------------------------------------------------------

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


# --- QR handoff and release ---------------------------------------------------------------

def _qr_hash(txn_id: Any, code: str) -> str:
    return blind_index(f"{txn_id}:{code.strip()}", purpose="escrow-qr")


def qr_issue(*, user, transaction_id: Any) -> tuple[str, Any]:
    """A fresh handoff code for the buyer (`in_escrow` only): `(code, expires_at)`.

    Each call replaces the previous code (it dies). Only a keyed hash is stored, so a copy of
    the database can't produce a code that verifies.
    """
    txn = _party_or_404(user=user, transaction_id=transaction_id, role="buyer")
    code = secrets.token_urlsafe(24)
    expires_at = timezone.now() + timedelta(seconds=settings.BIDDT_QR_TTL_SECONDS)
    with transaction.atomic():
        txn = _lock(txn.pk)
        if txn.status != Status.IN_ESCROW:
            raise _invalid_state(txn, "show the handoff code of")
        Transaction.objects.filter(pk=txn.pk, status=Status.IN_ESCROW).update(
            qr_code_hash=_qr_hash(txn.pk, code), qr_expires_at=expires_at, qr_used_at=None,
            updated_at=timezone.now())
    return code, expires_at


def _release_effects(txn: Transaction, *, reason: str) -> None:
    """Inside the transaction that moved `txn` to `released`: books, counters, messages, the
    payout task after commit."""
    ledger.journal_release(txn)
    User.objects.filter(pk=txn.seller_id).update(completed_sales=F("completed_sales") + 1)
    _notify(txn, user_ids=[txn.seller_id, txn.buyer_id], type="escrow_released",
            title="Escrow released",
            body=f"The money for “{txn.listing.title}” was released to the seller.",
            key="escrow_released")
    _system_line(txn, reason)
    transaction_announce(txn)
    from escrow.tasks import payout_send

    task_on_commit(payout_send, str(txn.pk))


def _qr_guesses_key(txn_id: Any) -> tuple[str, int]:
    window = settings.BIDDT_QR_GUESS_WINDOW_SECONDS
    now = int(timezone.now().timestamp())
    return f"qr-wrong:{txn_id}:{now // window}", window - now % window


def _qr_guesses_check(*, txn_id: Any) -> None:
    """429 (`Retry-After`) once a transaction had `BIDDT_QR_MAX_WRONG_CODES` wrong codes in
    the current window of `BIDDT_QR_GUESS_WINDOW_SECONDS`: guessing the buyer's code from a
    seller account is cut off (the code is also killed at that point, see below)."""
    key, wait = _qr_guesses_key(txn_id)
    if (cache.get(key) or 0) >= settings.BIDDT_QR_MAX_WRONG_CODES:
        logger.warning("handoff code guessing blocked for transaction %s", txn_id)
        raise Throttled(wait=wait, detail="Too many wrong codes; ask the buyer for a new one "
                                          "later.")


def _qr_wrong_code_record(*, txn_id: Any) -> None:
    """Count a wrong code (a cache counter per transaction and window); at the limit the
    current code dies, so the buyer must show a fresh one once the block ends."""
    key, wait = _qr_guesses_key(txn_id)
    cache.add(key, 0, timeout=wait + 5)
    try:
        count = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=wait + 5)
        count = 1
    logger.info("wrong handoff code for transaction %s (%s in this window)", txn_id, count)
    if count >= settings.BIDDT_QR_MAX_WRONG_CODES:
        Transaction.objects.filter(pk=txn_id).update(qr_code_hash=None, qr_expires_at=None,
                                                     updated_at=timezone.now())
        logger.warning("handoff code of transaction %s killed after %s wrong codes",
                       txn_id, count)


def transaction_verify(*, user, transaction_id: Any, code: str) -> Transaction:
    """The seller scans the buyer's code: `in_escrow → released`, exactly once.

    Locks the transaction row, so of two concurrent scans the second sees the first's result
    (409 `code_already_used`). 400 `invalid_code` / `code_expired`; 409 `invalid_state`;
    429 after too many wrong codes (`_qr_guesses_check`).
    """
    ensure_active(user)
    txn = _party_or_404(user=user, transaction_id=transaction_id, role="seller")
    _qr_guesses_check(txn_id=txn.pk)
    digest = _qr_hash(txn.pk, code or "")
    with transaction.atomic():
        txn = _lock(txn.pk)
        now = timezone.now()
        matches = txn.qr_code_hash is not None and secrets.compare_digest(txn.qr_code_hash,
                                                                          digest)
        if matches and txn.qr_used_at is not None:
            raise Conflict("This code was already used.", code="code_already_used")
        if txn.status != Status.IN_ESCROW:
            raise _invalid_state(txn, "release")
        if matches:
            if txn.qr_expires_at is None or txn.qr_expires_at <= now:
                raise invalid("code_expired",
                              "This code has expired; ask the buyer to refresh it.", attr="code")
            if not _move(txn, to=Status.RELEASED, frm=(Status.IN_ESCROW,), qr_used_at=now,
                         verified_at=now, released_at=now):
                raise _invalid_state(txn, "release")
            _release_effects(txn,
                             reason="Handoff confirmed: the money was released to the seller.")
    if not matches:  # counted after the block, so killing the code isn't rolled back
        _qr_wrong_code_record(txn_id=txn.pk)
        raise invalid("invalid_code", "This code is not valid for this transaction.",
                      attr="code")
    return txn


# --- Payout -------------------------------------------------------------------------------

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
    except Exception:
        Transaction.objects.filter(pk=txn.pk, payout_status=P.PENDING).update(
            payout_status=P.FAILED, updated_at=timezone.now())
        PAYOUTS.labels(result="failed").inc()
        raise
    with transaction.atomic():
        txn = _lock(txn.pk)
        if Transaction.objects.filter(pk=txn.pk, payout_status=P.PENDING).update(
                payout_status=P.PAID, payout_transfer_id=transfer_id,
                updated_at=timezone.now()):
            ledger.journal_payout(txn)
            on_commit(PAYOUTS.labels(result="paid").inc)
    return P.PAID


def payouts_retry() -> int:
    """Queue payouts stuck in `failed`, or for 10 minutes in `pending` (a killed run) or
    `none` (a task killed before its claim, or never queued), for active wallets."""
    from escrow.tasks import payout_send as payout_task

    P = Transaction.PayoutStatus
    stale = timezone.now() - timedelta(minutes=10)
    pks = list(Transaction.objects.filter(
        Q(payout_status=P.FAILED)
        | Q(payout_status__in=[P.PENDING, P.NONE], updated_at__lt=stale),
        status=Status.RELEASED, seller__wallet__status=Wallet.Status.ACTIVE,
    ).values_list("pk", flat=True)[:500])
    for pk in pks:
        payout_task.delay(str(pk))
    return len(pks)


# --- Refunds and disputes -----------------------------------------------------------------

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
                title="Refunded", body=reason, key="refunded")
        _system_line(txn, f"Refunded to the buyer. {reason}")
        transaction_announce(txn)
    return True


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
    from biddt.audit import audit_record

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


# --- Expiry -------------------------------------------------------------------------------

def _cancel_unpaid(txn: Transaction, *, now, body: str, key: str) -> bool:
    """`pending_payment → cancelled` and the listing back to `unsold`; caller holds the
    transaction's row lock (then the listing is updated: transaction, then listing)."""
    from listings.models import Listing

    if not _move(txn, to=Status.CANCELLED, frm=(Status.PENDING_PAYMENT,), cancelled_at=now):
        return False
    Listing.objects.filter(pk=txn.listing_id, status=Listing.Status.SOLD).update(
        status=Listing.Status.UNSOLD, updated_at=now)
    _notify(txn, user_ids=[txn.buyer_id, txn.seller_id], type="transaction_update",
            title="Sale cancelled", body=body, key=key)
    transaction_announce(txn)
    return True


def transaction_expire_unpaid(*, transaction_id: Any) -> bool:
    """Unpaid past `payment_due_at`: `pending_payment → cancelled`, the listing back to
    `unsold` (conditional `sold → unsold`), both parties told. Locks transaction, then listing.
    """
    with transaction.atomic():
        txn = _lock(transaction_id)
        now = timezone.now()
        if txn.payment_due_at is None or txn.payment_due_at > now:
            return False
        return _cancel_unpaid(
            txn, now=now, key="expired_unpaid",
            body=f"“{txn.listing.title}” wasn't paid within "
                 f"{settings.BIDDT_PAYMENT_WINDOW_HOURS} hours; the sale is cancelled.")


def transaction_cancel_unpaid(*, transaction_id: Any, staff_user, reason: str) -> bool:
    """Staff: cancel a `pending_payment` sale now, before its payment window ends (no money
    has moved, so no journal). Same effects as the expiry, plus an audit entry. True when
    this call cancelled it; False when it was no longer unpaid."""
    from biddt.audit import audit_record

    reason = (reason or "").strip()
    if not (staff_user and staff_user.is_staff):
        raise PermissionDenied("Only staff can cancel a sale.")
    if not reason:
        raise invalid("required", "A reason is required.", attr="reason")
    with transaction.atomic():
        txn = _lock(transaction_id)
        before = {"status": txn.status}
        if not _cancel_unpaid(txn, now=timezone.now(), key="cancelled_by_staff",
                              body=f"The sale of “{txn.listing.title}” was cancelled by "
                                   f"our team: {reason}"):
            return False
        audit_record(actor=staff_user, action="transaction.cancel_unpaid", obj=txn,
                     before=before, after={"status": Status.CANCELLED}, reason=reason)
    return True


def payout_resend(*, transaction_id: Any, staff_user, reason: str = "") -> bool:
    """Staff: queue the payout task again for a released transaction not yet paid out
    (`failed`, `waiting_wallet`, or `pending` left by a killed run). The task is the normal,
    idempotent `payout_send` (same provider idempotency key), so a resend never pays twice.
    True when queued."""
    from biddt.audit import audit_record
    from escrow.tasks import payout_send as payout_task

    P = Transaction.PayoutStatus
    with transaction.atomic():
        txn = _lock(transaction_id)
        if txn.status != Status.RELEASED or txn.payout_status == P.PAID:
            return False
        audit_record(actor=staff_user, action="transaction.payout_resend", obj=txn,
                     before={"payout_status": txn.payout_status},
                     after={"payout_status": txn.payout_status, "queued": True},
                     reason=reason)
        task_on_commit(payout_task, str(txn.pk))
    return True


def transactions_expire_unpaid(*, limit: int = 500) -> int:
    due = list(Transaction.objects.filter(status=Status.PENDING_PAYMENT,
                                          payment_due_at__lte=timezone.now())
               .values_list("pk", flat=True)[:limit])
    return sum(transaction_expire_unpaid(transaction_id=pk) for pk in due)


def transaction_meetup_check(*, transaction_id: Any) -> str | None:
    """`in_escrow` with no scan: a reminder at each of `BIDDT_MEETUP_REMINDER_DAYS` (once each,
    counted by `reminders_sent`), then past `BIDDT_MEETUP_WINDOW_DAYS` the automatic refund.
    Returns "reminder", "refunded" or None."""
    txn = Transaction.objects.select_related("listing").get(pk=transaction_id)
    if txn.status != Status.IN_ESCROW or txn.paid_at is None:
        return None
    age = timezone.now() - txn.paid_at
    if age >= timedelta(days=settings.BIDDT_MEETUP_WINDOW_DAYS):
        done = transaction_refund(
            transaction_id=txn.pk, frm=(Status.IN_ESCROW,),
            reason=f"No handoff within {settings.BIDDT_MEETUP_WINDOW_DAYS} days.")
        return "refunded" if done else None
    due = sum(1 for d in settings.BIDDT_MEETUP_REMINDER_DAYS if age >= timedelta(days=d))
    if due <= txn.reminders_sent:
        return None
    with transaction.atomic():
        if not Transaction.objects.filter(pk=txn.pk, status=Status.IN_ESCROW,
                                          reminders_sent=txn.reminders_sent).update(
                reminders_sent=due, updated_at=timezone.now()):
            return None
        left = settings.BIDDT_MEETUP_WINDOW_DAYS - age.days
        _notify(txn, user_ids=[txn.buyer_id, txn.seller_id], type="transaction_update",
                title="Meet up to complete your sale",
                body=f"Hand over “{txn.listing.title}” within {left} days, or the buyer is "
                     f"refunded automatically.", key=f"meetup_reminder_{due}")
    return "reminder"


def transactions_meetup_sweep(*, limit: int = 500) -> int:
    first = min(settings.BIDDT_MEETUP_REMINDER_DAYS or [settings.BIDDT_MEETUP_WINDOW_DAYS])
    pks = list(Transaction.objects.filter(
        status=Status.IN_ESCROW, paid_at__lte=timezone.now() - timedelta(days=first),
    ).values_list("pk", flat=True)[:limit])
    return sum(1 for pk in pks if transaction_meetup_check(transaction_id=pk))


# --- Meetup and ratings -------------------------------------------------------------------

def meetup_set(*, user, transaction_id: Any, safe_zone_id: Any, meetup_at) -> Transaction:
    """Propose where and when to meet (buyer or seller; `pending_payment` or `in_escrow`);
    the other party gets a `transaction_update` event."""
    ensure_active(user)
    from safezones.models import SafeZone

    txn = _party_or_404(user=user, transaction_id=transaction_id)
    zone = SafeZone.objects.filter(pk=safe_zone_id, is_active=True).first()
    if zone is None:
        raise invalid("invalid_safe_zone", "Choose an active safe zone.", attr="safe_zone_id")
    if meetup_at <= timezone.now():
        raise invalid("invalid_meetup_time", "The meetup must be in the future.",
                      attr="meetup_at")
    with transaction.atomic():
        txn = _lock(txn.pk)
        if not Transaction.objects.filter(
                pk=txn.pk, status__in=[Status.PENDING_PAYMENT, Status.IN_ESCROW]).update(
                meetup_safe_zone=zone, meetup_at=meetup_at, meetup_proposed_by=user,
                updated_at=timezone.now()):
            raise _invalid_state(txn, "plan a meetup for")
        txn.refresh_from_db()
        other = txn.seller_id if user.pk == txn.buyer_id else txn.buyer_id
        transaction_announce(txn, user_ids=(other,))
    return txn


def rating_create(*, user, transaction_id: Any, score: int, comment: str = "") -> Rating:
    """Rate the other party once, after `released`; the ratee's counters move with F() in
    the same transaction. 409 `already_rated`."""
    ensure_active(user)
    txn = _party_or_404(user=user, transaction_id=transaction_id)
    if txn.status != Status.RELEASED:
        raise _invalid_state(txn, "rate")
    if not 1 <= int(score) <= 5:
        raise invalid("invalid_score", "The score is 1 to 5.", attr="score")
    ratee_id = txn.seller_id if user.pk == txn.buyer_id else txn.buyer_id
    try:
        with transaction.atomic():
            rating = Rating.objects.create(transaction=txn, rater=user, ratee_id=ratee_id,
                                           score=score, comment=(comment or "")[:1000])
            User.objects.filter(pk=ratee_id).update(rating_count=F("rating_count") + 1,
                                                    rating_total=F("rating_total") + score)
    except IntegrityError:
        raise Conflict("You already rated this transaction.", code="already_rated") from None
    return rating
