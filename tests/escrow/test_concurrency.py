"""Races on PostgreSQL: real concurrent transactions, real row locks."""

import threading

import pytest
from django.db import close_old_connections, connection

from escrow import services
from escrow.models import LedgerEntry, Transaction
from tests.escrow.helpers import assert_books_balanced
from tests.factories import sold_transaction

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_together(count: int, body) -> list:
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(i):
        try:
            barrier.wait()
            results[i] = body(i)
        except Exception as exc:  # the outcome is what we compare
            results[i] = exc
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_two_concurrent_scans_release_once(settings):
    settings.BIDDT_PAYMENTS_BACKEND = "simulated"
    # given a paid transaction and the buyer's code
    txn = sold_transaction()
    services.transaction_pay(user=txn.buyer, transaction_id=txn.pk)
    code, _ = services.qr_issue(user=txn.buyer, transaction_id=txn.pk)
    # when the seller's two phones scan it at the same time
    results = run_together(2, lambda i: services.escrow_release(
        user=txn.seller, transaction_id=txn.pk, code=code))
    # then one released it and the other was told the code was used
    released = [r for r in results if isinstance(r, Transaction)]
    refused = [r for r in results if not isinstance(r, Transaction)]
    assert len(released) == 1 and len(refused) == 1
    assert refused[0].get_codes() == "code_already_used"
    txn.refresh_from_db()
    txn.seller.refresh_from_db()
    assert txn.status == "released" and txn.seller.completed_sales == 1
    assert LedgerEntry.objects.filter(transaction=txn, kind="release").count() == 4
    assert_books_balanced()


def test_concurrent_payment_confirmations_move_once(settings):
    settings.BIDDT_PAYMENTS_BACKEND = "simulated"
    txn = sold_transaction()
    from escrow.payments import gateway_get

    pi = gateway_get().create_payment_intent(txn)
    Transaction.objects.filter(pk=txn.pk).update(payment_intent_id=pi.id)
    results = run_together(4, lambda i: services.payment_succeeded_apply(payment_intent=pi))
    assert sorted(results) == [False, False, False, True]
    assert LedgerEntry.objects.filter(transaction=txn, kind="funds_held").count() == 2
    assert_books_balanced()
