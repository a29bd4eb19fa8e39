from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import User


def user_public_queryset() -> QuerySet[User]:
    """Users whose public profile can be shown (banned accounts disappear)."""
    return User.objects.filter(is_active=True).exclude(status=User.Status.BANNED)
