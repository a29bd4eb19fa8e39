from __future__ import annotations

from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import SAFE_METHODS, BasePermission


class AccountSuspended(PermissionDenied):
    default_detail = "This account is suspended."
    default_code = "account_suspended"


def ensure_active(user) -> None:
    if getattr(user, "is_suspended", False) or not user.is_active:
        raise AccountSuspended()


class IsAuthenticatedActive(BasePermission):
    """Authenticated; a suspended account may read but gets 403 `account_suspended` on writes."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if request.method not in SAFE_METHODS:
            ensure_active(user)
        return True
