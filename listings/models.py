"""Listings with their images and the watchlist.

The auction state (current price, leader, leader's maximum, bid count, seq) lives on the
listing row, so the bidding engine reads and writes one locked row per bid.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import F, Q


class Category(models.TextChoices):
    ELECTRONICS = "electronics", "Electronics"
    FURNITURE = "furniture", "Furniture"
    HOME = "home", "Home & garden"
    CLOTHING = "clothing", "Clothing & accessories"
    SPORTS = "sports", "Sports & outdoors"
    TOYS = "toys", "Toys & games"
    BOOKS = "books", "Books & media"
    VEHICLES = "vehicles", "Vehicles & parts"
    TOOLS = "tools", "Tools"
    COLLECTIBLES = "collectibles", "Collectibles & art"
    MUSIC = "music", "Musical instruments"
    OTHER = "other", "Other"


class Condition(models.TextChoices):
    NEW = "new", "New"
    LIKE_NEW = "like_new", "Like new"
    GOOD = "good", "Good"
    FAIR = "fair", "Fair"
    POOR = "poor", "For parts / poor"


class AuctionType(models.TextChoices):
    AUCTION = "auction", "Auction"
    FIXED = "fixed", "Fixed price"
    BOTH = "both", "Auction with buy now"


class ListingStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    # Published, `starts_at` in the future: visible, no bids until the opening sweep.
    SCHEDULED = "scheduled", "Scheduled"
    ACTIVE = "active", "Active"
    SOLD = "sold", "Sold"
    UNSOLD = "unsold", "Unsold"
    CANCELLED = "cancelled", "Cancelled"
    REMOVED = "removed", "Removed by staff"


class Listing(models.Model):
    Status = ListingStatus

    # `status` changes only through listings/lifecycle.py (its transition table and lock).

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    seller = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                               related_name="listings")
    title = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="", max_length=10000)
    category = models.CharField(max_length=32, choices=Category.choices, default=Category.OTHER)
    condition = models.CharField(max_length=16, choices=Condition.choices, default=Condition.GOOD)
    auction_type = models.CharField(max_length=16, choices=AuctionType.choices,
                                    default=AuctionType.AUCTION)
    starting_price_cents = models.PositiveBigIntegerField()
    reserve_price_cents = models.PositiveBigIntegerField(null=True, blank=True)
    buy_now_price_cents = models.PositiveBigIntegerField(null=True, blank=True)
    currency = models.CharField(max_length=3, default="CAD")
    status = models.CharField(max_length=16, choices=ListingStatus.choices,
                              default=ListingStatus.DRAFT)
    status_reason = models.CharField(max_length=255, blank=True, default="")
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    location_lat = models.FloatField(null=True, blank=True)
    location_lng = models.FloatField(null=True, blank=True)
    location_name = models.CharField(max_length=255, blank=True, default="")
    view_count = models.PositiveBigIntegerField(default=0)
    # False while the seller is suspended or banned: the listing is paused (hidden from browse
    # and detail but to its seller and staff). Kept by accounts.services.user_suspend and
    # user_reinstate, so browse filters on this table's own columns and never joins users.
    seller_active = models.BooleanField(default=True, db_default=True)

    # Auction state, owned by bidding.services (one locked row per bid).
    current_price_cents = models.PositiveBigIntegerField()
    bid_count = models.PositiveIntegerField(default=0)
    leader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True,
                               blank=True, related_name="leading_listings")
    leader_max_cents = models.PositiveBigIntegerField(null=True, blank=True)
    # Counts the changes others can see (API.md "Live state you can trust"); every room event
    # that moves it carries it.
    seq = models.PositiveBigIntegerField(default=0)
    # Orders the listing's bid rows (`Bid.seq`): every bid moves it, a silent raise included.
    bids_seq = models.PositiveBigIntegerField(default=0, db_default=0)
    # How many different users have bid on it: the last `Bid.bidder_number` handed out.
    bidder_count = models.PositiveIntegerField(default=0, db_default=0)

    # Full-text search vector (PostgreSQL), kept current by a trigger (migration 0003).
    search_vector = SearchVectorField(null=True, blank=True, editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(starting_price_cents__gt=0),
                                   name="listing_starting_price_positive"),
            models.CheckConstraint(
                condition=Q(reserve_price_cents__isnull=True)
                | Q(reserve_price_cents__gte=F("starting_price_cents")),
                name="listing_reserve_gte_start"),
            models.CheckConstraint(
                condition=Q(buy_now_price_cents__isnull=True)
                | Q(buy_now_price_cents__gte=F("starting_price_cents")),
                name="listing_buy_now_gte_start"),
            models.CheckConstraint(
                condition=Q(ends_at__isnull=True) | Q(starts_at__isnull=True)
                | Q(ends_at__gt=F("starts_at")),
                name="listing_ends_after_start"),
            models.CheckConstraint(
                condition=Q(location_lat__isnull=True)
                | (Q(location_lat__gte=-90) & Q(location_lat__lte=90)),
                name="listing_lat_range"),
            models.CheckConstraint(
                condition=Q(location_lng__isnull=True)
                | (Q(location_lng__gte=-180) & Q(location_lng__lte=180)),
                name="listing_lng_range"),
            models.CheckConstraint(
                condition=Q(leader__isnull=True)
                | Q(leader_max_cents__gte=F("current_price_cents")),
                name="listing_price_within_leader_max"),
            models.CheckConstraint(condition=Q(status__in=ListingStatus.values),
                                   name="listing_status_valid"),
        ]
        indexes = [
            # The close sweep: active listings whose end has passed.
            models.Index(fields=["status", "ends_at"], name="listing_status_ends"),
            # The opening sweep: scheduled listings whose start has come.
            models.Index(fields=["starts_at"], name="listing_scheduled_starts",
                         condition=Q(status="scheduled")),
            models.Index(fields=["status", "category", "ends_at"], name="listing_status_cat"),
            models.Index(fields=["status", "-created_at"], name="listing_status_newest"),
            models.Index(fields=["status", "current_price_cents"], name="listing_status_price"),
            # Browse by condition, newest first (with a price range as the index's filter).
            models.Index(fields=["status", "condition", "-created_at"],
                         name="listing_status_cond_newest"),
            models.Index(fields=["seller", "status"], name="listing_seller_status"),
            # Near me on SQLite: bounding-box prefilter on the coordinates (PostgreSQL uses a
            # GiST index on the coordinates as an earth point, migration 0005).
            models.Index(fields=["location_lat", "location_lng"], name="listing_coords"),
        ]

    def __str__(self) -> str:
        return self.title


class ListingImage(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    listing = models.ForeignKey(Listing, on_delete=models.CASCADE, related_name="images")
    image = models.ImageField(upload_to="listings/%Y/%m/")
    thumbnail = models.ImageField(upload_to="listings/%Y/%m/thumbs/", blank=True, default="")
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    position = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "created_at"]
        indexes = [models.Index(fields=["listing", "position"], name="listing_image_order")]

    def __str__(self) -> str:
        return f"image {self.position} of {self.listing_id}"


class Watch(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="watches")
    listing = models.ForeignKey(Listing, on_delete=models.CASCADE, related_name="watches")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "watches"
        constraints = [models.UniqueConstraint(fields=["user", "listing"], name="uniq_watch")]
        indexes = [models.Index(fields=["listing"], name="watch_listing")]

    def __str__(self) -> str:
        return f"{self.user} watches {self.listing_id}"


class ReportReason(models.TextChoices):
    """The fixed list a reporter picks from (POST /v1/listings/{id}/report)."""

    PROHIBITED = "prohibited_item", "Prohibited or illegal item"
    COUNTERFEIT = "counterfeit", "Counterfeit or replica"
    SCAM = "scam", "Scam or fraud"
    MISLEADING = "misleading", "Misleading description or photos"
    OFFENSIVE = "offensive", "Offensive content"
    DUPLICATE = "duplicate", "Duplicate or spam"
    OTHER = "other", "Other"


class ListingReport(models.Model):
    """A user's report of a listing, feeding the moderation queue."""

    Reason = ReportReason

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACTIONED = "actioned", "Actioned"
        DISMISSED = "dismissed", "Dismissed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    listing = models.ForeignKey(Listing, on_delete=models.CASCADE, related_name="reports")
    reporter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                 related_name="listing_reports")
    reason = models.CharField(max_length=64)
    details = models.TextField(blank=True, default="", max_length=2000)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["listing", "reporter"],
                                               name="uniq_report_per_user")]
        indexes = [models.Index(fields=["status", "-created_at"], name="report_queue")]

    def __str__(self) -> str:
        return f"report of {self.listing_id}"


