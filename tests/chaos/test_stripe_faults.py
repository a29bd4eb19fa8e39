"""The payment provider failing: 500s, lost answers and timeouts on every money call.

A fault-injecting proxy (tests.chaos.support.FaultProxy, a thread of this process) sits
between the app and a real localstripe server (tests/escrow/stripe_server.py, with Stripe's
idempotency replay added by the proxy). The app's Stripe client makes three tries a call
(`max_network_retries=2`) with a 1 s timeout here (`STRIPE_TIMEOUT_SECONDS`).

- Transient faults on creating the PaymentIntent and the Transfer, through a live daphne: the
  flow completes, every try carried the same Idempotency-Key, the provider created exactly
  one PaymentIntent and one Transfer, and the books balance.
- Tries exhausted on `pay`: the API answers 503 and nothing is recorded; the client's retry
  with the same Idempotency-Key gets the PaymentIntent the provider did create, once. A
  webhook arriving while the provider can't be read answers 503 and is handled on redelivery.
- Tries exhausted on the payout (a worker's run): the payout is `failed`; the `payouts_retry`
  task later pays it with the same key, so the seller is paid once.
"""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from django.conf import settings as django_settings
from django.core.management import call_command

from accounts.models import Wallet
from biddt.core.models import IdempotencyRecord
from escrow.models import LedgerEntry, PaymentEvent, Transaction
from tests.chaos.support import FaultProxy, wait_until
from tests.conftest import bearer, stripe_signed
from tests.escrow.helpers import assert_books_balanced, client_for, journal_kinds
from tests.factories import sold_transaction

pytestmark = [pytest.mark.integration, pytest.mark.postgres,
              pytest.mark.django_db(transaction=True)]

CLIENT_TIMEOUT = 1.0  # STRIPE_TIMEOUT_SECONDS for the app, here and in daphne
SLOW = 3.0  # a held answer: past the client's timeout
PI_PATH, TRANSFER_PATH = "/v1/payment_intents", "/v1/transfers"

# fault modes: (proxy mode, faulty tries out of the client's three, hold)
TRANSIENT = {
    "500": ("500", 2, 0.0),  # the provider never saw the first two tries
    "answer_lost": ("500_after_forward", 2, 0.0),  # it did the work; the answers were lost
    "timeout": ("slow_after_forward", 1, SLOW),  # it did the work; the answer came too late
}


@pytest.fixture
def faulty_stripe(settings, stripe_server):
    """(proxy, localstripe, env): this process's settings use the `stripe` backend through
    the fault proxy; `env` gives a daphne the same."""
    if not django_settings.USING_POSTGRES:
        pytest.skip("needs PostgreSQL: set DATABASE_URL")
    stripe_server.reset()
    with FaultProxy(stripe_server.url) as proxy:
        settings.BIDDT_PAYMENTS_BACKEND = "stripe"
        settings.STRIPE_SECRET_KEY = stripe_server.secret_key
        settings.STRIPE_WEBHOOK_SECRET = stripe_server.webhook_secret
        settings.STRIPE_API_BASE = proxy.url
        settings.STRIPE_TIMEOUT_SECONDS = CLIENT_TIMEOUT
        env = {**stripe_server.env(), "STRIPE_API_BASE": proxy.url,
               "STRIPE_TIMEOUT_SECONDS": str(CLIENT_TIMEOUT)}
        yield proxy, stripe_server, env


@pytest.fixture
def stripe_daphne(faulty_stripe, daphne_server):
    server = daphne_server(faulty_stripe[2], fresh=True)
    yield server
    server.stop()


def signed_event(stripe_server, etype: str, obj: dict) -> tuple[bytes, str]:
    event = {"id": f"evt_chaos_{uuid.uuid4().hex}", "object": "event", "type": etype,
             "data": {"object": obj}}
    return stripe_signed(json.dumps(event), stripe_server.webhook_secret)


def post_webhook(http: httpx.Client, body: bytes, signature: str) -> httpx.Response:
    return http.post("/v1/webhooks/stripe", content=body,
                     headers={"Content-Type": "application/json",
                              "Stripe-Signature": signature})


