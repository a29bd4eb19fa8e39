"""A payment that succeeds after the unpaid window cancelled the sale is refunded, once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import TestCase
from django.utils import timezone

from escrow import services
from escrow.models import LedgerAccount, LedgerEntry, Transaction
from escrow.payments import PaymentIntentInfo
from notifications.models import Notification
from tests.escrow.helpers import assert_books_balanced, journal_kinds
from tests.factories import sold_transaction

pytestmark = pytest.mark.django_db


def succeeded(txn: Transaction) -> PaymentIntentInfo:
    return PaymentIntentInfo(id=f"pi_sim_late_{txn.pk.hex[:8]}", client_secret="cs",
                             status="succeeded", amount=txn.total_charged_cents,
                             currency="cad", metadata={"transaction_id": str(txn.pk)})


def test_late_payment_on_a_cancelled_sale_is_refunded_once():
    # given a sale cancelled because it went unpaid
    txn = sold_transaction(amount_cents=10000)
    Transaction.objects.filter(pk=txn.pk).update(payment_due_at=timezone.now()
                                                 - timedelta(minutes=1))
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert services.transaction_expire_unpaid(transaction_id=txn.pk)
    # when the buyer's payment succeeds anyway, and the webhook is delivered three times
    with TestCase.captureOnCommitCallbacks(execute=True):
        results = [services.payment_succeeded_apply(payment_intent=succeeded(txn))
                   for _ in range(3)]
    # then the money goes back once, the sale stays cancelled and the books balance
    assert results == [True, False, False]
    txn.refresh_from_db()
    assert txn.status == Transaction.Status.CANCELLED
    assert txn.refund_id and txn.refunded_at is not None
    assert journal_kinds(txn) == ["funds_held", "refund"]
    escrow_rows = LedgerEntry.objects.filter(transaction=txn, account=LedgerAccount.ESCROW)
    assert sum(escrow_rows.values_list("amount_cents", flat=True)) == 0
    assert LedgerEntry.objects.filter(transaction=txn).count() == 4
    assert_books_balanced()
    assert Notification.objects.filter(user=txn.buyer, title="Payment refunded").count() == 1


def test_a_payment_for_an_active_sale_is_not_refunded():
    txn = sold_transaction(amount_cents=10000)
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert services.payment_succeeded_apply(payment_intent=succeeded(txn))
    txn.refresh_from_db()
    assert txn.status == Transaction.Status.IN_ESCROW and txn.refund_id == ""
    assert journal_kinds(txn) == ["funds_held"]
