"""The listing room's state messages (`/ws/`, `listing.<id>`), declared once.

Every change of a listing that others can see moves its `seq` by one and sends exactly one
of these (or bidding's `bid_placed`) to the room, carrying the new `seq` (API.md "Live state
you can trust"). They are declared here, in the listings layer, because listing writes
(edit, cancel, opening, a seller's pause) send them; the bidding engine uses them too.
"""

from __future__ import annotations

from typing import Any

from biddt.events import send_to_group_on_commit
from biddt.socket_messages import (
    DATETIME,
    INT,
    NULLABLE_INT,
    STRING,
    UUID,
    declare,
    nullable,
    obj,
)
from listings.api.serializers import ListingSerializer
from listings.selectors import listing_queryset


class Reason:
    """`listing_updated.reason`: why a listing that stays open changed."""

    RETRACTION = "retraction"
    EDIT = "edit"
    OPENED = "opened"
    PAUSED = "paused"
    REINSTATED = "reinstated"
    ALL = (RETRACTION, EDIT, OPENED, PAUSED, REINSTATED)


LISTING_STATUSES = ["draft", "scheduled", "active", "sold", "unsold", "cancelled", "removed"]
SEQ = {"type": "integer", "minimum": 0, "description": "The listing's `seq` after this change."}

# The public listing representation of `GET /v1/listings/{id}` (its reference is the REST
# schema, `Listing`); these are the keys a live client reads.
LISTING = obj({
    "id": UUID,
    "seller": obj({"id": UUID, "display_name": STRING,
                   "rating_avg": {"type": ["number", "null"]}}),
    "title": STRING,
    "status": {"enum": LISTING_STATUSES},
    "starts_at": nullable(DATETIME),
    "ends_at": nullable(DATETIME),
    "current_price_cents": INT,
    "bid_count": INT,
    "minimum_next_bid_cents": INT,
    "reserve_met": {"type": ["boolean", "null"]},
    "seq": INT,
}, description="The public listing representation, as `GET /v1/listings/{id}` answers.")

LISTING_UPDATED = declare(
    "listing_updated", "server",
    "A listing that stays open changed: a retraction, the seller's edit, its scheduled "
    "opening, or a pause/reinstatement of its seller.",
    fields={"listingId": UUID, "seq": SEQ, "reason": {"enum": list(Reason.ALL)},
            "listing": LISTING},
    required=("listingId", "seq", "reason", "listing"))

AUCTION_ENDED = declare(
    "auction_ended", "server",
    "The listing ended: `sold`, `unsold`, `cancelled` by its seller or `removed` by staff.",
    fields={"listingId": UUID, "seq": SEQ,
            "status": {"enum": ["sold", "unsold", "cancelled", "removed"]},
            "finalPrice": {**NULLABLE_INT, "description": "Cents; null unless sold."}},
    required=("listingId", "seq", "status", "finalPrice"))


def listing_room(listing_id: Any) -> str:
    return f"listing.{listing_id}"


def room_event(payload: dict[str, Any]) -> dict[str, Any]:
    """The channel-layer envelope of a payload for the sockets of a group."""
    return {"type": "ws.event", "payload": payload}


def listing_public_data(listing_id: Any) -> dict[str, Any]:
    """The listing as an anonymous `GET /v1/listings/{id}` shows it (seller's pause aside)."""
    listing = listing_queryset(user=None).get(pk=listing_id)
    return dict(ListingSerializer(listing, context={}).data)


def listing_updated_on_commit(*, listing_id: Any, seq: int, reason: str) -> None:
    """After commit: `listing_updated` to the room, the listing rendered then (outside the
    caller's row lock). The caller moved `seq` to `seq` in its transaction."""
    send_to_group_on_commit(listing_room(listing_id), lambda: room_event(LISTING_UPDATED.build(
        listingId=str(listing_id), seq=seq, reason=reason,
        listing=listing_public_data(listing_id))))


def auction_ended_on_commit(*, listing_id: Any, seq: int, status: str,
                            final_price: int | None) -> None:
    """After commit: `auction_ended` to the room (the caller moved `seq` to `seq`)."""
    send_to_group_on_commit(listing_room(listing_id), room_event(AUCTION_ENDED.build(
        listingId=str(listing_id), seq=seq, status=str(status), finalPrice=final_price)))
