"""The browse page's representation, built from the columns it shows (issue 22).

`ListingSerializer` describes a listing (and renders the detail); for a page of browse it costs
more than the page's SQL: a serializer and twenty-odd fields per listing, a nested serializer
for the seller, model instances and a prefetch. Here the page is one query of plain values
(the seller's public fields as scalar subqueries, evaluated for the page's rows only, so the
plan never joins users) and one query for the page's images and ready videos, assembled
into the same dicts, key for key and value for value (tests/listings/test_browse_scale.py
compares them on generated listings).
"""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache
from typing import Any

from django.db import connections, router
from django.db.models import F, Func, QuerySet
from django.utils import timezone

from accounts.models import User
from listings import rules
from listings.models import ListingImage, ListingVideo, VideoStatus

COLUMNS = ("id", "seller_id", "title", "description", "category", "condition", "auction_type",
           "starting_price_cents", "buy_now_price_cents", "reserve_price_cents", "status",
           "starts_at", "ends_at", "location_lat", "location_lng", "location_name",
           "current_price_cents", "bid_count", "leader_id", "leader_max_cents", "view_count", "seq",
           "created_at", "updated_at")
SELLER = ("_seller_name", "_seller_rating_total", "_seller_rating_count")


class SellerValue(Func):
    """One of the seller's columns, as a scalar subquery on the listing's `seller_id`.

    The SQL `Subquery(User.objects.filter(pk=OuterRef("seller_id")).values(name))` writes,
    without building and resolving a queryset per column on every request (three of them
    cost about a millisecond of CPU a page)."""

    arity = 1
    # An alias of its own: Django's are table names or a letter and a number (U0, T3), so
    # the listing's `seller_id` never resolves to this table, even inside a subquery.
    template = ("(SELECT listing_seller.%(column)s FROM %(table)s listing_seller "
                "WHERE listing_seller.%(pk)s = %(expressions)s)")

    def __init__(self, name: str) -> None:
        field = User._meta.get_field(name)
        self.column = field.column
        super().__init__(F("seller_id"), output_field=field)

    def as_sql(self, compiler, connection, **extra_context):
        quote = connection.ops.quote_name
        return super().as_sql(compiler, connection, column=quote(self.column),
                              table=quote(User._meta.db_table),
                              pk=quote(User._meta.pk.column), **extra_context)


def listing_rows(qs: QuerySet) -> QuerySet:
    """The browse queryset as dicts of exactly what the representation reads."""
    names = [*COLUMNS, *qs.query.annotations, *SELLER]
    return qs.annotate(_seller_name=SellerValue("display_name"),
                       _seller_rating_total=SellerValue("rating_total"),
                       _seller_rating_count=SellerValue("rating_count")).values(*names)


def _datetime(value, tz) -> str | None:
    """DRF's DateTimeField (ISO 8601 in the current time zone, `Z` for UTC)."""
    if not value:
        return None
    text = value.astimezone(tz).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _float(value) -> float | None:
    return None if value is None else float(value)


def _int(value) -> int | None:
    return None if value is None else int(value)


@lru_cache(maxsize=256)
def _media_statement(alias: str, count: int) -> tuple[str, list]:
    """The media query for `count` listings: SQL and each column's database converters.

    The UNION the ORM wrote for `ListingImage.filter(...).values_list(...).union(...)`,
    written once per page size from the models' metadata: building and compiling the two
    querysets cost more CPU than PostgreSQL spent answering them. Same columns, same
    parameters, same plan; the converters are the ones the ORM applies (SQLite's text
    UUIDs and times)."""
    connection = connections[alias]
    quote = connection.ops.quote_name
    image_table, video_table = ListingImage._meta.db_table, ListingVideo._meta.db_table

    def col(model, name: str) -> str:
        return f"{quote(model._meta.db_table)}.{quote(model._meta.get_field(name).column)}"

    ids = ", ".join(["%s"] * count)
    # Model metadata and placeholders only.
    sql = (
        f"SELECT {col(ListingImage, 'listing')}, %s, {col(ListingImage, 'image')}, %s, %s, "  # noqa: S608
        f"{col(ListingImage, 'position')}, {col(ListingImage, 'created_at')} "
        f"FROM {quote(image_table)} WHERE {col(ListingImage, 'listing')} IN ({ids}) "
        "UNION ALL "
        f"SELECT {col(ListingVideo, 'listing')}, %s, {col(ListingVideo, 'file')}, "
        f"{col(ListingVideo, 'poster')}, {col(ListingVideo, 'duration_seconds')}, %s, "
        f"{col(ListingVideo, 'created_at')} "
        f"FROM {quote(video_table)} WHERE {col(ListingVideo, 'listing')} IN ({ids}) "
        f"AND {col(ListingVideo, 'status')} = %s"
    )
    # A UNION's values are read through its first part's columns (as the ORM does).
    converters = []
    for name in ("listing", None, "image", None, None, "position", "created_at"):
        if name is None:
            converters.append(None)
            continue
        field = ListingImage._meta.get_field(name)
        column = field.get_col(image_table)
        funcs = [*connection.ops.get_db_converters(column), *field.get_db_converters(connection)]
        converters.append((column, funcs) if funcs else None)
    return sql, converters


