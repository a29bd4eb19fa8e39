"""Saved-search reads: the caller's searches, a search's listings (the browse selector), the
searches a newly active listing matches, and the export of a user's searches.

Matching (`saved_searches_matching`) on PostgreSQL: each search is read through the partial
index of its anchor (discovery.models), one UNION ALL arm per anchor, and every arm applies
the same exact filters, so the database narrows 100,000 searches to the few that match:
- text: a GIN index on the searches' keys (`q_keys && the listing's keys`): a search whose
  words are all required (no OR) is keyed on one pair of them, so "vintage guitar" is a
  candidate only for listings holding both words, not for every vintage thing,
- geo: a GiST index on the box around each search's circle (`box @> the listing's point`),
- category: a btree on the category,
- none: the few searches with none of those filters.
Exact filters: the search's `tsquery @@` the listing's stored vector, category, condition,
price (the starting price), the great-circle distance within the radius (earthdistance, the
circle `GET /v1/listings` draws). SQLite (`make run`) filters the columns in SQL and the
place and words in Python, the way browse does there (LIKE on title and description).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from biddt.errors import NotFound
from biddt.geo import MAX_RADIUS_KM, haversine_km
from discovery.models import MatchedListing, SavedSearch
from listings.models import Listing, ListingStatus
from listings.selectors import Browse, listing_browse

FILTERS = ("q", "category", "condition", "min_price", "max_price", "lat", "lng", "radius_km")
FIELDS = ("id", "name", *FILTERS, "notify", "created_at", "updated_at")


def saved_searches_of(*, user) -> QuerySet[SavedSearch]:
    """The user's saved searches, newest first."""
    return SavedSearch.objects.filter(user_id=user.pk).order_by("-created_at", "-id")


def saved_search_get(*, user, saved_search_id: Any) -> SavedSearch:
    """One of the user's saved searches; another user's is 404 like a missing one."""
    search = SavedSearch.objects.filter(pk=saved_search_id, user_id=user.pk).first()
    if search is None:
        raise NotFound(_("Saved search not found."))
    return search


def saved_search_browse(*, search: SavedSearch, user, ordering: str | None = None) -> Browse:
    """The active listings the search matches now: `GET /v1/listings` with its filters."""
    return listing_browse(user=user, q=search.q, category=search.category,
                          condition=search.condition, min_price=search.min_price,
                          max_price=search.max_price, status=ListingStatus.ACTIVE,
                          lat=search.lat, lng=search.lng, radius_km=search.radius_km,
                          ordering=ordering)


def saved_searches_for_export(user) -> list[dict[str, Any]]:
    """The user's saved searches as plain data, for the account export."""
    return [{**row, "id": str(row["id"]), "created_at": row["created_at"].isoformat(),
             "updated_at": row["updated_at"].isoformat()}
            for row in saved_searches_of(user=user).values(*FIELDS)]


# --- matching ----------------------------------------------------------------------------

# A listing with more distinct lexemes than this is matched on single lexemes: its pairs
# (n * (n - 1) / 2 keys) would cost more to look up than the extra candidates.
MAX_PAIRED_LEXEMES = 80

# Conditions every arm applies: the exact meaning of each filter. A NULL point (a listing
# without a place) makes the distance NULL, so only searches without a place pass.
_EXACT = """
    s.notify AND s.user_id <> %(seller)s
    AND (s.category IS NULL OR s.category = %(category)s)
    AND (s.condition IS NULL OR s.condition = %(condition)s)
    AND (s.min_price IS NULL OR s.min_price <= %(price)s)
    AND (s.max_price IS NULL OR s.max_price >= %(price)s)
    AND (s.q_tsquery IS NULL OR s.q_tsquery @@ (SELECT v FROM listing))
    AND (s.lat IS NULL OR earth_distance(listing_earth_point(s.lat, s.lng),
                                         listing_earth_point(%(lat)s, %(lng)s))
                          <= COALESCE(s.radius_km, 500.0) / 6371.0088 * earth())"""

# One arm per anchor, each through its partial index (migration 0002); the arms are disjoint.
_MATCHING_SQL = """
WITH listing AS (SELECT search_vector AS v FROM listings_listing WHERE id = %(listing)s)
SELECT s.id, s.user_id, s.name FROM discovery_savedsearch s
 WHERE s.anchor = 'text' AND {text_key} AND {exact}
UNION ALL
SELECT s.id, s.user_id, s.name FROM discovery_savedsearch s
 WHERE s.anchor = 'geo'
   AND saved_search_earth_box(s.lat, s.lng, COALESCE(s.radius_km, 500.0))
       @> listing_earth_point(%(lat)s, %(lng)s)
   AND {exact}
UNION ALL
SELECT s.id, s.user_id, s.name FROM discovery_savedsearch s
 WHERE s.anchor = 'category' AND s.category = %(category)s AND {exact}
UNION ALL
SELECT s.id, s.user_id, s.name FROM discovery_savedsearch s
 WHERE s.anchor = 'none' AND {exact}
"""
_MATCHING_BY_PAIRS = _MATCHING_SQL.format(text_key="s.q_keys && %(keys)s::text[]",
                                          exact=_EXACT)
