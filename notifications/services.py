"""Notification writes. Minimal for now: the record plus its socket push to `user.<id>`.

The notifications issue extends `notify` with mobile push and e-mail (queued after commit).
"""

from __future__ import annotations

from typing import Any

from biddt.events import send_to_group_on_commit, task_on_commit
from notifications.models import EMAIL_TYPES, Notification, NotificationPreference


def notification_item(notification: Notification) -> dict[str, Any]:
    """The REST item `{id, type, title, body, data, read_at, created_at}` (socket payload)."""
    from notifications.api.serializers import NotificationSerializer

    return dict(NotificationSerializer(notification).data)


def notify(*, user_id, type: str, title: str, body: str = "",
           data: dict[str, Any] | None = None,
           dedupe_key: str | None = None) -> Notification | None:
    """Record a notification once per (user, dedupe_key); push it after commit.

    Returns the new row, or None when that event was already notified (a task run twice).
    Safe inside a caller's transaction: the insert runs in a savepoint, and the socket push
    waits for the outer commit, so a rolled-back change notifies no one.
    """
    fields = {"type": type, "title": title, "body": body, "data": data or {}}
    if dedupe_key is None:
        notification = Notification.objects.create(user_id=user_id, **fields)
    else:
        notification, created = Notification.objects.get_or_create(
            user_id=user_id, dedupe_key=dedupe_key, defaults=fields)
        if not created:
            return None
    send_to_group_on_commit(f"user.{user_id}", {
        "type": "ws.event",
        "payload": {"type": "notification", "notification": notification_item(notification)},
    })
    # Push and e-mail leave the request: Celery tasks after commit, each checks preferences.
    from notifications.tasks import notification_email, notification_push

    task_on_commit(notification_push, str(notification.pk))
    if notification.type in EMAIL_TYPES:
        task_on_commit(notification_email, str(notification.pk))
    return notification


def notification_mark_read(*, user, notification_id) -> Notification:
    """Mark one of the user's notifications read (idempotent: the first read time stays)."""
    from django.utils import timezone

    notification = Notification.objects.get(pk=notification_id, user=user)
    if notification.read_at is None:
        Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(
            read_at=timezone.now())
        notification.refresh_from_db(fields=["read_at"])
    return notification


def notification_mark_all_read(*, user) -> int:
    """Mark every unread notification of the user read; returns how many changed."""
    from django.utils import timezone

    return Notification.objects.filter(user=user, read_at__isnull=True).update(
        read_at=timezone.now())


def notification_preferences_update(*, user, push: dict[str, bool] | None = None,
                                    email: dict[str, bool] | None = None
                                    ) -> NotificationPreference:
    """Merge the given per-type switches into the user's settings."""
    from django.db import transaction

    with transaction.atomic():
        pref, _ = NotificationPreference.objects.select_for_update().get_or_create(user=user)
        if push:
            pref.push = {**pref.push, **push}
        if email:
            pref.email = {**pref.email, **email}
        pref.save()
    return pref
