"""dj-stripe against localstripe: the webhook `Event` store, and the mirror of the Stripe
objects we create (accounts, PaymentIntents, Transfers, Refunds) that the console shows
beside our ledger and `reconcile_payments` compares with."""

import json

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from djstripe import models as djstripe_models

from accounts.models import Wallet
from accounts.roles import SUPPORT
from escrow import payments, services
from escrow.models import Dispute, LedgerEntry, PaymentEvent, Transaction
from escrow.reconcile import reconcile
from notifications.models import Notification
from tests.admin.conftest import staff
from tests.conftest import stripe_signed
from tests.escrow.helpers import assert_books_balanced, client_for, journal_kinds
from tests.escrow.test_stripe_flow import card_paid_on_localstripe, wait_for
from tests.factories import UserFactory, sold_transaction

pytestmark = [pytest.mark.integration]


def _pay(stripe_backend, txn) -> str:
    """The buyer pays (our API), then confirms with a test card (what the app's SDK does)."""
    return card_paid_on_localstripe(stripe_backend, txn)


def _event(stripe_backend, pi_id: str, event_id: str, etype: str, created: int) -> dict:
    pi = stripe_backend.client().v1.payment_intents.retrieve(pi_id).to_dict()
    return {"id": event_id, "object": "event", "type": etype, "api_version": "2026-03-25.dahlia",
            "created": created, "livemode": False, "data": {"object": pi},
            "request": {"id": "req_test", "idempotency_key": None}}


def _post(stripe_backend, event: dict) -> int:
    body, signature = stripe_signed(json.dumps(event), stripe_backend.webhook_secret)
    return Client().post("/v1/webhooks/stripe", body, content_type="application/json",
                         headers={"Stripe-Signature": signature}).status_code


@pytest.mark.django_db(transaction=True)
def test_signed_event_is_stored_once_and_moves_the_transaction_to_in_escrow(stripe_backend):
    txn = sold_transaction(amount_cents=4000)
    pi_id = _pay(stripe_backend, txn)
    succeeded = _event(stripe_backend, pi_id, "evt_paid_1", "payment_intent.succeeded",
                       1_800_000_000)

    # when Stripe delivers the signed event to the webhook URL of API.md
    assert _post(stripe_backend, succeeded) == 200
    # then dj-stripe's Event store holds it once and the money is in escrow
    stored = djstripe_models.Event.objects.get(id="evt_paid_1")
    assert stored.type == "payment_intent.succeeded"
    assert stored.data["object"]["id"] == pi_id and stored.livemode is False
    assert stored.request_id == "req_test"
    txn.refresh_from_db()
    assert txn.status == "in_escrow"
    paid_at = txn.paid_at

    # when the same event is replayed
    assert [_post(stripe_backend, succeeded) for _ in range(3)] == [200] * 3
    # then it is still stored once and the state changed once
    assert djstripe_models.Event.objects.filter(id="evt_paid_1").count() == 1
    assert PaymentEvent.objects.filter(event_id="evt_paid_1").count() == 1
    txn.refresh_from_db()
    assert txn.status == "in_escrow" and txn.paid_at == paid_at
    assert LedgerEntry.objects.filter(transaction=txn, kind="funds_held").count() == 2
    assert Notification.objects.filter(user=txn.seller, type="payment_received").count() == 1

    # when an older `payment_failed` event arrives after the success (out of order)
    stale = _event(stripe_backend, pi_id, "evt_failed_earlier", "payment_intent.payment_failed",
                   1_700_000_000)
    stale["data"]["object"]["status"] = "requires_payment_method"
    assert _post(stripe_backend, stale) == 200
    # then it is stored, but the PaymentIntent re-read from Stripe has succeeded: no change,
    # no "payment failed" notice to the buyer
    assert djstripe_models.Event.objects.filter(id="evt_failed_earlier").count() == 1
    txn.refresh_from_db()
    assert txn.status == "in_escrow" and txn.paid_at == paid_at
    assert not Notification.objects.filter(user=txn.buyer, title="Payment failed").exists()
    assert journal_kinds(txn) == ["funds_held"]
    assert_books_balanced()

    # a bad signature stores nothing
    body, signature = stripe_signed(json.dumps(dict(succeeded, id="evt_forged")),
                                    "whsec_not_ours")
    assert Client().post("/v1/webhooks/stripe", body, content_type="application/json",
                         headers={"Stripe-Signature": signature}).status_code == 400
    assert not djstripe_models.Event.objects.filter(id="evt_forged").exists()


@pytest.mark.django_db(transaction=True)
def test_out_of_order_failed_event_first_still_moves_a_paid_intent_to_in_escrow(
        stripe_backend):
    # given the PaymentIntent succeeded, but the first event to arrive says it failed
    txn = sold_transaction(amount_cents=1500)
    pi_id = _pay(stripe_backend, txn)
    failed = _event(stripe_backend, pi_id, "evt_failed_first", "payment_intent.payment_failed",
                    1_800_000_100)
    failed["data"]["object"]["status"] = "requires_payment_method"
    assert _post(stripe_backend, failed) == 200
    # then the state follows Stripe's PaymentIntent as re-read, not the event body
    txn.refresh_from_db()
    assert txn.status == "in_escrow"
    # and the success event arriving later changes nothing more
    assert _post(stripe_backend, _event(stripe_backend, pi_id, "evt_succeeded_late",
                                        "payment_intent.succeeded", 1_800_000_000)) == 200
    assert set(djstripe_models.Event.objects.values_list("id", flat=True)) == {
        "evt_failed_first", "evt_succeeded_late"}
    assert LedgerEntry.objects.filter(transaction=txn, kind="funds_held").count() == 2
    assert_books_balanced()


