"""Matching on whichever database runs the tests: PostgreSQL (one statement) or the SQLite
fallback of `make run` (columns in SQL, place and words in Python)."""

from __future__ import annotations

import pytest

from discovery.models import SavedSearch
from discovery.services import saved_search_matches_notify, saved_search_websearch
from notifications.models import Notification
from tests.factories import ListingFactory, UserFactory

TORONTO = (43.6532, -79.3832)


def search(user=None, **filters) -> SavedSearch:
    filters.setdefault("notify", True)
    return SavedSearch.objects.create(user=user or UserFactory(), name="s",
                                      q_websearch=saved_search_websearch(filters.get("q")),
                                      **filters)


@pytest.mark.django_db
def test_each_filter_narrows_and_the_job_notifies_once():
    listing = ListingFactory(title="Oak desk", description="Solid oak, two drawers",
                             category="furniture", condition="good", starting_price_cents=9000,
                             location_lat=TORONTO[0], location_lng=TORONTO[1])
    hits = [search(q="oak desk"), search(q="drawers"), search(category="furniture"),
            search(condition="good", max_price=9000),
            search(lat=TORONTO[0] + 0.05, lng=TORONTO[1], radius_km=10)]
    for misses in ({"q": "walnut desk"}, {"category": "home"}, {"condition": "new"},
                   {"min_price": 9001}, {"lat": TORONTO[0] + 0.2, "lng": TORONTO[1],
                                         "radius_km": 10}):
        search(**misses)
    search(user=listing.seller, q="desk")
    search(q="desk", notify=False)
    assert saved_search_matches_notify(listing_id=listing.pk) == len(hits)
    assert saved_search_matches_notify(listing_id=listing.pk) == 0
    notified = {n.data["saved_search_id"] for n in Notification.objects.all()}
    assert notified == {str(s.pk) for s in hits}


@pytest.mark.django_db
def test_the_sweep_matches_a_listing_whose_task_was_lost():
    from datetime import timedelta

    from django.utils import timezone

    from discovery.models import MatchedListing
    from discovery.tasks import saved_searches_match_missed

    now = timezone.now()
    # given a listing published 2 minutes ago whose task never ran, one published just now
    # (its own task is still coming) and one matched already
    lost = ListingFactory(title="Red kayak", starts_at=now - timedelta(minutes=2))
    ListingFactory(title="Red kayak too", starts_at=now)
    done = ListingFactory(title="Red kayak three", starts_at=now - timedelta(minutes=3))
    MatchedListing.objects.create(listing=done)
    watcher = search(q="kayak")
    # when the sweep runs (tasks are eager in tests), twice
    assert saved_searches_match_missed() == 1
    assert saved_searches_match_missed() == 0
    # then only the lost one was matched, once
    assert [n.data["listing_id"] for n in Notification.objects.filter(user=watcher.user)] == [
        str(lost.pk)]
    assert MatchedListing.objects.filter(listing=lost).exists()
