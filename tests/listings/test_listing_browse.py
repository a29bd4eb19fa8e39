"""GET /v1/listings: filters, full text (PostgreSQL and the SQLite fallback), near me,
orderings, cursor pagination, and a flat query count."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bidding.services import bid_place
from listings.models import Listing, ListingImage, Watch
from tests.factories import ListingFactory, UserFactory
from tests.listings.conftest import client_for, error_attr, error_code

pytestmark = pytest.mark.django_db

URL = "/v1/listings"

# Known coordinates around Toronto City Hall (43.6534, -79.3841).
ORIGIN = (43.6534, -79.3841)
PLACES = {
    "city_hall": (43.6534, -79.3841, 0.0),
    "cn_tower": (43.6426, -79.3871, 1.22),
    "mississauga": (43.5890, -79.6441, 22.3),
    "hamilton": (43.2557, -79.8711, 58.9),
    "ottawa": (45.4215, -75.6972, 352.0),
    "montreal": (45.5019, -73.5674, 503.0),
}


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [r["id"] for r in response.json()["results"]]


def test_default_is_active_newest_first_and_hides_drafts(api):
    old = ListingFactory()
    new = ListingFactory()
    ListingFactory(status="draft")
    ListingFactory(status="sold")
    assert ids(api.get(URL)) == [str(new.pk), str(old.pk)]


def test_status_filter_and_own_drafts(user, auth_api):
    mine = ListingFactory(seller=user, status="draft")
    ListingFactory(status="draft")
    sold = ListingFactory(status="sold")
    assert ids(auth_api.get(URL, {"status": "draft"})) == [str(mine.pk)]
    assert ids(auth_api.get(URL, {"status": "sold"})) == [str(sold.pk)]


def test_category_condition_seller_and_price_filters(api):
    bike = ListingFactory(category="sports", condition="good", starting_price_cents=3000)
    ListingFactory(category="books", condition="good", starting_price_cents=3000)
    ListingFactory(category="sports", condition="poor", starting_price_cents=3000)
    pricey = ListingFactory(category="sports", condition="good", starting_price_cents=90000)
    assert set(ids(api.get(URL, {"category": "sports", "condition": "good"}))) == {
        str(bike.pk), str(pricey.pk)}
    assert ids(api.get(URL, {"category": "sports", "condition": "good",
                             "max_price": 5000})) == [str(bike.pk)]
    assert ids(api.get(URL, {"min_price": 50000})) == [str(pricey.pk)]
    assert ids(api.get(URL, {"seller": str(bike.seller_id)})) == [str(bike.pk)]


def test_price_filter_uses_the_current_price():
    listing = ListingFactory(starting_price_cents=1000)
    bid_place(listing_id=listing.pk, bidder=UserFactory(), amount_cents=1000,
              max_amount_cents=5000)
    bid_place(listing_id=listing.pk, bidder=UserFactory(), amount_cents=4000)
    client = client_for(UserFactory())
    assert ids(client.get(URL, {"min_price": 4000})) == [str(listing.pk)]
    assert ids(client.get(URL, {"max_price": 2000})) == []


@pytest.mark.parametrize(("params", "code", "attr"), [
    ({"category": "spaceships"}, "invalid_choice", "category"),
    ({"ordering": "cheapest"}, "invalid_choice", "ordering"),
    ({"status": "gone"}, "invalid_choice", "status"),
    ({"lat": 43.6, "lng": -79.3, "radius_km": 501}, "max_value", "radius_km"),
    ({"lat": 91, "lng": 0}, "max_value", "lat"),
    ({"lat": 43.6}, "location_required", "lng"),
    ({"radius_km": 10}, "location_required", "radius_km"),
    ({"ordering": "distance"}, "location_required", "ordering"),
    ({"min_price": "cheap"}, "invalid", "min_price"),
    ({"seller": "nobody"}, "invalid", "seller"),
])
def test_bad_parameters_are_400(api, params, code, attr):
    response = api.get(URL, params)
    assert response.status_code == 400, response.content
    assert (error_code(response), error_attr(response)) == (code, attr)


def test_watching_filter_and_is_watching(user, auth_api):
    watched, _other = ListingFactory(), ListingFactory()
    Watch.objects.create(user=user, listing=watched)
    response = auth_api.get(URL, {"watching": "true"})
    assert ids(response) == [str(watched.pk)]
    assert response.json()["results"][0]["is_watching"] is True


def test_watching_needs_authentication(api):
    assert api.get(URL, {"watching": "true"}).status_code == 401


def _place(name: str, **kwargs) -> Listing:
    lat, lng, _ = PLACES[name]
    return ListingFactory(title=name, location_lat=lat, location_lng=lng, **kwargs)


def test_radius_filter_distance_and_ordering_on_known_coordinates(api):
    # given listings at known places and one without a location
    for name in PLACES:
        _place(name)
    ListingFactory(title="nowhere")
    # when browsing 60 km around City Hall by distance
    response = api.get(URL, {"lat": ORIGIN[0], "lng": ORIGIN[1], "radius_km": 60,
                             "ordering": "distance"})
    # then the places within 60 km, nearest first, with their distance
    results = response.json()["results"]
    assert [r["title"] for r in results] == ["city_hall", "cn_tower", "mississauga",
                                             "hamilton"]
    for r in results:
        assert r["distance_km"] == pytest.approx(PLACES[r["title"]][2], abs=0.5)
    # and the default radius (500 km) reaches Ottawa but not Montreal (503 km)
    wide = api.get(URL, {"lat": ORIGIN[0], "lng": ORIGIN[1], "ordering": "distance"})
    assert [r["title"] for r in wide.json()["results"]][-1] == "ottawa"


def test_distance_km_only_when_a_location_is_given(api):
    _place("cn_tower")
    assert "distance_km" not in api.get(URL).json()["results"][0]


def test_radius_across_the_antimeridian(api):
    east = ListingFactory(title="east", location_lat=-17.0, location_lng=179.9)
    west = ListingFactory(title="west", location_lat=-17.0, location_lng=-179.9)
    ListingFactory(title="far", location_lat=-17.0, location_lng=170.0)
    found = ids(api.get(URL, {"lat": -17.0, "lng": 179.95, "radius_km": 50}))
    assert set(found) == {str(east.pk), str(west.pk)}


def test_price_and_ending_orderings(api):
    now = timezone.now()
    a = ListingFactory(starting_price_cents=3000, ends_at=now + timedelta(hours=5))
    b = ListingFactory(starting_price_cents=1000, ends_at=now + timedelta(hours=9))
    c = ListingFactory(starting_price_cents=2000, ends_at=now + timedelta(hours=2))
    assert ids(api.get(URL, {"ordering": "price_asc"})) == [str(b.pk), str(c.pk), str(a.pk)]
    assert ids(api.get(URL, {"ordering": "price_desc"})) == [str(a.pk), str(c.pk), str(b.pk)]
    assert ids(api.get(URL, {"ordering": "ending_soon"})) == [str(c.pk), str(a.pk), str(b.pk)]
    assert ids(api.get(URL, {"ordering": "newest"})) == [str(c.pk), str(b.pk), str(a.pk)]


@pytest.mark.parametrize("ordering", ["price_asc", "newest", "ending_soon", "distance",
                                      "relevance"])
def test_cursor_pagination_walks_every_result_once(api, ordering):
    # given 7 listings, some sharing a price (ties resolved by the cursor's offset)
    made = {str(ListingFactory(starting_price_cents=1000 + 100 * (i % 3), location_lat=43.6,
                               location_lng=-79.38 + i / 100).pk) for i in range(7)}
    # when walking pages of 3
    params = {"page_size": 3, "ordering": ordering, "lat": 43.6, "lng": -79.38}
    if ordering == "relevance":  # the default for a text search, ranks all tied here
        params = {"page_size": 3, "q": "item"}
    seen: list[str] = []
    response = api.get(URL, params)
    while True:
        body = response.json()
        seen += [r["id"] for r in body["results"]]
        if not body["next"]:
            break
        response = api.get(body["next"])
    # then each listing shows up exactly once
    assert sorted(seen) == sorted(made)


# --- full text ------------------------------------------------------------------------------

CORPUS = [
    ("title_and_description", "Vintage guitar amplifier", "Tube guitar amp, loud"),
    ("title_only", "Guitar strap", "Leather, padded"),
    ("description_only", "Music stand", "Fits any guitar songbook"),
    ("unrelated", "Kitchen table", "Solid oak"),
]


def _corpus() -> dict[str, str]:
    return {str(ListingFactory(title=t, description=d).pk): key for key, t, d in CORPUS}


@pytest.mark.postgres
def test_postgres_search_ranks_title_above_description(api):
    names = _corpus()
    found = [names[i] for i in ids(api.get(URL, {"q": "guitars"}))]  # stemmed
    assert found == ["title_and_description", "title_only", "description_only"]
    row = Listing.objects.get(title="Guitar strap")
    assert row.search_vector  # kept by the database trigger


@pytest.mark.postgres
def test_postgres_search_stays_current_after_an_edit_and_supports_websearch(user, auth_api):
    listing = ListingFactory(seller=user, title="Blue bicycle", description="")
    ListingFactory(title="Red bicycle", description="")
    auth_api.patch(f"/v1/listings/{listing.pk}", {"title": "Green tricycle"})
    assert ids(auth_api.get(URL, {"q": "tricycle"})) == [str(listing.pk)]
    assert len(ids(auth_api.get(URL, {"q": "bicycle -red"}))) == 0
    assert len(ids(auth_api.get(URL, {"q": '"red bicycle"'}))) == 1


def test_search_fallback_matches_words_and_puts_title_matches_first(api):
    if connection.vendor == "postgresql":
        pytest.skip("the LIKE fallback runs on SQLite only")
    names = _corpus()
    found = [names[i] for i in ids(api.get(URL, {"q": "guitar"}))]
    assert found == ["title_and_description", "title_only", "description_only"]
    assert [names[i] for i in ids(api.get(URL, {"q": "guitar loud"}))] == [
        "title_and_description"]


def test_search_combines_with_filters_and_explicit_ordering(api):
    cheap = ListingFactory(title="Guitar pedal", starting_price_cents=2000)
    ListingFactory(title="Guitar case", starting_price_cents=4000, category="music")
    found = ids(api.get(URL, {"q": "guitar", "max_price": 3000, "ordering": "price_asc"}))
    assert found == [str(cheap.pk)]


# --- representation and query counts -------------------------------------------------------

def test_representation_for_bidders_hides_the_reserve_and_shows_leading(user, auth_api):
    listing = ListingFactory(starting_price_cents=1000, reserve_price_cents=5000)
    bid_place(listing_id=listing.pk, bidder=user, amount_cents=1000)
    row = auth_api.get(URL).json()["results"][0]
    assert "reserve_price_cents" not in row
    assert (row["is_leading"], row["reserve_met"], row["bid_count"],
            row["minimum_next_bid_cents"]) == (True, False, 1, 1050)
    seller_view = client_for(listing.seller).get(URL).json()["results"][0]
    assert seller_view["reserve_price_cents"] == 5000 and seller_view["is_leading"] is False


def _populate(n: int, watcher) -> None:
    for _ in range(n):
        listing = ListingFactory(location_lat=43.65, location_lng=-79.38)
        ListingImage.objects.create(listing=listing, image="listings/x.jpg",
                                    thumbnail="listings/thumbs/x.jpg")
        ListingImage.objects.create(listing=listing, image="listings/y.jpg", position=1)
        Watch.objects.create(user=watcher, listing=listing)


def _count(client, params) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(URL, params)
    assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("params", [{}, {"q": "item", "lat": 43.65, "lng": -79.38,
                                         "ordering": "distance"}])
def test_list_query_count_stays_flat_as_results_grow(user, auth_api, params):
    # given 2 listings, then 20 (each with images, a watch, a seller)
    _populate(2, user)
    few = _count(auth_api, params)
    _populate(18, user)
    many = _count(auth_api, params)
    # then the page costs the same number of queries
    assert many == few
    assert many <= 4  # user, page, images (+ a savepoint-free auth lookup)


@pytest.mark.parametrize(("params", "attr"), [
    ({"lat": 43.6}, "lng"),
    ({"radius_km": 10}, "radius_km"),
    ({"ordering": "distance"}, "ordering"),
])
def test_location_required_details_go_through_translation(api, monkeypatch, params, attr):
    # given a translation that marks every text it renders
    from django.utils import translation

    monkeypatch.setattr(translation._trans, "gettext", lambda message: f"«{message}»")
    # when a location filter misses its other half
    response = api.get(URL, params)
    # then the detail is a translated text (Accept-Language: fr gets French), not a literal
    (error,) = response.json()["errors"]
    assert (error["code"], error["attr"]) == ("location_required", attr)
    assert error["detail"].startswith("«") and error["detail"].endswith("»")
