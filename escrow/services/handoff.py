"""The meetup and the QR handoff: the buyer's code, the seller's scan, and the release of
the money it triggers."""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from rest_framework.exceptions import Throttled

from accounts.policies import ensure_active
from accounts.reputation import user_sale_completed
from biddt.crypto import blind_index
from biddt.errors import Conflict, invalid
from biddt.events import task_on_commit
from escrow import ledger, tasks
from escrow.models import Transaction
from escrow.services.common import (
    _invalid_state,
    _lock,
    _move,
    _notify,
    _party_or_404,
    _system_line,
    transaction_announce,
)
from safezones.models import SafeZone

logger = logging.getLogger(__name__)
Status = Transaction.Status


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
    user_sale_completed(seller_id=txn.seller_id)
    _notify(txn, user_ids=[txn.seller_id, txn.buyer_id], type="escrow_released",
            title="Escrow released",
            body=f"The money for “{txn.listing.title}” was released to the seller.",
            key="escrow_released")
    _system_line(txn, reason)
    transaction_announce(txn)
    task_on_commit(tasks.payout_send, str(txn.pk))


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


def escrow_release(*, user, transaction_id: Any, code: str) -> Transaction:
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


def meetup_set(*, user, transaction_id: Any, safe_zone_id: Any, meetup_at) -> Transaction:
    """Propose where and when to meet (buyer or seller; `pending_payment` or `in_escrow`);
    the other party gets a `transaction_update` event."""
    ensure_active(user)
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

