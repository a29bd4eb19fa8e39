"""Throttles: the documented rate per kind of caller, every throttle of a request counted in
one batch (one Redis round trip), `Retry-After` from the window, creations-only counting."""

from __future__ import annotations

from unittest import mock

import pytest
from django.test import override_settings

from biddt import throttles
from tests.factories import ListingFactory
from tests.listings.conftest import client_for, draft_body

pytestmark = pytest.mark.django_db

RATES = {"user": "2/min", "anon": "4/min", "bid": "100/min", "listing_create": "2/hour",
         "auth_phone": "5/min", "auth_ip": "20/min"}


@override_settings(THROTTLE_RATES=RATES)
def test_anonymous_callers_get_the_anon_rate_not_the_user_rate(api):
    # given the anon rate above the user rate (as documented: 300/min against 100/min)
    # when an anonymous client browses six times
    codes = [api.get("/v1/listings").status_code for _ in range(6)]
    # then it gets the anonymous allowance, not the user's keyed by its IP
    assert codes == [200] * 4 + [429] * 2


@override_settings(THROTTLE_RATES=RATES)
def test_authenticated_callers_get_the_user_rate_with_retry_after(user):
    client = client_for(user)
    codes = [client.get("/v1/listings").status_code for _ in range(2)]
    refused = client.get("/v1/listings")
    assert codes == [200, 200] and refused.status_code == 429
    # the time left in the one-minute window
    assert 1 <= int(refused["Retry-After"]) <= 60


@override_settings(THROTTLE_RATES=RATES)
def test_the_throttles_of_a_bid_are_counted_in_one_batch(user):
    listing = ListingFactory(starting_price_cents=1000)
    with mock.patch.object(throttles, "hit", wraps=throttles.hit) as hit:
        response = client_for(user).post(f"/v1/listings/{listing.pk}/bids",
                                          {"amount_cents": 1000}, format="json")
    assert response.status_code == 201, response.content
    # one call (one Lua script: one Redis round trip) for the user and the bid throttle
    assert hit.call_count == 1
    [hits] = hit.call_args.args
    assert sorted(h.key.split("_")[1] for h in hits) == ["bid", "user"]


@override_settings(THROTTLE_RATES={**RATES, "user": "100/min"})
def test_listing_creation_throttle_counts_creations_only(user):
    client = client_for(user)  # a new seller: the listing_create rate applies
    # when three requests are refused with 400
    refused = [client.post("/v1/listings", draft_body(starting_price_cents=-1)).status_code
               for _ in range(3)]
    # then they used up nothing: two creations pass, the third is throttled
    created = [client.post("/v1/listings", draft_body()).status_code for _ in range(3)]
    assert refused == [400] * 3
    assert created == [201, 201, 429]
