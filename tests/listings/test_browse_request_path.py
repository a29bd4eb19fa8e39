"""The browse request path (issue 22): what the page's SQL is built from costs less CPU and
writes the same SQL, values and errors as before."""

from __future__ import annotations

import math
import threading
import uuid

import pytest
from django.db.models import (
    CharField,
    F,
    FloatField,
    IntegerField,
    OuterRef,
    Subquery,
    Value,
)
from django.db.models.functions import ASin, Cos, Least, Power, Radians, Sin, Sqrt
from django.http import QueryDict

from accounts.models import User
from biddt.geo import EARTH_RADIUS_KM, distance_km_expr
from discovery.api.serializers import SavedSearchInSerializer, SavedSearchListingsParams
from listings.api.listing_rows import _media_rows, listing_rows
from listings.filters import ListingBrowseParams, ListingBrowseQuery
from listings.models import Listing, ListingImage, ListingVideo, VideoStatus
from tests.factories import ListingFactory, UserFactory

pytestmark = pytest.mark.django_db


# --- the haversine as one expression ---------------------------------------------------------

def _composed_distance_km(lat: float, lng: float, lat_field: str, lng_field: str):
    """The distance as it was written before: Django's math functions composed."""
    lat0, lng0 = Value(math.radians(lat)), Value(math.radians(lng))
    row_lat, row_lng = Radians(F(lat_field)), Radians(F(lng_field))
    a = (Power(Sin((row_lat - lat0) / 2), 2)
         + Cos(lat0) * Cos(row_lat) * Power(Sin((row_lng - lng0) / 2), 2))
    return Value(2 * EARTH_RADIUS_KM) * ASin(Least(Value(1.0), Sqrt(a)),
                                             output_field=FloatField())


@pytest.mark.parametrize("point", [(43.6532, -79.3832), (-33.86, 151.2), (0.0, 0.0),
                                   (89.9, -179.99)])
def test_the_distance_writes_the_sql_and_parameters_of_the_composed_functions(point):
    lat, lng = point
    new = Listing.objects.annotate(
        d=distance_km_expr(lat, lng, "location_lat", "location_lng")).values("d")
    old = Listing.objects.annotate(
        d=_composed_distance_km(lat, lng, "location_lat", "location_lng")).values("d")
    assert new.query.sql_with_params() == old.query.sql_with_params()
    # filtered and ordered on, as browse does
    new_f = new.filter(d__lte=25).order_by("d", "id")
    old_f = old.filter(d__lte=25).order_by("d", "id")
    assert new_f.query.sql_with_params() == old_f.query.sql_with_params()


def test_the_distance_values_are_those_of_the_composed_functions():
    for lat, lng in [(43.70, -79.40), (43.1, -79.0), (45.5, -73.56)]:
        ListingFactory(location_lat=lat, location_lng=lng)
    new = list(Listing.objects.annotate(
        d=distance_km_expr(43.6532, -79.3832, "location_lat", "location_lng"))
        .order_by("id").values_list("d", flat=True))
    old = list(Listing.objects.annotate(
        d=_composed_distance_km(43.6532, -79.3832, "location_lat", "location_lng"))
        .order_by("id").values_list("d", flat=True))
    assert new == old and len(new) == 3


# --- the seller's public fields ---------------------------------------------------------------

def test_the_sellers_fields_are_those_of_the_subqueries():
    rated = UserFactory(display_name="Zoë “quoted”")
    User.objects.filter(pk=rated.pk).update(rating_total=14, rating_count=3)
    for seller in (rated, UserFactory(display_name=""), UserFactory()):
        ListingFactory(seller=seller)
    seller = User.objects.filter(pk=OuterRef("seller_id"))
    old = (Listing.objects.annotate(
        _seller_name=Subquery(seller.values("display_name")),
        _seller_rating_total=Subquery(seller.values("rating_total")),
        _seller_rating_count=Subquery(seller.values("rating_count")))
        .order_by("id").values("id", "_seller_name", "_seller_rating_total",
                               "_seller_rating_count"))
    new = listing_rows(Listing.objects.all()).order_by("id")
    assert [{k: row[k] for k in old[0]} for row in new] == list(old)
    assert {row["_seller_rating_total"] for row in new} == {14, 0}


# --- the page's images and videos ------------------------------------------------------------

