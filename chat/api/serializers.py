from rest_framework import serializers

from chat.payloads import MessageSerializer  # noqa: F401 - the REST item is the socket one


class MessageCreateSerializer(serializers.Serializer):
    content = serializers.CharField(max_length=2000, required=False, allow_blank=True,
                                    trim_whitespace=False)
    image = serializers.FileField(required=False,
                                  help_text="JPEG/PNG/WebP photo (multipart/form-data).")


class ReadResponseSerializer(serializers.Serializer):
    marked_read = serializers.IntegerField()
