"""Celery workers SIGKILLed mid-work: closings and payouts still happen exactly once.

Real `celery -A biddt worker` processes (prefork, concurrency 2, acks_late as configured) on
PostgreSQL and a private redis-server broker. The test picks the kill moment by polling the
database (or, for payouts, a provider stub that holds one answer), kills the worker's whole
process group with SIGKILL, starts a fresh worker and queues the periodic task again, as beat
would. Then it checks that nothing was skipped and nothing was done twice.

Two things a dead worker leaves behind are simulated rather than waited for: messages it held
unacknowledged come back only after the broker's visibility timeout (an hour in settings), and
`payouts_retry` leaves a payout alone for 10 minutes after its last change. The test moves
those clocks on (`Broker.redeliver_unacked`, backdating `updated_at`) instead of sleeping.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db.models import F
from django.utils import timezone

from accounts.models import Wallet
from accounts.services import device_register
from bidding import selectors
from bidding import services as bidding_services
from bidding.services import bid_place
from escrow import services as escrow_services
from escrow.ledger import books_check
from escrow.models import LedgerEntry, Transaction
from escrow.payments import PaymentIntentInfo, idempotency_key
from escrow.services import handoff as escrow_handoff
from listings.models import Listing
from notifications.models import Notification
from tests.chaos.worker_support import (
    Broker,
    ConnectStub,
    WorkerLauncher,
    pushed_ids,
    wait_idle,
    wait_until,
)
from tests.factories import ListingFactory, UserFactory, sold_transaction

pytestmark = [pytest.mark.postgres, pytest.mark.integration,
              pytest.mark.django_db(transaction=True)]

SWEEP = "bidding.tasks.auction_close_due"
REDELIVER = "notifications.tasks.notifications_redeliver"
CLOSE_TYPES = ("won", "lost", "auction_ended")


@pytest.fixture
def broker(redis_server, transactional_db):
    """A private redis-server as the Celery broker (its default queue is ours alone)."""
    broker = Broker(redis_server().url)
    yield broker
    broker.close()


@pytest.fixture
def launch(broker, tmp_path, transactional_db):
    """`launch(env=None)` → a WorkerLauncher on `broker`; every worker is killed at the end,
    before the test database is flushed."""
    launchers: list[WorkerLauncher] = []

    def make(env: dict[str, str] | None = None) -> WorkerLauncher:
        launcher = WorkerLauncher(broker_url=broker.url, work_dir=tmp_path, env=env)
        launchers.append(launcher)
        return launcher

    yield make
    for launcher in launchers:
        launcher.kill_all()


# --- 1. Closing sweep ------------------------------------------------------------------------

N_AUCTIONS = 300


def _due_auctions(n: int, monkeypatch) -> dict:
    """`n` auctions already past their end: a third sold (bids, no reserve), a third below
    reserve (bids), a third without bids. Returns what each close must produce."""
    sellers = [UserFactory() for _ in range(10)]
    bidders = [UserFactory() for _ in range(20)]
    ids = []
    with monkeypatch.context() as patch:
        # the `outbid` notification tasks of the setup's bids are not under test: skip them
        patch.setattr(bidding_services, "task_on_commit", lambda *args, **kwargs: None)
        for i in range(n):
            kind = i % 3
            listing = ListingFactory(seller=sellers[i % 10], starting_price_cents=1000,
                                     reserve_price_cents=(None, 1_000_000, 5000)[kind])
            for j in range((2 + i % 2, 1 + i % 2, 0)[kind]):
                bid_place(listing_id=listing.pk, bidder=bidders[(i + 3 * j) % 20],
                          amount_cents=1000 + 300 * j + (i % 50) * 10)
            ids.append(listing.pk)
    Listing.objects.filter(pk__in=ids).update(ends_at=timezone.now() - timedelta(minutes=1))
    # every user has a phone, so every close notification is pushed (and claimed) by a task
    for user in sellers + bidders:
        device_register(user=user, token=f"chaos-token-{user.pk}", platform="android")

    expected = {}
    for listing in Listing.objects.filter(pk__in=ids):
        sold = listing.leader_id is not None and (
            listing.reserve_price_cents is None
            or listing.current_price_cents >= listing.reserve_price_cents)
        key = str(listing.pk)
        notes = {(listing.seller_id, "auction_ended", f"auction_ended:{key}")}
        notes |= {(b, "lost", f"lost:{key}")
                  for b in selectors.bidders_of(listing_id=listing.pk)
                  if not (sold and b == listing.leader_id)}
        if sold:
            notes.add((listing.leader_id, "won", f"won:{key}"))
        expected[listing.pk] = {
            "status": "sold" if sold else "unsold", "seq": listing.seq + 1,
            "buyer": listing.leader_id if sold else None,
            "price": listing.current_price_cents if sold else None, "notes": notes,
        }
    kinds = Counter(e["status"] for e in expected.values())
    assert kinds["sold"] >= n // 3 and kinds["unsold"] >= n // 3, kinds
    return expected


def _closed(expected: dict) -> int:
    return Listing.objects.filter(pk__in=expected).exclude(status="active").count()


def _close_notifications(expected: dict) -> list[tuple]:
    """(user, type, dedupe_key, id, push_claimed_at) of every won/lost/auction_ended row."""
    keys = [f"{t}:{pk}" for pk in expected for t in CLOSE_TYPES]
    return list(Notification.objects.filter(type__in=CLOSE_TYPES, dedupe_key__in=keys)
                .values_list("user_id", "type", "dedupe_key", "id", "push_claimed_at"))


def _assert_each_close_whole(expected: dict) -> int:
    """Every auction is either untouched or closed with all of its effects, once: status and
    `seq + 1`, one transaction at the final price iff sold, the seller's `auction_ended`, the
    winner's `won`, one `lost` per other bidder. Returns how many are closed."""
    rows = {pk: (status, seq, closed_at) for pk, status, seq, closed_at in
            Listing.objects.filter(pk__in=expected).values_list("pk", "status", "seq",
                                                                "closed_at")}
    txns = Counter()
    txn_of = {}
    for listing_id, buyer_id, amount, source in Transaction.objects.filter(
            listing_id__in=expected).values_list("listing_id", "buyer_id", "amount_cents",
                                                 "source"):
        txns[listing_id] += 1
        txn_of[listing_id] = (buyer_id, amount, source)
    notes_of: dict = {pk: Counter() for pk in expected}
    listing_of_key = {f"{t}:{pk}": pk for pk in expected for t in CLOSE_TYPES}
    for user_id, type_, key, _, _ in _close_notifications(expected):
        notes_of[listing_of_key[key]][(user_id, type_, key)] += 1

    closed = 0
    for pk, want in expected.items():
        status, seq, closed_at = rows[pk]
        if status == "active":
            assert seq == want["seq"] - 1, f"{pk}: seq moved without a close"
            assert txns[pk] == 0 and not notes_of[pk], f"{pk}: effects of a close that isn't"
            continue
        closed += 1
        assert (status, seq) == (want["status"], want["seq"]), (pk, status, seq, want)
        assert closed_at is not None
        if want["buyer"]:
            assert txns[pk] == 1, f"{pk}: {txns[pk]} transactions"
            assert txn_of[pk] == (want["buyer"], want["price"], "auction"), (pk, txn_of[pk])
        else:
            assert txns[pk] == 0, f"{pk}: unsold with a transaction"
        assert set(notes_of[pk]) == want["notes"], (pk, notes_of[pk], want["notes"])
        assert max(notes_of[pk].values()) == 1
    return closed


