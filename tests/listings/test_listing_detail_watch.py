"""GET /v1/listings/{id} (view counting) and the watchlist."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from listings.models import Listing, Watch
from tests.factories import ListingFactory, UserFactory
from tests.listings.conftest import client_for

pytestmark = pytest.mark.django_db


def url(listing, suffix: str = "") -> str:
    return f"/v1/listings/{listing.pk}{suffix}"


def view_count(listing) -> int:
    return Listing.objects.values_list("view_count", flat=True).get(pk=listing.pk)


def test_a_view_counts_once_per_viewer_per_hour():
    # given an active listing and two viewers
    listing = ListingFactory()
    alice, bob = client_for(UserFactory()), client_for(UserFactory())
    # when alice looks three times and bob once
    for _ in range(3):
        assert alice.get(url(listing)).status_code == 200
    bob.get(url(listing))
    # then two views; the seller's own views don't count
    client_for(listing.seller).get(url(listing))
    assert view_count(listing) == 2


def test_repeat_views_do_no_write(user, auth_api):
    listing = ListingFactory()
    auth_api.get(url(listing))
    with CaptureQueriesContext(connection) as ctx:
        auth_api.get(url(listing))
    assert not [q for q in ctx.captured_queries if q["sql"].lstrip().upper().startswith("UPDATE")]


def test_anonymous_viewers_count_by_address(api):
    listing = ListingFactory()
    api.get(url(listing), REMOTE_ADDR="10.0.0.1")
    api.get(url(listing), REMOTE_ADDR="10.0.0.1")
    api.get(url(listing), REMOTE_ADDR="10.0.0.2")
    assert view_count(listing) == 2


def test_the_view_counts_again_after_the_window(user, auth_api):
    from django.core.cache import cache

    listing = ListingFactory()
    auth_api.get(url(listing))
    cache.clear()  # the one-hour key expired
    auth_api.get(url(listing))
    assert view_count(listing) == 2


def test_unknown_listing_is_404(api):
    response = api.get("/v1/listings/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404


def test_watch_and_unwatch(user, auth_api):
    listing = ListingFactory()
    first = auth_api.post(url(listing, "/watch"))
    again = auth_api.post(url(listing, "/watch"))
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == {"is_watching": True}
    assert Watch.objects.filter(user=user, listing=listing).count() == 1
    assert auth_api.get(url(listing)).json()["is_watching"] is True
    assert auth_api.delete(url(listing, "/watch")).status_code == 204
    assert auth_api.delete(url(listing, "/watch")).status_code == 204
    assert not Watch.objects.exists()
    assert auth_api.get(url(listing)).json()["is_watching"] is False


def test_watch_needs_an_account_and_a_visible_listing(api, auth_api):
    listing = ListingFactory()
    assert api.post(url(listing, "/watch")).status_code == 401
    assert auth_api.post(url(ListingFactory(status="draft"), "/watch")).status_code == 404


def test_suspended_user_cannot_watch(user, auth_api):
    user.status = "suspended"
    user.save()
    assert auth_api.post(url(ListingFactory(), "/watch")).status_code == 403
