"""Saved-search reads: the caller's searches, a search's listings (the browse selector), the
searches a newly active listing matches, and the export of a user's searches.

Matching (`saved_searches_matching`) on PostgreSQL: each search is read through the partial
index of its anchor (discovery.models), one UNION ALL arm per anchor, and every arm applies
the same exact filters, so the database narrows 100,000 searches to the few that match:
- text: the GIN index on the searches' lexemes (`q_lexemes && the listing's lexemes`),
- geo: a GiST index on the box around each search's circle (`box @> the listing's point`),
- category: a btree on the category,
- none: the few searches with none of those filters.
Exact filters: the search's `tsquery @@` the listing's stored vector, category, condition,
price (the starting price), the great-circle distance within the radius (earthdistance, the
circle `GET /v1/listings` draws). SQLite (`make run`) filters the columns in SQL and the
place and words in Python, the way browse does there (LIKE on title and description).
"""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models import (
    BooleanField,
    F,
    Field,
    FloatField,
    Func,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce

from biddt.errors import NotFound
from biddt.geo import EARTH_RADIUS_KM, MAX_RADIUS_KM, haversine_km
from discovery.models import Anchor, SavedSearch
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
        raise NotFound("Saved search not found.")
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

class _Infix(Func):
    """`left <op> right` for the operators Django has no lookup for (`@@`, `&&`, `@>`)."""

    template = "(%(expressions)s)"

    def __init__(self, left, op: str, right, output_field=None):
        self.arg_joiner = f" {op} "
        super().__init__(left, right, output_field=output_field or BooleanField())


def _earth_point(lat, lng) -> Func:
    return Func(lat, lng, function="listing_earth_point", output_field=Field())


def _radius_km() -> Coalesce:
    return Coalesce(F("radius_km"), Value(MAX_RADIUS_KM), output_field=FloatField())


def _search_box() -> Func:
    """The search's circle as a cube (the expression of the GiST index, migration 0002)."""
    return Func(F("lat"), F("lng"), _radius_km(), function="saved_search_earth_box",
                output_field=Field())


def _postgres_matching(listing: Listing) -> QuerySet:
    vector = Subquery(Listing.objects.filter(pk=listing.pk).values("search_vector")[:1])
    price = listing.starting_price_cents
    exact = [
        Q(category__isnull=True) | Q(category=listing.category),
        Q(condition__isnull=True) | Q(condition=listing.condition),
        Q(min_price__isnull=True) | Q(min_price__lte=price),
        Q(max_price__isnull=True) | Q(max_price__gte=price),
        Q(q_tsquery__isnull=True) | Q(_Infix(F("q_tsquery"), "@@", vector)),
    ]
    has_place = listing.location_lat is not None and listing.location_lng is not None
    if has_place:
        point = _earth_point(Value(float(listing.location_lat)),
                             Value(float(listing.location_lng)))
        distance = Func(_earth_point(F("lat"), F("lng")), point, function="earth_distance",
                        output_field=FloatField())
        arc = (_radius_km() / Value(EARTH_RADIUS_KM)
               * Func(function="earth", output_field=FloatField()))
        exact.append(Q(lat__isnull=True) | Q(_Infix(distance, "<=", arc)))
    else:
        exact.append(Q(lat__isnull=True))
    base = (SavedSearch.objects.filter(*exact, notify=True)
            .exclude(user_id=listing.seller_id).values_list("id", "user_id", "name"))
    lexemes = Func(vector, function="tsvector_to_array", output_field=Field())
    arms = [base.filter(Q(_Infix(F("q_lexemes"), "&&", lexemes)), anchor=Anchor.TEXT),
            base.filter(anchor=Anchor.CATEGORY, category=listing.category),
            base.filter(anchor=Anchor.NONE)]
    if has_place:
        arms.append(base.filter(Q(_Infix(_search_box(), "@>", point)), anchor=Anchor.GEO))
    first, *rest = [arm.order_by() for arm in arms]
    return first.union(*rest, all=True)


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
        return list(_postgres_matching(listing))
    return _sqlite_matching(listing)
