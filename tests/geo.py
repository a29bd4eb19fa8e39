"""The great-circle distance in Python: the tests' oracle for the SQL distances."""

from biddt.geo import haversine_km  # noqa: F401
