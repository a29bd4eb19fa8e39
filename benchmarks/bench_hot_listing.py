"""Hot listing: N authenticated clients bidding on one listing over HTTP vs the pgbench ceiling.

Starts `--servers` REST processes (granian WSGI; default 2, as a host runs them behind nginx;
production settings from the environment, `<db>_bench_live` database, a throwaway
redis-server for cache and channel layer, throttles off) and runs `--clients` (default 32)
keep-alive HTTP/1.1 clients, spread over the servers (their price cap raised so a long run
never reaches it), each posting `POST /v1/listings/{id}/bids` back to back for `--duration`
seconds (default 20).

Bids rise with a shared ticket: each request bids two increments above the one sent before
it, a quarter of them with a proxy maximum a few steps higher (so the leader's automatic
bids are exercised), so a bid is valid unless it reaches the server behind a later one. The
benchmark measures the server, not 32 people racing for one price; a refused bid is still
counted and costs the same locked transaction.

Prints requests/s, accepted bids/s, p50/p99 latency, the CPU the REST processes spent per
request and the CPU PostgreSQL's backends for this database spent per request (their pids
from pg_stat_activity, their CPU from /proc);
then, in the same run and on the same database, the pgbench ceiling of the same SQL
transaction (lock the listing row FOR NO KEY UPDATE with the seller's suspension, insert the
bid, update the row) with the same number of clients, with PostgreSQL's CPU per transaction,
and the ratio of bid requests/s to it (target ≥ 0.5).
Quick check: `python -m benchmarks bench_hot_listing --clients=4 --duration=3`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from benchmarks._support import (
    REST_SERVER,
    PgBackendCpu,
    Processes,
    bench_database,
    make_listing,
    make_users,
    pct,
    postgres_base_url,
    server_env,
    tree_cpu_seconds,
    wipe_auction_data,
)

# Far into the top increment band (≥ 5,000.00 → 100.00), so the increment never changes.
START_CENTS = 1_000_000
INCREMENT_CENTS = 10_000
STEP_CENTS = 2 * INCREMENT_CENTS  # a bid one place late is still ≥ price + increment
BENCH_MAX_PRICE_CENTS = 10**15  # the servers' price cap for this run: never reached

PGBENCH_SCRIPT = """\
BEGIN;
SELECT l.id, l.seller_id, l.status, l.auction_type, l.starting_price_cents,
       l.reserve_price_cents, l.buy_now_price_cents, l.current_price_cents, l.bid_count,
       l.leader_id, l.leader_max_cents, l.seq, l.starts_at, l.ends_at,
       EXISTS (SELECT 1 FROM accounts_user u WHERE u.id = l.seller_id AND u.status <> 'active')
  FROM listings_listing l WHERE l.id = '{listing}' FOR NO KEY UPDATE OF l;
INSERT INTO bidding_bid (id, listing_id, bidder_id, amount_cents, max_amount_cents,
                         requested_amount_cents, is_auto_bid, is_max_raise, status, seq,
                         created_at)
  SELECT gen_random_uuid(), id, '{bidder}', current_price_cents + 50, current_price_cents + 50,
         current_price_cents + 50, false, false, 'active', seq + 1, now()
    FROM listings_listing WHERE id = '{listing}';
UPDATE listings_listing SET seq = seq + 1, current_price_cents = current_price_cents + 50,
       bid_count = bid_count + 1, leader_id = '{bidder}',
       leader_max_cents = current_price_cents + 50, ends_at = ends_at, updated_at = now()
 WHERE id = '{listing}';
