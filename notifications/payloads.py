"""A notification as REST and the socket show it (`notification.notification`), built by
the services too, so it lives outside the API package; notifications/api/serializers.py
re-exports it."""

from rest_framework import serializers

from notifications.models import Notification


class NotificationSerializer(serializers.ModelSerializer):
    """`{id, type, title, body, data, read_at, created_at}` (also the socket payload)."""

    class Meta:
        model = Notification
        fields = ["id", "type", "title", "body", "data", "read_at", "created_at"]
        read_only_fields = fields

    @classmethod
    def items(cls, notifications) -> list[dict]:
        """The items of many rows, from one serializer whose fields are built once per
        process: a close renders a few of these, 10,000 closes a sweep."""
        item = _ITEM_SERIALIZER.get(cls)
        if item is None:
            item = _ITEM_SERIALIZER[cls] = cls()
            item.fields  # noqa: B018 - bind the fields now, before threads share it
        return [item.to_representation(n) for n in notifications]


_ITEM_SERIALIZER: dict[type, NotificationSerializer] = {}
