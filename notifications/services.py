"""Notification writes: the row, its socket push to `user.<id>` after commit, and the hand-off
to the delivery task (mobile push and e-mail), with a sweep for hand-offs that were lost.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from accounts.policies import ensure_active
from accounts.selectors import user_languages
from biddt.events import ids_task_on_commit, send_to_group_on_commit
from biddt.i18n import for_user_language
from notifications import tasks
from notifications.messages import NOTIFICATION
from notifications.models import Notification, NotificationPreference
from notifications.payloads import NotificationSerializer

logger = logging.getLogger(__name__)


def _in_language(language: str | None, title, body) -> tuple[str, str]:
    """Title and body (lazy texts from `gettext_lazy`/`format_lazy`, or plain strings)
    written in the recipient's language."""
    with for_user_language(language):
        return str(title), str(body)


def notify(*, user_id, type: str, title: str, body: str = "",
           data: dict[str, Any] | None = None,
           dedupe_key: str | None = None) -> Notification | None:
    """Record a notification once per (user, dedupe_key); push it after commit.

    Returns the new row, or None when that event was already notified (a task run twice).
    Safe inside a caller's transaction: the insert runs in a savepoint, and the socket push
    waits for the outer commit, so a rolled-back change notifies no one.
    """
    if not (isinstance(title, str) and isinstance(body, str)):  # lazy: needs the language
        title, body = _in_language(user_languages([user_id]).get(user_id), title, body)
    fields = {"type": type, "title": title, "body": body, "data": data or {}}
    if dedupe_key is None:
        notification = Notification.objects.create(user_id=user_id, **fields)
    else:
        notification, created = Notification.objects.get_or_create(
            user_id=user_id, dedupe_key=dedupe_key, defaults=fields)
        if not created:
            return None
    _deliver_on_commit([notification])
    return notification


@dataclass(frozen=True)
class Note:
    """One notification for `notify_many`."""

    user_id: Any
    type: str
    title: str
    body: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    dedupe_key: str | None = None


def notify_many(notes: Sequence[Note]) -> list[Notification]:
    """Record several notifications in one INSERT and deliver them with one task.

    For a transaction that has itself decided, once, that these events happened (an
    auction's close is a conditional update only one caller wins). The per-event unique key
    still holds: a row that already exists is skipped rather than failing the caller (its
    delivery task then finds it missing or already claimed, and sends nothing twice).
    """
    lazy = any(not isinstance(text, str) for n in notes for text in (n.title, n.body))
    languages = user_languages({n.user_id for n in notes}) if lazy else {}
    rows = [Notification(user_id=n.user_id, type=n.type,
                         **dict(zip(("title", "body"),
                                    _in_language(languages.get(n.user_id), n.title, n.body),
                                    strict=True)),
                         data=n.data, dedupe_key=n.dedupe_key) for n in notes]
    if rows:
        Notification.objects.bulk_create(rows, ignore_conflicts=True)
        _deliver_on_commit(rows)
    return rows


def notify_many_once(notes: Sequence[Note]) -> list[Notification]:
    """`notify_many` for events a retried task may notify again: every note has a
    `dedupe_key`, and only the rows this call inserted are returned and delivered (a row
    whose (user, dedupe_key) exists, or that a concurrent run is inserting, is skipped: the
    insert waits for that run's commit, then conflicts). Run it inside a transaction."""
    rows = [Notification(user_id=n.user_id, type=n.type, title=n.title, body=n.body,
                         data=n.data, dedupe_key=n.dedupe_key) for n in notes]
    if not rows:
        return []
    inserted = _insert_new(rows)
    rows = [r for r in rows if r.pk in inserted]
    _deliver_on_commit(rows)
    return rows


