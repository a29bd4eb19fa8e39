"""Account writes: phone OTP login, JWT issue/rotation/logout, profile, devices."""

from __future__ import annotations

import hmac
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import Throttled
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import tasks
from accounts.models import (
    DELETED_USER_NAME,
    Device,
    InvalidPhoneNumber,
    PhoneOTP,
    User,
    email_index,
    format_e164,
    normalize_phone,
    phone_index,
)
from accounts.policies import AccountSuspended, ensure_active, ensure_staff
from accounts.roles import is_admin_role
from accounts.signals import user_active_changed
from accounts.tokens import UserRefreshToken
from biddt import crypto
from biddt.audit import audit_record
from biddt.errors import PermissionDenied, invalid
from biddt.events import send_to_group_on_commit, task_on_commit
from biddt.images import InvalidImage, image_clean

logger = logging.getLogger(__name__)


# --- OTP ------------------------------------------------------------------------------------

@lru_cache(maxsize=4)
def _parse_test_numbers(raw: str) -> dict[str, str]:
    numbers: dict[str, str] = {}
    for item in (p.strip() for p in raw.split(",")):
        if not item:
            continue
        number, _sep, code = item.rpartition(":")
        if not (code.isdigit() and len(code) == 6):
            raise ValueError(f"BIDDT_TEST_PHONE_NUMBERS: code for {number!r} must be 6 digits")
        numbers[format_e164(number)] = code
    return numbers


def test_phone_numbers() -> dict[str, str]:
    """`BIDDT_TEST_PHONE_NUMBERS` as {E.164: fixed code} (like Firebase's test numbers)."""
    return _parse_test_numbers(settings.BIDDT_TEST_PHONE_NUMBERS)


def phone_parse(raw: str) -> str:
    """E.164 of a number libphonenumber accepts as valid, or of a listed test number."""
    try:
        return normalize_phone(raw)
    except InvalidPhoneNumber:
        try:
            e164 = format_e164(raw)
        except InvalidPhoneNumber:
            e164 = None
        if e164 is not None and e164 in test_phone_numbers():
            return e164
        raise invalid("invalid_phone_number", _("Send a valid phone number in E.164 form."),
                      attr="phone_number") from None


def _code_hash(otp_id: uuid.UUID, index: str, code: str) -> str:
    # Keyed and salted by the row id: a leaked table can't be brute-forced offline.
    return crypto.blind_index(f"{otp_id}:{index}:{code}", purpose="otp")


def otp_send(*, phone_number: str, ip: str | None = None) -> int:
    """Create a fresh code for the number (older open codes die) and text it after commit.

    Returns the code's lifetime in seconds. Listed test numbers get their fixed code and no
    SMS. Beyond the per-minute throttles, a per-phone hourly cap stops SMS pumping.
    """
    e164 = phone_parse(phone_number)
    index = phone_index(e164)
    now = timezone.now()
    ttl = settings.BIDDT_OTP_TTL_SECONDS
    fixed = test_phone_numbers().get(e164)
    with transaction.atomic():
        recent = PhoneOTP.objects.filter(phone_index=index,
                                         created_at__gte=now - timedelta(hours=1)).count()
        if fixed is None and recent >= settings.BIDDT_OTP_PER_PHONE_PER_HOUR:
            raise Throttled(wait=3600, detail=str(_("Too many codes requested for this number.")))
        PhoneOTP.objects.filter(phone_index=index, consumed_at__isnull=True).update(
            consumed_at=now
        )
        code = fixed or f"{secrets.randbelow(10**6):06d}"
        otp = PhoneOTP(id=uuid.uuid4(), phone_index=index, expires_at=now + timedelta(seconds=ttl),
                       requested_ip=ip)
        otp.code_hash = _code_hash(otp.id, index, code)
        otp.save()
        if fixed is None:
            # The task gets the number and text sealed with the PII key, so the broker
            # never holds a plain phone number or code.
            task_on_commit(tasks.sms_send, crypto.encrypt(f"{e164}\n{code}"))
    logger.info("otp sent to %s", e164)  # the logging filter hashes the number
    return ttl


@dataclass(frozen=True)
class LoginResult:
    user: User
    is_new_user: bool
    access: str
    refresh: str


