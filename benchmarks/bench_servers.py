"""Servers side by side: CPU per request of each REST server and CPU per socket message.

Same app, same settings, one run, the variants alternated (`--rounds`, default 2, each round
starts every variant in turn, one at a time): daphne with Django's ASGI handler (the
baseline), granian WSGI, granian ASGI, uvicorn, gunicorn gthread and gunicorn with
uvicorn-worker (`benchmarks._support.server_command` has each command line).

REST, per variant: `--clients` (default 8) keep-alive clients for `--duration` seconds
(default 6) of bid requests on one hot listing (as bench_hot_listing: rising bids, a
refused one costs the same locked transaction), then as long of a floor view
(`GET /v1/notifications/unread-count`: JWT auth, throttles, one SELECT). Prints the CPU the
server's processes (the process and its children, from /proc via psutil) spent per request
and requests/s, each beside daphne's. CPU per request is the figure to read on a loaded
machine: requests/s moves with whatever else runs.

Sockets, per socket variant (daphne, granian ASGI, uvicorn): `--sockets` (default 300)
sockets subscribe to one listing on the socket server; `--bids` (default 20) bids go through
a granian WSGI REST server, so each event crosses processes through the Redis channel layer
as in production; prints the socket server's CPU per delivered message and the messages lost.
Quick check: `python -m benchmarks bench_servers --rounds=1 --duration=2 --sockets=50 --bids=5`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from urllib.parse import urlsplit

from benchmarks._support import (
    Processes,
    bench_database,
    make_listing,
    make_users,
    postgres_base_url,
    raise_nofile,
    server_env,
    tree_cpu_seconds,
    wipe_auction_data,
)
from benchmarks.bench_hot_listing import BENCH_MAX_PRICE_CENTS, START_CENTS, HttpClient, _load

REST_VARIANTS = ["daphne", "granian-wsgi", "granian-asgi", "uvicorn", "gunicorn-gthread",
                 "gunicorn-uvicorn"]
SOCKET_VARIANTS = ["daphne", "granian-asgi", "uvicorn"]
BASELINE = "daphne"
FLOOR_PATH = "/v1/notifications/unread-count"


async def _get_loop(base: str, token: str, deadline: float, counts: dict) -> None:
    client = HttpClient(base, token)
    try:
        while time.monotonic() < deadline:
            try:
                status = await client.get(FLOOR_PATH)
            except (OSError, asyncio.IncompleteReadError, RuntimeError, ValueError) as exc:
                counts["errors"].append(repr(exc))
                await client.close()
                continue
            if status == 200:
                counts["ok"] += 1
            else:
                counts["errors"].append(str(status))
    finally:
        await client.close()


async def _floor(base: str, tokens: list[str], duration: float) -> tuple[dict, float]:
    counts = {"ok": 0, "errors": []}
    started = time.monotonic()
    await asyncio.gather(*(_get_loop(base, t, started + duration, counts) for t in tokens))
    return counts, time.monotonic() - started


def _measure(pid: int, run) -> tuple[float, float, int, float, list]:
    """(CPU ms per request, requests/s, requests, seconds, errors) of one load run."""
    before = tree_cpu_seconds(pid)
    done, elapsed, errors = run()
    cpu = tree_cpu_seconds(pid) - before
    return cpu * 1000 / max(done, 1), done / elapsed, done, elapsed, errors


def _rest_round(procs: Processes, variant: str, env: dict, listing_id: str, tokens: list[str],
                duration: float, ticket: list[int]) -> dict:
    url = procs.server(variant, env, name=f"{variant}-{len(procs.started)}")
    pid = procs.started[-1].pid
    # Warm up (connections, code paths, each thread's database connection): not counted.
    warm, _ = asyncio.run(_load([url], listing_id, tokens, 1.0, 20, ticket=ticket[0]))
    ticket[0] = warm["ticket"]
    asyncio.run(_floor(url, tokens, 0.5))

    def bids():
        state, elapsed = asyncio.run(_load([url], listing_id, tokens, duration, 100_000,
                                           ticket=ticket[0]))
        ticket[0] = state["ticket"]
        return len(state["accepted"]) + len(state["refused"]), elapsed, state["errors"]

    def floor():
        counts, elapsed = asyncio.run(_floor(url, tokens, duration))
        return counts["ok"], elapsed, counts["errors"]

    result = {"bid": _measure(pid, bids), "floor": _measure(pid, floor)}
    procs.stop_last()
    return result


async def _socket_round(sockets_url: str, rest_url: str, listing_id: str, tokens: list[str],
                        sockets: int, bids: int, ticket: list[int], pid: int) -> tuple:
    from benchmarks.bench_fanout import _Reader

    loop = asyncio.get_running_loop()
    parts = urlsplit(sockets_url)
    arrivals: dict = {}
    readers = []
    for start in range(0, sockets, 100):
        batch = []
        for i in range(start, min(start + 100, sockets)):
            _transport, reader = await loop.create_connection(
                lambda i=i: _Reader(f"{parts.hostname}:{parts.port}", listing_id, i, arrivals),
                parts.hostname, parts.port)
            batch.append(reader)
        await asyncio.wait_for(asyncio.gather(*(r.subscribed for r in batch)), 60)
        readers += batch
    clients = [HttpClient(rest_url, token) for token in tokens[:2]]
    before = tree_cpu_seconds(pid)
    placed = []
    for n in range(bids):
        ticket[0] += 1
        status, answer = await clients[n % 2].post_json(
            f"/v1/listings/{listing_id}/bids", {"amount_cents": START_CENTS + ticket[0] * 20_000})
        if status == 201:
            placed.append(answer["id"])
        await asyncio.sleep(0.2)
    deadline = time.monotonic() + 10
    while (sum(len(arrivals.get(b, {})) for b in placed) < len(placed) * sockets
           and time.monotonic() < deadline):
        await asyncio.sleep(0.1)
    cpu = tree_cpu_seconds(pid) - before
    delivered = sum(len(arrivals.get(b, {})) for b in placed)
    for client in clients:
        await client.close()
    for reader in readers:
        reader.close()
    return cpu, delivered, len(placed) * sockets - delivered


def _fmt(values: list[float], digits: int = 2) -> str:
    if not values:
        return "-"
    low, high = min(values), max(values)
    return f"{low:.{digits}f}" if len(values) == 1 else f"{low:.{digits}f}-{high:.{digits}f}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench_servers", description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--sockets", type=int, default=300)
    parser.add_argument("--bids", type=int, default=20)
    parser.add_argument("--only", default="", help="comma-separated variants (default all)")
    parser.add_argument("--no-sockets", action="store_true")
    args, _unknown = parser.parse_known_args(argv)
    only = [v for v in args.only.split(",") if v]
    rest_variants = [v for v in REST_VARIANTS if not only or v in only or v == BASELINE]
    socket_variants = [v for v in SOCKET_VARIANTS if not only or v in only or v == BASELINE]

    base = postgres_base_url("bench_servers")
    if base is None:
        return 2
    raise_nofile(4 * args.sockets + 1024)
    url, _conninfo = bench_database(base)
    wipe_auction_data()
    users = make_users(args.clients + 1, "779")
    seller, bidders = users[0], users[1:]
    listing = make_listing(seller, starting_price_cents=START_CENTS)
    tokens = [b.token for b in bidders]
    ticket = [0]
    rest: dict[str, dict[str, list]] = {v: {"bid": [], "floor": []} for v in rest_variants}
    sock: dict[str, list] = {v: [] for v in socket_variants}
    errors: list = []

    with Processes("servers") as procs:
        redis_url = procs.redis()
        env = server_env(database_url=url, redis_url=redis_url,
                         BIDDT_MAX_PRICE_CENTS=str(BENCH_MAX_PRICE_CENTS))
        print(f"{os.cpu_count()} cores; {args.clients} clients, {args.duration:g} s per load, "
              f"{args.rounds} rounds; variants alternated")
        for round_no in range(1, args.rounds + 1):
            for variant in rest_variants:
                result = _rest_round(procs, variant, env, str(listing.pk), tokens,
                                     args.duration, ticket)
                for kind in ("bid", "floor"):
                    rest[variant][kind].append(result[kind])
                    errors += result[kind][4][:3]
                print(f"  round {round_no} {variant:17} bid {result['bid'][0]:6.2f} ms CPU, "
                      f"{result['bid'][1]:6.1f} req/s | floor {result['floor'][0]:5.2f} ms CPU, "
                      f"{result['floor'][1]:6.1f} req/s")
            if args.no_sockets:
                continue
            rest_url = procs.server("granian-wsgi", env, name=f"rest-{len(procs.started)}")
            for variant in socket_variants:
                sockets_url = procs.server(variant, env, name=f"ws-{variant}-{len(procs.started)}")
                pid = procs.started[-1].pid
                # A listing of its own: on the REST rounds' listing a proxy maximum left by
                # their load would answer the first bid with an automatic one (another id).
                room = make_listing(seller, starting_price_cents=START_CENTS)
                cpu, delivered, lost = asyncio.run(_socket_round(
                    sockets_url, rest_url, str(room.pk), tokens, args.sockets, args.bids,
                    ticket, pid))
                procs.stop_last()
                per = cpu * 1e6 / max(delivered, 1)
                sock[variant].append((per, delivered, lost))
                print(f"  round {round_no} sockets {variant:13} {per:7.1f}"
                      f" µs CPU per delivered message, {delivered} delivered, {lost} lost")
            procs.stop_last()
    wipe_auction_data()

    print("\nREST: server CPU per request (min-max over rounds), requests/s; x = / daphne")
    base_bid = min(r[0] for r in rest[BASELINE]["bid"])
    base_floor = min(r[0] for r in rest[BASELINE]["floor"])
    for variant in rest_variants:
        bid = [r[0] for r in rest[variant]["bid"]]
        floor = [r[0] for r in rest[variant]["floor"]]
        print(f"  {variant:17} bid {_fmt(bid):>11} ms ({min(bid) / base_bid:4.2f} x), "
              f"{_fmt([r[1] for r in rest[variant]['bid']], 0):>9} req/s | floor "
              f"{_fmt(floor):>11} ms ({min(floor) / base_floor:4.2f} x), "
              f"{_fmt([r[1] for r in rest[variant]['floor']], 0):>9} req/s")
    if not args.no_sockets:
        print(f"Sockets: socket-server CPU per delivered message, {args.sockets} sockets, "
              f"{args.bids} bids via granian WSGI")
        base_msg = min(r[0] for r in sock[BASELINE])
        for variant in socket_variants:
            per = [r[0] for r in sock[variant]]
            lost = sum(r[2] for r in sock[variant])
            print(f"  {variant:17} {_fmt(per, 1):>13} µs ({min(per) / base_msg:4.2f} x), "
                  f"{lost} lost")
    if errors:
        print(f"first errors: {errors[:5]}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
