"""Reconciliation: our ledger's money movements against the payment provider's.

Three movements per transaction can reach the provider: the buyer's charge, a refund and the
seller's transfer (payout). The ledger records each as a journal (`funds_held` debits
`provider_cash`, `refund` credits `refunds`, `payout` credits `payouts`). The provider side:
- `stripe`: by default dj-stripe's mirror of the PaymentIntents, Refunds and Transfers we
  created (escrow.stripe_mirror; `source="mirror"`), or Stripe's balance transactions read
  from the API (`source="api"`), matched to our transactions through the PaymentIntent,
  refund and transfer ids we store;
- `simulated`: there is no provider, so the transactions' own states stand in for it (a
  paid transaction was charged, a refunded one refunded, a paid-out one transferred):
  the check then finds ledger rows missing, doubled or wrong in amount.

A difference is a (transaction, movement) whose amounts differ, or that exists on one side
only. Payment events about an object we don't have (a PaymentIntent no transaction holds, an
account no wallet holds) were acknowledged to the provider so it stops retrying; they are
listed here too. Read-only: nothing is corrected here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Exists, OuterRef, Q, Sum
from django.db.models.fields.json import KT
from djstripe import models as djstripe_models

from accounts.models import Wallet
from escrow.models import LedgerAccount, LedgerEntry, PaymentEvent, Transaction
from escrow.payments import ACCOUNT_EVENTS, PAYMENT_INTENT_EVENTS

CHARGE, REFUND, TRANSFER = "charge", "refund", "transfer"
_LEDGER = {  # movement -> (journal kind, account whose row carries the amount)
    CHARGE: (LedgerEntry.Kind.FUNDS_HELD, LedgerAccount.PROVIDER_CASH),
    REFUND: ((LedgerEntry.Kind.REFUND, LedgerEntry.Kind.SPLIT), LedgerAccount.REFUNDS),
    TRANSFER: (LedgerEntry.Kind.PAYOUT, LedgerAccount.PAYOUTS),
}
Key = tuple[str, str]  # (transaction id, movement)


@dataclass(frozen=True, slots=True)
class Difference:
    transaction_id: str
    movement: str
    ledger_cents: int | None
    provider_cents: int | None

    def __str__(self) -> str:
        def show(v):
            return "missing" if v is None else f"{v} cents"

        return (f"transaction {self.transaction_id} {self.movement}: ledger "
                f"{show(self.ledger_cents)}, provider {show(self.provider_cents)}")


@dataclass
class ReconcileReport:
    backend: str
    compared: int = 0
    differences: list[Difference] = field(default_factory=list)
    unmatched_provider: list[str] = field(default_factory=list)
    unknown_events: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences and not self.unmatched_provider and not self.unknown_events


def unknown_object_events(*, since: datetime | None = None) -> list[str]:
    """Stored payment events whose object matches no transaction or wallet of ours."""
    events = PaymentEvent.objects.annotate(object_id=KT("payload__data__object__id"))
    if since is not None:
        events = events.filter(created_at__gte=since)
    unknown = (
        events.filter(type__in=PAYMENT_INTENT_EVENTS).filter(
            ~Exists(Transaction.objects.filter(payment_intent_id=OuterRef("object_id"))))
        | events.filter(type__in=ACCOUNT_EVENTS).filter(
            ~Exists(Wallet.objects.filter(stripe_account_id=OuterRef("object_id")))))
    return [f"event {event_id} ({etype}, {created:%Y-%m-%d %H:%M}) is about {object_id}, "
            f"which matches nothing here"
            for event_id, etype, object_id, created in unknown.order_by("created_at")
            .values_list("event_id", "type", "object_id", "created_at")]


def ledger_movements(*, since: datetime | None = None) -> dict[Key, int]:
    """Positive cents per (transaction, movement) as the ledger has them."""
    out: dict[Key, int] = {}
    for movement, (kind, account) in _LEDGER.items():
        kinds = kind if isinstance(kind, tuple) else (kind,)  # a split refunds part
        qs = LedgerEntry.objects.filter(kind__in=kinds, account=account)
        if since is not None:
            qs = qs.filter(created_at__gte=since)
        for txn_id, total in (qs.values("transaction_id").annotate(total=Sum("amount_cents"))
                              .values_list("transaction_id", "total")):
            out[(str(txn_id), movement)] = abs(total)
    return out


def _transactions(since: datetime | None):
    qs = Transaction.objects.exclude(status__in=[Transaction.Status.PENDING_PAYMENT,
                                                 Transaction.Status.CANCELLED])
    if since is not None:
        qs = qs.filter(Q(paid_at__gte=since) | Q(updated_at__gte=since))
    return qs


def simulated_movements(*, since: datetime | None = None) -> Iterator[tuple[Key, int]]:
    """What a provider would show for the `simulated` backend, derived from the rows."""
    fields = ("pk", "status", "paid_at", "total_charged_cents", "seller_payout_cents",
              "payout_status", "refunded_cents")
    for pk, status, paid_at, total, payout, payout_status, refunded in (
            _transactions(since).filter(payment_backend="simulated").values_list(*fields)
            .iterator(chunk_size=2000)):
        if paid_at is None:
            continue
        yield (str(pk), CHARGE), total
        if status == Transaction.Status.REFUNDED:
            yield (str(pk), REFUND), total
        elif refunded:
            yield (str(pk), REFUND), refunded
        if payout_status == Transaction.PayoutStatus.PAID:
            yield (str(pk), TRANSFER), payout


def stripe_balance_transactions(*, since: datetime | None = None) -> Iterable[dict[str, Any]]:
    """Stripe's balance transactions (auto-paginated), each with its source expanded."""
    from escrow.payments import StripeGateway

    params: dict[str, Any] = {"limit": 100, "expand": ["data.source"]}
    if since is not None:
        params["created"] = {"gte": int(since.timestamp())}
    client = StripeGateway().client
    for bt in client.v1.balance_transactions.list(params).auto_paging_iter():
        yield bt.to_dict()


