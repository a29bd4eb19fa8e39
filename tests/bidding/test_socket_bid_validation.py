"""A socket `bid` answers the same error code and detail as the equivalent REST bid.

Each case is sent both ways in the same test: over `/ws/` as `{type: 'bid', listingId,
amount, maxAmount?, requestId}` and over REST as `POST /v1/listings/{listingId}/bids` with
`{amount_cents, max_amount_cents}`; the socket's `code`/`detail` must be REST's
`errors[0].code`/`errors[0].detail`.
"""

from __future__ import annotations

import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.db import connections
from rest_framework.test import APIClient

from tests.bidding.helpers import bid_count, connect, make
from tests.conftest import bearer
from tests.factories import ListingFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def _close_thread_connections():
    # As in tests/biddt/test_consumers.py: close the connections the test's DB thread opened,
    # so PostgreSQL lets the test database be dropped.
    yield
    await sync_to_async(connections.close_all)()

LISTING = object()  # stands for the test listing's id in a case
MISSING = object()  # the key is left out of the message (and of the REST body / URL)
UNKNOWN_ID = str(uuid.uuid4())

# Socket key -> REST body field.
REST_FIELDS = {"amount": "amount_cents", "maxAmount": "max_amount_cents"}


def socket_message(listing, case: dict, request_id: str) -> dict:
    message = {"type": "bid", "requestId": request_id}
    for key, value in case.items():
        if value is not MISSING:
            message[key] = str(listing.pk) if value is LISTING else value
    return message


@database_sync_to_async
def rest_bid(user, message: dict):
    """The REST request equivalent to a socket bid message: (status, first error or body)."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=bearer(user))
    body = {REST_FIELDS[key]: value for key, value in message.items() if key in REST_FIELDS}
    response = client.post(f"/v1/listings/{message.get('listingId', '')}/bids", body,
                           format="json")
    payload = response.json()
    return response.status_code, (payload["errors"][0] if response.status_code >= 400
                                  else payload)


@pytest.mark.parametrize(("case", "rest_status", "code"), [
    pytest.param({"listingId": LISTING, "amount": MISSING}, 400, "required",
                 id="missing-amount"),
    pytest.param({"listingId": LISTING, "amount": None}, 400, "null", id="null-amount"),
    pytest.param({"listingId": LISTING, "amount": 0}, 400, "min_value", id="zero-amount"),
    pytest.param({"listingId": LISTING, "amount": -5}, 400, "min_value",
                 id="negative-amount"),
    pytest.param({"listingId": LISTING, "amount": "abc"}, 400, "invalid", id="text-amount"),
    pytest.param({"listingId": LISTING, "amount": 12.5}, 400, "invalid",
                 id="fractional-amount"),
    pytest.param({"listingId": LISTING, "amount": True}, 400, "invalid", id="boolean-amount"),
    pytest.param({"listingId": LISTING, "amount": 2000, "maxAmount": "x"}, 400, "invalid",
                 id="text-max-amount"),
    pytest.param({"listingId": LISTING, "amount": 2000, "maxAmount": 0}, 400, "min_value",
                 id="zero-max-amount"),
    pytest.param({"listingId": LISTING, "amount": "abc", "maxAmount": 0}, 400, "invalid",
                 id="first-error-is-amount"),
    pytest.param({"listingId": "nope", "amount": 2000}, 404, "not_found",
                 id="listing-id-not-a-uuid"),
    pytest.param({"listingId": MISSING, "amount": 2000}, 404, "not_found",
                 id="listing-id-missing"),
    pytest.param({"listingId": UNKNOWN_ID, "amount": 2000}, 404, "not_found",
                 id="listing-id-unknown"),
    pytest.param({"listingId": "nope", "amount": "abc"}, 404, "not_found",
                 id="not-found-before-amount"),
])
async def test_socket_bid_error_is_the_rest_error(case, rest_status, code):
    # given an active listing and a bidder with a socket open
    listing = await make(ListingFactory, starting_price_cents=1000)
    bidder = await make(UserFactory)
    comm = await connect(bidder)
    request_id = str(uuid.uuid4())
    message = socket_message(listing, case, request_id)

    # when the same bid is sent over the socket and over REST
    await comm.send_json_to(message)
    answer = await comm.receive_json_from(timeout=3)
    status, rest_error = await rest_bid(bidder, message)

    # then both refuse it with the same code and detail, and the socket echoes the requestId
    assert status == rest_status, rest_error
    assert rest_error["code"] == code
    assert answer == {"type": "error", "requestId": request_id, "code": rest_error["code"],
                      "detail": rest_error["detail"]}
    assert await bid_count(listing) == 0
    await comm.disconnect()


@pytest.mark.parametrize("case", [
    pytest.param({"amount": "1000"}, id="numeric-string-amount"),
    pytest.param({"amount": 1000.0}, id="whole-float-amount"),
    pytest.param({"amount": 1000, "maxAmount": None}, id="null-max-amount"),
])
async def test_socket_accepts_what_rest_accepts(case):
    # given an active listing and two bidders, one on the socket and one on REST
    listing = await make(ListingFactory, starting_price_cents=1000)
    socket_bidder, rest_bidder = await make(UserFactory), await make(UserFactory)
    comm = await connect(socket_bidder)
    message = {"type": "bid", "listingId": str(listing.pk), "requestId": "r1", **case}

    # when both send an amount REST's serializer accepts (the REST one then bids 1050)
    await comm.send_json_to(message)
    answer = await comm.receive_json_from(timeout=3)
    status, body = await rest_bid(rest_bidder, {**message, "amount": 1050})

    # then both bids are placed, with the amount as integer cents
    assert (answer["type"], answer["requestId"], answer["bid"]["amount_cents"]) == (
        "ack", "r1", 1000)
    assert (status, body["amount_cents"]) == (201, 1050)
    assert await bid_count(listing) >= 2
    await comm.disconnect()
