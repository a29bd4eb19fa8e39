from django.contrib import admin, messages
from simple_history.admin import SimpleHistoryAdmin

from escrow.models import Dispute, LedgerEntry, PaymentEvent, Transaction

MONEY_FIELDS = ["amount_cents", "fee_cents", "escrow_fee_cents", "total_charged_cents",
                "seller_payout_cents"]


class LedgerInline(admin.TabularInline):
    model = LedgerEntry
    extra = 0
    can_delete = False
    fields = ["created_at", "kind", "account", "user", "amount_cents"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Transaction)
class TransactionAdmin(SimpleHistoryAdmin):
    list_display = ["id", "listing", "buyer", "seller", "amount_cents", "status",
                    "payout_status", "created_at"]
    list_filter = ["status", "payout_status", "source", "payment_backend", "created_at"]
    search_fields = ["id", "listing__title", "payment_intent_id", "buyer__display_name",
                     "seller__display_name"]
    date_hierarchy = "created_at"
    raw_id_fields = ["listing", "buyer", "seller", "winning_bid", "meetup_safe_zone",
                     "meetup_proposed_by"]
    readonly_fields = [*MONEY_FIELDS, "status", "payment_intent_id", "paid_at", "verified_at",
                       "released_at", "refunded_at", "cancelled_at", "payout_status",
                       "payout_transfer_id", "refund_id", "qr_expires_at", "qr_used_at",
                       "created_at", "updated_at"]
    exclude = ["qr_code_hash"]
    inlines = [LedgerInline]


@admin.register(Dispute)
class DisputeAdmin(SimpleHistoryAdmin):
    list_display = ["transaction", "opened_by", "status", "created_at", "resolved_at"]
    list_filter = ["status", "created_at"]
    search_fields = ["transaction__id", "reason"]
    raw_id_fields = ["transaction", "opened_by", "resolved_by"]
    readonly_fields = ["status", "resolved_by", "resolved_at", "created_at"]
    actions = ["resolve_refund", "resolve_release"]

    def _resolve(self, request, queryset, service, verb: str) -> None:
        """Each dispute through the service (which moves the money and the books); the
        change is recorded in the admin log and in the dispute's history."""
        from escrow.payments import GatewayError

        done = 0
        for dispute in queryset.filter(status=Dispute.Status.OPEN):
            try:
                result = service(dispute_id=dispute.pk, staff_user=request.user,
                                 note=f"{verb} by {request.user} in admin")
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
class LedgerEntryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "transaction", "kind", "account", "user", "amount_cents"]
    list_filter = ["account", "kind", "created_at"]
    search_fields = ["transaction__id", "journal_id"]
    readonly_fields = [f.name for f in LedgerEntry._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PaymentEvent)
class PaymentEventAdmin(admin.ModelAdmin):
    list_display = ["event_id", "provider", "type", "processed_at", "created_at"]
    list_filter = ["provider", "type"]
    search_fields = ["event_id"]
    readonly_fields = [f.name for f in PaymentEvent._meta.fields]