def test_worker_killed_while_closing_and_while_notifying(broker, launch, monkeypatch):
    # given 300 auctions past their end, with bids (sold, below reserve) and without
    expected = _due_auctions(N_AUCTIONS, monkeypatch)
    n = len(expected)
    # the delivery sweep takes every unhandled row when the test sends it (beat isn't running)
    workers = launch(env={"BIDDT_NOTIFY_REDELIVER_AFTER_SECONDS": "0"})

    # when a worker runs the sweep (as beat queues it) and is SIGKILLed part-way through
    first = workers.start()
    broker.send(SWEEP)
    wait_until(lambda: _closed(expected) >= n // 5, what="the first sweep to close some",
               timeout=90, interval=0.005, on_timeout=workers.logs)
    first.kill()
    closed_by_first = _assert_each_close_whole(expected)
    # then some are closed, each completely, and the rest untouched (no half-closed auction)
    assert 0 < closed_by_first < n, closed_by_first
    # ... and the killed sweep's message is still held by the broker (acks_late), not lost
    assert SWEEP in {m.task for m in broker.unacked()}, broker.unacked()

    # when a fresh worker starts, beat queues the sweep again, and that worker is killed too
    # while it pushes the notifications of the closes (the backlog the first one left)
    second = workers.start()
    broker.send(SWEEP)
    pushed_at_restart = len(pushed_ids(workers.push_log))
    wait_until(lambda: len(pushed_ids(workers.push_log)) >= pushed_at_restart + 20,
               what="the second worker to push notifications", timeout=90, interval=0.005,
               on_timeout=workers.logs)
    second.kill()
    _assert_each_close_whole(expected)
    unfinished = [c for *_, c in _close_notifications(expected) if c is None]
    assert unfinished or _closed(expected) < n, "the fan-out had finished: no kill mid-way"

    # when, after the visibility timeout, the broker hands the dead workers' messages back,
    # a third worker starts and beat queues the sweep again
    stranded = broker.unacked()
    broker.redeliver_unacked()
    workers.start()
    broker.send(SWEEP)
    wait_until(lambda: _closed(expected) == n, what="every auction to close", timeout=90,
               on_timeout=workers.logs)
    wait_idle(broker, what="the workers to finish the fan-out", on_timeout=workers.logs)

    # then every auction closed exactly once, none skipped: one status change (seq + 1), one
    # transaction per sold auction at the final price, won/lost/auction_ended once each
    assert _assert_each_close_whole(expected) == n
    sold = sum(1 for e in expected.values() if e["buyer"])
    assert Transaction.objects.filter(listing_id__in=expected).count() == sold
    notes = _close_notifications(expected)
    assert len(notes) == sum(len(e["notes"]) for e in expected.values())

    # and no notification was pushed twice, though push tasks were killed, redelivered and
    # re-queued: each push claims its row with a conditional UPDATE before sending
    pushes = Counter(pushed_ids(workers.push_log))
    assert [i for i, c in pushes.items() if c > 1] == []
    claimed = {str(i) for *_, i, c in notes if c is not None}
    assert set(pushes) <= claimed
    never_handed_off = {str(i) for *_, i, c in notes if c is None}

    # when the delivery sweep runs (beat, every minute): rows no delivery task handled had
    # their hand-off lost with a killed process (a batch of closes not yet flushed, a task
    # popped but not recorded as unacked); it queues them again
    broker.send(REDELIVER)
    wait_until(lambda: not Notification.objects.filter(
        pk__in=[i for *_, i, _ in notes], delivery_handled_at__isnull=True).exists(),
        what="the sweep to hand every notification to delivery", timeout=90,
        on_timeout=workers.logs)
    wait_idle(broker, what="the re-queued deliveries", on_timeout=workers.logs)

    # then every close notification is claimed for push, and none was pushed twice
    notes = _close_notifications(expected)
    assert [i for *_, i, c in notes if c is None] == []
    pushes = Counter(pushed_ids(workers.push_log))
    assert [i for i, c in pushes.items() if c > 1] == []
    # What a kill may still cost is a push claimed but not sent: a push task killed between
    # its claim and the provider call (at most one per pool process per kill). Pushes are
    # at most once per notification and, but for that window, at least once.
    claimed = {str(i) for *_, i, _ in notes}
    lost_in_flight = claimed - set(pushes)
    assert len(lost_in_flight) <= 2 * workers.concurrency, lost_in_flight
    print(f"closed by the first worker: {closed_by_first}/{n}; stranded by kills: "
          f"{Counter(m.task for m in stranded)}; pushes {sum(pushes.values())} of {len(notes)}: "
          f"hand-offs lost and re-queued by the sweep {len(never_handed_off)}, claimed but "
          f"not sent {len(lost_in_flight)}")


