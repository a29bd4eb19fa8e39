"""Schema fuzzing: schemathesis against the live OpenAPI document of the real servers.

Every operation of `/v1/schema/` is called with generated data (valid and invalid), as a
normal active user (Bearer token): no answer may be a 5xx, every status must be documented
for the operation, and every body must match its documented schema. Bounded for CI: a few
examples per operation, derandomized, no deadline.

Path ids are either generated (unknown objects: 404) or real objects of the caller (a draft
and an active listing it sells, another seller's listing, a transaction it bought, a
notification, a bid), so the fuzzer reaches the code past the 404 too. Examples are
positive (schema-valid) and negative (schema-invalid) data.

Hostile input (issue 14), below the schemathesis run: every write operation gets bodies no
schema describes (nested past the decoder's limit, integers past 64 bits, non-finite
numbers, invalid UTF-8, wrong content types, arrays and nulls where objects are expected,
and hypothesis-generated values for each documented field), and every query parameter of
every list operation gets forged cursors, search text full of operators, huge and
non-numeric numbers, NULs and unicode, anonymous and authenticated. No answer is a 5xx;
every refusal is in the standard error shape.
"""

from __future__ import annotations

import base64
import json

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bidding.services import bid_place
from notifications.models import Notification
from notifications.services import notify
from tests.conftest import bearer
from tests.factories import ListingFactory, SafeZoneFactory, UserFactory, sold_transaction

# transaction=True: the rows the server reads are committed, and no test transaction holds
# the database (SQLite would lock the server out); the database is flushed after each test.
pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MAX_EXAMPLES = 20
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture(scope="module")
def fuzz_server(live_servers):
    # DEBUG off, as in production: unknown URLs answer the JSON 404 (handler404), not
    # Django's HTML debug page.
    return live_servers(env={"DEBUG": "False"})


@pytest.fixture
def fuzz_world(fuzz_server, transactional_db):
    """A committed user with objects of each kind, served by the real servers."""
    user = UserFactory(display_name="fuzzer")
    other = UserFactory()
    draft = ListingFactory(seller=user, status="draft")
    active = ListingFactory(seller=user)
    foreign = ListingFactory(seller=other)
    txn = sold_transaction(buyer=user, seller=other)
    SafeZoneFactory()
    notify(user_id=user.pk, type="outbid", title="Outbid", body="x", data={},
           dedupe_key="fuzz")
    bid = bid_place(listing_id=foreign.pk, bidder=user, amount_cents=1000).bid
    ids = {
        "listing_id": [draft.pk, active.pk, foreign.pk],
        "transaction_id": [txn.pk],
        "notification_id": list(Notification.objects.filter(user=user)
                                .values_list("pk", flat=True)),
        "bid_id": [bid.pk],
        "user_id": [user.pk, other.pk],
    }
    return {"server": fuzz_server, "token": bearer(user), "ids": ids}


def _static_operations() -> list[tuple[str, str]]:
    """(METHOD, path) of every operation, from the generator (collection time, no server)."""
    from drf_spectacular.generators import SchemaGenerator

    document = SchemaGenerator().get_schema(request=None, public=True)
    return sorted((method.upper(), path) for path, item in document["paths"].items()
                  for method in item if method in HTTP_METHODS)


HTTP_METHODS = {"get", "put", "patch", "post", "delete"}
OPERATIONS = _static_operations()


@pytest.fixture(scope="module")
def api_schema(fuzz_server):
    """The live document, as the server serves it."""
    return schemathesis.openapi.from_url(f"{fuzz_server.http_url}/v1/schema/?format=json")


def _strategy(operation, ids: dict):
    real = {name: str(values[0]) for name, values in ids.items()
            if name in {p.name for p in operation.path_parameters}}
    strategies = [operation.as_strategy(GenerationMode.POSITIVE)]
    if real:
        # The caller's own objects (and, for listings, another seller's), past the 404.
        strategies += [operation.as_strategy(GenerationMode.POSITIVE, path_parameters={
            name: str(value) for name, value in zip(real, combo, strict=True)})
            for combo in _id_combos(real, ids)]
    strategies.append(operation.as_strategy(GenerationMode.NEGATIVE))
    return st.one_of(*strategies)


