"""Matching a listing that becomes active against the saved searches (PostgreSQL).

Each filter means what it means on `GET /v1/listings` (a property test compares the two over
generated searches and listings); price is the starting price; the seller's own searches
and `notify: false` are left out; one notification per search and listing however often the
task runs.
"""

from __future__ import annotations

import random
import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from discovery.models import SavedSearch
from discovery.selectors import _sqlite_matching, saved_searches_matching
from discovery.services import saved_search_matches_notify, saved_search_websearch
from discovery.tasks import saved_searches_match
from listings.models import Listing
from listings.selectors import listing_browse
from notifications.models import Notification
from tests.conftest import bearer
from tests.factories import ListingFactory, UserFactory

pytestmark = [pytest.mark.postgres]

TORONTO = (43.6532, -79.3832)


def search(user=None, **filters) -> SavedSearch:
    filters.setdefault("notify", True)
    return SavedSearch.objects.create(user=user or UserFactory(), name="s",
                                      q_websearch=saved_search_websearch(filters.get("q")),
                                      **filters)


def matched(listing) -> set:
    return {row[0] for row in saved_searches_matching(listing=listing)}


@pytest.fixture
def guitar(db):
    return ListingFactory(title="Vintage Fender guitar", description="Sunburst, hard case",
                          category="music", condition="good", starting_price_cents=40000,
                          location_lat=TORONTO[0], location_lng=TORONTO[1])


@pytest.mark.django_db
def test_full_text(guitar):
    hits = [search(q="guitar"), search(q="fender guitars"), search(q="guitar -broken"),
            search(q='"vintage fender"'), search(q="banjo or guitar"), search(q="CASE")]
    misses = [search(q="banjo"), search(q="guitar -case"), search(q='"fender vintage"'),
              search(q="the"), search(q="guitar amplifier")]
    everything = search()
    assert matched(guitar) == {s.pk for s in [*hits, everything]}
    assert not matched(guitar) & {s.pk for s in misses}


@pytest.mark.django_db
def test_a_search_whose_words_are_all_required_is_keyed_on_a_pair(guitar):
    both = search(q="vintage guitar")
    either = search(q="vintage or drums")
    phrase = search(q='"fender guitar"')
    assert SavedSearch.objects.get(pk=both.pk).q_keys == ["guitar vintag"]
    assert sorted(SavedSearch.objects.get(pk=either.pk).q_keys) == ["drum", "vintag"]
    assert SavedSearch.objects.get(pk=phrase.pk).q_keys == ["fender guitar"]
    # the listing holds both words of each: all three match, through the index
    assert matched(guitar) == {both.pk, either.pk, phrase.pk}


@pytest.mark.django_db
def test_a_listing_with_very_many_words_is_matched_on_single_words(guitar, monkeypatch):
    from discovery import selectors

    hits = [search(q="vintage guitar"), search(q="case or drums"), search(q="sunburst")]
    search(q="vintage banjo")
    monkeypatch.setattr(selectors, "MAX_PAIRED_LEXEMES", 2)
    assert matched(guitar) == {s.pk for s in hits}


@pytest.mark.django_db
def test_a_query_of_only_negated_words_matches_what_lacks_them(guitar):
    without_drums = search(q="-drums")
    without_case = search(q="-case")
    assert matched(guitar) == {without_drums.pk}
    assert without_case.anchor != "text"


@pytest.mark.django_db
def test_category_and_condition(guitar):
    hits = [search(category="music"), search(condition="good"),
            search(category="music", condition="good", q="guitar")]
    search(category="sports"), search(condition="new"), search(category="music", q="drum")
    assert matched(guitar) == {s.pk for s in hits}


@pytest.mark.django_db
def test_price_is_the_starting_price(guitar):
    # the current price moved since (a bid): matching still reads the published price
    Listing.objects.filter(pk=guitar.pk).update(current_price_cents=90000)
    guitar.refresh_from_db()
    hits = [search(min_price=40000), search(max_price=40000), search(min_price=1000,
                                                                     max_price=50000)]
    search(min_price=40001), search(max_price=39999), search(min_price=85000)
    assert matched(guitar) == {s.pk for s in hits}


