"""Per-operation error-code enums in `/v1/schema/` (API.md "The contract as documents")."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from drf_spectacular.generators import SchemaGenerator

from biddt.error_codes import DOMAIN, GENERIC

BASE = Path(__file__).resolve().parents[2]
APPS = ("accounts", "bidding", "biddt", "chat", "escrow", "listings", "notifications",
        "safezones")
RAISED = re.compile(r"""code="([a-z_]+)"|invalid\(\s*"([a-z_]+)"|default_code = "([a-z_]+)\"""")


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def codes(schema, path: str, method: str, status: str) -> set[str]:
    response = schema["paths"][path][method]["responses"][status]
    ref = response["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    component = schema["components"]["schemas"][ref]
    if "oneOf" in component:  # 400: validation_error | client_error (a parse error)
        ref = component["oneOf"][0]["$ref"].rsplit("/", 1)[1]
        component = schema["components"]["schemas"][ref]
    item = component["properties"]["errors"]["items"]["$ref"].rsplit("/", 1)[1]
    return set(schema["components"]["schemas"][item]["properties"]["code"]["enum"])


def test_a_bid_declares_exactly_its_conflicts(schema):
    assert codes(schema, "/v1/listings/{listing_id}/bids", "post", "409") == {
        "conflict", "listing_not_active", "auction_ended", "own_listing", "bid_too_low",
        "fixed_price_listing"}
    assert {"invalid_max", "max_value", "required"} <= codes(
        schema, "/v1/listings/{listing_id}/bids", "post", "400")


def test_each_operation_has_its_own_codes(schema):
    edit = codes(schema, "/v1/listings/{listing_id}", "patch", "409")
    assert {"listing_has_bids", "listing_not_editable"} <= edit
    assert "bid_too_low" not in edit
    create = codes(schema, "/v1/listings", "post", "400")
    assert {"invalid_price", "invalid_duration"} <= create
    assert "invalid_code" not in create
    assert codes(schema, "/v1/listings", "get", "400") >= {"invalid_choice", "parse_error"}


def test_every_error_response_has_a_code_enum(schema):
    seen = 0
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            for status, response in operation.get("responses", {}).items():
                if status.startswith(("4", "5")) and "content" in response:
                    assert codes(schema, path, method, status), (path, method, status)
                    seen += 1
    assert seen > 200


def test_every_code_the_code_base_raises_is_listed():
    known = set(DOMAIN) | {code for group in GENERIC.values() for code in group}
    raised = set()
    for app in APPS:
        for source in (BASE / app).rglob("*.py"):
            if "migrations" not in source.parts:
                raised |= {next(g for g in m if g) for m in RAISED.findall(source.read_text())}
    assert raised, "the scan found nothing"
    assert raised - known == set()
