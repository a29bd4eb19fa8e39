"""The double-entry ledger: balanced journals, balances, and the books check.

Signs: debits positive, credits negative; every journal sums to zero, so every transaction's
rows (and the whole ledger) sum to zero. One journal per (transaction, kind): the unique
(transaction, kind, account) constraint makes a retried release or payout write nothing new.

Journals (amounts of the transaction):
- funds_held: provider_cash +total (buyer)     / escrow −total (seller)
- release:    escrow +total (seller)           / seller_payable −payout (seller),
              commission −fee, escrow_fee −escrow fee
- payout:     seller_payable +payout (seller)  / payouts −payout (seller)
- refund:     escrow +total (seller)           / refunds −total (buyer)
- split:      escrow +total (seller)           / refunds −refunded (buyer),
              seller_payable −payout (seller), commission −fee, escrow_fee −escrow fee
  (a dispute resolved with a partial refund; payout = total − refunded − fees, and the
  payout journal then pays that out as usual)

So `-sum(escrow)` is the money held, `-sum(seller_payable)` a seller's available balance and
`-sum(payouts)` what they were paid.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db.models import Sum

from escrow.models import LedgerAccount, LedgerEntry, Transaction

HELD_STATUSES = (Transaction.Status.IN_ESCROW, Transaction.Status.DISPUTED)


class UnbalancedJournal(ValueError):
    pass


def journal_post(*, txn: Transaction, kind: str,
                 lines: list[tuple[str, object, int]]) -> bool:
    """Write one balanced journal `[(account, user_id, amount)]`; False if it already exists.

    Call inside the transaction that made the state change (the caller holds the
    transaction's row lock or won its conditional update), so the books move with it.
    """
    lines = [line for line in lines if line[2] != 0]
    if sum(amount for _, _, amount in lines) != 0:
        raise UnbalancedJournal(f"{kind} journal of {txn.pk} does not sum to zero")
    if LedgerEntry.objects.filter(transaction=txn, kind=kind).exists():
        return False
    journal_id = uuid.uuid4()
    LedgerEntry.objects.bulk_create([
        LedgerEntry(journal_id=journal_id, transaction=txn, kind=kind, account=account,
                    user_id=user_id, amount_cents=amount, currency=txn.currency)
        for account, user_id, amount in lines
    ])
    return True


def journal_funds_held(txn: Transaction) -> bool:
    return journal_post(txn=txn, kind=LedgerEntry.Kind.FUNDS_HELD, lines=[
        (LedgerAccount.PROVIDER_CASH, txn.buyer_id, txn.total_charged_cents),
        (LedgerAccount.ESCROW, txn.seller_id, -txn.total_charged_cents),
    ])


def journal_release(txn: Transaction) -> bool:
    return journal_post(txn=txn, kind=LedgerEntry.Kind.RELEASE, lines=[
        (LedgerAccount.ESCROW, txn.seller_id, txn.total_charged_cents),
        (LedgerAccount.SELLER_PAYABLE, txn.seller_id, -txn.seller_payout_cents),
        (LedgerAccount.COMMISSION, None, -txn.fee_cents),
        (LedgerAccount.ESCROW_FEE, None, -txn.escrow_fee_cents),
    ])


def journal_payout(txn: Transaction) -> bool:
    return journal_post(txn=txn, kind=LedgerEntry.Kind.PAYOUT, lines=[
        (LedgerAccount.SELLER_PAYABLE, txn.seller_id, txn.seller_payout_cents),
        (LedgerAccount.PAYOUTS, txn.seller_id, -txn.seller_payout_cents),
    ])


def journal_refund(txn: Transaction) -> bool:
    return journal_post(txn=txn, kind=LedgerEntry.Kind.REFUND, lines=[
        (LedgerAccount.ESCROW, txn.seller_id, txn.total_charged_cents),
        (LedgerAccount.REFUNDS, txn.buyer_id, -txn.total_charged_cents),
    ])


def journal_split(txn: Transaction) -> bool:
    """A partial refund and the release of the rest, as one journal (a dispute split).

    Call after `txn.refunded_cents` and `txn.seller_payout_cents` were set by the split:
    the escrow gives up the whole amount held, the buyer gets `refunded_cents`, the platform
    its fees and the seller owes-to line the remainder."""
    if not 0 < txn.refunded_cents < txn.total_charged_cents:
        raise UnbalancedJournal(f"split journal of {txn.pk}: refunded_cents must be between "
                                "0 and the amount held")
    return journal_post(txn=txn, kind=LedgerEntry.Kind.SPLIT, lines=[
        (LedgerAccount.ESCROW, txn.seller_id, txn.total_charged_cents),
        (LedgerAccount.REFUNDS, txn.buyer_id, -txn.refunded_cents),
        (LedgerAccount.SELLER_PAYABLE, txn.seller_id, -txn.seller_payout_cents),
        (LedgerAccount.COMMISSION, None, -txn.fee_cents),
        (LedgerAccount.ESCROW_FEE, None, -txn.escrow_fee_cents),
    ])


def account_balance(*, account: str, user_id=None) -> int:
    """Sum of an account's rows (debit positive), optionally for one user."""
    qs = LedgerEntry.objects.filter(account=account)
    if user_id is not None:
        qs = qs.filter(user_id=user_id)
    return qs.aggregate(total=Sum("amount_cents"))["total"] or 0


@dataclass(frozen=True, slots=True)
class BooksReport:
    unbalanced_journals: list[tuple[str, int]]
    unbalanced_transactions: list[tuple[str, int]]
    escrow_held_cents: int
    escrow_expected_cents: int

    @property
    def ok(self) -> bool:
        return (not self.unbalanced_journals and not self.unbalanced_transactions
                and self.escrow_held_cents == self.escrow_expected_cents)

    def problems(self) -> list[str]:
        lines = [f"journal {j} sums to {s}" for j, s in self.unbalanced_journals]
        lines += [f"transaction {t} sums to {s}" for t, s in self.unbalanced_transactions]
        if self.escrow_held_cents != self.escrow_expected_cents:
            lines.append(f"escrow balance {self.escrow_held_cents} != "
                         f"{self.escrow_expected_cents} held by transactions in escrow")
        return lines


def books_check() -> BooksReport:
    """Every journal and every transaction sums to zero; the escrow account holds exactly the
    amounts of the transactions in `in_escrow` or `disputed`."""
    journals = (LedgerEntry.objects.values("journal_id").annotate(total=Sum("amount_cents"))
                .exclude(total=0).values_list("journal_id", "total"))
    txns = (LedgerEntry.objects.values("transaction_id").annotate(total=Sum("amount_cents"))
            .exclude(total=0).values_list("transaction_id", "total"))
    expected = (Transaction.objects.filter(status__in=HELD_STATUSES)
                .aggregate(total=Sum("total_charged_cents"))["total"] or 0)
    return BooksReport(
        unbalanced_journals=[(str(j), t) for j, t in journals],
        unbalanced_transactions=[(str(x), t) for x, t in txns],
        escrow_held_cents=-account_balance(account=LedgerAccount.ESCROW),
        escrow_expected_cents=expected,
    )
