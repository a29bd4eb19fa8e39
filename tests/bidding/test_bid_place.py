"""`bid_place`: the proxy rules through the service, refusals, soft close, events."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import time_machine
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.fields import DateTimeField

from bidding import selectors
from bidding.models import Bid
from bidding.services import BidTooLow, bid_place
from biddt.errors import Conflict, NotFound, ValidationError
from notifications.models import Notification
from tests.bidding.helpers import as_tuple, replayed_state, row_state
from tests.factories import ListingFactory, UserFactory

pytestmark = pytest.mark.django_db


def code_of(exc) -> str:
    detail = exc.detail
    while isinstance(detail, dict | list):
        detail = next(iter(detail.values())) if isinstance(detail, dict) else detail[0]
    return detail.code


@pytest.fixture
def listing():
    return ListingFactory(starting_price_cents=1000)


@pytest.fixture
def alice():
    return UserFactory(display_name="alice")


@pytest.fixture
def bob():
    return UserFactory(display_name="bob")


def test_first_bid_leads_at_the_starting_price(listing, alice):
    # given an auction at $10.00 with no bid
    # when alice bids $10.00 with a $50.00 maximum
    placed = bid_place(listing_id=listing.pk, bidder=alice, amount_cents=1000,
                       max_amount_cents=5000)
    # then she leads at the starting price, her maximum hidden on the row
    assert placed.is_leading and placed.outbid_id is None
    assert row_state(listing) == (1000, 1, alice.pk, 5000)
    assert listing.seq == 1
    bid = Bid.objects.get()
    assert (bid.amount_cents, bid.max_amount_cents, bid.requested_amount_cents, bid.seq) == (
        1000, 5000, 1000, 1)


def test_higher_maximum_takes_the_lead_one_increment_above_the_old_maximum(listing, alice, bob):
    bid_place(listing_id=listing.pk, bidder=alice, amount_cents=1000, max_amount_cents=2000)
    placed = bid_place(listing_id=listing.pk, bidder=bob, amount_cents=1100,
                       max_amount_cents=5000)
    assert placed.is_leading and placed.outbid_id == alice.pk
    # 2000 + increment(2000)=50
    assert row_state(listing) == (2050, 2, bob.pk, 5000)


def test_lower_maximum_is_accepted_and_the_proxy_answers(listing, alice, bob):
    bid_place(listing_id=listing.pk, bidder=alice, amount_cents=1000, max_amount_cents=5000)
    placed = bid_place(listing_id=listing.pk, bidder=bob, amount_cents=2000)
    assert not placed.is_leading and placed.outbid_id is None
    assert row_state(listing) == (2050, 3, alice.pk, 5000)
    history = list(Bid.objects.order_by("seq", "is_auto_bid")
                   .values_list("bidder_id", "amount_cents", "is_auto_bid", "seq"))
    assert history == [(alice.pk, 1000, False, 1), (bob.pk, 2000, False, 2),
                       (alice.pk, 2050, True, 2)]


def test_tie_goes_to_the_earlier_bid(listing, alice, bob):
    bid_place(listing_id=listing.pk, bidder=alice, amount_cents=1000, max_amount_cents=3000)
    placed = bid_place(listing_id=listing.pk, bidder=bob, amount_cents=3000)
    assert not placed.is_leading
    assert row_state(listing) == (3000, 3, alice.pk, 3000)


def test_leader_raising_their_maximum_changes_only_the_maximum(listing, alice, bob,
                                                                sent_events,
                                                                django_capture_on_commit_callbacks):
    # given alice leads over bob with a 20.00 maximum
    bid_place(listing_id=listing.pk, bidder=alice, amount_cents=1000, max_amount_cents=2000)
    bid_place(listing_id=listing.pk, bidder=bob, amount_cents=1100)
    price, count, leader, _ = row_state(listing)
    seq, history = listing.seq, list(selectors.bid_history(listing=listing))
    # when she raises her maximum to 90.00
    with django_capture_on_commit_callbacks(execute=True):
        placed = bid_place(listing_id=listing.pk, bidder=alice, amount_cents=1500,
                           max_amount_cents=9000)
    # then only her maximum moved: price, leader, bid count and the public history stay
    assert placed.is_leading and placed.outbid_id is None and not placed.extended
    assert row_state(listing) == (price, count, leader, 9000)
    assert list(selectors.bid_history(listing=listing)) == history
    # her row is kept (the state is still the replay of the bids), marked as a silent raise
    assert placed.bid.is_max_raise and placed.bid.bidder_id == alice.pk
    assert row_state(listing) == as_tuple(replayed_state(listing))
    # and nobody else can see it: the room is told nothing and seq doesn't move
    assert sent_events == []
    assert listing.seq == seq


def test_leader_raise_across_the_reserve_is_a_bid_everyone_sees(alice, sent_events,
                                                                django_capture_on_commit_callbacks):
    # given alice leads at 10.00 with a 30.00 maximum under a 40.00 reserve
    listing = ListingFactory(starting_price_cents=1000, reserve_price_cents=4000)
    bid_place(listing_id=listing.pk, bidder=alice, amount_cents=1000, max_amount_cents=3000)
    # when she raises her maximum to 50.00
    with django_capture_on_commit_callbacks(execute=True):
        placed = bid_place(listing_id=listing.pk, bidder=alice, amount_cents=1050,
                           max_amount_cents=5000)
    # then the price jumps to the reserve: a visible bid, counted, shown and announced
    assert not placed.bid.is_max_raise
    assert row_state(listing) == (4000, 2, alice.pk, 5000)
    assert [b.amount_cents for b in selectors.bid_history(listing=listing)] == [4000, 1000]
    assert [p["type"] for _, p in sent_events] == ["bid_placed"]
    assert sent_events[0][1]["listing"]["reserve_met"] is True


def test_leader_bid_that_does_not_raise_names_what_would_be_accepted(listing, alice):
    # given alice leads with a 50.00 maximum (the listing's minimum is 10.50)
    bid_place(listing_id=listing.pk, bidder=alice, amount_cents=1000, max_amount_cents=5000)
    # when she bids 20.00, above the minimum but not above her own maximum
    with pytest.raises(BidTooLow) as err:
        bid_place(listing_id=listing.pk, bidder=alice, amount_cents=2000)
    # then the refusal names an amount above her maximum, not the minimum she cleared
    assert err.value.minimum_next_bid_cents == 5001
    assert str(err.value.detail).endswith("minimum_next_bid_cents=5001")


def test_reserve_jump(alice):
    listing = ListingFactory(starting_price_cents=1000, reserve_price_cents=4000)
    bid_place(listing_id=listing.pk, bidder=alice, amount_cents=1000, max_amount_cents=5000)
    assert row_state(listing)[0] == 4000


def test_reserve_not_reached_keeps_the_price(alice):
    listing = ListingFactory(starting_price_cents=1000, reserve_price_cents=4000)
    bid_place(listing_id=listing.pk, bidder=alice, amount_cents=1000, max_amount_cents=3000)
    assert row_state(listing)[0] == 1000


def test_bid_too_low_names_the_minimum(listing, alice, bob):
    bid_place(listing_id=listing.pk, bidder=alice, amount_cents=1000)
    with pytest.raises(BidTooLow) as err:
        bid_place(listing_id=listing.pk, bidder=bob, amount_cents=1049)
    assert err.value.minimum_next_bid_cents == 1050
    assert code_of(err.value) == "bid_too_low"
    assert "minimum_next_bid_cents=1050" in str(err.value.detail)


def test_first_bid_below_the_start_is_too_low(listing, alice):
    with pytest.raises(BidTooLow):
        bid_place(listing_id=listing.pk, bidder=alice, amount_cents=999)
    assert not Bid.objects.exists()


def test_invalid_max(listing, alice):
    with pytest.raises(ValidationError) as err:
        bid_place(listing_id=listing.pk, bidder=alice, amount_cents=2000,
                  max_amount_cents=1500)
    assert code_of(err.value) == "invalid_max"


@pytest.mark.parametrize(("overrides", "code"), [
    # a closed auction has ended, however soon after its end the sweep closed it
    ({"status": "sold"}, "auction_ended"),
    ({"status": "unsold", "ends_in": -timedelta(minutes=5)}, "auction_ended"),
    ({"status": "cancelled"}, "listing_not_active"),
    ({"starts_at_in": timedelta(hours=1), "ends_in": timedelta(days=1)}, "listing_not_active"),
    ({"ends_in": -timedelta(seconds=1)}, "auction_ended"),
    ({"auction_type": "fixed"}, "fixed_price_listing"),
])
def test_refusals(alice, overrides, code):
    now = timezone.now()
    fields = {k: v for k, v in overrides.items() if not k.endswith("_in")}
    if "ends_in" in overrides:
        fields["ends_at"] = now + overrides["ends_in"]
        fields["starts_at"] = now - timedelta(hours=2)
    if "starts_at_in" in overrides:
        fields["starts_at"] = now + overrides["starts_at_in"]
    listing = ListingFactory(**fields)
    with pytest.raises(Conflict) as err:
        bid_place(listing_id=listing.pk, bidder=alice, amount_cents=5000)
    assert code_of(err.value) == code
    assert not Bid.objects.exists()


def test_own_listing(listing):
    with pytest.raises(Conflict) as err:
        bid_place(listing_id=listing.pk, bidder=listing.seller, amount_cents=5000)
    assert code_of(err.value) == "own_listing"


def test_drafts_of_others_and_unknown_listings_are_not_found(alice):
    draft = ListingFactory(status="draft")
    with pytest.raises(NotFound):
        bid_place(listing_id=draft.pk, bidder=alice, amount_cents=5000)
    with pytest.raises(NotFound):
        bid_place(listing_id="00000000-0000-0000-0000-000000000000", bidder=alice,
                  amount_cents=5000)


def test_suspended_bidder_is_refused(listing):
    suspended = UserFactory(status="suspended")
    with pytest.raises(Exception) as err:
        bid_place(listing_id=listing.pk, bidder=suspended, amount_cents=5000)
    assert code_of(err.value) == "account_suspended"


def test_soft_close_extends_the_end(alice, bob):
    with time_machine.travel("2030-01-01 12:00:00Z", tick=False):
        listing = ListingFactory(ends_at=timezone.now() + timedelta(seconds=60))
        placed = bid_place(listing_id=listing.pk, bidder=alice, amount_cents=1000)
        assert placed.extended
        assert row_state(listing) and listing.ends_at == timezone.now() + timedelta(seconds=120)


def test_soft_close_ignores_bids_outside_the_window_and_non_moving_bids(alice, bob):
    with time_machine.travel("2030-01-01 12:00:00Z", tick=False) as clock:
        listing = ListingFactory(ends_at=timezone.now() + timedelta(seconds=121))
        assert not bid_place(listing_id=listing.pk, bidder=alice, amount_cents=1000,
                             max_amount_cents=9000).extended
        clock.shift(60)
        # the leader raising her own maximum moves neither price nor leader
        assert not bid_place(listing_id=listing.pk, bidder=alice, amount_cents=1050,
                             max_amount_cents=9500).extended
        end = row_state(listing) and listing.ends_at
        # a losing bid still moves the price: the end moves
        assert bid_place(listing_id=listing.pk, bidder=bob, amount_cents=2000).extended
        listing.refresh_from_db()
        assert listing.ends_at > end


def test_events_are_sent_after_commit(listing, alice, bob, sent_events,
                                      django_capture_on_commit_callbacks):
    bid_place(listing_id=listing.pk, bidder=alice, amount_cents=1000, max_amount_cents=2000)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        bid_place(listing_id=listing.pk, bidder=bob, amount_cents=3000)
    # nothing goes out before commit
    assert sent_events == []
    with django_capture_on_commit_callbacks(execute=True):  # the notification's own push
        for callback in callbacks:
            callback()
    groups = [g for g, _ in sent_events]
    assert groups == [f"listing.{listing.pk}", f"user.{alice.pk}", f"user.{alice.pk}"]
    placed, outbid, notification = (p for _, p in sent_events)
    assert placed["type"] == "bid_placed" and placed["seq"] == 2
    assert placed["listingId"] == str(listing.pk)
    assert placed["bid"]["amount_cents"] == 2050 and placed["bid"]["bidder"] == {
        "display_name": "b***b", "alias": "Bidder 2"}
    assert "max_amount_cents" not in placed["bid"]
    assert placed["listing"] == {"current_price_cents": 2050, "bid_count": 2,
                                 "minimum_next_bid_cents": 2100,
                                 "ends_at": placed["listing"]["ends_at"], "reserve_met": None,
                                 "seq": 2}
    assert outbid == {"type": "outbid", "listingId": str(listing.pk), "yourMaxBid": 2000,
                      "currentBid": 2050}
    assert notification["type"] == "notification"
    assert notification["notification"]["type"] == "outbid"
    assert Notification.objects.filter(user=alice, type="outbid").count() == 1


def test_proxy_answer_is_in_the_event(listing, alice, bob, sent_events,
                                      django_capture_on_commit_callbacks):
    bid_place(listing_id=listing.pk, bidder=alice, amount_cents=1000, max_amount_cents=5000)
    sent_events.clear()
    with django_capture_on_commit_callbacks(execute=True):
        bid_place(listing_id=listing.pk, bidder=bob, amount_cents=2000)
    assert len(sent_events) == 1  # nobody lost the lead: no outbid
    event = sent_events[0][1]
    assert event["bid"]["amount_cents"] == 2000 and not event["bid"]["is_auto_bid"]
    assert event["autoBid"]["amount_cents"] == 2050 and event["autoBid"]["is_auto_bid"]


def test_auction_extended_event(alice, sent_events, django_capture_on_commit_callbacks):
    listing = ListingFactory(ends_at=timezone.now() + timedelta(seconds=30))
    with django_capture_on_commit_callbacks(execute=True):
        bid_place(listing_id=listing.pk, bidder=alice, amount_cents=1000)
    # then two changes others see, one event each: the bid (the old end) then the extension
    placed, extended = (p for _, p in sent_events)
    assert (placed["type"], placed["seq"], placed["listing"]["seq"]) == ("bid_placed", 1, 1)
    assert placed["listing"]["ends_at"] == DateTimeField().to_representation(listing.ends_at)
    listing.refresh_from_db()
    assert extended == {"type": "auction_extended", "listingId": str(listing.pk), "seq": 2,
                        "endsAt": DateTimeField().to_representation(listing.ends_at)}
    assert listing.seq == 2


def test_nothing_is_sent_on_rollback(listing, alice, sent_events,
                                     django_capture_on_commit_callbacks):
    class Boom(Exception):
        pass

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(Boom), transaction.atomic():
            bid_place(listing_id=listing.pk, bidder=alice, amount_cents=1000)
            raise Boom
    assert callbacks == [] and sent_events == []
    assert not Bid.objects.exists()
    assert row_state(listing) == (1000, 0, None, None)


def test_row_equals_replay_after_a_mixed_sequence(listing, alice, bob):
    carol = UserFactory()
    for bidder, amount, max_amount in [(alice, 1000, 3000), (bob, 1500, None),
                                       (carol, 3100, 3100), (alice, 3200, 8000),
                                       (bob, 5000, 7000)]:
        bid_place(listing_id=listing.pk, bidder=bidder, amount_cents=amount,
                  max_amount_cents=max_amount)
    assert row_state(listing) == as_tuple(replayed_state(listing))
    assert Bid.objects.filter(listing=listing, is_max_raise=False).count() == listing.bid_count


def test_a_bid_inserted_without_the_raise_flag_is_a_visible_bid(listing, alice):
    # given a writer that doesn't know the column (the previous release, during a deploy)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Bid._meta.db_table} (id, listing_id, bidder_id, amount_cents, "  # noqa: S608
            "max_amount_cents, requested_amount_cents, is_auto_bid, status, seq, created_at) "
            "VALUES (%s, %s, %s, 1000, 1000, 1000, %s, 'active', 1, %s)",
            [*(Bid._meta.pk.get_db_prep_value(pk, connection)  # the vendor's UUID form
               for pk in (uuid.uuid4(), listing.pk, alice.pk)), False, timezone.now()])
    # then the database stores it as a visible bid
    assert Bid.objects.get(listing=listing).is_max_raise is False
