from django.contrib import admin

from discovery.models import SavedSearch


@admin.register(SavedSearch)
class SavedSearchAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "q", "category", "notify", "created_at")
    list_filter = ("notify", "category")
    search_fields = ("name", "q")
    raw_id_fields = ("user",)
    readonly_fields = ("q_websearch", "anchor", "created_at", "updated_at")
    exclude = ("q_tsquery", "q_lexemes")
