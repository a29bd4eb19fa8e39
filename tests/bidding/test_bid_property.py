"""Property: for any bid sequence through `bid_place`, the row equals the replay of the bids,
the price never decreases nor exceeds the leader's maximum, and the leader holds the highest
maximum (the earliest on ties)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bidding import selectors
from bidding.models import Bid
from bidding.services import bid_place
from biddt.errors import Conflict
from listings import rules
from tests.bidding.helpers import as_tuple, replayed_state, row_state
from tests.factories import ListingFactory, UserFactory

steps = st.lists(
    st.tuples(st.integers(0, 3), st.integers(-60, 3000), st.none() | st.integers(0, 20000)),
    min_size=1, max_size=12,
)


@pytest.mark.django_db
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=steps, reserve=st.none() | st.integers(1000, 8000))
def test_row_state_is_the_replay_of_the_bids(steps, reserve):
    listing = ListingFactory(starting_price_cents=1000, reserve_price_cents=reserve)
    users = [UserFactory() for _ in range(4)]
    last_price = 0
    for who, delta, extra in steps:
        listing.refresh_from_db()
        amount = max(1, rules.minimum_next_bid(selectors.auction_state(listing)) + delta)
        try:
            bid_place(listing_id=listing.pk, bidder=users[who], amount_cents=amount,
                      max_amount_cents=None if extra is None else amount + extra)
        except Conflict as err:
            assert err.detail.code == "bid_too_low"
            continue
        state = row_state(listing)
        assert state == as_tuple(replayed_state(listing))
        price, _, leader_id, leader_max = state
        assert last_price <= price <= leader_max
        last_price = price
        mine = list(Bid.objects.filter(listing=listing, is_auto_bid=False).order_by("seq"))
        top = max(b.max_amount_cents for b in mine)
        assert leader_max == top
        assert next(b for b in mine if b.max_amount_cents == top).bidder_id == leader_id
        # bid_count counts the rows others see: not a leader's silent raise of their maximum
        visible = Bid.objects.filter(listing=listing, is_max_raise=False)
        assert visible.count() == listing.bid_count
        assert len(selectors.bid_history(listing=listing)) == listing.bid_count
