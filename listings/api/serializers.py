"""Listing representations (API.md "Listings") and the shapes of writes.

Serializers check shapes only; prices, durations and who may do what are the services'.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api.serializers import absolute_media_url
from biddt.parsers import MAX_INT
from listings.models import (
    AuctionType,
    Category,
    Condition,
    ListingStatus,
    ReportReason,
    VideoStatus,
)
from listings.selectors import listing_auction_view


class SellerSummarySerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    display_name = serializers.CharField(read_only=True)
    rating_avg = serializers.FloatField(read_only=True, allow_null=True)


class ListingVideoSummarySerializer(serializers.Serializer):
    """A ready video in the listing representation."""

    url = serializers.SerializerMethodField()
    poster_url = serializers.SerializerMethodField()
    duration_seconds = serializers.FloatField(read_only=True)

    @extend_schema_field(serializers.URLField())
    def get_url(self, obj) -> str | None:
        return absolute_media_url(self.context.get("request"), obj.file)

    @extend_schema_field(serializers.URLField())
    def get_poster_url(self, obj) -> str | None:
        return absolute_media_url(self.context.get("request"), obj.poster)


class ListingSerializer(serializers.Serializer):
    """The listing as API.md shows it. Build it from `listings.selectors.listing_queryset`.

    `reserve_price_cents` is present for the seller only; `distance_km` only when the
    request gave `lat`/`lng`. Browse pages are built from plain values by
    `listings.api.listing_rows` (and documented by this class): a field changed here changes
    there too, which tests/listings/test_browse_scale.py checks byte for byte.
    """

    id = serializers.UUIDField(read_only=True)
    seller = SellerSummarySerializer(read_only=True)
    title = serializers.CharField(read_only=True)
    description = serializers.CharField(read_only=True)
    category = serializers.ChoiceField(choices=Category.choices, read_only=True)
    condition = serializers.ChoiceField(choices=Condition.choices, read_only=True)
    images = serializers.SerializerMethodField()
    videos = serializers.SerializerMethodField()
    auction_type = serializers.ChoiceField(choices=AuctionType.choices, read_only=True)
    starting_price_cents = serializers.IntegerField(read_only=True)
    buy_now_price_cents = serializers.IntegerField(read_only=True, allow_null=True)
    reserve_met = serializers.SerializerMethodField()
    reserve_price_cents = serializers.IntegerField(
        required=False, allow_null=True, help_text="Present for the seller only.")
    status = serializers.ChoiceField(choices=ListingStatus.choices, read_only=True)
    starts_at = serializers.DateTimeField(read_only=True, allow_null=True)
    ends_at = serializers.DateTimeField(read_only=True, allow_null=True)
    location_lat = serializers.FloatField(read_only=True, allow_null=True)
    location_lng = serializers.FloatField(read_only=True, allow_null=True)
    location_name = serializers.CharField(read_only=True)
    distance_km = serializers.FloatField(
        required=False, allow_null=True,
        help_text="Great-circle distance from the request's lat/lng; present only then.")
    current_price_cents = serializers.IntegerField(read_only=True)
    bid_count = serializers.IntegerField(read_only=True)
    minimum_next_bid_cents = serializers.SerializerMethodField()
    is_leading = serializers.SerializerMethodField()
    is_watching = serializers.SerializerMethodField()
    view_count = serializers.IntegerField(read_only=True)
    seq = serializers.IntegerField(
        read_only=True, help_text="Counts the changes others can see; room events carry it.")
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    def _user(self):
        request = self.context.get("request")
        user = getattr(request, "user", None)
        return user if user is not None and user.is_authenticated else None

    def to_representation(self, instance):
        data = super().to_representation(instance)
        user = self._user()
        if user is None or instance.seller_id != user.pk:
            data.pop("reserve_price_cents", None)
        if getattr(instance, "distance_km", None) is None:
            data.pop("distance_km", None)
        else:
            data["distance_km"] = round(instance.distance_km, 3)
        return data

    @extend_schema_field(serializers.ListField(child=serializers.URLField()))
    def get_images(self, obj) -> list[str]:
        request = self.context.get("request")
        return [absolute_media_url(request, image.image) for image in obj.images.all()]

    @extend_schema_field(ListingVideoSummarySerializer(many=True))
    def get_videos(self, obj) -> list[dict]:
        # Ready videos only (the prefetch of listing_queryset already filters them).
        ready = [video for video in obj.videos.all() if video.status == VideoStatus.READY]
        return ListingVideoSummarySerializer(ready, many=True, context=self.context).data

    @extend_schema_field(serializers.BooleanField(allow_null=True))
    def get_reserve_met(self, obj) -> bool | None:
        return listing_auction_view(obj)["reserve_met"]

    def get_minimum_next_bid_cents(self, obj) -> int:
        return listing_auction_view(obj)["minimum_next_bid_cents"]

    def get_is_leading(self, obj) -> bool:
        user = self._user()
        return user is not None and obj.leader_id == user.pk

    def get_is_watching(self, obj) -> bool:
        return bool(getattr(obj, "is_watching", False))


class ListingWriteSerializer(serializers.Serializer):
    """`POST /v1/listings` body (a draft). Price and duration rules: 400 `invalid_price`,
    `invalid_duration`."""

    title = serializers.CharField(max_length=255)
    description = serializers.CharField(max_length=10000, required=False, allow_blank=True,
                                        default="")
    category = serializers.ChoiceField(choices=Category.choices, required=False,
                                       default=Category.OTHER)
    condition = serializers.ChoiceField(choices=Condition.choices, required=False,
                                        default=Condition.GOOD)
    auction_type = serializers.ChoiceField(choices=AuctionType.choices, required=False,
                                           default=AuctionType.AUCTION)
    starting_price_cents = serializers.IntegerField(
        max_value=MAX_INT, help_text="At least BIDDT_MIN_PRICE_CENTS (default 500).")
    reserve_price_cents = serializers.IntegerField(
        required=False, allow_null=True, default=None, max_value=MAX_INT,
        help_text="Optional, at least the starting price; never shown to bidders.")
    buy_now_price_cents = serializers.IntegerField(
        required=False, allow_null=True, default=None, max_value=MAX_INT,
        help_text="Required for `both`, not allowed for `auction`; at least the starting "
                  "price (and the reserve).")
    starts_at = serializers.DateTimeField(
        required=False, allow_null=True, default=None,
        help_text="Optional scheduled start; publishing sets it to now if unset or past.")
    ends_at = serializers.DateTimeField(
        required=False, allow_null=True, default=None,
        help_text="Required for auctions: at least BIDDT_MIN_AUCTION_SECONDS after the start "
                  "and at most 30 days ahead. A fixed-price listing without one runs 30 days.")
    location_lat = serializers.FloatField(required=False, allow_null=True, default=None,
                                          min_value=-90, max_value=90)
    location_lng = serializers.FloatField(required=False, allow_null=True, default=None,
                                          min_value=-180, max_value=180)
    location_name = serializers.CharField(max_length=255, required=False, allow_blank=True,
                                          default="")

    def validate_title(self, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise serializers.ValidationError(_("The title can't be blank."), code="blank")
        return value


class ListingUpdateSerializer(ListingWriteSerializer):
    """`PATCH /v1/listings/{id}`: any subset of the create fields."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("partial", True)
        super().__init__(*args, **kwargs)


