"""REST: place bids (idempotency, throttle), history, my bids, buy now, retraction."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from bidding.models import Bid
from bidding.services import bid_place
from biddt.core.models import IdempotencyRecord
from escrow.models import Transaction
from tests.conftest import bearer
from tests.factories import ListingFactory, UserFactory

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(user))
    return client


def bids_url(listing) -> str:
    return f"/v1/listings/{listing.pk}/bids"


def error_code(response) -> str:
    return response.json()["errors"][0]["code"]


@pytest.fixture
def listing():
    return ListingFactory(starting_price_cents=1000)


def test_place_bid_answers_201_with_the_live_state(auth_api, user, listing):
    response = auth_api.post(bids_url(listing), {"amount_cents": 1000,
                                                 "max_amount_cents": 3000})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["listing_id"] == str(listing.pk)
    assert (body["amount_cents"], body["max_amount_cents"], body["status"],
            body["is_leading"]) == (1000, 3000, "active", True)
    assert {k: v for k, v in body["listing"].items() if k != "ends_at"} == {
        "current_price_cents": 1000, "bid_count": 1, "minimum_next_bid_cents": 1050,
        "reserve_met": None, "seq": 1}


def test_leader_raising_their_maximum_over_rest_changes_only_the_maximum(auth_api, listing):
    # given the caller leads over another bidder
    auth_api.post(bids_url(listing), {"amount_cents": 1000, "max_amount_cents": 3000})
    bid_place(listing_id=listing.pk, bidder=UserFactory(), amount_cents=1100)
    history = auth_api.get(bids_url(listing)).json()["results"]
    # when the caller raises their maximum
    response = auth_api.post(bids_url(listing), {"amount_cents": 1500,
                                                 "max_amount_cents": 9000})
    # then the bid is accepted, leading, and price, bid count and history are unchanged
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["is_leading"], body["max_amount_cents"]) == (True, 9000)
    assert {k: v for k, v in body["listing"].items() if k != "ends_at"} == {
        "current_price_cents": 1150, "bid_count": 3, "minimum_next_bid_cents": 1200,
        "reserve_met": None, "seq": 2}
    assert auth_api.get(bids_url(listing)).json()["results"] == history
    # and a bid that doesn't raise it is refused with what would have been accepted
    refused = auth_api.post(bids_url(listing), {"amount_cents": 5000})
    assert refused.status_code == 409
    assert error_code(refused) == "bid_too_low"
    assert refused.json()["errors"][0]["detail"].endswith("minimum_next_bid_cents=9001")


def test_outbid_caller_is_not_leading(auth_api, listing):
    bid_place(listing_id=listing.pk, bidder=UserFactory(), amount_cents=1000,
              max_amount_cents=9000)
    body = auth_api.post(bids_url(listing), {"amount_cents": 2000}).json()
    assert body["is_leading"] is False and body["listing"]["current_price_cents"] == 2050


def test_refusal_shapes(auth_api, listing):
    response = auth_api.post(bids_url(listing), {"amount_cents": 500})
    assert response.status_code == 409
    assert error_code(response) == "bid_too_low"
    assert "minimum_next_bid_cents=1000" in response.json()["errors"][0]["detail"]
    response = auth_api.post(bids_url(listing), {"amount_cents": 2000, "max_amount_cents": 1})
    assert response.status_code == 400 and error_code(response) == "invalid_max"
    own = client_for(listing.seller).post(bids_url(listing), {"amount_cents": 2000})
    assert own.status_code == 409 and error_code(own) == "own_listing"
    missing = auth_api.post("/v1/listings/00000000-0000-0000-0000-000000000000/bids",
                            {"amount_cents": 2000})
    assert missing.status_code == 404


@pytest.mark.parametrize("body", [
    {"amount_cents": 100_000_001},
    {"amount_cents": 2000, "max_amount_cents": 100_000_001},
    {"amount_cents": 2**63},  # beyond the database's bigint: a 400, never a 500
    {"amount_cents": 2000, "max_amount_cents": 10**30},
], ids=["amount", "max", "amount-beyond-bigint", "max-beyond-bigint"])
def test_a_bid_above_the_highest_price_is_400_max_value(auth_api, listing, body):
    # given the highest price a listing may have (BIDDT_MAX_PRICE_CENTS, $1,000,000)
    # when a bid or its maximum goes above it
    response = auth_api.post(bids_url(listing), body, format="json")
    # then it is refused as invalid, on the field, and nothing is written
    assert response.status_code == 400, response.content
    error = response.json()["errors"][0]
    assert (error["code"], error["attr"]) == ("max_value", next(reversed(body)))
    assert not Bid.objects.exists()
    # and a bid at the highest price is accepted
    at_cap = auth_api.post(bids_url(listing), {"amount_cents": 100_000_000}, format="json")
    assert at_cap.status_code == 201, at_cap.content


def test_bidding_needs_an_active_account(api, listing):
    assert api.post(bids_url(listing), {"amount_cents": 1000}).status_code == 401
    suspended = UserFactory(status="suspended")
    response = client_for(suspended).post(bids_url(listing), {"amount_cents": 1000})
    assert response.status_code == 403 and error_code(response) == "account_suspended"


def test_idempotency_key_replays_the_first_answer(auth_api, listing):
    first = auth_api.post(bids_url(listing), {"amount_cents": 1000},
                          HTTP_IDEMPOTENCY_KEY="k-1")
    again = auth_api.post(bids_url(listing), {"amount_cents": 1000},
                          HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Bid.objects.count() == 1
    reused = auth_api.post(bids_url(listing), {"amount_cents": 5000},
                           HTTP_IDEMPOTENCY_KEY="k-1")
    assert reused.status_code == 422 and error_code(reused) == "idempotency_key_reused"
    assert Bid.objects.count() == 1


def test_idempotency_keys_are_per_user_and_refusals_are_not_stored(auth_api, listing):
    other = client_for(UserFactory())
    assert auth_api.post(bids_url(listing), {"amount_cents": 1000},
                         HTTP_IDEMPOTENCY_KEY="same").status_code == 201
    # another user's same key is another request
    assert other.post(bids_url(listing), {"amount_cents": 1000},
                      HTTP_IDEMPOTENCY_KEY="same").status_code == 409
    assert IdempotencyRecord.objects.count() == 1
    assert other.post(bids_url(listing), {"amount_cents": 1000},
                      HTTP_IDEMPOTENCY_KEY="same").status_code == 409


def test_expired_idempotency_key_works_as_new(auth_api, listing):
    auth_api.post(bids_url(listing), {"amount_cents": 1000}, HTTP_IDEMPOTENCY_KEY="old")
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=25))
    response = auth_api.post(bids_url(listing), {"amount_cents": 1050, "max_amount_cents": 5000},
                             HTTP_IDEMPOTENCY_KEY="old")
    assert response.status_code == 201 and Bid.objects.count() == 2


@override_settings(THROTTLE_RATES={"user": "100/min", "anon": "100/min", "bid": "3/min"})
def test_bid_throttle(auth_api, listing):
    statuses = [auth_api.post(bids_url(listing), {"amount_cents": 1}).status_code
                for _ in range(4)]
    assert statuses == [409, 409, 409, 429]
    last = auth_api.post(bids_url(listing), {"amount_cents": 1})
    assert last.status_code == 429 and int(last["Retry-After"]) > 0


def test_history_is_public_masked_and_newest_first(api, listing):
    alice, bob = UserFactory(display_name="alice"), UserFactory(display_name="bob")
    bid_place(listing_id=listing.pk, bidder=alice, amount_cents=1000, max_amount_cents=5000)
    bid_place(listing_id=listing.pk, bidder=bob, amount_cents=2000)
    body = api.get(bids_url(listing)).json()
    assert body["next"] is None and body["previous"] is None
    rows = [(r["amount_cents"], r["bidder"]["display_name"], r["is_auto_bid"])
            for r in body["results"]]
    assert rows == [(2050, "a***e", True), (2000, "b***b", False), (1000, "a***e", False)]
    assert all("max_amount_cents" not in r for r in body["results"])


def test_history_paginates(api, listing):
    for i in range(3):
        bid_place(listing_id=listing.pk, bidder=UserFactory(), amount_cents=1000 + 100 * i)
    page = api.get(bids_url(listing), {"page_size": 2}).json()
    assert len(page["results"]) == 2 and page["next"]
    rest = api.get(page["next"]).json()
    assert [r["amount_cents"] for r in rest["results"]] == [1000]


def test_history_hides_drafts_of_others(api, listing):
    draft = ListingFactory(status="draft")
    assert api.get(bids_url(draft)).status_code == 404
    assert client_for(draft.seller).get(bids_url(draft)).status_code == 200


@pytest.mark.parametrize("hidden", ["removed", "paused"])
def test_history_follows_the_listing_detail_visibility(api, hidden):
    """One visibility rule (listings.selectors.listing_visible): where the detail is 404, so
    is the history; the seller and staff still see both."""
    if hidden == "removed":
        listing = ListingFactory(status="removed")
    else:  # a suspended seller's listing is paused
        listing = ListingFactory(seller_active=False)
    assert api.get(f"/v1/listings/{listing.pk}").status_code == 404
    assert api.get(bids_url(listing)).status_code == 404
    for viewer in (listing.seller, UserFactory(is_staff=True)):
        assert client_for(viewer).get(f"/v1/listings/{listing.pk}").status_code == 200
        assert client_for(viewer).get(bids_url(listing)).status_code == 200


def test_my_bids(auth_api, user, listing):
    bid_place(listing_id=listing.pk, bidder=user, amount_cents=1000, max_amount_cents=3000)
    bid_place(listing_id=ListingFactory().pk, bidder=UserFactory(), amount_cents=1000)
    results = auth_api.get("/v1/bids/me").json()["results"]
    assert len(results) == 1
    mine = results[0]
    assert mine["is_leading"] is True and mine["max_amount_cents"] == 3000
    assert mine["listing"]["id"] == str(listing.pk)
    assert set(mine["listing"]) == {"id", "title", "status", "current_price_cents", "ends_at"}


def test_buy_now(auth_api, user):
    listing = ListingFactory(auction_type="both", buy_now_price_cents=10000)
    response = auth_api.post(f"/v1/listings/{listing.pk}/buy-now",
                             HTTP_IDEMPOTENCY_KEY="buy-1")
    assert response.status_code == 201, response.content
    body = response.json()
    assert {k: body[k] for k in ("amount_cents", "fee_cents", "escrow_fee_cents",
                                 "total_charged_cents", "seller_payout_cents", "status")} == {
        "amount_cents": 10000, "fee_cents": 600, "escrow_fee_cents": 199,
        "total_charged_cents": 10000, "seller_payout_cents": 9201, "status": "pending_payment"}
    assert body["buyer"]["id"] == str(user.pk)
    assert body["seller"]["id"] == str(listing.seller_id)
    assert body["listing"]["id"] == str(listing.pk)
    listing.refresh_from_db()
    assert listing.status == "sold" and listing.closed_at is not None
    again = auth_api.post(f"/v1/listings/{listing.pk}/buy-now", HTTP_IDEMPOTENCY_KEY="buy-1")
    assert again.json() == body and Transaction.objects.count() == 1
    sold_out = auth_api.post(f"/v1/listings/{listing.pk}/buy-now")
    assert sold_out.status_code == 409 and error_code(sold_out) == "buy_now_unavailable"


def test_buy_now_refusals(auth_api, user):
    auction_only = ListingFactory(auction_type="auction", buy_now_price_cents=10000)
    response = auth_api.post(f"/v1/listings/{auction_only.pk}/buy-now")
    assert response.status_code == 409 and error_code(response) == "buy_now_unavailable"
    with_bid = ListingFactory(auction_type="both", buy_now_price_cents=10000)
    bid_place(listing_id=with_bid.pk, bidder=UserFactory(), amount_cents=1000)
    response = auth_api.post(f"/v1/listings/{with_bid.pk}/buy-now")
    assert response.status_code == 409 and error_code(response) == "buy_now_unavailable"
    own = ListingFactory(auction_type="fixed", seller=user)
    response = auth_api.post(f"/v1/listings/{own.pk}/buy-now")
    assert response.status_code == 409 and error_code(response) == "own_listing"


def test_buy_now_stays_while_the_reserve_is_unmet_and_fixed_price_listings(auth_api):
    listing = ListingFactory(auction_type="both", buy_now_price_cents=10000,
                             reserve_price_cents=8000)
    bid_place(listing_id=listing.pk, bidder=UserFactory(), amount_cents=1000)
    assert auth_api.post(f"/v1/listings/{listing.pk}/buy-now").status_code == 201
    fixed = ListingFactory(auction_type="fixed", starting_price_cents=2500, ends_at=None)
    response = auth_api.post(f"/v1/listings/{fixed.pk}/buy-now")
    assert response.status_code == 201 and response.json()["amount_cents"] == 2500


def test_retract_via_rest(auth_api, user, listing):
    bid = bid_place(listing_id=listing.pk, bidder=user, amount_cents=1000).bid
    assert client_for(UserFactory()).delete(f"/v1/bids/{bid.pk}").status_code == 404
    assert auth_api.delete(f"/v1/bids/{bid.pk}").status_code == 204
    bid.refresh_from_db()
    assert bid.status == "retracted"


def test_schema_has_the_bidding_paths(api):
    response = api.get("/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    paths = response.json()["paths"] if response["Content-Type"].endswith("json") else None
    if paths is None:
        import yaml

        paths = yaml.safe_load(response.content)["paths"]
    for path in ("/v1/listings/{listing_id}/bids", "/v1/listings/{listing_id}/buy-now",
                 "/v1/bids/me", "/v1/bids/{bid_id}"):
        assert path in paths
