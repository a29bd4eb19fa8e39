"""Browse latency: five typical `GET /v1/listings` queries over N listings, API vs raw SQL.

Loads `--listings` (default 200,000) listings into a dedicated PostgreSQL database named
after `DATABASE_URL` + `_bench` (created and migrated here, kept for the next run; `--reload`
rebuilds it), then times each query through the API (Django test client, in process: URL
routing, auth, validation, the ORM, serialisation, JSON) and the same page's SQL (the
listing query and the images prefetch, replayed with `cursor.execute`) in the same run, and
prints p50/p95 of both, their ratio, the listing query's server time and its plan: every
node with the rows it read and returned. A node reading more than 10 x what it returns
(stale statistics, a missing index) fails the run. The loader ANALYZEs what it loaded.
At `--listings=1000000` the load takes a few minutes (README). `--listings 2000` runs in seconds:
`python -m benchmarks bench_browse --listings=2000` (the runner passes only `-` arguments on)
or `python -m benchmarks.bench_browse --listings 2000`.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode, urlsplit, urlunsplit

TORONTO = (43.6532, -79.3832)
CITIES = [(45.5019, -73.5674), (45.4215, -75.6972), (49.2827, -123.1207),
          (51.0447, -114.0719), (53.5461, -113.4938), (49.8951, -97.1384)]
ADJECTIVES = ["vintage", "antique", "modern", "compact", "electric", "wooden", "leather",
              "folding", "portable", "classic", "heavy duty", "mini", "solid", "retro"]
NOUNS = ["guitar", "bicycle", "sofa", "camera", "desk", "lamp", "drill", "jacket", "table",
         "speaker", "keyboard", "tent", "stroller", "monitor", "chair", "amplifier", "kettle",
         "skates", "bookshelf", "printer", "snowboard", "watch", "mirror", "violin"]
CATEGORIES = ["electronics", "furniture", "home", "clothing", "sports", "toys", "books",
              "vehicles", "tools", "collectibles", "music", "other"]
CONDITIONS = ["new", "like_new", "good", "fair", "poor"]
# A plan node (scan, join) that reads more than this many rows per row it passes on means
# stale statistics or a missing index: the benchmark fails rather than time it.
MAX_READ_RATIO = 10

QUERIES = [
    ("text search", {"q": "vintage guitar"}),
    ("category, ending soon", {"category": "music", "ordering": "ending_soon"}),
    ("near me 10 km, by distance", {"lat": TORONTO[0], "lng": TORONTO[1], "radius_km": 10,
                                    "ordering": "distance"}),
    ("text + category + 25 km + price", {"q": "camera", "category": "electronics",
                                         "lat": TORONTO[0], "lng": TORONTO[1],
                                         "radius_km": 25, "ordering": "price_asc"}),
    ("price range + condition, newest", {"min_price": 5000, "max_price": 20000,
                                         "condition": "good", "ordering": "newest"}),
]


def _bench_url(base: str) -> tuple[str, str, str]:
    """(bench database URL, bench database name, maintenance database URL)."""
    parts = urlsplit(base)
    name = parts.path.lstrip("/") + "_bench"
    return (urlunsplit(parts._replace(path="/" + name)), name,
            urlunsplit(parts._replace(path="/postgres")))


def _setup_django(bench_url: str) -> None:
    os.environ["DATABASE_URL"] = bench_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "biddt.settings")
    # The API is timed, not the throttle: anonymous browse is limited to 300/min.
    os.environ["BIDDT_THROTTLE_ANON"] = "100000000/min"
    os.environ["BIDDT_THROTTLE_USER"] = "100000000/min"
    os.environ.setdefault("LOG_LEVEL", "WARNING")  # no request log line per timed call
    import django
    from django.conf import settings

    django.setup()
    import environ
    from django.db import connections

    # Already set up by another benchmark in this process: point it at the bench database.
    settings.DATABASES["default"]["NAME"] = environ.Env.db_url_config(bench_url)["NAME"]
    settings.THROTTLE_RATES.update({"anon": "100000000/min", "user": "100000000/min"})
    settings.ALLOWED_HOSTS = ["*"]
    connections.close_all()
    import logging

    for name in ("django_structlog", "django.request", "biddt"):
        # ERROR: the framework-floor requests answer 400, which these log as warnings.
        logging.getLogger(name).setLevel(logging.ERROR)


def _create_database(maintenance_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(maintenance_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}")


def _point_near(rng: random.Random) -> tuple[float, float]:
    """70 % within ~50 km of Toronto, the rest around other Canadian cities."""
    lat0, lng0 = TORONTO if rng.random() < 0.7 else rng.choice(CITIES)
    dist, bearing = 50 * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
    lat = lat0 + dist / 111.195 * math.cos(bearing)
    lng = lng0 + dist / (111.195 * math.cos(math.radians(lat0))) * math.sin(bearing)
    return round(lat, 6), round(lng, 6)


def _load(n: int, rng: random.Random) -> None:
    """COPY n listings (the search-vector trigger fills `search_vector`), then ANALYZE."""
    from django.db import connection

    from accounts.models import User
    from biddt.dbstats import analyze
    from listings.models import Listing, ListingImage, Watch

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE listings_watch, listings_listingimage, listings_listingreport, "
                       "listings_listing CASCADE")
    sellers = []
    for i in range(200):
        phone = f"+1555777{i:04d}"
        user = User.objects.filter(display_name=f"bench seller {i}").first()
        sellers.append(user or User.objects.create_user(phone, display_name=f"bench seller {i}"))
    seller_ids = [str(u.pk) for u in sellers]
    now = datetime.now(UTC)
    columns = ["id", "seller_id", "title", "description", "category", "condition",
               "auction_type", "starting_price_cents", "current_price_cents", "currency",
               "status", "status_reason", "starts_at", "ends_at", "location_lat",
               "location_lng", "location_name", "view_count", "bid_count", "seq",
               "created_at", "updated_at"]
    started = time.perf_counter()
    with connection.cursor() as cursor:
        raw = cursor.cursor  # the psycopg cursor, for COPY
        copy_sql = f"COPY listings_listing ({', '.join(columns)}) FROM STDIN"
        with raw.copy(copy_sql) as copy:
            for i in range(n):
                adjective, noun = rng.choice(ADJECTIVES), rng.choice(NOUNS)
                other = rng.choice(NOUNS)
                price = int(min(5_000_000, max(500, rng.lognormvariate(9.2, 1.0))))
                created = now - timedelta(seconds=rng.randint(0, 30 * 86400))
                status = "active" if rng.random() < 0.85 else rng.choice(["sold", "unsold"])
                lat, lng = _point_near(rng)
                copy.write_row([
                    str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    rng.choice(seller_ids),
                    f"{adjective.title()} {noun} #{i}",
                    f"{adjective} {noun} in {rng.choice(CONDITIONS)} shape, works with any "
                    f"{other}. Pick-up only.",
                    rng.choice(CATEGORIES), rng.choice(CONDITIONS), "auction",
                    price, price, "CAD", status, "", created,
                    now + timedelta(seconds=rng.randint(3600, 7 * 86400)),
                    lat, lng, "", 0, 0, 0, created, created,
                ])
    loaded = time.perf_counter() - started
    # Statistics for every table browse reads, before the first query is planned: without
    # them the planner takes the fresh tables for empty (issue 22: 250-550 ms plans).
    analyze(User, Listing, ListingImage, Watch)
    print(f"loaded {n:,} listings in {loaded:.1f} s, analyzed in "
          f"{time.perf_counter() - started - loaded:.1f} s")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _time_api(client, url: str, repeat: int,
              status: int = 200) -> tuple[list[float], list[float], int]:
    """Wall-clock and CPU (this process: `time.process_time`) ms of each request, and the
    page's row count. The CPU figure is the one a loaded machine moves least."""
    times, cpu, count = [], [], 0
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        response = client.get(url)
        cpu.append((time.process_time() - started_cpu) * 1000)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == status, response.content[:300]
        if status == 200:
            count = len(response.json()["results"])
    return times, cpu, count


