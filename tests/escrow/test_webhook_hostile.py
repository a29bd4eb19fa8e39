"""Correctly signed webhooks that are malformed, or about objects we don't have.

A malformed event (not the shape of a Stripe event) is a 400 and nothing is stored. An event
about an object the provider doesn't have (or that matches no transaction or wallet) is
stored and acknowledged (200), so Stripe stops retrying, and `reconcile_payments` lists it.
The `stripe` backend cases run against localstripe, which answers 404 `resource_missing` for
an unknown PaymentIntent as Stripe does.
"""

from __future__ import annotations

import io
import json
import logging

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from escrow.models import PaymentEvent, Transaction
from tests.conftest import stripe_signed
from tests.factories import sold_transaction

pytestmark = pytest.mark.django_db

SECRET = "whsec_hostile"


@pytest.fixture
def simulated(settings):
    settings.BIDDT_PAYMENTS_BACKEND = "simulated"
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    return SECRET


def deliver(event: dict | str, secret: str):
    body, header = stripe_signed(event if isinstance(event, str) else json.dumps(event), secret)
    # A 5xx is reported as an exception, which the test client would re-raise; read it as
    # Stripe does, from the answer.
    return APIClient(raise_request_exception=False).generic("POST", "/v1/webhooks/stripe", body,
                               content_type="application/json", HTTP_STRIPE_SIGNATURE=header)


def reconcile() -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("reconcile_payments", "--backend", "simulated", stdout=out, stderr=err,
                     verbosity=0)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue()


MALFORMED = {
    "object is a string (the issue)": {"id": "evt_m1", "type": "payment_intent.succeeded",
                                       "data": {"object": "pi_123"}},
    "object is a list": {"id": "evt_m2", "type": "payment_intent.succeeded",
                         "data": {"object": [{"id": "pi_123"}]}},
    "data is a string": {"id": "evt_m3", "type": "payment_intent.succeeded", "data": "x"},
    "no data": {"id": "evt_m4", "type": "account.updated"},
    "object id is a number": {"id": "evt_m5", "type": "payment_intent.payment_failed",
                              "data": {"object": {"id": 12}}},
    "object id is an object": {"id": "evt_m6", "type": "account.updated",
                               "data": {"object": {"id": {"$ne": None}}}},
    "object id missing": {"id": "evt_m7", "type": "payment_intent.succeeded",
                          "data": {"object": {}}},
    "object id of 10k chars": {"id": "evt_m8", "type": "payment_intent.succeeded",
                               "data": {"object": {"id": "pi_" + "x" * 10_000}}},
    "event id is an object": {"id": {"a": 1}, "type": "payment_intent.succeeded",
                              "data": {"object": {"id": "pi_1"}}},
    "type is a list": {"id": "evt_m9", "type": ["payment_intent.succeeded"],
                       "data": {"object": {"id": "pi_1"}}},
    "unhandled type, object a number": {"id": "evt_m10", "type": "customer.created",
                                        "data": {"object": 5}},
}


@pytest.mark.parametrize("event", MALFORMED.values(), ids=MALFORMED.keys())
def test_signed_but_malformed_event_is_400_and_not_stored(simulated, event, caplog):
    response = deliver(event, simulated)
    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["code"] == "invalid_event"
    assert not PaymentEvent.objects.exists()
    assert any("stripe webhook malformed" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("body", ["[]", '"event"', "null", '{"id": "evt_x"}'])
def test_signed_body_that_is_not_an_event_is_still_400(simulated, body):
    response = deliver(body, simulated)
    assert response.status_code == 400, response.content


@pytest.mark.parametrize("etype", ["payment_intent.succeeded", "payment_intent.payment_failed"])
def test_event_about_an_unknown_payment_intent_is_acknowledged_and_reconciled(
        simulated, etype, caplog):
    sold_transaction()  # an unrelated sale, untouched
    event = {"id": "evt_unknown_pi", "type": etype, "data": {"object": {"id": "pi_nobody"}}}
    # when a signed event names a PaymentIntent no transaction of ours has
    caplog.set_level(logging.WARNING)
    first, again = deliver(event, simulated), deliver(event, simulated)
    # then it is acknowledged (Stripe stops retrying), stored once and marked handled
    assert (first.status_code, again.status_code) == (200, 200), first.content
    stored = PaymentEvent.objects.get(event_id="evt_unknown_pi")
    assert stored.processed_at is not None
    assert any("pi_nobody" in r.getMessage() for r in caplog.records)
    assert not Transaction.objects.exclude(status="pending_payment").exists()
    # and reconciliation lists it for a person to look at
    code, out = reconcile()
    assert code == 1
    assert "unknown object: event evt_unknown_pi" in out and "pi_nobody" in out


def test_account_event_for_no_wallet_is_acknowledged_and_reconciled(simulated):
    event = {"id": "evt_unknown_acct", "type": "account.updated",
             "data": {"object": {"id": "acct_nobody"}}}
    assert deliver(event, simulated).status_code == 200
    code, out = reconcile()
    assert code == 1 and "acct_nobody" in out


def test_reconcile_is_clean_when_every_event_matches(simulated, settings):
    from escrow import services

    txn = sold_transaction()
    pi = services.transaction_pay(user=txn.buyer, transaction_id=txn.pk)  # simulated: paid
    event = {"id": "evt_known", "type": "payment_intent.succeeded",
             "data": {"object": {"id": pi.id}}}
    assert deliver(event, simulated).status_code == 200
    code, out = reconcile()
    assert code == 0, out


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_unknown_payment_intent_at_localstripe_is_200_not_503(stripe_backend):
    # Stripe (here localstripe) answers 404 resource_missing for the id: retrying can't help
    event = {"id": "evt_ls_unknown", "type": "payment_intent.succeeded",
             "data": {"object": {"id": "pi_doesnotexist000"}}}
    response = deliver(event, stripe_backend.webhook_secret)
    assert response.status_code == 200, response.content
    assert PaymentEvent.objects.get(event_id="evt_ls_unknown").processed_at is not None


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_provider_unreachable_is_still_503(stripe_backend, settings):
    # an outage is not an unknown object: Stripe must retry
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"
    event = {"id": "evt_ls_down", "type": "payment_intent.succeeded",
             "data": {"object": {"id": "pi_whatever"}}}
    response = deliver(event, stripe_backend.webhook_secret)
    assert response.status_code == 503, response.content
    assert PaymentEvent.objects.get(event_id="evt_ls_down").processed_at is None
