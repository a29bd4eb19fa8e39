"""Saved searches: a user's `GET /v1/listings` filters, kept to be told of new listings.

On PostgreSQL a trigger (migration 0002) keeps the columns the matching reads: the search's
text as a `tsquery` (the `websearch_to_tsquery` of `q_websearch`, what browse runs for `q`),
the positive lexemes of that query (a listing can only match a text search if it holds at
least one of them), its index keys (`q_keys`: the lexemes, or for a query whose words are all
required one pair of them, `"a b"`) and the search's `anchor`, the most selective of its
indexed filters (text, then place, then category; `none` for a search with none of them).
Matching reads each anchor through its own partial index (discovery.selectors).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from listings.models import Category, Condition


class TsQueryField(models.Field):
    """A PostgreSQL `tsquery` (written only by the trigger; SQLite keeps an unused text)."""

    def db_type(self, connection) -> str:
        return "tsquery" if connection.vendor == "postgresql" else "text"


class LexemesField(models.Field):
    """A PostgreSQL `text[]` of lexemes (written only by the trigger; unused text on SQLite)."""

    def db_type(self, connection) -> str:
        return "text[]" if connection.vendor == "postgresql" else "text"


class Anchor(models.TextChoices):
    TEXT = "text", "Full text"
    GEO = "geo", "Place"
    CATEGORY = "category", "Category"
    NONE = "none", "No indexed filter"


class SavedSearch(models.Model):
    Anchor = Anchor

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="saved_searches")
    name = models.CharField(max_length=100)
    # The filters, meaning what they mean on GET /v1/listings (null: not filtered).
    q = models.CharField(max_length=200, null=True, blank=True)
    category = models.CharField(max_length=32, choices=Category.choices, null=True,
                                blank=True)
    condition = models.CharField(max_length=16, choices=Condition.choices, null=True,
                                 blank=True)
    min_price = models.PositiveBigIntegerField(null=True, blank=True)
    max_price = models.PositiveBigIntegerField(null=True, blank=True)
    lat = models.FloatField(null=True, blank=True)
    lng = models.FloatField(null=True, blank=True)
    radius_km = models.FloatField(null=True, blank=True)
    notify = models.BooleanField(default=True)

    # `q` as websearch_to_tsquery takes it (listings.selectors.search_text), set with `q`.
    q_websearch = models.CharField(max_length=400, blank=True, default="", editable=False)
    # Kept by the PostgreSQL trigger (migration 0002); never written by Django.
    q_tsquery = TsQueryField(null=True, blank=True, editable=False)
    q_lexemes = LexemesField(null=True, blank=True, editable=False)
    q_keys = LexemesField(null=True, blank=True, editable=False)
    anchor = models.CharField(max_length=8, choices=Anchor.choices, blank=True, default="",
                              editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(lat__isnull=True) & Q(lng__isnull=True) & Q(radius_km__isnull=True))
                | (Q(lat__isnull=False) & Q(lng__isnull=False)),
                name="saved_search_location_pair"),
            models.CheckConstraint(
                condition=Q(lat__isnull=True) | (Q(lat__gte=-90) & Q(lat__lte=90)),
                name="saved_search_lat_range"),
            models.CheckConstraint(
                condition=Q(lng__isnull=True) | (Q(lng__gte=-180) & Q(lng__lte=180)),
                name="saved_search_lng_range"),
        ]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="saved_search_user_recent"),
            # The category anchor (SQLite matching filters on it as well).
            models.Index(fields=["category"], condition=Q(notify=True, anchor="category"),
                         name="saved_search_anchor_cat"),
            models.Index(fields=["user"], condition=Q(notify=True, anchor="none"),
                         name="saved_search_anchor_none"),
        ]

    def __str__(self) -> str:
        return self.name


class MatchedListing(models.Model):
    """A listing whose saved-search matching has run: what the sweep for lost hand-offs
    (`saved_searches_match_missed`) leaves alone."""

    listing = models.OneToOneField("listings.Listing", primary_key=True,
                                   on_delete=models.CASCADE, related_name="+")
    matched_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"matched {self.listing_id}"
