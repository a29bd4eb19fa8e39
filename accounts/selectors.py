from __future__ import annotations

from django.db.models import Q, QuerySet

from accounts.models import User


def user_public_queryset() -> QuerySet[User]:
    """Users whose public profile can be shown (banned accounts disappear; closed ones show
    as "Deleted user": their sales and ratings still point at them)."""
    return (User.objects.filter(Q(is_active=True) | Q(deleted_at__isnull=False))
            .exclude(status=User.Status.BANNED))


def user_languages(user_ids) -> dict:
    """{user id: language} for the given users (what is written for them later)."""
    return dict(User.objects.filter(pk__in=list(user_ids)).values_list("pk", "language"))
