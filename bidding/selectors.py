"""Bidding reads: the auction state of a listing as rules see it, histories, a user's bids."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import User
from bidding.models import Bid
from listings import rules
from listings.models import Listing, ListingStatus
from listings.selectors import auction_state


def listing_live(listing: Listing) -> dict[str, Any]:
    """What bidders may see of the auction: price, count, next minimum, end, reserve met."""
    state = auction_state(listing)
    return {
        "current_price_cents": listing.current_price_cents,
        "bid_count": listing.bid_count,
        "minimum_next_bid_cents": rules.minimum_next_bid(state),
        "ends_at": listing.ends_at,
        "reserve_met": rules.reserve_met(state),
        "status": listing.status,
        "seq": listing.seq,
    }


def bid_history(*, listing: Listing) -> QuerySet[Bid]:
    """Active bids of a listing, newest first (seq, then the proxy's answer above its cause);
    a leader's silent raise of their own maximum is not a bid others see."""
    return (Bid.objects.filter(listing=listing, status=Bid.Status.ACTIVE, is_max_raise=False)
            .select_related("bidder").order_by("-seq", "-is_auto_bid"))


def bids_of_user(*, user) -> QuerySet[Bid]:
    """The user's own bids (all statuses) with their listings."""
    return Bid.objects.filter(bidder=user).select_related("listing")


def bidders_of(*, listing_id) -> list:
    """Distinct ids of users with an active bid on the listing."""
    return list(Bid.objects.filter(listing_id=listing_id, status=Bid.Status.ACTIVE)
                .values_list("bidder_id", flat=True).distinct())


def auctions_due_ids(*, limit: int | None = None) -> list:
    """Ids of the auctions whose end has passed and that are still `active`, the oldest end
    first: what the close sweep (`auction_sweep`) and `manage.py close_auctions` close.
    Paused listings (a suspended seller) wait until the seller is reinstated."""
    due = (Listing.objects.filter(status=ListingStatus.ACTIVE, ends_at__lte=timezone.now(),
                                  seller__status=User.Status.ACTIVE)
           .order_by("ends_at").values_list("pk", flat=True))
    return list(due if limit is None else due[:limit])
