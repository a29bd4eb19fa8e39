"""Real concurrency on PostgreSQL: many threads, each with its own connection."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from bidding import selectors
from bidding.models import Bid
from bidding.services import auction_sweep, bid_place
from biddt.errors import APIException
from escrow.models import Transaction
from listings import rules
from listings.models import Listing
from notifications.models import Notification
from tests.bidding.helpers import as_tuple, replayed_state, row_state
from tests.factories import ListingFactory, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_threads(count: int, target: Callable[[int, threading.Barrier], None]) -> None:
    barrier = threading.Barrier(count, timeout=60)
    errors: list[BaseException] = []

    def body(index: int) -> None:
        try:
            target(index, barrier)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
            barrier.abort()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors


def test_32_threads_bidding_on_one_listing():
    listing = ListingFactory(starting_price_cents=1000)
    users = [UserFactory() for _ in range(32)]
    rounds = 6
    accepted: list[int] = []
    refused: list[int] = []
    lock = threading.Lock()

    def bidder(index: int, barrier: threading.Barrier) -> None:
        rng = random.Random(index)
        for _ in range(rounds):
            row = Listing.objects.get(pk=listing.pk)
            # spread the amounts so that many of the 32 still clear the price moved by others
            amount = (rules.minimum_next_bid(selectors.auction_state(row))
                      + index * 300 + rng.randrange(0, 100))
            maximum = amount + rng.choice([0, 0, 100, 1000, 5000])
            barrier.wait()
            try:
                placed = bid_place(listing_id=listing.pk, bidder=users[index],
                                   amount_cents=amount, max_amount_cents=maximum)
            except APIException as exc:
                assert exc.detail.code == "bid_too_low", exc.detail
                with lock:
                    refused.append(index)
                continue
            with lock:
                accepted.append(placed.bid.seq)

    run_threads(32, bidder)

    user_bids = Bid.objects.filter(listing=listing, is_auto_bid=False)
    seqs = sorted(user_bids.values_list("seq", flat=True))
    assert len(accepted) + len(refused) == 32 * rounds
    assert len(accepted) == len(seqs) >= 2 * rounds  # no lost bid
    assert seqs == sorted(accepted) == list(range(1, len(seqs) + 1))  # no duplicate seq
    state = row_state(listing)
    assert listing.bids_seq == len(seqs)  # every bid row has its place
    # seq counted the changes others saw: every bid but the leaders' silent raises (the
    # listing ends in a day: no soft-close extension)
    raises = Bid.objects.filter(listing=listing, is_max_raise=True).count()
    assert listing.seq == len(seqs) - raises
    assert state == as_tuple(replayed_state(listing))
    # bid_count counts the rows others see (not a leader's silent raise of their maximum)
    assert Bid.objects.filter(listing=listing, is_max_raise=False).count() == listing.bid_count


def test_concurrent_retries_with_one_idempotency_key_place_one_bid():
    from rest_framework.test import APIClient

    from tests.conftest import bearer

    listing = ListingFactory()
    user = UserFactory()
    token = bearer(user)
    statuses: list[int] = []

    def retry(index: int, barrier: threading.Barrier) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=token)
        barrier.wait()
        response = client.post(f"/v1/listings/{listing.pk}/bids", {"amount_cents": 1000},
                               HTTP_IDEMPOTENCY_KEY="one-key")
        statuses.append(response.status_code)

    run_threads(8, retry)
    assert statuses == [201] * 8
    assert Bid.objects.filter(listing=listing).count() == 1


def test_4_sweepers_of_4_threads_close_500_auctions_once_each():
    users = [UserFactory() for _ in range(3)]
    listings = [ListingFactory(seller=users[0]) for _ in range(500)]
    for listing in listings[::2]:
        bid_place(listing_id=listing.pk, bidder=users[1], amount_cents=1000)
    Listing.objects.update(ends_at=timezone.now() - timedelta(seconds=1))
    closed: list[int] = []

    def sweeper(index: int, barrier: threading.Barrier) -> None:
        barrier.wait()
        # each sweeper closes on 4 threads of its own: 16 closers race for every auction
        closed.append(auction_sweep(limit=1000, threads=4))

    run_threads(4, sweeper)

    assert sum(closed) == 500
    assert not Listing.objects.filter(status="active").exists()
    assert Listing.objects.filter(status="sold").count() == 250
    assert Transaction.objects.count() == 250
    per_listing = Counter(Notification.objects.filter(type="auction_ended")
                          .values_list("data__listing_id", flat=True))
    assert len(per_listing) == 500 and set(per_listing.values()) == {1}
    won = Counter(Notification.objects.filter(type="won").values_list("dedupe_key", flat=True))
    assert len(won) == 250 and set(won.values()) == {1}
    assert set(Listing.objects.values_list("seq", flat=True)) <= {1, 2}

