"""Live listing rooms over `/ws/` with WebsocketCommunicator."""

from __future__ import annotations

import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.db import connections

from tests.bidding.helpers import bid_count, connect, make
from tests.factories import ListingFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def _close_thread_connections():
    # As in tests/biddt/test_consumers.py: close the connections the test's DB thread opened,
    # so PostgreSQL lets the test database be dropped.
    yield
    await sync_to_async(connections.close_all)()


async def send(comm, message) -> dict:
    await comm.send_json_to(message)
    return await comm.receive_json_from(timeout=3)


async def test_anonymous_subscribe_gets_the_room_state():
    listing = await make(ListingFactory, starting_price_cents=1000)
    comm = await connect()
    answer = await send(comm, {"type": "subscribe", "listingId": str(listing.pk)})
    assert answer["type"] == "subscribed" and answer["listingId"] == str(listing.pk)
    state = answer["listing"]
    assert {k: state[k] for k in ("current_price_cents", "bid_count", "minimum_next_bid_cents",
                                  "reserve_met", "status", "seq")} == {
        "current_price_cents": 1000, "bid_count": 0, "minimum_next_bid_cents": 1000,
        "reserve_met": None, "status": "active", "seq": 0}
    assert state["ends_at"]
    await comm.disconnect()


async def test_subscribe_errors():
    draft = await make(ListingFactory, status="draft")
    comm = await connect()
    for listing_id, code in [(str(draft.pk), "not_found"), (str(uuid.uuid4()), "not_found"),
                             ("nope", "invalid_message"), (None, "invalid_message")]:
        answer = await send(comm, {"type": "subscribe", "listingId": listing_id})
        assert (answer["type"], answer["code"]) == ("error", code)
    await comm.disconnect()


async def test_subscribe_follows_the_listing_detail_visibility():
    """A removed listing, or a suspended seller's paused one, has no snapshot for others (the
    detail is 404 too: listings.selectors.listing_visible); its seller still subscribes."""
    removed = await make(ListingFactory, status="removed")
    paused = await make(ListingFactory, seller_active=False)
    comm = await connect()
    for listing in (removed, paused):
        answer = await send(comm, {"type": "subscribe", "listingId": str(listing.pk)})
        assert (answer["type"], answer["code"]) == ("error", "not_found")
    await comm.disconnect()
    seller = await connect(paused.seller)
    answer = await send(seller, {"type": "subscribe", "listingId": str(paused.pk)})
    assert answer["type"] == "subscribed"
    await seller.disconnect()


async def test_anonymous_sockets_cannot_bid():
    listing = await make(ListingFactory)
    comm = await connect()
    answer = await send(comm, {"type": "bid", "listingId": str(listing.pk), "amount": 1000,
                               "requestId": str(uuid.uuid4())})
    assert answer["code"] == "not_authenticated"
    await comm.disconnect()


async def test_bid_ack_and_fan_out_to_the_room_and_the_outbid_user():
    listing = await make(ListingFactory, starting_price_cents=1000)
    alice, bob = await make(UserFactory, display_name="alice"), await make(UserFactory,
                                                                           display_name="bob")
    watcher, alice_ws, bob_ws = await connect(), await connect(alice), await connect(bob)
    for comm in (watcher, alice_ws):
        await send(comm, {"type": "subscribe", "listingId": str(listing.pk)})

    request_id = str(uuid.uuid4())
    ack = await send(alice_ws, {"type": "bid", "listingId": str(listing.pk), "amount": 1000,
                                "maxAmount": 2000, "requestId": request_id})
    assert ack["type"] == "ack" and ack["requestId"] == request_id
    assert ack["bid"]["is_leading"] is True and ack["bid"]["max_amount_cents"] == 2000
    assert ack["bid"]["listing"]["current_price_cents"] == 1000
    seen = await watcher.receive_json_from(timeout=3)
    assert seen["type"] == "bid_placed" and seen["seq"] == 1
    assert seen["bid"]["bidder"] == {"display_name": "a***e", "alias": "Bidder 1"}
    assert (await alice_ws.receive_json_from(timeout=3))["type"] == "bid_placed"

    ack = await send(bob_ws, {"type": "bid", "listingId": str(listing.pk), "amount": 3000})
    assert ack["type"] == "ack" and ack["requestId"] is None and ack["bid"]["is_leading"]
    seen = await watcher.receive_json_from(timeout=3)
    assert (seen["type"], seen["seq"], seen["listing"]["current_price_cents"]) == (
        "bid_placed", 2, 2050)
    alice_events = [await alice_ws.receive_json_from(timeout=3) for _ in range(3)]
    by_type = {e["type"]: e for e in alice_events}
    assert set(by_type) == {"bid_placed", "outbid", "notification"}
    assert by_type["outbid"] == {"type": "outbid", "listingId": str(listing.pk),
                                 "yourMaxBid": 2000, "currentBid": 2050}
    assert by_type["notification"]["notification"]["type"] == "outbid"
    for comm in (watcher, alice_ws, bob_ws):
        assert await comm.receive_nothing(timeout=0.1)
        await comm.disconnect()


