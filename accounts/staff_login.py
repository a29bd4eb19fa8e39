"""The staff console's login limit (django-axes): how attempts are keyed and audited.

Axes counts failed `/admin/` logins per (username, client IP) and answers 429 with
`admin/login_locked_out.html` once `BIDDT_ADMIN_LOGIN_FAILURES` are reached, for
`BIDDT_ADMIN_LOCKOUT_MINUTES`, even with the right password. Only `authenticate()` calls
reach it, which the API never makes (JWT and OTP don't log in through Django's backends),
and its middleware reads a request flag: the API pays nothing.

The username axes stores and matches is the typed phone number's blind index (the account's
`USERNAME_FIELD`), so its tables hold no phone number in clear, and `+1 416 555 0100` and
`+14165550100` are one username. Every failure and every lockout goes to the audit log.
"""

from __future__ import annotations

import logging

from accounts.models import InvalidPhoneNumber, User, format_e164, phone_index
from biddt import crypto
from biddt.audit import audit_record
from biddt.throttles import client_ip

logger = logging.getLogger(__name__)


def axes_username(request, credentials) -> str:
    """`AXES_USERNAME_CALLABLE`: the blind index of what was typed in the username box."""
    raw = (credentials or {}).get("username")
    if raw is None and request is not None:
        raw = request.POST.get("username")
    raw = str(raw or "").strip()
    try:
        return phone_index(format_e164(raw))
    except InvalidPhoneNumber:
        return crypto.blind_index(raw, purpose="login")


def axes_client_ip(request) -> str | None:
    """`AXES_CLIENT_IP_CALLABLE`: the client IP as the throttles and the logs see it."""
    return client_ip(request)


def _audit(action: str, *, request, credentials=None, username: str | None = None) -> None:
    index = username or axes_username(request, credentials)
    user = User.objects.filter(phone_index=index).first()
    audit_record(actor=None, action=action, obj=user,
                 object_type=None if user else "accounts.user",
                 after={"ip_address": client_ip(request) if request is not None else None,
                        "username_index": index[:16], "known_user": user is not None,
                        "path": getattr(request, "path", "")},
                 reason="staff console login")


def on_login_failed(sender, credentials, request=None, **kwargs) -> None:
    """`user_login_failed`: every wrong password (and every try while locked out)."""
    _audit("staff.login_failed", request=request, credentials=credentials)


def on_locked_out(sender, request, username, ip_address, **kwargs) -> None:
    """axes' `user_locked_out`: the limit was reached (and on each try during the lockout)."""
    logger.warning("staff login locked out for ip %s", ip_address)
    _audit("staff.login_locked_out", request=request, username=username)
