from django import forms
from django.contrib import admin, messages
from django.contrib.auth import password_validation
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from rest_framework_simplejwt.token_blacklist.admin import BlacklistedTokenAdmin
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken
from simple_history.admin import SimpleHistoryAdmin

from accounts.models import (
    Device,
    PhoneOTP,
    Rating,
    User,
    Wallet,
    format_e164,
    phone_index,
    phone_last4_index,
)
from accounts.roles import is_admin_role
from accounts.services import user_reinstate, user_suspend
from biddt.audit import audit_record
from biddt.staff import (
    Decision,
    DecisionAdminMixin,
    DecisionFailed,
    ReadOnlyAdminMixin,
    ReasonActionForm,
    action_reason,
    require_reason,
)

# Role fields: only the `admin` role changes them (support sees them read-only).
ROLE_FIELDS = ["is_staff", "is_superuser", "groups"]


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


def _restate_suspend(user, data) -> list[str]:
    listings = user.listings.filter(status="active").count()
    return [f"Suspend {user}: they can't log in, bid, list or write again until reinstated; "
            "their open sockets are closed.",
            f"Their {listings} active listing(s) are paused (hidden, no bids) — not removed.",
            "No money moves: sales already in escrow go on as usual."]


def _run_suspend(request, user, data) -> str:
    if user.pk == request.user.pk or (user.is_staff and not is_admin_role(request.user)):
        raise DecisionFailed("Staff accounts are suspended by an admin (and not by "
                             "themselves).")
    done = user_suspend(user_id=user.pk, staff_user=request.user, reason=data["note"])
    return f"{user} suspended." if done else f"{user} was already suspended."


def _restate_reinstate(user, data) -> list[str]:
    return [f"Reinstate {user}: they can log in and act again.",
            "Their paused listings show and take bids again (one whose end passed closes at "
            "the next sweep)."]


def _run_reinstate(request, user, data) -> str:
    done = user_reinstate(user_id=user.pk, staff_user=request.user, reason=data["note"])
    return f"{user} reinstated." if done else f"{user} was not suspended."


USER_DECISIONS = (
    Decision(key="suspend", label="Suspend", restate=_restate_suspend, run=_run_suspend,
             danger=True, available=lambda u: u.status == User.Status.ACTIVE),
    Decision(key="reinstate", label="Reinstate", restate=_restate_reinstate,
             run=_run_reinstate, available=lambda u: u.status == User.Status.SUSPENDED),
)


def has_money_records(user) -> bool:
    """Sales, purchases, ledger rows or a wallet: such a user is never deleted from the
    console (the books and the provider's records point at them)."""
    # Through the reverse relations (ledger rows always belong to a sale): no import of
    # the escrow app, which sits above accounts.
    return (user.purchases.exists() or user.sales.exists()
            or Wallet.objects.filter(user=user).exists())