async def test_request_id_makes_a_retry_a_no_op():
    listing = await make(ListingFactory)
    alice = await make(UserFactory)
    comm = await connect(alice)
    message = {"type": "bid", "listingId": str(listing.pk), "amount": 1000,
               "requestId": str(uuid.uuid4())}
    first = await send(comm, message)
    again = await send(comm, message)
    assert first == again and first["type"] == "ack"
    assert await bid_count(listing) == 1
    reused = await send(comm, {**message, "amount": 5000})
    assert reused["code"] == "idempotency_key_reused"
    await comm.disconnect()


async def test_request_id_may_be_any_client_string_or_number():
    # given a client that numbers its requests, as API.md allows (`requestId?`, free form)
    listing = await make(ListingFactory)
    alice = await make(UserFactory)
    comm = await connect(alice)
    first = await send(comm, {"type": "bid", "listingId": str(listing.pk), "amount": 1000,
                              "requestId": "r1"})
    numbered = await send(comm, {"type": "bid", "listingId": str(listing.pk), "amount": 1050,
                                 "requestId": 2})
    # then both are acked with the id echoed, and a retry of "r1" is a no-op
    assert first["type"] == "ack" and first["requestId"] == "r1"
    assert numbered["type"] == "ack" and numbered["requestId"] == 2
    assert await send(comm, {"type": "bid", "listingId": str(listing.pk), "amount": 1000,
                             "requestId": "r1"}) == first
    assert await bid_count(listing) == 2
    bad = await send(comm, {"type": "bid", "listingId": str(listing.pk), "amount": 1100,
                            "requestId": "x" * 256})
    assert bad["code"] == "invalid_message"
    await comm.disconnect()


async def test_bid_errors_use_the_rest_codes():
    listing = await make(ListingFactory, starting_price_cents=1000)
    alice = await make(UserFactory)
    comm = await connect(alice)
    request_id = str(uuid.uuid4())
    answer = await send(comm, {"type": "bid", "listingId": str(listing.pk), "amount": 900,
                               "requestId": request_id})
    assert (answer["type"], answer["code"], answer["requestId"],
            answer["minimumNextBidCents"]) == ("error", "bid_too_low", request_id, 1000)
    answer = await send(comm, {"type": "bid", "listingId": str(listing.pk), "amount": 2000,
                               "maxAmount": 1000})
    assert answer["code"] == "invalid_max"
    for above in ({"amount": 10**19}, {"amount": 2000, "maxAmount": 100_000_001}):
        answer = await send(comm, {"type": "bid", "listingId": str(listing.pk), **above})
        assert answer["code"] == "max_value", answer
    # amounts are REST's serializer codes (every case vs REST: test_socket_bid_validation.py)
    for bad, code in (({"amount": "10"}, "bid_too_low"), ({"amount": -5}, "min_value"),
                      ({"amount": True}, "invalid"),
                      ({"amount": 1000, "maxAmount": 0}, "min_value"),
                      ({"amount": 1000, "requestId": ""}, "invalid_message"),
                      ({"amount": 1000, "requestId": {"nested": 1}}, "invalid_message")):
        answer = await send(comm, {"type": "bid", "listingId": str(listing.pk), **bad})
        assert answer["code"] == code, bad
    seller_ws = await connect(await database_sync_to_async(lambda: listing.seller)())
    answer = await send(seller_ws, {"type": "bid", "listingId": str(listing.pk),
                                    "amount": 5000})
    assert answer["code"] == "own_listing"
    await comm.disconnect()
    await seller_ws.disconnect()


async def test_unsubscribe_leaves_the_room():
    listing = await make(ListingFactory)
    alice = await make(UserFactory)
    watcher, bidder = await connect(), await connect(alice)
    await send(watcher, {"type": "subscribe", "listingId": str(listing.pk)})
    left = await send(watcher, {"type": "unsubscribe", "listingId": str(listing.pk)})
    assert left["type"] == "ack" and left["listingId"] == str(listing.pk)
    await send(bidder, {"type": "bid", "listingId": str(listing.pk), "amount": 1000})
    assert await watcher.receive_nothing(timeout=0.2)
    await watcher.disconnect()
    await bidder.disconnect()
