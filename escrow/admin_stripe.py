"""The console's "Stripe's view" section on a transaction: dj-stripe's mirror of the
PaymentIntent, Refund, Transfer and the seller's connected account, beside our ledger."""

from __future__ import annotations

from django.utils.html import format_html, format_html_join

from escrow.stripe_mirror import mirror_rows_for

STRIPE_VIEW = "stripe_view"


def _cents(value) -> str:
    return "—" if value is None else f"{int(value) / 100:,.2f}"


def _rows(txn):
    mirror = mirror_rows_for(txn)
    expected = {  # what our ledger says Stripe should show
        "payment_intent": (txn.payment_intent_id, txn.total_charged_cents if txn.paid_at
                           else None),
        "refund": (txn.refund_id, txn.total_charged_cents if txn.refund_id else None),
        "transfer": (txn.payout_transfer_id, txn.seller_payout_cents
                     if txn.payout_transfer_id else None),
    }
    for kind, (object_id, ours) in expected.items():
        row = mirror[kind]
        if not object_id:
            yield kind, "—", "none yet", "—", _cents(ours)
            continue
        if row is None:
            yield kind, object_id, "not in the mirror", "—", _cents(ours)
            continue
        data = row.stripe_data or {}
        amount = data.get("amount_received") if kind == "payment_intent" else data.get("amount")
        if kind == "transfer":
            amount = int(data.get("amount") or 0) - int(data.get("amount_reversed") or 0)
        status = data.get("status") or ("reversed" if data.get("reversed") else "created")
        yield kind, object_id, status, _cents(amount), _cents(ours)
    account = mirror["account"]
    if account is not None:
        data = account.stripe_data or {}
        flags = ", ".join(f"{flag}={'yes' if data.get(flag) else 'no'}" for flag in
                          ("charges_enabled", "payouts_enabled", "details_submitted"))
        yield "seller account", account.id, flags, "—", "—"


class StripeViewAdminMixin:
    """Adds the read-only "Stripe's view" section (last on the page) to TransactionAdmin."""

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), STRIPE_VIEW]

    def get_fieldsets(self, request, obj=None):
        fieldsets = [(name, {**opts, "fields": [f for f in opts["fields"] if f != STRIPE_VIEW]})
                     for name, opts in super().get_fieldsets(request, obj)]
        if obj is None:
            return fieldsets
        return [*fieldsets, ("Stripe's view (dj-stripe mirror)", {"fields": [STRIPE_VIEW]})]

    def stripe_view(self, obj):
        if obj is None or obj.payment_backend != "stripe":
            return "Simulated payments: there are no Stripe objects for this transaction."
        body = format_html_join(
            "", "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            _rows(obj))
        return format_html(
            '<table class="stripe-view"><thead><tr><th>object</th><th>Stripe id</th>'
            "<th>Stripe status</th><th>Stripe amount</th><th>our ledger</th></tr></thead>"
            "<tbody>{}</tbody></table>", body)

    stripe_view.short_description = "Stripe's view"
