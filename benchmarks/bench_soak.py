"""Soak: minutes of mixed load on 2 REST + 2 socket servers, a Celery worker and beat, then books.

Creates a fresh `<db>_bench_soak` database (dropped and re-created on every run), seeds
`--users` users (a sixth of them sellers), `--listings` listings near Toronto (one hot listing,
cold auctions that outlive the run, auctions that end during the run, some at one instant
mid-run, many with bids and reserves, sold listings with their transactions), and starts its
own redis-server, two REST (granian) and two socket (uvicorn) servers, a Celery worker
(prefork, 2 processes) and celery beat (the closing sweep every 5 s), all with production
settings, throttles off.

Load for `--duration` seconds (default 600) from this one asyncio process, spread over both
REST servers: `--clients` (default 12, each pausing `--think` 0.5 s between requests: a
steady load these 2 cores sustain, not a saturation test) closed-loop httpx clients doing
browse, search,
near me, detail, bid history, notifications, bids on the hot listing and on many cold ones
(with `Idempotency-Key`; some retried with the same key, some twice at once: the answer must
be the first one), chat over REST, and the escrow path (pay with the simulated backend, QR,
verify; payouts run on the worker); `--sockets` (default 300) sockets subscribed to listings,
which reconnect every 20-60 s and check `seq` per API.md (a gap → re-read over REST), and
`--chat-sockets` (default 20) authenticated sockets in chat rooms that post with `requestId`.

Prints every `--report-every` seconds and at the end: requests/s, p50/p99 per kind, expected
business refusals (bid_too_low, auction_ended, ...) apart from errors (5xx, timeouts,
connection errors, unexpected codes), socket messages, seq gaps, RSS of servers/worker/beat;
the baseline next to the end figures is the start RSS and the first interval's throughput.
At the end it waits for the sweep to close every due auction, runs `manage.py ledger_check`,
and replays every listing's bids through `bidding.rules` against its row, bid rows, seq and
close outcome. Exit 1 on HTTP errors, socket errors (failed handshakes, drops, missing
acks or snapshots), unresolved seq gaps, ledger or replay discrepancies, or a traceback in a
server log. Quick check (the runner passes only `--opt=value` arguments on):
`python -m benchmarks bench_soak --duration=60`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from benchmarks._support import (
    BASE_DIR,
    Processes,
    _setup_django,
    bid_rows,
    cpu_seconds,
    pct,
    raise_nofile,
    server_env,
)

DEFAULT_BASE = "postgres://postgres@127.0.0.1:5432/biddt"
MAX_PRICE_CENTS = int(os.environ.get("BIDDT_MAX_PRICE_CENTS", "100000000"))
TORONTO = (43.6532, -79.3832)
ADJECTIVES = ["vintage", "antique", "modern", "compact", "electric", "wooden", "leather",
              "folding", "portable", "classic", "retro", "mini"]
NOUNS = ["guitar", "bicycle", "sofa", "camera", "desk", "lamp", "drill", "jacket", "table",
         "speaker", "keyboard", "tent", "monitor", "chair", "amplifier", "kettle", "watch"]
CATEGORIES = ["electronics", "furniture", "home", "clothing", "sports", "toys", "books",
              "vehicles", "tools", "collectibles", "music", "other"]
CONDITIONS = ["new", "like_new", "good", "fair", "poor"]
MIN_RE = re.compile(r"minimum_next_bid_cents=(\d+)")
SOFT_CLOSE_SECONDS = 30  # the servers' soft-close window: extended auctions end within the run
BID_REFUSALS = frozenset({"bid_too_low", "auction_ended", "listing_not_active"})
# action -> weight (one HTTP client picks one action per loop turn)
ACTIONS = {"browse": 10, "search": 9, "near_me": 9, "detail": 12, "bid_history": 4,
           "notifications": 4, "bid_hot": 12, "bid_cold": 18, "chat_post": 6, "chat_read": 4,
           "escrow": 6}
SOCKET_KINDS = frozenset({"chat_ws", "ws_connect", "ws_subscribe"})  # not HTTP requests
KIND_ORDER = ["browse", "search", "near_me", "detail", "bid_history", "notifications",
              "bid_hot", "bid_cold", "bid_replay", "chat_post", "chat_read", "chat_ws",
              "escrow_pay", "escrow_qr", "escrow_verify", "resync", "ws_connect",
              "ws_subscribe"]


# --- database and seed ------------------------------------------------------------------------

def _soak_database(base: str) -> str:
    """Drop and re-create `<name>_bench_soak`, migrate it, point this process's Django at it."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(base)
    name = (parts.path.lstrip("/") or "biddt") + "_bench_soak"
    url = urlunsplit(parts._replace(path="/" + name))
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    _setup_django(url)
    from django.core.management import call_command

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    print(f"fresh database {name} migrated in {time.perf_counter() - started:.1f} s")
    return url


def _token(user) -> str:
    """An access token that outlives the run (the default 15 minutes would not)."""
    from rest_framework_simplejwt.tokens import AccessToken

    token = AccessToken.for_user(user)
    token.set_exp(lifetime=timedelta(hours=6))
    return str(token)


def _point(rng: random.Random) -> tuple[float, float]:
    dist, bearing = 40 * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
    lat = TORONTO[0] + dist / 111.195 * math.cos(bearing)
    lng = TORONTO[1] + dist / (111.195 * math.cos(math.radians(TORONTO[0]))) * math.sin(bearing)
    return round(lat, 6), round(lng, 6)


@dataclass
class Seed:
    tokens: dict[str, str]  # user id -> access token
    sellers: list[str]
    buyers: list[str]
    hot: str
    cold: list[str]  # active auctions that outlive the run, bid on by the clients
    ending: list[str]  # auctions that end during the run
    ending_offsets: dict[str, float]  # seconds after the load starts
    browse_only: list[str]
    minimum: dict[str, int]  # listing id -> minimum next bid at seed time
    txns: dict[str, dict]  # transaction id -> {"buyer", "seller", "status"}
    listings: int = 0
    bids: int = 0