def _insert_new(rows: list[Notification]) -> set[Any]:
    """Insert the rows, skipping conflicts; the ids of those inserted.

    PostgreSQL: one `INSERT ... SELECT FROM unnest(<one array per column>) ON CONFLICT DO
    NOTHING RETURNING id` (a bulk_create of 60 rows and the read-back of their ids cost
    four times as much, most of it binding 720 parameters). Elsewhere: bulk_create, then
    the ids made here that are now in the table (the ones this insert wrote)."""
    if connection.vendor != "postgresql":
        Notification.objects.bulk_create(rows, ignore_conflicts=True)
        return set(Notification.objects.filter(pk__in=[r.pk for r in rows])
                   .values_list("pk", flat=True))
    fields = Notification._meta.concrete_fields
    quote = connection.ops.quote_name
    arrays = [[f.get_db_prep_save(f.pre_save(r, add=True), connection) for r in rows]
              for f in fields]
    # Names from the model, values as parameters.
    sql = (f"INSERT INTO {quote(Notification._meta.db_table)} "  # noqa: S608
           f"({', '.join(quote(f.column) for f in fields)}) "
           f"SELECT * FROM unnest({', '.join(f'%s::{f.db_type(connection)}[]' for f in fields)})"
           f" ON CONFLICT DO NOTHING RETURNING {quote(Notification._meta.pk.column)}")
    with connection.cursor() as cursor:
        cursor.execute(sql, arrays)
        return {row[0] for row in cursor.fetchall()}


def _deliver_on_commit(notifications: Sequence[Notification]) -> None:
    """After commit: each row to its user's sockets, then one Celery task for push and
    e-mail of them all (each checks preferences and claims its channel on the row)."""
    # The REST item {id, type, title, body, data, read_at, created_at}; fields built once.
    items = NotificationSerializer.items(notifications)
    for notification, item in zip(notifications, items, strict=True):
        send_to_group_on_commit(f"user.{notification.user_id}", {
            "type": "ws.event",
            "payload": NOTIFICATION.build(notification=dict(item)),
        })
    ids_task_on_commit(tasks.notifications_deliver, [str(n.pk) for n in notifications])


REQUEUE_CHUNK = 100


def notifications_requeue_unhandled(*, limit: int = 5000) -> int:
    """Queue delivery again for notifications no delivery task has handled: their task was
    lost with a killed process (or a batch of hand-offs never flushed). Rows older than
    `BIDDT_NOTIFY_REDELIVER_AFTER_SECONDS` (their first task has had its chance) and younger
    than `BIDDT_NOTIFY_REDELIVER_HOURS` (a push a day late helps no one; those are marked
    handled and logged). The claims on each row make a second delivery send nothing twice.
    Returns how many were queued."""
    now = timezone.now()
    after = now - timedelta(seconds=settings.BIDDT_NOTIFY_REDELIVER_AFTER_SECONDS)
    horizon = now - timedelta(hours=settings.BIDDT_NOTIFY_REDELIVER_HOURS)
    unhandled = Notification.objects.filter(delivery_handled_at__isnull=True)
    stale = unhandled.filter(created_at__lte=horizon).update(delivery_handled_at=now)
    if stale:
        logger.warning("%d notifications were never delivered and are now too old to push",
                       stale)
    ids = [str(pk) for pk in unhandled.filter(created_at__lte=after, created_at__gt=horizon)
           .order_by("created_at").values_list("pk", flat=True)[:limit]]
    for start in range(0, len(ids), REQUEUE_CHUNK):
        tasks.notifications_deliver.delay(ids[start:start + REQUEUE_CHUNK])
    if ids:
        logger.info("requeued delivery of %d notifications", len(ids))
    return len(ids)


def notification_mark_read(*, user, notification_id) -> Notification:
    """Mark one of the user's notifications read (idempotent: the first read time stays)."""
    ensure_active(user)
    notification = Notification.objects.get(pk=notification_id, user=user)
    if notification.read_at is None:
        Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(
            read_at=timezone.now())
        notification.refresh_from_db(fields=["read_at"])
    return notification


def notification_mark_all_read(*, user) -> int:
    """Mark every unread notification of the user read; returns how many changed."""
    ensure_active(user)
    return Notification.objects.filter(user=user, read_at__isnull=True).update(
        read_at=timezone.now())


def notification_preferences_update(*, user, push: dict[str, bool] | None = None,
                                    email: dict[str, bool] | None = None
                                    ) -> NotificationPreference:
    """Merge the given per-type switches into the user's settings."""
    ensure_active(user)
    from django.db import transaction

    with transaction.atomic():
        pref, _ = (NotificationPreference.objects.select_for_update(of=("self",), no_key=True)
                   .get_or_create(user=user))
        if push:
            pref.push = {**pref.push, **push}
        if email:
            pref.email = {**pref.email, **email}
        pref.save()
    return pref
