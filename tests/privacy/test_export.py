"""`GET /v1/users/me/export` (issue 20): complete, the caller's own, JSON."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model

from accounts.models import Rating
from accounts.services import device_register, user_update_profile
from bidding.services import bid_place
from chat.services import message_post
from listings.models import Listing
from notifications.services import notify
from privacy.selectors import EXPORTED, NOT_EXPORTED
from tests.factories import ListingFactory, UserFactory, sold_transaction

pytestmark = pytest.mark.django_db


def user_foreign_keys() -> set[tuple[str, str]]:
    """Every (model, field) in the app registry that points at the user model."""
    user_model = get_user_model()
    found = {(user_model._meta.label, "id")}
    for model in apps.get_models():
        for field in model._meta.get_fields():
            if field.is_relation and field.concrete and field.related_model is user_model:
                found.add((model._meta.label, field.name))
    return found


def test_every_model_holding_user_data_is_exported_or_explained(auth_api):
    found = user_foreign_keys()
    unaccounted = found - set(EXPORTED) - set(NOT_EXPORTED)
    assert not unaccounted, (
        f"{sorted(unaccounted)} point at users: add them to privacy.selectors.EXPORTED (and "
        "the export) or, if they hold no data about the user, to NOT_EXPORTED with the reason")
    stale = (set(EXPORTED) | set(NOT_EXPORTED)) - found
    assert not stale, f"{sorted(stale)} no longer exist"
    body = auth_api.get("/v1/users/me/export").json()
    assert set(EXPORTED.values()) <= set(body), set(EXPORTED.values()) - set(body)


def test_export_holds_the_callers_data_and_no_one_elses(auth_api, user):
    other = UserFactory(display_name="Someone Else")
    user_update_profile(user=user, display_name="Jordan", email="jordan@example.com",
                        email_given=True, language="fr")
    device_register(user=user, token="fcm-1", platform="android")
    own = ListingFactory(seller=user, title="My bike")
    theirs = ListingFactory(seller=other)
    bid_place(listing_id=theirs.pk, bidder=user, amount_cents=1000, max_amount_cents=7000)
    bid_place(listing_id=theirs.pk, bidder=UserFactory(), amount_cents=2000,
              max_amount_cents=3000)
    txn = sold_transaction(buyer=user, seller=other)
    message_post(user=other, transaction_id=txn.pk, content="hello buyer")
    notify(user_id=user.pk, type="outbid", title="You've been outbid")
    notify(user_id=other.pk, type="outbid", title="not yours")
    past = sold_transaction(buyer=other, seller=user)
    Rating.objects.create(transaction=past, rater=other, ratee=user, score=5)
    Rating.objects.create(transaction=past, rater=user, ratee=other, score=4)

    response = auth_api.get("/v1/users/me/export")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response["Cache-Control"] == "no-store"
    body = response.json()

    profile = body["profile"]
    assert profile["id"] == str(user.pk)
    assert profile["phone_number"] == user.phone_number
    assert profile["email"] == "jordan@example.com"
    assert profile["display_name"] == "Jordan" and profile["language"] == "fr"
    assert "password" not in profile and "phone_index" not in profile
    assert [d["platform"] for d in body["devices"]] == ["android"]
    assert {item["id"] for item in body["listings"]} == {str(own.pk), str(past.listing_id)}
    assert "My bike" in {item["title"] for item in body["listings"]}
    assert str(theirs.pk) not in {item["id"] for item in body["listings"]}
    # Own bids with the maxima the caller set; never the other bidder's.
    assert {b["bidder_id"] for b in body["bids"]} == {str(user.pk)}
    assert 7000 in {b["max_amount_cents"] for b in body["bids"]}
    assert 3000 not in {b["max_amount_cents"] for b in body["bids"]}
    assert {t["id"] for t in body["transactions"]} == {str(txn.pk), str(past.pk)}
    assert [m["content"] for m in body["messages"] if m["sender_id"]] == ["hello buyer"]
    titles = [n["title"] for n in body["notifications"]]
    assert "You've been outbid" in titles and "not yours" not in titles
    assert "Nouveau message" in titles  # the chat message, written in the user's French
    assert [r["score"] for r in body["ratings_received"]] == [5]
    assert [r["score"] for r in body["ratings_given"]] == [4]
    assert body["saved_searches"] == []
    assert "Someone Else" not in str(body["profile"])
    assert Listing.objects.count() >= 2


def test_export_needs_a_login(api):
    assert api.get("/v1/users/me/export").status_code == 401
