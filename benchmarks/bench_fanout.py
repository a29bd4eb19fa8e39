"""Fan-out: S sockets in one listing room on one daphne (Redis layer); bid -> every bid_placed.

Starts its own daphne (production settings, `<db>_bench_live` database, a throwaway
redis-server for the channel layer and cache), opens `--sockets` (default 2000) anonymous
sockets that `subscribe` to one listing, then places `--bids` (default 20) bids over REST,
`--interval` seconds apart, alternating two bidders. Each socket records when each
`bid_placed` arrives (matched to the bid by `bid.id`). The latency is measured from the
bid's commit (its row's `created_at`, stamped inside the bid's transaction just before the
commit; server and client share the machine's clock), and for reference from the moment the
201 came back (an event that beats it counts as 0 ms) and from the moment the POST was sent.
Prints p50/p99/max and messages lost (expected = sockets x bids; target 0 lost, p99 <= 250
ms), next to the same run with 1 socket (the baseline). The sockets are spread over
`--client-procs` (default 4) client processes on this machine, so the clients' own CPU time
to read S messages is still part of the figure (phones would read in parallel).
Quick check: `python -m benchmarks bench_fanout --sockets=100 --bids=5`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sys
import time

from benchmarks._support import (
    Processes,
    bench_database,
    make_listing,
    make_users,
    pct,
    postgres_base_url,
    raise_nofile,
    server_env,
    wipe_auction_data,
)

CONNECT_BATCH = 100
CONNECT_ATTEMPTS = 3
SETTLE_SECONDS = 5.0


async def _socket(ws_url: str, listing_id: str, arrivals: dict, ready: asyncio.Event,
                  index: int, failures: list) -> None:
    """One subscriber: records the arrival time of each `bid_placed`; runs until cancelled.

    No polling timers (2,000 of them would load the client): the task blocks in `recv` and
    is cancelled at the end. Client keepalive pings are off so a busy client loop doesn't
    close sockets on its own (daphne still pings). A refused handshake is retried, as an app
    reconnects; a socket that never subscribes, or drops later, counts as failed."""
    from websockets.asyncio.client import connect

    for attempt in range(CONNECT_ATTEMPTS):
        try:
            async with connect(ws_url, open_timeout=60, close_timeout=2, ping_interval=None,
                               max_queue=None) as socket:
                await socket.send(json.dumps({"type": "subscribe", "listingId": listing_id}))
                async with asyncio.timeout(60):
                    while json.loads(await socket.recv())["type"] != "subscribed":
                        pass
                ready.set()
                async for raw in socket:
                    now = time.time()  # wall clock: compared with the server's created_at
                    if '"bid_placed"' in raw:
                        message = json.loads(raw)
                        if message.get("type") == "bid_placed":
                            arrivals.setdefault(message["bid"]["id"], {}).setdefault(index, now)
                return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # counted, not raised: a dropped socket is a lost socket
            if ready.is_set() or attempt == CONNECT_ATTEMPTS - 1:
                failures.append(repr(exc))
                ready.set()
                return
            await asyncio.sleep(0.5 * (attempt + 1))


async def _clients(ws_url: str, listing_id: str, first: int, count: int, commands, results
                   ) -> None:
    """One client process's share of the sockets: connect, report ready, record until told."""
    arrivals: dict[str, dict[int, float]] = {}
    failures: list[str] = []
    tasks = []
    for start in range(first, first + count, CONNECT_BATCH):
        events = []
        for index in range(start, min(first + count, start + CONNECT_BATCH)):
            ready = asyncio.Event()
            events.append(ready)
            tasks.append(asyncio.create_task(
                _socket(ws_url, listing_id, arrivals, ready, index, failures)))
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), timeout=180)
    results.put(("ready", len(failures)))
    await asyncio.to_thread(commands.get)  # "stop"
    for task in tasks:
        task.cancel()
    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=60)
    results.put(("done", {"arrivals": arrivals, "failures": failures}))


def _client_process(ws_url: str, listing_id: str, first: int, count: int, commands,
                    results) -> None:
    asyncio.run(_clients(ws_url, listing_id, first, count, commands, results))


