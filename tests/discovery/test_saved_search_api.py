"""`/v1/saved-searches`: create, list, change, delete, the 20-per-account cap, the
validation shared with `GET /v1/listings`, and a search's listings."""

from __future__ import annotations

import threading

import pytest
from django.db import connections
from rest_framework.test import APIClient

from discovery.models import SavedSearch
from discovery.selectors import saved_searches_for_export
from discovery.services import MAX_SAVED_SEARCHES
from tests.conftest import bearer
from tests.factories import ListingFactory, UserFactory

URL = "/v1/saved-searches"
FIELDS = {"id", "name", "q", "category", "condition", "min_price", "max_price", "lat", "lng",
          "radius_km", "notify", "created_at", "updated_at"}


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(user))
    return client


def errors(response) -> list[tuple[str, str | None]]:
    return [(e["code"], e["attr"]) for e in response.json()["errors"]]


@pytest.mark.django_db
def test_create_returns_the_fields_and_lists_them_for_the_owner_only(auth_api, user):
    # when a user saves a search with every filter
    body = {"name": "Bikes near me", "q": "road bike", "category": "sports",
            "condition": "good", "min_price": 1000, "max_price": 50000, "lat": 43.65,
            "lng": -79.38, "radius_km": 25, "notify": True}
    response = auth_api.post(URL, body, format="json")
    # then it is 201 with the same fields, an id and created_at
    assert response.status_code == 201, response.content
    data = response.json()
    assert set(data) == FIELDS
    assert {k: data[k] for k in body} == body
    # and the owner lists it; another user doesn't see it, nor can read it
    listed = auth_api.get(URL).json()
    assert [s["id"] for s in listed["results"]] == [data["id"]]
    assert listed["next"] is None and listed["previous"] is None
    other = client_for(UserFactory())
    assert other.get(URL).json()["results"] == []
    assert other.get(f"{URL}/{data['id']}").status_code == 404
    assert other.patch(f"{URL}/{data['id']}", {"name": "x"}, format="json").status_code == 404
    assert other.delete(f"{URL}/{data['id']}").status_code == 404
    assert other.get(f"{URL}/{data['id']}/listings").status_code == 404


@pytest.mark.django_db
def test_a_minimal_search_has_null_filters(auth_api):
    response = auth_api.post(URL, {"name": "Anything", "notify": False}, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["notify"] is False
    assert all(data[k] is None for k in ("q", "category", "condition", "min_price",
                                         "max_price", "lat", "lng", "radius_km"))


@pytest.mark.django_db
def test_anonymous_is_401(api):
    assert api.get(URL).status_code == 401
    assert api.post(URL, {"name": "x", "notify": True}, format="json").status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "expected"), [
    ({"notify": True}, ("required", "name")),
    ({"name": "   ", "notify": True}, ("blank", "name")),
    ({"name": "x" * 101, "notify": True}, ("max_length", "name")),
    ({"name": "x"}, ("required", "notify")),
    ({"name": "x", "notify": True, "category": "spaceships"}, ("invalid_choice", "category")),
    ({"name": "x", "notify": True, "condition": "mint"}, ("invalid_choice", "condition")),
    ({"name": "x", "notify": True, "min_price": -1}, ("min_value", "min_price")),
    ({"name": "x", "notify": True, "max_price": 2**63}, ("max_value", "max_price")),
    ({"name": "x", "notify": True, "q": "x" * 201}, ("max_length", "q")),
    ({"name": "x", "notify": True, "lat": 91, "lng": 0}, ("max_value", "lat")),
    ({"name": "x", "notify": True, "lat": 43.6}, ("location_required", "lng")),
    ({"name": "x", "notify": True, "lng": -79.3}, ("location_required", "lat")),
    ({"name": "x", "notify": True, "radius_km": 10}, ("location_required", "radius_km")),
    ({"name": "x", "notify": True, "lat": 43.6, "lng": -79.3, "radius_km": 501},
     ("max_value", "radius_km")),
    ({"name": "x", "notify": True, "lat": 43.6, "lng": -79.3, "radius_km": 0},
     ("min_value", "radius_km")),
    ({"name": "x", "notify": True, "min_price": 5000, "max_price": 1000},
     ("invalid_price_range", "max_price")),
])
def test_bad_input_is_400_with_the_field(auth_api, body, expected):
    response = auth_api.post(URL, body, format="json")
    assert response.status_code == 400, response.content
    assert expected in errors(response)
    assert not SavedSearch.objects.exists()


