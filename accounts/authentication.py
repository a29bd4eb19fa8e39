"""JWT authentication (simplejwt) that also refuses inactive accounts."""

from __future__ import annotations

from rest_framework_simplejwt.authentication import JWTAuthentication as BaseJWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.tokens import AccessToken


class JWTAuthentication(BaseJWTAuthentication):
    """`Authorization: Bearer <access>`; a banned (inactive) user's token stops working at once."""


def user_from_access_token(raw: str):
    """The active user an access token names, or None when the token or user is not valid."""
    try:
        token = AccessToken(raw)
        return JWTAuthentication().get_user(token)
    except (TokenError, InvalidToken):
        return None
    except Exception:  # noqa: BLE001 - a malformed claim is just an invalid token
        return None
