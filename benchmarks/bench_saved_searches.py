"""Saved-search matching: worker time per publication, indexed matching vs the naive loop.

Loads `--searches` (default 100,000) saved searches owned by 5,000 users and `--listings`
(default 1,000) listings into a dedicated PostgreSQL database named after `DATABASE_URL` +
`_bench_saved` (bulk_create through the ORM: the triggers fill the searches' tsquery,
lexemes and anchor and the listings' search vector; then ANALYZE), kept for the next run
(`--reload` rebuilds it). Then, for each listing, "publishes" it: runs the worker's job,
`discovery.services.saved_search_matches_notify` (read the listing, match it, insert and
hand over the notifications), in a transaction rolled back afterwards so every publication
meets the same data, and prints the median and p95 of its wall time, the matching query's
share (the target: under 50 ms at the median; the run fails past it), and the matches per
publication (each one a notification row the job inserts).

The baseline, on a sample of the publications (`--baseline-sample`, default 30) in the same
run: the naive loop over all searches. Every saved search with `notify` on is read and tested
in Python (category, condition, price, the haversine distance), and the words of those that
pass are checked by PostgreSQL in one query (the exact `tsquery @@ tsvector`). Both must find
the same searches for each listing of the sample, or the run fails.

Data: searches and listings share a vocabulary (20 adjectives, 98 product nouns in 9
categories, 24 brands). 95 % of searches have words (a noun, or an adjective or brand and a
noun, 5 % with a `-word`), three in four of them a place and three in ten a category; the
others are a category within 2-10 km of a place. 20 % have a condition, 30 % a price range;
places are 70 % around Toronto, the rest around five other Canadian cities, radius 5-100 km
(one in ten without one: 500 km). Listings are spread over the same places and words.
`python -m benchmarks bench_saved_searches --searches=20000` is quicker.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

from benchmarks._support import _setup_django, pct

TORONTO = (43.6532, -79.3832)
CITIES = [(45.5019, -73.5674), (45.4215, -75.6972), (49.2827, -123.1207),
          (51.0447, -114.0719), (53.5461, -113.4938), (49.8951, -97.1384)]
ADJECTIVES = ["vintage", "antique", "modern", "compact", "electric", "wooden", "leather",
              "folding", "portable", "classic", "heavy duty", "mini", "solid", "retro",
              "cordless", "wireless", "waterproof", "handmade", "oak", "steel"]
BRANDS = ["fender", "gibson", "yamaha", "sony", "canon", "nikon", "ikea", "dewalt", "makita",
          "bosch", "apple", "samsung", "lego", "trek", "specialized", "burton", "coleman",
          "kitchenaid", "dyson", "roland", "nintendo", "patagonia", "herman", "breville"]
NOUNS = {
    "music": ["guitar", "amplifier", "violin", "keyboard", "drum", "ukulele", "banjo",
              "cello", "trumpet", "saxophone", "synthesizer", "turntable"],
    "electronics": ["camera", "lens", "monitor", "printer", "speaker", "headphones",
                    "laptop", "tablet", "projector", "router", "console", "television",
                    "drone", "radio"],
    "furniture": ["sofa", "desk", "table", "chair", "bookshelf", "dresser", "wardrobe",
                  "bench", "ottoman", "cabinet", "bed", "futon"],
    "home": ["lamp", "kettle", "mirror", "rug", "blender", "toaster", "vacuum", "curtains",
             "cookware", "espresso", "planter", "clock"],
    "sports": ["bicycle", "snowboard", "skates", "tent", "kayak", "skis", "helmet",
               "treadmill", "dumbbells", "paddle", "racket", "sleeping bag"],
    "tools": ["drill", "saw", "sander", "grinder", "ladder", "compressor", "wrench",
              "toolbox", "generator", "lawnmower"],
    "clothing": ["jacket", "boots", "sneakers", "coat", "handbag", "sweater", "jeans",
                 "backpack", "dress", "scarf"],
    "toys": ["puzzle", "dollhouse", "train set", "stroller", "crib", "rocking horse",
             "board game", "scooter"],
    "collectibles": ["painting", "watch", "coin", "stamp", "poster", "vase", "sculpture",
                     "figurine"],
}
CATEGORY_OF = {noun: category for category, nouns in NOUNS.items() for noun in nouns}
ALL_NOUNS = sorted(CATEGORY_OF)
CONDITIONS = ["new", "like_new", "good", "fair", "poor"]
USERS = 5000


def _bench_url(base: str) -> tuple[str, str, str]:
    parts = urlsplit(base)
    name = parts.path.lstrip("/").removesuffix("_bench_saved") + "_bench_saved"
    return (urlunsplit(parts._replace(path="/" + name)), name,
            urlunsplit(parts._replace(path="/postgres")))


def _create_database(maintenance_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(maintenance_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}")


def _place(rng: random.Random, spread_km: float = 50) -> tuple[float, float]:
    lat0, lng0 = TORONTO if rng.random() < 0.7 else rng.choice(CITIES)
    dist, bearing = spread_km * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
    lat = lat0 + dist / 111.195 * math.cos(bearing)
    lng = lng0 + dist / (111.195 * math.cos(math.radians(lat0))) * math.sin(bearing)
    return round(lat, 6), round(lng, 6)


def _price(rng: random.Random) -> int:
    return int(min(5_000_000, max(500, rng.lognormvariate(9.2, 1.0))))


def _search_fields(rng: random.Random) -> dict:
    """One saved search: words (95 %), else a category near a place ("furniture within
    10 km"); a category, condition, price range and place on top of words as people add
    them."""
    noun = rng.choice(ALL_NOUNS)
    fields: dict = {}
    if rng.random() < 0.95:
        roll = rng.random()
        if roll < 0.2:
            q = noun
        elif roll < 0.45:
            q = f"{rng.choice(ADJECTIVES)} {noun}"
        else:
            q = f"{rng.choice(BRANDS)} {noun}"
        if rng.random() < 0.05:
            q += f" -{rng.choice(ADJECTIVES).split()[0]}"
        fields["q"] = q
        place = rng.random() < 0.75
        if rng.random() < 0.3:
            fields["category"] = CATEGORY_OF[noun]
        radii = [5, 10, 25, 50, 100]
    else:
        place = True
        fields["category"] = CATEGORY_OF[noun]
        radii = [2, 5, 10]
    if rng.random() < 0.2:
        fields["condition"] = rng.choice(CONDITIONS)
    if rng.random() < 0.3:
        low = _price(rng) // 2
        fields["min_price"], fields["max_price"] = low, low * rng.choice([2, 3, 5, 10])
    if place:
        fields["lat"], fields["lng"] = _place(rng)
        if rng.random() < 0.9 or "q" not in fields:
            fields["radius_km"] = float(rng.choice(radii))
    return fields


def _load(searches: int, listings: int, rng: random.Random) -> None:
    from django.contrib.auth.hashers import make_password
    from django.db import connection
    from django.utils import timezone

    from accounts.models import User, phone_index
    from biddt.dbstats import analyze
    from discovery.models import SavedSearch
    from discovery.services import saved_search_websearch
    from listings.models import Listing

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE discovery_savedsearch, listings_listing CASCADE")
    existing = User.objects.filter(display_name__startswith="saved bench ").count()
    if existing < USERS:
        unusable = make_password(None)
        users = []
        for i in range(existing, USERS):
            e164 = f"+1555{i + 3000000:07d}"
            users.append(User(phone_number=e164, phone_index=phone_index(e164),
                              display_name=f"saved bench {i}", password=unusable))
        User.objects.bulk_create(users, batch_size=2000)
    user_ids = list(User.objects.filter(display_name__startswith="saved bench ")
                    .order_by("display_name").values_list("pk", flat=True)[:USERS])
    batch = []
    for i in range(searches):
        fields = _search_fields(rng)
        batch.append(SavedSearch(
            user_id=user_ids[i % len(user_ids)], name=f"search {i}", notify=rng.random() < 0.9,
            q_websearch=saved_search_websearch(fields.get("q")), **fields))
        if len(batch) == 5000:
            SavedSearch.objects.bulk_create(batch)
            batch = []
    SavedSearch.objects.bulk_create(batch)
    now = timezone.now()
    rows = []
    for _ in range(listings):
        noun = rng.choice(ALL_NOUNS)
        adjective, brand = rng.choice(ADJECTIVES), rng.choice(BRANDS)
        price = _price(rng)
        place = _place(rng) if rng.random() < 0.95 else (None, None)
        rows.append(Listing(
            id=uuid.uuid4(), seller_id=user_ids[rng.randrange(len(user_ids))],
            title=f"{adjective.title()} {brand.title()} {noun}",
            description=f"{adjective} {noun} in {rng.choice(CONDITIONS)} shape. Pick-up only.",
            category=CATEGORY_OF[noun] if rng.random() < 0.9 else rng.choice(list(NOUNS)),
            condition=rng.choice(CONDITIONS), auction_type="auction", status="active",
            starting_price_cents=price, current_price_cents=price, starts_at=now,
            ends_at=now + timezone.timedelta(days=7), location_lat=place[0],
            location_lng=place[1]))
    Listing.objects.bulk_create(rows, batch_size=1000)
    loaded = time.perf_counter() - started
    analyze(User, SavedSearch, Listing)
    print(f"loaded {searches:,} saved searches and {listings:,} listings in {loaded:.1f} s, "
          f"analyzed in {time.perf_counter() - started - loaded:.1f} s")


def _naive(listing) -> set:
    """The baseline: every notify search read and tested in Python; the words of those that
    pass checked by PostgreSQL in one query."""
    from django.db import connection

    from biddt.geo import MAX_RADIUS_KM, haversine_km
    from discovery.models import SavedSearch

    price = listing.starting_price_cents
    survivors, text = set(), []
    for row in (SavedSearch.objects.filter(notify=True)
                .values_list("id", "user_id", "category", "condition", "min_price",
                             "max_price", "lat", "lng", "radius_km", "q_websearch")
                .iterator(chunk_size=5000)):
        (search_id, user_id, category, condition, low, high, lat, lng, radius,
         websearch) = row
        if user_id == listing.seller_id:
            continue
        if category is not None and category != listing.category:
            continue
        if condition is not None and condition != listing.condition:
            continue
        if (low is not None and price < low) or (high is not None and price > high):
            continue
        if lat is not None:
            if listing.location_lat is None:
                continue
            limit = radius if radius is not None else MAX_RADIUS_KM
            if haversine_km(lat, lng, listing.location_lat, listing.location_lng) > limit:
                continue
        if websearch:
            text.append(search_id)
        else:
            survivors.add(search_id)
    if text:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT s.id FROM discovery_savedsearch s, listings_listing l "
                "WHERE l.id = %s AND s.id = ANY(%s) AND s.q_tsquery @@ l.search_vector",
                [listing.pk, text])
            survivors.update(row[0] for row in cursor.fetchall())
    return survivors


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench_saved_searches", description=__doc__)
    parser.add_argument("--searches", type=int, default=100_000)
    parser.add_argument("--listings", type=int, default=1_000)
    parser.add_argument("--baseline-sample", type=int, default=30)
    parser.add_argument("--reload", action="store_true", help="rebuild the data set")
    parser.add_argument("--seed", type=int, default=21)
    args, _unknown = parser.parse_known_args(argv)

    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        print("bench_saved_searches needs PostgreSQL: set DATABASE_URL=postgres://... "
              "(the benchmark uses its own <name>_bench_saved database)")
        return 2
    url, name, maintenance = _bench_url(base)
    _create_database(maintenance, name)
    _setup_django(url)

    from django.core.management import call_command
    from django.db import connection, transaction

    from biddt.dbstats import analyze
    from discovery import selectors
    from discovery.models import SavedSearch
    from discovery.services import saved_search_matches_notify
    from listings.models import Listing

    call_command("migrate", verbosity=0)
    import logging

    logging.getLogger("discovery").setLevel(logging.WARNING)  # no line per publication
    if (args.reload or SavedSearch.objects.count() != args.searches
            or Listing.objects.count() != args.listings):
        _load(args.searches, args.listings, random.Random(args.seed))
    else:
        analyze(SavedSearch, Listing)
        print(f"reusing {args.searches:,} searches and {args.listings:,} listings in {name} "
              "(--reload to rebuild)")

    # Time the matching query alone too (wrapping the selector, as the job calls it).
    query_ms: list[float] = []
    matching = selectors.saved_searches_matching

    def timed_matching(*, listing):
        started = time.perf_counter()
        try:
            return matching(listing=listing)
        finally:
            query_ms.append((time.perf_counter() - started) * 1000)

    import discovery.services as services

    services.saved_searches_matching = timed_matching
    listing_ids = list(Listing.objects.order_by("id").values_list("pk", flat=True))
    job_ms, created = [], []
    try:
        for listing_id in listing_ids[:5]:  # warm the connection and caches
            with transaction.atomic():
                saved_search_matches_notify(listing_id=listing_id)
                transaction.set_rollback(True)
        query_ms.clear()
        for done, listing_id in enumerate(listing_ids):
            if done % 100 == 0:
                # The rolled-back notification rows are dead tuples in six indexes; clear
                # them (outside the timing) as autovacuum would on a live table.
                with connection.cursor() as cursor:
                    cursor.execute("VACUUM notifications_notification")
            with transaction.atomic():
                started = time.perf_counter()
                created.append(saved_search_matches_notify(listing_id=listing_id))
                job_ms.append((time.perf_counter() - started) * 1000)
                transaction.set_rollback(True)  # the next publication meets the same data
    finally:
        services.saved_searches_matching = matching

    sample = random.Random(args.seed).sample(listing_ids, min(args.baseline_sample,
                                                              len(listing_ids)))
    naive_ms, mismatched = [], []
    for listing_id in sample:
        listing = Listing.objects.get(pk=listing_id)
        started = time.perf_counter()
        naive = _naive(listing)
        naive_ms.append((time.perf_counter() - started) * 1000)
        indexed = {row[0] for row in matching(listing=listing)}
        if naive != indexed:
            mismatched.append((listing_id, len(naive), len(indexed)))

    notify = SavedSearch.objects.filter(notify=True).count()
    print(f"{len(job_ms)} publications against {args.searches:,} saved searches "
          f"({notify:,} with notify); matches per publication: median "
          f"{statistics.median(created):.0f}, mean {statistics.mean(created):.1f}, "
          f"max {max(created)}")
    print(f"{'':38} {'median':>8} {'p95':>8}  (ms per publication)")
    print(f"{'indexed: the whole job (match + notify)':38} {pct(job_ms, .5):8.2f} "
          f"{pct(job_ms, .95):8.2f}")
    print(f"{'indexed: the matching query':38} {pct(query_ms, .5):8.2f} "
          f"{pct(query_ms, .95):8.2f}")
    print(f"{'baseline: naive loop (matching only)':38} {pct(naive_ms, .5):8.2f} "
          f"{pct(naive_ms, .95):8.2f}  ({len(naive_ms)} publications)")
    print(f"speed-up of the matching at the median: "
          f"{pct(naive_ms, .5) / max(pct(query_ms, .5), 1e-9):.0f} x; "
          f"target: a publication matched in under 50 ms at the median (the whole job adds "
          f"one notification row per match)")
    if mismatched:
        print(f"FAIL: the naive loop and the indexed query disagree: {mismatched[:5]}")
        return 1
    if pct(query_ms, .5) >= 50:
        print("FAIL: the median publication took 50 ms or more to match")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
