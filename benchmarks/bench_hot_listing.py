"""Hot listing: N authenticated clients bidding on one listing over HTTP vs the pgbench ceiling.

Starts its own daphne (production settings from the environment, `<db>_bench_live` database,
a throwaway redis-server for cache and channel layer, throttles off) and runs `--clients`
(default 32) httpx async clients, each posting `POST /v1/listings/{id}/bids` back to back for
`--duration` seconds (default 20). Each client bids the last `minimum_next_bid_cents` it saw
(from any 201 or 409 `bid_too_low`) plus a random step, so most bids are valid proxy bids.
Prints accepted bids/s and p50/p99 latency; then, in the same run and on the same database,
the pgbench ceiling of the same SQL transaction (lock the listing row FOR NO KEY UPDATE,
insert the bid, update the row) with the same number of clients, and the ratio (target
≥ 0.5). Quick check: `python -m benchmarks bench_hot_listing --clients=4 --duration=3`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._support import (
    Processes,
    bench_database,
    make_listing,
    make_users,
    pct,
    postgres_base_url,
    server_env,
    wipe_auction_data,
)

MIN_RE = re.compile(r"minimum_next_bid_cents=(\d+)")

PGBENCH_SCRIPT = """\
BEGIN;
SELECT id, seller_id, status, auction_type, starting_price_cents, reserve_price_cents,
       buy_now_price_cents, current_price_cents, bid_count, leader_id, leader_max_cents, seq,
       starts_at, ends_at
  FROM listings_listing WHERE id = '{listing}' FOR NO KEY UPDATE;
INSERT INTO bidding_bid (id, listing_id, bidder_id, amount_cents, max_amount_cents,
                         requested_amount_cents, is_auto_bid, status, seq, created_at)
  SELECT gen_random_uuid(), id, '{bidder}', current_price_cents + 50, current_price_cents + 50,
         current_price_cents + 50, false, 'active', seq + 1, now()
    FROM listings_listing WHERE id = '{listing}';
UPDATE listings_listing SET seq = seq + 1, current_price_cents = current_price_cents + 50,
       bid_count = bid_count + 1, leader_id = '{bidder}',
       leader_max_cents = current_price_cents + 50, ends_at = ends_at, updated_at = now()
 WHERE id = '{listing}';
