"""`seq` and room events over the real servers (REST on granian, sockets on uvicorn, the
channels-redis layer): a subscriber sees each change others can see once, in `seq` order,
without a gap, and what it ends with is what `GET /v1/listings/{id}` answers.

Changes are made with the services in this process (committed: transactional db); their
after-commit events travel through Redis to the socket server like a worker's would.
"""

from __future__ import annotations

import json
import random
from typing import Any

import httpx
import pytest
from django.conf import settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from websockets.sync.client import connect

from accounts.models import User
from accounts.services import user_reinstate, user_suspend
from bidding import rules, selectors
from bidding.models import Bid
from bidding.services import bid_place, bid_retract
from biddt.errors import Conflict
from listings.models import Listing
from listings.services import listing_update
from tests.factories import ListingFactory, UserFactory
from tests.socket_contract import assert_server_message

pytestmark = [pytest.mark.integration, pytest.mark.postgres,
              pytest.mark.django_db(transaction=True)]

TIMEOUT = 15  # seconds a socket read may wait before the test reports a lost event
SEQ_EVENTS = {"bid_placed", "auction_extended", "auction_ended", "listing_updated"}


@pytest.fixture
def server(live_servers):
    if not settings.USING_POSTGRES or not settings.REDIS_URL:
        pytest.skip("needs PostgreSQL and Redis (set DATABASE_URL and REDIS_URL; CI does)")
    return live_servers()


class Subscriber:
    """An anonymous socket subscribed to one listing's room."""

    def __init__(self, server, listing_id: str) -> None:
        self.socket = connect(f"{server.ws_url}/ws/", open_timeout=TIMEOUT)
        self.socket.send(json.dumps({"type": "subscribe", "listingId": listing_id}))
        subscribed = self.next()
        assert subscribed["type"] == "subscribed", subscribed
        self.seq = subscribed["listing"]["seq"]

    def next(self) -> dict[str, Any]:
        message = json.loads(self.socket.recv(timeout=TIMEOUT))
        assert_server_message(message)
        return message

    def events_until(self, seq: int) -> list[dict[str, Any]]:
        """Room events carrying a `seq`, up to the one carrying `seq`."""
        events: list[dict[str, Any]] = []
        while self.seq < seq:
            message = self.next()
            if message["type"] in SEQ_EVENTS:
                events.append(message)
                self.seq = message["seq"]
        return events

    def close(self) -> None:
        self.socket.close()


def current_seq(listing) -> int:
    return Listing.objects.values_list("seq", flat=True).get(pk=listing.pk)


