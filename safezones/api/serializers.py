from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from biddt.geo import MAX_RADIUS_KM
from safezones.models import SafeZone


class SafeZoneQuerySerializer(serializers.Serializer):
    lat = serializers.FloatField(required=False, min_value=-90, max_value=90)
    lng = serializers.FloatField(required=False, min_value=-180, max_value=180)
    radius_km = serializers.FloatField(required=False, default=25.0, min_value=0.1,
                                       max_value=MAX_RADIUS_KM)

    def validate(self, attrs):
        if ("lat" in attrs) != ("lng" in attrs):
            raise serializers.ValidationError(_("Send lat and lng together."), code="invalid")
        return attrs


class SafeZoneSerializer(serializers.ModelSerializer):
    distance_km = serializers.SerializerMethodField()

    class Meta:
        model = SafeZone
        fields = ["id", "partner_name", "name", "address", "lat", "lng", "hours", "phone",
                  "distance_km"]
        read_only_fields = fields

    def get_distance_km(self, obj) -> float | None:
        distance = getattr(obj, "distance_km", None)
        return None if distance is None else round(distance, 2)
