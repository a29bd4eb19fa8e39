"""Buy now answers 201 with the transaction exactly as `GET /v1/transactions/{id}` shows it."""

from __future__ import annotations

import pytest
from drf_spectacular.generators import SchemaGenerator

from biddt.core.models import IdempotencyRecord
from escrow.models import Transaction
from listings.models import ListingImage
from tests.factories import ListingFactory

pytestmark = pytest.mark.django_db

TRANSACTION_KEYS = {"id", "listing", "buyer", "seller", "amount_cents", "fee_cents",
                    "escrow_fee_cents", "total_charged_cents", "seller_payout_cents", "status",
                    "meetup", "verified_at", "released_at", "created_at", "updated_at"}


def buy_now_url(listing) -> str:
    return f"/v1/listings/{listing.pk}/buy-now"


@pytest.mark.parametrize("fields", [
    {"auction_type": "both", "buy_now_price_cents": 10000},
    {"auction_type": "fixed", "starting_price_cents": 2500, "ends_at": None},
], ids=["both", "fixed"])
@pytest.mark.parametrize("headers", [{}, {"HTTP_IDEMPOTENCY_KEY": "buy-detail"}],
                         ids=["no-key", "key"])
def test_buy_now_body_is_the_transaction_detail(auth_api, user, fields, headers):
    listing = ListingFactory(**fields)
    ListingImage.objects.create(listing=listing, image="listings/2025/01/photo.jpg")
    response = auth_api.post(buy_now_url(listing), **headers)
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == TRANSACTION_KEYS
    detail = auth_api.get(f"/v1/transactions/{body['id']}")
    assert detail.status_code == 200, detail.content
    assert body == detail.json()
    # the parties and listing are the nested summaries, with the absolute image URL
    assert body["buyer"]["id"] == str(user.pk)
    assert body["seller"]["id"] == str(listing.seller_id)
    assert body["listing"]["id"] == str(listing.pk)
    assert body["listing"]["image_url"].startswith("http://testserver/")
    assert body["status"] == "pending_payment" and body["meetup"] is None
    assert body["verified_at"] is None and body["released_at"] is None


def test_buy_now_replay_returns_the_same_body_and_creates_nothing(auth_api):
    listing = ListingFactory(auction_type="both", buy_now_price_cents=10000)
    first = auth_api.post(buy_now_url(listing), HTTP_IDEMPOTENCY_KEY="buy-replay")
    assert first.status_code == 201, first.content
    assert "Idempotent-Replayed" not in first
    again = auth_api.post(buy_now_url(listing), HTTP_IDEMPOTENCY_KEY="buy-replay")
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert set(again.json()) == TRANSACTION_KEYS
    assert Transaction.objects.count() == 1
    assert IdempotencyRecord.objects.filter(scope="buy-now").count() == 1
    assert first.json() == auth_api.get(f"/v1/transactions/{first.json()['id']}").json()


def test_schema_documents_buy_now_201_as_the_transaction():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    paths = schema["paths"]
    buy_now = paths["/v1/listings/{listing_id}/buy-now"]["post"]["responses"]
    detail = paths["/v1/transactions/{transaction_id}"]["get"]["responses"]
    ref = buy_now["201"]["content"]["application/json"]["schema"]
    assert ref == detail["200"]["content"]["application/json"]["schema"]
    assert ref == {"$ref": "#/components/schemas/Transaction"}
    assert set(schema["components"]["schemas"]["Transaction"]["properties"]) == TRANSACTION_KEYS
    assert "TransactionCreated" not in schema["components"]["schemas"]