END;
"""


async def _client(base: str, listing_id: str, token: str, deadline: float, state: dict,
                  rng: random.Random, max_requests: int) -> None:
    import httpx

    headers = {"Authorization": f"Bearer {token}"}
    url = f"/v1/listings/{listing_id}/bids"
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
        for _ in range(max_requests):
            if time.monotonic() >= deadline:
                return
            minimum = state["minimum"]
            # a spread of amounts and proxy maximums: most bids stay valid while others land
            amount = minimum + rng.randrange(0, max(200, minimum // 5))
            body = {"amount_cents": amount,
                    "max_amount_cents": amount + rng.randrange(0, max(500, minimum // 2))}
            started = time.perf_counter()
            try:
                response = await client.post(url, json=body)
            except httpx.HTTPError as exc:
                state["errors"].append(repr(exc))
                continue
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code == 201:
                state["accepted"].append(elapsed)
                seen = response.json()["listing"]["minimum_next_bid_cents"]
            elif response.status_code == 409:
                state["refused"].append(elapsed)
                match = MIN_RE.search(response.text)
                seen = int(match.group(1)) if match else minimum
            else:
                state["errors"].append(f"{response.status_code} {response.text[:200]}")
                continue
            state["minimum"] = max(state["minimum"], seen)


async def _load(base: str, listing_id: str, tokens: list[str], duration: float,
                max_requests: int) -> tuple[dict, float]:
    state = {"minimum": 1000, "accepted": [], "refused": [], "errors": []}
    started = time.monotonic()
    deadline = started + duration
    await asyncio.wait_for(asyncio.gather(*(
        _client(base, listing_id, token, deadline, state, random.Random(i), max_requests)
        for i, token in enumerate(tokens))), timeout=duration + 60)
    return state, time.monotonic() - started


def _pgbench(conninfo: str, listing_id: str, bidder_id: str, clients: int,
             seconds: int) -> float | None:
    binary = shutil.which("pgbench")
    if binary is None:
        print("pgbench not found on PATH: no ceiling measured")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "bid.sql"
        script.write_text(PGBENCH_SCRIPT.format(listing=listing_id, bidder=bidder_id))
        result = subprocess.run(
            [binary, "-n", "-c", str(clients), "-j", str(min(clients, os.cpu_count() or 1)),
             "-T", str(seconds), "-M", "prepared", "-f", str(script), conninfo],
            capture_output=True, text=True, timeout=seconds + 60, check=False)
    match = re.search(r"tps = ([\d.]+) \((?:without initial connection time|excluding)",
                      result.stdout)
    if result.returncode != 0 or match is None:
        print(f"pgbench failed ({result.returncode}):\n{result.stdout[-800:]}"
              f"{result.stderr[-800:]}")
        return None
    failed = re.search(r"number of failed transactions: (\d+)", result.stdout)
    if failed and int(failed.group(1)):
        print(f"pgbench: {failed.group(1)} failed transactions")
    return float(match.group(1))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench_hot_listing", description=__doc__)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of bidding")
    parser.add_argument("--pgbench-seconds", type=int, default=0,
                        help="pgbench run length (default: same as --duration, at most 20)")
    parser.add_argument("--max-requests", type=int, default=100_000,
                        help="upper bound of requests per client")
    args, _unknown = parser.parse_known_args(argv)

    base = postgres_base_url("bench_hot_listing")
    if base is None:
        return 2
    url, conninfo = bench_database(base)
    wipe_auction_data()
    users = make_users(args.clients + 1, "778")
    seller, bidders = users[0], users[1:]
    listing = make_listing(seller)

    with Processes("hot-listing") as procs:
        redis_url = procs.redis()
        server = procs.daphne(server_env(database_url=url, redis_url=redis_url))
        print(f"daphne {server}, {args.clients} clients, {args.duration:g} s")
        # Warm up: connections, code paths (not counted).
        asyncio.run(_load(server, str(listing.pk), [b.token for b in bidders[:2]], 1.0, 5))
        state, elapsed = asyncio.run(_load(server, str(listing.pk),
                                           [b.token for b in bidders], args.duration,
                                           args.max_requests))
    accepted, refused, errors = state["accepted"], state["refused"], state["errors"]
    listing.refresh_from_db()
    rate = len(accepted) / elapsed
    total = len(accepted) + len(refused)
    print(f"HTTP: {len(accepted)} accepted, {len(refused)} refused (409), {len(errors)} errors "
          f"in {elapsed:.1f} s -> {rate:.1f} accepted bids/s, {total / elapsed:.1f} requests/s")
    print(f"      latency accepted p50 {pct(accepted, .5):.1f} ms, p99 {pct(accepted, .99):.1f} "
          f"ms; all requests p50 {pct(accepted + refused, .5):.1f} ms, "
          f"p99 {pct(accepted + refused, .99):.1f} ms")
    if errors:
        print(f"      first errors: {errors[:3]}")
    print(f"      listing row: seq {listing.seq}, bid_count {listing.bid_count}, "
          f"price {listing.current_price_cents}")

    seconds = args.pgbench_seconds or max(1, min(20, int(args.duration)))
    ceiling = _pgbench(conninfo, str(listing.pk), str(bidders[0].pk), args.clients, seconds)
    wipe_auction_data()
    if ceiling is None:
        return 1 if errors else 0
    ratio = rate / ceiling
    print(f"pgbench ceiling (same lock/insert/update transaction, {args.clients} clients, "
          f"{seconds} s): {ceiling:.1f} tps")
    print(f"ratio accepted bids/s / ceiling = {ratio:.3f} (target >= 0.5: "
          f"{'met' if ratio >= 0.5 else 'NOT met'}); all bid requests (a refused bid also "
          f"locks the row) / ceiling = {total / elapsed / ceiling:.3f}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
