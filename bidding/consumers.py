"""Live listing rooms on `/ws/`: `subscribe`, `unsubscribe` and `bid` handlers.

Thin: validate the message, call selectors/services through `database_sync_to_async`, answer.
A socket bid goes through `bid_place` exactly like REST (same codes, same 10/min throttle):
`amount`/`maxAmount` are checked by REST's `BidCreateSerializer` (`required`, `null`,
`invalid`, `min_value`, ...) and a `listingId` that is not a UUID is `not_found`, as the URL
would be. `requestId` makes a retried bid a no-op that answers the first `ack` again.
"""

from __future__ import annotations

import uuid
from typing import Any

from rest_framework.exceptions import APIException, NotFound, ValidationError

from bidding import messages, services
from bidding.api.serializers import BidCreateSerializer, ListingRoomSerializer
from bidding.payloads import bid_placed_data
from bidding.throttles import BidThrottle
from biddt.consumers import BiddtConsumer, WSError, db_sync_to_async, ws_handler
from biddt.db_router import replica_pin_user
from biddt.idempotency import fingerprint, run_once
from biddt.socket_messages import ACK
from listings.selectors import listing_visible

WS_BID_SCOPE = "ws-bid"


def _uuid(content: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = content.get(key)
    if value is None and not required:
        return None
    try:
        return str(uuid.UUID(str(value))) if isinstance(value, str) else _bad(key, "a UUID")
    except ValueError:
        return _bad(key, "a UUID")


# Socket key -> REST body field of `BidCreateSerializer`.
BID_FIELDS = {"amount": "amount_cents", "maxAmount": "max_amount_cents"}


def _bid_listing_id(content: dict[str, Any]) -> str:
    """The bid's `listingId`; not a UUID (or missing) is REST's 404 for such a URL."""
    value = content.get("listingId")
    try:
        if isinstance(value, str):
            return str(uuid.UUID(value))
    except ValueError:
        pass
    raise WSError.from_api_exception(NotFound())


def _bid_amounts(content: dict[str, Any]) -> tuple[int, int | None]:
    """`amount`/`maxAmount` validated by REST's own serializer: same rules, same codes.

    A key left out is left out of the data (`required`), a `null` is passed on (`null`).
    """
    serializer = BidCreateSerializer(
        data={field: content[key] for key, field in BID_FIELDS.items() if key in content})
    if not serializer.is_valid():
        raise WSError.from_api_exception(ValidationError(serializer.errors))
    data = serializer.validated_data
    return data["amount_cents"], data.get("max_amount_cents")


def _request_key(content: dict[str, Any]) -> str | None:
    """The client's `requestId` (any string or number it chose) as an idempotency key."""
    value = content.get("requestId")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
        return _bad("requestId", "a non-empty string or a number")
    if len(str(value)) > 255:
        return _bad("requestId", "at most 255 characters")
    return str(value)


def _bad(key: str, what: str):
    raise WSError("invalid_message", f"'{key}' must be {what}.")


def _ws_error(exc: APIException) -> WSError:
    """The REST error as a socket error; `bid_too_low` also carries the minimum."""
    extra = {}
    if isinstance(exc, services.BidTooLow):
        extra["minimumNextBidCents"] = exc.minimum_next_bid_cents
    return WSError.from_api_exception(exc, **extra)


@db_sync_to_async
def _room_state(listing_id: str, user) -> dict[str, Any]:
    try:
        listing = listing_visible(listing_id=listing_id, user=user)
    except APIException as exc:
        raise _ws_error(exc) from None
    return ListingRoomSerializer(listing).data


class _Shim:
    """The bits of a request that the bid throttle reads."""

    def __init__(self, user) -> None:
        self.user, self.META = user, {}


@db_sync_to_async
def _bid(user, listing_id: str, amount: int, max_amount: int | None,
         request_id: str | None) -> dict[str, Any]:
    throttle = BidThrottle()
    if not throttle.allow_request(_Shim(user), None):
        raise WSError("throttled", "Too many bids; try again later.",
                      retryAfter=int(throttle.wait() or 1))

    def work() -> tuple[int, Any]:
        placed = services.bid_place(listing_id=listing_id, bidder=user, amount_cents=amount,
                                    max_amount_cents=max_amount)
        # A socket bid is a write like a REST one: the bidder's next REST reads come from
        # the primary (read-your-writes with a read replica).
        replica_pin_user(user_id=user.pk)
        return 201, bid_placed_data(placed.bid)

    try:
        if request_id is None:
            return work()[1]
        return run_once(user=user, scope=WS_BID_SCOPE, key=request_id,
                        request_fingerprint=fingerprint(listing_id, amount, max_amount),
                        work=work).body
    except APIException as exc:
        raise _ws_error(exc) from None


@ws_handler("subscribe", auth=False)
async def subscribe(consumer: BiddtConsumer, content: dict[str, Any]) -> None:
    listing_id = _uuid(content, "listingId")
    group = services.listing_group(listing_id)
    # Join first, then read: an event racing the read arrives with a seq the client can
    # compare to the snapshot's, instead of being lost.
    await consumer.group_join(group)
    try:
        listing = await _room_state(listing_id, consumer.user)
    except WSError:
        await consumer.group_leave(group)
        raise
    await consumer.send_json(messages.SUBSCRIBED.build(listingId=listing_id, listing=listing))


@ws_handler("unsubscribe", auth=False)
async def unsubscribe(consumer: BiddtConsumer, content: dict[str, Any]) -> None:
    listing_id = _uuid(content, "listingId")
    await consumer.group_leave(services.listing_group(listing_id))
    await consumer.send_json(ACK.build(requestId=content.get("requestId"), listingId=listing_id))


@ws_handler("bid", auth=True)
async def bid(consumer: BiddtConsumer, content: dict[str, Any]) -> None:
    listing_id = _bid_listing_id(content)
    amount, max_amount = _bid_amounts(content)
    request_id = _request_key(content)
    body = await _bid(consumer.user, listing_id, amount, max_amount, request_id)
    await consumer.send_json(ACK.build(requestId=content.get("requestId"), bid=body))
