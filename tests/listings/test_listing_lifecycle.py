"""Publish, edit, cancel and staff removal: who may, and the bid freeze."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from bidding.services import bid_place
from biddt.errors import Conflict, PermissionDenied
from listings import services
from listings.models import Listing
from tests.factories import ListingFactory, UserFactory
from tests.listings.conftest import client_for, draft_body, error_attr, error_code

pytestmark = pytest.mark.django_db


def url(listing, suffix: str = "") -> str:
    return f"/v1/listings/{listing.pk}{suffix}"


@pytest.fixture
def seller():
    return UserFactory()


@pytest.fixture
def draft(seller):
    return services.listing_create(seller=seller, title="Teak sideboard",
                                   starting_price_cents=20000,
                                   ends_at=timezone.now() + timedelta(days=2))


# --- publish ------------------------------------------------------------------------------

def test_publish_activates_the_draft_and_sets_the_start(seller, draft):
    response = client_for(seller).post(url(draft, "/publish"))
    assert response.status_code == 200, response.content
    draft.refresh_from_db()
    assert draft.status == "active" and draft.starts_at is not None
    assert response.json()["status"] == "active"


def test_publish_twice_is_409(seller, draft):
    client = client_for(seller)
    client.post(url(draft, "/publish"))
    response = client.post(url(draft, "/publish"))
    assert response.status_code == 409 and error_code(response) == "listing_not_draft"


def test_publish_of_a_draft_whose_end_is_now_too_close_is_400(seller, draft):
    Listing.objects.filter(pk=draft.pk).update(ends_at=timezone.now() + timedelta(minutes=5))
    response = client_for(seller).post(url(draft, "/publish"))
    assert response.status_code == 400 and error_code(response) == "invalid_duration"


def test_publish_fixed_price_without_end_runs_thirty_days(seller):
    listing = services.listing_create(seller=seller, title="Desk", auction_type="fixed",
                                      starting_price_cents=9000)
    client_for(seller).post(url(listing, "/publish"))
    listing.refresh_from_db()
    assert timedelta(days=29) < listing.ends_at - timezone.now() <= timedelta(days=30)


def test_another_users_draft_is_404_everywhere(draft):
    other = client_for(UserFactory())
    assert other.get(url(draft)).status_code == 404
    assert other.post(url(draft, "/publish")).status_code == 404
    assert other.patch(url(draft), {"title": "Mine"}).status_code == 404
    assert other.delete(url(draft)).status_code == 404
    assert other.post(url(draft, "/watch")).status_code == 404


def test_anonymous_can_read_active_listings_but_not_drafts(api, draft):
    active = ListingFactory()
    assert api.get(url(active)).status_code == 200
    assert api.get(url(draft)).status_code == 404


# --- edit ---------------------------------------------------------------------------------

def test_seller_edits_title_and_prices_before_any_bid(seller):
    listing = ListingFactory(seller=seller, starting_price_cents=1000)
    response = client_for(seller).patch(url(listing), {"title": "Better title",
                                                       "starting_price_cents": 1500})
    assert response.status_code == 200, response.content
    listing.refresh_from_db()
    assert (listing.title, listing.starting_price_cents, listing.current_price_cents) == (
        "Better title", 1500, 1500)
    # a state change of a published listing: seq moves (a subscriber re-reads at the gap)
    assert listing.seq == 1
    # sending the same values again changes nothing, seq included
    client_for(seller).patch(url(listing), {"title": "Better title"})
    listing.refresh_from_db()
    assert listing.seq == 1


def test_editing_a_draft_leaves_seq_alone(seller, draft):
    response = client_for(seller).patch(url(draft), {"title": "Walnut sideboard"})
    assert response.status_code == 200, response.content
    draft.refresh_from_db()
    assert (draft.title, draft.seq) == ("Walnut sideboard", 0)


def test_other_user_cannot_edit_an_active_listing():
    listing = ListingFactory()
    response = client_for(UserFactory()).patch(url(listing), {"title": "Hijacked"})
    assert response.status_code == 403
    listing.refresh_from_db()
    assert listing.title != "Hijacked"


@pytest.mark.parametrize("change", [
    {"starting_price_cents": 900}, {"reserve_price_cents": 5000},
    {"ends_at": "+2d"}, {"auction_type": "both", "buy_now_price_cents": 9000},
])
def test_prices_and_end_are_frozen_after_the_first_bid(seller, change):
    # given an active listing with a bid
    listing = ListingFactory(seller=seller, starting_price_cents=1000)
    bid_place(listing_id=listing.pk, bidder=UserFactory(), amount_cents=1000)
    if change.get("ends_at") == "+2d":
        change = {"ends_at": (timezone.now() + timedelta(days=2)).isoformat()}
    # when the seller changes a frozen field
    response = client_for(seller).patch(url(listing), change)
    # then 409 and nothing changed
    assert response.status_code == 409 and error_code(response) == "listing_has_bids"


def test_title_stays_editable_after_a_bid_and_same_values_are_not_changes(seller):
    listing = ListingFactory(seller=seller, starting_price_cents=1000)
    bid_place(listing_id=listing.pk, bidder=UserFactory(), amount_cents=1000)
    response = client_for(seller).patch(url(listing), {"title": "New title",
                                                       "starting_price_cents": 1000})
    assert response.status_code == 200, response.content


def test_edit_validates_the_merged_terms(seller):
    listing = ListingFactory(seller=seller, starting_price_cents=1000)
    response = client_for(seller).patch(url(listing), {"reserve_price_cents": 500})
    assert response.status_code == 400
    assert (error_code(response), error_attr(response)) == ("invalid_price",
                                                            "reserve_price_cents")


def test_sold_listing_is_not_editable(seller):
    listing = ListingFactory(seller=seller, status="sold")
    response = client_for(seller).patch(url(listing), {"title": "x"})
    assert response.status_code == 409 and error_code(response) == "listing_not_editable"


# --- cancel ---------------------------------------------------------------------------------

def test_seller_cancels_a_listing_without_bids(seller, sent_events,
                                              django_capture_on_commit_callbacks):
    # given a published listing without bids
    listing = ListingFactory(seller=seller)
    # when the seller cancels it
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(seller).delete(url(listing))
    # then it is cancelled, seq moves and its room hears that it ended unsold
    assert response.status_code == 204
    listing.refresh_from_db()
    assert (listing.status, listing.seq) == ("cancelled", 1)
    assert sent_events == [(f"listing.{listing.pk}", {
        "type": "auction_ended", "listingId": str(listing.pk), "seq": 1, "status": "cancelled",
        "finalPrice": None})]


def test_cancelling_a_draft_tells_no_room(seller, draft, sent_events,
                                          django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(seller).delete(url(draft))
    assert response.status_code == 204
    assert sent_events == []


def test_cancel_with_bids_is_409(seller):
    listing = ListingFactory(seller=seller)
    bid_place(listing_id=listing.pk, bidder=UserFactory(), amount_cents=1000)
    response = client_for(seller).delete(url(listing))
    assert response.status_code == 409 and error_code(response) == "listing_has_bids"
    listing.refresh_from_db()
    assert listing.status == "active"


def test_cancel_by_another_user_is_403_and_of_a_cancelled_listing_409(seller):
    listing = ListingFactory(seller=seller)
    assert client_for(UserFactory()).delete(url(listing)).status_code == 403
    client_for(seller).delete(url(listing))
    response = client_for(seller).delete(url(listing))
    assert response.status_code == 409 and error_code(response) == "listing_not_editable"


# --- staff removal --------------------------------------------------------------------------

def test_staff_removes_any_listing_with_a_reason():
    listing = ListingFactory(status="sold")
    staff = UserFactory(is_staff=True)
    removed = services.listing_remove(listing_id=listing.pk, staff_user=staff,
                                      reason="Counterfeit")
    assert (removed.status, removed.status_reason) == ("removed", "Counterfeit")
    assert client_for(UserFactory()).get(url(listing)).status_code == 404
    assert client_for(staff).get(url(listing)).status_code == 200


def test_non_staff_cannot_remove_and_removing_twice_conflicts():
    listing = ListingFactory()
    with pytest.raises(PermissionDenied):
        services.listing_remove(listing_id=listing.pk, staff_user=listing.seller, reason="x")
    staff = UserFactory(is_staff=True)
    services.listing_remove(listing_id=listing.pk, staff_user=staff, reason="Spam")
    with pytest.raises(Conflict):
        services.listing_remove(listing_id=listing.pk, staff_user=staff, reason="Spam")


def test_draft_created_through_the_api_is_invisible_in_browse_until_published(seller):
    client = client_for(seller)
    listing_id = client.post("/v1/listings", draft_body()).json()["id"]
    other = client_for(UserFactory())
    assert other.get("/v1/listings").json()["results"] == []
    client.post(f"/v1/listings/{listing_id}/publish")
    assert [r["id"] for r in other.get("/v1/listings").json()["results"]] == [listing_id]
