"""Staff roles: plain users, `support` (moderation, disputes) and `admin` (everything).

Roles are Django groups plus the staff flag; the groups and their permissions are kept in
sync after every migrate, so a new model's permissions reach the roles automatically.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

SUPPORT = "support"
ADMIN = "admin"

# support can view every domain app in the console and change what moderation needs;
# money settings, fees, groups, schedules and staff accounts stay with admin.
SUPPORT_CHANGE = {
    "accounts": {"user"},
    "listings": {"listing", "listingimage", "listingreport"},
    "bidding": {"bid"},
    "escrow": {"transaction", "dispute"},
    "chat": {"message"},
    "safezones": {"safezone"},
    "notifications": {"notification"},
    "core": set(),  # view only: the audit log (and idempotency records)
}
SUPPORT_ADD = {"safezones": {"safezone"}}


def is_admin_role(user) -> bool:
    """The `admin` role (user_set_role makes admins superusers; the group is kept in step)."""
    if not (user and user.is_authenticated and user.is_staff):
        return False
    return user.is_superuser or user.groups.filter(name=ADMIN).exists()


def roles_sync(sender=None, **kwargs) -> None:
    """post_migrate: runs once, after the last installed app, when every permission exists."""
    from django.apps import apps as global_apps

    last = [c for c in global_apps.get_app_configs() if c.models_module is not None][-1]
    if sender is not None and sender.label != last.label:
        return
    support, _ = Group.objects.get_or_create(name=SUPPORT)
    admin, _ = Group.objects.get_or_create(name=ADMIN)
    apps = set(SUPPORT_CHANGE) | {"core", "auth", "django_celery_beat"}
    perms = Permission.objects.select_related("content_type")
    admin.permissions.set(perms)
    wanted = []
    for perm in perms.filter(content_type__app_label__in=apps):
        app, model = perm.content_type.app_label, perm.content_type.model
        action = perm.codename.split("_", 1)[0]
        if action == "view" and app in SUPPORT_CHANGE:
            wanted.append(perm)
        elif action == "change" and model in SUPPORT_CHANGE.get(app, ()):
            wanted.append(perm)
        elif action == "add" and model in SUPPORT_ADD.get(app, ()):
            wanted.append(perm)
    support.permissions.set(wanted)


def user_set_role(*, user, role: str) -> None:
    """Make a user a plain `user`, `support` or `admin` (groups and staff flags together)."""
    if role not in {"user", SUPPORT, ADMIN}:
        raise ValueError(f"unknown role {role!r}")
    user.groups.remove(*Group.objects.filter(name__in=[SUPPORT, ADMIN]))
    user.is_staff = role != "user"
    user.is_superuser = role == ADMIN
    user.save(update_fields=["is_staff", "is_superuser"])
    if role != "user":
        user.groups.add(Group.objects.get(name=role))