@pytest.mark.django_db(transaction=True)
def test_mirror_rows_after_pay_transfer_and_refund(stripe_backend):
    # given a buyer who pays (mirror: the PaymentIntent, as created and as re-read)
    txn = sold_transaction(amount_cents=2500)
    pi_id = _pay(stripe_backend, txn)
    assert djstripe_models.PaymentIntent.objects.get(id=pi_id).stripe_data["status"] == \
        "requires_payment_method"  # as created; confirmed by the app, not by us
    body, sig = stripe_signed({"id": "evt_mirror_pay", "type": "payment_intent.succeeded",
                               "data": {"object": {"id": pi_id}}}, stripe_backend.webhook_secret)
    services.webhook_receive(payload=body, sig_header=sig)
    txn.refresh_from_db()
    assert txn.status == "in_escrow"
    mirrored_pi = djstripe_models.PaymentIntent.objects.get(id=pi_id)
    assert mirrored_pi.stripe_data["status"] == "succeeded"
    assert mirrored_pi.stripe_data["amount"] == txn.total_charged_cents
    assert mirrored_pi.stripe_data["metadata"]["transaction_id"] == str(txn.pk)

    # when a dispute ends in a refund: the Refund is mirrored
    r = client_for(txn.seller).post(f"/v1/transactions/{txn.pk}/dispute", {"reason": "no show"})
    assert r.status_code == 201
    services.dispute_resolve_refund(dispute_id=Dispute.objects.get(transaction=txn).pk,
                                    staff_user=UserFactory(is_staff=True), note="refund")
    txn.refresh_from_db()
    refund = djstripe_models.Refund.objects.get(id=txn.refund_id)
    assert refund.stripe_data["amount"] == txn.total_charged_cents
    assert refund.stripe_data["status"] == "succeeded"

    # given another sale whose seller onboards (mirror: the connected account) ...
    sale = sold_transaction(amount_cents=10000)
    client_for(sale.seller).post("/v1/users/me/wallet")
    account_id = Wallet.objects.get(user=sale.seller).stripe_account_id
    assert djstripe_models.Account.objects.get(id=account_id).stripe_data[
        "payouts_enabled"] is False
    stripe_backend.account_set(account_id, charges_enabled=True, payouts_enabled=True,
                               details_submitted=True)
    services.wallet_apply_account(account=payments.gateway_get().retrieve_account(account_id))
    assert djstripe_models.Account.objects.get(id=account_id).stripe_data[
        "payouts_enabled"] is True
    # ... is paid for, and released: the Transfer is mirrored
    sale_pi = _pay(stripe_backend, sale)
    body, sig = stripe_signed({"id": "evt_mirror_sale", "type": "payment_intent.succeeded",
                               "data": {"object": {"id": sale_pi}}},
                              stripe_backend.webhook_secret)
    services.webhook_receive(payload=body, sig_header=sig)
    code = client_for(sale.buyer).get(f"/v1/transactions/{sale.pk}/qr").json()["code"]
    assert client_for(sale.seller).post(f"/v1/transactions/{sale.pk}/verify",
                                        {"code": code}).status_code == 200
    wait_for(lambda: Transaction.objects.get(pk=sale.pk).payout_status == "paid",
             what="the payout")
    sale.refresh_from_db()
    transfer = djstripe_models.Transfer.objects.get(id=sale.payout_transfer_id)
    assert transfer.stripe_data["amount"] == sale.seller_payout_cents == 9201
    assert transfer.stripe_data["destination"] == account_id

    # then reconciliation against the mirror finds the ledger and Stripe agree
    report = reconcile(backend="stripe")
    assert report.ok, (report.differences, report.unmatched_provider, report.unknown_events)
    assert report.compared == 4  # two charges, a refund, a transfer
    call_command("reconcile_payments", "--backend", "stripe", verbosity=0)

    # and support sees Stripe's view beside the ledger on the transaction's page
    console = Client()
    console.force_login(staff(SUPPORT, "Support Sue"))
    page = console.get(reverse("admin:escrow_transaction_change", args=[sale.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Stripe&#x27;s view" in html or "Stripe's view" in html
    for object_id in (sale_pi, sale.payout_transfer_id, account_id):
        assert object_id in html
    assert "payouts_enabled=yes" in html and "92.01" in html

    # when the mirror shows a transfer reversed in part, reconciliation lists the difference
    transfer.stripe_data = {**transfer.stripe_data, "amount_reversed": 1}
    transfer.save()
    report = reconcile(backend="stripe")
    assert [(d.transaction_id, d.movement, d.ledger_cents, d.provider_cents)
            for d in report.differences] == [(str(sale.pk), "transfer", 9201, 9200)]
