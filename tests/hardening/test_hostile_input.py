"""Hostile input, item by item: bodies the JSON decoder can't take, forged cursors, search
text full of operators. Each is a 4xx in the standard error shape, never a 5xx.

The broad sweep over every operation is tests/hardening/test_schema_fuzz.py; these pin the
exact reproductions of issue 14 and the class behind each.
"""

from __future__ import annotations

import base64

import pytest
from django.db import connection
from django.urls import get_resolver
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework import pagination as drf_pagination

from biddt import pagination
from listings.selectors import search_text
from tests.factories import ListingFactory, UserFactory, sold_transaction

pytestmark = pytest.mark.django_db

DEEP = '{"phone_number": ' + "[" * 990 + "]" * 990 + "}"


def error_codes(response) -> list[str]:
    body = response.json()
    assert set(body) == {"type", "errors"}, body
    assert all(set(e) == {"code", "detail", "attr"} for e in body["errors"]), body
    return [e["code"] for e in body["errors"]]


# --- 5. bodies ------------------------------------------------------------------------------

BAD_BODIES = {
    "nested 990 deep (the issue)": DEEP.encode(),
    "nested 100k deep": ("[" * 100_000 + "]" * 100_000).encode(),
    "objects nested 5000 deep": ('{"a":' * 5000 + "1" + "}" * 5000).encode(),
    "invalid UTF-8": b'{"phone_number": "\xff\xfe\xc3\x28"}',
    "lone UTF-8 continuation bytes": b"\x80\x80\x80",
    "infinite float": b'{"phone_number": 1e999}',
    "NaN": b'{"phone_number": NaN}',
    "integer of 5000 digits": b'{"phone_number": ' + b"9" * 5000 + b"}",
    "truncated": b'{"phone_number": "+1416',
}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_a_body_the_json_parser_cannot_take_is_parse_error(api, body):
    # when an anonymous client sends the body as JSON to send-code
    response = api.generic("POST", "/v1/auth/phone/send-code", body,
                           content_type="application/json")
    # then it is a 400 parse_error in the standard error shape
    assert response.status_code == 400, response.content[:300]
    assert error_codes(response) == ["parse_error"]


@pytest.mark.parametrize("body", [DEEP.encode(), b"\xff{"], ids=["deep", "invalid UTF-8"])
def test_parse_error_on_authenticated_writes_too(auth_api, body):
    for method, path in [("POST", "/v1/listings"), ("PATCH", "/v1/users/me"),
                         ("POST", "/v1/users/me/devices")]:
        response = auth_api.generic(method, path, body, content_type="application/json")
        assert response.status_code == 400, (path, response.content[:300])
        assert error_codes(response) == ["parse_error"]


def test_a_body_nested_but_decodable_is_a_field_error(api):
    # 300 levels decode; the field says what it expected
    body = '{"phone_number": ' + "[" * 300 + "]" * 300 + "}"
    response = api.generic("POST", "/v1/auth/phone/send-code", body,
                           content_type="application/json")
    assert response.status_code == 400
    assert error_codes(response) != ["parse_error"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "image/png",
                                          "application/jsonx", "multipart/mixed"])
def test_wrong_content_type_is_415_in_the_error_shape(api, content_type):
    response = api.generic("POST", "/v1/auth/phone/send-code", b'{"phone_number": "x"}',
                           content_type=content_type)
    assert response.status_code == 415, response.content[:300]
    assert error_codes(response) == ["unsupported_media_type"]


@pytest.mark.parametrize("amount", [2**63, 2**64 + 1, 10**30, -(2**63) - 1])
def test_integers_past_64_bits_are_field_errors(auth_api, amount):
    listing = ListingFactory()
    bid = auth_api.post(f"/v1/listings/{listing.pk}/bids", {"amount_cents": amount,
                                                            "max_amount_cents": amount},
                        format="json")
    assert bid.status_code == 400, bid.content[:300]
    error_codes(bid)
    created = auth_api.post("/v1/listings", {
        "title": "Lamp", "starting_price_cents": amount, "reserve_price_cents": amount,
        "buy_now_price_cents": amount, "auction_type": "both"}, format="json")
    assert created.status_code == 400, created.content[:300]
    error_codes(created)
    browse = auth_api.get("/v1/listings", {"min_price": abs(amount), "max_price": abs(amount)})
    assert browse.status_code == 400, browse.content[:300]
    assert set(error_codes(browse)) == {"max_value"}


