"""Shared helpers for bidding tests."""

from __future__ import annotations

from bidding import rules
from bidding.models import Bid
from listings.models import Listing


def replayed_state(listing: Listing) -> rules.AuctionState:
    """The state `rules.replay` rebuilds from the listing's active user bids."""
    bids = (Bid.objects.filter(listing=listing, status=Bid.Status.ACTIVE, is_auto_bid=False)
            .order_by("seq"))
    return rules.replay(
        rules.AuctionState.initial(starting_price_cents=listing.starting_price_cents,
                                   reserve_price_cents=listing.reserve_price_cents),
        [rules.BidInput(b.bidder_id, b.requested_amount_cents, b.max_amount_cents) for b in bids],
    )


def row_state(listing: Listing) -> tuple:
    listing.refresh_from_db()
    return (listing.current_price_cents, listing.bid_count, listing.leader_id,
            listing.leader_max_cents)


def as_tuple(state: rules.AuctionState) -> tuple:
    return (state.current_price_cents, state.bid_count, state.leader_id, state.leader_max_cents)
