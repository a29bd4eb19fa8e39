"""The meetup and the QR handoff: the buyer's code (and its signed offline token), the
seller's scan, and the release of the money it triggers."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy
from rest_framework.exceptions import Throttled

from accounts.policies import ensure_active
from accounts.reputation import user_sale_completed
from biddt import handoff_tokens
from biddt.crypto import blind_index
from biddt.errors import Conflict, invalid
from biddt.events import task_on_commit
from biddt.i18n import Money
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


@dataclass(frozen=True)
class HandoffCode:
    code: str
    expires_at: datetime
    token: str


def qr_issue(*, user, transaction_id: Any) -> tuple[str, Any]:
    """A fresh handoff code for the buyer (`in_escrow` only): `(code, expires_at)`.

    Each call replaces the previous code (it dies). Only a keyed hash is stored, so a copy of
    the database can't produce a code that verifies.
    """
    _txn, code, expires_at = _qr_issue(user=user, transaction_id=transaction_id)
    return code, expires_at


def handoff_issue(*, user, transaction_id: Any) -> HandoffCode:
    """`qr_issue` plus the offline token: an Ed25519-signed JWS binding this transaction, its
    seller, its amount and the code's `expires_at` (biddt.handoff_tokens). The seller's app
    checks it with the public JWKS alone and sends it later (`transaction_verify_token`).
    A new code doesn't revoke an earlier token: the escrow is released once whichever the
    seller scanned, and a token that rotated away at the meetup must still work offline."""
    txn, code, expires_at = _qr_issue(user=user, transaction_id=transaction_id)
    token = handoff_tokens.token_issue(
        transaction_id=txn.pk, seller_id=txn.seller_id, amount_cents=txn.amount_cents,
        currency=txn.currency, expires_at=expires_at)
    return HandoffCode(code=code, expires_at=expires_at, token=token)


def _qr_issue(*, user, transaction_id: Any) -> tuple[Transaction, str, datetime]:
    txn = _party_or_404(user=user, transaction_id=transaction_id, role="buyer")
    code = secrets.token_urlsafe(24)
    # Whole seconds: the token's `exp` is an integer and must say the same instant.
    expires_at = (timezone.now() + timedelta(seconds=settings.BIDDT_QR_TTL_SECONDS)).replace(
        microsecond=0)
    with transaction.atomic():
        txn = _lock(txn.pk)
        if txn.status != Status.IN_ESCROW:
            raise _invalid_state(txn, "show the handoff code of")
        Transaction.objects.filter(pk=txn.pk, status=Status.IN_ESCROW).update(
            qr_code_hash=_qr_hash(txn.pk, code), qr_expires_at=expires_at, qr_used_at=None,
            updated_at=timezone.now())
    return txn, code, expires_at


def _release_effects(txn: Transaction, *, reason: str, journal=ledger.journal_release) -> None:
    """Inside the transaction that moved `txn` to `released`: books (`journal`: the release,
    or a dispute split's), counters, messages, the payout task after commit."""
    journal(txn)
    user_sale_completed(seller_id=txn.seller_id)
    _notify(txn, user_ids=[txn.seller_id, txn.buyer_id], type="escrow_released",
            title=_("Escrow released"),
            body=format_lazy(_("The money for “{title}” ({price}) was released to the "
                               "seller."), title=txn.listing.title,
                             price=Money(txn.amount_cents, txn.currency)),
            key="escrow_released")
    _system_line(txn, reason)
    transaction_announce(txn)
    task_on_commit(tasks.payout_send, str(txn.pk))


def _scan_too_old():
    hours = settings.BIDDT_HANDOFF_SCAN_MAX_AGE_HOURS
    return ngettext_lazy(
        "This scan is too old to release the money (more than %(hours)d hour).",
        "This scan is too old to release the money (more than %(hours)d hours).",
        "hours") % {"hours": hours}


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
        raise Throttled(wait=wait, detail=str(_("Too many wrong codes; ask the buyer for a new "
                                              "one later.")))


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
            raise Conflict(_("This code was already used."), code="code_already_used")
        if txn.status != Status.IN_ESCROW:
            raise _invalid_state(txn, "release")
        if matches:
            if txn.qr_expires_at is None or txn.qr_expires_at <= now:
                raise invalid("code_expired",
                              _("This code has expired; ask the buyer to refresh it."), attr="code")
            if not _move(txn, to=Status.RELEASED, frm=(Status.IN_ESCROW,), qr_used_at=now,
                         verified_at=now, released_at=now):
                raise _invalid_state(txn, "release")
            _release_effects(txn,
                             reason=_("Handoff confirmed: the money was released to the "
                                      "seller."))
    if not matches:  # counted after the block, so killing the code isn't rolled back
        _qr_wrong_code_record(txn_id=txn.pk)
        raise invalid("invalid_code", _("This code is not valid for this transaction."),
                      attr="code")
    return txn


def transaction_verify_token(*, user, transaction_id: Any, token: str,
                             scanned_at: datetime) -> Transaction:
    """The seller scanned the buyer's signed token offline and sends it once online:
    `in_escrow → released`, exactly once, through the same release as a scanned code.

    Refused with the code path's answers: 400 `invalid_code` (not signed by one of our keys,
    another transaction, another seller, another amount, or `scanned_at` in the future by
    more than BIDDT_HANDOFF_CLOCK_SKEW_SECONDS or before the token was issued); 400
    `code_expired` (`scanned_at` after the token's `exp`, or more than
    BIDDT_HANDOFF_SCAN_MAX_AGE_HOURS ago); 409 `code_already_used` (already released);
    409 `invalid_state`. Locks the transaction row, so of two concurrent sends (a code and
    a token, two tokens) one releases and the other sees `code_already_used`.
    """
    ensure_active(user)
    txn = _party_or_404(user=user, transaction_id=transaction_id, role="seller")
    not_valid = invalid("invalid_code", _("This handoff token is not valid for this transaction."),
                        attr="token")
    try:
        claims = handoff_tokens.token_claims(token or "")
    except handoff_tokens.HandoffTokenInvalid:
        logger.info("handoff token refused for transaction %s", txn.pk, exc_info=True)
        raise not_valid from None
    if (claims["transaction_id"] != str(txn.pk) or claims["seller_id"] != str(user.pk)
            or claims["amount_cents"] != txn.amount_cents):
        raise not_valid
    now = timezone.now()
    skew = timedelta(seconds=settings.BIDDT_HANDOFF_CLOCK_SKEW_SECONDS)
    issued_at = datetime.fromtimestamp(int(claims["iat"]), tz=UTC)
    if scanned_at > now + skew or scanned_at < issued_at - skew:
        raise invalid("invalid_code", _("`scanned_at` can't be in the future or before the "
                                        "code was shown."), attr="scanned_at")
    expires_at = datetime.fromtimestamp(claims["exp"], tz=UTC)
    with transaction.atomic():
        txn = _lock(txn.pk)
        if txn.status == Status.RELEASED:
            raise Conflict(_("This handoff was already confirmed."), code="code_already_used")
        if txn.status != Status.IN_ESCROW:
            raise _invalid_state(txn, "release")
        if scanned_at > expires_at:
            raise invalid("code_expired", _("The code had expired when it was scanned; ask "
                                            "the buyer to refresh it."), attr="scanned_at")
        if scanned_at < now - timedelta(hours=settings.BIDDT_HANDOFF_SCAN_MAX_AGE_HOURS):
            raise invalid("code_expired", _scan_too_old(), attr="scanned_at")
        if not _move(txn, to=Status.RELEASED, frm=(Status.IN_ESCROW,), qr_used_at=now,
                     verified_at=min(scanned_at, now), released_at=now):
            raise _invalid_state(txn, "release")
        _release_effects(txn, reason="Handoff confirmed (scanned offline): the money was "
                                     "released to the seller.")
    logger.info("transaction %s released by handoff token %s (scanned at %s)", txn.pk,
                claims["jti"], scanned_at.isoformat())
    return txn


def meetup_set(*, user, transaction_id: Any, safe_zone_id: Any, meetup_at) -> Transaction:
    """Propose where and when to meet (buyer or seller; `pending_payment` or `in_escrow`);
    the other party gets a `transaction_update` event."""
    ensure_active(user)
    txn = _party_or_404(user=user, transaction_id=transaction_id)
    zone = SafeZone.objects.filter(pk=safe_zone_id, is_active=True).first()
    if zone is None:
        raise invalid("invalid_safe_zone", _("Choose an active safe zone."), attr="safe_zone_id")
    if meetup_at <= timezone.now():
        raise invalid("invalid_meetup_time", _("The meetup must be in the future."),
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

