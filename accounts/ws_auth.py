"""WebSocket authentication: `Authorization: Bearer <access>` header or `?token=<access>`.

No token: the socket connects as anonymous (it may only subscribe to listing rooms).
A token that is invalid, expired, blacklisted or belongs to an inactive user: the
handshake is refused (close code 4401), so a client never mistakes itself for logged in.
A valid token of a suspended account: the socket is closed as it opens, with 4403 (the
suspension policy, `accounts.policies.ensure_active`; open sockets are closed at suspension
and refuse every message but `ping` once the account is suspended).
"""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.middleware import BaseMiddleware
from django.contrib.auth.models import AnonymousUser

from accounts.authentication import user_from_access_token
from accounts.policies import AccountSuspended, ensure_active
from biddt.consumers import db_sync_to_async

BAD_TOKEN = object()


def token_from_scope(scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            kind, _, token = value.decode("latin1").partition(" ")
            if kind.lower() == "bearer" and token.strip():
                return token.strip()
            return ""
    qs = parse_qs(scope.get("query_string", b"").decode("latin1"))
    if "token" in qs:
        return qs["token"][0]
    return None


@db_sync_to_async
def _user_for(token: str):
    user = user_from_access_token(token)
    if user is None:
        return BAD_TOKEN, None
    try:
        ensure_active(user)
    except AccountSuspended:
        return user, "account_suspended"
    return user, None


class JWTAuthMiddleware(BaseMiddleware):
    async def __call__(self, scope, receive, send):
        scope = dict(scope)
        token = token_from_scope(scope)
        if token is None:
            scope["user"] = AnonymousUser()
            scope["auth_error"] = None
        else:
            user, error = await _user_for(token) if token else (BAD_TOKEN, None)
            if user is BAD_TOKEN:
                scope["user"] = AnonymousUser()
                scope["auth_error"] = "token_not_valid"
            else:
                scope["user"] = user
                scope["auth_error"] = error
        return await super().__call__(scope, receive, send)