# --- 6. cursors -----------------------------------------------------------------------------

def _cursor(raw: str) -> str:
    return base64.b64encode(raw.encode()).decode()


FORGED = {
    "not a date (the issue)": "cD1ub3QtYS1kYXRl",
    "not base64": "%%%",
    "not ascii": "é",
    "reverse not a number": _cursor("r=x"),
    "offset not a number": _cursor("o=x&p=2026-01-01"),
    "offset 5000 digits": _cursor("o=" + "9" * 5000),
    "date with NUL": _cursor("p=2026-01-01\x00"),
    "month 13": _cursor("p=2026-13-01T00:00:00Z"),
    "year 99999": _cursor("p=99999-01-01T00:00:00Z"),
    "empty position": _cursor("p="),
}


@pytest.mark.parametrize("cursor", FORGED.values(), ids=FORGED.keys())
def test_forged_cursor_on_browse_is_invalid_cursor(api, cursor):
    ListingFactory()
    response = api.get("/v1/listings", {"cursor": cursor})
    assert response.status_code == 400, response.content[:300]
    assert error_codes(response) == ["invalid_cursor"]


@pytest.mark.parametrize("ordering", ["price_asc", "price_desc", "ending_soon", "newest"])
@pytest.mark.parametrize("position", ["abc", "9" * 30, "1e999", "nan", "2026-02-30"])
def test_forged_position_for_the_orderings_type_is_invalid_cursor(api, ordering, position):
    # `?ordering=price_asc&cursor=cD1hYmM=` is the second reproduction
    ListingFactory()
    response = api.get("/v1/listings", {"ordering": ordering, "cursor": _cursor(f"p={position}")})
    if response.status_code == 200:  # a date that parses (`ending_soon`, `newest`) is a page
        assert ordering in ("ending_soon", "newest") and position.startswith("2026")
        return
    assert response.status_code == 400, response.content[:300]
    assert error_codes(response) == ["invalid_cursor"]


def test_forged_cursor_with_search_and_distance_orderings(api, pg):
    ListingFactory(title="desk lamp", location_lat=43.6, location_lng=-79.4)
    for params in ({"q": "lamp"}, {"lat": 43.6, "lng": -79.4, "ordering": "distance"}):
        for position in ("abc", "inf", "1e999"):
            response = api.get("/v1/listings", {**params, "cursor": _cursor(f"p={position}")})
            assert response.status_code == 400, (params, response.content[:300])
            assert error_codes(response) == ["invalid_cursor"]


def test_valid_cursors_still_walk_every_ordering(api):
    for i in range(5):
        ListingFactory(starting_price_cents=1000 + i)
    for ordering in ("price_asc", "price_desc", "ending_soon", "newest"):
        seen, url = [], f"/v1/listings?ordering={ordering}&page_size=2"
        while url:
            page = api.get(url)
            assert page.status_code == 200
            seen += [row["id"] for row in page.json()["results"]]
            url = page.json()["next"]
        assert len(seen) == len(set(seen)) == 5, ordering


def test_forged_cursor_on_every_other_cursor_list(api, auth_api, user):
    listing = ListingFactory()
    txn = sold_transaction(buyer=user, seller=UserFactory())
    bad = _cursor("p=not-a-date")
    for client, path in [(api, f"/v1/listings/{listing.pk}/bids"),
                         (auth_api, f"/v1/transactions/{txn.pk}/messages"),
                         (auth_api, "/v1/notifications"), (auth_api, "/v1/users/me/transactions")]:
        response = client.get(path, {"cursor": bad})
        assert response.status_code == 400, (path, response.content[:300])
        assert error_codes(response) == ["invalid_cursor"], path


