from django import forms
from django.contrib import admin
from django.contrib.auth import password_validation
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from simple_history.admin import SimpleHistoryAdmin

from accounts.models import Device, PhoneOTP, Rating, User, Wallet, format_e164, phone_index


class StaffUserCreationForm(forms.ModelForm):
    """Add form: a phone number (the login) and a password, instead of a username."""

    phone_number = forms.CharField(max_length=32, help_text="E.164, e.g. +14165550100")
    password1 = forms.CharField(label="Password", widget=forms.PasswordInput, strip=False)
    password2 = forms.CharField(label="Password again", widget=forms.PasswordInput,
                                strip=False)

    class Meta:
        model = User
        fields = ["display_name"]

    def clean_phone_number(self):
        try:
            e164 = format_e164(self.cleaned_data["phone_number"])
        except ValueError:
            raise forms.ValidationError("Enter a phone number in E.164 form.") from None
        if User.objects.filter(phone_index=phone_index(e164)).exists():
            raise forms.ValidationError("A user with this phone number exists.")
        return e164

    def clean(self):
        data = super().clean()
        if data.get("password1") != data.get("password2"):
            self.add_error("password2", "The two passwords differ.")
        elif data.get("password1"):
            password_validation.validate_password(data["password1"])
        return data

    def save(self, commit=True):
        user = super().save(commit=False)
        user.phone_number = self.cleaned_data["phone_number"]
        user.phone_index = phone_index(user.phone_number)
        user.set_password(self.cleaned_data["password1"])
        if commit:
            user.save()
        return user


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
    add_form = StaffUserCreationForm
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["phone_number", "display_name",
                                                            "password1", "password2"]})]
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
