from __future__ import annotations

from django.db.models import QuerySet

from biddt.geo import bounding_box, distance_km_expr
from safezones.models import SafeZone


def safe_zone_nearby(*, lat: float | None, lng: float | None,
                     radius_km: float) -> QuerySet[SafeZone]:
    """Active safe zones; with a position: within `radius_km`, nearest first, `distance_km` set."""
    qs = SafeZone.objects.filter(is_active=True)
    if lat is None or lng is None:
        return qs.order_by("partner_name", "name", "id")
    box = bounding_box(lat, lng, radius_km)
    return (qs.filter(box.q("lat", "lng"))
            .annotate(distance_km=distance_km_expr(lat, lng, "lat", "lng"))
            .filter(distance_km__lte=radius_km)
            .order_by("distance_km", "id"))