class VideoStatus(models.TextChoices):
    PROCESSING = "processing", "Processing"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class ListingVideo(models.Model):
    """A listing's video (listings.videos): checked on upload, cleaned by the worker.

    `source` is the upload as received, kept private (never given a URL) until the worker has
    remuxed it without metadata into `file` and extracted `poster`; the listing shows only
    `ready` videos.
    """

    Status = VideoStatus

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    listing = models.ForeignKey(Listing, on_delete=models.CASCADE, related_name="videos")
    status = models.CharField(max_length=16, choices=VideoStatus.choices,
                              default=VideoStatus.PROCESSING)
    source = models.FileField(upload_to="videos/incoming/", blank=True, default="")
    file = models.FileField(upload_to="listings/%Y/%m/videos/", blank=True, default="")
    poster = models.ImageField(upload_to="listings/%Y/%m/videos/", blank=True, default="")
    duration_seconds = models.FloatField(default=0)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    codec = models.CharField(max_length=16, blank=True, default="")
    size_bytes = models.PositiveBigIntegerField(default=0)
    error = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    ready_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["listing", "status"], name="listing_video_status")]
        constraints = [models.CheckConstraint(condition=Q(status__in=VideoStatus.values),
                                              name="listing_video_status_valid")]

    def __str__(self) -> str:
        return f"video of {self.listing_id} ({self.status})"
