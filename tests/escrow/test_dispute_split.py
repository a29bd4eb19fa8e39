"""A dispute resolved with a split: a partial refund to the buyer, the rest released to the
seller less the usual fees, the books balanced, the provider called once, audited."""

from __future__ import annotations

import pytest
from rest_framework.exceptions import ValidationError

from accounts.models import Wallet
from biddt.core.models import AuditEntry
from escrow import ledger, reconcile, services
from escrow.models import Dispute, LedgerEntry, Transaction
from escrow.payments import GatewayError, SimulatedGateway
from tests.escrow.helpers import assert_books_balanced, journal_kinds
from tests.factories import UserFactory, sold_transaction

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _simulated(settings):
    settings.BIDDT_PAYMENTS_BACKEND = "simulated"


@pytest.fixture
def provider_refunds(monkeypatch):
    """The partial refunds asked of the (simulated) provider, as (transaction, cents)."""
    calls: list[tuple[str, int]] = []
    real = SimulatedGateway.create_partial_refund

    def record(self, txn, *, amount_cents):
        calls.append((str(txn.pk), amount_cents))
        return real(self, txn, amount_cents=amount_cents)

    monkeypatch.setattr(SimulatedGateway, "create_partial_refund", record)
    return calls


@pytest.fixture
def dispute():
    txn = sold_transaction(amount_cents=10000)
    services.transaction_pay(user=txn.buyer, transaction_id=txn.pk)
    return services.dispute_open(user=txn.buyer, transaction_id=txn.pk, reason="cracked")


def split_lines(txn) -> dict[str, int]:
    return {account: amount for account, amount in LedgerEntry.objects.filter(
        transaction=txn, kind="split").values_list("account", "amount_cents")}


def test_split_30_70_refunds_part_releases_the_rest_and_balances_the_books(
        dispute, provider_refunds, django_capture_on_commit_callbacks):
    staff = UserFactory(display_name="Support Sue", is_staff=True)
    txn = dispute.transaction
    Wallet.objects.create(user=txn.seller, status=Wallet.Status.ACTIVE,
                          stripe_account_id="acct_sim_seller")
    fees = txn.fee_cents + txn.escrow_fee_cents

    # when staff split it: $30.00 back to the buyer, the rest released
    with django_capture_on_commit_callbacks(execute=True):
        result = services.dispute_resolve_split(dispute_id=dispute.pk, staff_user=staff,
                                                refund_cents=3000, note="both at fault")

    # then the dispute is closed as split and the transaction released with the new payout
    assert result.status == Dispute.Status.SPLIT
    assert result.resolution_note == "both at fault" and result.resolved_by == staff
    txn.refresh_from_db()
    assert txn.status == Transaction.Status.RELEASED
    assert txn.refunded_cents == 3000
    assert txn.seller_payout_cents == 7000 - fees
    assert txn.refund_id.startswith("re_part_sim_")
    # the split journal: escrow gives up all it held, the buyer gets 30, fees, seller the rest
    assert split_lines(txn) == {
        "escrow": 10000, "refunds": -3000, "seller_payable": -(7000 - fees),
        "commission": -txn.fee_cents, "escrow_fee": -txn.escrow_fee_cents}
    # and the remainder was paid out (the payout task ran after commit)
    assert txn.payout_status == Transaction.PayoutStatus.PAID
    assert journal_kinds(txn) == ["funds_held", "payout", "split"]
    assert ledger.account_balance(account="payouts", user_id=txn.seller_id) == -(7000 - fees)
    assert ledger.account_balance(account="refunds", user_id=txn.buyer_id) == -3000
    assert_books_balanced()
    # the provider refunded once, the partial amount
    assert provider_refunds == [(str(txn.pk), 3000)]
    # audited with the money movement
    entry = AuditEntry.objects.get(action="dispute.resolve_split")
    assert entry.actor == staff and entry.reason == "both at fault"
    assert entry.after["refund_cents"] == 3000
    assert entry.after["seller_payout_cents"] == 7000 - fees
    # the simulated reconciliation sees the partial refund as the ledger does
    report = reconcile.reconcile(backend="simulated")
    assert report.ok, report.differences