def _time_floor(client, repeat: int) -> tuple[list[float], list[float]]:
    """The same view answering 400 before any query: what the framework costs by itself."""
    url = "/v1/listings?ordering=nope"
    client.get(url)
    times, cpu, _count = _time_api(client, url, repeat, status=400)
    return times, cpu


def _page_sql(client, url: str) -> list[str]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        client.get(url)
    return [q["sql"] for q in ctx.captured_queries
            if "listings_listing" in q["sql"] and q["sql"].lstrip().upper().startswith("SELECT")]


def _time_sql(statements: list[str], repeat: int) -> tuple[list[float], list[float]]:
    from django.db import connection

    times, cpu = [], []
    with connection.cursor() as cursor:
        for _ in range(repeat):
            started, started_cpu = time.perf_counter(), time.process_time()
            for statement in statements:
                cursor.execute(statement)
                cursor.fetchall()
            cpu.append((time.process_time() - started_cpu) * 1000)
            times.append((time.perf_counter() - started) * 1000)
    return times, cpu


def _plan(statement: str) -> tuple[float, list]:
    """Server execution time of the listing query (best of 3) and its plan's nodes."""
    from biddt.dbstats import explain, plan_shape

    docs = [explain(statement) for _ in range(3)]
    best = min(docs, key=lambda d: d["Execution Time"])
    return best["Execution Time"], plan_shape(best)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench_browse", description=__doc__)
    parser.add_argument("--listings", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=30, help="timed runs per query")
    parser.add_argument("--reload", action="store_true", help="rebuild the data set")
    parser.add_argument("--seed", type=int, default=42)
    args, _unknown = parser.parse_known_args(argv)

    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        print("bench_browse needs PostgreSQL: set DATABASE_URL=postgres://... "
              "(the benchmark uses its own <name>_bench database)")
        return 2
    bench_url, name, maintenance = _bench_url(base)
    _create_database(maintenance, name)
    _setup_django(bench_url)

    from django.core.management import call_command
    from django.test import Client

    from listings.models import Listing

    call_command("migrate", verbosity=0)
    if args.reload or Listing.objects.count() != args.listings:
        _load(args.listings, random.Random(args.seed))
    else:
        from accounts.models import User
        from biddt.dbstats import analyze
        from listings.models import ListingImage, Watch

        # A migration since the load may have added a column or an expression index.
        analyze(User, Listing, ListingImage, Watch)
        print(f"reusing {args.listings:,} listings in {name} (--reload to rebuild)")

    client = Client()
    header = (f"{'query':34} {'rows':>4} | {'API p50':>8} {'API p95':>8} | {'SQL p50':>8} "
              f"{'SQL p95':>8} | {'ratio':>5} | {'server':>6} | {'API CPU':>7} {'SQL CPU':>7}")
    results, shapes, bad = [], [], []
    for label, params in QUERIES:
        url = "/v1/listings?" + urlencode({**params, "page_size": 20})
        client.get(url)  # warm caches and connections
        api_times, api_cpu, rows = _time_api(client, url, args.repeat)
        statements = _page_sql(client, url)
        sql_times, sql_cpu = _time_sql(statements, args.repeat)
        server_ms, nodes = _plan(statements[0])
        ratio = _pct(api_times, .95) / _pct(sql_times, .95)
        results.append(f"{label:34} {rows:>4} | {_pct(api_times, .5):8.2f} "
                       f"{_pct(api_times, .95):8.2f} | {_pct(sql_times, .5):8.2f} "
                       f"{_pct(sql_times, .95):8.2f} | {ratio:5.2f} | {server_ms:6.2f} | "
                       f"{_pct(api_cpu, .5):7.2f} {_pct(sql_cpu, .5):7.2f}")
        shapes.append(f"{label}:")
        for node in nodes:
            flag = ""
            if node.read_ratio > MAX_READ_RATIO:
                flag = f"   <-- reads {node.read_ratio:.0f} x what it returns"
                bad.append(f"{label}: {node.describe().strip()}")
            shapes.append("  " + node.describe() + flag)
    floor, floor_cpu = _time_floor(client, args.repeat)
    print("\n".join(shapes))
    print()
    print(header + f"  (ms, {args.repeat} runs)")
    print("\n".join(results))
    print("API = the whole request in process; SQL = the same page's listing + images "
          "queries replayed; ratio = API p95 / SQL p95; server = EXPLAIN ANALYZE execution "
          "time of the listing query (best of 3); CPU = this process's CPU per request "
          "(median), the API's including its SQL's client side.")
    print(f"framework floor (a 400 from the same view, no query: middleware, auth, throttle, "
          f"validation, rendering): p50 {_pct(floor, .5):.2f} p95 {_pct(floor, .95):.2f} ms, "
          f"CPU {_pct(floor_cpu, .5):.2f} ms")
    if bad:
        print(f"\nFAIL: plan nodes reading more than {MAX_READ_RATIO} x the rows they return "
              "(missing statistics or a missing index):\n  " + "\n  ".join(bad))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
