from django.contrib import admin

from biddt.core.models import IdempotencyRecord


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(admin.ModelAdmin):
    list_display = ["scope", "key", "user", "response_status", "created_at"]
    list_filter = ["scope"]
    readonly_fields = [f.name for f in IdempotencyRecord._meta.fields]
