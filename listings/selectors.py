"""Listing reads: visibility, browse and search, near-me distance, the seller's standing.

Browse is one query for the page (seller joined, `is_watching` as an EXISTS, distance and
rank as expressions) plus one for the page's images, whatever the page size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.postgres.search import SearchQuery, SearchRank
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connection
from django.db.models import (
    BigIntegerField,
    Case,
    DateTimeField,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from biddt.errors import NotFound
from biddt.geo import bounding_box, distance_km_expr, earth_order_expr, earth_within_q
from listings import rules
from listings.models import Listing, ListingImage, ListingStatus, ListingVideo, VideoStatus, Watch

MAX_RADIUS_KM = 500.0
NEW_SELLER_DAYS = 7

# ordering name → the cursor pagination's ordering (the first field is the cursor position).
ORDERINGS: dict[str, tuple[str, ...]] = {
    "ending_soon": ("ends_at", "id"),
    "newest": ("-created_at", "-id"),
    "price_asc": ("current_price_cents", "id"),
    "price_desc": ("-current_price_cents", "-id"),
    "distance": ("distance_km", "id"),
    "relevance": ("-rank", "-created_at"),
}
# The ordering's column as an expression no index matches (see listing_browse).
SORT_KEYS: dict[str, tuple[str, Any]] = {
    "ending_soon": ("ends_at", ExpressionWrapper(F("ends_at") + Value(timedelta(0)),
                                                 output_field=DateTimeField())),
    "newest": ("created_at", ExpressionWrapper(F("created_at") + Value(timedelta(0)),
                                               output_field=DateTimeField())),
    "price_asc": ("current_price_cents",
                  ExpressionWrapper(F("current_price_cents") + Value(0),
                                    output_field=BigIntegerField())),
    "price_desc": ("current_price_cents",
                   ExpressionWrapper(F("current_price_cents") + Value(0),
                                     output_field=BigIntegerField())),
}
PUBLIC_ORDERINGS = ("ending_soon", "newest", "price_asc", "price_desc", "distance")


@dataclass(frozen=True)
class Browse:
    queryset: QuerySet[Listing]
    ordering: tuple[str, ...]


def _hidden_statuses() -> tuple[str, ...]:
    return (ListingStatus.DRAFT, ListingStatus.REMOVED)


def listing_visible_q(*, user) -> Q:
    """Drafts and removed listings are seen by their seller (and removed ones by staff).

    A suspended seller's listings are paused (accounts.services.user_suspend): hidden from
    everyone but the seller and staff until the seller is reinstated. The listing's own
    `seller_active` says so, so no browse query joins users to filter."""
    visible = ~Q(status__in=_hidden_statuses()) & Q(seller_active=True)
    if user is not None and user.is_authenticated:
        visible |= Q(seller_id=user.pk)
        if user.is_staff:
            visible |= ~Q(status=ListingStatus.DRAFT)
    return visible


def listing_visible(*, listing_id: Any, user) -> Listing:
    """The one visibility rule for one listing (`listing_visible_q`): the plain row when the
    caller may see it, else 404 `not_found` (a malformed id too). Bid history, the socket's
    room snapshot and the listing detail (`listing_get_visible`) answer alike."""
    try:
        listing = Listing.objects.filter(listing_visible_q(user=user), pk=listing_id).first()
    except (ValueError, DjangoValidationError):
        listing = None
    if listing is None:
        raise NotFound(_("Listing not found."))
    return listing


def _annotations(*, user, lat: float | None, lng: float | None) -> dict[str, Any]:
    """`is_watching` (an EXISTS for the caller) and `distance_km` (with lat/lng)."""
    annotations: dict[str, Any] = {"is_watching": Value(False)}
    if user is not None and user.is_authenticated:
        annotations["is_watching"] = Exists(Watch.objects.filter(listing=OuterRef("pk"),
                                                                 user_id=user.pk))
    if lat is not None and lng is not None:
        annotations["distance_km"] = distance_km_expr(lat, lng, "location_lat", "location_lng")
    return annotations


def listing_queryset(*, user, lat: float | None = None,
                     lng: float | None = None) -> QuerySet[Listing]:
    """Listings with everything the representation reads, in one query (+ images, videos)."""
    return (Listing.objects.select_related("seller")
            .prefetch_related(Prefetch("images",
                                       queryset=ListingImage.objects.order_by("position",
                                                                              "created_at")),
                              Prefetch("videos", queryset=ListingVideo.objects.filter(
                                  status=VideoStatus.READY).order_by("created_at")))
            .annotate(**_annotations(user=user, lat=lat, lng=lng)))


def listing_get_visible(*, listing_id: Any, user, lat: float | None = None,
                        lng: float | None = None) -> Listing:
    """A listing the caller may know exists, ready for the representation; else 404."""
    # At most one row: no ORDER BY to build (the browse ordering cost more to compile than
    # the query took to run).
    listing = next(iter(listing_queryset(user=user, lat=lat, lng=lng)
                        .filter(listing_visible_q(user=user), pk=listing_id).order_by()[:1]),
                   None)
    if listing is None:
        raise NotFound(_("Listing not found."))
    return listing


# A `-` that doesn't start a word. websearch_to_tsquery pushes a NOT for each one and
# fails past 32 of them ("tsquery stack too small": `-----`, `- - x`, `-( -( x`); on its
# own such a hyphen excludes nothing, so dropping it changes no result.
_DANGLING_NOT = re.compile(r"-+(?![^\W_])")


def search_text(q: str) -> str:
    """`q` as websearch_to_tsquery takes it for any input: the operators people type
    (`"phrase"`, `or`, `-word`) keep their meaning; hyphen runs become one."""
    return re.sub(r"-{2,}", "-", _DANGLING_NOT.sub(" ", q))


def _search(qs: QuerySet[Listing], q: str) -> QuerySet[Listing]:
    """Full text: the stored, weighted vector (GIN) on PostgreSQL; LIKE on SQLite."""
    if connection.vendor == "postgresql":
        query = SearchQuery(search_text(q), config="english", search_type="websearch")
        return (qs.filter(search_vector=query)
                .annotate(rank=Cast(SearchRank(F("search_vector"), query), FloatField())))
    words = q.split()[:8]
    for word in words:
        qs = qs.filter(Q(title__icontains=word) | Q(description__icontains=word))
    rank = Value(0.0)
    for word in words:
        rank = (rank + Case(When(title__icontains=word, then=Value(2.0)), default=Value(0.0))
                + Case(When(description__icontains=word, then=Value(1.0)), default=Value(0.0)))
    return qs.annotate(rank=Cast(rank, FloatField()))


def listing_browse(*, user, q: str | None = None, category: str | None = None,
                   condition: str | None = None, min_price: int | None = None,
                   max_price: int | None = None, status: str = ListingStatus.ACTIVE,
                   seller_id: Any = None, lat: float | None = None, lng: float | None = None,
                   radius_km: float | None = None, watching: bool = False,
                   ordering: str | None = None) -> Browse:
    """`GET /v1/listings`: filters, search and near-me; the ordering for the cursor.

    With `lat`/`lng` the results are within `radius_km` (default and maximum 500 km): an
    indexed prefilter (PostgreSQL: a GiST index on the earth point; SQLite: the bounding
    box), then the exact great-circle distance. Without an explicit
    ordering, a text search is ranked by relevance, else newest first.
    """
    q = (q or "").strip()
    name = ordering or ("relevance" if q else "newest")
    # Filters and annotations gathered first, applied in one step each: every `.filter()`
    # clones the query, and on a page that takes a few milliseconds the clones showed.
    # No select_related/prefetch: the list view reads plain values (listings.api.listing_rows).
    annotations = _annotations(user=user, lat=lat, lng=lng)
    filters = [listing_visible_q(user=user), Q(status=status)]
    if category:
        filters.append(Q(category=category))
    if condition:
        filters.append(Q(condition=condition))
    if min_price is not None:
        filters.append(Q(current_price_cents__gte=min_price))
    if max_price is not None:
        filters.append(Q(current_price_cents__lte=max_price))
    if seller_id is not None:
        filters.append(Q(seller_id=seller_id))
    if watching:
        filters.append(Q(is_watching=True))
    name_order = None
    if lat is not None and lng is not None:
        radius = min(radius_km if radius_km is not None else MAX_RADIUS_KM, MAX_RADIUS_KM)
        if connection.vendor == "postgresql":
            # The GiST index answers the circle, and ordering by the cube distance alone is
            # a KNN scan that stops after the page (with `, id` the planner sorts every row
            # in the circle instead). Rows at the very same spot come in the index's order,
            # the same for every page of one search, which is what the cursor relies on.
            box, exact = earth_within_q(lat, lng, radius, "location_lat", "location_lng")
            # PostgreSQL estimates a cube containment at a fixed 0.1 % of the table, however
            # large the circle: with a text search the planner would AND the GiST bitmap
            # (every listing in the circle) with the words' GIN bitmap, reading far more of
            # the index than the words alone. The words lead then; the distance filters.
            filters += [exact] if q and name != "distance" else [box, exact]
            annotations["earth_order"] = earth_order_expr(lat, lng, "location_lat",
                                                          "location_lng")
            name_order = ("earth_order",)
        else:
            filters += [bounding_box(lat, lng, radius).q("location_lat", "location_lng"),
                        Q(distance_km__lte=radius)]
    qs = Listing.objects.annotate(**annotations).filter(*filters)
    if q:
        qs = _search(qs, q)
    if name == "distance" and name_order:
        return Browse(queryset=qs, ordering=name_order)
    if q and name in SORT_KEYS and connection.vendor == "postgresql":
        # A text search sorted by a column: ORDER BY the column itself lets the planner walk
        # that column's btree and test every row against the words until the page is full
        # (at 1M listings, 330,000 rows read for 21). The same value as an expression the
        # index can't give forces the plan through the words' GIN index and a top-N sort.
        field, key = SORT_KEYS[name]
        qs = qs.annotate(sort_key=key)
        first, tie = ORDERINGS[name]
        return Browse(queryset=qs, ordering=(first.replace(field, "sort_key"), tie))
    return Browse(queryset=qs, ordering=ORDERINGS[name])


def seller_is_new(*, user) -> bool:
    """New sellers (account younger than 7 days, or no completed sale) are rate-limited."""
    young = user.created_at > timezone.now() - timedelta(days=NEW_SELLER_DAYS)
    return young or not user.completed_sales


def auction_state(listing: Listing) -> rules.AuctionState:
    """The rules' view of the auction state kept on the listing row."""
    return rules.AuctionState(
        starting_price_cents=listing.starting_price_cents,
        reserve_price_cents=listing.reserve_price_cents,
        current_price_cents=listing.current_price_cents,
        bid_count=listing.bid_count,
        leader_id=listing.leader_id,
        leader_max_cents=listing.leader_max_cents,
    )


def listing_auction_view(listing: Listing) -> dict[str, Any]:
    """`minimum_next_bid_cents` and `reserve_met` from the rules, on the row's state."""
    state = auction_state(listing)
    return {"minimum_next_bid_cents": rules.minimum_next_bid(state),
            "reserve_met": rules.reserve_met(state)}