_MATCHING_BY_LEXEMES = _MATCHING_SQL.format(text_key="s.q_lexemes && %(keys)s::text[]",
                                            exact=_EXACT)


def listing_text_keys(lexemes: list[str]) -> list[str]:
    """What a listing's words can match in `q_keys`: each lexeme (a one-word search, or any
    word of an OR) and each pair of lexemes as `"a b"`, a < b (a search whose words are all
    required keys on one pair of them, so the index finds only searches whose two words are
    both in the listing)."""
    words = sorted(set(lexemes))
    return words + [f"{a} {b}" for i, a in enumerate(words) for b in words[i + 1:]]


def matching_statement(listing: Listing) -> tuple[str, dict[str, Any]]:
    """The PostgreSQL matching query for `listing` and its parameters."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT tsvector_to_array(search_vector) FROM listings_listing "
                       "WHERE id = %s", [listing.pk])
        row = cursor.fetchone()
    lexemes = list(row[0] or []) if row else []
    if len(lexemes) <= MAX_PAIRED_LEXEMES:
        sql, keys = _MATCHING_BY_PAIRS, listing_text_keys(lexemes)
    else:
        sql, keys = _MATCHING_BY_LEXEMES, lexemes
    return sql, {"listing": listing.pk, "seller": listing.seller_id, "keys": keys,
                 "category": listing.category, "condition": listing.condition,
                 "price": listing.starting_price_cents, "lat": listing.location_lat,
                 "lng": listing.location_lng}


def _postgres_matching(listing: Listing) -> list[tuple[Any, Any, str]]:
    sql, params = matching_statement(listing)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _words_match(q: str, text: str) -> bool:
    """SQLite: browse's LIKE matching (every word of `q`, any case, in title or
    description; at most the first 8 words)."""
    return all(word.lower() in text for word in q.split()[:8])


def _sqlite_matching(listing: Listing) -> list[tuple[Any, Any, str]]:
    price = listing.starting_price_cents
    rows = (SavedSearch.objects.filter(notify=True)
            .exclude(user_id=listing.seller_id)
            .filter(Q(category__isnull=True) | Q(category=listing.category),
                    Q(condition__isnull=True) | Q(condition=listing.condition),
                    Q(min_price__isnull=True) | Q(min_price__lte=price),
                    Q(max_price__isnull=True) | Q(max_price__gte=price))
            .values_list("id", "user_id", "name", "q", "lat", "lng", "radius_km"))
    text = f"{listing.title}\n{listing.description}".lower()
    out = []
    for search_id, user_id, name, q, lat, lng, radius_km in rows:
        if lat is not None:
            if listing.location_lat is None or listing.location_lng is None:
                continue
            radius = min(radius_km if radius_km is not None else MAX_RADIUS_KM, MAX_RADIUS_KM)
            if haversine_km(lat, lng, listing.location_lat, listing.location_lng) > radius:
                continue
        if q and q.strip() and not _words_match(q.strip(), text):
            continue
        out.append((search_id, user_id, name))
    return out


def saved_searches_matching(*, listing: Listing) -> list[tuple[Any, Any, str]]:
    """(search id, owner id, search name) of every search with `notify` on that `listing`
    matches, but its seller's own; price on the starting price (what was published)."""
    if connection.vendor == "postgresql":
        return _postgres_matching(listing)
    return _sqlite_matching(listing)


MISSED_WINDOW = timedelta(minutes=15)
MISSED_GRACE = timedelta(seconds=30)


def listings_never_matched(*, limit: int = 500) -> list[Any]:
    """Listings that became active in the last 15 minutes and whose matching never ran:
    their hand-off (queued after the publish's commit) was lost with a killed process.
    Those younger than 30 s still have their own task coming."""
    now = timezone.now()
    return list(Listing.objects.filter(status=ListingStatus.ACTIVE, seller_active=True,
                                       starts_at__gte=now - MISSED_WINDOW,
                                       starts_at__lte=now - MISSED_GRACE)
                .exclude(pk__in=MatchedListing.objects.values("listing_id"))
                .values_list("pk", flat=True)[:limit])
