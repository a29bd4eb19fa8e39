from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from simple_history.admin import SimpleHistoryAdmin

from biddt.staff import (
    ReadOnlyAdminMixin,
    ReadOnlyInline,
    ReasonActionForm,
    action_reason,
    require_reason,
)
from escrow.models import Dispute, LedgerEntry, PaymentEvent, Transaction

MONEY_FIELDS = ["amount_cents", "fee_cents", "escrow_fee_cents", "total_charged_cents",
                "seller_payout_cents"]


class ReadOnlyPageMixin:
    """Every field is read-only (changes go through the actions): no save buttons."""

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "show_save": False,
                         "show_save_and_continue": False, "show_save_and_add_another": False,
                         "show_delete": False}
        return super().change_view(request, object_id, form_url, extra_context)


class LedgerInline(ReadOnlyInline):
    model = LedgerEntry
    fields = ["created_at", "kind", "account", "user", "amount_cents"]


class DisputeInline(ReadOnlyInline):
    model = Dispute
    fk_name = "transaction"
    fields = ["created_at", "opened_by", "reason", "status", "resolved_by", "resolved_at"]
    show_change_link = True


def _has_open_dispute(txn) -> bool:
    return txn is not None and txn.disputes.filter(status=Dispute.Status.OPEN).exists()


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyPageMixin, SimpleHistoryAdmin):
    list_display = ["id", "listing", "buyer", "seller", "amount_cents", "status",
                    "payout_status", "created_at"]
    list_filter = ["status", "payout_status", "source", "payment_backend", "created_at"]
    search_fields = ["id", "listing__title", "payment_intent_id", "buyer__display_name",
                     "seller__display_name"]
    date_hierarchy = "created_at"
    list_select_related = ["listing", "buyer", "seller"]
    # Everything is read-only: money and states move only through escrow.services.
    readonly_fields = ["listing", "buyer", "seller", "winning_bid", "source", "currency",
                       *MONEY_FIELDS, "status", "payment_backend", "payment_intent_id",
                       "payment_due_at", "paid_at", "verified_at", "released_at",
                       "refunded_at", "cancelled_at", "meetup_safe_zone", "meetup_at",
                       "meetup_proposed_by", "payout_status", "payout_transfer_id",
                       "refund_id", "qr_expires_at", "qr_used_at", "reminders_sent",
                       "created_at", "updated_at"]
    exclude = ["qr_code_hash"]
    inlines = [DisputeInline, LedgerInline]
    # Shown only while a dispute is open; the chat app (a higher layer) adds the buyer-seller
    # message thread here (chat/admin.py).
    open_dispute_inlines: list = []
    action_form = ReasonActionForm
    actions = ["cancel_unpaid", "resend_payout"]

    def get_inlines(self, request, obj):
        if _has_open_dispute(obj):
            return [*self.inlines, *self.open_dispute_inlines]
        return self.inlines

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Cancel the unpaid sale (listing back to unsold)",
                  permissions=["change"])
    def cancel_unpaid(self, request, queryset):
        from escrow.services import transaction_cancel_unpaid

        reason = require_reason(self, request)
        if reason is None:
            return
        done = sum(transaction_cancel_unpaid(transaction_id=pk, staff_user=request.user,
                                             reason=reason)
                   for pk in queryset.filter(status=Transaction.Status.PENDING_PAYMENT)
                   .values_list("pk", flat=True))
        skipped = queryset.count() - done
        self.message_user(request, f"{done} sale(s) cancelled"
                          + (f"; {skipped} skipped (not pending payment)." if skipped else "."),
                          messages.SUCCESS if done else messages.WARNING)

    @admin.action(description="Resend the payout to the seller", permissions=["change"])
    def resend_payout(self, request, queryset):
        from escrow.services import payout_resend

        done = sum(payout_resend(transaction_id=pk, staff_user=request.user,
                                 reason=action_reason(request))
                   for pk in queryset.values_list("pk", flat=True))
        skipped = queryset.count() - done
        self.message_user(request, f"{done} payout(s) queued"
                          + (f"; {skipped} skipped (not released, or already paid)."
                             if skipped else "."),
                          messages.SUCCESS if done else messages.WARNING)