def _otp_check(*, index: str, code: str, fixed: str | None) -> None:
    """Check the code against the newest open OTP; a wrong try is counted even though we raise."""
    now = timezone.now()
    error = None
    with transaction.atomic():
        otp = (PhoneOTP.objects.select_for_update(of=("self",), no_key=True)
               .filter(phone_index=index, consumed_at__isnull=True)
               .order_by("-created_at").first())
        if fixed is not None and hmac.compare_digest(code, fixed):
            if otp is not None:
                otp.consumed_at = now
                otp.save(update_fields=["consumed_at"])
            return
        if otp is None:
            error = invalid("invalid_code", _("The code is not valid. Request a new one."),
                            attr="code")
        elif otp.attempts >= settings.BIDDT_OTP_MAX_ATTEMPTS:
            error = invalid("too_many_attempts",
                            _("Too many wrong codes. Request a new code."), attr="code")
        elif otp.expires_at <= now:
            error = invalid("code_expired", _("The code has expired. Request a new one."),
                            attr="code")
        elif not hmac.compare_digest(otp.code_hash, _code_hash(otp.id, index, code)):
            otp.attempts += 1
            otp.save(update_fields=["attempts"])
            error = invalid("invalid_code", _("The code is not valid."), attr="code")
        else:
            otp.consumed_at = now
            otp.save(update_fields=["consumed_at"])
    if error is not None:
        raise error


def otp_verify(*, phone_number: str, code: str) -> LoginResult:
    e164 = phone_parse(phone_number)
    index = phone_index(e164)
    code = str(code).strip()
    if not (len(code) == 6 and code.isdigit()):
        raise invalid("invalid_code", _("Codes are 6 digits."), attr="code")
    _otp_check(index=index, code=code, fixed=test_phone_numbers().get(e164))
    user, created = _user_get_or_create(e164=e164, index=index)
    ensure_active(user)
    refresh = UserRefreshToken.for_user(user)
    return LoginResult(user=user, is_new_user=created, access=str(refresh.access_token),
                       refresh=str(refresh))


def _user_get_or_create(*, e164: str, index: str) -> tuple[User, bool]:
    user = User.objects.filter(phone_index=index).first()
    if user is not None:
        return user, False
    try:
        with transaction.atomic():
            return User.objects.create_user(e164), True
    except IntegrityError:  # a concurrent verify created it first
        return User.objects.get(phone_index=index), False


# --- JWT --------------------------------------------------------------------------------------

def _refresh_parse(raw: str) -> RefreshToken:
    try:
        return RefreshToken(raw)
    except TokenError as exc:
        raise InvalidToken({"detail": str(exc), "code": "token_not_valid"}) from exc


def _blacklist_once(token: RefreshToken) -> None:
    """Blacklist the token's row; raises InvalidToken if someone already did.

    Caller holds a transaction. The row lock serialises two rotations of one token, and the
    one-to-one constraint on the blacklist is the backstop: exactly one caller passes.
    """
    outstanding = (OutstandingToken.objects.select_for_update(of=("self",), no_key=True)
                   .filter(jti=token["jti"]).first())
    if outstanding is None or BlacklistedToken.objects.filter(token=outstanding).exists():
        raise InvalidToken({"detail": _("Token is blacklisted"), "code": "token_not_valid"})
    try:
        with transaction.atomic():
            BlacklistedToken.objects.create(token=outstanding)
    except IntegrityError:
        raise InvalidToken({"detail": _("Token is blacklisted"),
                            "code": "token_not_valid"}) from None


def token_refresh(*, refresh: str) -> tuple[str, str]:
    """Rotate: the old refresh token dies, a new pair is issued. Concurrent rotations: one wins."""
    token = _refresh_parse(refresh)
    with transaction.atomic():
        _blacklist_once(token)
        user = User.objects.filter(pk=token["user_id"]).first()
        if user is None or not user.is_active:
            raise InvalidToken({"detail": _("User not found"), "code": "token_not_valid"})
        ensure_active(user)
        new = UserRefreshToken.for_user(user)
    return str(new.access_token), str(new)


def token_logout(*, refresh: str) -> None:
    token = _refresh_parse(refresh)
    with transaction.atomic():
        _blacklist_once(token)