def _orm_media(listing_ids):
    """The UNION as the ORM wrote it before."""
    images = ListingImage.objects.filter(listing_id__in=listing_ids).order_by().values_list(
        "listing_id", Value("image", output_field=CharField()), "image",
        Value("", output_field=CharField()), Value(0.0, output_field=FloatField()),
        "position", "created_at")
    videos = ListingVideo.objects.filter(
        listing_id__in=listing_ids, status=VideoStatus.READY).order_by().values_list(
        "listing_id", Value("video", output_field=CharField()), "file", "poster",
        "duration_seconds", Value(0, output_field=IntegerField()), "created_at")
    return list(images.union(videos, all=True))


def test_the_media_rows_are_those_of_the_orm_union():
    listings = [ListingFactory() for _ in range(4)]
    for n, listing in enumerate(listings[:3]):
        for k in range(n + 1):
            ListingImage.objects.create(listing=listing, image=f"listings/{n}-{k}.jpg",
                                        position=k % 2)
    ListingVideo.objects.create(listing=listings[0], status=VideoStatus.READY,
                                file="listings/v.mp4", poster="listings/p.jpg",
                                duration_seconds=59.96)
    ListingVideo.objects.create(listing=listings[1], status=VideoStatus.PROCESSING,
                                file="listings/w.mp4", duration_seconds=3.0)
    for chosen in ([listings[0].pk], [x.pk for x in listings], [listings[3].pk, uuid.uuid4()]):
        key = sorted  # the UNION's order is the database's; the page sorts it

        def by_key(rows):
            return key(rows, key=lambda r: (str(r[0]), r[1], r[2]))

        assert by_key(_media_rows(chosen)) == by_key(_orm_media(chosen))
    rows = _media_rows([x.pk for x in listings])
    assert len(rows) == 7  # six images, one ready video
    assert all(isinstance(r[0], uuid.UUID) for r in rows)


def test_a_browse_page_is_two_queries(api, django_assert_num_queries):
    seller = UserFactory()
    for n in range(3):
        listing = ListingFactory(seller=seller, location_lat=43.65, location_lng=-79.38)
        ListingImage.objects.create(listing=listing, image=f"listings/{n}.jpg")
    for params in ({}, {"lat": 43.65, "lng": -79.38, "ordering": "distance"}):
        with django_assert_num_queries(2):  # the listings, their images and videos
            response = api.get("/v1/listings", params)
        assert response.status_code == 200
        assert all(len(r["images"]) == 1 for r in response.json()["results"])


# --- the browse parameters' fields, built once per thread -------------------------------------

CASES = [
    {}, {"q": "bike", "category": "music", "ordering": "ending_soon"},
    {"ordering": "nope"}, {"category": "cars"}, {"lat": "43.6"}, {"radius_km": "5"},
    {"lat": "91", "lng": "0"}, {"min_price": "-1"}, {"min_price": "x", "max_price": "10"},
    {"watching": "maybe"}, {"seller": "not-a-uuid"}, {"status": "sold", "watching": "true"},
    {"ordering": "distance"}, {"q": "x" * 201}, {"lat": "1", "lng": "2", "radius_km": "0.01"},
]


@pytest.mark.parametrize("params", CASES)
def test_the_shared_fields_validate_as_the_serializer_does(params):
    data = QueryDict(mutable=True)
    data.update(params)
    for _ in range(2):  # a second request on the same thread's fields
        shared, fresh = ListingBrowseQuery(data=data), ListingBrowseParams(data=data)
        assert shared.is_valid() == fresh.is_valid()
        assert shared.errors == fresh.errors
        assert [[e.code for e in v] for v in shared.errors.values()] == \
            [[e.code for e in v] for v in fresh.errors.values()]
        if fresh.is_valid():
            assert shared.validated_data == fresh.validated_data


def test_the_fields_are_built_once_per_thread():
    first, second = ListingBrowseQuery(data={}), ListingBrowseQuery(data={})
    assert first.fields is second.fields
    assert SavedSearchListingsParams(data={}).fields is SavedSearchListingsParams(data={}).fields
    other: list = []
    thread = threading.Thread(target=lambda: other.append(ListingBrowseQuery(data={}).fields))
    thread.start()
    thread.join()
    assert other[0] is not first.fields
    assert ListingBrowseQuery(data={}, partial=True).fields is not first.fields


def test_saved_searches_keep_fields_of_their_own():
    # A saved search makes its filters nullable on its own copy of the fields.
    assert SavedSearchInSerializer(data={}).fields["category"].allow_null
    shared = ListingBrowseQuery(data={"category": ""})
    assert not shared.fields["category"].allow_null
    assert not shared.is_valid()
    assert shared.errors["category"][0].code == "invalid_choice"