async def _round(base: str, listing_id: str, tokens: list[str], sockets: int, bids: int,
                 interval: float, procs: int) -> dict:
    import httpx

    ws_url = base.replace("http://", "ws://") + "/ws/"
    context = multiprocessing.get_context("spawn")
    procs = max(1, min(procs, sockets))
    share = -(-sockets // procs)
    results = context.Queue()
    children = []
    started = time.monotonic()
    for n in range(procs):
        first = n * share
        count = min(share, sockets - first)
        if count <= 0:
            break
        commands = context.Queue()
        child = context.Process(target=_client_process, daemon=True,
                                args=(ws_url, listing_id, first, count, commands, results))
        child.start()
        children.append((child, commands))
    for _ in children:
        kind, _failed = await asyncio.to_thread(results.get, True, 300)
        assert kind == "ready"
    connect_seconds = time.monotonic() - started

    sent: dict[str, tuple[float, float]] = {}
    committed: dict[str, float | None] = {}
    errors: list[str] = []
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        minimum = 0
        for k in range(bids):
            token = tokens[k % len(tokens)]
            body = {"amount_cents": max(minimum, 1000)}
            t_send = time.time()
            response = await client.post(f"/v1/listings/{listing_id}/bids", json=body,
                                         headers={"Authorization": f"Bearer {token}"})
            t_done = time.time()
            if response.status_code != 201:
                errors.append(f"{response.status_code} {response.text[:200]}")
                break
            data = response.json()
            sent[data["id"]] = (t_send, t_done)
            committed[data["id"]] = None
            minimum = data["listing"]["minimum_next_bid_cents"]
            await asyncio.sleep(interval)
    await asyncio.sleep(SETTLE_SECONDS)
    for _child, commands in children:
        commands.put("stop")
    arrivals: dict[str, dict[int, float]] = {}
    failures: list[str] = []
    for _ in children:
        kind, report = await asyncio.to_thread(results.get, True, 300)
        for bid_id, seen in report["arrivals"].items():
            arrivals.setdefault(bid_id, {}).update(seen)
        failures += report["failures"]
    for child, _commands in children:
        child.join(timeout=30)

    from bidding.models import Bid

    # The bid row's created_at is stamped inside the bid's transaction, a few ms before its
    # commit; server and client share this machine's clock.
    def stamps() -> list:
        return list(Bid.objects.filter(pk__in=list(sent)).values_list("pk", "created_at"))

    for pk, created in await asyncio.to_thread(stamps):
        committed[str(pk)] = created.timestamp()
    from_commit, from_201, from_send, early = [], [], [], 0
    for bid_id, (t_send, t_done) in sent.items():
        for arrived in arrivals.get(bid_id, {}).values():
            from_send.append((arrived - t_send) * 1000)
            from_201.append(max(0.0, (arrived - t_done) * 1000))
            if committed.get(bid_id) is not None:
                from_commit.append((arrived - committed[bid_id]) * 1000)
            early += arrived < t_done
    expected = sockets * len(sent)
    return {"sockets": sockets, "bids": len(sent), "expected": expected,
            "received": len(from_send), "lost": expected - len(from_send), "early": early,
            "from_commit": from_commit, "from_201": from_201, "from_send": from_send,
            "failures": failures,
            "errors": errors, "connect_seconds": connect_seconds,
            "request_ms": [(d - s) * 1000 for s, d in sent.values()]}


def _report(label: str, r: dict) -> None:
    print(f"{label}: {r['sockets']} sockets x {r['bids']} bids = {r['expected']} expected, "
          f"{r['received']} received, {r['lost']} lost, {len(r['failures'])} socket failures "
          f"(connect+subscribe {r['connect_seconds']:.1f} s)")
    a, b, c = r["from_201"], r["from_send"], r["from_commit"]
    print(f"    from commit (bid created_at): p50 {pct(c, .5):7.1f}  p99 {pct(c, .99):7.1f}  max "
          f"{max(c, default=float('nan')):7.1f} ms")
    print(f"    from 201: p50 {pct(a, .5):7.1f}  p99 {pct(a, .99):7.1f}  max "
          f"{max(a, default=float('nan')):7.1f} ms ({r['early']} arrived before the 201)")
    print(f"    from send: p50 {pct(b, .5):7.1f}  p99 {pct(b, .99):7.1f}  max "
          f"{max(b, default=float('nan')):7.1f} ms; REST bid round trip p50 "
          f"{pct(r['request_ms'], .5):.1f} ms")
    for problem in (r["failures"][:3] + r["errors"][:3]):
        print(f"    ! {problem}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench_fanout", description=__doc__)
    parser.add_argument("--sockets", type=int, default=2000)
    parser.add_argument("--bids", type=int, default=20)
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between bids")
    parser.add_argument("--client-procs", type=int, default=4,
                        help="client processes sharing the sockets (phones are separate "
                             "devices: one Python process reading 2,000 sockets measures "
                             "itself)")
    args, _unknown = parser.parse_known_args(argv)

    base = postgres_base_url("bench_fanout")
    if base is None:
        return 2
    limit = raise_nofile(2 * args.sockets + 1024)
    if limit < args.sockets + 256:
        print(f"open-file limit {limit} is too low for {args.sockets} sockets")
        return 2
    url, _conninfo = bench_database(base)
    wipe_auction_data()
    seller, *bidders = make_users(3, "779")

    with Processes("fanout") as procs:
        redis_url = procs.redis()
        server = procs.daphne(server_env(database_url=url, redis_url=redis_url))
        print(f"daphne {server} with the Redis channel layer; open-file limit {limit}")
        tokens = [b.token for b in bidders]
        baseline = asyncio.run(_round(server, str(make_listing(seller).pk), tokens, 1,
                                      args.bids, args.interval, 1))
        result = asyncio.run(_round(server, str(make_listing(seller).pk), tokens,
                                    args.sockets, args.bids, args.interval,
                                    args.client_procs))
    wipe_auction_data()
    _report("baseline (1 socket)", baseline)
    _report(f"fan-out ({args.sockets} sockets)", result)
    p99 = pct(result["from_commit"], .99)
    met = result["lost"] == 0 and p99 <= 250
    print(f"target: 0 lost, p99 <= 250 ms -> {'met' if met else 'NOT met'}")
    return 1 if result["errors"] or baseline["errors"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
