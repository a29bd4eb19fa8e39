"""The console's "Close account": the same service as `DELETE /v1/users/me`, audited.

The user admin is the accounts app's, extended here (this app sits above every other, the
closure's service reaches them all), with an action that asks for a reason and a
confirmation page before it erases anything."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse

from accounts.admin import UserAdmin as AccountsUserAdmin
from accounts.models import User
from accounts.roles import is_admin_role
from biddt.errors import Conflict
from biddt.staff import require_reason
from privacy.services import account_delete

admin.site.unregister(User)


@admin.register(User)
class UserAdmin(AccountsUserAdmin):
    actions = [*AccountsUserAdmin.actions, "close_accounts"]

    @admin.action(description="Close account (erase personal data; asks to confirm)",
                  permissions=["close"])
    def close_accounts(self, request, queryset):
        reason = require_reason(self, request)
        if reason is None:
            return None
        if request.POST.get("confirm") != "yes":
            return TemplateResponse(request, "admin/privacy/close_accounts_confirmation.html", {
                **self.admin_site.each_context(request),
                "title": "Close these accounts?",
                "opts": self.model._meta,
                "users": list(queryset),
                "reason": reason,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            })
        closed = 0
        for user in queryset:
            if user.pk == request.user.pk:
                self.message_user(request, "You can't close your own account from here.",
                                  messages.WARNING)
                continue
            try:
                closed += account_delete(user_id=user.pk, staff_user=request.user,
                                         reason=reason)
            except Conflict as exc:
                self.message_user(request, f"{user}: not closed. {exc.detail}",
                                  messages.WARNING)
        self.message_user(request, f"{closed} account(s) closed.", messages.SUCCESS)
        return None

    def has_close_permission(self, request):
        return is_admin_role(request.user)