def rest_listing(server, listing) -> dict[str, Any]:
    response = httpx.get(f"{server.http_url}/v1/listings/{listing.pk}", timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()


def test_each_reason_reaches_a_subscriber_at_the_next_seq(server):
    seller, staff = UserFactory(), UserFactory(is_staff=True)
    alice, bob = UserFactory(), UserFactory()
    listing = ListingFactory(seller=seller, starting_price_cents=1000)
    subscriber = Subscriber(server, str(listing.pk))
    try:
        bid_place(listing_id=listing.pk, bidder=alice, amount_cents=1000, max_amount_cents=2000)
        placed = bid_place(listing_id=listing.pk, bidder=bob, amount_cents=3000)
        bid_retract(bid_id=placed.bid.pk, user=bob)
        listing_update(listing_id=listing.pk, user=seller, data={"title": "Renamed"})
        user_suspend(user_id=seller.pk, staff_user=staff, reason="checking")
        user_reinstate(user_id=seller.pk, staff_user=staff)
        events = subscriber.events_until(current_seq(listing))
    finally:
        subscriber.close()
    assert [(e["type"], e.get("reason"), e["seq"]) for e in events] == [
        ("bid_placed", None, 1), ("bid_placed", None, 2),
        ("listing_updated", "retraction", 3), ("listing_updated", "edit", 4),
        ("listing_updated", "paused", 5), ("listing_updated", "reinstated", 6)]
    # the retraction's event carries the replayed price: as if bob had never bid
    retraction = events[2]["listing"]
    assert (retraction["current_price_cents"], retraction["bid_count"],
            retraction["minimum_next_bid_cents"]) == (1000, 1, 1050)
    assert events[3]["listing"]["title"] == "Renamed"
    # and the last event's listing is what REST answers now
    assert_same_listing(events[-1]["listing"], rest_listing(server, listing))


def test_no_gap_when_the_leader_raises_their_own_maximum(server):
    alice, bob = UserFactory(), UserFactory()
    listing = ListingFactory(starting_price_cents=1000)
    subscriber = Subscriber(server, str(listing.pk))
    try:
        bid_place(listing_id=listing.pk, bidder=alice, amount_cents=1000, max_amount_cents=2000)
        bid_place(listing_id=listing.pk, bidder=bob, amount_cents=1100)
        raised = bid_place(listing_id=listing.pk, bidder=alice, amount_cents=1500,
                           max_amount_cents=9000)
        assert raised.bid.is_max_raise
        bid_place(listing_id=listing.pk, bidder=bob, amount_cents=3000)
        events = subscriber.events_until(current_seq(listing))
    finally:
        subscriber.close()
    assert [e["seq"] for e in events] == [1, 2, 3]
    # bob's bid, and alice's proxy answering it, each under the bidder's alias
    assert events[-1]["bid"]["bidder"]["alias"] == "Bidder 2"
    assert events[-1]["autoBid"]["bidder"]["alias"] == "Bidder 1"
    assert_same_listing(events[-1]["listing"], rest_listing(server, listing))


def assert_same_listing(seen: dict[str, Any], rest: dict[str, Any]) -> None:
    """The event's listing (the full representation, or the live state of `bid_placed`)
    equals REST's on every key it has; the view count moves with every GET."""
    keys = set(seen) - {"view_count"}
    assert {k: seen[k] for k in keys} == {k: rest[k] for k in keys}


# --- The property ------------------------------------------------------------------------

ACTIONS = st.lists(st.tuples(st.sampled_from(["bid", "raise", "retract", "edit"]),
                             st.integers(0, 2), st.integers(0, 10**6)),
                   min_size=1, max_size=8)


@hypothesis_settings(max_examples=8, deadline=None, derandomize=True,
                     suppress_health_check=[HealthCheck.function_scoped_fixture,
                                            HealthCheck.too_slow])
@given(actions=ACTIONS)
def test_a_subscriber_sees_consecutive_seqs_and_ends_with_the_rest_state(server, actions):
    """For random bids, raises, retractions and edits, the `seq`s a subscriber receives are
    consecutive from its snapshot's, and the last event's listing equals REST's."""
    seller = UserFactory()
    bidders = [UserFactory() for _ in range(3)]
    listing = ListingFactory(seller=seller, starting_price_cents=1000)
    subscriber = Subscriber(server, str(listing.pk))
    try:
        start = subscriber.seq
        for kind, who, seed in actions:
            act(listing, seller, bidders[who], kind, random.Random(seed))
        final = current_seq(listing)
        events = subscriber.events_until(final)
    finally:
        subscriber.close()
    assert [e["seq"] for e in events] == list(range(start + 1, final + 1))
    if events:
        last = events[-1]
        rest = rest_listing(server, listing)
        if last["type"] == "auction_extended":
            assert (last["endsAt"], last["seq"]) == (rest["ends_at"], rest["seq"])
        else:
            assert_same_listing(last["listing"], rest)


def act(listing, seller, bidder, kind: str, rng: random.Random) -> None:
    row = Listing.objects.get(pk=listing.pk)
    state = selectors.auction_state(row)
    try:
        if kind == "bid":
            amount = rules.minimum_next_bid(state) + rng.choice([0, 0, 50, 500])
            maximum = amount + rng.choice([0, 0, 300, 3000])
            bid_place(listing_id=listing.pk, bidder=bidder, amount_cents=amount,
                      max_amount_cents=maximum)
        elif kind == "raise" and row.leader_id is not None:
            leader = User.objects.get(pk=row.leader_id)
            amount = rules.minimum_next_bid(state)
            bid_place(listing_id=listing.pk, bidder=leader, amount_cents=amount,
                      max_amount_cents=max(amount, (row.leader_max_cents or 0) + 1000))
        elif kind == "retract":
            bids = list(Bid.objects.filter(listing=listing, status=Bid.Status.ACTIVE,
                                           is_auto_bid=False).order_by("seq"))
            if bids:
                bid = rng.choice(bids)
                bid_retract(bid_id=bid.pk, user=bid.bidder)
        elif kind == "edit":
            listing_update(listing_id=listing.pk, user=seller,
                           data={"description": f"edit {rng.randrange(10**9)}"})
    except Conflict:
        pass  # a refused change changes nothing: nothing to see

