"""Two real daphne instances on one PostgreSQL and one Redis: a live room spans them.

Instance A takes the bid (over REST, then over its socket); a subscriber held by instance B
receives `bid_placed` through the channels-redis layer. Both servers get this run's
`BIDDT_TEST_PREFIX` (tests.biddt.processes.start_daphne passes it on), so they share the
channel-layer prefix; users and listings are committed (transactional db) so both see them.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
from django.conf import settings
from rest_framework_simplejwt.tokens import RefreshToken
from websockets.asyncio.client import connect

from tests.biddt import processes
from tests.factories import ListingFactory, UserFactory

pytestmark = [pytest.mark.integration, pytest.mark.postgres,
              pytest.mark.django_db(transaction=True)]

TIMEOUT = 15


@pytest.fixture
def two_instances(daphne_server):
    """(A, B): two daphne processes, same DATABASE_URL, REDIS_URL and channel-layer prefix."""
    if not settings.USING_POSTGRES:
        pytest.skip("needs PostgreSQL: set DATABASE_URL (CI does)")
    if not settings.REDIS_URL:
        pytest.skip("needs Redis: instances share rooms only through channels-redis "
                    "(set REDIS_URL; CI does)")
    # A distinct extra env per instance: the launcher starts (and shares) one process each.
    a = daphne_server({"BIDDT_INSTANCE_NAME": "A"})
    b = daphne_server({"BIDDT_INSTANCE_NAME": "B"})
    assert a.port != b.port and a.process.pid != b.process.pid
    return a, b


def token_for(user) -> str:
    return str(RefreshToken.for_user(user).access_token)


async def recv_type(socket, wanted: str) -> dict:
    return await processes.recv_type(socket, wanted, timeout=TIMEOUT)


async def subscribe(socket, listing_id: str) -> dict:
    await socket.send(json.dumps({"type": "subscribe", "listingId": listing_id}))
    return await recv_type(socket, "subscribed")


def test_rest_bid_on_a_reaches_subscriber_on_b(two_instances):
    # given a committed listing, a bidder, and an anonymous subscriber on instance B
    a, b = two_instances
    listing = ListingFactory(starting_price_cents=2500)
    bidder = UserFactory()
    listing_id, token = str(listing.pk), token_for(bidder)  # tokens touch the ORM: not async

    async def scenario():
        async with connect(f"{b.ws_url}/ws/", open_timeout=TIMEOUT) as socket:
            subscribed = await subscribe(socket, listing_id)
            # when the bidder places a bid over REST on instance A
            async with httpx.AsyncClient(base_url=a.http_url, timeout=TIMEOUT) as client:
                response = await client.post(
                    f"/v1/listings/{listing_id}/bids", json={"amount_cents": 2500},
                    headers={"Authorization": f"Bearer {token}"})
            event = await recv_type(socket, "bid_placed")
            return subscribed, response, event

    subscribed, response, event = asyncio.run(scenario())
    # then B's subscriber gets the bid with the next seq and the accepted amount
    assert subscribed["listingId"] == listing_id
    assert response.status_code == 201, response.text
    assert response.json()["amount_cents"] == 2500
    assert event["listingId"] == listing_id
    assert event["seq"] == subscribed["listing"]["seq"] + 1
    assert event["bid"]["amount_cents"] == 2500
    assert event["bid"]["id"] == response.json()["id"]
    assert event["listing"]["current_price_cents"] == 2500
    assert event["listing"]["bid_count"] == 1
    listing.refresh_from_db()
    assert listing.seq == event["seq"]


def test_socket_bid_on_a_reaches_subscriber_on_b(two_instances):
    # given a listing with one bid already, a subscriber on B and a bidder's socket on A
    a, b = two_instances
    listing = ListingFactory(starting_price_cents=1000)
    first, second = UserFactory(), UserFactory()
    listing_id = str(listing.pk)
    first_token, second_token = token_for(first), token_for(second)

    async def scenario():
        async with httpx.AsyncClient(base_url=a.http_url, timeout=TIMEOUT) as client:
            response = await client.post(
                f"/v1/listings/{listing_id}/bids", json={"amount_cents": 1000},
                headers={"Authorization": f"Bearer {first_token}"})
            assert response.status_code == 201, response.text
        async with (connect(f"{b.ws_url}/ws/", open_timeout=TIMEOUT) as watcher,
                    connect(f"{a.ws_url}/ws/?token={second_token}",
                            open_timeout=TIMEOUT) as bidder):
            subscribed = await subscribe(watcher, listing_id)
            # when the second bidder bids 1500 over A's socket
            request_id = str(uuid.uuid4())
            await bidder.send(json.dumps({"type": "bid", "listingId": listing_id,
                                          "amount": 1500, "requestId": request_id}))
            ack = await recv_type(bidder, "ack")
            event = await recv_type(watcher, "bid_placed")
            return subscribed, ack, event

    subscribed, ack, event = asyncio.run(scenario())
    # then A acknowledges and B's subscriber sees the new leader at the next seq, at the
    # proxy price: the first bidder's maximum (1000) plus its increment (50)
    assert subscribed["listing"]["bid_count"] == 1
    assert ack["bid"]["is_leading"] is True
    assert ack["bid"]["amount_cents"] == 1050
    assert event["seq"] == subscribed["listing"]["seq"] + 1
    assert event["bid"]["id"] == ack["bid"]["id"]
    assert event["bid"]["amount_cents"] == 1050
    assert event["listing"]["current_price_cents"] == 1050
    assert event["listing"]["bid_count"] == 2
    listing.refresh_from_db()
    assert (listing.seq, listing.leader_id) == (event["seq"], second.pk)
