"""Query parameters of `GET /v1/listings`, validated as a serializer (shape only).

Bad values are 400 with the parameter as `attr` (`invalid_choice`, `max_value`, ...);
a location filter without both coordinates is 400 `location_required`.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from biddt.params import SharedFieldsSerializer
from biddt.parsers import MAX_INT
from listings.models import Category, Condition, ListingStatus
from listings.selectors import MAX_RADIUS_KM, PUBLIC_ORDERINGS


class ListingBrowseParams(serializers.Serializer):
    q = serializers.CharField(required=False, allow_blank=True, max_length=200,
                              help_text="Full text over title (weighted higher) and "
                                        "description; results ranked by relevance unless "
                                        "`ordering` is given.")
    category = serializers.ChoiceField(choices=Category.choices, required=False)
    condition = serializers.ChoiceField(choices=Condition.choices, required=False)
    min_price = serializers.IntegerField(required=False, min_value=0, max_value=MAX_INT,
                                         help_text="On the current price, in cents.")
    max_price = serializers.IntegerField(required=False, min_value=0, max_value=MAX_INT,
                                         help_text="On the current price, in cents.")
    status = serializers.ChoiceField(choices=ListingStatus.choices, required=False,
                                     default=ListingStatus.ACTIVE,
                                     help_text="Default `active` (so not `scheduled`, listings "
                                               "opening later). Drafts are only ever the "
                                               "caller's own.")
    seller = serializers.UUIDField(required=False)
    lat = serializers.FloatField(required=False, min_value=-90, max_value=90)
    lng = serializers.FloatField(required=False, min_value=-180, max_value=180)
    radius_km = serializers.FloatField(required=False, min_value=0.1, max_value=MAX_RADIUS_KM,
                                       help_text="With lat and lng; default and maximum 500.")
    watching = serializers.BooleanField(required=False, default=False,
                                        help_text="Only listings the caller watches "
                                                  "(needs authentication).")
    ordering = serializers.ChoiceField(choices=[(o, o) for o in PUBLIC_ORDERINGS],
                                       required=False,
                                       help_text="Default: relevance with `q`, else `newest`.")

    def validate(self, attrs):
        has_lat, has_lng = "lat" in attrs, "lng" in attrs
        if has_lat != has_lng:
            missing = "lng" if has_lat else "lat"
            raise serializers.ValidationError(
                {missing: [_("lat and lng go together.")]}, code="location_required")
        if not has_lat:
            for name in ("radius_km", "ordering"):
                if name in attrs and (name == "radius_km" or attrs[name] == "distance"):
                    raise serializers.ValidationError(
                        {name: [_("`{name}={value}` needs lat and lng.").format(
                            name=name, value=self.initial_data.get(name))]},
                        code="location_required")
        return attrs


class ListingBrowseQuery(SharedFieldsSerializer, ListingBrowseParams):
    """`ListingBrowseParams` as the view validates a request's query string: the same fields,
    built once per thread (biddt.params). Saved searches subclass `ListingBrowseParams`
    itself (they change their fields)."""
