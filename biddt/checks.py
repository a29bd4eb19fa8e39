"""What a production deployment must have, as Django system checks (`biddt.E001`...).

Each check reads only settings, so it runs before anything connects anywhere. They are
registered with Django's check framework (`manage.py check [--deploy]` lists every failure
at once) and, with `BIDDT_ENVIRONMENT=production`, `biddt.core`'s AppConfig.ready() runs the
same functions and refuses to start (ImproperlyConfigured naming each variable): every
process — any ASGI/WSGI server, the Celery worker and beat, each management command — sets
Django up, so no process can run production on fake money or development secrets.

Every Error's message starts with the variable to fix.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable

from django.conf import settings
from django.core.checks import Error, Tags, register
from django.core.exceptions import ImproperlyConfigured

# The public development defaults of biddt/settings.py: anyone can read them, so data
# encrypted or signed with them is not protected.
DEV_SECRET_KEY = "biddt-development-only-secret-key-never-use-in-production"
DEV_PII_KEY = hashlib.sha256(b"biddt-dev-pii-key").digest()
DEV_PII_HMAC_KEY = b"biddt-dev-blind-index-key-000000"
# The offline handoff tokens' development Ed25519 key (biddt.handoff_tokens).
DEV_HANDOFF_KID = "dev1"
DEV_HANDOFF_SEED = hashlib.sha256(b"biddt-dev-handoff-key").digest()
MIN_SECRET_CHARS = 32
MIN_METRICS_TOKEN_CHARS = 32

# SMS and push backends that deliver nothing to a phone.
_FAKE_SMS = ("accounts.sms.ConsoleBackend", "accounts.sms.InMemoryBackend")
_FAKE_PUSH = ("notifications.push.ConsoleBackend", "notifications.push.InMemoryBackend")


def _error(n: int, variable: str, problem: str) -> Error:
    return Error(f"{variable}: {problem}", id=f"biddt.E{n:03d}")


def check_payments(s) -> list[Error]:
    errors = []
    if s.BIDDT_PAYMENTS_BACKEND != "stripe":
        errors.append(_error(1, "BIDDT_PAYMENTS_BACKEND",
                             f"is {s.BIDDT_PAYMENTS_BACKEND!r}; production takes real money: "
                             "'stripe'"))
    if not s.STRIPE_SECRET_KEY.startswith(("sk_live_", "rk_live_")):
        errors.append(_error(2, "STRIPE_SECRET_KEY",
                             "must be a live key (sk_live_... or rk_live_...)"
                             + ("" if s.STRIPE_SECRET_KEY else "; it is empty")))
    if not s.STRIPE_WEBHOOK_SECRET.startswith("whsec_"):
        errors.append(_error(3, "STRIPE_WEBHOOK_SECRET",
                             "must be the endpoint's signing secret (whsec_...)"))
    return errors


def check_test_numbers(s) -> list[Error]:
    if s.BIDDT_TEST_PHONE_NUMBERS.strip():
        return [_error(4, "BIDDT_TEST_PHONE_NUMBERS",
                       "must be empty: its numbers log in with a fixed code and no SMS")]
    return []


def check_secret_key(s) -> list[Error]:
    if not s.SECRET_KEY or s.SECRET_KEY == DEV_SECRET_KEY:
        return [_error(5, "SECRET_KEY", "must be set to a random value, not the development key")]
    if len(s.SECRET_KEY) < MIN_SECRET_CHARS:
        return [_error(5, "SECRET_KEY", f"must be at least {MIN_SECRET_CHARS} characters")]
    return []


def check_jwt_key(s) -> list[Error]:
    key = s.SIMPLE_JWT.get("SIGNING_KEY") or ""
    if not key:
        return [_error(6, "JWT_SIGNING_KEY", "must be set (it signs every access token)")]
    if key == DEV_SECRET_KEY:
        return [_error(6, "JWT_SIGNING_KEY", "is the development key")]
    if len(key.encode()) < MIN_SECRET_CHARS:
        return [_error(6, "JWT_SIGNING_KEY", f"must be at least {MIN_SECRET_CHARS} bytes "
                                             "(HS256 with a short key can be brute-forced)")]
    # A separate key: SECRET_KEY signs sessions, password resets and messages Django and
    # its apps hand out; one leaked (or rotated) must not forge (or log out) every app user.
    if key == s.SECRET_KEY:
        return [_error(6, "JWT_SIGNING_KEY", "must differ from SECRET_KEY")]
    return []


def check_allowed_hosts(s) -> list[Error]:
    hosts = [h.strip() for h in s.ALLOWED_HOSTS]
    if not any(hosts):
        return [_error(7, "ALLOWED_HOSTS", "must list the public host names (it is empty)")]
    if "*" in hosts:
        return [_error(7, "ALLOWED_HOSTS", "must not contain '*' (Host header poisoning)")]
    return []


def check_debug(s) -> list[Error]:
    return [_error(8, "DEBUG", "must be off")] if s.DEBUG else []


def check_pii_keys(s) -> list[Error]:
    from biddt.crypto import _hmac_key, _parse_keys

    errors = []
    if not s.BIDDT_PII_KEYS:
        errors.append(_error(9, "BIDDT_PII_KEYS", "must be set (kid:base64 of 32 bytes)"))
    else:
        try:
            keys = _parse_keys(s.BIDDT_PII_KEYS)
        except ImproperlyConfigured as exc:
            errors.append(_error(9, "BIDDT_PII_KEYS", f"is invalid: {exc}"))
        else:
            if any(key == DEV_PII_KEY for _kid, key in keys):
                errors.append(_error(9, "BIDDT_PII_KEYS", "holds the public development key"))
    if not s.BIDDT_PII_HMAC_KEY:
        errors.append(_error(10, "BIDDT_PII_HMAC_KEY", "must be set (base64 of 32+ bytes)"))
    else:
        try:
            key = _hmac_key(s.BIDDT_PII_HMAC_KEY)
        except ImproperlyConfigured as exc:
            errors.append(_error(10, "BIDDT_PII_HMAC_KEY", f"is invalid: {exc}"))
        else:
            if key == DEV_PII_HMAC_KEY:
                errors.append(_error(10, "BIDDT_PII_HMAC_KEY", "is the public development key"))
    if not errors and _hmac_key_reused(s):
        errors.append(_error(10, "BIDDT_PII_HMAC_KEY", "must differ from every BIDDT_PII_KEYS key"))
    return errors


def _hmac_key_reused(s) -> bool:
    from biddt.crypto import _hmac_key, _parse_keys

    hmac_key = _hmac_key(s.BIDDT_PII_HMAC_KEY)
    return any(key == hmac_key for _kid, key in _parse_keys(s.BIDDT_PII_KEYS))


def check_sms(s) -> list[Error]:
    backend = s.BIDDT_SMS_BACKEND
    if backend in _FAKE_SMS:
        return [_error(11, "BIDDT_SMS_BACKEND",
                       f"is {backend!r}, which sends no SMS: use accounts.sms.TwilioBackend")]
    if backend != "accounts.sms.TwilioBackend":
        return []  # a custom backend validates its own configuration
    errors = [_error(12, name, "must be set for the Twilio SMS backend")
              for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN") if not getattr(s, name)]
    if not (s.TWILIO_MESSAGING_SERVICE_SID or s.TWILIO_FROM_NUMBER):
        errors.append(_error(12, "TWILIO_MESSAGING_SERVICE_SID",
                             "or TWILIO_FROM_NUMBER must be set for the Twilio SMS backend"))
    return errors


def check_push(s) -> list[Error]:
    # FCM may authenticate with Application Default Credentials (no file), so only a fake
    # backend and a named file that isn't there are certain misconfigurations.
    if s.BIDDT_PUSH_BACKEND in _FAKE_PUSH:
        return [_error(13, "BIDDT_PUSH_BACKEND", f"is {s.BIDDT_PUSH_BACKEND!r}, which pushes "
                                                 "nothing: use notifications.push.FCMBackend")]
    if s.FIREBASE_CREDENTIALS_FILE and not os.path.isfile(s.FIREBASE_CREDENTIALS_FILE):
        return [_error(13, "FIREBASE_CREDENTIALS_FILE", "names a file that does not exist")]
    return []


def check_metrics_token(s) -> list[Error]:
    # Unset: /metrics answers 404 in production (disabled). Set: it must be unguessable.
    token = s.BIDDT_METRICS_TOKEN
    if token and len(token) < MIN_METRICS_TOKEN_CHARS:
        return [_error(14, "BIDDT_METRICS_TOKEN",
                       f"must be at least {MIN_METRICS_TOKEN_CHARS} characters")]
    return []


def check_handoff_keys(s) -> list[Error]:
    from biddt.handoff_tokens import parse_keys, public_key_b64

    if not s.BIDDT_HANDOFF_SIGNING_KEY:
        return [_error(15, "BIDDT_HANDOFF_SIGNING_KEY",
                       "must be set (kid:base64url of a 32-byte Ed25519 key; "
                       "`manage.py handoff_keygen` makes one)")]
    try:
        keys = parse_keys(s.BIDDT_HANDOFF_SIGNING_KEY, s.BIDDT_HANDOFF_PREVIOUS_KEYS)
    except ImproperlyConfigured as exc:
        return [_error(15, str(exc).partition(":")[0], f"is invalid: {exc}")]
    dev_public = public_key_b64(parse_keys(dev_handoff_key(), "").signing_key.public_key())
    if any(public_key_b64(key) == dev_public for key in keys.public_keys.values()):
        return [_error(15, "BIDDT_HANDOFF_SIGNING_KEY",
                       "is (or BIDDT_HANDOFF_PREVIOUS_KEYS holds) the public development key")]
    return []


PRODUCTION_CHECKS: tuple[Callable[..., list[Error]], ...] = (
    check_payments, check_test_numbers, check_secret_key, check_jwt_key, check_allowed_hosts,
    check_debug, check_pii_keys, check_sms, check_push, check_metrics_token, check_handoff_keys,
)


def production_errors(s=None) -> list[Error]:
    """Every production requirement that `s` (default: the settings) fails."""
    s = s if s is not None else settings
    return [error for check in PRODUCTION_CHECKS for error in check(s)]


@register(Tags.security)
def production_requirements(app_configs=None, **kwargs) -> list[Error]:
    """The `check` command's view: production requirements, only in production."""
    return production_errors() if settings.PRODUCTION else []


def refuse_misconfigured_production() -> None:
    """Raise ImproperlyConfigured listing every failed requirement (production only)."""
    if not settings.PRODUCTION:
        return
    errors = production_errors()
    if errors:
        raise ImproperlyConfigured(
            "BIDDT_ENVIRONMENT=production refuses to start:\n"
            + "\n".join(f"  {e.id} {e.msg}" for e in errors)
            + "\n(`manage.py check --deploy` lists the same checks)"
        )


def dev_pii_keys_b64() -> tuple[str, str]:
    """The development keys as settings.py spells them (for its defaults)."""
    return (base64.b64encode(DEV_PII_KEY).decode(), base64.b64encode(DEV_PII_HMAC_KEY).decode())


def dev_handoff_key() -> str:
    """The development handoff signing key as settings.py spells it (its default)."""
    return f"{DEV_HANDOFF_KID}:{base64.urlsafe_b64encode(DEV_HANDOFF_SEED).rstrip(b'=').decode()}"
