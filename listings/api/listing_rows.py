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
from typing import Any

from django.db.models import (
    CharField,
    FloatField,
    IntegerField,
    OuterRef,
    QuerySet,
    Subquery,
    Value,
)
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


def listing_rows(qs: QuerySet) -> QuerySet:
    """The browse queryset as dicts of exactly what the representation reads."""
    seller = User.objects.filter(pk=OuterRef("seller_id"))
    names = [*COLUMNS, *qs.query.annotations, *SELLER]
    return qs.annotate(_seller_name=Subquery(seller.values("display_name")),
                       _seller_rating_total=Subquery(seller.values("rating_total")),
                       _seller_rating_count=Subquery(seller.values("rating_count"))
                       ).values(*names)


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

    image_rows = ListingImage.objects.filter(listing_id__in=listing_ids).order_by().values_list(
        "listing_id", Value("image", output_field=CharField()), "image",
        Value("", output_field=CharField()), Value(0.0, output_field=FloatField()),
        "position", "created_at")
    video_rows = ListingVideo.objects.filter(
        listing_id__in=listing_ids, status=VideoStatus.READY).order_by().values_list(
        "listing_id", Value("video", output_field=CharField()), "file", "poster",
        "duration_seconds", Value(0, output_field=IntegerField()), "created_at")
    rows = sorted(image_rows.union(video_rows, all=True), key=lambda r: (r[5], r[6]))
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