def stripe_movements(balance_transactions: Iterable[dict[str, Any]], *,
                     unmatched: list[str]) -> Iterator[tuple[Key, int]]:
    """Map balance transactions to our transactions by the ids we stored."""
    by_pi = dict(Transaction.objects.filter(payment_intent_id__isnull=False)
                 .values_list("payment_intent_id", "pk"))
    by_refund = dict(Transaction.objects.exclude(refund_id="").values_list("refund_id", "pk"))
    by_transfer = dict(Transaction.objects.exclude(payout_transfer_id="")
                       .values_list("payout_transfer_id", "pk"))
    for bt in balance_transactions:
        kind = bt.get("type")
        source = bt.get("source") or {}
        source_id = source.get("id") if isinstance(source, dict) else source
        amount = abs(int(bt.get("amount") or 0))
        if kind in ("charge", "payment"):
            pi = source.get("payment_intent") if isinstance(source, dict) else None
            pk, movement = by_pi.get(pi), CHARGE
        elif kind in ("refund", "payment_refund"):
            pk, movement = by_refund.get(source_id), REFUND
        elif kind == "transfer":
            pk, movement = by_transfer.get(source_id), TRANSFER
        else:
            continue  # fees, payouts to our bank, adjustments: not per transaction
        if pk is None:
            unmatched.append(f"{kind} {source_id} ({amount} cents) matches no transaction")
            continue
        yield (str(pk), movement), amount


def mirror_movements(*, since: datetime | None = None,
                     unmatched: list[str]) -> Iterator[tuple[Key, int]]:
    """Stripe's side as dj-stripe's mirror holds it (escrow.stripe_mirror): succeeded
    PaymentIntents (amount received), succeeded Refunds, Transfers net of reversals; matched
    to our transactions by the ids we stored. No network."""
    by_pi = dict(Transaction.objects.filter(payment_intent_id__isnull=False)
                 .values_list("payment_intent_id", "pk"))
    by_refund = dict(Transaction.objects.exclude(refund_id="").values_list("refund_id", "pk"))
    by_transfer = dict(Transaction.objects.exclude(payout_transfer_id="")
                       .values_list("payout_transfer_id", "pk"))
    sources = (
        (CHARGE, djstripe_models.PaymentIntent, by_pi,
         lambda d: d.get("status") == "succeeded",
         lambda d: d.get("amount_received") or d.get("amount")),
        (REFUND, djstripe_models.Refund, by_refund,
         lambda d: d.get("status") in ("succeeded", "pending"), lambda d: d.get("amount")),
        (TRANSFER, djstripe_models.Transfer, by_transfer, lambda d: True,
         lambda d: int(d.get("amount") or 0) - int(d.get("amount_reversed") or 0)),
    )
    for movement, model, by_id, counts, amount_of in sources:
        rows = model.objects.all()
        if since is not None:
            rows = rows.filter(Q(created__gte=since) | Q(created__isnull=True))
        for object_id, data in rows.values_list("id", "stripe_data").iterator(chunk_size=2000):
            if not counts(data):
                continue
            amount = abs(int(amount_of(data) or 0))
            pk = by_id.get(object_id)
            if pk is None:
                unmatched.append(f"{movement} {object_id} ({amount} cents) matches no "
                                 f"transaction")
                continue
            yield (str(pk), movement), amount


def reconcile(*, backend: str, since: datetime | None = None,
              progress: Callable[[int], None] | None = None,
              balance_transactions: Iterable[dict[str, Any]] | None = None,
              source: str = "mirror") -> ReconcileReport:
    """Compare ledger and provider; `progress(n)` is called as provider rows are read.

    For `stripe`, `source` is `mirror` (dj-stripe's tables, kept by the gateway; no network)
    or `api` (Stripe's balance transactions, read now)."""
    report = ReconcileReport(backend=backend)
    if backend == "stripe" and source == "mirror" and balance_transactions is None:
        provider_rows = mirror_movements(since=since, unmatched=report.unmatched_provider)
    elif backend == "stripe":
        rows = balance_transactions if balance_transactions is not None \
            else stripe_balance_transactions(since=since)
        provider_rows = stripe_movements(rows, unmatched=report.unmatched_provider)
    elif backend == "simulated":
        provider_rows = simulated_movements(since=since)
    else:
        raise ValueError(f"unknown payments backend {backend!r}")
    provider: dict[Key, int] = defaultdict(int)
    for key, amount in provider_rows:
        provider[key] += amount
        if progress is not None:
            progress(1)
    ledger = ledger_movements(since=since)
    if backend == "simulated":  # stripe rows of the ledger are not the simulator's business
        sim = set(str(pk) for pk in Transaction.objects.filter(payment_backend="simulated")
                  .values_list("pk", flat=True))
        ledger = {k: v for k, v in ledger.items() if k[0] in sim}
    else:
        stripe_ids = set(str(pk) for pk in Transaction.objects.filter(payment_backend="stripe")
                         .values_list("pk", flat=True))
        ledger = {k: v for k, v in ledger.items() if k[0] in stripe_ids}
    report.unknown_events = unknown_object_events(since=since)
    keys = sorted(set(ledger) | set(provider))
    report.compared = len(keys)
    for key in keys:
        mine, theirs = ledger.get(key), provider.get(key)
        if mine != theirs:
            report.differences.append(Difference(key[0], key[1], mine, theirs))
    return report
