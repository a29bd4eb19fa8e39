from rest_framework import serializers

from notifications.models import EMAIL_TYPES, Notification

# The REST item is the socket payload (notifications/payloads.py, which the services use too).
from notifications.payloads import NotificationSerializer  # noqa: F401


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