@admin.register(User)
class UserAdmin(DecisionAdminMixin, SimpleHistoryAdmin, DjangoUserAdmin):
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
    action_form = ReasonActionForm
    actions = ["suspend_users", "reinstate_users", "unlock_staff_login"]
    decisions = USER_DECISIONS

    def has_delete_permission(self, request, obj=None):
        """Only the admin role deletes, and never a user with money records."""
        if not is_admin_role(request.user):
            return False
        if obj is not None and has_money_records(obj):
            return False
        return super().has_delete_permission(request, obj)

    # --- permissions: support moderates through actions; only admin edits accounts/roles ---

    def has_change_permission(self, request, obj=None):
        """Support may run the moderation actions (change on the list) but not edit an
        account's form: the change page is read-only for them and a POST is 403."""
        if obj is not None and not is_admin_role(request.user):
            return False
        return super().has_change_permission(request, obj)

    def get_readonly_fields(self, request, obj=None):
        fields = [*self.readonly_fields, "status", "status_reason"]  # actions only
        if not is_admin_role(request.user):
            fields += ROLE_FIELDS
        return fields

    def save_model(self, request, obj, form, change):
        self._role_before = self._roles(User.objects.filter(pk=obj.pk).first()) if change \
            else None
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        after = self._roles(form.instance)
        before = getattr(self, "_role_before", None)
        if before != after and (change or after["is_staff"]):
            audit_record(actor=request.user, action="user.role_change", obj=form.instance,
                         before=before, after=after, reason="edited in the staff console")

    @staticmethod
    def _roles(user):
        if user is None:
            return None
        return {"is_staff": user.is_staff, "is_superuser": user.is_superuser,
                "groups": sorted(user.groups.values_list("name", flat=True))}

    # --- actions -------------------------------------------------------------------------------

    @admin.action(description="Suspend (pause listings, close sockets)", permissions=["change"])
    def suspend_users(self, request, queryset):
        from accounts.services import user_suspend

        reason = require_reason(self, request)
        if reason is None:
            return
        done = 0
        for user in queryset:
            if user.pk == request.user.pk or (user.is_staff and not is_admin_role(request.user)):
                self.message_user(request, f"{user}: staff accounts are suspended by an admin "
                                  "(and not by themselves).", messages.WARNING)
                continue
            done += user_suspend(user_id=user.pk, staff_user=request.user, reason=reason)
        self.message_user(request, f"{done} user(s) suspended.", messages.SUCCESS)

    @admin.action(description="Reinstate (un-pause listings)", permissions=["change"])
    def reinstate_users(self, request, queryset):
        from accounts.services import user_reinstate

        reason = action_reason(request)
        done = sum(user_reinstate(user_id=u.pk, staff_user=request.user, reason=reason)
                   for u in queryset)
        self.message_user(request, f"{done} user(s) reinstated.", messages.SUCCESS)

    @admin.action(description="Unlock the staff login (after too many wrong passwords)",
                  permissions=["unlock"])
    def unlock_staff_login(self, request, queryset):
        from accounts.services import staff_login_unlock

        reason = action_reason(request)
        cleared = sum(staff_login_unlock(user_id=u.pk, staff_user=request.user, reason=reason)
                      > 0 for u in queryset)
        self.message_user(request, f"{cleared} login(s) unlocked.", messages.SUCCESS)

    def has_unlock_permission(self, request):
        return is_admin_role(request.user)

    @admin.display(description="id")
    def short_id(self, obj):
        return str(obj.id)[:8]

    @admin.display(description="phone")
    def masked_phone(self, obj):
        return f"…{obj.phone_number[-4:]}" if obj.phone_number else ""

    def get_search_results(self, request, queryset, search_term):
        """Phone numbers are encrypted: an exact number is found through its blind index,
        the last four digits (`0142`, `…0142`) through their own keyed index."""
        results, may_dup = super().get_search_results(request, queryset, search_term)
        last4 = search_term.strip().lstrip("…*. ")
        if len(last4) == 4 and last4.isdigit():
            return results | queryset.filter(phone_last4_index=phone_last4_index(last4)), \
                may_dup
        try:
            index = phone_index(format_e164(search_term))
        except ValueError:
            return results, may_dup
        return results | queryset.filter(phone_index=index), may_dup



@admin.register(PhoneOTP)
class PhoneOTPAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "attempts", "expires_at", "consumed_at", "created_at"]
    list_filter = ["created_at"]
    readonly_fields = [f.name for f in PhoneOTP._meta.fields]


# simplejwt's own admin offers Add (and Delete, which would un-revoke a token): read-only.
admin.site.unregister(BlacklistedToken)


@admin.register(BlacklistedToken)
class ReadOnlyBlacklistedTokenAdmin(ReadOnlyAdminMixin, BlacklistedTokenAdmin):
    pass


@admin.register(Wallet)
class WalletAdmin(SimpleHistoryAdmin):
    list_display = ["user", "status", "stripe_account_id", "payouts_enabled", "updated_at"]
    list_filter = ["status", "payouts_enabled", "charges_enabled"]
    search_fields = ["stripe_account_id", "user__display_name"]
    # The wallet mirrors the provider's account: nothing here is edited by hand.
    readonly_fields = ["user", "status", "stripe_account_id", "charges_enabled",
                       "payouts_enabled", "details_submitted", "created_at", "updated_at"]
    raw_id_fields = ["user"]

    def has_add_permission(self, request):
        return False  # wallets are created by the seller's onboarding (escrow.wallet_create)


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