# --- Profile and devices ------------------------------------------------------------------------

def user_update_profile(*, user: User, display_name: str | None = None,
                        email: str | None = None, avatar=None, email_given: bool = False,
                        language: str | None = None) -> User:
    ensure_active(user)
    fields = ["updated_at"]
    if language is not None:
        user.language = language
        fields.append("language")
    if display_name is not None:
        user.display_name = display_name.strip()
        fields.append("display_name")
    if email_given:
        taken = User.objects.filter(email_index=email_index(email)).exclude(pk=user.pk) \
            if email else User.objects.none()
        if taken.exists():
            raise invalid("email_taken", _("This e-mail address is used by another account."),
                          attr="email")
        user.set_email(email or None)
        fields += ["email", "email_index"]
    if avatar is not None:
        try:
            clean = image_clean(avatar, max_bytes=settings.BIDDT_MAX_AVATAR_BYTES, max_side=512,
                                name=uuid.uuid4().hex)
        except InvalidImage as exc:
            raise invalid("invalid_image", str(exc), attr="avatar") from None
        old = user.avatar.name if user.avatar else None
        user.avatar.save(clean.content.name, clean.content, save=False)
        fields.append("avatar")
        if old:
            storage = user.avatar.storage
            transaction.on_commit(lambda: storage.delete(old))
    try:
        with transaction.atomic():
            user.save(update_fields=fields)
    except IntegrityError:
        raise invalid("email_taken", _("This e-mail address is used by another account."),
                      attr="email") from None
    return user


def device_register(*, user: User, token: str, platform: str) -> tuple[Device, bool]:
    """Register a push token; a token moves to the user who registered it last."""
    ensure_active(user)
    index = crypto.blind_index(token, purpose="device")
    with transaction.atomic():
        device, created = Device.objects.select_for_update(of=("self",), no_key=True).get_or_create(
            token_index=index, defaults={"user": user, "token": token, "platform": platform}
        )
        if not created and (device.user_id != user.pk or device.platform != platform):
            device.user = user
            device.platform = platform
            device.save(update_fields=["user", "platform", "last_seen_at"])
    return device, created


# --- Staff: suspension ----------------------------------------------------------------------

def user_suspend(*, user_id: uuid.UUID | str, staff_user, reason: str) -> bool:
    """Staff: `active` → `suspended`. True when this call suspended the user.

    What a suspension does (and reinstating undoes, since nothing else is rewritten):
    - every write of theirs gets 403 `account_suspended` (`ensure_active`) and they can't log in
      again, refresh or place bids;
    - their listings are *paused* (`seller_active=False` on each, so browse needs no join to
      users): the active ones keep `status='active'` and their auction state, but browse
      and detail hide them from everyone but the seller and staff, bids and buy now are
      refused with 409 `listing_not_active`, and the close sweep skips them (one
      whose end passed closes at the first sweep after reinstatement);
    - their open sockets are closed after commit (`ws.close` to `user.<id>`).
    A conditional UPDATE decides, so two staff clicking at once write one audit entry.
    """
    ensure_staff(staff_user)
    reason = (reason or "").strip()[:255]
    if not reason:
        raise invalid("required", _("A reason is required."), attr="reason")
    with transaction.atomic():
        won = User.objects.filter(pk=user_id, status=User.Status.ACTIVE).update(
            status=User.Status.SUSPENDED, status_reason=reason, updated_at=timezone.now())
        if not won:
            return False
        # listings pauses the seller's listings, in this transaction (listings.apps).
        user_active_changed.send(sender=User, user_id=user_id, active=False)
        user = User.objects.get(pk=user_id)
        audit_record(actor=staff_user, action="user.suspend", obj=user,
                     before={"status": User.Status.ACTIVE},
                     after={"status": user.status, "status_reason": reason}, reason=reason)
        send_to_group_on_commit(f"user.{user.pk}", {"type": "ws.close"})
    logger.info("user %s suspended by staff %s", user_id, staff_user.pk)
    return True


