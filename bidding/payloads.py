"""The bid's hot path: the data of the 201 body, the socket `ack.bid` and `bid_placed`.

Every accepted bid renders its 201 body and the room's `bid_placed` event. Building them
through the serializers (bidding/api/serializers.py: fields bound, `to_representation` per
field, a ReturnDict) cost about as much CPU as the bid's SQL. These plain functions give the
same data, key for key and value for value (tests/bidding/test_payloads.py renders both, byte
for byte); the serializers stay the schema's description and serve every other path. Not an
API module: the services call it (a service never imports its app's API).
"""

from __future__ import annotations

from rest_framework import serializers

from bidding import selectors
from bidding.models import Bid

# One unbound field: its ISO 8601 rendering (UTC shown as `Z`) is the serializers' own.
_DATETIME = serializers.DateTimeField()


def bidder_alias(number: int | None) -> str:
    """"Bidder N": N the order of the bidder's first bid on the listing."""
    return f"Bidder {number}" if number else "Bidder"


def _bool_or_none(value) -> bool | None:
    return None if value is None else bool(value)


def listing_live_data(listing) -> dict:
    """`ListingLiveSerializer(listing).data`."""
    live = selectors.listing_live(listing)
    ends_at = live["ends_at"]
    return {
        "current_price_cents": int(live["current_price_cents"]),
        "bid_count": int(live["bid_count"]),
        "minimum_next_bid_cents": int(live["minimum_next_bid_cents"]),
        "ends_at": _DATETIME.to_representation(ends_at) if ends_at else None,
        "reserve_met": _bool_or_none(live["reserve_met"]),
        "seq": int(live["seq"]),
    }


def bid_history_data(bid: Bid, *, bidder_name: str | None = None) -> dict:
    """`BidHistorySerializer(bid).data`; `bidder_name` is the bidder's masked name when the
    caller already has it (the bid service reads the leader's with the listing row), so the
    bidder's row is not loaded."""
    return {
        "id": str(bid.pk),
        "amount_cents": int(bid.amount_cents),
        "bidder": {"display_name": str(bidder_name if bidder_name is not None
                                       else bid.bidder.masked_name),
                   "alias": bidder_alias(bid.bidder_number)},
        "is_auto_bid": bool(bid.is_auto_bid),
        "created_at": _DATETIME.to_representation(bid.created_at) if bid.created_at else None,
    }


def bid_placed_data(bid: Bid) -> dict:
    """`BidPlacedSerializer(bid).data`: the 201 body of a bid and the socket `ack.bid`."""
    listing = bid.listing
    return {
        "id": str(bid.pk),
        "listing_id": str(bid.listing_id),
        "amount_cents": int(bid.amount_cents),
        "max_amount_cents": int(bid.max_amount_cents),
        "status": str(bid.status),
        "is_leading": listing.leader_id == bid.bidder_id,
        "listing": listing_live_data(listing),
    }
