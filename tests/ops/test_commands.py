"""Ops commands: behaviour and exit codes on good and bad data."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from escrow import services
from escrow.models import LedgerEntry, Transaction
from listings.models import Listing
from tests.factories import ListingFactory, UserFactory, sold_transaction

pytestmark = pytest.mark.django_db


def run(name: str, *args) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of a management command, as the shell would see them."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(name, *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except CommandError as exc:
        err.write(str(exc))
        code = exc.returncode
    return code, out.getvalue(), err.getvalue()


def paid(settings, **kwargs) -> Transaction:
    settings.BIDDT_PAYMENTS_BACKEND = "simulated"
    txn = sold_transaction(**kwargs)
    services.transaction_pay(user=txn.buyer, transaction_id=txn.pk)
    return Transaction.objects.get(pk=txn.pk)


# --- reconcile_payments ---------------------------------------------------------------------

def test_reconcile_matches_on_good_books(settings):
    txn = paid(settings)
    code_qr, _ = services.qr_issue(user=txn.buyer, transaction_id=txn.pk)
    services.escrow_release(user=txn.seller, transaction_id=txn.pk, code=code_qr)
    refunded = paid(settings)
    services.transaction_refund(transaction_id=refunded.pk, frm=("in_escrow",), reason="t")
    code, out, _ = run("reconcile_payments", "--backend", "simulated")
    assert code == 0, out
    assert "ledger matches the provider: 3 movement(s)" in out


def test_reconcile_reports_a_missing_and_a_wrong_ledger_row(settings):
    a, b = paid(settings), paid(settings)
    LedgerEntry.objects.filter(transaction=a).delete()  # a charge the books lost
    LedgerEntry.objects.filter(transaction=b, account="provider_cash").update(amount_cents=1)
    code, out, err = run("reconcile_payments", "--backend", "simulated")
    assert code == 1
    assert f"transaction {a.pk} charge: ledger missing, provider {a.total_charged_cents}" in out
    assert f"transaction {b.pk} charge: ledger 1 cents" in out
    assert "2 difference(s)" in err


def test_reconcile_reports_a_payout_the_books_dont_show(settings):
    txn = paid(settings)
    Transaction.objects.filter(pk=txn.pk).update(status="released", payout_status="paid")
    code, out, _ = run("reconcile_payments", "--backend", "simulated")
    assert code == 1
    assert "transfer: ledger missing" in out


def test_reconcile_stripe_matches_balance_transactions_by_stored_ids(settings, monkeypatch):
    from escrow import reconcile as rec

    txn = paid(settings)
    Transaction.objects.filter(pk=txn.pk).update(payment_backend="stripe",
                                                 payment_intent_id="pi_123")
    good = [{"type": "charge", "amount": txn.total_charged_cents,
             "source": {"id": "ch_1", "payment_intent": "pi_123"}},
            {"type": "stripe_fee", "amount": -30, "source": None}]
    monkeypatch.setattr(rec, "stripe_balance_transactions", lambda since=None: iter(good))
    code, out, _ = run("reconcile_payments", "--backend", "stripe", "--source", "api")
    assert code == 0, out
    bad = [*good, {"type": "refund", "amount": -500, "source": {"id": "re_unknown"}}]
    monkeypatch.setattr(rec, "stripe_balance_transactions", lambda since=None: iter(bad))
    code, out, _ = run("reconcile_payments", "--backend", "stripe", "--source", "api")
    assert code == 1
    assert "provider only: refund re_unknown (500 cents)" in out


def test_reconcile_exits_2_when_the_provider_fails(settings, monkeypatch):
    from escrow import reconcile as rec
    from escrow.payments import GatewayError

    def boom(since=None):
        raise GatewayError("no network")
        yield  # pragma: no cover

    monkeypatch.setattr(rec, "stripe_balance_transactions", boom)
    code, _, err = run("reconcile_payments", "--backend", "stripe", "--source", "api")
    assert code == 2
    assert "no network" in err


def test_reconcile_refuses_a_bad_since():
    code, _, err = run("reconcile_payments", "--since", "yesterday-ish")
    assert code == 2


# --- ledger_check ----------------------------------------------------------------------------

def test_ledger_check_good_and_bad(settings):
    txn = paid(settings)
    code, out, _ = run("ledger_check")
    assert code == 0 and "ledger balanced" in out
    LedgerEntry.objects.filter(transaction=txn, account="escrow").update(amount_cents=-1)
    code, _, err = run("ledger_check")
    assert code == 1
    assert "sums to" in err


# --- close_auctions / expire_transactions -----------------------------------------------------

def test_close_auctions_closes_due_ones_once(settings):
    from bidding.services import bid_place

    due = ListingFactory(ends_at=timezone.now() + timedelta(hours=2))
    bid_place(listing_id=due.pk, bidder=UserFactory(), amount_cents=1000)
    Listing.objects.filter(pk=due.pk).update(ends_at=timezone.now() - timedelta(seconds=1))
    later = ListingFactory()
    code, out, _ = run("close_auctions")
    assert code == 0 and "closed 1 auction(s)" in out
    assert Listing.objects.get(pk=due.pk).status == "sold"
    assert Listing.objects.get(pk=later.pk).status == "active"
    code, out, _ = run("close_auctions")
    assert code == 0 and "closed 0 auction(s)" in out


def test_close_auctions_exits_1_when_one_fails(monkeypatch):
    from bidding.management.commands import close_auctions as cmd

    ListingFactory(ends_at=timezone.now() + timedelta(hours=2))
    Listing.objects.update(ends_at=timezone.now() - timedelta(seconds=1))

    def broken(*, listing_id):
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(cmd, "auction_close", broken)
    code, _, err = run("close_auctions")
    assert code == 1
    assert "database hiccup" in err


def test_close_auctions_skips_a_suspended_sellers_listing():
    from accounts.models import User

    listing = ListingFactory(ends_at=timezone.now() + timedelta(hours=2))
    Listing.objects.update(ends_at=timezone.now() - timedelta(seconds=1))
    User.objects.filter(pk=listing.seller_id).update(status="suspended")
    code, out, _ = run("close_auctions")
    assert code == 0 and "closed 0" in out
    User.objects.filter(pk=listing.seller_id).update(status="active")
    assert run("close_auctions")[1].startswith("closed 1")


def test_expire_transactions_cancels_unpaid_past_due(settings):
    txn = sold_transaction()
    fresh = sold_transaction()
    Transaction.objects.filter(pk=txn.pk).update(
        payment_due_at=timezone.now() - timedelta(minutes=1))
    code, out, _ = run("expire_transactions")
    assert code == 0 and "cancelled 1 unpaid" in out
    assert Transaction.objects.get(pk=txn.pk).status == "cancelled"
    assert Transaction.objects.get(pk=fresh.pk).status == "pending_payment"


def test_expire_transactions_exits_1_on_a_failure(monkeypatch):
    txn = sold_transaction()
    Transaction.objects.filter(pk=txn.pk).update(
        payment_due_at=timezone.now() - timedelta(minutes=1))

    def broken(*, transaction_id):
        raise RuntimeError("lock timeout")

    monkeypatch.setattr(services, "transaction_expire_unpaid", broken)
    code, _, err = run("expire_transactions")
    assert code == 1 and "lock timeout" in err


# --- seed_demo ----------------------------------------------------------------------------------

def test_seed_demo_bulk_listings_and_idempotent(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    code, out, _ = run("seed_demo", "--listings", "500", "--batch-size", "200")
    assert code == 0, out
    assert Listing.objects.filter(title__startswith="[demo]").count() == 500
    # only the first demo items carry photos; the bulk rows are plain
    assert Listing.objects.filter(images__isnull=False).distinct().count() == 12
    code, _, _ = run("seed_demo", "--listings", "500")
    assert code == 0
    assert Listing.objects.filter(title__startswith="[demo]").count() == 500


def test_seed_demo_refuses_bad_sizes():
    assert run("seed_demo", "--listings", "-1")[0] == 1
    assert run("seed_demo", "--batch-size", "0")[0] == 1


# --- schedules ------------------------------------------------------------------------------

def test_expired_tokens_are_flushed_on_a_schedule():
    from accounts import tasks

    schedule = {v["task"] for v in django_settings.CELERY_BEAT_SCHEDULE.values()}
    assert "accounts.tasks.jwt_flush_expired" in schedule
    assert callable(tasks.jwt_flush_expired)
