"""A seller's edit or cancel racing the first bid, on PostgreSQL with real threads.

Both paths take the listing row lock (`listing_update` locks it; `listing_cancel` is a
conditional UPDATE on `bid_count=0`, which waits for the bid's lock and re-checks), so one of
them goes first and the other sees its result: either the edit wins and the bid is judged at
the new price, or the bid wins and the edit is 409 `listing_has_bids`. Never an accepted bid
*and* a changed price, or a cancelled listing with a bid.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import pytest
from django.db import connections
from rest_framework.test import APIClient

from bidding.models import Bid
from listings.models import Listing
from tests.conftest import bearer
from tests.factories import ListingFactory, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROUNDS = 12
START, NEW_START = 1000, 2000


def race(*calls: Callable[[], object]) -> list:
    """Run the calls at once, one thread (one connection) each; their results in order."""
    barrier = threading.Barrier(len(calls), timeout=30)
    results: list = [None] * len(calls)
    errors: list[BaseException] = []

    def body(index: int) -> None:
        try:
            barrier.wait()
            results[index] = calls[index]()
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=body, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a racer hung"
    assert not errors, errors
    return results


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(user))
    return client


def code(response) -> str | None:
    body = response.json() if response.content else {}
    return body["errors"][0]["code"] if "errors" in body else None


@pytest.mark.parametrize("bid_amount", [START, 3000])
def test_price_edit_racing_the_first_bid_never_both_win(bid_amount):
    # bid_amount=START: valid only at the old price, so an edit that wins refuses it
    # bid_amount=3000: valid at both prices, so an edit that wins makes it lead at 2000
    seller, bidder = UserFactory(), UserFactory()
    seller_api, bidder_api = client_for(seller), client_for(bidder)
    outcomes: Counter[str] = Counter()
    for _ in range(ROUNDS):
        listing = ListingFactory(seller=seller, starting_price_cents=START)
        url = f"/v1/listings/{listing.pk}"

        # when the seller raises the starting price while the first bid comes in
        edit, bid = race(
            lambda url=url: seller_api.patch(url, {"starting_price_cents": NEW_START},
                                             format="json"),
            lambda url=url: bidder_api.post(f"{url}/bids", {"amount_cents": bid_amount},
                                            format="json"),
        )

        # then exactly one of two serial histories happened
        listing.refresh_from_db()
        bids = Bid.objects.filter(listing=listing).count()
        if edit.status_code == 200:
            outcomes["edit first"] += 1
            assert listing.starting_price_cents == NEW_START
            assert edit.json()["starting_price_cents"] == NEW_START
            if bid_amount < NEW_START:
                assert (bid.status_code, code(bid)) == (409, "bid_too_low"), bid.content
                assert "minimum_next_bid_cents=2000" in bid.json()["errors"][0]["detail"]
                assert (bids, listing.bid_count, listing.current_price_cents) == (0, 0, NEW_START)
            else:
                assert bid.status_code == 201, bid.content
                assert bid.json()["amount_cents"] == NEW_START  # the first bid leads at the start
                assert (bids, listing.bid_count, listing.current_price_cents) == (1, 1, NEW_START)
        else:
            outcomes["bid first"] += 1
            assert (edit.status_code, code(edit)) == (409, "listing_has_bids"), edit.content
            assert bid.status_code == 201, bid.content
            assert bid.json()["amount_cents"] == START
            assert listing.starting_price_cents == START
            assert (bids, listing.bid_count, listing.current_price_cents) == (1, 1, START)
    assert sum(outcomes.values()) == ROUNDS, outcomes


def test_cancel_racing_the_first_bid_never_both_win():
    seller, bidder = UserFactory(), UserFactory()
    seller_api, bidder_api = client_for(seller), client_for(bidder)
    outcomes: Counter[str] = Counter()
    for _ in range(ROUNDS):
        listing = ListingFactory(seller=seller, starting_price_cents=START)
        url = f"/v1/listings/{listing.pk}"

        # when the seller cancels while the first bid comes in
        cancel, bid = race(
            lambda url=url: seller_api.delete(url),
            lambda url=url: bidder_api.post(f"{url}/bids", {"amount_cents": START},
                                            format="json"),
        )

        # then either the listing is cancelled with no bid, or it stays active with the bid
        listing.refresh_from_db()
        bids = Bid.objects.filter(listing=listing).count()
        if cancel.status_code == 204:
            outcomes["cancel first"] += 1
            assert (bid.status_code, code(bid)) == (409, "listing_not_active"), bid.content
            assert (listing.status, bids, listing.bid_count) == ("cancelled", 0, 0)
        else:
            outcomes["bid first"] += 1
            assert (cancel.status_code, code(cancel)) == (409, "listing_has_bids"), cancel.content
            assert bid.status_code == 201, bid.content
            assert (listing.status, bids, listing.bid_count) == ("active", 1, 1)
    assert sum(outcomes.values()) == ROUNDS, outcomes
    assert not Listing.objects.filter(status="cancelled", bid_count__gt=0).exists()
