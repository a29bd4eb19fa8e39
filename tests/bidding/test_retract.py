"""Retraction: eBay's time rule, and the state rebuilt as if the bids had never been placed."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from bidding import selectors
from bidding.models import Bid
from bidding.services import bid_place, bid_retract
from biddt.errors import Conflict, NotFound
from tests.bidding.helpers import as_tuple, replayed_state, row_state
from tests.factories import ListingFactory, UserFactory

pytestmark = pytest.mark.django_db
T0 = "2030-01-01 12:00:00Z"


@pytest.fixture
def people():
    return UserFactory(display_name="alice"), UserFactory(display_name="bob"), UserFactory()


def test_with_12h_left_all_the_callers_bids_go_and_the_state_is_replayed(people):
    alice, bob, carol = people
    listing = ListingFactory(starting_price_cents=1000)
    bid_place(listing_id=listing.pk, bidder=alice, amount_cents=1000, max_amount_cents=2000)
    bid_place(listing_id=listing.pk, bidder=bob, amount_cents=1500, max_amount_cents=6000)
    bid_place(listing_id=listing.pk, bidder=carol, amount_cents=2500)
    first_bob = Bid.objects.filter(bidder=bob).first()
    bid_place(listing_id=listing.pk, bidder=bob, amount_cents=3000, max_amount_cents=7000)
    seq_before = listing.seq if row_state(listing) else 0

    retracted = bid_retract(bid_id=first_bob.pk, user=bob)

    assert len(retracted) == 2
    assert set(Bid.objects.filter(bidder=bob).values_list("status", flat=True)) == {"retracted"}
    # as if bob had never bid: alice (max 2000) then carol (2500) takes the lead at 2050
    assert row_state(listing) == (2050, 2, carol.pk, 2500)
    assert row_state(listing) == as_tuple(replayed_state(listing))
    assert listing.seq == seq_before + 1
    active = Bid.objects.filter(listing=listing, status="active")
    assert active.count() == listing.bid_count
    assert not active.filter(is_auto_bid=True).exists()


def test_retraction_reinserts_the_automatic_bids_the_replay_implies(people):
    alice, bob, carol = people
    listing = ListingFactory(starting_price_cents=1000)
    bid_place(listing_id=listing.pk, bidder=alice, amount_cents=1000, max_amount_cents=5000)
    bid_place(listing_id=listing.pk, bidder=bob, amount_cents=4000)      # alice answers 4100
    carol_bid = bid_place(listing_id=listing.pk, bidder=carol, amount_cents=4200).bid  # → 4300
    bid_retract(bid_id=carol_bid.pk, user=carol)
    history = list(Bid.objects.filter(listing=listing, status="active")
                   .order_by("seq", "is_auto_bid")
                   .values_list("bidder_id", "amount_cents", "is_auto_bid"))
    assert history == [(alice.pk, 1000, False), (bob.pk, 4000, False), (alice.pk, 4100, True)]
    assert row_state(listing) == (4100, 3, alice.pk, 5000)


def test_under_12h_only_the_latest_bid_within_an_hour(people):
    alice, bob, _ = people
    with time_machine.travel(T0, tick=False) as clock:
        listing = ListingFactory(ends_at=timezone.now() + timedelta(hours=6))
        first = bid_place(listing_id=listing.pk, bidder=alice, amount_cents=1000).bid
        bid_place(listing_id=listing.pk, bidder=bob, amount_cents=1100)
        latest = bid_place(listing_id=listing.pk, bidder=alice, amount_cents=1200).bid
        # an older bid is refused
        with pytest.raises(Conflict) as err:
            bid_retract(bid_id=first.pk, user=alice)
        assert err.value.detail.code == "retraction_not_allowed"
        clock.shift(timedelta(minutes=59))
        assert bid_retract(bid_id=latest.pk, user=alice) == [latest.pk]
        first.refresh_from_db()
        assert first.status == "active"
        assert row_state(listing) == as_tuple(replayed_state(listing))
        assert listing.leader_id == bob.pk


def test_under_12h_after_an_hour_is_refused(people):
    alice, _, _ = people
    with time_machine.travel(T0, tick=False) as clock:
        listing = ListingFactory(ends_at=timezone.now() + timedelta(hours=6))
        bid = bid_place(listing_id=listing.pk, bidder=alice, amount_cents=1000).bid
        clock.shift(timedelta(minutes=61))
        with pytest.raises(Conflict) as err:
            bid_retract(bid_id=bid.pk, user=alice)
        assert err.value.detail.code == "retraction_not_allowed"


def test_ended_auction_and_retracted_bids_are_refused(people):
    alice, _, _ = people
    listing = ListingFactory()
    bid = bid_place(listing_id=listing.pk, bidder=alice, amount_cents=1000).bid
    bid_retract(bid_id=bid.pk, user=alice)
    with pytest.raises(Conflict):
        bid_retract(bid_id=bid.pk, user=alice)
    assert row_state(listing) == (1000, 0, None, None)
    other = ListingFactory()
    bid = bid_place(listing_id=other.pk, bidder=alice, amount_cents=1000).bid
    type(other).objects.filter(pk=other.pk).update(status="sold")
    with pytest.raises(Conflict):
        bid_retract(bid_id=bid.pk, user=alice)


def test_another_users_bid_is_not_found(people):
    alice, bob, _ = people
    bid = bid_place(listing_id=ListingFactory().pk, bidder=alice, amount_cents=1000).bid
    with pytest.raises(NotFound):
        bid_retract(bid_id=bid.pk, user=bob)


def test_a_lead_retaken_becomes_a_silent_raise_once_the_rival_retracts(people):
    # given alice leads, bob takes over, and alice takes the lead back with a higher maximum
    alice, bob, _ = people
    listing = ListingFactory(starting_price_cents=1000)
    bid_place(listing_id=listing.pk, bidder=alice, amount_cents=1000, max_amount_cents=2000)
    bob_bid = bid_place(listing_id=listing.pk, bidder=bob, amount_cents=2100).bid
    retaken = bid_place(listing_id=listing.pk, bidder=alice, amount_cents=2200,
                        max_amount_cents=5000).bid
    assert not Bid.objects.get(pk=retaken.pk).is_max_raise
    # when bob retracts (with more than 12 h left)
    bid_retract(bid_id=bob_bid.pk, user=bob)
    # then, as if bob had never bid, alice's second bid only raised her own maximum
    assert row_state(listing) == (1000, 1, alice.pk, 5000)
    assert row_state(listing) == as_tuple(replayed_state(listing))
    assert Bid.objects.get(pk=retaken.pk).is_max_raise
    assert [b.amount_cents for b in selectors.bid_history(listing=listing)] == [1000]