# --- 2. Payouts --------------------------------------------------------------------------------

N_PAYOUTS = 90
PAYOUT = "escrow.tasks.payout_send"


def _released_transactions(n: int, monkeypatch) -> list[Transaction]:
    """`n` sales paid, handed over (QR scan) and released through the services, against the
    stripe backend; the payout tasks the releases queue are kept, not run here."""
    queued: list[tuple[str, tuple]] = []
    monkeypatch.setattr(escrow_handoff, "task_on_commit",
                        lambda task, *args, **kwargs: queued.append((task.name, args)))
    sellers = [UserFactory() for _ in range(15)]
    buyers = [UserFactory() for _ in range(15)]
    for i, seller in enumerate(sellers):
        Wallet.objects.create(user=seller, stripe_account_id=f"acct_chaos{i:04d}",
                              status=Wallet.Status.ACTIVE, charges_enabled=True,
                              payouts_enabled=True, details_submitted=True)
    pks = []
    for i in range(n):
        txn = sold_transaction(amount_cents=2000 + 37 * i, buyer=buyers[i % 15],
                               seller=sellers[i % 15])
        pi = PaymentIntentInfo(id=f"pi_chaos{i:05d}", client_secret="", status="succeeded",
                               amount=txn.total_charged_cents, currency=txn.currency.lower(),
                               metadata={"transaction_id": str(txn.pk)})
        Transaction.objects.filter(pk=txn.pk).update(payment_intent_id=pi.id)
        assert escrow_services.payment_succeeded_apply(payment_intent=pi)
        code, _ = escrow_services.qr_issue(user=txn.buyer, transaction_id=txn.pk)
        escrow_services.escrow_release(user=txn.seller, transaction_id=txn.pk, code=code)
        pks.append(txn.pk)
    assert sorted(queued) == sorted((PAYOUT, (str(pk),)) for pk in pks)
    txns = list(Transaction.objects.filter(pk__in=pks).select_related("seller__wallet"))
    assert {(t.status, t.payout_status, t.payment_backend) for t in txns} == {
        ("released", "none", "stripe")}
    return txns