def confirm_with_test_card(stripe_server, pi_id: str) -> None:
    """What the buyer's app does with the client secret (straight to localstripe)."""
    stripe = stripe_server.client()
    stripe.v1.payment_intents.update(pi_id, {"payment_method": "pm_card_visa"})
    stripe.v1.payment_intents.confirm(pi_id)
    wait_until(lambda: stripe.v1.payment_intents.retrieve(pi_id)["status"] == "succeeded",
               what="localstripe to settle the charge")


def intents_of(stripe_server, txn) -> list[str]:
    """PaymentIntents localstripe holds for this transaction."""
    listed = stripe_server.client().v1.payment_intents.list({"limit": 100}).to_dict()
    return [pi["id"] for pi in listed["data"]
            if (pi.get("metadata") or {}).get("transaction_id") == str(txn.pk)]


def stub_transfers(stripe_server) -> list[dict]:
    return [r for r in stripe_server.connect_requests()
            if r["method"] == "POST" and r["path"] == TRANSFER_PATH]


def assert_one_call_one_key(proxy: FaultProxy, path: str, *, tries: int, key: str) -> dict:
    """Every try carried `key`, and the provider created exactly one object: returned."""
    calls = proxy.requests("POST", path)
    assert len(calls) == tries, [(c.fault, c.upstream_status, c.replayed) for c in calls]
    assert [c.idempotency_key for c in calls] == [key] * tries
    created = [c for c in calls if c.created]
    assert len(created) == 1, [(c.fault, c.upstream_status, c.replayed) for c in calls]
    return created[0].upstream_body


@pytest.mark.parametrize("fault", list(TRANSIENT))
def test_transient_provider_faults_pay_and_pay_out_exactly_once(faulty_stripe, stripe_daphne,
                                                                fault):
    proxy, stripe_server, _ = faulty_stripe
    mode, faulty, hold = TRANSIENT[fault]
    tries = faulty + 1
    # given a sale, and its seller's payout wallet activated through the live server
    txn = sold_transaction(amount_cents=10000)
    buyer, seller = txn.buyer, txn.seller
    as_buyer, as_seller = {"Authorization": bearer(buyer)}, {"Authorization": bearer(seller)}
    http = httpx.Client(base_url=stripe_daphne.http_url, timeout=60)
    try:
        assert http.post("/v1/users/me/wallet", headers=as_seller).status_code == 201
        account_id = Wallet.objects.get(user=seller).stripe_account_id
        stripe_server.account_set(account_id, charges_enabled=True, payouts_enabled=True,
                                  details_submitted=True)
        updated = post_webhook(http, *signed_event(stripe_server, "account.updated",
                                                   {"id": account_id, "object": "account"}))
        assert updated.status_code == 200, updated.text
        assert Wallet.objects.get(user=seller).status == "active"

        # when the buyer pays while the provider fails the first tries of the PaymentIntent
        proxy.fail("POST", PI_PATH, times=faulty, mode=mode, delay=hold)
        paid = http.post(f"/v1/transactions/{txn.pk}/pay",
                         headers={**as_buyer, "Idempotency-Key": str(uuid.uuid4())})
        # then the call succeeded on a retry with the same key, and one PaymentIntent exists
        assert paid.status_code == 200, paid.text
        pi_id = paid.json()["payment_intent_id"]
        created = assert_one_call_one_key(proxy, PI_PATH, tries=tries, key=f"biddt-pi-{txn.pk}")
        assert created["id"] == pi_id
        assert (created["amount"], created["currency"]) == (10000, "cad")
        assert intents_of(stripe_server, txn) == [pi_id]
        assert Transaction.objects.get(pk=txn.pk).payment_intent_id == pi_id

        # when the card is confirmed and Stripe's webhook arrives: the money is held
        confirm_with_test_card(stripe_server, pi_id)
        succeeded = post_webhook(http, *signed_event(
            stripe_server, "payment_intent.succeeded", {"id": pi_id, "object": "payment_intent"}))
        assert succeeded.status_code == 200, succeeded.text
        assert Transaction.objects.get(pk=txn.pk).status == "in_escrow"

        # when the seller scans the code while the provider fails the Transfer's first tries
        proxy.fail("POST", TRANSFER_PATH, times=faulty, mode=mode, delay=hold)
        code = http.get(f"/v1/transactions/{txn.pk}/qr", headers=as_buyer).json()["code"]
        verified = http.post(f"/v1/transactions/{txn.pk}/verify", json={"code": code},
                             headers=as_seller)
        assert verified.status_code == 200, verified.text
        wait_until(lambda: Transaction.objects.get(pk=txn.pk).payout_status == "paid",
                   what="the payout")
        balance = http.get("/v1/users/me/wallet/balance", headers=as_seller).json()
    finally:
        http.close()

    # then one Transfer was made, with one key on every try, and booked once
    transfer = assert_one_call_one_key(proxy, TRANSFER_PATH, tries=tries,
                                       key=f"biddt-transfer-{txn.pk}")
    assert len(stub_transfers(stripe_server)) == 1
    txn.refresh_from_db()
    assert (txn.status, txn.payout_transfer_id) == ("released", transfer["id"])
    assert transfer["amount"] == txn.seller_payout_cents == 9201
    assert journal_kinds(txn) == ["funds_held", "payout", "release"]
    assert LedgerEntry.objects.filter(transaction=txn, kind="payout").count() == 2
    assert balance == {"currency": "CAD", "pending_cents": 0, "available_cents": 0,
                       "paid_out_cents": 9201}
    assert_books_balanced()
    call_command("ledger_check")


