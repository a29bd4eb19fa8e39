"""Account closure racing bids, on PostgreSQL with real threads (each its own connection).

Whatever the interleaving, a closed account never leads an auction, never sells an active
listing with bids and never owes a handoff: exactly one of the two racers wins.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from accounts.models import User
from bidding.models import Bid
from bidding.services import bid_place, listing_buy_now
from biddt.errors import APIException
from escrow.models import Transaction
from listings.models import Listing
from privacy.services import account_delete
from tests.factories import ListingFactory, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROUNDS = 12


def race(*callables) -> list:
    """Run the callables at once (a barrier releases them together); their results or the
    API error each raised, in order."""
    barrier = threading.Barrier(len(callables))
    results: list = [None] * len(callables)

    def body(index: int) -> None:
        try:
            barrier.wait()
            results[index] = callables[index]()
        except APIException as exc:
            results[index] = exc
        except BaseException as exc:  # surfaced by the assertions
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=body, args=(i,)) for i in range(len(callables))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def code(result) -> str | None:
    return result.get_codes() if isinstance(result, APIException) else None


def test_closure_vs_a_bid_on_the_sellers_listing(pg):
    outcomes = set()
    for _ in range(ROUNDS):
        seller, bidder = UserFactory(), UserFactory()
        listing = ListingFactory(seller=seller)
        closed, bid = race(lambda: account_delete(user_id=seller.pk),
                           lambda: bid_place(listing_id=listing.pk, bidder=bidder,
                                             amount_cents=1000))
        row = Listing.objects.get(pk=listing.pk)
        deleted = User.objects.get(pk=seller.pk).deleted_at is not None
        if closed is True:
            # The closure won: the listing was cancelled before the bid could land.
            assert code(bid) == "listing_not_active", bid
            assert deleted and row.status == "cancelled" and row.bid_count == 0
            assert not Bid.objects.filter(listing=listing).exists()
            outcomes.add("closed")
        else:
            # The bid won: the closure saw it and refused.
            assert code(closed) == "account_has_open_obligations", closed
            assert not isinstance(bid, BaseException), bid
            assert not deleted and row.status == "active" and row.bid_count == 1
            outcomes.add("bid")
    assert outcomes  # at least one interleaving ran; both are checked when they happen


def test_closure_vs_the_users_own_bid(pg):
    for _ in range(ROUNDS):
        user = UserFactory()
        listing = ListingFactory()
        closed, bid = race(lambda: account_delete(user_id=user.pk),
                           lambda: bid_place(listing_id=listing.pk, bidder=user,
                                             amount_cents=1000))
        row = Listing.objects.get(pk=listing.pk)
        if closed is True:
            assert code(bid) == "account_suspended", bid
            assert row.leader_id is None and row.bid_count == 0
        else:
            assert code(closed) == "account_has_open_obligations", closed
            assert row.leader_id == user.pk
            assert User.objects.get(pk=user.pk).deleted_at is None


def test_closure_vs_the_users_buy_now(pg):
    for _ in range(ROUNDS):
        user = UserFactory()
        listing = ListingFactory(auction_type="fixed", buy_now_price_cents=2000,
                                 starting_price_cents=2000, ends_at=None)
        closed, bought = race(lambda: account_delete(user_id=user.pk),
                              lambda: listing_buy_now(listing_id=listing.pk, buyer=user))
        owes = Transaction.objects.filter(buyer=user).exists()
        if closed is True:
            assert code(bought) == "account_suspended", bought
            assert not owes
        else:
            assert code(closed) == "account_has_open_obligations", closed
            assert owes and User.objects.get(pk=user.pk).deleted_at is None


def _wait_until_blocked_on_a_lock(pid: int) -> None:
    """Return once the backend `pid` waits for a row lock (it is blocked, not just slow)."""
    with connections["default"].cursor() as cursor:
        while True:
            cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
            row = cursor.fetchone()
            if row and row[0] == "Lock":
                return
            threading.Event().wait(0.01)


def _backend_pid() -> int:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_a_closure_waits_for_an_uncommitted_bid_on_the_sellers_listing_then_refuses(pg):
    from django.db import transaction

    seller, bidder = UserFactory(), UserFactory()
    listing = ListingFactory(seller=seller)
    bid_in, commit = threading.Event(), threading.Event()
    pids: dict = {}
    results: dict = {}

    def bid_then_hold():
        try:
            with transaction.atomic():
                bid_place(listing_id=listing.pk, bidder=bidder, amount_cents=1000)
                bid_in.set()
                commit.wait()
        finally:
            connections.close_all()

    def close():
        try:
            pids["closer"] = _backend_pid()
            try:
                results["closed"] = account_delete(user_id=seller.pk)
            except APIException as exc:
                results["closed"] = exc.get_codes()
        finally:
            connections.close_all()

    holder = threading.Thread(target=bid_then_hold)
    holder.start()
    bid_in.wait()
    closer = threading.Thread(target=close)
    closer.start()
    while "closer" not in pids:
        threading.Event().wait(0.01)
    _wait_until_blocked_on_a_lock(pids["closer"])  # queued behind the bid's listing lock
    commit.set()
    holder.join()
    closer.join()
    assert results["closed"] == "account_has_open_obligations"
    assert User.objects.get(pk=seller.pk).deleted_at is None
    assert Listing.objects.get(pk=listing.pk).bid_count == 1


def test_a_bid_waits_for_a_closure_in_progress_then_finds_the_listing_cancelled(pg,
                                                                               monkeypatch):
    from privacy import services

    seller, bidder = UserFactory(), UserFactory()
    listing = ListingFactory(seller=seller)
    locked, go_on = threading.Event(), threading.Event()
    pids: dict = {}
    results: dict = {}
    cancel = services.listings_cancel_for_closed_account

    def cancel_after_a_pause(*, listings):
        locked.set()  # the closure holds the user and listing locks and has checked
        go_on.wait()
        return cancel(listings=listings)

    monkeypatch.setattr(services, "listings_cancel_for_closed_account", cancel_after_a_pause)

    def close():
        try:
            results["closed"] = account_delete(user_id=seller.pk)
        finally:
            connections.close_all()

    def bid():
        try:
            pids["bidder"] = _backend_pid()
            try:
                bid_place(listing_id=listing.pk, bidder=bidder, amount_cents=1000)
                results["bid"] = "placed"
            except APIException as exc:
                results["bid"] = exc.get_codes()
        finally:
            connections.close_all()

    closer = threading.Thread(target=close)
    closer.start()
    locked.wait()
    bidding = threading.Thread(target=bid)
    bidding.start()
    while "bidder" not in pids:
        threading.Event().wait(0.01)
    _wait_until_blocked_on_a_lock(pids["bidder"])  # queued behind the closure's listing lock
    go_on.set()
    closer.join()
    bidding.join()
    assert results == {"closed": True, "bid": "listing_not_active"}
    row = Listing.objects.get(pk=listing.pk)
    assert row.status == "cancelled" and row.bid_count == 0 and row.leader_id is None
