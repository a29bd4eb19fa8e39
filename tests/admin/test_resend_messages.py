"""Resend payout says what happened to each payout; a failed payout keeps the provider's
reason; waiting-for-wallet payouts are their own queue."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import Wallet
from biddt.core.models import AuditEntry
from escrow import services
from escrow.admin import resend_message
from escrow.models import Transaction
from escrow.payments import GatewayError, SimulatedGateway
from escrow.services import ResendOutcome
from tests.admin.conftest import released_transaction
from tests.admin.test_actions import messages_of, run_action
from tests.factories import sold_transaction

pytestmark = pytest.mark.django_db


def wallet_for(user):
    return Wallet.objects.create(user=user, status=Wallet.Status.ACTIVE,
                                 stripe_account_id=f"acct_sim_{str(user.pk)[:8]}")


@pytest.fixture
def queued(monkeypatch):
    from escrow import tasks

    calls = []
    monkeypatch.setattr(tasks.payout_send, "apply_async",
                        lambda args=(), kwargs=None, **kw: calls.append(args))
    return calls


def test_each_payout_gets_its_own_message(support_client, settings, queued,
                                          django_capture_on_commit_callbacks):
    # given four transactions: failed with a wallet, waiting for a wallet, paid, unpaid
    failed = released_transaction(settings)
    wallet_for(failed.seller)
    Transaction.objects.filter(pk=failed.pk).update(payout_status="failed")
    waiting = released_transaction(settings)
    paid = released_transaction(settings)
    wallet_for(paid.seller)
    Transaction.objects.filter(pk=paid.pk).update(payout_status="paid")
    unpaid = sold_transaction()

    # when support resends all four
    with django_capture_on_commit_callbacks(execute=True):
        response = run_action(support_client, "escrow_transaction", "resend_payout",
                              [failed.pk, waiting.pk, paid.pk, unpaid.pk], reason="retry",
                              follow=True)

    # then one payout was queued and each message says what happened to which
    assert queued == [(str(failed.pk),)]
    shown = messages_of(response)
    assert f"{failed}: payout queued." in shown
    assert any(m.startswith(f"{Transaction.objects.get(pk=waiting.pk)}: nothing queued: "
                            "waiting for the seller's wallet") for m in shown)
    assert f"{Transaction.objects.get(pk=paid.pk)}: nothing queued: already paid." in shown
    assert f"{unpaid}: nothing queued: the money is not released." in shown
    assert not any("queued." in m and "payout(s)" in m for m in shown)
    # the waiting one is in the waiting-for-wallet queue, not the failed one
    assert Transaction.objects.get(pk=waiting.pk).payout_status == "waiting_wallet"
    assert AuditEntry.objects.filter(action="transaction.payout_resend").count() == 1


@pytest.mark.parametrize(("outcome", "text"), [
    (ResendOutcome.QUEUED, "payout queued."),
    (ResendOutcome.WAITING_WALLET, "nothing queued: waiting for the seller's wallet (the "
                                   "payout starts by itself once it is active)."),
    (ResendOutcome.ALREADY_PAID, "nothing queued: already paid."),
    (ResendOutcome.NOT_RELEASED, "nothing queued: the money is not released."),
])
def test_resend_message_per_outcome(outcome, text):
    assert resend_message("transaction 1234", outcome) == f"transaction 1234: {text}"


def test_a_failed_payout_keeps_the_providers_reason(settings, monkeypatch):
    txn = released_transaction(settings)
    wallet_for(txn.seller)

    def refuse(self, txn, *, destination):
        raise GatewayError("Your destination account needs to have at least one of the "
                           "following capabilities enabled: transfers")

    monkeypatch.setattr(SimulatedGateway, "create_transfer", refuse)
    with pytest.raises(GatewayError):
        services.payout_send(transaction_id=txn.pk)
    txn.refresh_from_db()
    assert txn.payout_status == "failed"
    assert "capabilities enabled: transfers" in txn.payout_failure_reason

    # and a later successful payout clears it
    monkeypatch.undo()
    assert services.payout_send(transaction_id=txn.pk) == "paid"
    txn.refresh_from_db()
    assert txn.payout_failure_reason == ""


def test_dashboard_counts_failed_and_waiting_payouts_apart(support_client, settings):
    failed = released_transaction(settings)
    Transaction.objects.filter(pk=failed.pk).update(payout_status="failed",
                                                    payout_failure_reason="card declined")
    waiting = released_transaction(settings)
    Transaction.objects.filter(pk=waiting.pk).update(payout_status="waiting_wallet")
    html = support_client.get(reverse("admin:index")).content.decode()
    assert "Failed payouts" in html and "Payouts waiting for the seller&#x27;s wallet" in html \
        or "Payouts waiting for the seller's wallet" in html
    page = support_client.get(reverse("admin:escrow_transaction_changelist"),
                              {"payout_queue": "failed"}).content.decode()
    assert "card declined" in page
