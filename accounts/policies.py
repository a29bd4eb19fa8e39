"""The one suspension policy: may this account act?

Every write on behalf of a user calls `ensure_active`: the default REST permission (every
non-safe method), every socket message but `ping` (through the guard `accounts.consumers`
connects to the socket envelope), and the services themselves (defence in depth, so a new
entry point inherits the refusal). Staff actions and system lines written for a user are
not "on behalf of" them and don't call it.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import PermissionDenied


class StaffOnly(PermissionDenied):
    default_detail = "Only staff can do this."
    default_code = "permission_denied"


class AccountSuspended(PermissionDenied):
    default_detail = _("This account is suspended.")
    default_code = "account_suspended"


def ensure_active(user, *, fresh: bool = False) -> None:
    """Raise `AccountSuspended` (403 `account_suspended`) unless the account is active.

    `fresh=True` re-reads the status first (and updates `user` with it): for a user object
    that outlives a request, like a socket's, which a suspension made since would not show.
    """
    if fresh and getattr(user, "pk", None) is not None:
        row = (type(user).objects.filter(pk=user.pk)
               .values_list("status", "is_active").first())
        if row is None:  # the account is gone
            raise AccountSuspended()
        user.status, user.is_active = row
    if getattr(user, "is_suspended", False) or not user.is_active:
        raise AccountSuspended()


def ensure_staff(user, *, detail: str = "Only staff can do this.") -> None:
    """The one staff check of the services (staff actions in the console and the API): 403
    `permission_denied` with `detail` unless `user` is a staff member. Admin-only actions
    check `accounts.roles.is_admin_role` on top."""
    if not (user is not None and getattr(user, "is_staff", False)):
        raise StaffOnly(detail)
