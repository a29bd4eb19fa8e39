"""What `GET /v1/users/me/export` returns: everything stored about the caller.

`EXPORTED` names, for every model field that points at a user, the export section holding
those rows; `NOT_EXPORTED` the few that hold no data *about* the user, with the reason.
`tests/privacy/test_export.py` walks the app registry: a new model with a user foreign key
fails that test until it is in one of the two.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Device, Rating, User, Wallet
from bidding.models import Bid, SecondChanceOffer
from chat.models import Message
from discovery.selectors import saved_searches_for_export
from escrow.models import Dispute, LedgerEntry, Transaction
from listings.models import Listing, ListingImage, ListingReport, Watch
from notifications.models import Notification, NotificationPreference

EXPORTED: dict[tuple[str, str], str] = {
    ("accounts.User", "id"): "profile",
    ("accounts.Wallet", "user"): "wallet",
    ("accounts.Device", "user"): "devices",
    ("accounts.Rating", "rater"): "ratings_given",
    ("accounts.Rating", "ratee"): "ratings_received",
    ("listings.Listing", "seller"): "listings",
    ("listings.Listing", "leader"): "bids",  # the auctions they lead are those of their bids
    ("listings.Watch", "user"): "watchlist",
    ("listings.ListingReport", "reporter"): "listing_reports",
    ("bidding.Bid", "bidder"): "bids",
    ("escrow.Transaction", "buyer"): "transactions",
    ("escrow.Transaction", "seller"): "transactions",
    ("escrow.Transaction", "meetup_proposed_by"): "transactions",
    ("escrow.Dispute", "opened_by"): "disputes",
    ("escrow.Dispute", "resolved_by"): "disputes",
    ("escrow.LedgerEntry", "user"): "ledger_entries",
    ("chat.Message", "sender"): "messages",
    ("notifications.Notification", "user"): "notifications",
    ("notifications.NotificationPreference", "user"): "notification_preferences",
    ("discovery.SavedSearch", "user"): "saved_searches",
    ("bidding.SecondChanceOffer", "bidder"): "second_chance_offers",
}

NOT_EXPORTED: dict[tuple[str, str], str] = {
    ("admin.LogEntry", "user"): "the staff console's own log of a staff member's edits",
    ("token_blacklist.OutstandingToken", "user"): "credentials (refresh tokens), never handed "
                                                  "out again",
    ("core.IdempotencyRecord", "user"): "a 24-hour replay cache of answers already sent",
    ("djstripe.Customer", "subscriber"): "dj-stripe's mirror of Stripe customers: Biddt "
                                         "creates none (buyers pay by PaymentIntent)",
    ("core.AuditEntry", "actor"): "the staff audit log: what staff did, not data about a user",
    # simple-history's copies: the export holds the rows as they are now.
    ("accounts.HistoricalUser", "history_user"): "history: who edited (staff or the user)",
    ("accounts.HistoricalWallet", "user"): "history of the exported wallet",
    ("accounts.HistoricalWallet", "history_user"): "history: who edited",
    ("escrow.HistoricalTransaction", "buyer"): "history of exported transactions",
    ("escrow.HistoricalTransaction", "seller"): "history of exported transactions",
    ("escrow.HistoricalTransaction", "meetup_proposed_by"): "history of exported transactions",
    ("escrow.HistoricalTransaction", "history_user"): "history: who edited",
    ("escrow.HistoricalDispute", "opened_by"): "history of exported disputes",
    ("escrow.HistoricalDispute", "resolved_by"): "history of exported disputes",
    ("escrow.HistoricalDispute", "history_user"): "history: who edited",
}

# Never in an export: secrets that would let someone act, not data about the person.
_SECRET_FIELDS = {"password", "phone_index", "email_index", "token_index", "qr_code_hash",
                  "dedupe_key", "push_claimed_at", "email_claimed_at", "delivery_handled_at"}


def _value(value: Any) -> Any:
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, models.fields.files.FieldFile):
        return value.name or None
    return value


def _row(obj: models.Model, *, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every concrete column of the row (a foreign key as its id), JSON-ready."""
    out: dict[str, Any] = {}
    for field in obj._meta.concrete_fields:
        if field.name in _SECRET_FIELDS or field.name in exclude:
            continue
        out[field.attname] = _value(getattr(obj, field.attname))
    return out


def _rows(queryset, **kwargs) -> list[dict[str, Any]]:
    return [_row(obj, **kwargs) for obj in queryset.order_by("pk")]


def account_export(*, user: User) -> dict[str, Any]:
    """Everything stored about `user`, section by section (see `EXPORTED`)."""
    user = User.objects.get(pk=user.pk)  # the encrypted columns, which requests defer
    profile = _row(user, exclude=("is_superuser", "last_login"))
    profile.update({"rating_avg": user.rating_avg})
    listings = []
    for listing in Listing.objects.filter(seller=user).order_by("pk"):
        item = _row(listing, exclude=("search_vector",))
        item["images"] = _rows(ListingImage.objects.filter(listing=listing))
        listings.append(item)
    transactions = Transaction.objects.filter(Q(buyer=user) | Q(seller=user))
    return {
        "exported_at": timezone.now().isoformat(),
        "profile": profile,
        "wallet": _row(wallet) if (wallet := Wallet.objects.filter(user=user).first()) else None,
        "devices": _rows(Device.objects.filter(user=user)),
        "listings": listings,
        "watchlist": _rows(Watch.objects.filter(user=user)),
        "listing_reports": _rows(ListingReport.objects.filter(reporter=user)),
        # Their own bids, with the maxima they set (never another bidder's).
        "bids": _rows(Bid.objects.filter(bidder=user)),
        "transactions": _rows(transactions),
        "disputes": _rows(Dispute.objects.filter(Q(opened_by=user) | Q(resolved_by=user)
                                                 | Q(transaction__in=transactions))),
        "ledger_entries": _rows(LedgerEntry.objects.filter(user=user)),
        # The conversations they are part of: their messages and the other side's.
        "messages": _rows(Message.objects.filter(Q(sender=user)
                                                 | Q(transaction__in=transactions))),
        "notifications": _rows(Notification.objects.filter(user=user)),
        "notification_preferences": (
            _row(pref) if (pref := NotificationPreference.objects.filter(user=user).first())
            else None),
        "ratings_given": _rows(Rating.objects.filter(rater=user)),
        "ratings_received": _rows(Rating.objects.filter(ratee=user)),
        "saved_searches": saved_searches_for_export(user),
        "second_chance_offers": _rows(SecondChanceOffer.objects.filter(bidder=user)),
    }
