"""The bid's locked section: lock, insert and update as few statements, no user SELECT for
the proxy's answer (the leader's name comes with the locked row)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bidding.models import Bid
from bidding.services import _bid_placed_payload, bid_place
from listings.models import Listing
from tests.factories import ListingFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_a_proxy_answer_is_rendered_without_loading_the_leaders_user_row():
    # given a leader with a proxy maximum
    listing = ListingFactory(starting_price_cents=1000)
    alice, bob = UserFactory(display_name="alice"), UserFactory(display_name="bob")
    bid_place(listing_id=listing.pk, bidder=alice, amount_cents=1000, max_amount_cents=5000)
    # when another bidder bids below that maximum and the room event is rendered
    with CaptureQueriesContext(connection) as queries:
        placed = bid_place(listing_id=listing.pk, bidder=bob, amount_cents=2000)
        payload = _bid_placed_payload(placed, seq=placed.listing.seq, ends_at=None)
    # then the proxy's answer carries the leader's masked name
    assert payload["bid"]["bidder"]["display_name"] == "b***b"
    assert payload["autoBid"]["bidder"]["display_name"] == "a***e"
    assert payload["autoBid"]["amount_cents"] == 2050
    # and no statement read a user row on its own (the lock query reads the leader's name),
    # but the bidder's own row lock (taken before the listing's: privacy.account_delete)
    user_reads = [q["sql"] for q in queries.captured_queries
                  if q["sql"].lstrip().upper().startswith("SELECT")
                  and "listings_listing" not in q["sql"]]
    assert len(user_reads) == 1 and "FOR NO KEY UPDATE" in user_reads[0]
    assert str(bob.pk).replace("-", "") in user_reads[0].replace("-", "")


@pytest.mark.postgres
def test_bid_rows_and_listing_state_are_written_in_one_statement():
    listing = ListingFactory(starting_price_cents=1000)
    alice, bob = UserFactory(), UserFactory()
    bid_place(listing_id=listing.pk, bidder=alice, amount_cents=1000, max_amount_cents=5000)
    with CaptureQueriesContext(connection) as queries:
        placed = bid_place(listing_id=listing.pk, bidder=bob, amount_cents=2000)
    writes = [q["sql"] for q in queries.captured_queries
              if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "WITH"))]
    # one statement inserts both rows (the bid, the proxy's answer) and updates the listing
    assert len(writes) == 1 and writes[0].startswith("WITH")
    row = Listing.objects.get(pk=listing.pk)
    assert (row.seq, row.current_price_cents, row.bid_count, row.leader_id) == (
        2, 2050, 3, alice.pk)
    assert row.updated_at == placed.listing.updated_at
    stored = list(Bid.objects.filter(listing=listing, seq=2).order_by("is_auto_bid")
                  .values_list("bidder_id", "amount_cents", "is_auto_bid", "created_at"))
    assert stored == [(bob.pk, 2000, False, placed.records[0].created_at),
                      (alice.pk, 2050, True, placed.records[1].created_at)]