def _payout_states(pks) -> Counter:
    return Counter(Transaction.objects.filter(pk__in=pks).values_list("payout_status",
                                                                      flat=True))


@pytest.fixture
def stub():
    """The Connect stub; it holds back the answer of one Transfer a third of the way in."""
    server = ConnectStub(hold_after=N_PAYOUTS // 3)
    yield server
    server.close()


def test_worker_killed_during_payouts_pays_each_once(broker, launch, settings, monkeypatch,
                                                     stub):
    stripe_env = {"BIDDT_PAYMENTS_BACKEND": "stripe", "STRIPE_SECRET_KEY": "sk_test_chaos",
                  "STRIPE_WEBHOOK_SECRET": "whsec_chaos", "STRIPE_API_BASE": stub.url}
    settings.BIDDT_PAYMENTS_BACKEND = "stripe"
    settings.STRIPE_SECRET_KEY = stripe_env["STRIPE_SECRET_KEY"]
    settings.STRIPE_WEBHOOK_SECRET = stripe_env["STRIPE_WEBHOOK_SECRET"]
    settings.STRIPE_API_BASE = stub.url
    # given 90 released transactions (escrow released, payout due) of sellers with active
    # Stripe Express accounts
    txns = _released_transactions(N_PAYOUTS, monkeypatch)
    pks = [t.pk for t in txns]
    workers = launch(env=stripe_env)

    # when a worker sends the payouts and is SIGKILLed while Stripe is answering one of them:
    # the Transfer exists at the provider, the worker never learns its id
    first = workers.start()
    for pk in pks:
        broker.send(PAYOUT, str(pk))
    wait_until(stub.held.is_set, what="a transfer to be in flight", timeout=90,
               on_timeout=workers.logs)
    first.kill()
    stub.release()
    held_pk = stub.held_transfer["transfer_group"]
    states = _payout_states(pks)
    # then that payout is left `pending` (claimed, provider called, not booked) ...
    assert Transaction.objects.get(pk=held_pk).payout_status == "pending"
    assert 0 < states["paid"] < N_PAYOUTS, states
    # ... its message is still held by the broker (acks_late), and the rest are still queued
    stranded = broker.unacked()
    assert {m.task for m in stranded} == {PAYOUT}
    assert held_pk in {m.args[0] for m in stranded}
    assert broker.queued() > 0

    # when a fresh worker starts: it drains the queue, but the killed runs stay unpaid
    workers.start()
    wait_until(lambda: broker.queued() == 0 and len(broker.unacked()) == len(stranded),
               what="the second worker to drain the queue", timeout=90,
               on_timeout=workers.logs)
    unpaid = dict(Transaction.objects.filter(pk__in=pks).exclude(payout_status="paid")
                  .values_list("pk", "payout_status"))
    unpaid = {str(pk): state for pk, state in unpaid.items()}
    assert unpaid[held_pk] == "pending", unpaid
    # A payout can also be left `none` with no message anywhere: kombu's Redis transport pops
    # a message and records it as unacked in two steps, and a kill in between loses it.
    # Only `payouts_retry` (not the broker's redelivery) recovers that one.
    lost_messages = set(unpaid) - {m.args[0] for m in stranded}
    assert all(unpaid[pk] == "none" for pk in lost_messages), unpaid

    # when beat runs `payouts_retry` once the killed runs are over 10 minutes old
    Transaction.objects.filter(pk__in=unpaid).update(
        updated_at=F("updated_at") - timedelta(minutes=15))
    broker.send("escrow.tasks.payouts_retry")
    wait_until(lambda: _payout_states(pks)["paid"] == N_PAYOUTS,
               what="payouts_retry to finish every payout", timeout=60,
               on_timeout=lambda: f"{_payout_states(pks)}\n{workers.logs()}")
    # ... and, after the visibility timeout, the broker redelivers the killed messages too
    broker.redeliver_unacked()
    wait_idle(broker, what="the redelivered payouts to run", on_timeout=workers.logs)

    # then every transaction is paid out, with the id of the one Transfer Stripe made for it
    requests, created = stub.snapshot()
    by_group = {t["transfer_group"]: t for t in created}
    assert Counter(t["transfer_group"] for t in created) == Counter(str(pk) for pk in pks)
    for txn in Transaction.objects.filter(pk__in=pks).select_related("seller__wallet"):
        transfer = by_group[str(txn.pk)]
        assert (txn.status, txn.payout_status, txn.payout_transfer_id) == (
            "released", "paid", transfer["id"])
        assert (transfer["amount"], transfer["destination"]) == (
            txn.seller_payout_cents, txn.seller.wallet.stripe_account_id)
    # every call for a transaction, first or repeated, carried that transaction's key
    keys = {(r["data"]["transfer_group"], r["idempotency_key"]) for r in requests}
    assert keys == {(str(pk), idempotency_key("transfer", pk)) for pk in pks}
    calls = Counter(r["data"]["transfer_group"] for r in requests)
    assert calls[held_pk] >= 2  # the retry repeated the call and got the same Transfer

    # and the books balance: one payout journal per transaction, nothing booked twice
    assert Counter(LedgerEntry.objects.filter(transaction_id__in=pks, kind="payout")
                   .values_list("transaction_id", flat=True)) == Counter({pk: 2 for pk in pks})
    report = books_check()
    assert report.ok, report.problems()
    call_command("ledger_check")
    print(f"paid before the kill: {states['paid']}/{N_PAYOUTS}; stranded: "
          f"{[m.args[0] for m in stranded]}; unpaid after the restart: {unpaid} (message lost: "
          f"{sorted(lost_messages)}); "
          f"transfer calls {len(requests)} for {len(created)} transfers")
