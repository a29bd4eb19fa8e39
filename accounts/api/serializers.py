from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import DELETED_USER_NAME, Device, Language, User
from biddt.images import absolute_media_url


class SendCodeSerializer(serializers.Serializer):
    phone_number = serializers.CharField(max_length=32, help_text="E.164, e.g. +14165550100")


class SendCodeResponseSerializer(serializers.Serializer):
    expires_in = serializers.IntegerField(help_text="Seconds the code stays valid.")


class VerifySerializer(serializers.Serializer):
    phone_number = serializers.CharField(max_length=32)
    code = serializers.CharField(max_length=16, help_text="The 6-digit code.")


class RefreshSerializer(serializers.Serializer):
    refresh = serializers.CharField()


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class MeSerializer(serializers.ModelSerializer):
    phone_number = serializers.CharField(read_only=True)
    email = serializers.SerializerMethodField()
    avatar_url = serializers.SerializerMethodField()
    rating_avg = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = User
        fields = ["id", "phone_number", "email", "display_name", "avatar_url", "status",
                  "created_at", "rating_avg", "rating_count", "language"]
        read_only_fields = fields

    @extend_schema_field(serializers.EmailField(allow_null=True))
    def get_email(self, obj) -> str | None:
        return obj.email or None

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_avatar_url(self, obj) -> str | None:
        return absolute_media_url(self.context.get("request"), obj.avatar)


class LoginResponseSerializer(TokenPairSerializer):
    user = MeSerializer()
    is_new_user = serializers.BooleanField()


class MeUpdateSerializer(serializers.Serializer):
    display_name = serializers.CharField(max_length=50, min_length=1, required=False)
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True,
                                   allow_null=True)
    language = serializers.ChoiceField(
        choices=Language.choices, required=False,
        help_text="The language of pushes, e-mails, notifications and system chat lines.")
    avatar = serializers.FileField(
        required=False,
        help_text=f"JPEG, PNG or WebP, at most {settings.BIDDT_MAX_AVATAR_BYTES // 2**20} MB "
                  "(multipart/form-data).",
    )

    def validate_display_name(self, value: str) -> str:
        value = "".join(ch for ch in value if ch.isprintable()).strip()
        if not value:
            raise serializers.ValidationError(_("Display name can't be blank."), code="blank")
        if value.casefold() == DELETED_USER_NAME.casefold():
            # Reserved: it is what closed accounts are shown as.
            raise serializers.ValidationError(_("This display name is reserved."), code="reserved")
        return value


class PublicProfileSerializer(serializers.ModelSerializer):
    avatar_url = serializers.SerializerMethodField()
    member_since = serializers.DateTimeField(source="created_at", read_only=True)
    rating_avg = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = User
        fields = ["id", "display_name", "avatar_url", "member_since", "rating_avg",
                  "rating_count", "completed_sales"]
        read_only_fields = fields

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_avatar_url(self, obj) -> str | None:
        return absolute_media_url(self.context.get("request"), obj.avatar)


class DeviceSerializer(serializers.ModelSerializer):
    token = serializers.CharField(max_length=4096, write_only=True)
    platform = serializers.ChoiceField(choices=Device.Platform.choices)

    class Meta:
        model = Device
        fields = ["id", "token", "platform", "created_at"]
        read_only_fields = ["id", "created_at"]
