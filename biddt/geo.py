"""Near-me queries without PostGIS: an indexed prefilter, then the exact distance.

PostgreSQL: `cube` + `earthdistance` with a GiST index on the coordinates as an earth point
(`earth_within_q`, `earth_order_expr`: KNN order by distance). SQLite (`make run`): a
bounding box on the two btree columns, then the haversine.

`distance_km_expr` is the haversine great-circle distance as a database expression (Django's
math functions exist on PostgreSQL and SQLite), so results can be filtered and ordered by
distance in SQL.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.db.models import BooleanField, F, Field, FloatField, Q, Value
from django.db.models.expressions import CombinedExpression, Func
from django.db.models.functions import ASin, Cos, Least, Power, Radians, Sin, Sqrt

EARTH_RADIUS_KM = 6371.0088
MAX_RADIUS_KM = 500.0


@dataclass(frozen=True)
class BoundingBox:
    min_lat: float
    max_lat: float
    min_lng: float
    max_lng: float
    wraps: bool = False  # crosses the antimeridian: lng <= max_lng OR lng >= min_lng

    def q(self, lat_field: str, lng_field: str) -> Q:
        lat = Q(**{f"{lat_field}__gte": self.min_lat, f"{lat_field}__lte": self.max_lat})
        if self.wraps:
            lng = Q(**{f"{lng_field}__gte": self.min_lng}) | Q(**{f"{lng_field}__lte":
                                                                  self.max_lng})
        else:
            lng = Q(**{f"{lng_field}__gte": self.min_lng, f"{lng_field}__lte": self.max_lng})
        return lat & lng


def bounding_box(lat: float, lng: float, radius_km: float) -> BoundingBox:
    """The lat/lng rectangle that contains every point within `radius_km` of (lat, lng).

    Longitude span from the tangent latitude (J. Matuschek, "Finding points within a distance
    of a latitude/longitude using bounding coordinates"); a box over a pole spans every
    longitude, a box over the antimeridian wraps.
    """
    ang = radius_km / EARTH_RADIUS_KM
    lat0 = math.radians(lat)
    min_lat, max_lat = lat - math.degrees(ang), lat + math.degrees(ang)
    if min_lat <= -90 or max_lat >= 90:  # a pole is inside: every longitude qualifies
        return BoundingBox(max(min_lat, -90), min(max_lat, 90), -180, 180)
    dlng = math.degrees(math.asin(min(1.0, math.sin(ang) / math.cos(lat0))))
    min_lng, max_lng = lng - dlng, lng + dlng
    if min_lng < -180:
        return BoundingBox(min_lat, max_lat, min_lng + 360, max_lng, wraps=True)
    if max_lng > 180:
        return BoundingBox(min_lat, max_lat, min_lng, max_lng - 360, wraps=True)
    return BoundingBox(min_lat, max_lat, min_lng, max_lng)


def distance_km_expr(lat: float, lng: float, lat_field: str, lng_field: str) -> Func:
    """Haversine distance from (lat, lng) to the row's coordinates, in km, as SQL."""
    lat0, lng0 = Value(math.radians(lat)), Value(math.radians(lng))
    row_lat, row_lng = Radians(F(lat_field)), Radians(F(lng_field))
    a = (Power(Sin((row_lat - lat0) / 2), 2)
         + Cos(lat0) * Cos(row_lat) * Power(Sin((row_lng - lng0) / 2), 2))
    return Value(2 * EARTH_RADIUS_KM) * ASin(Least(Value(1.0), Sqrt(a)),
                                             output_field=FloatField())


# --- PostgreSQL: cube + earthdistance on a GiST index (listings migration 0005) -------------

class _Infix(Func):
    """`left <op> right` for the cube operators Django has no lookup for (`@>`, `<->`)."""

    template = "(%(expressions)s)"

    def __init__(self, left, op: str, right, output_field):
        self.arg_joiner = f" {op} "
        super().__init__(left, right, output_field=output_field)


def _earth_point(lat, lng) -> Func:
    """The coordinates as a point on the earth (`listing_earth_point`, ll_to_earth)."""
    return Func(lat, lng, function="listing_earth_point", output_field=Field())


def _earth_arc(radius_km: float) -> CombinedExpression:
    """A great-circle distance in earthdistance's units (metres on a sphere of radius
    `earth()`): the same angle as `radius_km` on EARTH_RADIUS_KM, which the haversine uses,
    so both paths draw the same circle."""
    return Value(radius_km / EARTH_RADIUS_KM) * Func(function="earth", output_field=FloatField())


def earth_within_q(lat: float, lng: float, radius_km: float, lat_field: str,
                   lng_field: str) -> tuple[_Infix, _Infix]:
    """Filters for rows within `radius_km`: the GiST-indexed `earth_box @>` (a cube around
    the circle), then the exact `earth_distance`."""
    center = _earth_point(Value(float(lat)), Value(float(lng)))
    row = _earth_point(F(lat_field), F(lng_field))
    box = Func(center, _earth_arc(radius_km), function="earth_box", output_field=Field())
    exact = Func(center, row, function="earth_distance", output_field=FloatField())
    return (_Infix(box, "@>", row, BooleanField()),
            _Infix(exact, "<=", _earth_arc(radius_km), BooleanField()))


def earth_order_expr(lat: float, lng: float, lat_field: str, lng_field: str) -> _Infix:
    """Straight-line distance between the two earth points (`<->` on cube): it grows with the
    great-circle distance, and ORDER BY it alone is a KNN scan of the GiST index."""
    return _Infix(_earth_point(F(lat_field), F(lng_field)), "<->",
                  _earth_point(Value(float(lat)), Value(float(lng))), FloatField())


def haversine_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """The great-circle distance in Python (saved-search matching on SQLite, where the SQL
    distance isn't available)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))
