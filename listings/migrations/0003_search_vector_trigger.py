"""Keep `search_vector` current in the database itself (PostgreSQL only).

A trigger covers every writer (services, admin, bulk_create, COPY in the benchmark), so the
vector can never go stale: title weighted A above description B, English stemming.
SQLite has no search vector; the selectors fall back to LIKE matching there.
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION listings_listing_search_vector_update() RETURNS trigger AS $$
BEGIN
    NEW.search_vector :=
        setweight(to_tsvector('english'::regconfig, coalesce(NEW.title, '')), 'A') ||
        setweight(to_tsvector('english'::regconfig, coalesce(NEW.description, '')), 'B');
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
"""

TRIGGER = """
DROP TRIGGER IF EXISTS listings_listing_search_vector ON listings_listing;
CREATE TRIGGER listings_listing_search_vector
    BEFORE INSERT OR UPDATE OF title, description ON listings_listing
    FOR EACH ROW EXECUTE FUNCTION listings_listing_search_vector_update();
"""

BACKFILL = """
UPDATE listings_listing SET search_vector =
    setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A') ||
    setweight(to_tsvector('english'::regconfig, coalesce(description, '')), 'B');
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTION)
        schema_editor.execute(TRIGGER)
        schema_editor.execute(BACKFILL)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP TRIGGER IF EXISTS listings_listing_search_vector "
                              "ON listings_listing")
        schema_editor.execute("DROP FUNCTION IF EXISTS listings_listing_search_vector_update()")


class Migration(migrations.Migration):
    dependencies = [("listings", "0002_search_vector_gin")]
    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
