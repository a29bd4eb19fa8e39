"""A message as REST and the socket show it (`new_message.message`), built by the services
too, so it lives outside the API package; chat/api/serializers.py re-exports it."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from biddt.images import absolute_media_url
from chat.models import Message


class MessageSerializer(serializers.ModelSerializer):
    """`{id, transaction_id, sender_id, message_type, content, image_url, read_at, created_at}`."""

    transaction_id = serializers.UUIDField(read_only=True)
    sender_id = serializers.UUIDField(read_only=True, allow_null=True)
    image_url = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = ["id", "transaction_id", "sender_id", "message_type", "content", "image_url",
                  "read_at", "created_at"]
        read_only_fields = fields

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_image_url(self, obj) -> str | None:
        return absolute_media_url(self.context.get("request"), obj.image)
