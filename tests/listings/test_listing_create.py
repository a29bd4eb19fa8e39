"""POST /v1/listings: drafts, validation codes, the new-seller throttle, suspended users."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from listings.models import Listing
from tests.factories import UserFactory
from tests.listings.conftest import client_for, draft_body, error_attr, error_code

pytestmark = pytest.mark.django_db

URL = "/v1/listings"


def test_create_makes_a_draft_with_the_full_representation(auth_api, user):
    # given a valid body
    body = draft_body(reserve_price_cents=8000)
    # when the seller creates it
    response = auth_api.post(URL, body)
    # then a draft exists, shown to its seller with the reserve
    assert response.status_code == 201, response.content
    data = response.json()
    listing = Listing.objects.get(pk=data["id"])
    assert listing.status == "draft" and listing.seller == user
    assert listing.current_price_cents == 5000
    assert list(data) == [
        "id", "seller", "title", "description", "category", "condition", "images", "videos",
        "auction_type", "starting_price_cents", "buy_now_price_cents", "reserve_met",
        "reserve_price_cents", "status", "starts_at", "ends_at", "location_lat",
        "location_lng", "location_name", "current_price_cents", "bid_count",
        "minimum_next_bid_cents", "is_leading", "is_watching", "view_count", "seq",
        "created_at", "updated_at"]
    assert data["seller"] == {"id": str(user.pk), "display_name": user.display_name,
                              "rating_avg": None}
    assert (data["status"], data["reserve_price_cents"], data["reserve_met"],
            data["minimum_next_bid_cents"], data["images"]) == ("draft", 8000, False, 5000, [])


def test_create_needs_authentication(api):
    assert api.post(URL, draft_body()).status_code == 401


def test_suspended_user_gets_403(user, auth_api):
    user.status = "suspended"
    user.save()
    response = auth_api.post(URL, draft_body())
    assert response.status_code == 403 and error_code(response) == "account_suspended"


@pytest.mark.parametrize(("overrides", "code", "attr"), [
    ({"starting_price_cents": -100}, "invalid_price", "starting_price_cents"),
    ({"starting_price_cents": 499}, "invalid_price", "starting_price_cents"),
    ({"starting_price_cents": 10**12}, "invalid_price", "starting_price_cents"),
    ({"reserve_price_cents": 4999}, "invalid_price", "reserve_price_cents"),
    ({"auction_type": "both", "buy_now_price_cents": 100}, "invalid_price",
     "buy_now_price_cents"),
    ({"auction_type": "both"}, "invalid_price", "buy_now_price_cents"),
    ({"buy_now_price_cents": 9000}, "invalid_price", "buy_now_price_cents"),
    ({"auction_type": "fixed", "reserve_price_cents": 9000}, "invalid_price",
     "reserve_price_cents"),
    ({"ends_at": None}, "invalid_duration", "ends_at"),
    ({"ends_at": "2001-01-01T00:00:00Z"}, "invalid_duration", "ends_at"),
    ({"ends_at": "+30m"}, "invalid_duration", "ends_at"),
    ({"ends_at": "+31d"}, "invalid_duration", "ends_at"),
    ({"starting_price_cents": "ten"}, "invalid", "starting_price_cents"),
    ({"title": "x" * 256}, "max_length", "title"),
    ({"title": "   "}, "blank", "title"),
    ({"category": "spaceships"}, "invalid_choice", "category"),
    ({"condition": "mint"}, "invalid_choice", "condition"),
    ({"auction_type": "lottery"}, "invalid_choice", "auction_type"),
    ({"location_lat": 91}, "max_value", "location_lat"),
    ({"location_lng": -180.5}, "min_value", "location_lng"),
    ({"location_lng": None}, "invalid_location", "location_lng"),
    ({"ends_at": "tomorrow"}, "invalid", "ends_at"),
])
def test_create_refuses_bad_input_with_a_clear_code(auth_api, overrides, code, attr):
    # given a body with one bad field (relative times resolved against now)
    now = timezone.now()
    for key, value in list(overrides.items()):
        if isinstance(value, str) and value.startswith("+"):
            unit = {"m": "minutes", "d": "days"}[value[-1]]
            overrides[key] = (now + timedelta(**{unit: int(value[1:-1])})).isoformat()
    # when it is posted
    response = auth_api.post(URL, draft_body(**overrides))
    # then 400 with the code and the field, and nothing is created
    assert response.status_code == 400, response.content
    assert (error_code(response), error_attr(response)) == (code, attr)
    assert not Listing.objects.exists()


def test_fixed_price_listing_needs_no_end(auth_api):
    response = auth_api.post(URL, draft_body(auction_type="fixed", ends_at=None))
    assert response.status_code == 201, response.content
    assert response.json()["ends_at"] is None


def test_new_sellers_are_limited_to_five_an_hour(settings):
    # given the production rate and a seller whose account is a day old
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "listing_create": "5/hour"}
    cache.clear()
    client = client_for(UserFactory())
    # when they create six listings
    codes = [client.post(URL, draft_body()).status_code for _ in range(6)]
    # then the sixth is throttled with Retry-After
    assert codes == [201] * 5 + [429]
    response = client.post(URL, draft_body())
    assert response.status_code == 429 and "Retry-After" in response


def test_established_sellers_only_get_the_user_throttle(settings):
    # given an account older than 7 days with a completed sale
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "listing_create": "5/hour"}
    cache.clear()
    seller = UserFactory()
    type(seller).objects.filter(pk=seller.pk).update(
        created_at=timezone.now() - timedelta(days=30), completed_sales=1)
    client = client_for(seller)
    # when they create six listings
    codes = [client.post(URL, draft_body()).status_code for _ in range(6)]
    # then none is throttled
    assert codes == [201] * 6


def test_old_account_without_a_sale_is_still_new(settings):
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "listing_create": "1/hour"}
    cache.clear()
    seller = UserFactory()
    type(seller).objects.filter(pk=seller.pk).update(
        created_at=timezone.now() - timedelta(days=30))
    client = client_for(seller)
    assert [client.post(URL, draft_body()).status_code for _ in range(2)] == [201, 429]
