"""API.md additions (2026-12), "The contract as documents": machine fields on error items,
`Retry-After` declared on every 429, a `servers` entry."""

from __future__ import annotations

import pytest
from django.test import override_settings
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from bidding.services import bid_place
from tests.conftest import bearer
from tests.factories import ListingFactory, UserFactory


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def _client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(user))
    return client


@pytest.mark.django_db
@pytest.mark.parametrize(("leader_max", "amount", "minimum"), [
    (None, 500, 1000),   # no bid yet: the starting price
    (9000, 1100, 1150),  # the leader's proxy answered a rival's 1050: price 1100, + 50
])
def test_bid_too_low_carries_the_minimum_as_a_number(leader_max, amount, minimum):
    # given a listing starting at 1000, with a leader at `leader_max` if any
    listing = ListingFactory(starting_price_cents=1000)
    if leader_max:
        bid_place(listing_id=listing.pk, bidder=UserFactory(), amount_cents=1000,
                  max_amount_cents=leader_max)
        rival = UserFactory()
        bid_place(listing_id=listing.pk, bidder=rival, amount_cents=1050)
    # when a bidder offers too little
    response = _client(UserFactory()).post(f"/v1/listings/{listing.pk}/bids",
                                           {"amount_cents": amount}, format="json")
    # then the error item carries the minimum as an integer field, equal to the listing's
    assert response.status_code == 409
    item = response.json()["errors"][0]
    assert item["code"] == "bid_too_low"
    assert isinstance(item["minimum_next_bid_cents"], int)
    assert item["minimum_next_bid_cents"] == minimum
    assert item["detail"].endswith(f"minimum_next_bid_cents={item['minimum_next_bid_cents']}")
    assert set(item) == {"code", "detail", "attr", "minimum_next_bid_cents"}


@pytest.mark.django_db
def test_other_errors_carry_no_extra_field():
    listing = ListingFactory(starting_price_cents=1000)
    response = _client(listing.seller).post(f"/v1/listings/{listing.pk}/bids",
                                            {"amount_cents": 2000}, format="json")
    assert response.status_code == 409
    assert set(response.json()["errors"][0]) == {"code", "detail", "attr"}


def test_the_bid_conflict_schema_declares_the_field(schema):
    response = schema["paths"]["/v1/listings/{listing_id}/bids"]["post"]["responses"]["409"]
    ref = response["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    items = schema["components"]["schemas"][ref]["properties"]["errors"]["items"]["$ref"]
    item = schema["components"]["schemas"][items.rsplit("/", 1)[1]]
    assert item["properties"]["minimum_next_bid_cents"]["type"] == "integer"


def test_every_429_declares_retry_after(schema):
    throttled = [(path, method, op["responses"]["429"])
                 for path, item in schema["paths"].items()
                 for method, op in item.items()
                 if isinstance(op, dict) and "429" in op.get("responses", {})]
    assert len(throttled) > 20
    for path, method, response in throttled:
        header = response["headers"]["Retry-After"]
        assert header["schema"]["type"] == "integer", (path, method)


def test_the_document_names_its_server(schema):
    assert schema["servers"] == [{"url": "/", "description": "This server"}]


@pytest.mark.django_db
@override_settings(THROTTLE_RATES={"user": "2/min", "anon": "2/min", "bid": "100/min"})
def test_a_throttled_answer_sends_retry_after():
    # given the per-user rate lowered to 2 a minute
    client = _client(UserFactory())
    # when a third request comes within the minute
    answers = [client.get("/v1/users/me") for _ in range(3)]
    # then it is a 429 with a positive whole number of seconds
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert int(answers[2]["Retry-After"]) > 0
