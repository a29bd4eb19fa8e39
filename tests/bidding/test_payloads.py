"""The bid's hot-path payload builders render byte for byte what the serializers render.

`bid_placed_data` (201 body, socket `ack.bid`), `bid_history_data` (`bid_placed.bid` and
`autoBid`) and `listing_live_data` (`bid_placed.listing`) replace the serializers on every
accepted bid; the serializers stay the schema. Both are rendered by DRF's JSONRenderer (what
the client receives) over many generated bids and listings and compared as bytes.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.renderers import JSONRenderer

from accounts.models import User
from bidding.api.serializers import (
    BidHistorySerializer,
    BidPlacedSerializer,
    ListingLiveSerializer,
)
from bidding.models import Bid
from bidding.payloads import bid_history_data, bid_placed_data, listing_live_data
from listings.models import Listing, ListingStatus

cents = st.integers(1, 10**15)
zones = st.sampled_from([UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=5,
                                                                             minutes=30))])
aware = st.builds(lambda d, tz: d.replace(tzinfo=UTC).astimezone(tz),
                  st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1)),
                  zones)
when = aware | st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1))
names = st.none() | st.text(min_size=1, max_size=40).filter(str.strip)


@st.composite
def listings(draw) -> Listing:
    starting = draw(cents)
    bid_count = draw(st.integers(0, 10**6))
    current = starting if bid_count == 0 else draw(st.integers(starting, 2 * 10**15))
    leader = None if bid_count == 0 else draw(st.uuids())
    return Listing(
        id=draw(st.uuids()), seller_id=uuid.uuid4(), starting_price_cents=starting,
        reserve_price_cents=draw(st.none() | cents), current_price_cents=current,
        bid_count=bid_count, leader_id=leader,
        leader_max_cents=None if leader is None else draw(st.integers(current, 3 * 10**15)),
        ends_at=draw(st.none() | when), status=draw(st.sampled_from(ListingStatus.values)),
        seq=draw(st.integers(0, 10**9)),
    )


@st.composite
def bids(draw) -> Bid:
    listing = draw(listings())
    bidder = User(id=draw(st.booleans()) and listing.leader_id or uuid.uuid4(),
                  display_name=draw(names) or "")
    amount = draw(cents)
    bid = Bid(id=draw(st.uuids()), listing=listing, bidder=bidder, amount_cents=amount,
              max_amount_cents=draw(st.integers(amount, 2 * 10**15)),
              is_auto_bid=draw(st.booleans()), is_max_raise=draw(st.booleans()),
              status=draw(st.sampled_from(Bid.Status.values)), seq=listing.seq,
              created_at=draw(when))
    return bid


def render(data) -> bytes:
    return JSONRenderer().render(data)


@settings(max_examples=300, deadline=None)
@given(listing=listings())
def test_listing_live_data_renders_as_the_serializer(listing):
    assert render(listing_live_data(listing)) == render(ListingLiveSerializer(listing).data)


@settings(max_examples=300, deadline=None)
@given(bid=bids())
def test_bid_history_data_renders_as_the_serializer(bid):
    expected = render(BidHistorySerializer(bid).data)
    assert render(bid_history_data(bid)) == expected
    # The leader's name read with the locked row gives the same bytes as the loaded user.
    assert render(bid_history_data(bid, bidder_name=bid.bidder.masked_name)) == expected


@settings(max_examples=300, deadline=None)
@given(bid=bids())
def test_bid_placed_data_renders_as_the_serializer(bid):
    assert render(bid_placed_data(bid)) == render(BidPlacedSerializer(bid).data)


@settings(max_examples=200, deadline=None)
@given(bid=bids())
def test_idempotency_stores_the_bid_body_as_a_replay_renders_it(bid):
    from biddt.idempotency import as_json

    # the 201 body is kept without a render under the lock, and reads back the same bytes
    body = bid_placed_data(bid)
    stored = as_json(body)
    assert stored is body
    assert render(stored) == render(BidPlacedSerializer(bid).data)
    # serializer data with non-JSON types still goes through the renderer
    data = BidHistorySerializer(bid).data
    assert render(as_json({"created": bid.created_at, **data})) == render(
        {"created": bid.created_at, **data})
