from rest_framework import serializers

from notifications.models import EMAIL_TYPES, Notification


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


class ReadAllResponseSerializer(serializers.Serializer):
    updated = serializers.IntegerField(help_text="How many notifications were marked read.")


class UnreadCountSerializer(serializers.Serializer):
    unread = serializers.IntegerField()


def _switches(name: str, types) -> type[serializers.Serializer]:
    """A serializer with one optional boolean per notification type."""
    fields = {str(t): serializers.BooleanField(required=False) for t in types}
    return type(name, (serializers.Serializer,), fields)


PushSwitchesSerializer = _switches("PushSwitchesSerializer", Notification.Type.values)
EmailSwitchesSerializer = _switches("EmailSwitchesSerializer", EMAIL_TYPES)


class NotificationSettingsSerializer(serializers.Serializer):
    """`{"push": {type: bool, ...every type}, "email": {type: bool, ...e-mail types}}`."""

    push = PushSwitchesSerializer(required=False)
    email = EmailSwitchesSerializer(required=False)

    def to_representation(self, pref):
        return {
            "push": {t: pref.wants_push(t) for t in Notification.Type.values},
            "email": {str(t): pref.wants_email(t) for t in EMAIL_TYPES},
        }
