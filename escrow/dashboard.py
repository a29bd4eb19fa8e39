"""The staff console dashboard's charts: the last 30 days, from the database.

Each series is a list of `(label, value)` points with every hour or day present (zeros
included), so the charts read at a glance. Reads only; one grouped query per series (the
median handoff time reads that window's handoffs, a few thousand rows at most).
"""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta

from django.db.models import Count, Sum
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone

from bidding.models import Bid
from escrow.models import Dispute, Transaction

DAYS = 30


def _days(start: datetime, n: int) -> list[datetime]:
    return [start + timedelta(days=i) for i in range(n)]


def _per(qs, field: str, trunc, keys: list[datetime], agg=None) -> list:
    rows = dict(qs.annotate(bucket=trunc(field)).values("bucket")
                .annotate(v=agg if agg is not None else Count("pk")).values_list("bucket", "v"))
    return [rows.get(k) or 0 for k in keys]


def dashboard_series(*, now: datetime | None = None) -> dict:
    """`{labels_days, labels_hours, bids_per_hour, sales_per_day, gmv_per_day (dollars),
    disputes_opened, disputes_resolved, payout_failures, median_handoff_hours}`."""
    now = timezone.localtime(now or timezone.now())
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    day_start = today - timedelta(days=DAYS - 1)
    days = _days(day_start, DAYS)
    hour_start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=24 * DAYS - 1)
    hours = [hour_start + timedelta(hours=i) for i in range(24 * DAYS)]

    bids = Bid.objects.filter(created_at__gte=hour_start)
    sales = Transaction.objects.filter(created_at__gte=day_start).exclude(
        status=Transaction.Status.CANCELLED)
    opened = Dispute.objects.filter(created_at__gte=day_start)
    resolved = Dispute.objects.filter(resolved_at__gte=day_start)
    # A payout's failure is stamped by `updated_at` when it moves to `failed`; those still
    # failed are counted on that day (a retried one that then succeeded no longer counts).
    failures = Transaction.objects.filter(payout_status=Transaction.PayoutStatus.FAILED,
                                          updated_at__gte=day_start)
    handoffs: dict[datetime, list[float]] = {}
    for verified_at, created_at in (Transaction.objects
                                    .filter(verified_at__gte=day_start)
                                    .values_list("verified_at", "created_at")):
        day = timezone.localtime(verified_at).replace(hour=0, minute=0, second=0, microsecond=0)
        handoffs.setdefault(day, []).append((verified_at - created_at).total_seconds() / 3600)
    return {
        "labels_days": [d.strftime("%m-%d") for d in days],
        "labels_hours": [h.strftime("%m-%d %Hh") for h in hours],
        "bids_per_hour": _per(bids, "created_at", TruncHour, hours),
        "sales_per_day": _per(sales, "created_at", TruncDay, days),
        "gmv_per_day": [c / 100 for c in _per(sales, "created_at", TruncDay, days,
                                               Sum("amount_cents"))],
        "disputes_opened": _per(opened, "created_at", TruncDay, days),
        "disputes_resolved": _per(resolved, "resolved_at", TruncDay, days),
        "payout_failures": _per(failures, "updated_at", TruncDay, days),
        "median_handoff_hours": [round(statistics.median(handoffs[d]), 1) if d in handoffs
                                 else None for d in days],
    }
