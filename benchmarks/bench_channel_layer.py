"""Channel layer: channels_redis core RedisChannelLayer vs RedisPubSubChannelLayer, group fan-out.

For each layer, on a throwaway redis-server: a "server" layer instance holds `--consumers`
(default 200) channels in one group, each drained by its own receive loop (what a daphne
process with K sockets in one listing room does), and a second "sender" instance (the web
process or worker that committed the bid) calls `group_send`.
- throughput: `--messages` (default 200) group sends back to back; deliveries per second;
- latency: `--paced` (default 50) sends 20 ms apart; send -> receive p50/p99 per delivery;
- slow consumer: one more channel in the group that never reads, then `--flood` (default
  2,000) 1 KB group sends: how much the slow channel holds afterwards (Redis memory growth
  and the messages buffered in the server process for it), and whether a fast consumer still
  gets everything.
Prints both layers side by side. The core layer's capacity and expiry are biddt/settings.py's
(`CHANNEL_LAYER_CAPACITY`, `CHANNEL_LAYER_EXPIRY`) unless `--capacity`/`--expiry` are given.
Quick check: `python -m benchmarks bench_channel_layer --consumers=20 --messages=50 --flood=300`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

from benchmarks._support import Processes, pct

GROUP = "listing.bench"
LAYERS = {
    "core": "channels_redis.core.RedisChannelLayer",
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
}


def _make(kind: str, url: str, capacity: int, expiry: int):
    from channels_redis.core import RedisChannelLayer
    from channels_redis.pubsub import RedisPubSubChannelLayer

    if kind == "core":
        return RedisChannelLayer(hosts=[url], prefix="bench", capacity=capacity, expiry=expiry,
                                 group_expiry=86400)
    # The pub/sub layer has no capacity or expiry: it takes neither.
    return RedisPubSubChannelLayer(hosts=[url], prefix="bench")


def _buffered(kind: str, layer, channel: str) -> int:
    """Messages the server process holds in memory for `channel`, not yet received."""
    if kind == "core":
        queue = layer.receive_buffer.get(channel)
    else:
        queue = layer._get_layer().channels.get(channel)
    return queue.qsize() if queue is not None else 0


async def _redis_memory(url: str) -> int:
    import redis.asyncio as redis

    client = redis.from_url(url)
    try:
        return int((await client.info("memory"))["used_memory"])
    finally:
        await client.aclose()


async def _measure(kind: str, url: str, args) -> dict:
    server = _make(kind, url, args.capacity, args.expiry)
    sender = _make(kind, url, args.capacity, args.expiry)
    channels = [await server.new_channel() for _ in range(args.consumers)]
    for channel in channels:
        await server.group_add(GROUP, channel)
    latencies: list[float] = []
    counts = dict.fromkeys(channels, 0)
    stop = asyncio.Event()

    async def drain(channel: str) -> None:
        while not stop.is_set():
            try:
                message = await asyncio.wait_for(server.receive(channel), timeout=0.5)
            except TimeoutError:
                continue
            latencies.append((time.perf_counter() - message["t"]) * 1000)
            counts[channel] += 1

    readers = [asyncio.create_task(drain(c)) for c in channels]
    payload = "x" * 400
    # Warm up until every consumer got a message (the pub/sub layer subscribes lazily, and
    # both open their connections): not counted.
    deadline = time.monotonic() + 10
    while min(counts.values()) == 0 and time.monotonic() < deadline:
        await sender.group_send(GROUP, {"type": "ws.event", "t": time.perf_counter(),
                                        "p": payload})
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    counts.update(dict.fromkeys(channels, 0))
    latencies.clear()

    async def wait_for(total: int, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while sum(counts.values()) < total and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    # throughput: back-to-back sends
    started = time.perf_counter()
    for _ in range(args.messages):
        await sender.group_send(GROUP, {"type": "ws.event", "t": time.perf_counter(),
                                        "p": payload})
    await wait_for(args.consumers * args.messages, 30)
    elapsed = time.perf_counter() - started
    delivered = sum(counts.values())
    burst_latency = list(latencies)

    # latency: paced sends
    latencies.clear()
    base = sum(counts.values())
    for _ in range(args.paced):
        await sender.group_send(GROUP, {"type": "ws.event", "t": time.perf_counter(),
                                        "p": payload})
        await asyncio.sleep(0.02)
    await wait_for(base + args.consumers * args.paced, 10)
    paced = list(latencies)

    # slow consumer: one more channel in the group that is never read
    slow = await server.new_channel()
    await server.group_add(GROUP, slow)
    await asyncio.sleep(0.3)
    fast = channels[0]
    fast_before = counts[fast]
    memory_before = await _redis_memory(url)
    big = "y" * 1024
    for _ in range(args.flood):
        await sender.group_send(GROUP, {"type": "ws.event", "t": time.perf_counter(), "p": big})
    deadline = time.monotonic() + 30
    while counts[fast] - fast_before < args.flood and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    memory_after = await _redis_memory(url)
    slow_held = _buffered(kind, server, slow)
    fast_got = counts[fast] - fast_before

    stop.set()
    await asyncio.gather(*readers, return_exceptions=True)
    for layer in (server, sender):
        try:
            await layer.flush()
        except Exception:  # noqa: BLE001 - best effort cleanup of a throwaway server
            pass
    return {
        "delivered": delivered, "expected": args.consumers * args.messages, "seconds": elapsed,
        "burst_p50": pct(burst_latency, .5), "burst_p99": pct(burst_latency, .99),
        "paced_p50": pct(paced, .5), "paced_p99": pct(paced, .99),
        "paced_lost": args.consumers * args.paced - len(paced),
        "slow_held": slow_held, "redis_growth": memory_after - memory_before,
        "fast_got": fast_got,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench_channel_layer", description=__doc__)
    parser.add_argument("--consumers", type=int, default=200)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--paced", type=int, default=50)
    parser.add_argument("--flood", type=int, default=2000)
    parser.add_argument("--capacity", type=int, default=0)
    parser.add_argument("--expiry", type=int, default=0)
    args, _unknown = parser.parse_known_args(argv)
    # The same environment variables and defaults as biddt/settings.py's Redis layer.
    args.capacity = args.capacity or int(os.environ.get("CHANNEL_LAYER_CAPACITY", 100))
    args.expiry = args.expiry or int(os.environ.get("CHANNEL_LAYER_EXPIRY", 10))

    results = {}
    with Processes("channel-layer") as procs:
        for kind in LAYERS:
            url = procs.redis()  # a fresh server per layer: clean memory figures
            results[kind] = asyncio.run(asyncio.wait_for(_measure(kind, url, args), 300))

    print(f"{args.consumers} consumers in one group, capacity {args.capacity}, expiry "
          f"{args.expiry} s (core only; pubsub has neither)")
    print(f"{'':28} {'core':>14} {'pubsub':>14}")
    rows = [
        ("burst deliveries/s", lambda r: f"{r['delivered'] / r['seconds']:.0f}"),
        ("burst delivered/expected", lambda r: f"{r['delivered']}/{r['expected']}"),
        ("burst latency p50 ms", lambda r: f"{r['burst_p50']:.1f}"),
        ("burst latency p99 ms", lambda r: f"{r['burst_p99']:.1f}"),
        ("paced latency p50 ms", lambda r: f"{r['paced_p50']:.2f}"),
        ("paced latency p99 ms", lambda r: f"{r['paced_p99']:.2f}"),
        ("paced lost", lambda r: f"{r['paced_lost']}"),
        (f"slow: msgs held ({args.flood} sent)", lambda r: f"{r['slow_held']}"),
        ("slow: Redis growth KiB", lambda r: f"{r['redis_growth'] / 1024:.0f}"),
        ("slow: fast consumer got", lambda r: f"{r['fast_got']}"),
    ]
    for label, cell in rows:
        print(f"{label:28} {cell(results['core']):>14} {cell(results['pubsub']):>14}")
    core, pubsub = results["core"], results["pubsub"]
    print(f"baseline = core; pubsub/core burst throughput "
          f"{(pubsub['delivered'] / pubsub['seconds']) / (core['delivered'] / core['seconds']):.2f}"
          f", paced p99 {pubsub['paced_p99']:.2f} vs {core['paced_p99']:.2f} ms; a never-reading "
          f"channel holds {core['slow_held']} (core, bounded by capacity) vs "
          f"{pubsub['slow_held']} (pubsub, unbounded) messages")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