@pytest.mark.django_db
def test_place_radius_box_corner_and_default(guitar):
    lat, lng = TORONTO
    # about 14 km north-east: inside a 15 km circle, outside a 10 km one whose bounding box
    # still holds the point (the box's corner is 14.1 km from its centre)
    north_east = (lat + 0.0899 * 0.7071 * 1.4, lng + 0.1242 * 0.7071 * 1.4)
    hits = [search(lat=lat, lng=lng, radius_km=1), search(lat=north_east[0],
                                                          lng=north_east[1], radius_km=15),
            # no radius: 500 km, as browse (Montreal is 504 km away, Ottawa 352)
            search(lat=45.4215, lng=-75.6972)]
    corner = search(lat=north_east[0], lng=north_east[1], radius_km=10)
    search(lat=45.5019, lng=-73.5674), search(lat=49.28, lng=-123.12, radius_km=500)
    result = matched(guitar)
    assert result == {s.pk for s in hits}
    assert corner.pk not in result
    # a listing without a place matches only searches without one
    placeless = ListingFactory(title="Vintage Fender guitar", category="music")
    assert matched(placeless) == set()
    anywhere = search(q="fender")
    assert matched(placeless) == {anywhere.pk}


@pytest.mark.django_db
def test_the_sellers_own_searches_and_silent_ones_are_left_out(guitar):
    mine = search(user=guitar.seller, q="guitar")
    silent = search(q="guitar", notify=False)
    theirs = search(q="guitar")
    result = matched(guitar)
    assert theirs.pk in result and mine.pk not in result and silent.pk not in result


@pytest.mark.django_db
def test_each_anchor_is_read_through_its_index(guitar):
    from biddt.dbstats import explain
    from discovery.selectors import matching_statement

    search(q="guitar"), search(lat=TORONTO[0], lng=TORONTO[1]), search(category="music")
    search(condition="good")
    sql, params = matching_statement(guitar)
    with connections["default"].cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a 4-row table: show the choice
        plan = str(explain(sql, params))
    for index in ("saved_search_anchor_text", "saved_search_anchor_geo",
                  "saved_search_anchor_cat", "saved_search_anchor_none"):
        assert index in plan, index


CATEGORIES = ["music", "home", "sports"]
CONDITIONS = ["new", "good", "fair"]
WORDS = ["vintage", "guitar", "lamp", "oak", "desk", "bike", "red", "camera"]


def _random_search(rng: random.Random, user) -> SavedSearch:
    filters = {}
    if rng.random() < 0.6:
        words = rng.sample(WORDS, rng.randint(1, 2))
        filters["q"] = " ".join(words) if rng.random() < 0.8 else f"{words[0]} -{WORDS[0]}"
    if rng.random() < 0.4:
        filters["category"] = rng.choice(CATEGORIES)
    if rng.random() < 0.3:
        filters["condition"] = rng.choice(CONDITIONS)
    if rng.random() < 0.3:
        filters["min_price"] = rng.randint(500, 5000)
    if rng.random() < 0.3:
        filters["max_price"] = rng.randint(3000, 9000)
    if rng.random() < 0.6:
        filters["lat"] = TORONTO[0] + rng.uniform(-0.5, 0.5)
        filters["lng"] = TORONTO[1] + rng.uniform(-0.5, 0.5)
        if rng.random() < 0.8:
            filters["radius_km"] = rng.uniform(2, 60)
    return search(user=user, **filters)


@pytest.mark.django_db
def test_matching_agrees_with_browse_over_generated_searches():
    rng = random.Random(21)
    users = [UserFactory() for _ in range(5)]
    searches = [_random_search(rng, rng.choice(users)) for _ in range(150)]
    listings = []
    for _ in range(25):
        place = rng.random() < 0.85
        listings.append(ListingFactory(
            seller=rng.choice(users), title=" ".join(rng.sample(WORDS, 3)),
            description=" ".join(rng.sample(WORDS, 2)), category=rng.choice(CATEGORIES),
            condition=rng.choice(CONDITIONS), starting_price_cents=rng.randint(500, 10000),
            location_lat=TORONTO[0] + rng.uniform(-0.5, 0.5) if place else None,
            location_lng=TORONTO[1] + rng.uniform(-0.5, 0.5) if place else None))
    total = 0
    for listing in listings:
        expected = set()
        for s in searches:
            if s.user_id == listing.seller_id:
                continue
            browse = listing_browse(user=None, q=s.q, category=s.category,
                                    condition=s.condition, min_price=s.min_price,
                                    max_price=s.max_price, lat=s.lat, lng=s.lng,
                                    radius_km=s.radius_km)
            if browse.queryset.filter(pk=listing.pk).exists():
                expected.add(s.pk)
        assert matched(listing) == expected, listing.title
        # the SQLite path (Python for place and words) agrees on these plain queries
        plain = {row[0] for row in _sqlite_matching(listing)}
        simple = {s.pk for s in searches if not s.q or "-" not in s.q}
        assert plain & simple == expected & simple, listing.title
        total += len(expected)
    assert total > 20  # the generated data does exercise matches