@pytest.mark.django_db
def test_the_filters_are_refused_exactly_as_browse_refuses_them(api, auth_api):
    # the same bad filter gives the same code and attr on both endpoints
    for params in ({"category": "nope"}, {"lat": 43.6}, {"radius_km": 5}, {"min_price": -5}):
        browse = api.get("/v1/listings", params)
        saved = auth_api.post(URL, {"name": "x", "notify": True, **params}, format="json")
        assert browse.status_code == saved.status_code == 400
        assert errors(browse) == errors(saved), params


@pytest.mark.django_db
def test_patch_changes_given_fields_drops_nulls_and_checks_the_result(auth_api):
    created = auth_api.post(URL, {"name": "Lamps", "q": "lamp", "category": "home",
                                  "lat": 43.6, "lng": -79.3, "notify": True},
                            format="json").json()
    url = f"{URL}/{created['id']}"
    # a rename keeps the filters
    response = auth_api.patch(url, {"name": "Desk lamps", "q": "desk lamp"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["name"] == "Desk lamps"
    assert response.json()["q"] == "desk lamp" and response.json()["category"] == "home"
    assert SavedSearch.objects.get(pk=created["id"]).q_websearch == "desk lamp"
    # null drops a filter
    response = auth_api.patch(url, {"category": None, "notify": False}, format="json")
    assert response.json()["category"] is None and response.json()["notify"] is False
    # a change that leaves half a place is refused, and nothing changes
    response = auth_api.patch(url, {"lat": None}, format="json")
    assert response.status_code == 400
    assert ("location_required", "lat") in errors(response)
    assert auth_api.get(url).json()["lat"] == 43.6
    # both coordinates dropped: no place
    response = auth_api.patch(url, {"lat": None, "lng": None}, format="json")
    assert response.status_code == 200 and response.json()["lat"] is None
    # a bad value is 400 with its field
    response = auth_api.patch(url, {"condition": "mint"}, format="json")
    assert ("invalid_choice", "condition") in errors(response)
    response = auth_api.patch(url, {"name": ""}, format="json")
    assert response.status_code == 400


@pytest.mark.django_db
def test_delete_then_404(auth_api):
    created = auth_api.post(URL, {"name": "x", "notify": True}, format="json").json()
    assert auth_api.delete(f"{URL}/{created['id']}").status_code == 204
    assert auth_api.delete(f"{URL}/{created['id']}").status_code == 404
    assert auth_api.get(f"{URL}/{created['id']}").status_code == 404


@pytest.mark.django_db
def test_the_21st_search_is_409_and_a_deleted_one_frees_a_place(auth_api):
    ids = []
    for i in range(MAX_SAVED_SEARCHES):
        response = auth_api.post(URL, {"name": f"s{i}", "notify": True}, format="json")
        assert response.status_code == 201
        ids.append(response.json()["id"])
    response = auth_api.post(URL, {"name": "one more", "notify": True}, format="json")
    assert response.status_code == 409
    assert errors(response) == [("too_many_saved_searches", None)]
    assert auth_api.delete(f"{URL}/{ids[0]}").status_code == 204
    assert auth_api.post(URL, {"name": "now", "notify": True}, format="json").status_code == 201


@pytest.mark.django_db
def test_a_suspended_account_may_not_save(auth_api, user):
    user.status = user.Status.SUSPENDED
    user.save(update_fields=["status"])
    response = auth_api.post(URL, {"name": "x", "notify": True}, format="json")
    assert response.status_code == 403
    assert errors(response)[0][0] == "account_suspended"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_never_pass_the_cap():
    # given a user one place from the cap
    user = UserFactory()
    for i in range(MAX_SAVED_SEARCHES - 1):
        SavedSearch.objects.create(user=user, name=f"s{i}")
    # when 6 clients save a search at the same time
    barrier = threading.Barrier(6, timeout=30)
    codes: list[int] = []
    lock = threading.Lock()

    def body() -> None:
        try:
            client = client_for(user)
            barrier.wait()
            code = client.post(URL, {"name": "race", "notify": True},
                               format="json").status_code
            with lock:
                codes.append(code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=body) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # then exactly one took the last place
    assert sorted(codes) == [201] + [409] * 5
    assert SavedSearch.objects.filter(user=user).count() == MAX_SAVED_SEARCHES


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_searchs_listings_are_browse_with_its_filters(auth_api, user, api):
    # given listings, some matching a saved search
    seller = UserFactory()
    near = ListingFactory(seller=seller, title="Vintage guitar", category="music",
                          location_lat=43.66, location_lng=-79.39, starting_price_cents=5000)
    ListingFactory(seller=seller, title="Vintage guitar far away", category="music",
                   location_lat=45.50, location_lng=-73.57, starting_price_cents=5000)
    ListingFactory(seller=seller, title="Vintage guitar", category="music",
                   location_lat=43.66, location_lng=-79.39, starting_price_cents=90000)
    ListingFactory(seller=seller, title="Vintage lamp", category="home",
                   location_lat=43.66, location_lng=-79.39, starting_price_cents=5000)
    params = {"q": "guitar", "category": "music", "max_price": 10000, "lat": 43.65,
              "lng": -79.38, "radius_km": 20}
    created = auth_api.post(URL, {"name": "Guitars", "notify": True, **params},
                            format="json").json()
    # when the owner reads its listings
    response = auth_api.get(f"{URL}/{created['id']}/listings")
    # then they are GET /v1/listings with the same filters, byte for byte
    assert response.status_code == 200, response.content
    assert [r["id"] for r in response.json()["results"]] == [str(near.pk)]
    same = auth_api.get("/v1/listings", params)
    assert response.json() == same.json()
    # with an ordering and pagination as browse has them
    by_distance = auth_api.get(f"{URL}/{created['id']}/listings",
                               {"ordering": "distance", "page_size": 1})
    assert by_distance.status_code == 200
    assert by_distance.json()["results"][0]["distance_km"] > 0
    assert by_distance.json()["results"] == auth_api.get(
        "/v1/listings", {**params, "ordering": "distance", "page_size": 1}).json()["results"]


@pytest.mark.django_db
def test_distance_ordering_needs_a_place(auth_api):
    created = auth_api.post(URL, {"name": "x", "notify": True}, format="json").json()
    response = auth_api.get(f"{URL}/{created['id']}/listings", {"ordering": "distance"})
    assert response.status_code == 400
    assert errors(response) == [("location_required", "ordering")]
    response = auth_api.get(f"{URL}/{created['id']}/listings", {"ordering": "random"})
    assert ("invalid_choice", "ordering") in errors(response)


@pytest.mark.django_db
def test_export_lists_the_users_searches_as_plain_data(user):
    SavedSearch.objects.create(user=user, name="a", q="lamp", category="home")
    SavedSearch.objects.create(user=UserFactory(), name="not mine")
    rows = saved_searches_for_export(user)
    assert len(rows) == 1
    assert rows[0]["name"] == "a" and rows[0]["q"] == "lamp" and rows[0]["category"] == "home"
    assert isinstance(rows[0]["id"], str) and isinstance(rows[0]["created_at"], str)
    assert "q_tsquery" not in rows[0] and "anchor" not in rows[0]


@pytest.mark.django_db
def test_the_price_range_detail_goes_through_translation(auth_api, monkeypatch):
    # given a translation that marks every text it renders
    from django.utils import translation

    monkeypatch.setattr(translation._trans, "gettext", lambda message: f"«{message}»")
    # when a search's max_price is below its min_price
    response = auth_api.post(URL, {"name": "x", "notify": True, "min_price": 5000,
                                   "max_price": 1000}, format="json")
    # then the detail is a translated text (Accept-Language: fr gets French), not a literal
    (error,) = response.json()["errors"]
    assert (error["code"], error["attr"]) == ("invalid_price_range", "max_price")
    assert error["detail"].startswith("«") and error["detail"].endswith("»")
