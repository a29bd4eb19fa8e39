"""The staff console for sales: transactions and disputes decided on their own pages.

Each page shows what is needed to decide (escrow/console.py: the money at a glance, the
parties with their history, one timeline) and carries the decisions as buttons; each button
leads to a confirmation page that restates the money movement and requires a note, then
calls the escrow service, which moves the money and the books and writes the audit entry.
"""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from biddt.money import money_text
from biddt.staff import (
    Decision,
    DecisionAdminMixin,
    DecisionFailed,
    DecisionForm,
    ReadOnlyAdminMixin,
    ReadOnlyInline,
    ReasonActionForm,
    action_reason,
    money_display,
    require_reason,
)
from escrow.admin_stripe import StripeViewAdminMixin
from escrow.console import console_context_for
from escrow.models import Dispute, LedgerEntry, PaymentEvent, Transaction
from escrow.payments import GatewayError
from escrow.services import (
    ResendOutcome,
    dispute_resolve_refund,
    dispute_resolve_release,
    dispute_resolve_split,
    payout_resend,
    transaction_cancel_unpaid,
)
from escrow.services.dispute import DisputeBusy, dispute_split_amounts

MONEY_FIELDS = ["amount_cents", "fee_cents", "escrow_fee_cents", "total_charged_cents",
                "seller_payout_cents", "refunded_cents"]

RESEND_MESSAGES = {
    ResendOutcome.QUEUED: "payout queued",
    ResendOutcome.WAITING_WALLET: "nothing queued: waiting for the seller's wallet (the "
                                  "payout starts by itself once it is active)",
    ResendOutcome.ALREADY_PAID: "nothing queued: already paid",
    ResendOutcome.NOT_RELEASED: "nothing queued: the money is not released",
}


def resend_message(txn, outcome: ResendOutcome) -> str:
    return f"{txn}: {RESEND_MESSAGES[outcome]}."


class ReadOnlyPageMixin:
    """Every field is read-only (changes go through the decisions): no save buttons."""

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "show_save": False,
                         "show_save_and_continue": False, "show_save_and_add_another": False,
                         "show_delete": False}
        return super().change_view(request, object_id, form_url, extra_context)


class LedgerInline(ReadOnlyInline):
    model = LedgerEntry
    fields = ["created_at", "kind", "account", "user", "amount"]
    readonly_fields = fields

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    amount = money_display("amount_cents", description="amount")


class DisputeInline(ReadOnlyInline):
    model = Dispute
    fk_name = "transaction"
    fields = ["created_at", "opened_by", "reason", "status", "resolved_by", "resolved_at"]
    show_change_link = True


def _has_open_dispute(txn) -> bool:
    return txn is not None and txn.disputes.filter(status=Dispute.Status.OPEN).exists()


# --- dispute decisions ------------------------------------------------------------------------

def _open_dispute(obj) -> Dispute | None:
    """The open dispute of a dispute's or transaction's page."""
    if isinstance(obj, Dispute):
        return obj if obj.status == Dispute.Status.OPEN else None
    return obj.disputes.filter(status=Dispute.Status.OPEN).first()


NO_LONGER_OPEN = "The dispute is no longer open: nothing will happen."


def _decidable(obj) -> bool:
    dispute = _open_dispute(obj)
    return dispute is not None and dispute.transaction.status == Transaction.Status.DISPUTED


def _restate_refund(obj, data) -> list[str]:
    if _open_dispute(obj) is None:
        return [NO_LONGER_OPEN]
    txn = _open_dispute(obj).transaction
    c = txn.currency
    return [f"Refund {money_text(txn.total_charged_cents, c)} to the buyer, {txn.buyer} "
            f"(the whole payment, through the payment provider).",
            f"The seller, {txn.seller}, receives nothing; the platform keeps no fee.",
            "The dispute is closed as “refunded” and both parties are told."]


def _restate_release(obj, data) -> list[str]:
    if _open_dispute(obj) is None:
        return [NO_LONGER_OPEN]
    txn = _open_dispute(obj).transaction
    c = txn.currency
    return [f"Release {money_text(txn.total_charged_cents, c)} held in escrow to the seller, "
            f"{txn.seller}.",
            f"The platform keeps {money_text(txn.fee_cents, c)} commission and "
            f"{money_text(txn.escrow_fee_cents, c)} escrow fee; "
            f"{money_text(txn.seller_payout_cents, c)} is paid out to the seller.",
            f"The buyer, {txn.buyer}, gets nothing back. The dispute is closed as "
            "“released” and both parties are told."]