def test_split_again_or_after_another_decision_changes_nothing(dispute, provider_refunds):
    staff = UserFactory(is_staff=True)
    services.dispute_resolve_split(dispute_id=dispute.pk, staff_user=staff, refund_cents=3000,
                                   note="n")
    again = services.dispute_resolve_split(dispute_id=dispute.pk, staff_user=staff,
                                           refund_cents=5000, note="twice")
    assert again.status == Dispute.Status.SPLIT and again.resolution_note == "n"
    assert len(provider_refunds) == 1
    assert LedgerEntry.objects.filter(kind="split").count() == 5
    assert AuditEntry.objects.filter(action="dispute.resolve_split").count() == 1
    assert_books_balanced()


def test_split_retried_after_a_provider_failure_refunds_once(dispute, monkeypatch):
    staff = UserFactory(is_staff=True)
    calls = []

    def flaky(self, txn, *, amount_cents):
        calls.append(amount_cents)
        if len(calls) == 1:
            raise GatewayError("connection reset")
        return "re_part_sim_ok"

    monkeypatch.setattr(SimulatedGateway, "create_partial_refund", flaky)
    with pytest.raises(GatewayError):
        services.dispute_resolve_split(dispute_id=dispute.pk, staff_user=staff,
                                       refund_cents=3000, note="n")
    dispute.refresh_from_db()
    assert dispute.status == Dispute.Status.OPEN
    assert not LedgerEntry.objects.filter(kind="split").exists()
    assert_books_balanced()
    services.dispute_resolve_split(dispute_id=dispute.pk, staff_user=staff, refund_cents=3000,
                                   note="n")
    assert Transaction.objects.get(pk=dispute.transaction_id).refund_id == "re_part_sim_ok"
    assert_books_balanced()


@pytest.mark.parametrize(("refund", "why"), [
    (0, "more than 0"), (-5, "more than 0"), (10000, "less than"), (12000, "less than"),
    (9500, "more than the fees"),
])
def test_split_refuses_amounts_that_are_not_a_split(dispute, provider_refunds, refund, why):
    with pytest.raises(ValidationError) as exc:
        services.dispute_resolve_split(dispute_id=dispute.pk, staff_user=UserFactory(is_staff=True),
                                       refund_cents=refund, note="n")
    assert why in str(exc.value.detail["refund_cents"][0])
    assert exc.value.detail["refund_cents"][0].code == "out_of_range"
    assert provider_refunds == []
    assert Dispute.objects.get(pk=dispute.pk).status == Dispute.Status.OPEN


def test_split_needs_a_note(dispute, provider_refunds):
    with pytest.raises(ValidationError) as exc:
        services.dispute_resolve_split(dispute_id=dispute.pk, staff_user=UserFactory(is_staff=True),
                                       refund_cents=3000, note="  ")
    assert exc.value.detail["note"][0].code == "blank"
    assert provider_refunds == []


def test_split_journal_refuses_a_refund_outside_the_amount_held(dispute):
    txn = dispute.transaction
    txn.refunded_cents = 0
    with pytest.raises(ledger.UnbalancedJournal):
        ledger.journal_split(txn)


def test_one_decision_at_a_time_per_dispute(dispute, provider_refunds):
    from django.core.cache import cache

    from escrow.services.dispute import DisputeBusy

    # given another staff member is deciding the dispute (their claim is held)
    cache.add(f"dispute-deciding:{dispute.pk}", 1, timeout=60)
    try:
        # then a split, a release and a refund by someone else are refused, untouched
        for call in (
            lambda: services.dispute_resolve_split(dispute_id=dispute.pk,
                                                   staff_user=UserFactory(is_staff=True),
                                                   refund_cents=3000, note="n"),
            lambda: services.dispute_resolve_release(dispute_id=dispute.pk,
                                                     staff_user=UserFactory(is_staff=True),
                                                     note="n"),
            lambda: services.dispute_resolve_refund(dispute_id=dispute.pk,
                                                    staff_user=UserFactory(is_staff=True),
                                                    note="n"),
        ):
            with pytest.raises(DisputeBusy):
                call()
    finally:
        cache.delete(f"dispute-deciding:{dispute.pk}")
    assert provider_refunds == []
    assert Dispute.objects.get(pk=dispute.pk).status == Dispute.Status.OPEN
    # and once it is free, the decision goes through (the claim is released afterwards)
    services.dispute_resolve_release(dispute_id=dispute.pk, staff_user=UserFactory(is_staff=True),
                                     note="n")
    assert Dispute.objects.get(pk=dispute.pk).status == Dispute.Status.RELEASED
    assert cache.get(f"dispute-deciding:{dispute.pk}") is None
