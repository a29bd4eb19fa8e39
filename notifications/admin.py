from django.contrib import admin

from biddt.staff import ReadOnlyAdminMixin
from notifications.models import Notification, NotificationPreference


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """What was sent to whom: read-only (notifications are made by notifications.notify)."""

    list_display = ["user", "type", "title", "read_at", "created_at"]
    list_filter = ["type", "created_at"]
    search_fields = ["title", "body", "user__display_name"]
    raw_id_fields = ["user"]
    readonly_fields = ["created_at"]


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(admin.ModelAdmin):
    list_display = ["user", "updated_at"]
    raw_id_fields = ["user"]