@admin.register(Dispute)
class DisputeAdmin(ReadOnlyPageMixin, SimpleHistoryAdmin):
    list_display = ["transaction", "opened_by", "status", "amount", "created_at",
                    "resolved_at"]
    list_filter = ["status", "created_at"]
    search_fields = ["transaction__id", "reason", "transaction__listing__title"]
    list_select_related = ["transaction", "opened_by"]
    fields = ["transaction_link", "opened_by", "reason", "status", "amount",
              "resolution_note", "resolved_by", "resolved_at", "created_at", "thread"]
    readonly_fields = fields
    action_form = ReasonActionForm
    actions = ["resolve_refund", "resolve_release"]

    @staticmethod
    def thread_rows(transaction_id) -> list:
        """(created_at, sender, content) of the transaction's messages, oldest first. The chat
        app (a higher layer) provides them (chat/admin.py); without it the thread is empty."""
        return []

    def has_add_permission(self, request):
        return False  # disputes are opened by the buyer or seller

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="amount (cents)")
    def amount(self, obj):
        return obj.transaction.amount_cents

    @admin.display(description="transaction")
    def transaction_link(self, obj):
        url = reverse("admin:escrow_transaction_change", args=[obj.transaction_id])
        return format_html('<a href="{}">{}</a>', url, obj.transaction)

    @admin.display(description="message thread")
    def thread(self, obj):
        if obj.status != Dispute.Status.OPEN:
            return "(shown while the dispute is open)"
        rows = self.thread_rows(obj.transaction_id)
        return format_html(
            '<table class="dispute-thread">{}</table>',
            format_html_join("", "<tr><td>{}</td><td><b>{}</b></td><td>{}</td></tr>",
                             ((created_at.strftime("%Y-%m-%d %H:%M"), sender or "system",
                               content) for created_at, sender, content in rows)))

    def _resolve(self, request, queryset, service, verb: str) -> None:
        """Each open dispute through the service, which moves the money and the books and
        writes the audit entry; the admin's own log gets a line too."""
        from escrow.payments import GatewayError

        note = action_reason(request) or f"{verb} by {request.user} in the staff console"
        done = 0
        for dispute in queryset.filter(status=Dispute.Status.OPEN):
            try:
                result = service(dispute_id=dispute.pk, staff_user=request.user, note=note)
            except GatewayError as exc:
                self.message_user(request, f"{dispute}: provider error, try again ({exc})",
                                  messages.ERROR)
                continue
            if result.status != Dispute.Status.OPEN:
                self.log_change(request, result, f"Dispute resolved: {verb}")
                done += 1
        self.message_user(request, f"{done} dispute(s) resolved: {verb}.", messages.SUCCESS)

    @admin.action(description="Resolve: refund the buyer", permissions=["change"])
    def resolve_refund(self, request, queryset):
        from escrow.services import dispute_resolve_refund

        self._resolve(request, queryset, dispute_resolve_refund, "refunded")

    @admin.action(description="Resolve: release to the seller", permissions=["change"])
    def resolve_release(self, request, queryset):
        from escrow.services import dispute_resolve_release

        self._resolve(request, queryset, dispute_resolve_release, "released")


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "transaction", "kind", "account", "user", "amount_cents"]
    list_filter = ["account", "kind", "created_at"]
    search_fields = ["transaction__id", "journal_id"]
    readonly_fields = [f.name for f in LedgerEntry._meta.fields]


@admin.register(PaymentEvent)
class PaymentEventAdmin(admin.ModelAdmin):
    list_display = ["event_id", "provider", "type", "processed_at", "created_at"]
    list_filter = ["provider", "type"]
    search_fields = ["event_id"]
    readonly_fields = [f.name for f in PaymentEvent._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
