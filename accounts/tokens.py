"""The JWTs the API issues: simplejwt's tokens, with the caller's roles as a claim.

API.md: access tokens carry `roles`, a list from `user`, `support`, `admin`, so an app can
show staff tools without another request. The claim is set when a refresh token is made
(login, rotation) and copied into every access token derived from it; a role change reaches
the apps at the next rotation (at most the access lifetime for what the server checks, since
the server decides permissions from the database, never from this claim).
"""

from __future__ import annotations

from rest_framework_simplejwt.tokens import RefreshToken

from accounts.roles import ADMIN, SUPPORT

USER = "user"


def user_roles(user) -> list[str]:
    """`user` for everyone; `support` and `admin` for staff in those groups (superusers are
    admins)."""
    roles = [USER]
    if not user.is_staff:
        return roles
    groups = set(user.groups.values_list("name", flat=True))
    if SUPPORT in groups:
        roles.append(SUPPORT)
    if user.is_superuser or ADMIN in groups:
        roles.append(ADMIN)
    return roles


class UserRefreshToken(RefreshToken):
    """A refresh token (and through `access_token`, an access token) with the `roles` claim."""

    @classmethod
    def for_user(cls, user):
        token = super().for_user(user)
        token["roles"] = user_roles(user)
        return token
