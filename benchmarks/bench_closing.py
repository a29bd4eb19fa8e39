"""Closing: N auctions due at once, closed by one worker process running auction_sweep.

Loads `--auctions` (default 10,000) active auctions whose end has just passed into the
`<db>_bench_live` database: half have a leader (and the leader's bid) and close `sold`,
creating the sale's transaction and the `won`/`auction_ended` notifications; the other half
close `unsold`. One separate worker process (production settings, a throwaway redis-server as
Celery broker and channel layer, so push tasks and `auction_ended` events are really queued)
calls `bidding.services.auction_sweep()` (what the beat task `auction_close_due` runs) until
nothing is due, and reports closes per second (target >= 200/s). Baseline in the same run: the
same rows reopened and closed by the raw conditional UPDATE alone, one autocommit statement
per row from one connection. Then it checks each auction was closed once (one transaction
per sale). Quick check: `python -m benchmarks bench_closing --auctions=500`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import uuid
from datetime import timedelta

from benchmarks._support import (
    Processes,
    bench_database,
    bid_rows,
    make_users,
    postgres_base_url,
    server_env,
    wipe_auction_data,
)

WORKER = """
import json, sys, time
import django
django.setup()
from bidding.services import auction_sweep
deadline = time.monotonic() + float(sys.argv[1])
closed, sweeps = 0, 0
started = time.perf_counter()
while time.monotonic() < deadline:
    n = auction_sweep()
    sweeps += 1
    closed += n
    if n == 0:
        break
print(json.dumps({"closed": closed, "sweeps": sweeps,
                  "seconds": time.perf_counter() - started}))
"""

RAW_CLOSE = """
UPDATE listings_listing SET
  status = CASE WHEN leader_id IS NOT NULL AND (reserve_price_cents IS NULL
                     OR current_price_cents >= reserve_price_cents) THEN 'sold' ELSE 'unsold' END,
  closed_at = now(), updated_at = now(), seq = seq + 1
WHERE id = %s AND status = 'active' AND ends_at <= now()
"""


def _load(count: int) -> list[uuid.UUID]:
    from django.db import transaction
    from django.utils import timezone

    from bidding.models import Bid
    from listings import rules
    from listings.models import Listing

    sellers = make_users(20, "780")
    buyers = make_users(20, "781")
    now = timezone.now()
    listings, bids = [], []
    for i in range(count):
        sold = i % 2 == 0
        buyer = buyers[i % len(buyers)] if sold else None
        listing = Listing(
            id=uuid.uuid4(), seller=sellers[i % len(sellers)], title=f"Due item {i}",
            auction_type="auction", status="active", starting_price_cents=1000,
            current_price_cents=1000, starts_at=now - timedelta(days=1),
            ends_at=now - timedelta(seconds=1))
        listings.append(listing)
        if sold:  # one bid of 1000 with a maximum of 1500: the buyer leads at 1000
            bids += bid_rows(listing, lambda _state, b=buyer: rules.BidInput(b.pk, 1000, 1500),
                             1)
    started = time.perf_counter()
    with transaction.atomic():
        Listing.objects.bulk_create(listings, batch_size=2000)
        Bid.objects.bulk_create(bids, batch_size=2000)
    print(f"loaded {count:,} due auctions ({len(bids):,} with a leader) in "
          f"{time.perf_counter() - started:.1f} s")
    return [listing.pk for listing in listings]


def _raw_baseline(conninfo: str, ids: list[uuid.UUID], max_seconds: float) -> tuple[int, float]:
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("UPDATE listings_listing SET status = 'active', closed_at = NULL "
                     "WHERE id = ANY(%s)", [ids])
        closed, deadline = 0, time.monotonic() + max_seconds
        started = time.perf_counter()
        for pk in ids:
            if time.monotonic() > deadline:
                break
            closed += conn.execute(RAW_CLOSE, [pk]).rowcount
        return closed, time.perf_counter() - started


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench_closing", description=__doc__)
    parser.add_argument("--auctions", type=int, default=10_000)
    parser.add_argument("--max-seconds", type=float, default=600,
                        help="bound on the worker's run (and on the baseline's)")
    args, _unknown = parser.parse_known_args(argv)

    base = postgres_base_url("bench_closing")
    if base is None:
        return 2
    url, conninfo = bench_database(base)
    wipe_auction_data()
    ids = _load(args.auctions)

    with Processes("closing") as procs:
        redis_url = procs.redis()
        env = server_env(database_url=url, redis_url=redis_url)
        worker = procs.spawn([sys.executable, "-c", WORKER, str(args.max_seconds)], env,
                             "worker")
        try:
            worker.wait(timeout=args.max_seconds + 60)
        except subprocess.TimeoutExpired:
            print("worker did not finish in time")
            return 1
        output = procs.log("worker").strip().splitlines()
    try:
        result = json.loads(output[-1])
    except (IndexError, ValueError):
        print("worker failed:\n" + "\n".join(output[-20:]))
        return 1

    from escrow.models import Transaction
    from listings.models import Listing

    still_due = Listing.objects.filter(pk__in=ids, status="active").count()
    sold = Listing.objects.filter(pk__in=ids, status="sold").count()
    txns = Transaction.objects.filter(listing_id__in=ids).count()
    rate = result["closed"] / result["seconds"]
    raw_closed, raw_seconds = _raw_baseline(conninfo, ids, args.max_seconds)
    raw_rate = raw_closed / raw_seconds
    wipe_auction_data()

    print(f"worker: {result['closed']:,} closed in {result['seconds']:.1f} s "
          f"({result['sweeps']} sweeps) -> {rate:.0f} closes/s (target >= 200/s: "
          f"{'met' if rate >= 200 else 'NOT met'})")
    print(f"        {sold:,} sold, {txns:,} transactions, {still_due} still due")
    print(f"baseline: raw conditional UPDATE, one per row: {raw_closed:,} in {raw_seconds:.1f} s "
          f"-> {raw_rate:.0f} closes/s; worker / raw = {rate / raw_rate:.2f}")
    ok = result["closed"] == len(ids) and still_due == 0 and txns == sold
    if not ok:
        print("!! not every auction was closed exactly once")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