END;
"""


class HttpClient:
    """A minimal keep-alive HTTP/1.1 client: one connection, one request at a time.

    httpx costs about as much CPU per request as the server's own framework; on a 2-core
    machine that would be taken from the server being measured.
    """

    def __init__(self, base: str, token: str) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname, parts.port
        self.token = token
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post_json(self, path: str, body: dict) -> tuple[int, dict]:
        data = json.dumps(body).encode()
        status, payload = await self._call(
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {self.token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
        return status, json.loads(payload) if payload else {}

    async def get(self, path: str) -> int:
        status, _payload = await self._call(
            f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {self.token}\r\n\r\n".encode())
        return status

    async def _call(self, request: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {k.strip().lower(): v.strip()
                   for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        if "content-length" not in headers:
            raise RuntimeError(f"response without Content-Length: {headers}")
        payload = await self.reader.readexactly(int(headers["content-length"]))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, payload

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


async def _client(base: str, listing_id: str, token: str, deadline: float, state: dict,
                  rng: random.Random, max_requests: int) -> None:
    client = HttpClient(base, token)
    path = f"/v1/listings/{listing_id}/bids"
    try:
        for _ in range(max_requests):
            if time.monotonic() >= deadline:
                return
            state["ticket"] += 1
            amount = START_CENTS + state["ticket"] * STEP_CENTS
            body = {"amount_cents": amount}
            if rng.random() < 0.25:
                body["max_amount_cents"] = amount + rng.randrange(1, 5) * STEP_CENTS
            started = time.perf_counter()
            try:
                status, answer = await client.post_json(path, body)
            except (OSError, asyncio.IncompleteReadError, RuntimeError, ValueError) as exc:
                state["errors"].append(repr(exc))
                await client.close()
                continue
            elapsed = (time.perf_counter() - started) * 1000
            if status == 201:
                state["accepted"].append(elapsed)
            elif status == 409 and answer.get("errors", [{}])[0].get("code") == "bid_too_low":
                state["refused"].append(elapsed)
            else:
                state["errors"].append(f"{status} {str(answer)[:200]}")
    finally:
        await client.close()


async def _load(servers: list[str], listing_id: str, tokens: list[str], duration: float,
                max_requests: int, ticket: int = 0) -> tuple[dict, float]:
    state = {"ticket": ticket, "accepted": [], "refused": [], "errors": []}
    started = time.monotonic()
    deadline = started + duration
    await asyncio.wait_for(asyncio.gather(*(
        _client(servers[i % len(servers)], listing_id, token, deadline, state,
                random.Random(i), max_requests)
        for i, token in enumerate(tokens))), timeout=duration + 60)
    return state, time.monotonic() - started


def _machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs so far (/proc/stat), or zeros where unavailable."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0, 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return float(sum(fields) - idle), float(sum(fields))


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
    parser.add_argument("--servers", type=int, default=2, help="daphne processes")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of bidding")
    parser.add_argument("--pgbench-seconds", type=int, default=0,
                        help="pgbench run length (default: same as --duration, at most 20)")
    parser.add_argument("--max-requests", type=int, default=100_000,
                        help="upper bound of requests per client")
    args, _unknown = parser.parse_known_args(argv)
    if args.clients < 1 or args.servers < 1 or args.duration <= 0:
        print("--clients and --servers must be ≥ 1 and --duration > 0")
        return 2

    base = postgres_base_url("bench_hot_listing")
    if base is None:
        return 2
    url, conninfo = bench_database(base)
    wipe_auction_data()
    users = make_users(args.clients + 1, "778")
    seller, bidders = users[0], users[1:]
    listing = make_listing(seller, starting_price_cents=START_CENTS)
    tokens = [b.token for b in bidders]

    with Processes("hot-listing") as procs:
        redis_url = procs.redis()
        # Prices climb by two increments a bid: without a higher cap, a run longer than
        # about 25 s would reach BIDDT_MAX_PRICE_CENTS ($1,000,000) and get 400 max_value.
        env = server_env(database_url=url, redis_url=redis_url,
                         BIDDT_MAX_PRICE_CENTS=str(BENCH_MAX_PRICE_CENTS))
        servers = [procs.rest(env, name=f"rest{i}") for i in range(args.servers)]
        pids = [p.pid for p in procs.started[-args.servers:]]
        print(f"{args.servers} {REST_SERVER} ({', '.join(servers)}), {args.clients} clients, "
              f"{args.duration:g} s")
        # Warm up every server: connections, code paths (not counted).
        warm, _ = asyncio.run(_load(servers, str(listing.pk), tokens[:2 * args.servers], 1.0,
                                    5))
        pg = PgBackendCpu(conninfo).start()
        cpu_before, busy_before = sum(tree_cpu_seconds(pid) for pid in pids), _machine_busy()
        state, elapsed = asyncio.run(_load(servers, str(listing.pk), tokens, args.duration,
                                           args.max_requests, ticket=warm["ticket"]))
        cpu = sum(tree_cpu_seconds(pid) for pid in pids) - cpu_before
        pg_cpu = pg.stop()
        busy_after = _machine_busy()
    accepted, refused, errors = state["accepted"], state["refused"], state["errors"]
    listing.refresh_from_db()
    rate = len(accepted) / elapsed
    total = len(accepted) + len(refused)
    print(f"HTTP: {len(accepted)} accepted, {len(refused)} refused (bid_too_low), "
          f"{len(errors)} errors in {elapsed:.1f} s -> {rate:.1f} accepted bids/s, "
          f"{total / elapsed:.1f} requests/s")
    print(f"      latency accepted p50 {pct(accepted, .5):.1f} ms, p99 {pct(accepted, .99):.1f} "
          f"ms; all requests p50 {pct(accepted + refused, .5):.1f} ms, "
          f"p99 {pct(accepted + refused, .99):.1f} ms")
    machine = ((busy_after[0] - busy_before[0]) / (busy_after[1] - busy_before[1])
               if busy_after[1] > busy_before[1] else float("nan"))
    server_ms, pg_ms = cpu * 1000 / max(total, 1), pg_cpu * 1000 / max(total, 1)
    print(f"      server CPU {server_ms:.2f} ms per request ({cpu / elapsed:.2f} cores); "
          f"PostgreSQL CPU {pg_ms:.2f} ms per request ({pg_cpu / elapsed:.2f} cores); "
          f"server / PostgreSQL = {server_ms / pg_ms if pg_ms else float('nan'):.1f} "
          f"(target <= 1.5)")
    print(f"      machine {machine:.0%} busy of {os.cpu_count()} cores")
    if errors:
        print(f"      first errors: {errors[:3]}")
    print(f"      listing row: seq {listing.seq}, bid_count {listing.bid_count}, "
          f"price {listing.current_price_cents}")

    seconds = args.pgbench_seconds or max(1, min(20, int(args.duration)))
    pg = PgBackendCpu(conninfo).start()
    ceiling = _pgbench(conninfo, str(listing.pk), str(bidders[0].pk), args.clients, seconds)
    pgbench_cpu = pg.stop()
    wipe_auction_data()
    if ceiling is None:
        return 1 if errors else 0
    print(f"pgbench ceiling (same lock/insert/update transaction, {args.clients} clients, "
          f"{seconds} s): {ceiling:.1f} tps, PostgreSQL CPU "
          f"{pgbench_cpu * 1000 / max(ceiling * seconds, 1):.2f} ms per transaction")
    ratio = total / elapsed / ceiling
    print(f"ratio bid requests/s / ceiling = {ratio:.3f} (target >= 0.5: "
          f"{'met' if ratio >= 0.5 else 'NOT met'}); accepted bids/s / ceiling = "
          f"{rate / ceiling:.3f}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