def _list_views():
    def walk(patterns):
        for p in patterns:
            if hasattr(p, "url_patterns"):
                yield from walk(p.url_patterns)
            else:
                cls = getattr(p.callback, "cls", None)
                if cls is not None:
                    yield p.pattern, cls
    return list(walk(get_resolver().url_patterns))


def test_every_cursor_paginated_view_uses_the_validating_base_class():
    from django.conf import settings as dj

    default = dj.REST_FRAMEWORK["DEFAULT_PAGINATION_CLASS"]
    assert default == "biddt.pagination.CreatedCursorPagination"
    views = _list_views()
    checked = 0
    for pattern, cls in views:
        paginator = getattr(cls, "pagination_class", None)
        if paginator and issubclass(paginator, drf_pagination.CursorPagination):
            assert issubclass(paginator, pagination.CursorPagination), (pattern, paginator)
            checked += 1
    assert checked >= 4


# --- 7. search text -------------------------------------------------------------------------

HOSTILE_Q = {
    "50 hyphens (the issue)": "-" * 50,
    "spaced hyphens": "- " * 60 + "lamp",
    "hyphen parens": "-( " * 60 + "lamp",
    "hyphen bangs": "-! " * 60 + "lamp",
    "bangs": "!" * 200,
    "followed-by": "lamp <-> desk <2> chair <-> " * 5,
    "prefix": "lam:* de:*A " * 10,
    "quotes": '"' * 99 + "lamp",
    "unbalanced quotes": '"desk lamp -"broken " or " -"',
    "boolean soup": "& | ! ( ) : * ' \\ " * 10,
    "ors": "or " * 60 + "lamp",
    "unicode": "lampe à poser 灯 🪔 ﷽ \u200b\u202e",
    "stop words": "the a of and",
    "200 chars": "lamp " * 40,
    "word hyphens": "-lamp-desk--chair---" * 8,
}


@pytest.mark.parametrize("q", HOSTILE_Q.values(), ids=HOSTILE_Q.keys())
def test_any_search_text_up_to_the_limit_is_a_page(api, pg, q):
    ListingFactory(title="desk lamp")
    assert len(q) <= 200
    response = api.get("/v1/listings", {"q": q})
    assert response.status_code == 200, response.content[:300]
    assert isinstance(response.json()["results"], list)


def test_search_still_means_what_people_type(api, pg):
    ListingFactory(title="desk lamp")
    ListingFactory(title="floor lamp")

    def titles(q):
        return sorted(r["title"] for r in api.get("/v1/listings", {"q": q}).json()["results"])

    assert titles("lamp") == ["desk lamp", "floor lamp"]
    assert titles("lamp -desk") == ["floor lamp"]
    assert titles("lamp --desk") == ["floor lamp"]
    assert titles('"desk lamp"') == ["desk lamp"]
    assert titles("desk or floor") == ["desk lamp", "floor lamp"]
    assert titles("-" * 50 + " lamp") == ["desk lamp", "floor lamp"]


def test_search_text_past_the_limit_is_400(api):
    response = api.get("/v1/listings", {"q": "lamp " * 200})  # 1000 characters
    assert response.status_code == 400
    assert error_codes(response) == ["max_length"]


OPERATOR_TEXT = st.lists(st.sampled_from(list("-!&|():*<>'\"\\ ,.") + [
    "or ", "and ", "lamp", "x", "é", "-x", "<->", "<2>", "--", "- ", "-(", "-!", ":*"]),
    max_size=120).map(lambda parts: "".join(parts)[:200])


@settings(max_examples=300, deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(q=OPERATOR_TEXT)
def test_websearch_takes_any_sanitized_text(pg, q):
    # the property behind the endpoint test: PostgreSQL's parser takes whatever we pass it
    with connection.cursor() as cur:
        cur.execute("SELECT websearch_to_tsquery('english', %s)::text", [search_text(q)])
        [parsed] = cur.fetchone()
    assert isinstance(parsed, str)  # a query (possibly empty), never a parser error
