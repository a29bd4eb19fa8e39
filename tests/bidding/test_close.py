"""Closing exactly once: sold/unsold, the transaction, notifications, events, ending soon."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from bidding import tasks
from bidding.services import auction_close, auction_ending_soon_announce, auction_sweep, bid_place
from escrow.models import Transaction
from listings.models import Listing
from notifications.models import Notification
from tests.factories import ListingFactory, UserFactory

pytestmark = pytest.mark.django_db
T0 = "2030-01-01 12:00:00Z"


def ended(**fields) -> Listing:
    return ListingFactory(ends_at=timezone.now() + timedelta(minutes=5), **fields)


def test_sold_to_the_leader_once(sent_events, django_capture_on_commit_callbacks):
    with time_machine.travel(T0, tick=False) as clock:
        listing = ended(starting_price_cents=10000)
        winner, loser = UserFactory(), UserFactory()
        bid_place(listing_id=listing.pk, bidder=loser, amount_cents=10000)
        bid_place(listing_id=listing.pk, bidder=winner, amount_cents=10250, max_amount_cents=20000)
        clock.shift(timedelta(minutes=6))
        sent_events.clear()
        with django_capture_on_commit_callbacks(execute=True):
            assert auction_close(listing_id=listing.pk) is True
            assert auction_close(listing_id=listing.pk) is False
    listing.refresh_from_db()
    assert listing.status == "sold" and listing.closed_at is not None
    txn = Transaction.objects.get()
    assert (txn.buyer_id, txn.amount_cents, txn.fee_cents, txn.seller_payout_cents) == (
        winner.pk, 10250, 615, 10250 - 615 - 199)
    assert txn.winning_bid.bidder_id == winner.pk and txn.status == "pending_payment"
    assert txn.payment_due_at == listing.closed_at + timedelta(hours=48)
    kinds = set(Notification.objects.values_list("user_id", "type"))
    assert kinds == {(winner.pk, "won"), (loser.pk, "lost"), (listing.seller_id, "auction_ended")}
    room = [p for g, p in sent_events if g == f"listing.{listing.pk}"]
    assert room == [{"type": "auction_ended", "listingId": str(listing.pk), "seq": listing.seq,
                     "status": "sold", "finalPrice": 10250}]


def test_unsold_without_bids_or_below_reserve():
    with time_machine.travel(T0, tick=False) as clock:
        empty = ended()
        reserve = ended(reserve_price_cents=5000)
        bidder = UserFactory()
        bid_place(listing_id=reserve.pk, bidder=bidder, amount_cents=1000)
        clock.shift(timedelta(minutes=6))
        assert auction_sweep() == 2
    for listing in (empty, reserve):
        listing.refresh_from_db()
        assert listing.status == "unsold"
    assert not Transaction.objects.exists()
    assert Notification.objects.get(user=bidder).type == "lost"


def test_not_due_and_extended_auctions_stay_open():
    with time_machine.travel(T0, tick=False) as clock:
        listing = ended()
        clock.shift(timedelta(minutes=4, seconds=30))
        bid_place(listing_id=listing.pk, bidder=UserFactory(), amount_cents=1000)  # → +120 s
        clock.shift(timedelta(seconds=60))
        assert auction_close(listing_id=listing.pk) is False
        clock.shift(timedelta(seconds=61))
        assert auction_close(listing_id=listing.pk) is True


def test_task_and_command_sweep():
    with time_machine.travel(T0, tick=False) as clock:
        for _ in range(3):
            ended()
        ListingFactory()  # not due
        clock.shift(timedelta(minutes=6))
        assert tasks.auction_close_due.delay().get() == 3
        assert Listing.objects.filter(status="active").count() == 1
        ended()
        clock.shift(timedelta(minutes=6))
        out = StringIO()
        call_command("close_auctions", stdout=out)
    assert out.getvalue().strip() == "closed 1 auction(s)"


def test_beat_schedules_the_sweep_and_ending_soon(settings):
    tasks_scheduled = {e["task"]: e["schedule"] for e in settings.CELERY_BEAT_SCHEDULE.values()}
    assert tasks_scheduled["bidding.tasks.auction_close_due"] == 5.0
    assert tasks_scheduled["bidding.tasks.auction_ending_soon"] == 5.0


def test_ending_soon_once_per_listing(sent_events, django_capture_on_commit_callbacks):
    with (time_machine.travel(T0, tick=False) as clock,
          django_capture_on_commit_callbacks(execute=True)):
        soon = ListingFactory(ends_at=timezone.now() + timedelta(seconds=58))
        ListingFactory(ends_at=timezone.now() + timedelta(seconds=90))
        assert auction_ending_soon_announce() == 1
        clock.shift(5)
        assert auction_ending_soon_announce() == 0
    assert sent_events == [(f"listing.{soon.pk}", {"type": "ending_soon",
                                                   "listingId": str(soon.pk),
                                                   "secondsRemaining": 58})]