def _id_combos(real: dict, ids: dict) -> list[tuple]:
    (name,) = real  # every route has one id
    return [(value,) for value in ids[name]]


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_api_conforms_to_its_schema(method, path, api_schema, fuzz_world):
    operation = api_schema[path][method]
    headers = {"Authorization": fuzz_world["token"]}
    webhook = path == "/v1/webhooks/stripe"

    @given(case=_strategy(operation, fuzz_world["ids"]))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate])
    def run(case):
        if webhook:
            # Signed by Stripe only: without a valid signature any body is a 400.
            response = case.call(headers={**headers, "Stripe-Signature": "t=1,v1=bad"},
                                 timeout=30)
            assert response.status_code == 400, response.text
            return
        response = case.call(headers=headers, timeout=30)
        case.validate_response(response, checks=CHECKS)

    run()


def test_live_schema_has_every_operation(api_schema):
    live = sorted((op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations())
    assert live == OPERATIONS


# --- hostile input: bodies, cursors, query values (issue 14) --------------------------------

def _document() -> dict:
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def _body_fields(document: dict, operation: dict) -> list[str]:
    """Property names of the operation's JSON request body (after `$ref`)."""
    content = (operation.get("requestBody") or {}).get("content") or {}
    schema = (content.get("application/json") or content.get("multipart/form-data") or {}
              ).get("schema") or {}
    ref = schema.get("$ref", "")
    if ref:
        schema = document["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return sorted((schema.get("properties") or {}).keys())


def _hostile_operations() -> tuple[list, list]:
    document = _document()
    writes, lists = [], []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS or path == "/v1/webhooks/stripe":
                continue
            query = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
            if method == "get":
                if query:
                    lists.append((path, query))
            else:
                writes.append((method.upper(), path, _body_fields(document, operation)))
    return sorted(writes), sorted(lists)


WRITES, LISTS = _hostile_operations()
HOSTILE_EXAMPLES = 10  # generated bodies per write operation (queries: twice as many)
INT64 = 2**63
HOSTILE_VALUES = [None, [], {}, [None], "", "\x00", "9" * 400, INT64, -INT64 - 1, 10**40,
                  10**400, 1e308, True, "NaN", {"$ne": None}, "a" * 20_000]
RAW_ONLY = range(19)  # the bodies of _raw_bodies that are not HOSTILE_VALUES per field
PARSER_LEVEL = 8  # its first bodies, which only the JSON decoder sees


def _raw_bodies(fields: list[str]) -> list[tuple[str, bytes]]:
    """(content type, body) pairs no schema describes."""
    json_ct = "application/json"
    first = fields[0] if fields else "x"

    def member(raw: str) -> bytes:  # `{"<first field>": <raw>}`, latin-1 keeps \xff a byte
        return ('{"' + first + '": ' + raw + "}").encode("latin-1")

    out = [
        (json_ct, member("[" * 990 + "]" * 990)),
        (json_ct, ("[" * 100_000 + "]" * 100_000).encode()),
        (json_ct, member('"\xff\xfe"')),
        (json_ct, member('"\xc3\x28"')),
        (json_ct, b"\xff\xfe\x00{"),
        (json_ct, member("9" * 5000)),
        (json_ct, member("1e999")),
        (json_ct, member("NaN")),
        (json_ct, b"[]"), (json_ct, b"[{}]"), (json_ct, b"null"), (json_ct, b'"text"'),
        (json_ct, b"42"), (json_ct, b"{"),
        ("text/plain", b"hello"), ("application/xml", b"<a/>"),
        ("application/json; charset=latin-1", '{"a": "é"}'.encode("latin-1")),
        ("application/x-www-form-urlencoded", b"%ff%fe=%00&" + first.encode() + b"=%ff"),
        ("multipart/form-data; boundary=x", b"--x\r\nbroken"),
    ]
    assert len(out) == len(RAW_ONLY)
    for value in HOSTILE_VALUES:
        out.append((json_ct, json.dumps({f: value for f in fields} or {"x": value}).encode()))
    return out


def _json_values():
    leaves = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70),
                                                             max_value=2**70),
                       st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30))
    return st.recursive(leaves, lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
        max_leaves=8)


def assert_clean(response: httpx.Response, what: str) -> None:
    """No 5xx; a refusal is the standard `{type, errors: [{code, detail, attr}]}`."""
    assert response.status_code < 500, (what, response.status_code, response.text[:300])
    if response.status_code >= 400:
        if (response.status_code == 400 and not response.content
                and "multipart" in what):
            return  # Twisted's own bare 400 to a multipart body it can't parse (see above)
        body = response.json()
        assert set(body) == {"type", "errors"}, (what, body)
        assert body["errors"] and all(set(e) == {"code", "detail", "attr"}
                                      for e in body["errors"]), (what, body)