def user_reinstate(*, user_id: uuid.UUID | str, staff_user, reason: str = "") -> bool:
    """Staff: `suspended` → `active`; their paused listings show and take bids again."""
    ensure_staff(staff_user)
    with transaction.atomic():
        user = User.objects.select_for_update(of=("self",), no_key=True).filter(pk=user_id).first()
        if user is None or user.status != User.Status.SUSPENDED:
            return False
        before = {"status": user.status, "status_reason": user.status_reason}
        user.status = User.Status.ACTIVE
        user.status_reason = ""
        user.save(update_fields=["status", "status_reason", "updated_at"])
        user_active_changed.send(sender=User, user_id=user.pk, active=True)
        audit_record(actor=staff_user, action="user.reinstate", obj=user, before=before,
                     after={"status": user.status, "status_reason": ""}, reason=reason)
    return True


# --- Staff: the console's login limit ---------------------------------------------------------

def staff_login_unlock(*, user_id: uuid.UUID | str, staff_user, reason: str = "") -> int:
    """Admin: lift the login lockout of an account (django-axes' attempts for its username,
    from every IP). Returns how many attempt records were cleared; audited even when 0."""
    from axes.utils import reset as axes_reset

    if not is_admin_role(staff_user):
        raise PermissionDenied(_("Only an admin can unlock a staff login."))
    user = User.objects.get(pk=user_id)
    with transaction.atomic():
        cleared = axes_reset(username=user.phone_index)
        audit_record(actor=staff_user, action="staff.login_unlock", obj=user,
                     after={"attempts_cleared": cleared}, reason=reason)
    logger.info("staff login of user %s unlocked by %s", user_id, staff_user.pk)
    return cleared


# --- Account closure (the accounts side; `privacy.services.account_delete` orchestrates) ----

def user_lock_acting(user) -> None:
    """Lock the acting user's row and re-check that the account may act.

    Lock order (documented in `privacy.services.account_delete`): a user row before any
    listing row. `bid_place` and `listing_buy_now` call this before they lock the listing, so a
    deletion (which holds this row `FOR NO KEY UPDATE` while it checks the user's bids) and the
    user's own bid serialise: either the bid commits first and the deletion sees it (409), or
    the deletion commits first and the bid is refused here (403 `account_suspended`: a closed
    account is inactive). Must run inside `transaction.atomic`.
    """
    row = (User.objects.select_for_update(of=("self",), no_key=True).filter(pk=user.pk)
           .values_list("status", "is_active").first())
    if row is None:
        raise AccountSuspended()
    user.status, user.is_active = row
    ensure_active(user)


def user_lock_for_closure(*, user_id) -> User | None:
    """The user row, locked `FOR NO KEY UPDATE` (the first lock of an account closure)."""
    return (User.objects.select_for_update(of=("self",), no_key=True)
            .filter(pk=user_id).first())


def user_erase(*, user: User) -> str | None:
    """Erase the personal data of a closed account; the row stays for the money records.

    Caller holds the user row lock (`user_lock_for_closure`) in its transaction. Phone and
    e-mail ciphertexts and blind indexes, name and avatar go (the phone index is replaced by
    a value no number hashes to, so the same number signs up again as a new user); every
    refresh token is blacklisted, every device and stored idempotent answer deleted; the
    history rows of the user lose the name and avatar too. Returns the avatar file name
    for the caller to delete after commit.
    """
    from biddt.core.models import IdempotencyRecord

    avatar = user.avatar.name or None
    now = timezone.now()
    user.phone_number = ""
    user.phone_index = f"deleted:{user.pk.hex}"
    user.set_email(None)
    user.display_name = DELETED_USER_NAME
    user.avatar = ""
    user.is_active = False
    user.deleted_at = now
    user.set_unusable_password()
    user.save(update_fields=["phone_number", "phone_index", "email", "email_index",
                             "display_name", "avatar", "is_active", "deleted_at", "password",
                             "updated_at"])
    User.history.filter(id=user.pk).update(display_name=DELETED_USER_NAME, avatar="",
                                           phone_index=user.phone_index, email_index=None)
    outstanding = OutstandingToken.objects.filter(user_id=user.pk)
    BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token_id=pk) for pk in outstanding.exclude(
            blacklistedtoken__isnull=False).values_list("pk", flat=True)],
        ignore_conflicts=True)
    Device.objects.filter(user_id=user.pk).delete()
    IdempotencyRecord.objects.filter(user_id=user.pk).delete()
    return avatar
