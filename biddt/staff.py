"""Staff console helpers shared by the apps' admin modules.

Admin actions take the staff member's reason from a text box next to the action menu
(`ReasonActionForm`), call one service per object and report what happened; the services
write the audit entries (biddt.audit).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm


class ReasonActionForm(ActionForm):
    reason = forms.CharField(
        required=False, max_length=255, label="Reason",
        widget=forms.TextInput(attrs={"placeholder": "reason (kept in the audit log)",
                                      "size": 40}),
    )


def action_reason(request) -> str:
    return (request.POST.get("reason") or "").strip()


def require_reason(modeladmin, request) -> str | None:
    """The reason typed next to the action, or None after telling the user it's missing."""
    reason = action_reason(request)
    if not reason:
        modeladmin.message_user(request, "Type a reason next to the action: it goes to the "
                                "audit log and, where relevant, to the user.", messages.ERROR)
        return None
    return reason


class ReadOnlyInline(admin.TabularInline):
    """An inline that shows rows and never adds, edits or deletes them (history, money)."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields or []

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ReadOnlyAdminMixin:
    """A model admin for records nobody edits by hand (ledger, audit log, provider events)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
