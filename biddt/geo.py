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

from django.db.models import BooleanField, F, Field, FloatField, IntegerField, Q, Value
from django.db.models.expressions import CombinedExpression, Func

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
    return DistanceKm(lat, lng, lat_field, lng_field)


class DistanceKm(Func):
    """The haversine as one expression: the SQL and parameters that composing Django's math
    functions writes (`2R * ASIN(LEAST(1, SQRT(sin²(Δlat/2) + cos lat0 cos lat sin²(Δlng/2))))`,
    tests/listings/test_browse_request_path.py compares them), without the twenty-odd expression
    objects that each browse request copied, resolved, hashed and compiled (a near-me page
    spent more CPU there than in its SQL)."""

    output_field = FloatField()
    _INT = IntegerField()  # the `2`s, as Value(2) resolves them

    def __init__(self, lat: float, lng: float, lat_field: str, lng_field: str) -> None:
        super().__init__(F(lat_field), F(lng_field))
        self.lat0, self.lng0 = math.radians(lat), math.radians(lng)

    def as_sql(self, compiler, connection, least: str = "LEAST", **extra_context):
        row_lat, row_lng = (compiler.compile(e) for e in self.get_source_expressions())
        params: list = []

        def value(v) -> str:
            sql, more = compiler.compile(
                Value(v, output_field=self._INT if isinstance(v, int) else self.output_field))
            params.extend(more)
            return sql

        def radians(column) -> str:
            params.extend(column[1])
            return f"RADIANS({column[0]})"

        # Written in the order the composed expression writes its parts (the parameters
        # follow the text).
        scale, one = value(2 * EARTH_RADIUS_KM), value(1.0)
        sin_lat = (f"POWER(SIN((({radians(row_lat)} - {value(self.lat0)}) / {value(2)})), "
                   f"{value(2)})")
        cos_lat = f"(COS({value(self.lat0)}) * COS({radians(row_lat)}))"
        sin_lng = (f"POWER(SIN((({radians(row_lng)} - {value(self.lng0)}) / {value(2)})), "
                   f"{value(2)})")
        return (f"({scale} * ASIN({least}({one}, SQRT(({sin_lat} + ({cos_lat} * {sin_lng}))))))",
                params)

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, least="MIN", **extra_context)


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
