"""Bid history aliases: "Bidder N" by the order of each bidder's first bid, stable."""

from __future__ import annotations

import pytest

from bidding.models import Bid
from bidding.services import bid_place, bid_retract
from tests.factories import ListingFactory, UserFactory
from tests.listings.conftest import client_for

pytestmark = pytest.mark.django_db


def history(listing) -> list[tuple[int, str, str, bool]]:
    items = client_for(UserFactory()).get(f"/v1/listings/{listing.pk}/bids").json()["results"]
    return [(i["amount_cents"], i["bidder"]["display_name"], i["bidder"]["alias"],
             i["is_auto_bid"]) for i in items]


def test_two_bidders_with_the_same_masked_name_are_told_apart():
    # given "Bea Buyer" and "Bob Bidder", both masked b***r, and a third bidder
    bea, bob = UserFactory(display_name="Bea Buyer"), UserFactory(display_name="Bob Bidder")
    carol = UserFactory(display_name="Carol")
    listing = ListingFactory(starting_price_cents=1000)
    bid_place(listing_id=listing.pk, bidder=bea, amount_cents=1000, max_amount_cents=3000)
    bid_place(listing_id=listing.pk, bidder=bob, amount_cents=1500)  # bea's proxy answers
    bid_place(listing_id=listing.pk, bidder=carol, amount_cents=4000)
    bid_place(listing_id=listing.pk, bidder=bob, amount_cents=5000)
    # then each keeps the number of their first bid, the proxy's answers included
    assert history(listing) == [
        (4100, "b***r", "Bidder 2", False),
        (3100, "c***l", "Bidder 3", False),
        (1550, "b***r", "Bidder 1", True),
        (1500, "b***r", "Bidder 2", False),
        (1000, "b***r", "Bidder 1", False),
    ]


def test_an_alias_outlives_a_retraction_and_is_not_reused():
    alice, bob, carol = UserFactory(), UserFactory(), UserFactory()
    listing = ListingFactory(starting_price_cents=1000)
    bid_place(listing_id=listing.pk, bidder=alice, amount_cents=1000, max_amount_cents=2000)
    placed = bid_place(listing_id=listing.pk, bidder=bob, amount_cents=2500)
    # when bob (Bidder 2) retracts and carol bids, then bob bids again
    bid_retract(bid_id=placed.bid.pk, user=bob)
    bid_place(listing_id=listing.pk, bidder=carol, amount_cents=1500)
    bid_place(listing_id=listing.pk, bidder=bob, amount_cents=3000)
    # then carol is Bidder 3 and bob is still Bidder 2; the replay's automatic bids too
    aliases = {(b.bidder_id, b.bidder_number) for b in Bid.objects.filter(listing=listing)}
    assert aliases == {(alice.pk, 1), (bob.pk, 2), (carol.pk, 3)}
    assert [alias for _, _, alias, _ in history(listing)][0] == "Bidder 2"
