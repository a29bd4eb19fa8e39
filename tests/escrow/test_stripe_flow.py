"""The flow against a real localstripe server; webhooks delivered, signed, to a live daphne.

localstripe serves PaymentIntents (confirmed with the test card `pm_card_visa`), refunds and
its own signed webhooks; the Connect calls it lacks (accounts, account links, transfers) are
stubbed in the same server, which records each request and its Idempotency-Key.
"""

import json
import time
import urllib.error
import urllib.request

import pytest
from django.core.management import call_command

from accounts.models import Wallet
from escrow import payments, services
from escrow.models import Dispute, LedgerEntry, PaymentEvent, Transaction
from notifications.models import Notification
from tests.conftest import stripe_signed
from tests.escrow.helpers import assert_books_balanced, client_for, journal_kinds
from tests.factories import sold_transaction

pytestmark = [pytest.mark.integration]


def wait_for(predicate, *, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def post_webhook(server_url: str, body: bytes, signature: str) -> int:
    request = urllib.request.Request(f"{server_url}/v1/webhooks/stripe", data=body,
                                     method="POST",
                                     headers={"Content-Type": "application/json",
                                              "Stripe-Signature": signature})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def card_paid_on_localstripe(stripe_backend, txn) -> str:
    """The buyer pays (our API), then confirms with a test card (what the app's SDK does);
    returns the PaymentIntent id once localstripe has settled the charge."""
    stripe = stripe_backend.client()
    pi_id = client_for(txn.buyer).post(f"/v1/transactions/{txn.pk}/pay").json()[
        "payment_intent_id"]
    stripe.v1.payment_intents.update(pi_id, {"payment_method": "pm_card_visa"})
    stripe.v1.payment_intents.confirm(pi_id)
    wait_for(lambda: stripe.v1.payment_intents.retrieve(pi_id)["status"] == "succeeded",
             what="localstripe to settle the charge")
    return pi_id


def paid_through_localstripe(stripe_backend, *, event_id: str, amount_cents: int = 2500):
    """A sold transaction paid by card on localstripe, its `payment_intent.succeeded` webhook
    handled in-process (signed as Stripe does): (the transaction, its PaymentIntent id)."""
    txn = sold_transaction(amount_cents=amount_cents)
    pi_id = card_paid_on_localstripe(stripe_backend, txn)
    event = {"id": event_id, "type": "payment_intent.succeeded",
             "data": {"object": {"id": pi_id}}}
    body, sig = stripe_signed(event, stripe_backend.webhook_secret)
    services.webhook_receive(payload=body, sig_header=sig)
    return txn, pi_id


def connect(stripe_server, path: str) -> list[dict]:
    return [r for r in stripe_server.connect_requests() if r["path"].startswith(path)]


@pytest.mark.django_db(transaction=True)
def test_whole_flow_with_localstripe_and_a_live_server(stripe_backend, daphne_server):
    stripe_server = stripe_backend
    server = daphne_server(env=stripe_server.env())
    stripe_server.webhook_register(f"{server.http_url}/v1/webhooks/stripe")
    txn = sold_transaction(amount_cents=10000)
    buyer, seller = txn.buyer, txn.seller

    # given the seller starts onboarding: an Express account and a link, created once
    r = client_for(seller).post("/v1/users/me/wallet")
    assert r.status_code == 201
    assert r.json()["status"] == "pending"
    assert r.json()["onboarding_url"].startswith("https://connect.stripe.test/setup/acct_")
    assert client_for(seller).post("/v1/users/me/wallet").status_code == 200
    creates = [x for x in connect(stripe_server, "/v1/accounts") if x["method"] == "POST"]
    assert len(creates) == 1
    assert creates[0]["idempotency_key"] == f"biddt-account-{seller.pk}"
    assert creates[0]["data"]["type"] == "express"
    assert creates[0]["data"]["capabilities"] == {"transfers": {"requested": "true"}}
    account_id = Wallet.objects.get(user=seller).stripe_account_id

    # when the buyer pays: one PaymentIntent, in a transfer group named after the transaction
    first = client_for(buyer).post(f"/v1/transactions/{txn.pk}/pay").json()
    again = client_for(buyer).post(f"/v1/transactions/{txn.pk}/pay").json()
    assert first["payment_intent_id"] == again["payment_intent_id"]
    assert first["payment_intent_id"].startswith("pi_") and first["client_secret"]
    assert first["status"] == "requires_payment_method"
    stripe = stripe_server.client()
    pi = stripe.v1.payment_intents.retrieve(first["payment_intent_id"])
    assert (pi["amount"], pi["currency"], pi["transfer_group"]) == (10000, "cad", str(txn.pk))
    # ... and confirms it with a test card (what the app's Stripe SDK does)
    stripe.v1.payment_intents.update(pi["id"], {"payment_method": "pm_card_visa"})
    stripe.v1.payment_intents.confirm(pi["id"])

    # then localstripe's signed webhook reaches the live server and the money is in escrow
    wait_for(lambda: Transaction.objects.get(pk=txn.pk).status == "in_escrow",
             what="payment_intent.succeeded to move the transaction to in_escrow")
    event = PaymentEvent.objects.get(type="payment_intent.succeeded")
    assert journal_kinds(txn) == ["funds_held"]
    assert Notification.objects.filter(user=seller, type="payment_received").count() == 1
    assert_books_balanced()
    paid_at = Transaction.objects.get(pk=txn.pk).paid_at

    # when the same event is replayed three times and older/other events arrive out of order
    body, signature = stripe_signed(json.dumps(event.payload), stripe_server.webhook_secret)
    assert [post_webhook(server.http_url, body, signature) for _ in range(3)] == [200] * 3
    stale = dict(event.payload, id="evt_out_of_order_failed", type="payment_intent.payment_failed")
    late = dict(event.payload, id="evt_out_of_order_succeeded")
    for payload in (stale, late):
        assert post_webhook(server.http_url, *stripe_signed(payload,
                                                             stripe_server.webhook_secret)) == 200
    # then the state changed once: one journal, one notice, no failure notice
    txn.refresh_from_db()
    assert txn.status == "in_escrow" and txn.paid_at == paid_at
    assert LedgerEntry.objects.filter(transaction=txn, kind="funds_held").count() == 2
    assert Notification.objects.filter(user=seller, type="payment_received").count() == 1
    assert not Notification.objects.filter(user=buyer, title="Payment failed").exists()
    assert PaymentEvent.objects.filter(event_id=event.event_id).count() == 1

    # a bad signature or an old timestamp is refused
    assert post_webhook(server.http_url, body, signature.replace("v1=", "v1=00")) == 400
    old_body, old_sig = stripe_signed(event.payload, stripe_server.webhook_secret,
                                      timestamp=int(time.time()) - 3600)
    assert post_webhook(server.http_url, old_body, old_sig) == 400

    # when the seller scans the code before finishing onboarding: the payout waits
    code = client_for(buyer).get(f"/v1/transactions/{txn.pk}/qr").json()["code"]
    assert client_for(seller).post(f"/v1/transactions/{txn.pk}/verify",
                                   {"code": code}).status_code == 200
    txn.refresh_from_db()
    assert txn.status == "released" and txn.payout_status == "waiting_wallet"
    assert client_for(seller).get("/v1/users/me/wallet/balance").json()["available_cents"] \
        == 9201
    assert connect(stripe_server, "/v1/transfers") == []

    # when onboarding completes and Stripe sends account.updated to the live server
    stripe_server.account_set(account_id, charges_enabled=True, payouts_enabled=True,
                              details_submitted=True)
    updated = {"id": "evt_account_updated_1", "object": "event", "type": "account.updated",
               "data": {"object": {"id": account_id, "object": "account",
                                   "payouts_enabled": False}}}
    assert post_webhook(server.http_url,
                        *stripe_signed(updated, stripe_server.webhook_secret)) == 200
    # then the wallet is active (re-read from Stripe, not the event) and the payout is sent
    wait_for(lambda: Transaction.objects.get(pk=txn.pk).payout_status == "paid",
             what="the payout after account.updated")
    assert Wallet.objects.get(user=seller).status == "active"
    transfers = connect(stripe_server, "/v1/transfers")
    assert len(transfers) == 1
    assert transfers[0]["idempotency_key"] == f"biddt-transfer-{txn.pk}"
    assert transfers[0]["data"] == {"amount": "9201", "currency": "cad",
                                    "destination": account_id, "transfer_group": str(txn.pk),
                                    "metadata": {"transaction_id": str(txn.pk)}}

    # when the payout task runs twice more: no second transfer
    from escrow.tasks import payout_send

    assert payout_send(str(txn.pk)) == payout_send(str(txn.pk)) == "paid"
    assert len(connect(stripe_server, "/v1/transfers")) == 1
    assert client_for(seller).get("/v1/users/me/wallet/balance").json() == {
        "currency": "CAD", "pending_cents": 0, "available_cents": 0, "paid_out_cents": 9201}
    assert_books_balanced()
    call_command("ledger_check")


@pytest.mark.django_db(transaction=True)
def test_payout_killed_after_the_provider_call_pays_once(stripe_backend):
    # given a released transaction whose seller has an active wallet
    txn = sold_transaction()
    stripe_backend.reset()
    client_for(txn.seller).post("/v1/users/me/wallet")
    wallet = Wallet.objects.get(user=txn.seller)
    stripe_backend.account_set(wallet.stripe_account_id, payouts_enabled=True,
                               details_submitted=True)
    services.wallet_apply_account(
        account=payments.gateway_get().retrieve_account(wallet.stripe_account_id))
    Transaction.objects.filter(pk=txn.pk).update(status="released", payout_status="pending")
    # when a run died after Stripe made the transfer (payout still `pending`) and two more run
    from escrow.payments import gateway_get

    gateway_get().create_transfer(txn, destination=wallet.stripe_account_id)
    from escrow.tasks import payout_send

    payout_send(str(txn.pk))
    payout_send(str(txn.pk))
    # then every call carried the same key, so Stripe made one transfer, and it is booked once
    transfers = connect(stripe_backend, "/v1/transfers")
    assert {t["idempotency_key"] for t in transfers} == {f"biddt-transfer-{txn.pk}"}
    txn.refresh_from_db()
    assert txn.payout_status == "paid" and txn.payout_transfer_id.startswith("tr_stub")
    assert LedgerEntry.objects.filter(transaction=txn, kind="payout").count() == 2


@pytest.mark.django_db(transaction=True)
def test_dispute_refund_through_localstripe(stripe_backend):
    txn, pi_id = paid_through_localstripe(stripe_backend, event_id="evt_refund_flow")
    assert Transaction.objects.get(pk=txn.pk).status == "in_escrow"
    r = client_for(txn.seller).post(f"/v1/transactions/{txn.pk}/dispute", {"reason": "no show"})
    assert r.status_code == 201
    from tests.factories import UserFactory

    staff = UserFactory(is_staff=True)
    dispute = Dispute.objects.get(transaction=txn)
    services.dispute_resolve_refund(dispute_id=dispute.pk, staff_user=staff, note="refund")
    services.dispute_resolve_refund(dispute_id=dispute.pk, staff_user=staff, note="again")
    txn.refresh_from_db()
    assert txn.status == "refunded" and txn.refund_id.startswith("re_")
    assert journal_kinds(txn) == ["funds_held", "refund"]
    assert_books_balanced()
