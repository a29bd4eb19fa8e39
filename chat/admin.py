from django.contrib import admin

from biddt.staff import ReadOnlyAdminMixin
from chat.models import Message


@admin.register(Message)
class MessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Messages are the parties' record (and a dispute's evidence): read-only."""

    list_display = ["transaction", "sender", "message_type", "created_at", "read_at"]
    list_filter = ["message_type", "created_at"]
    search_fields = ["transaction__id", "content"]
    raw_id_fields = ["transaction", "sender"]
    readonly_fields = ["transaction", "sender", "message_type", "content", "image", "read_at",
                       "created_at"]
