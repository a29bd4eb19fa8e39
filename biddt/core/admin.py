import json

from django.contrib import admin
from django.utils.html import format_html

from biddt.core.models import AuditEntry, IdempotencyRecord
from biddt.staff import ReadOnlyAdminMixin


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Stored responses of retried requests: written by the API only."""

    list_display = ["scope", "key", "user", "response_status", "created_at"]
    list_filter = ["scope"]
    readonly_fields = [f.name for f in IdempotencyRecord._meta.fields]


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The staff audit log: read-only for everyone (entries are written by the services)."""

    list_display = ["created_at", "actor", "action", "object_type", "object_link",
                    "short_reason"]
    list_filter = ["action", "object_type", "created_at",
                   ("actor", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["object_id", "object_repr", "reason", "action"]
    date_hierarchy = "created_at"
    list_select_related = ["actor"]
    fields = ["created_at", "actor", "action", "object_type", "object_id", "object_repr",
              "reason", "before_json", "after_json"]
    readonly_fields = fields

    @admin.display(description="object")
    def object_link(self, obj):
        label = obj.object_repr or obj.object_id
        app_model = obj.object_type.replace(".", "/")
        if not obj.object_type or not obj.object_id:
            return label
        return format_html('<a href="/admin/{}/{}/change/">{}</a>', app_model, obj.object_id,
                           label)

    @admin.display(description="reason")
    def short_reason(self, obj):
        return (obj.reason[:80] + "…") if len(obj.reason) > 80 else obj.reason

    @admin.display(description="before")
    def before_json(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.before, indent=2, sort_keys=True))

    @admin.display(description="after")
    def after_json(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.after, indent=2, sort_keys=True))
