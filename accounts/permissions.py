from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

# `AccountSuspended` and `ensure_active` live in accounts.policies; re-exported for imports
# written before it existed.
from accounts.policies import AccountSuspended, ensure_active

__all__ = ["AccountSuspended", "IsAuthenticatedActive", "ensure_active"]


class IsAuthenticatedActive(BasePermission):
    """Authenticated; a suspended account may read but gets 403 `account_suspended` on writes
    (every non-safe method: this is the default permission of every API view)."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if request.method not in SAFE_METHODS:
            ensure_active(user)
        return True