class SplitForm(DecisionForm):
    refund = forms.CharField(
        label="Refund to the buyer (dollars)", max_length=16,
        widget=forms.TextInput(attrs={"placeholder": "30.00", "size": 12}),
        help_text="The buyer gets this back; the rest is released to the seller, less the "
                  "usual fees.")
    field_order = ["refund", "note"]

    def clean_refund(self):
        raw = self.cleaned_data["refund"].replace("$", "").replace(",", "").strip()
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise forms.ValidationError("Enter an amount in dollars, e.g. 30.00.") from None
        if value != value.quantize(Decimal("0.01")) or value <= 0:
            raise forms.ValidationError("Enter a positive amount with at most two decimals.")
        return int((value * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _restate_split(obj, data) -> list[str]:
    if _open_dispute(obj) is None:
        return [NO_LONGER_OPEN]
    txn = _open_dispute(obj).transaction
    c = txn.currency
    if "refund" not in data:
        return [f"{money_text(txn.total_charged_cents, c)} is held in escrow. Say how much "
                "goes back to the buyer; the rest is released to the seller, less fees "
                f"({money_text(txn.fee_cents + txn.escrow_fee_cents, c)})."]
    a = dispute_split_amounts(txn, data["refund"])
    share = a["refund_cents"] * 100 / txn.total_charged_cents
    return [f"Refund {money_text(a['refund_cents'], c)} to the buyer, {txn.buyer} "
            f"({share:.0f}% of the {money_text(txn.total_charged_cents, c)} held; a partial "
            "refund through the payment provider).",
            f"Release the rest, {money_text(a['released_cents'], c)}, to the seller, "
            f"{txn.seller}: the platform keeps {money_text(a['fee_cents'], c)} commission and "
            f"{money_text(a['escrow_fee_cents'], c)} escrow fee, and "
            f"{money_text(a['seller_payout_cents'], c)} is paid out to the seller.",
            "The dispute is closed as “split” and both parties are told."]


def _provider_call(service, **kwargs):
    try:
        return service(**kwargs)
    except GatewayError as exc:
        raise DecisionFailed(f"The payment provider refused or could not be reached ({exc});"
                             " nothing changed, try again.") from exc


def _run_refund(request, obj, data) -> str:
    d = _provider_call(dispute_resolve_refund, dispute_id=_open_dispute(obj).pk,
                       staff_user=request.user, note=data["note"])
    txn = d.transaction
    return (f"Dispute resolved: {money_text(txn.total_charged_cents, txn.currency)} refunded "
            "to the buyer." if d.status == Dispute.Status.REFUNDED
            else "The dispute was not resolved (its state changed meanwhile).")


def _run_release(request, obj, data) -> str:
    d = _provider_call(dispute_resolve_release, dispute_id=_open_dispute(obj).pk,
                       staff_user=request.user, note=data["note"])
    d.transaction.refresh_from_db()
    return ("Dispute resolved: released to the seller; payout "
            f"{money_text(d.transaction.seller_payout_cents, d.transaction.currency)} queued."
            if d.status == Dispute.Status.RELEASED
            else "The dispute was not resolved (its state changed meanwhile).")


def _run_split(request, obj, data) -> str:
    d = _provider_call(dispute_resolve_split, dispute_id=_open_dispute(obj).pk,
                       staff_user=request.user, refund_cents=data["refund"],
                       note=data["note"])
    txn = Transaction.objects.get(pk=d.transaction_id)
    c = txn.currency
    return (f"Dispute resolved with a split: {money_text(txn.refunded_cents, c)} refunded to "
            f"the buyer, {money_text(txn.seller_payout_cents, c)} to be paid out to the "
            "seller." if d.status == Dispute.Status.SPLIT
            else "The dispute was not resolved (its state changed meanwhile).")


DISPUTE_DECISIONS = (
    Decision(key="refund", label="Refund the buyer", restate=_restate_refund, run=_run_refund,
             available=_decidable),
    Decision(key="release", label="Release to the seller", restate=_restate_release,
             run=_run_release, available=_decidable),
    Decision(key="split", label="Split (partial refund, rest released)",
             restate=_restate_split, run=_run_split, available=_decidable,
             form_class=SplitForm, needs_preview=True),
)


# --- transaction decisions --------------------------------------------------------------------

def _restate_cancel(obj, data) -> list[str]:
    return [f"Cancel the unpaid sale of “{obj.listing.title}” "
            f"({money_text(obj.amount_cents, obj.currency)}); no money has moved.",
            "The listing goes back to unsold and both parties are told."]


def _run_cancel(request, obj, data) -> str:
    done = transaction_cancel_unpaid(transaction_id=obj.pk, staff_user=request.user,
                                     reason=data["note"])
    return "Sale cancelled." if done else "Nothing done: the sale is no longer unpaid."


def _restate_resend(obj, data) -> list[str]:
    lines = [f"Queue the payout of {money_text(obj.seller_payout_cents, obj.currency)} to "
             f"the seller, {obj.seller}, again (status: {obj.get_payout_status_display()})."]
    if obj.payout_failure_reason:
        lines.append(f"The provider's reason for the last failure: "
                     f"{obj.payout_failure_reason}")
    lines.append("The provider call has the same idempotency key: a payout is never made "
                 "twice.")
    return lines


def _run_resend(request, obj, data) -> str:
    outcome = payout_resend(transaction_id=obj.pk, staff_user=request.user,
                            reason=data["note"])
    return resend_message(obj, outcome)


TRANSACTION_DECISIONS = (
    *DISPUTE_DECISIONS,
    Decision(key="cancel", label="Cancel the unpaid sale", restate=_restate_cancel,
             run=_run_cancel, danger=True,
             available=lambda t: t.status == Transaction.Status.PENDING_PAYMENT),
    Decision(key="resend-payout", label="Resend the payout", restate=_restate_resend,
             run=_run_resend,
             available=lambda t: t.status == Transaction.Status.RELEASED
             and t.payout_status != Transaction.PayoutStatus.PAID),
)


class PayoutQueueFilter(admin.SimpleListFilter):
    title = "payout queue"
    parameter_name = "payout_queue"

    def lookups(self, request, model_admin):
        return [("failed", "Failed (the provider refused)"),
                ("waiting_wallet", "Waiting for the seller's wallet")]

    def queryset(self, request, queryset):
        if self.value() in ("failed", "waiting_wallet"):
            return queryset.filter(status=Transaction.Status.RELEASED,
                                   payout_status=self.value())
        return queryset


@admin.register(Transaction)
class TransactionAdmin(StripeViewAdminMixin, DecisionAdminMixin, ReadOnlyPageMixin,
                       SimpleHistoryAdmin):
    list_display = ["short_id", "listing_title", "buyer", "seller", "amount", "status",
                    "payout", "created_at"]
    list_display_links = ["short_id", "listing_title"]
    list_filter = ["status", "payout_status", PayoutQueueFilter, "source", "payment_backend",
                   "created_at"]
    search_fields = ["id", "listing__title", "payment_intent_id", "buyer__display_name",
                     "seller__display_name"]
    date_hierarchy = "created_at"
    list_select_related = ["listing", "buyer", "seller"]
    # Everything is read-only: money and states move only through escrow.services.
    readonly_fields = ["listing", "buyer", "seller", "winning_bid", "source", "currency",
                       "amount", "fee", "escrow_fee", "total_charged", "seller_payout",
                       "refunded", "status", "payment_backend", "payment_intent_id",
                       "payment_due_at", "paid_at", "verified_at", "released_at",
                       "refunded_at", "cancelled_at", "meetup_safe_zone", "meetup_at",
                       "meetup_proposed_by", "payout_status", "payout_failure_reason",
                       "payout_transfer_id", "refund_id", "qr_expires_at", "qr_used_at",
                       "reminders_sent", "created_at", "updated_at"]
    exclude = ["qr_code_hash", *MONEY_FIELDS]
    inlines = [DisputeInline, LedgerInline]
    # Shown only while a dispute is open; the chat app (a higher layer) adds the buyer-seller
    # message thread here (chat/admin.py).
    open_dispute_inlines: list = []
    action_form = ReasonActionForm
    actions = ["cancel_unpaid", "resend_payout"]
    decisions = TRANSACTION_DECISIONS

    amount = money_display("amount_cents", description="amount")
    fee = money_display("fee_cents", description="commission")
    escrow_fee = money_display("escrow_fee_cents")
    total_charged = money_display("total_charged_cents", description="buyer paid")
    seller_payout = money_display("seller_payout_cents")
    refunded = money_display("refunded_cents", description="refunded (split)")

    @admin.display(description="id", ordering="id")
    def short_id(self, obj):
        return str(obj.pk)[:8]

    @admin.display(description="listing", ordering="listing__title")
    def listing_title(self, obj):
        return obj.listing.title[:40]

    @admin.display(description="payout", ordering="payout_status")
    def payout(self, obj):
        """The payout's state; a failed one with the provider's reason."""
        text = obj.get_payout_status_display()
        if obj.payout_status == Transaction.PayoutStatus.FAILED and obj.payout_failure_reason:
            return format_html('{}: <span title="{}">{}</span>', text,
                               obj.payout_failure_reason, obj.payout_failure_reason[:60])
        return text

    def console_context(self, request, obj):
        return console_context_for(obj)

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
        """One message line per payout, saying what happened to it."""
        for txn in queryset:
            outcome = payout_resend(transaction_id=txn.pk, staff_user=request.user,
                                    reason=action_reason(request))
            self.message_user(request, resend_message(txn, outcome),
                              messages.SUCCESS if outcome == ResendOutcome.QUEUED
                              else messages.WARNING)


@admin.register(Dispute)
class DisputeAdmin(DecisionAdminMixin, ReadOnlyPageMixin, SimpleHistoryAdmin):
    list_display = ["short_id", "listing_title", "opened_by", "status", "amount", "created_at",
                    "resolved_at"]
    list_display_links = ["short_id", "listing_title"]
    list_filter = ["status", "created_at"]
    search_fields = ["transaction__id", "reason", "transaction__listing__title"]
    list_select_related = ["transaction", "transaction__listing", "opened_by"]
    fields = ["transaction_link", "opened_by", "reason", "status", "amount",
              "resolution_note", "resolved_by", "resolved_at", "created_at"]
    readonly_fields = fields
    action_form = ReasonActionForm
    actions = ["resolve_refund", "resolve_release"]
    decisions = DISPUTE_DECISIONS

    def has_add_permission(self, request):
        return False  # disputes are opened by the buyer or seller

    def has_delete_permission(self, request, obj=None):
        return False

    def console_context(self, request, obj):
        return console_context_for(obj.transaction)

    @admin.display(description="dispute", ordering="created_at")
    def short_id(self, obj):
        return str(obj.pk)[:8]

    @admin.display(description="listing", ordering="transaction__listing__title")
    def listing_title(self, obj):
        return obj.transaction.listing.title[:40]

    @admin.display(description="amount held", ordering="transaction__total_charged_cents")
    def amount(self, obj):
        return money_text(obj.transaction.total_charged_cents, obj.transaction.currency)

    @admin.display(description="transaction")
    def transaction_link(self, obj):
        url = reverse("admin:escrow_transaction_change", args=[obj.transaction_id])
        return format_html('<a href="{}">{}</a>', url, obj.transaction)

    def _resolve(self, request, queryset, service, verb: str) -> None:
        """Bulk: each open dispute through the service (the page's buttons are the usual
        way; this stays for clearing many). A reason is required, as on the pages."""
        note = require_reason(self, request)
        if note is None:
            return
        done = 0
        for dispute in queryset.filter(status=Dispute.Status.OPEN):
            try:
                result = service(dispute_id=dispute.pk, staff_user=request.user, note=note)
            except GatewayError as exc:
                self.message_user(request, f"{dispute}: provider error, try again ({exc})",
                                  messages.ERROR)
                continue
            except DisputeBusy as exc:
                self.message_user(request, f"{dispute}: {exc.detail}", messages.WARNING)
                continue
            if result.status != Dispute.Status.OPEN:
                self.log_change(request, result, f"Dispute resolved: {verb}")
                done += 1
        self.message_user(request, f"{done} dispute(s) resolved: {verb}.", messages.SUCCESS)

    @admin.action(description="Resolve: refund the buyer", permissions=["change"])
    def resolve_refund(self, request, queryset):
        self._resolve(request, queryset, dispute_resolve_refund, "refunded")

    @admin.action(description="Resolve: release to the seller", permissions=["change"])
    def resolve_release(self, request, queryset):
        self._resolve(request, queryset, dispute_resolve_release, "released")


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "transaction", "kind", "account", "user", "amount"]
    list_filter = ["account", "kind", "created_at"]
    search_fields = ["transaction__id", "journal_id"]
    readonly_fields = [*(f.name for f in LedgerEntry._meta.fields), "amount"]
    amount = money_display("amount_cents", description="amount")


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

    def has_delete_permission(self, request, obj=None):
        return False
