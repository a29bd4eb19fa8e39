"""Saved-search shapes. The filters are `GET /v1/listings`' own parameters
(listings.filters.ListingBrowseParams), so they take the same values and give the same
400s (`invalid_choice`, `max_value`, `location_required`, ...)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from biddt.params import SharedFieldsSerializer
from discovery.selectors import FILTERS
from listings.filters import ListingBrowseParams
from listings.selectors import PUBLIC_ORDERINGS


class SavedSearchInSerializer(ListingBrowseParams):
    """`POST /v1/saved-searches` body; a PATCH is checked as the search it would leave.

    A filter may be null (not filtered: a PATCH with null drops it)."""

    # Browse parameters that are not part of a saved search.
    status = None
    seller = None
    watching = None
    ordering = None

    name = serializers.CharField(max_length=100)
    notify = serializers.BooleanField(help_text="Send a `saved_search_match` notification "
                                                "for each new listing that matches.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in FILTERS:
            self.fields[name].allow_null = True

    def validate_name(self, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise serializers.ValidationError(_("The name can't be blank."), code="blank")
        return value

    def validate(self, attrs):
        given = {key: value for key, value in attrs.items() if value is not None}
        super().validate(given)
        low, high = given.get("min_price"), given.get("max_price")
        if low is not None and high is not None and low > high:
            raise serializers.ValidationError(
                {"max_price": [_("max_price can't be below min_price.")]},
                code="invalid_price_range")
        return attrs


class SavedSearchSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    name = serializers.CharField(read_only=True)
    q = serializers.CharField(read_only=True, allow_null=True)
    category = serializers.CharField(read_only=True, allow_null=True)
    condition = serializers.CharField(read_only=True, allow_null=True)
    min_price = serializers.IntegerField(read_only=True, allow_null=True)
    max_price = serializers.IntegerField(read_only=True, allow_null=True)
    lat = serializers.FloatField(read_only=True, allow_null=True)
    lng = serializers.FloatField(read_only=True, allow_null=True)
    radius_km = serializers.FloatField(read_only=True, allow_null=True)
    notify = serializers.BooleanField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)


class SavedSearchListingsParams(SharedFieldsSerializer):
    ordering = serializers.ChoiceField(
        choices=[(o, o) for o in PUBLIC_ORDERINGS], required=False,
        help_text="As on GET /v1/listings: default relevance with `q`, else `newest`; "
                  "`distance` needs a search with a place.")