class ListingImageUploadSerializer(serializers.Serializer):
    image = serializers.FileField(help_text="JPEG, PNG or WebP (checked by content), at most "
                                            "10 MB; at most 10 images per listing.")


class ListingImageSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    width = serializers.IntegerField(read_only=True)
    height = serializers.IntegerField(read_only=True)
    position = serializers.IntegerField(read_only=True)

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_url(self, obj) -> str | None:
        return absolute_media_url(self.context.get("request"), obj.image)

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_thumbnail_url(self, obj) -> str | None:
        return absolute_media_url(self.context.get("request"), obj.thumbnail)


class ListingVideoUploadSerializer(serializers.Serializer):
    video = serializers.FileField(help_text="MP4 or QuickTime, H.264 or HEVC (checked by "
                                            "content), at most 100 MB and 60 s; at most one "
                                            "video per listing.")


class ListingVideoSerializer(serializers.Serializer):
    """A video as its seller sees it: `url` and `poster_url` are null until `ready`."""

    id = serializers.UUIDField(read_only=True)
    status = serializers.ChoiceField(
        choices=VideoStatus.choices, read_only=True,
        help_text="`processing` until the worker has stripped the metadata and extracted "
                  "the poster, then `ready` (shown on the listing), or `failed` (see "
                  "`error`; it doesn't count against the limit).")
    url = serializers.SerializerMethodField()
    poster_url = serializers.SerializerMethodField()
    duration_seconds = serializers.FloatField(read_only=True)
    error = serializers.SerializerMethodField()

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_url(self, obj) -> str | None:
        if obj.status != VideoStatus.READY:
            return None
        return absolute_media_url(self.context.get("request"), obj.file)

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_poster_url(self, obj) -> str | None:
        if obj.status != VideoStatus.READY:
            return None
        return absolute_media_url(self.context.get("request"), obj.poster)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_error(self, obj) -> str | None:
        return obj.error or None if obj.status == VideoStatus.FAILED else None


class WatchSerializer(serializers.Serializer):
    is_watching = serializers.BooleanField(read_only=True)


class ListingReportInSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(choices=ReportReason.choices)
    details = serializers.CharField(required=False, allow_blank=True, max_length=2000,
                                    default="")


class ListingReportSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    listing_id = serializers.UUIDField(read_only=True)
    reason = serializers.ChoiceField(choices=ReportReason.choices, read_only=True)
    details = serializers.CharField(read_only=True)
    status = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