def _path(path: str, ids: dict) -> str:
    for name, values in ids.items():
        path = path.replace("{" + name + "}", str(values[0]))
    return path


@pytest.fixture
def hostile_http(fuzz_world):
    with httpx.Client(base_url=fuzz_world["server"].http_url, timeout=60) as client:
        yield client


# One test per kind (not per operation): the world is built once, which is most of the cost.
# Deletions go last so the other writes still reach the caller's objects.
WRITES.sort(key=lambda op: (op[0] == "DELETE", op[1], op[0]))


def test_hostile_bodies_to_every_write(fuzz_world, hostile_http):
    for method, path, fields in WRITES:
        _hostile_bodies(method, path, fields, fuzz_world, hostile_http)


def _hostile_bodies(method, path, fields, fuzz_world, hostile_http):
    url = _path(path, fuzz_world["ids"])
    bodies = _raw_bodies(fields)
    # Anonymous callers of most writes are refused before the body is read: the bodies
    # that reach the parser are enough for them; the caller with a token gets every one.
    for who, headers, sample in (("anonymous", {}, bodies[:PARSER_LEVEL]),
                                 ("user", {"Authorization": fuzz_world["token"]}, bodies)):
        for content_type, body in sample:
            what = f"{who} {method} {path} {content_type} {body[:60]!r}"
            try:
                response = hostile_http.request(
                    method, url, content=body, headers={**headers, "Content-Type": content_type})
            except httpx.TransportError as exc:  # the server dropped the connection: a crash
                pytest.fail(f"{what}: {exc!r}\n{fuzz_world['server'].log()[-3000:]}")
            assert_clean(response, what)

    @given(body=st.one_of(st.fixed_dictionaries({}, optional={f: _json_values()
                                                              for f in fields}),
                          _json_values()))
    @settings(max_examples=HOSTILE_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate])
    def generated(body):
        response = hostile_http.request(method, url, json=body,
                                        headers={"Authorization": fuzz_world["token"]})
        assert_clean(response, f"{method} {path} {body!r:.200}")

    generated()


def _b64(raw: str) -> str:
    return base64.b64encode(raw.encode("utf-8", "surrogatepass")).decode()


CURSORS = ["cD1ub3QtYS1kYXRl", "cD1hYmM=", "%%%", "é", "", "=", _b64("p=" + "9" * 400),
           _b64("p=1e999"), _b64("p=nan"), _b64("p=\x00"), _b64("o=" + "9" * 5000),
           _b64("r=2&o=-1&p=2026-01-01"), _b64("p=2026-02-30T00:00:00Z"),
           _b64("p=9999-12-31T23:59:59Z&r=1"), _b64("p=" + "é" * 50), "A" * 4000]
QUERY_VALUES = ["", "-" * 50, "- " * 60 + "x", "-( " * 40 + "x", "!" * 100, "a <-> b :* !c",
                '"' * 51, "\x00", "%00", "null", "[]", "true", "1e999", "-1e999", "nan", "inf",
                "9" * 400, str(INT64), str(-INT64 - 1), "-0", "0x10", "1_000", "é🪔\u202e",
                "a" * 1000, "lamp " * 40]


def test_hostile_query_values_to_every_list(fuzz_world, hostile_http):
    for path, params in LISTS:
        _hostile_queries(path, params, fuzz_world, hostile_http)


def _hostile_queries(path, params, fuzz_world, hostile_http):
    url = _path(path, fuzz_world["ids"])
    auth = {"Authorization": fuzz_world["token"]}
    for headers, values in (({}, QUERY_VALUES[::4]), (auth, QUERY_VALUES)):
        for name in params:
            for value in (CURSORS if name == "cursor" else []) + values:
                response = hostile_http.get(url, params={name: value}, headers=headers)
                assert_clean(response, f"GET {path}?{name}={value[:60]!r}")
            # the parameter repeated, and with every other parameter at once
            response = hostile_http.get(url, params=[(name, "1"), (name, "x")],
                                        headers=headers)
            assert_clean(response, f"GET {path}?{name} twice")
        response = hostile_http.get(url, params={n: "-" * 50 for n in params}, headers=headers)
        assert_clean(response, f"GET {path} every parameter hostile")

    @given(values=st.fixed_dictionaries({}, optional={
        name: st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=60)
        for name in params}))
    @settings(max_examples=HOSTILE_EXAMPLES * 2, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate])
    def generated(values):
        response = hostile_http.get(url, params=values, headers=auth)
        assert_clean(response, f"GET {path} {values!r:.200}")

    generated()