def _seed_bids(listing, bidders: list, rng: random.Random, count: int) -> list:
    """`count` random valid bids, built by the benchmarks' one bid builder
    (`_support.bid_rows`: the auction rules, rows as `bid_place` stores them)."""
    from listings import rules

    def next_bid(state):
        bidder = rng.choice(bidders)
        minimum = rules.minimum_next_bid(state)
        amount = minimum + rng.randrange(0, 3) * rules.increment(minimum)
        maximum = amount + rng.randrange(0, amount // 2 + 1) if rng.random() < 0.6 else None
        return rules.BidInput(bidder.pk, amount, maximum)

    return bid_rows(listing, next_bid, count)


def _seed(args, rng: random.Random) -> Seed:
    from django.db import transaction
    from django.utils import timezone

    from accounts.models import User
    from bidding import rules, selectors
    from bidding.models import Bid
    from escrow.models import Transaction
    from escrow.services import transaction_create_for_sale
    from listings.models import Listing

    started = time.perf_counter()
    # create_user (not bulk_create): it fills the phone number's blind index and encryption.
    users = [User.objects.create_user(f"+1416555{i:04d}", display_name=f"soak user {i}")
             for i in range(args.users)]
    n_sellers = max(5, args.users // 6)
    sellers, buyers = users[:n_sellers], users[n_sellers:]
    tokens = {str(u.pk): _token(u) for u in users}

    now = timezone.now()
    far = now + timedelta(seconds=args.duration + 3 * 3600)
    n_ending = max(40, int(args.duration // 2))
    n_txns = args.transactions
    n_cold = max(100, args.listings // 8)
    n_browse = max(0, args.listings - 1 - n_cold - n_ending - n_txns)

    def listing(i: int, *, ends_at, reserve: int | None = None, start: int | None = None,
                status: str = "active") -> Listing:
        adjective, noun = rng.choice(ADJECTIVES), rng.choice(NOUNS)
        price = start or int(min(500_000, max(500, rng.lognormvariate(8.5, 0.9))))
        lat, lng = _point(rng)
        return Listing(
            id=uuid.uuid4(), seller=rng.choice(sellers), title=f"{adjective.title()} {noun} #{i}",
            description=f"{adjective} {noun} in good shape. Pick-up only.",
            category=rng.choice(CATEGORIES), condition=rng.choice(CONDITIONS),
            auction_type="auction", status=status, starting_price_cents=price,
            current_price_cents=price, reserve_price_cents=reserve,
            starts_at=now - timedelta(hours=1), ends_at=ends_at,
            location_lat=lat, location_lng=lng, location_name="Toronto")

    listings: list[Listing] = []
    bids: list[Bid] = []
    hot = listing(0, ends_at=far, start=1000)
    hot.title = "Soak hot item: vintage guitar"
    listings.append(hot)
    cold = [listing(i, ends_at=far) for i in range(1, n_cold + 1)]
    for item in cold:
        if rng.random() < 0.3:
            bids += _seed_bids(item, buyers, rng, rng.randint(1, 4))
    listings += cold
    ending, offsets = [], {}
    burst_at = args.duration / 2
    for i in range(n_ending):
        start = int(min(100_000, max(500, rng.lognormvariate(8.0, 0.8))))
        reserve = start * 3 if rng.random() < 0.15 else None
        item = listing(10_000 + i, ends_at=far, start=start, reserve=reserve)
        if rng.random() < 0.6:
            bids += _seed_bids(item, buyers, rng, rng.randint(1, 3))
        # a fifth end together mid-run (a closing burst under load), the rest spread out
        offsets[str(item.pk)] = (burst_at if i % 5 == 0
                                 else rng.uniform(20, max(30.0, args.duration - 25)))
        ending.append(item)
    listings += ending
    browse_only = [listing(20_000 + i, ends_at=far) for i in range(n_browse)]
    listings += browse_only
    sold = []
    for i in range(n_txns):
        item = listing(30_000 + i, ends_at=now - timedelta(minutes=5), status="sold")
        bids += _seed_bids(item, buyers, rng, rng.randint(1, 3))
        item.seq += 1  # the close
        item.closed_at = now - timedelta(minutes=4)
        sold.append(item)
    listings += sold

    with transaction.atomic():
        Listing.objects.bulk_create(listings, batch_size=1000)
        Bid.objects.bulk_create(bids, batch_size=2000)
        by_pk = {u.pk: u for u in users}
        txns = {}
        for item in sold:
            winning = (Bid.objects.filter(listing=item, bidder_id=item.leader_id)
                       .order_by("-seq", "-is_auto_bid").first())
            txn = transaction_create_for_sale(
                listing=item, buyer=by_pk[item.leader_id], amount_cents=item.current_price_cents,
                source=Transaction.Source.AUCTION, winning_bid=winning)
            txns[str(txn.pk)] = {"buyer": str(txn.buyer_id), "seller": str(txn.seller_id),
                                 "status": txn.status}
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    minimum = {str(item.pk): rules.minimum_next_bid(selectors.auction_state(item))
               for item in [hot, *cold, *ending]}
    print(f"seeded {len(users)} users ({len(sellers)} sellers), {len(listings):,} listings "
          f"(1 hot, {len(cold)} cold, {len(ending)} ending during the run, {len(browse_only)} "
          f"browse-only, {len(sold)} sold with a transaction), {len(bids):,} bids in "
          f"{time.perf_counter() - started:.1f} s")
    return Seed(tokens=tokens, sellers=[str(u.pk) for u in sellers],
                buyers=[str(u.pk) for u in buyers], hot=str(hot.pk),
                cold=[str(x.pk) for x in cold], ending=[str(x.pk) for x in ending],
                ending_offsets=offsets, browse_only=[str(x.pk) for x in browse_only],
                minimum=minimum, txns=txns, listings=len(listings), bids=len(bids))


def _schedule_endings(seed: Seed) -> float:
    """Set the ending auctions' `ends_at` relative to now (the load's start)."""
    from django.utils import timezone

    from listings.models import Listing

    now = timezone.now()
    items = list(Listing.objects.filter(pk__in=seed.ending))
    for item in items:
        item.ends_at = now + timedelta(seconds=seed.ending_offsets[str(item.pk)])
    Listing.objects.bulk_update(items, ["ends_at"], batch_size=500)
    return time.time()


# --- measurements ---------------------------------------------------------------------------

@dataclass
class KindStats:
    ok: int = 0
    expected: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)

    @property
    def answered(self) -> int:
        return self.ok + self.expected


class Recorder:
    """Per kind: ok / expected business refusal / error, latency of answered requests."""

    def __init__(self) -> None:
        self.total: dict[str, KindStats] = defaultdict(KindStats)
        self.window: dict[str, KindStats] = defaultdict(KindStats)
        self.expected: Counter = Counter()  # (kind, "409 bid_too_low")
        self.errors: Counter = Counter()  # (kind, "500 server_error" | "timeout" | ...)
        self.samples: dict[str, str] = {}

    def add(self, kind: str, outcome: str, ms: float | None, label: str = "",
            sample: str = "") -> None:
        for stats in (self.total[kind], self.window[kind]):
            setattr(stats, outcome, getattr(stats, outcome) + 1)
            if ms is not None and outcome != "errors":
                stats.latencies.append(ms)
        if outcome == "expected":
            self.expected[(kind, label)] += 1
        elif outcome == "errors":
            self.errors[(kind, label)] += 1
            self.samples.setdefault(f"{kind} {label}", sample[:300])

    def take_window(self) -> dict[str, KindStats]:
        window, self.window = self.window, defaultdict(KindStats)
        return window


@dataclass
class SockState:
    """One socket's view of one listing room."""

    base: int  # seq of the last snapshot (subscribed) or resync
    last: int  # highest seq known
    max_event: int | None = None  # highest seq received in an event
    closed: bool = False


@dataclass
class Ctx:
    args: Any
    seed: Seed
    servers: list[str]  # REST
    deadline: float  # monotonic end of the load
    ws_servers: list[str] = field(default_factory=list)  # sockets
    rec: Recorder = field(default_factory=Recorder)
    ws: Counter = field(default_factory=Counter)
    ws_window: Counter = field(default_factory=Counter)
    ws_errors: Counter = field(default_factory=Counter)
    minimum: dict[str, int] = field(default_factory=dict)
    txns: dict[str, dict] = field(default_factory=dict)
    busy: set[str] = field(default_factory=set)
    sockets_open: int = 0
    tails: list[tuple[str, int]] = field(default_factory=list)  # (listing, last seq) at end
    resync_clients: list = field(default_factory=list)
    closed_listings: set[str] = field(default_factory=set)

    def ws_count(self, key: str, n: int = 1) -> None:
        self.ws[key] += n
        self.ws_window[key] += n

    def token(self, user_id: str) -> str:
        return self.seed.tokens[user_id]


def _error_code(response) -> str:
    try:
        body = response.json()
        return str(body["errors"][0]["code"])
    except (ValueError, KeyError, IndexError, TypeError):
        return "?"


async def _call(ctx: Ctx, client, kind: str, method: str, url: str, *, token: str | None = None,
                body: Any = None, headers: dict | None = None,
                expected: frozenset[str] = frozenset()):
    """One request, classified: ok (2xx), expected (a business refusal named in `expected`),
    error (5xx, other 4xx, timeout, connection). Returns the response or None."""
    import httpx

    sent = dict(headers or {})
    if token:
        sent["Authorization"] = f"Bearer {token}"
    started = time.perf_counter()
    try:
        response = await client.request(method, url, json=body, headers=sent)
    except httpx.TimeoutException as exc:
        ctx.rec.add(kind, "errors", None, "timeout", repr(exc))
        return None
    except httpx.HTTPError as exc:
        ctx.rec.add(kind, "errors", None, f"connection {type(exc).__name__}", repr(exc))
        return None
    ms = (time.perf_counter() - started) * 1000
    if response.status_code < 400:
        ctx.rec.add(kind, "ok", ms)
    else:
        code = _error_code(response)
        label = f"{response.status_code} {code}"
        if response.status_code < 500 and code in expected:
            ctx.rec.add(kind, "expected", ms, label)
        else:
            ctx.rec.add(kind, "errors", ms, label, response.text)
    return response


# --- HTTP actions ---------------------------------------------------------------------------

def _bid_body(ctx: Ctx, listing_id: str, rng: random.Random) -> dict:
    minimum = ctx.minimum.get(listing_id, 500)
    if rng.random() < 0.12:  # a stale screen: below the minimum (an expected bid_too_low)
        amount = max(1, minimum - rng.randrange(1, max(2, minimum // 20)))
    else:
        amount = minimum + rng.randrange(0, max(25, minimum // 25))
    # Never above the highest price a listing may have (BIDDT_MAX_PRICE_CENTS: 400 max_value):
    # a hot listing that reaches it just answers bid_too_low from then on.
    amount = min(amount, MAX_PRICE_CENTS)
    body = {"amount_cents": amount}
    if rng.random() < 0.5:
        body["max_amount_cents"] = min(MAX_PRICE_CENTS,
                                       amount + rng.randrange(0, max(50, amount // 8)))
    return body


def _learn_minimum(ctx: Ctx, listing_id: str, response) -> None:
    if response is None:
        return
    seen = None
    if response.status_code == 201:
        seen = response.json()["listing"]["minimum_next_bid_cents"]
    elif response.status_code == 409:
        match = MIN_RE.search(response.text)
        seen = int(match.group(1)) if match else None
    if seen is not None:
        ctx.minimum[listing_id] = max(ctx.minimum.get(listing_id, 0), seen)


async def _bid(ctx: Ctx, client, rng: random.Random, kind: str, listing_id: str) -> None:
    bidder = rng.choice(ctx.seed.buyers)
    body = _bid_body(ctx, listing_id, rng)
    key = str(uuid.uuid4())
    url = f"/v1/listings/{listing_id}/bids"
    token = ctx.token(bidder)

    def send(call_kind: str, expected: frozenset[str] = BID_REFUSALS):
        return _call(ctx, client, call_kind, "POST", url, token=token, body=body,
                     headers={"Idempotency-Key": key}, expected=expected)

    if rng.random() < 0.05:
        # A double tap: the same first request twice at once. Whatever the order, the 201s
        # must carry one bid id, and at most one of them may be fresh (not replayed).
        answers = [r for r in await asyncio.gather(send(kind), send("bid_replay"))
                   if r is not None and r.status_code == 201]
        for response in answers:
            _learn_minimum(ctx, listing_id, response)
        ctx.ws_count("double_taps")
        fresh = [r for r in answers if r.headers.get("Idempotent-Replayed") != "true"]
        if len({r.json()["id"] for r in answers}) > 1 or len(fresh) > 1:
            ctx.rec.add("bid_replay", "errors", None, "double tap created two bids",
                        " | ".join(r.text[:150] for r in answers))
        return
    response = await send(kind)
    _learn_minimum(ctx, listing_id, response)
    if response is None or response.status_code != 201 or rng.random() >= 0.1:
        return
    # A client that lost the answer retries with the same key (sometimes twice at once): it
    # must get the first answer back, and nothing new is created.
    first = response.json()["id"]
    tries = 2 if rng.random() < 0.3 else 1
    answers = await asyncio.gather(*(send("bid_replay", frozenset()) for _ in range(tries)))
    for again in answers:
        if again is None or again.status_code != 201:
            continue
        ctx.ws_count("replays")
        if again.json().get("id") != first or again.headers.get("Idempotent-Replayed") != "true":
            ctx.rec.add("bid_replay", "errors", None, "replay mismatch",
                        f"first {first}, replay {again.text[:200]}")
        else:
            ctx.ws_count("replays_ok")


async def _escrow(ctx: Ctx, client, rng: random.Random) -> None:
    candidates = [t for t, v in ctx.txns.items()
                  if v["status"] in ("pending_payment", "in_escrow") and t not in ctx.busy]
    if not candidates:
        return
    txn_id = rng.choice(candidates)
    txn = ctx.txns[txn_id]
    ctx.busy.add(txn_id)
    try:
        base = f"/v1/transactions/{txn_id}"
        if txn["status"] == "pending_payment":
            response = await _call(ctx, client, "escrow_pay", "POST", f"{base}/pay",
                                   token=ctx.token(txn["buyer"]),
                                   headers={"Idempotency-Key": f"pay-{txn_id}"})
            if response is not None and response.status_code == 200:
                txn["status"] = "in_escrow"
            return
        response = await _call(ctx, client, "escrow_qr", "GET", f"{base}/qr",
                               token=ctx.token(txn["buyer"]))
        if response is None or response.status_code != 200:
            return
        code = response.json()["code"]
        response = await _call(ctx, client, "escrow_verify", "POST", f"{base}/verify",
                               token=ctx.token(txn["seller"]), body={"code": code})
        if response is not None and response.status_code == 200:
            txn["status"] = "released"
            ctx.ws_count("escrow_released")
            if rng.random() < 0.2:  # the seller scans twice
                await _call(ctx, client, "escrow_verify", "POST", f"{base}/verify",
                            token=ctx.token(txn["seller"]), body={"code": code},
                            expected=frozenset({"code_already_used"}))
    finally:
        ctx.busy.discard(txn_id)


async def _action(ctx: Ctx, client, rng: random.Random, action: str) -> None:
    seed = ctx.seed
    if action == "browse":
        params = {"ordering": rng.choice(["ending_soon", "newest", "price_asc", "price_desc"]),
                  "page_size": 20}
        if rng.random() < 0.5:
            params["category"] = rng.choice(CATEGORIES)
        await _call(ctx, client, "browse", "GET", "/v1/listings?" + urlencode(params))
    elif action == "search":
        q = rng.choice(NOUNS) if rng.random() < 0.5 else \
            f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"
        await _call(ctx, client, "search", "GET",
                    "/v1/listings?" + urlencode({"q": q, "page_size": 20}))
    elif action == "near_me":
        lat, lng = _point(rng)
        params = {"lat": lat, "lng": lng, "radius_km": rng.choice([5, 10, 25]),
                  "ordering": "distance", "page_size": 20}
        await _call(ctx, client, "near_me", "GET", "/v1/listings?" + urlencode(params))
    elif action == "detail":
        pool = seed.cold if rng.random() < 0.5 else seed.browse_only or seed.cold
        listing_id = seed.hot if rng.random() < 0.1 else rng.choice(pool)
        token = ctx.token(rng.choice(seed.buyers)) if rng.random() < 0.5 else None
        await _call(ctx, client, "detail", "GET", f"/v1/listings/{listing_id}", token=token)
    elif action == "bid_history":
        listing_id = seed.hot if rng.random() < 0.3 else rng.choice(seed.cold)
        await _call(ctx, client, "bid_history", "GET", f"/v1/listings/{listing_id}/bids")
    elif action == "notifications":
        await _call(ctx, client, "notifications", "GET", "/v1/notifications",
                    token=ctx.token(rng.choice(seed.buyers)))
    elif action == "bid_hot":
        await _bid(ctx, client, rng, "bid_hot", seed.hot)
    elif action == "bid_cold":
        pool = seed.ending if rng.random() < 0.3 else seed.cold[:400]
        await _bid(ctx, client, rng, "bid_cold", rng.choice(pool))
    elif action in ("chat_post", "chat_read"):
        if not ctx.txns:
            return
        txn_id = rng.choice(list(ctx.txns))
        txn = ctx.txns[txn_id]
        who = txn["buyer"] if rng.random() < 0.5 else txn["seller"]
        url = f"/v1/transactions/{txn_id}/messages"
        if action == "chat_post":
            await _call(ctx, client, "chat_post", "POST", url, token=ctx.token(who),
                        body={"content": f"soak message {rng.randrange(10**6)}"})
        else:
            await _call(ctx, client, "chat_read", "GET", url, token=ctx.token(who))
    elif action == "escrow":
        await _escrow(ctx, client, rng)


async def _http_client(ctx: Ctx, index: int) -> None:
    import httpx

    rng = random.Random(ctx.args.seed * 1000 + index)
    names, weights = list(ACTIONS), list(ACTIONS.values())
    base = ctx.servers[index % len(ctx.servers)]
    async with httpx.AsyncClient(base_url=base, timeout=ctx.args.timeout) as client:
        while time.monotonic() < ctx.deadline:
            await _action(ctx, client, rng, rng.choices(names, weights)[0])
            if ctx.args.think > 0:
                await asyncio.sleep(rng.expovariate(1 / ctx.args.think))


# --- sockets --------------------------------------------------------------------------------

async def _resync(ctx: Ctx, listing_id: str, event: dict, server: int) -> bool:
    """A gap: re-read the listing over REST (API.md). The state read must be at least as new
    as the event that revealed the gap."""
    response = await _call(ctx, ctx.resync_clients[server], "resync", "GET",
                           f"/v1/listings/{listing_id}")
    if response is None or response.status_code != 200:
        return False
    seen = event.get("listing", {}).get("bid_count", 0)
    if response.json()["bid_count"] < seen:
        ctx.ws_count("resync_stale")
        return False
    return True


async def _on_seq(ctx: Ctx, state: dict[str, SockState], message: dict, server: int) -> None:
    listing_id, seq = message["listingId"], message["seq"]
    st = state.get(listing_id)
    if st is None:
        ctx.ws_count("seq_unsubscribed")
        return
    minimum = message.get("listing", {}).get("minimum_next_bid_cents")
    if minimum:
        ctx.minimum[listing_id] = max(ctx.minimum.get(listing_id, 0), minimum)
    if st.closed:
        ctx.ws_count("bid_after_ended")
    if seq == st.last + 1:
        ctx.ws_count("seq_in_order")
        st.last = seq
        st.max_event = seq
    elif seq <= st.last:
        if st.max_event is not None and seq <= st.max_event:
            ctx.ws_count("seq_out_of_order")  # older than an event already received
        else:
            ctx.ws_count("seq_stale")  # raced the snapshot: already in it
    else:
        ctx.ws_count("seq_gaps")
        ctx.ws_count("seq_missed", seq - st.last - 1)
        if await _resync(ctx, listing_id, message, server):
            ctx.ws_count("seq_resynced")
        else:
            ctx.ws_count("seq_unresolved")
        st.base = st.last = seq
        st.max_event = seq


async def _session(ctx: Ctx, ws, spec: dict, rng: random.Random, previous: dict[str, int],
                   server: int) -> None:
    """Subscribe (and join chats), then read until this connection's lifetime ends."""
    state: dict[str, SockState] = {}
    pending: dict[str, tuple[float, str | None]] = {}  # chat requestId -> (sent, message id)
    acks: dict[str, str] = {}
    asked: dict[str, float] = {}  # listing -> when `subscribe` was sent
    for listing_id in spec["listings"]:
        asked[listing_id] = time.perf_counter()
        await ws.send(json.dumps({"type": "subscribe", "listingId": listing_id}))
    for txn_id in spec["chats"]:
        await ws.send(json.dumps({"type": "join_chat", "transactionId": txn_id}))
    lifetime = rng.uniform(20, 60)
    end = min(time.monotonic() + lifetime, ctx.deadline + 3)
    next_post = time.monotonic() + rng.uniform(2, 10)
    loop = asyncio.get_running_loop()
    try:
        while True:
            now = time.monotonic()
            # past the lifetime: leave, after (at most --timeout s of) waiting for chat acks
            if now >= end and (not pending or now >= end + ctx.args.timeout):
                break
            wake = end + ctx.args.timeout if now >= end else end
            if spec["chats"] and now < end - 5:
                wake = min(wake, next_post)
            try:
                async with asyncio.timeout_at(loop.time() + (wake - now)):
                    raw = await ws.recv()
            except TimeoutError:
                if spec["chats"] and next_post <= time.monotonic() < end - 5:
                    next_post = time.monotonic() + rng.uniform(5, 15)
                    replay = bool(acks) and rng.random() < 0.2
                    request_id = rng.choice(list(acks)) if replay else str(uuid.uuid4())
                    txn_id = spec["txn_of"].setdefault(request_id, rng.choice(spec["chats"]))
                    content = spec["sent"].setdefault(request_id, f"ws note {request_id[:8]}")
                    pending[request_id] = (time.perf_counter(), acks.get(request_id))
                    await ws.send(json.dumps({"type": "message", "transactionId": txn_id,
                                              "content": content, "requestId": request_id}))
                continue
            message = json.loads(raw)
            kind = message.get("type")
            ctx.ws_count("messages")
            ctx.ws_count(f"msg {kind}")
            if kind == "subscribed":
                listing_id = message["listingId"]
                if listing_id in asked:
                    ctx.rec.add("ws_subscribe", "ok",
                                (time.perf_counter() - asked.pop(listing_id)) * 1000)
                snap = message["listing"]
                if snap["seq"] < previous.get(listing_id, 0):
                    ctx.ws_count("snapshot_regressed")
                state[listing_id] = SockState(base=snap["seq"], last=snap["seq"],
                                              closed=snap["status"] != "active")
            elif kind == "bid_placed":
                await _on_seq(ctx, state, message, server)
            elif kind == "auction_ended":
                if message["listingId"] in state:
                    state[message["listingId"]].closed = True
                ctx.closed_listings.add(message["listingId"])
            elif kind == "ack" and message.get("requestId") in pending:
                sent, first_id = pending.pop(message["requestId"])
                ms = (time.perf_counter() - sent) * 1000
                message_id = (message.get("message") or {}).get("id")
                if first_id is not None and message_id != first_id:
                    ctx.rec.add("chat_ws", "errors", None, "replay mismatch", raw)
                else:
                    ctx.rec.add("chat_ws", "ok", ms)
                    acks[message["requestId"]] = message_id
            elif kind == "error":
                code = message.get("code", "?")
                ctx.ws_errors[code] += 1
                if message.get("requestId") in pending:
                    pending.pop(message["requestId"])
                    ctx.rec.add("chat_ws", "errors", None, f"ws {code}", raw)
    finally:
        for listing_id, st in state.items():
            previous[listing_id] = max(previous.get(listing_id, 0), st.last)
            if time.monotonic() >= ctx.deadline and not st.closed:
                ctx.tails.append((listing_id, st.last))
        for request_id in pending:
            ctx.rec.add("chat_ws", "errors", None, "timeout (no ack)", request_id)
        for listing_id in asked:  # the whole connection's life (20-60 s) without a snapshot
            ctx.rec.add("ws_subscribe", "errors", None, "timeout (no subscribed)", listing_id)


async def _socket(ctx: Ctx, index: int, spec: dict) -> None:
    from websockets.asyncio.client import connect

    rng = random.Random(ctx.args.seed * 7919 + index)
    previous: dict[str, int] = {}
    attempt = failures = 0
    await asyncio.sleep(rng.uniform(0, 5))  # spread the first connects
    while time.monotonic() < ctx.deadline:
        server = (index + attempt) % len(ctx.ws_servers)  # reconnects alternate instances
        attempt += 1
        url = ctx.ws_servers[server].replace("http://", "ws://") + "/ws/"
        if spec["token"]:
            url += f"?token={spec['token']}"
        opened = time.perf_counter()
        try:
            async with connect(url, open_timeout=30, close_timeout=5, ping_interval=None,
                               max_queue=None) as ws:
                ctx.rec.add("ws_connect", "ok", (time.perf_counter() - opened) * 1000)
                ctx.ws_count("connects")
                failures = 0
                ctx.sockets_open += 1
                try:
                    await _session(ctx, ws, spec, rng, previous, server)
                finally:
                    ctx.sockets_open -= 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure is counted, then retried
            ctx.ws_count("socket_failures")
            ctx.rec.add("ws_connect", "errors", None, type(exc).__name__, repr(exc))
            ctx.ws_errors[f"socket {type(exc).__name__}"] += 1
            ctx.rec.samples.setdefault(f"socket {type(exc).__name__}", repr(exc)[:300])
            # back off like an app does (1, 2, 4 ... 30 s, jittered): no reconnect storm
            failures += 1
            await asyncio.sleep(min(30.0, 2.0 ** (failures - 1)) * rng.uniform(0.5, 1.0))


def _socket_specs(ctx: Ctx) -> list[dict]:
    rng = random.Random(ctx.args.seed + 17)
    seed = ctx.seed
    specs = []
    pool = seed.cold[:400] + seed.ending
    for j in range(ctx.args.sockets):
        listings = rng.sample(pool, 2)
        if j % 6 == 0:
            listings.append(seed.hot)
        token = ctx.token(rng.choice(seed.buyers)) if j % 3 == 0 else None
        specs.append({"listings": listings, "chats": [], "token": token, "sent": {},
                      "txn_of": {}})
    parties: dict[str, list[str]] = defaultdict(list)
    for txn_id, txn in seed.txns.items():
        parties[txn["buyer"]].append(txn_id)
        parties[txn["seller"]].append(txn_id)
    for user_id in rng.sample(sorted(parties), min(ctx.args.chat_sockets, len(parties))):
        specs.append({"listings": [], "chats": parties[user_id][:5],
                      "token": ctx.token(user_id), "sent": {}, "txn_of": {}})
    return specs


# --- reporting ------------------------------------------------------------------------------

def _rss_mb(pid: int, tree: bool = False) -> float:
    """Resident memory of `pid` (with its children when `tree`), from /proc."""
    pids = [pid, *(_children(pid) if tree else [])]
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _cpu_snapshot(pids: dict[str, tuple[int, bool]]) -> dict[str, float]:
    """CPU seconds used so far by each server (with children), by every postgres process on
    the machine, by this process, and the machine's busy and total time (/proc/stat)."""
    out = {name: cpu_seconds(pid) + (sum(cpu_seconds(c) for c in _children(pid)) if tree else 0.0)
           for name, (pid, tree) in pids.items()}
    postgres = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    postgres += cpu_seconds(int(entry.name))
            except OSError:
                continue
    out["postgres (all)"] = postgres
    out["client (this)"] = time.process_time()
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    out["_busy"] = (sum(ticks) - ticks[3] - ticks[4]) / hz
    out["_total"] = sum(ticks) / hz
    return out


def _cpu_line(before: dict[str, float], after: dict[str, float], seconds: float) -> str:
    used = {k: after[k] - before[k] for k in before if not k.startswith("_")}
    busy = after["_busy"] - before["_busy"]
    other = busy - sum(used.values())
    cores = os.cpu_count() or 1
    parts = [f"{k} {v / seconds * 100:.0f}%" for k, v in used.items()]
    parts.append(f"other processes {max(0.0, other) / seconds * 100:.0f}%")
    machine = busy / (after["_total"] - before["_total"]) * 100
    return (f"CPU (% of one core) over the run (load + socket drain): {', '.join(parts)}; "
            f"machine busy {machine:.0f}% of {cores} cores")


def _rss_all(pids: dict[str, tuple[int, bool]]) -> dict[str, float]:
    return {name: _rss_mb(pid, tree) for name, (pid, tree) in pids.items()}


def _fmt_rss(rss: dict[str, float]) -> str:
    return ", ".join(f"{name} {mb:.0f}" for name, mb in rss.items()) + " MB"


def _closing_progress(seed: Seed) -> tuple[int, int, list[float]]:
    """(closed, still due, close lags in s) of the auctions ending during the run."""
    from django.db import close_old_connections
    from django.utils import timezone

    from listings.models import Listing

    try:
        rows = list(Listing.objects.filter(pk__in=seed.ending)
                    .values_list("status", "ends_at", "closed_at"))
        now = timezone.now()
        closed = [r for r in rows if r[0] in ("sold", "unsold")]
        due = sum(1 for r in rows if r[0] == "active" and r[1] <= now)
        lags = [(c - e).total_seconds() for _, e, c in closed if c and e]
        return len(closed), due, lags
    finally:
        close_old_connections()


def _new_transactions(known: set[str]) -> list[dict]:
    from django.db import close_old_connections

    from escrow.models import Transaction

    try:
        return [{"id": str(pk), "buyer": str(b), "seller": str(s), "status": st}
                for pk, b, s, st in Transaction.objects.exclude(pk__in=known)
                .values_list("pk", "buyer_id", "seller_id", "status")]
    finally:
        close_old_connections()


def _kind_line(window: dict[str, KindStats], seconds: float) -> list[str]:
    parts = []
    for kind in KIND_ORDER:
        stats = window.get(kind)
        if not stats or not (stats.answered or stats.errors):
            continue
        text = (f"{kind} {stats.answered / seconds:.1f}/s "
                f"{pct(stats.latencies, .5):.0f}/{pct(stats.latencies, .99):.0f}ms")
        if stats.errors:
            text += f" ERR {stats.errors}"
        parts.append(text)
    lines, line = [], "   "
    for part in parts:
        if len(line) + len(part) > 110:
            lines.append(line)
            line = "   "
        line += " " + part + ";"
    lines.append(line)
    return lines


async def _reporter(ctx: Ctx, pids: dict, started: float, history: list) -> None:
    every = ctx.args.report_every
    last = time.monotonic()
    cpu_last = _cpu_snapshot(pids)
    known = set(ctx.txns)
    while True:
        remaining = ctx.deadline - time.monotonic()
        # no short last interval: the final one stretches to the end of the load
        await asyncio.sleep(max(0.0, remaining if remaining < 1.5 * every else every))
        now = time.monotonic()
        seconds = now - last
        last = now
        window = ctx.rec.take_window()
        ws, ctx.ws_window = ctx.ws_window, Counter()
        http = [v for k, v in window.items() if k not in SOCKET_KINDS]
        answered = sum(s.answered for s in http)
        expected = sum(s.expected for s in http)
        errors = sum(s.errors for s in http)
        socket_errors = sum(v.errors for k, v in window.items() if k in SOCKET_KINDS)
        closed, due, lags = await asyncio.to_thread(_closing_progress, ctx.seed)
        for txn in await asyncio.to_thread(_new_transactions, known):
            known.add(txn["id"])
            ctx.txns.setdefault(txn["id"], txn)
        rss = _rss_all(pids)
        cpu = _cpu_snapshot(pids)
        daphne_cpu = sum(cpu[k] - cpu_last[k] for k in cpu if k.startswith(("rest", "ws")))
        ours = sum(cpu[k] - cpu_last[k] for k in cpu if not k.startswith("_"))
        others = max(0.0, cpu["_busy"] - cpu_last["_busy"] - ours)
        cpu_last = cpu
        # requests per server CPU-second: the servers' efficiency, whatever else runs on the
        # machine (other processes take CPU from them; this figure doesn't move with that)
        per_cpu = answered / daphne_cpu if daphne_cpu else float("nan")
        history.append({"t": now - started, "rate": answered / seconds, "rss": rss,
                        "per_cpu": per_cpu})
        print(f"[{now - started:5.0f} s] {answered / seconds:6.1f} req/s answered "
              f"({expected} expected 4xx, {errors} errors), {per_cpu:.0f} per server CPU-s, "
              f"{socket_errors} socket errors | "
              f"CPU servers {daphne_cpu / seconds * 100:.0f}%, not ours "
              f"{others / seconds * 100:.0f}% | sockets {ctx.sockets_open} open, "
              f"{ws['messages'] / seconds:.0f} msg/s, gaps {ws['seq_gaps']} "
              f"(unresolved {ws['seq_unresolved']}), out-of-order {ws['seq_out_of_order']}, "
              f"{ws['connects']} connects, {ws['socket_failures']} failed | closed "
              f"{closed}/{len(ctx.seed.ending)} (due {due}, lag p99 {pct(lags, .99):.1f} s) | "
              f"RSS {_fmt_rss(rss)}", flush=True)
        for line in _kind_line(window, seconds):
            print(line, flush=True)
        if now >= ctx.deadline - 0.5:
            return


async def _soak(ctx: Ctx, pids: dict, history: list) -> float:
    import httpx

    limits = httpx.Limits(max_connections=20)
    ctx.resync_clients = [httpx.AsyncClient(base_url=s, timeout=ctx.args.timeout, limits=limits)
                          for s in ctx.servers]
    started = time.monotonic()
    try:
        tasks = [asyncio.create_task(_http_client(ctx, i)) for i in range(ctx.args.clients)]
        tasks += [asyncio.create_task(_socket(ctx, j, spec))
                  for j, spec in enumerate(_socket_specs(ctx))]
        reporter = asyncio.create_task(_reporter(ctx, pids, started, history))
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=ctx.args.duration + 180)
        await reporter
    finally:
        for client in ctx.resync_clients:
            await client.aclose()
    return ctx.deadline - started  # the load's length (sockets then drain a few seconds)


async def _warm_up(ctx: Ctx) -> None:
    """Every code path once on both instances (not counted), and the sellers' wallets."""
    import httpx

    seed = ctx.seed
    for base in ctx.servers:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            token = ctx.token(seed.buyers[0])
            for url in ("/v1/listings", "/v1/listings?q=guitar",
                        f"/v1/listings?lat={TORONTO[0]}&lng={TORONTO[1]}&radius_km=10",
                        f"/v1/listings/{seed.cold[0]}", f"/v1/listings/{seed.hot}/bids"):
                await client.get(url, headers={"Authorization": f"Bearer {token}"})
    async with httpx.AsyncClient(base_url=ctx.servers[0], timeout=30) as client:
        for seller in seed.sellers[::2]:  # half the sellers can be paid out at once
            response = await client.post("/v1/users/me/wallet",
                                         headers={"Authorization": f"Bearer {ctx.token(seller)}"})
            if response.status_code not in (200, 201):
                print(f"wallet creation answered {response.status_code}: {response.text[:200]}")


# --- final checks ---------------------------------------------------------------------------

def _wait_closed(seed: Seed, timeout: float) -> tuple[float, int]:
    """Until no auction is due and every auction planned to end in the run has closed (soft
    close may have moved some a little past the load). Returns (seconds waited, still due)."""
    from django.utils import timezone

    from listings.models import Listing

    started = time.monotonic()
    while True:
        now = timezone.now()
        due = Listing.objects.filter(status="active", ends_at__lte=now).count()
        open_ending = Listing.objects.filter(pk__in=seed.ending, status="active").count()
        if (due == 0 and open_ending == 0) or time.monotonic() - started > timeout:
            return time.monotonic() - started, due + open_ending
        time.sleep(1)


def _wait_payouts(timeout: float) -> Counter:
    """Wait (bounded) for the worker to pay out the released transactions; count statuses."""
    from django.db.models import Count

    from escrow.models import Transaction

    deadline = time.monotonic() + timeout
    released = Transaction.objects.filter(status="released")
    while (released.filter(payout_status__in=["none", "pending"]).exists()
           and time.monotonic() < deadline):
        time.sleep(1)
    counts = Counter(dict(Transaction.objects.values("status").annotate(n=Count("pk"))
                          .values_list("status", "n")))
    counts.update({f"payout {k}": n for k, n in released.values("payout_status")
                   .annotate(n=Count("pk")).values_list("payout_status", "n")})
    return counts


def _ledger_check(env: dict[str, str]) -> tuple[int, str]:
    result = subprocess.run([sys.executable, "manage.py", "ledger_check"], cwd=BASE_DIR, env=env,
                            capture_output=True, text=True, timeout=300, check=False)
    return result.returncode, (result.stdout + result.stderr).strip()


def _replay_check() -> tuple[int, int, list[str]]:
    """Every listing: replay its active user bids (by seq) through `bidding.rules` and compare
    the state on the row, every bid row the replay implies, the seq, and the close outcome
    (sold iff a leader meets the reserve; a sale has one transaction at the price, for the
    leader). Returns (listings, bids, discrepancies)."""
    from django.utils import timezone

    from bidding import rules
    from bidding.models import Bid
    from escrow.models import Transaction
    from listings.models import Listing

    bids_by: dict[Any, list[tuple]] = defaultdict(list)
    n_bids = 0
    for row in (Bid.objects.filter(status="active")
                .order_by("listing_id", "seq", "is_auto_bid")
                .values_list("listing_id", "bidder_id", "amount_cents", "max_amount_cents",
                             "requested_amount_cents", "is_auto_bid", "seq", "is_max_raise")
                .iterator(chunk_size=5000)):
        bids_by[row[0]].append(row[1:])
        n_bids += 1
    txns = {lid: (buyer, amount) for lid, buyer, amount in
            Transaction.objects.values_list("listing_id", "buyer_id", "amount_cents")}
    now = timezone.now()
    problems: list[str] = []
    fields_ = ("pk", "starting_price_cents", "reserve_price_cents", "current_price_cents",
               "bid_count", "leader_id", "leader_max_cents", "seq", "status", "ends_at")
    n_listings = 0
    for values in Listing.objects.values_list(*fields_).iterator(chunk_size=2000):
        n_listings += 1
        (pk, start, reserve, price, count, leader, leader_max, seq, status, ends_at) = values
        rows = bids_by.get(pk, [])
        by_seq: dict[int, list[tuple]] = defaultdict(list)
        for bidder, amount, maximum, requested, auto, bid_seq, silent in rows:
            by_seq[bid_seq].append((bidder, amount, maximum, auto, silent, requested))
        state = rules.AuctionState.initial(starting_price_cents=start,
                                           reserve_price_cents=reserve)
        user_seqs = []
        for bid_seq in sorted(by_seq):
            group = by_seq[bid_seq]
            own = [g for g in group if not g[3]]
            if len(own) != 1:
                problems.append(f"{pk}: seq {bid_seq} has {len(own)} user bids")
                continue
            user_seqs.append(bid_seq)
            bidder, _amount, maximum, _auto, _silent, requested = own[0]
            outcome = rules.apply_bid(state, rules.BidInput(bidder, requested, maximum),
                                      validate=False)
            want = sorted((r.bidder_id, r.amount_cents, r.max_amount_cents, r.is_auto_bid,
                           r.is_max_raise) for r in outcome.records)
            got = sorted(g[:5] for g in group)
            if want != got:
                problems.append(f"{pk}: bid rows at seq {bid_seq} {got} != replay {want}")
            state = outcome.state
        if user_seqs != list(range(1, len(user_seqs) + 1)):
            problems.append(f"{pk}: user bid seqs are not 1..n: {user_seqs[:10]}...")
        row_state = (price, count, leader, leader_max)
        replayed = (state.current_price_cents, state.bid_count, state.leader_id,
                    state.leader_max_cents)
        if row_state != replayed:
            problems.append(f"{pk}: row (price, bid_count, leader, max) {row_state} != "
                            f"replay {replayed}")
        closed = status in ("sold", "unsold")
        if seq != len(user_seqs) + (1 if closed else 0):
            problems.append(f"{pk}: seq {seq} != {len(user_seqs)} bids"
                            f"{' + close' if closed else ''}")
        if closed:
            should_sell = state.has_bid and (reserve is None or state.current_price_cents
                                             >= reserve)
            if (status == "sold") != should_sell:
                problems.append(f"{pk}: closed {status} but replay says "
                                f"{'sold' if should_sell else 'unsold'}")
            txn = txns.get(pk)
            if status == "sold" and txn != (leader, price):
                problems.append(f"{pk}: sold to {leader} at {price} but transaction is {txn}")
            if status == "unsold" and txn is not None:
                problems.append(f"{pk}: unsold with a transaction {txn}")
        elif status == "active" and ends_at is not None and ends_at <= now:
            problems.append(f"{pk}: still active {(now - ends_at).total_seconds():.0f} s after "
                            f"its end")
    return n_listings, n_bids, problems


def _tail_check(ctx: Ctx) -> tuple[int, int]:
    """Sockets open at the end: last seq seen vs the row of each still-active listing (an
    event lost at the very end leaves no later event to reveal the gap). Returns (rooms
    checked, rooms behind)."""
    from listings.models import Listing

    seqs = {str(pk): seq for pk, seq in Listing.objects.filter(
        pk__in={lid for lid, _ in ctx.tails}, status="active").values_list("pk", "seq")}
    active = [(lid, last) for lid, last in ctx.tails if lid in seqs]
    return len(active), sum(1 for lid, last in active if last < seqs[lid])


def _log_tracebacks(procs: Processes, names: list[str], keep: str) -> dict[str, int]:
    """Tracebacks per server log (copied to `keep` when given: the logs go with `procs`)."""
    out = {}
    for name in names:
        path = procs.dir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        out[name] = text.count("Traceback (most recent call last)")
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            (Path(keep) / f"{name}.log").write_text(text)
    return out


def _wait_worker(broker_url: str, timeout: float = 60) -> bool:
    from celery import Celery

    app = Celery(broker=broker_url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if app.control.ping(timeout=1.0):
                return True
            time.sleep(0.5)
        return False
    finally:
        app.close()


# --- summary --------------------------------------------------------------------------------

def _summary(ctx: Ctx, elapsed: float, history: list, rss_start: dict,
             rss_end: dict) -> list[str]:
    lines = [f"{'kind':14} {'answered':>9} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} "
             f"{'expected':>9} {'errors':>7}"]
    total = KindStats()

    def row(kind: str, stats: KindStats) -> str:
        return (f"{kind:14} {stats.answered:9,} {stats.answered / elapsed:7.1f} "
                f"{pct(stats.latencies, .5):8.1f} {pct(stats.latencies, .99):8.1f} "
                f"{stats.expected:9,} {stats.errors:7,}")

    for kind in KIND_ORDER:
        stats = ctx.rec.total.get(kind)
        if not stats or kind in SOCKET_KINDS:
            continue
        total.ok += stats.ok
        total.expected += stats.expected
        total.errors += stats.errors
        total.latencies += stats.latencies
        lines.append(row(kind, stats))
    lines.append(row("all HTTP", total))
    lines.append("socket (per message or connection; answered = acks, snapshots, handshakes):")
    lines += [row(kind, ctx.rec.total[kind]) for kind in KIND_ORDER
              if kind in SOCKET_KINDS and kind in ctx.rec.total]
    if history:
        first, last_ = history[0], history[-1]
        lines.append(f"throughput: baseline (first interval) {first['rate']:.1f} req/s, last "
                     f"interval {last_['rate']:.1f} req/s (last/first "
                     f"{last_['rate'] / first['rate'] if first['rate'] else 0:.2f}); whole run "
                     f"{total.answered / elapsed:.1f} req/s")
        lines.append(f"efficiency (requests per server CPU-second, independent of other load "
                     f"on the machine): first interval {first['per_cpu']:.0f}, last interval "
                     f"{last_['per_cpu']:.0f} (last/first "
                     f"{last_['per_cpu'] / first['per_cpu'] if first['per_cpu'] else 0:.2f})")
    expected = ", ".join(f"{k} {label}: {n:,}"
                         for (k, label), n in sorted(ctx.rec.expected.items()))
    lines.append(f"expected business refusals: {expected or 'none'}")
    errors = ", ".join(f"{k} {label}: {n:,}"
                       for (k, label), n in sorted(ctx.rec.errors.items()))
    lines.append(f"errors by kind (5xx, timeouts, connection errors, unexpected codes): "
                 f"{errors or 'none'}")
    for label, sample in list(ctx.rec.samples.items())[:10]:
        lines.append(f"    e.g. {label}: {sample[:200]}")
    ws = ctx.ws
    by_type = ", ".join(f"{k[4:]} {n:,}" for k, n in sorted(ws.items()) if k.startswith("msg "))
    lines.append(f"sockets: {ws['connects']:,} connects ({ctx.args.sockets} listing sockets + "
                 f"{ctx.args.chat_sockets} chat sockets, reconnecting every 20-60 s), "
                 f"{ws['socket_failures']:,} failed connects or drops (retried with backoff), "
                 f"{ws['messages']:,} messages ({by_type})")
    lines.append(f"seq: {ws['seq_in_order']:,} in order, {ws['seq_stale']:,} stale (raced the "
                 f"snapshot), {ws['seq_gaps']} gaps ({ws['seq_missed']} events missed; "
                 f"{ws['seq_resynced']} resynced over REST, {ws['seq_unresolved']} unresolved), "
                 f"{ws['seq_out_of_order']} out of order, {ws['snapshot_regressed']} snapshots "
                 f"older than the previous connection, {ws['bid_after_ended']} bid_placed "
                 f"after auction_ended")
    if ctx.ws_errors:
        lines.append(f"socket errors: {dict(ctx.ws_errors)}")
    lines.append(f"idempotency: {ws['replays']:,} retried bids answered 201, "
                 f"{ws['replays_ok']:,} with the first answer (Idempotent-Replayed); "
                 f"{ws['double_taps']:,} double taps (same key twice at once), "
                 f"{ctx.rec.errors[('bid_replay', 'double tap created two bids')]} made two bids")
    warm = history[0]["rss"] if history else rss_start
    lines.append("RSS (MB) start -> after the first interval -> end (growth since the first "
                 "interval): " + ", ".join(
                     f"{name} {rss_start[name]:.0f} -> {warm.get(name, 0):.0f} -> "
                     f"{rss_end.get(name, 0):.0f} ({rss_end.get(name, 0) - warm.get(name, 0):+.0f})"
                     for name in rss_start))
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench_soak", description=__doc__)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load")
    parser.add_argument("--clients", type=int, default=12, help="concurrent HTTP clients")
    parser.add_argument("--sockets", type=int, default=300, help="listing-room sockets")
    parser.add_argument("--chat-sockets", type=int, default=20)
    parser.add_argument("--think", type=float, default=0.5,
                        help="mean pause of an HTTP client between requests (s)")
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--listings", type=int, default=3000)
    parser.add_argument("--transactions", type=int, default=120,
                        help="sold listings seeded with a transaction (chat, escrow)")
    parser.add_argument("--report-every", type=float, default=30.0)
    parser.add_argument("--timeout", type=float, default=30.0, help="HTTP timeout (s)")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--keep-logs", default="", help="copy the server logs to this folder")
    args, _unknown = parser.parse_known_args(argv)

    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        base = DEFAULT_BASE
        print(f"DATABASE_URL is not PostgreSQL: using {base} (database biddt_bench_soak)")
    limit = raise_nofile(4 * (args.sockets + args.chat_sockets) + 2048)
    url = _soak_database(base)
    seed = _seed(args, random.Random(args.seed))

    with Processes("soak") as procs:
        redis_url = procs.redis()
        env = server_env(database_url=url, redis_url=redis_url,
                         BIDDT_CHAT_MESSAGES_PER_MINUTE="100000000",
                         BIDDT_PAYMENTS_BACKEND="simulated",
                         BIDDT_SOFT_CLOSE_SECONDS=str(SOFT_CLOSE_SECONDS),
                         REQUEST_LOG_LEVEL="WARNING")
        servers, ws_servers = [], []
        pids: dict[str, tuple[int, bool]] = {}
        # As deployed: two REST processes (granian, which serves from a child: tree) and two
        # socket processes.
        for name in ("rest-1", "rest-2"):
            servers.append(procs.rest(env, name))
            pids[name] = (procs.started[-1].pid, True)
        for name in ("ws-1", "ws-2"):
            ws_servers.append(procs.sockets(env, name))
            pids[name] = (procs.started[-1].pid, True)
        worker = procs.spawn([sys.executable, "-m", "celery", "-A", "biddt", "worker",
                              "--concurrency=2", "--pool=prefork", "-l", "WARNING",
                              "-n", f"soak-{os.getpid()}@%h", "--without-gossip",
                              "--without-mingle"], env, "worker")
        beat = procs.spawn([sys.executable, "-m", "celery", "-A", "biddt", "beat", "-l",
                            "WARNING", "--pidfile", str(procs.dir / "beat.pid"),
                            "-s", str(procs.dir / "beat-schedule")], env, "beat")
        pids["worker"] = (worker.pid, True)
        pids["beat"] = (beat.pid, False)
        pids["redis"] = (procs.started[0].pid, False)
        if not _wait_worker(env["CELERY_BROKER_URL"]):
            print(f"celery worker did not answer a ping:\n{procs.log('worker')}")
            return 1
        print(f"REST {servers[0]} and {servers[1]}, sockets {ws_servers[0]} and "
              f"{ws_servers[1]}, celery worker (prefork, 2 processes) + "
              f"beat, redis {redis_url}; open-file limit {limit}")
        print(f"load: {args.duration:g} s, {args.clients} HTTP clients (closed loop, mean "
              f"think {args.think * 1000:.0f} ms) + {args.sockets} listing sockets + "
              f"{args.chat_sockets} chat sockets, all in this one asyncio process; the load is "
              f"kept moderate for a 2-core machine so that the servers, not the client, are "
              f"measured; soft close {SOFT_CLOSE_SECONDS} s")
        ctx = Ctx(args=args, seed=seed, servers=servers, ws_servers=ws_servers, deadline=0.0,
                  minimum=dict(seed.minimum), txns={k: dict(v) for k, v in seed.txns.items()})
        asyncio.run(_warm_up(ctx))
        rss_start = _rss_all(pids)
        print(f"RSS at start (after warm-up): {_fmt_rss(rss_start)}")
        _schedule_endings(seed)
        history: list[dict] = []
        cpu_before, wall = _cpu_snapshot(pids), time.monotonic()
        ctx.deadline = time.monotonic() + args.duration
        elapsed = asyncio.run(_soak(ctx, pids, history))
        cpu_line = _cpu_line(cpu_before, _cpu_snapshot(pids), time.monotonic() - wall)
        rss_end = _rss_all(pids)

        waited, still_due = _wait_closed(seed, timeout=SOFT_CLOSE_SECONDS + 90)
        closed, _due, lags = _closing_progress(seed)
        statuses = _wait_payouts(timeout=30)
        rooms, behind = _tail_check(ctx)
        ledger_code, ledger_out = _ledger_check(env)
        started = time.perf_counter()
        n_listings, n_bids, problems = _replay_check()
        replay_seconds = time.perf_counter() - started
        tracebacks = _log_tracebacks(procs, [*pids], args.keep_logs)

    print(f"\n== soak summary: {elapsed:.0f} s of load on 2 REST + 2 socket servers + worker "
          "+ beat")
    for line in _summary(ctx, elapsed, history, rss_start, rss_end):
        print(line)
    print(cpu_line)
    print(f"closing: {closed}/{len(seed.ending)} auctions planned to end in the run closed "
          f"(close lag after ends_at p50 {pct(lags, .5):.1f} s, p99 {pct(lags, .99):.1f} s, "
          f"max {max(lags, default=float('nan')):.1f} s); waited {waited:.0f} s after the load, "
          f"{still_due} still due")
    print("transactions: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())))
    print(f"tail: {rooms} rooms open at the end, {behind} whose last seq is behind the row "
          f"(a lost final event; informational)")
    print(f"ledger_check: exit {ledger_code}: {ledger_out}")
    print(f"replay check: {n_listings:,} listings, {n_bids:,} active bids replayed through "
          f"bidding.rules in {replay_seconds:.1f} s: {len(problems)} discrepancies")
    for problem in problems[:10]:
        print(f"    ! {problem}")
    print("server log tracebacks: " + ", ".join(f"{k} {v}" for k, v in tracebacks.items()))

    errors = sum(v.errors for k, v in ctx.rec.total.items() if k not in SOCKET_KINDS)
    socket_errors = sum(v.errors for k, v in ctx.rec.total.items() if k in SOCKET_KINDS)
    failures = {
        "HTTP errors (5xx, timeouts, connection, unexpected)": errors,
        "socket errors (failed connects or drops, no ack, no snapshot)": socket_errors,
        "unresolved seq gaps": ctx.ws["seq_unresolved"],
        "due auctions left open": still_due,
        "ledger_check": int(ledger_code != 0),
        "replay discrepancies": len(problems),
        "server tracebacks": sum(tracebacks.values()),
    }
    failed = {k: v for k, v in failures.items() if v}
    verdict = "OK" if not failed else "FAILED: " + ", ".join(f"{k} {v}" for k, v in failed.items())
    print(f"result: {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
