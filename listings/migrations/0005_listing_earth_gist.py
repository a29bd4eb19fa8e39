"""Near me on a spatial index (PostgreSQL): `cube` + `earthdistance`, a GiST index on the
listing's coordinates as a point on the earth.

`listing_earth_point(lat, lng)` is earthdistance's `ll_to_earth` with every name qualified by
its extension's schema: the index stores this expression, and `ll_to_earth`'s own body
resolves `cube` and `earth` through the search_path, which pg_dump/pg_restore empty (the
index would fail to rebuild on restore). `earthdistance` is not a trusted extension: the
migration needs a superuser (or a managed database's equivalent role) once. SQLite keeps the
bounding box on the two btree columns.
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION listing_earth_point(lat float8, lng float8) RETURNS {ed}.earth
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT {cube}.cube({cube}.cube({cube}.cube(
        {ed}.earth() * pg_catalog.cos(pg_catalog.radians(lat))
                     * pg_catalog.cos(pg_catalog.radians(lng))),
        {ed}.earth() * pg_catalog.cos(pg_catalog.radians(lat))
                     * pg_catalog.sin(pg_catalog.radians(lng))),
        {ed}.earth() * pg_catalog.sin(pg_catalog.radians(lat)))::{ed}.earth
$$;
"""


def _schema(schema_editor, extension: str) -> str:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n "
                       "ON n.oid = e.extnamespace WHERE e.extname = %s", [extension])
        return schema_editor.quote_name(cursor.fetchone()[0])


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS cube")
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS earthdistance")
    schema_editor.execute(FUNCTION.format(cube=_schema(schema_editor, "cube"),
                                          ed=_schema(schema_editor, "earthdistance")))
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS listing_earth_gist ON listings_listing "
        "USING gist (listing_earth_point(location_lat, location_lng))")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS listing_earth_gist")
    schema_editor.execute("DROP FUNCTION IF EXISTS listing_earth_point(float8, float8)")
    # The extensions stay: other objects may use them, and dropping needs a superuser.


class Migration(migrations.Migration):
    dependencies = [("listings", "0004_listing_seller_active")]
    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
