"""Notification socket messages, declared once (biddt.socket_messages)."""

from __future__ import annotations

from biddt.socket_messages import DATETIME, STRING, UUID, declare, nullable, obj

NOTIFICATION_ITEM = obj({
    "id": UUID,
    "type": STRING,
    "title": STRING,
    "body": STRING,
    "data": {"type": "object"},
    "read_at": nullable(DATETIME),
    "created_at": DATETIME,
}, closed=True, description="A notification as `GET /v1/notifications` lists it.")

NOTIFICATION = declare("notification", "server", "A new notification for the socket's user.",
                       fields={"notification": NOTIFICATION_ITEM}, required=("notification",))