def test_pay_answers_503_when_tries_run_out_and_the_retry_gets_the_one_intent(
        faulty_stripe, stripe_daphne):
    proxy, stripe_server, _ = faulty_stripe
    txn = sold_transaction(amount_cents=2500)
    as_buyer = {"Authorization": bearer(txn.buyer), "Idempotency-Key": str(uuid.uuid4())}
    http = httpx.Client(base_url=stripe_daphne.http_url, timeout=60)
    try:
        # given the provider creates the PaymentIntent but every answer is lost (3 tries)
        proxy.fail("POST", PI_PATH, times=3, mode="500_after_forward")
        # when the buyer pays
        down = http.post(f"/v1/transactions/{txn.pk}/pay", headers=as_buyer)
        # then a clean 503, and nothing recorded that would replay the failure
        assert down.status_code == 503, down.text
        assert down.json() == {"type": "server_error", "errors": [{
            "code": "service_unavailable",
            "detail": "The payment provider is unavailable; try again.", "attr": None}]}
        txn.refresh_from_db()
        assert (txn.status, txn.payment_intent_id) == ("pending_payment", None)
        assert not IdempotencyRecord.objects.filter(user=txn.buyer).exists()
        lost = assert_one_call_one_key(proxy, PI_PATH, tries=3, key=f"biddt-pi-{txn.pk}")

        # when the provider is back and the client retries with the same Idempotency-Key
        proxy.heal()
        retry = http.post(f"/v1/transactions/{txn.pk}/pay", headers=as_buyer)
        again = http.post(f"/v1/transactions/{txn.pk}/pay", headers=as_buyer)
        # then it gets the PaymentIntent the provider made on the first try: still one
        assert retry.status_code == 200, retry.text
        assert retry.json()["payment_intent_id"] == lost["id"]
        assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == retry.json()
        assert intents_of(stripe_server, txn) == [lost["id"]]
        assert Transaction.objects.get(pk=txn.pk).payment_intent_id == lost["id"]
        assert [c.idempotency_key for c in proxy.requests("POST", PI_PATH)] == [
            f"biddt-pi-{txn.pk}"] * 4

        # when the payment succeeds but the provider can't be read when the webhook comes
        confirm_with_test_card(stripe_server, lost["id"])
        body, signature = signed_event(stripe_server, "payment_intent.succeeded",
                                       {"id": lost["id"], "object": "payment_intent"})
        proxy.fail("GET", f"{PI_PATH}/{lost['id']}", times=3, mode="500")
        first = post_webhook(http, body, signature)
        txn.refresh_from_db()
        # then the webhook answers 503 (Stripe redelivers) and nothing moved
        assert first.status_code == 503, first.text
        assert txn.status == "pending_payment" and journal_kinds(txn) == []
        # and the redelivery, with the provider back, is handled once
        proxy.heal()
        assert post_webhook(http, body, signature).status_code == 200
        assert post_webhook(http, body, signature).status_code == 200
    finally:
        http.close()
    txn.refresh_from_db()
    assert txn.status == "in_escrow"
    assert journal_kinds(txn) == ["funds_held"]
    assert LedgerEntry.objects.filter(transaction=txn, kind="funds_held").count() == 2
    assert PaymentEvent.objects.filter(type="payment_intent.succeeded",
                                       processed_at__isnull=False).count() == 1
    assert_books_balanced()
    call_command("ledger_check")


