"""JWT authentication (simplejwt) that also refuses inactive accounts."""

from __future__ import annotations

from rest_framework_simplejwt.authentication import JWTAuthentication as BaseJWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.tokens import AccessToken

from biddt.db_router import use_primary


class JWTAuthentication(BaseJWTAuthentication):
    """`Authorization: Bearer <access>`; a banned (inactive) user's token stops working at once."""

    def authenticate(self, request):
        # From the primary even in a browse view on the read replica: an account created or
        # banned a moment ago may not have reached the replica yet (biddt.db_router).
        with use_primary():
            return super().authenticate(request)


def user_from_access_token(raw: str):
    """The active user an access token names, or None when the token or user is not valid."""
    try:
        token = AccessToken(raw)
        return JWTAuthentication().get_user(token)
    except (TokenError, InvalidToken):
        return None
    except Exception:  # noqa: BLE001 - a malformed claim is just an invalid token
        return None
