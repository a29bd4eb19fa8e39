"""Staff console helpers shared by the apps' admin modules.

Admin actions take the staff member's reason from a text box next to the action menu
(`ReasonActionForm`), call one service per object and report what happened; the services
write the audit entries (biddt.audit).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from rest_framework.exceptions import APIException, ValidationError

from biddt.money import money_text


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


# --- money ------------------------------------------------------------------------------------

def money_display(field: str, *, description: str | None = None, currency_field="currency"):
    """A list/readonly column showing an integer-cents field as money (`$100.00 CAD`)."""
    def show(self, obj):
        currency = obj
        for part in currency_field.split("__"):  # `listing__currency` follows the relation
            currency = getattr(currency, part, None)
        return money_text(getattr(obj, field), currency or "CAD")

    show.short_description = description or field.removesuffix("_cents").replace("_", " ")
    show.admin_order_field = field
    show.__name__ = f"{field}_money"
    return show


# --- decisions on an object's own page --------------------------------------------------------

class DecisionForm(forms.Form):
    """Every decision asks for a note: it goes to the audit log (and, where relevant, the
    people concerned)."""

    note = forms.CharField(
        label="Note (required, kept in the audit log)", max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 70}),
        error_messages={"required": "Write a note: it goes to the audit log."})

    def clean_note(self):
        note = self.cleaned_data["note"].strip()
        if not note:
            raise forms.ValidationError("Write a note: it goes to the audit log.")
        return note


@dataclass(frozen=True)
class Decision:
    """A button on an object's page, behind a confirmation page that restates what will
    happen (`restate`) and asks for a note; `run` calls the service and returns the message
    shown afterwards. `available(obj)` hides the button when the decision doesn't apply."""

    key: str
    label: str
    restate: Callable[[Any, dict], list[str]]
    run: Callable[[Any, Any, dict], str]
    available: Callable[[Any], bool] = lambda obj: True
    form_class: type[forms.Form] = DecisionForm
    danger: bool = False
    permission: str = "change"
    # Fields beyond the note (an amount): the page first previews the money movement with
    # them, then confirms with those values fixed.
    needs_preview: bool = False


class DecisionFailed(Exception):
    """A decision that could not be carried out (e.g. the payment provider refused or was
    unreachable); nothing changed, the message says what to do."""


class DecisionAdminMixin:
    """Decision buttons on the change page (`decisions`), each at
    `<id>/decide/<key>/`: GET shows the confirmation page, POST with a valid form (note, and
    whatever the decision's form adds) runs it and goes back to the object's page.
    `console_context(request, obj)` adds what the page shows to decide (e.g. a timeline)."""

    decisions: tuple[Decision, ...] = ()
    change_form_template = "admin/console/change_form.html"

    def console_context(self, request, obj) -> dict:
        return {}

    def _decision(self, key: str) -> Decision | None:
        return next((d for d in self.decisions if d.key == key), None)

    def _may_decide(self, request, obj, decision: Decision) -> bool:
        perm = f"{self.opts.app_label}.{decision.permission}_{self.opts.model_name}"
        return request.user.has_perm(perm) and decision.available(obj)

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path("<path:object_id>/decide/<slug:key>/",
                 self.admin_site.admin_view(self.decide_view),
                 name=f"{info[0]}_{info[1]}_decide"),
            *super().get_urls(),
        ]

    def decision_buttons(self, request, obj) -> list[dict]:
        name = f"admin:{self.opts.app_label}_{self.opts.model_name}_decide"
        return [{"key": d.key, "label": d.label, "danger": d.danger,
                 "url": reverse(name, args=[obj.pk, d.key])}
                for d in self.decisions if self._may_decide(request, obj, d)]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if obj is not None and self.has_view_or_change_permission(request, obj):
            extra["decisions"] = self.decision_buttons(request, obj)
            extra.update(self.console_context(request, obj))
        return super().change_view(request, object_id, form_url, extra)

    def decide_view(self, request, object_id, key):
        obj = self.get_object(request, object_id)
        decision = self._decision(key)
        if obj is None or decision is None:
            raise Http404("No such object or decision.")
        change_url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change",
                             args=[obj.pk])
        if not self._may_decide(request, obj, decision):
            if not request.user.has_perm(
                    f"{self.opts.app_label}.{decision.permission}_{self.opts.model_name}"):
                raise PermissionDenied
            self.message_user(request, f"“{decision.label}” no longer applies to {obj}.",
                              messages.WARNING)
            return HttpResponseRedirect(change_url)
        form = decision.form_class(request.POST or None)
        confirmed = request.method == "POST" and request.POST.get("confirm") == "yes" and (
            not decision.needs_preview or request.POST.get("previewed") == "yes")
        if request.method == "POST" and form.is_valid():
            if confirmed:
                try:
                    text = decision.run(request, obj, form.cleaned_data)
                except ValidationError as exc:
                    form.add_error(None, _api_error_text(exc))
                except APIException as exc:
                    form.add_error(None, str(exc.detail))
                except DecisionFailed as exc:
                    form.add_error(None, str(exc))
                else:
                    self.log_change(request, obj, f"{decision.label}: {form.cleaned_data}")
                    self.message_user(request, text, messages.SUCCESS)
                    return HttpResponseRedirect(change_url)
        try:
            restated = decision.restate(obj, form.cleaned_data if form.is_bound
                                        and form.is_valid() else {})
        except ValidationError as exc:
            form.add_error(None, _api_error_text(exc))
            restated = []
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts, "object": obj, "decision": decision, "form": form,
            "restated": restated, "change_url": change_url,
            "title": f"{decision.label}: are you sure?",
            "ready": form.is_bound and form.is_valid() and not form.non_field_errors(),
        }
        return TemplateResponse(request, "admin/console/confirm.html", context)


def _api_error_text(exc) -> str:
    detail = exc.detail
    if isinstance(detail, dict):
        return " ".join(str(m) for msgs in detail.values() for m in msgs)
    if isinstance(detail, list):
        return " ".join(str(m) for m in detail)
    return str(detail)