def test_payout_that_runs_out_of_tries_is_paid_once_by_payouts_retry(faulty_stripe,
                                                                     monkeypatch):
    """Here this process is the Celery worker (tasks run eagerly): `payout_send` gets no
    Celery retry of its own (max_retries=0), so one run is one worker attempt."""
    from escrow import payments, services, tasks

    proxy, stripe_server, _ = faulty_stripe
    monkeypatch.setattr(tasks.payout_send, "max_retries", 0)
    # given a paid sale held in escrow, and the seller's active wallet
    txn = sold_transaction(amount_cents=10000)
    seller = txn.seller
    assert client_for(seller).post("/v1/users/me/wallet").status_code == 201
    account_id = Wallet.objects.get(user=seller).stripe_account_id
    stripe_server.account_set(account_id, payouts_enabled=True, details_submitted=True)
    services.wallet_apply_account(
        account=payments.gateway_get().retrieve_account(account_id))
    assert Wallet.objects.get(user=seller).status == "active"
    pi_id = client_for(txn.buyer).post(f"/v1/transactions/{txn.pk}/pay").json()[
        "payment_intent_id"]
    confirm_with_test_card(stripe_server, pi_id)
    body, signature = signed_event(stripe_server, "payment_intent.succeeded",
                                   {"id": pi_id, "object": "payment_intent"})
    services.webhook_receive(payload=body, sig_header=signature)
    assert Transaction.objects.get(pk=txn.pk).status == "in_escrow"

    # when the seller scans the code while the provider makes the Transfer but every answer
    # of the worker's three tries is lost
    proxy.fail("POST", TRANSFER_PATH, times=3, mode="500_after_forward")
    code = client_for(txn.buyer).get(f"/v1/transactions/{txn.pk}/qr").json()["code"]
    verified = client_for(seller).post(f"/v1/transactions/{txn.pk}/verify", {"code": code})
    # then the release stands, the payout is `failed`, and nothing was booked as paid out
    assert verified.status_code == 200, verified.content
    txn.refresh_from_db()
    assert (txn.status, txn.payout_status) == ("released", "failed")
    assert not txn.payout_transfer_id
    assert journal_kinds(txn) == ["funds_held", "release"]
    made = assert_one_call_one_key(proxy, TRANSFER_PATH, tries=3,
                                   key=f"biddt-transfer-{txn.pk}")
    assert client_for(seller).get("/v1/users/me/wallet/balance").json()[
        "available_cents"] == 9201

    # when the provider is back and the periodic `payouts_retry` task runs (twice)
    proxy.heal()
    assert tasks.payouts_retry() == 1
    assert tasks.payouts_retry() == 0
    assert tasks.payout_send(str(txn.pk)) == "paid"
    # then the payout is the Transfer the provider made the first time: paid once, booked once
    txn.refresh_from_db()
    assert (txn.payout_status, txn.payout_transfer_id) == ("paid", made["id"])
    calls = proxy.requests("POST", TRANSFER_PATH)
    assert len(calls) == 4
    assert {c.idempotency_key for c in calls} == {f"biddt-transfer-{txn.pk}"}
    assert [c.created for c in calls] == [True, False, False, False]
    assert len(stub_transfers(stripe_server)) == 1
    assert LedgerEntry.objects.filter(transaction=txn, kind="payout").count() == 2
    assert client_for(seller).get("/v1/users/me/wallet/balance").json() == {
        "currency": "CAD", "pending_cents": 0, "available_cents": 0, "paid_out_cents": 9201}
    assert_books_balanced()
    call_command("ledger_check")
