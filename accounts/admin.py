from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from simple_history.admin import SimpleHistoryAdmin

from accounts.models import Device, PhoneOTP, Rating, User, Wallet, format_e164, phone_index


@admin.register(User)
class UserAdmin(SimpleHistoryAdmin, DjangoUserAdmin):
    list_display = ["display_name", "short_id", "masked_phone", "status", "is_staff",
                    "rating_count", "completed_sales", "created_at"]
    list_filter = ["status", "is_staff", "is_superuser", "groups", "created_at"]
    search_fields = ["display_name", "id"]
    ordering = ["-created_at"]
    readonly_fields = ["id", "phone_number", "email", "created_at", "updated_at", "last_login",
                       "rating_count", "rating_total", "completed_sales"]
    fieldsets = [
        (None, {"fields": ["id", "phone_number", "email", "display_name", "avatar"]}),
        ("Status", {"fields": ["status", "status_reason", "is_active"]}),
        ("Staff", {"fields": ["is_staff", "is_superuser", "groups", "password"]}),
        ("Reputation", {"fields": ["rating_count", "rating_total", "completed_sales"]}),
        ("Dates", {"fields": ["created_at", "updated_at", "last_login"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["phone_index", "password1",
                                                            "password2"]})]
    filter_horizontal = ["groups"]

    @admin.display(description="id")
    def short_id(self, obj):
        return str(obj.id)[:8]

    @admin.display(description="phone")
    def masked_phone(self, obj):
        return f"…{obj.phone_number[-4:]}" if obj.phone_number else ""

    def get_search_results(self, request, queryset, search_term):
        """Phone numbers are encrypted: an exact number is found through its blind index."""
        results, may_dup = super().get_search_results(request, queryset, search_term)
        try:
            index = phone_index(format_e164(search_term))
        except ValueError:
            return results, may_dup
        return results | queryset.filter(phone_index=index), may_dup

    def save_model(self, request, obj, form, change):
        if not change and obj.phone_index and not obj.phone_number:
            # The add form asks for the number in the username field: store it properly.
            e164 = format_e164(obj.phone_index)
            obj.phone_number, obj.phone_index = e164, phone_index(e164)
        super().save_model(request, obj, form, change)


@admin.register(PhoneOTP)
class PhoneOTPAdmin(admin.ModelAdmin):
    list_display = ["id", "attempts", "expires_at", "consumed_at", "created_at"]
    list_filter = ["created_at"]
    readonly_fields = [f.name for f in PhoneOTP._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(Wallet)
class WalletAdmin(SimpleHistoryAdmin):
    list_display = ["user", "status", "stripe_account_id", "payouts_enabled", "updated_at"]
    list_filter = ["status", "payouts_enabled", "charges_enabled"]
    search_fields = ["stripe_account_id", "user__display_name"]
    readonly_fields = ["stripe_account_id", "charges_enabled", "payouts_enabled",
                       "details_submitted", "created_at", "updated_at"]
    raw_id_fields = ["user"]


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ["user", "platform", "created_at", "last_seen_at"]
    list_filter = ["platform"]
    search_fields = ["user__display_name"]
    raw_id_fields = ["user"]
    exclude = ["token"]
    readonly_fields = ["token_index"]


@admin.register(Rating)
class RatingAdmin(admin.ModelAdmin):
    list_display = ["ratee", "rater", "score", "created_at"]
    list_filter = ["score", "created_at"]
    search_fields = ["ratee__display_name", "rater__display_name", "comment"]
    raw_id_fields = ["transaction", "rater", "ratee"]
