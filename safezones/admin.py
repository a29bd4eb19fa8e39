from django.contrib import admin

from safezones.models import SafeZone


@admin.register(SafeZone)
class SafeZoneAdmin(admin.ModelAdmin):
    list_display = ["partner_name", "name", "address", "lat", "lng", "is_active", "updated_at"]
    list_filter = ["is_active", "partner_name"]
    search_fields = ["partner_name", "name", "address", "external_ref"]
    list_editable = ["is_active"]