def _media_rows(listing_ids: list) -> list[tuple]:
    """(listing_id, kind, name, poster, duration, position, created_at) of the listings'
    images and ready videos, values converted as the ORM converts them."""
    alias = router.db_for_read(ListingImage)
    connection = connections[alias]
    sql, converters = _media_statement(alias, len(listing_ids))
    field = ListingImage._meta.get_field("listing")
    ids = [field.get_db_prep_value(pk, connection) for pk in listing_ids]
    params = ["image", "", 0.0, *ids, "video", 0, *ids, VideoStatus.READY.value]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    if not any(converters):
        return fetched
    rows = []
    for row in fetched:
        values = list(row)
        for i, converter in enumerate(converters):
            if converter is not None:
                column, funcs = converter
                for func in funcs:
                    values[i] = func(values[i], column, connection)
        rows.append(tuple(values))
    return rows


def _media(request, listing_ids: list) -> tuple[dict[Any, list[str | None]],
                                                  dict[Any, list[dict[str, Any]]]]:
    """The page's image URLs and ready videos per listing, in display order, from one query
    (a UNION of the two tables)."""
    images: dict[Any, list[str | None]] = defaultdict(list)
    videos: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    if not listing_ids:
        return images, videos
    image_storage = ListingImage._meta.get_field("image").storage
    video_storage = ListingVideo._meta.get_field("file").storage

    def url(storage, name: str) -> str | None:
        found = storage.url(name) if name else None
        if found is not None and request is not None and found.startswith("/"):
            found = request.build_absolute_uri(found)
        return found

    rows = sorted(_media_rows(listing_ids), key=lambda r: (r[5], r[6]))
    for listing_id, kind, name, poster, duration, _position, _created in rows:
        if kind == "image":
            images[listing_id].append(url(image_storage, name))
        else:
            videos[listing_id].append({"url": url(video_storage, name),
                                       "poster_url": url(video_storage, poster),
                                       "duration_seconds": float(duration)})
    return images, videos


def represent_rows(rows: list[dict], request) -> list[dict[str, Any]]:
    """The page's listings as `ListingSerializer` renders them, from `listing_rows` dicts."""
    user = getattr(request, "user", None)
    user_id = user.pk if user is not None and user.is_authenticated else None
    images, videos = _media(request, [row["id"] for row in rows])
    tz = timezone.get_current_timezone()
    out = []
    for row in rows:
        state = rules.AuctionState(
            starting_price_cents=row["starting_price_cents"],
            reserve_price_cents=row["reserve_price_cents"],
            current_price_cents=row["current_price_cents"], bid_count=row["bid_count"],
            leader_id=row["leader_id"], leader_max_cents=row["leader_max_cents"])
        count = row["_seller_rating_count"]
        rating = round(row["_seller_rating_total"] / count, 2) if count else None
        data = {
            "id": str(row["id"]),
            "seller": {"id": str(row["seller_id"]), "display_name": str(row["_seller_name"]),
                       "rating_avg": _float(rating)},
            "title": str(row["title"]),
            "description": str(row["description"]),
            "category": row["category"],
            "condition": row["condition"],
            "images": images.get(row["id"], []),
            "videos": videos.get(row["id"], []),
            "auction_type": row["auction_type"],
            "starting_price_cents": int(row["starting_price_cents"]),
            "buy_now_price_cents": _int(row["buy_now_price_cents"]),
            "reserve_met": rules.reserve_met(state),
        }
        if user_id is not None and row["seller_id"] == user_id:
            data["reserve_price_cents"] = _int(row["reserve_price_cents"])
        data.update({
            "status": row["status"],
            "starts_at": _datetime(row["starts_at"], tz),
            "ends_at": _datetime(row["ends_at"], tz),
            "location_lat": _float(row["location_lat"]),
            "location_lng": _float(row["location_lng"]),
            "location_name": str(row["location_name"]),
        })
        if row.get("distance_km") is not None:
            data["distance_km"] = round(row["distance_km"], 3)
        data.update({
            "current_price_cents": int(row["current_price_cents"]),
            "bid_count": int(row["bid_count"]),
            "minimum_next_bid_cents": rules.minimum_next_bid(state),
            "is_leading": user_id is not None and row["leader_id"] == user_id,
            "is_watching": bool(row.get("is_watching", False)),
            "view_count": int(row["view_count"]),
            "seq": int(row["seq"]),
            "created_at": _datetime(row["created_at"], tz),
            "updated_at": _datetime(row["updated_at"], tz),
        })
        out.append(data)
    return out