# --- notifications --------------------------------------------------------------------------

@pytest.mark.django_db
def test_one_notification_per_search_and_listing_even_when_the_task_runs_again(
        guitar, sent_events, django_capture_on_commit_callbacks):
    a, b = search(q="guitar"), search(category="music")
    with django_capture_on_commit_callbacks(execute=True):
        assert saved_search_matches_notify(listing_id=guitar.pk) == 2
    with django_capture_on_commit_callbacks(execute=True):
        assert saved_searches_match(str(guitar.pk)) == 0  # a redelivered task
    rows = Notification.objects.filter(type="saved_search_match")
    assert rows.count() == 2
    assert {(n.user_id, n.data["saved_search_id"]) for n in rows} == {
        (a.user_id, str(a.pk)), (b.user_id, str(b.pk))}
    assert all(n.data == {"saved_search_id": n.data["saved_search_id"],
                          "listing_id": str(guitar.pk)} for n in rows)
    assert all(n.body == guitar.title and "“s”" in n.title for n in rows)
    # each owner's socket heard it once
    pushed = [(g, p["notification"]["data"]["saved_search_id"]) for g, p in sent_events
              if p.get("type") == "notification"]
    assert sorted(pushed) == sorted([(f"user.{a.user_id}", str(a.pk)),
                                     (f"user.{b.user_id}", str(b.pk))])


@pytest.mark.django_db
def test_a_listing_no_longer_active_notifies_no_one(guitar):
    search(q="guitar")
    Listing.objects.filter(pk=guitar.pk).update(status="cancelled")
    assert saved_search_matches_notify(listing_id=guitar.pk) == 0
    assert not Notification.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_deliveries_of_the_task_at_once_notify_once():
    listing = ListingFactory(title="Oak desk", category="home")
    searches = [search(q="desk") for _ in range(30)]
    barrier = threading.Barrier(2, timeout=30)
    created: list[int] = []

    def run() -> None:
        try:
            barrier.wait()
            created.append(saved_search_matches_notify(listing_id=listing.pk))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(created) == len(searches)
    assert Notification.objects.filter(type="saved_search_match").count() == len(searches)


@pytest.mark.django_db
def test_publishing_queues_the_match_after_commit(django_capture_on_commit_callbacks):
    from rest_framework.test import APIClient

    watcher = search(q="road bike", lat=TORONTO[0], lng=TORONTO[1], radius_km=10)
    seller = UserFactory()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(seller))
    draft = client.post("/v1/listings", {
        "title": "Road bike", "description": "54 cm", "category": "sports",
        "starting_price_cents": 5000, "location_lat": TORONTO[0] + 0.01,
        "location_lng": TORONTO[1], "ends_at": (timezone.now() + timedelta(days=2)).isoformat(),
    }, format="json").json()
    # nothing is matched while the publish's transaction is open ...
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert client.post(f"/v1/listings/{draft['id']}/publish").status_code == 200
    assert not Notification.objects.exists()
    # ... the commit sends listing_activated, which queues the task (eager in tests)
    with django_capture_on_commit_callbacks(execute=True):
        for callback in callbacks:
            callback()
    note = Notification.objects.get(user=watcher.user)
    assert note.type == "saved_search_match"
    assert note.data == {"saved_search_id": str(watcher.pk), "listing_id": draft["id"]}
    # and the owner reads it through the API
    owner = APIClient()
    owner.credentials(HTTP_AUTHORIZATION=bearer(watcher.user))
    item = owner.get("/v1/notifications").json()["results"][0]
    assert item["type"] == "saved_search_match" and item["data"] == note.data
