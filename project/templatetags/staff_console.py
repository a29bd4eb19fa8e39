"""`{% staff_queues %}`: the staff console's dashboard (admin index) counts and recent audit."""

from __future__ import annotations

from django import template
from django.core.cache import cache
from django.urls import reverse

from accounts.models import User
from biddt.core.models import AuditEntry
from escrow.models import Dispute, Transaction
from listings.models import Listing, ListingReport

register = template.Library()


@register.inclusion_tag("admin/staff_queues.html", takes_context=True)
def staff_queues(context):
    user = context["request"].user

    def row(label, perm, model, url_name, query, count):
        if not user.has_perm(perm):
            return None
        return {"label": label, "count": count(),
                "url": f"{reverse(url_name)}?{query}"}

    rows = [
        row("Open disputes", "escrow.view_dispute", Dispute, "admin:escrow_dispute_changelist",
            "status__exact=open", lambda: Dispute.objects.filter(status="open").count()),
        row("Open listing reports", "listings.view_listingreport", ListingReport,
            "admin:listings_listingreport_changelist", "status__exact=open",
            lambda: ListingReport.objects.filter(status="open").count()),
        row("Removed listings", "listings.view_listing", Listing,
            "admin:listings_listing_changelist", "status__exact=removed",
            lambda: Listing.objects.filter(status="removed").count()),
        row("Suspended users", "accounts.view_user", User, "admin:accounts_user_changelist",
            "status__exact=suspended",
            lambda: User.objects.filter(status=User.Status.SUSPENDED).count()),
        row("Unpaid sales", "escrow.view_transaction", Transaction,
            "admin:escrow_transaction_changelist", "status__exact=pending_payment",
            lambda: Transaction.objects.filter(status="pending_payment").count()),
        row("Failed payouts", "escrow.view_transaction", Transaction,
            "admin:escrow_transaction_changelist", "payout_queue=failed",
            lambda: Transaction.objects.filter(status="released",
                                               payout_status="failed").count()),
        row("Payouts waiting for the seller's wallet", "escrow.view_transaction", Transaction,
            "admin:escrow_transaction_changelist", "payout_queue=waiting_wallet",
            lambda: Transaction.objects.filter(status="released",
                                               payout_status="waiting_wallet").count()),
    ]
    recent = []
    if user.has_perm("core.view_auditentry"):
        recent = list(AuditEntry.objects.select_related("actor")[:10])
    return {"queues": [r for r in rows if r], "recent": recent,
            "audit_url": reverse("admin:core_auditentry_changelist")}


@register.inclusion_tag("admin/console_charts.html", takes_context=True)
def console_charts(context):
    """The dashboard's charts of the last 30 days (for staff who may see sales)."""
    from escrow.dashboard import dashboard_series

    if not context["request"].user.has_perm("escrow.view_transaction"):
        return {"series": None}
    # Grouped scans over 30 days of bids and sales: computed at most once a minute for all
    # staff (the cache is shared by every instance in production).
    return {"series": cache.get_or_set("console:dashboard-series", dashboard_series, 60)}
