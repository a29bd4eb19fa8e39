"""Schema fuzzing: schemathesis against the live OpenAPI document of the real servers.

Every operation of `/v1/schema/` is called with generated data (valid and invalid), as a
normal active user (Bearer token): no answer may be a 5xx, every status must be documented
for the operation, and every body must match its documented schema. Bounded for CI: a few
examples per operation, derandomized, no deadline.

Path ids are either generated (unknown objects: 404) or real objects of the caller (a draft
and an active listing it sells, another seller's listing, a transaction it bought, a
notification, a bid), so the fuzzer reaches the code past the 404 too. Examples are
positive (schema-valid) and negative (schema-invalid) data.
"""

from __future__ import annotations

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
