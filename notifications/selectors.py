from __future__ import annotations

from django.db.models import QuerySet

from notifications.models import Notification, NotificationPreference


def notification_list(*, user, unread_only: bool = False) -> QuerySet[Notification]:
    qs = Notification.objects.filter(user=user)
    if unread_only:
        qs = qs.filter(read_at__isnull=True)
    return qs


def notification_unread_count(*, user) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def notification_preference(*, user_id):
    """The user's channel choices (an unsaved default when they never changed any)."""
    return (NotificationPreference.objects.filter(user_id=user_id).first()
            or NotificationPreference(user_id=user_id))
