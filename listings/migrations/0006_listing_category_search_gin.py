"""Full text within a category from one index (PostgreSQL): GIN on (category, search_vector).

With the search vector's index alone, "camera in electronics near me" reads every camera in
the circle and drops the other categories one row at a time; `btree_gin` (a trusted contrib
extension) lets the category be a GIN key next to the words, so the bitmap holds only the
matching rows. It replaces the search vector's own index (0002): a multicolumn GIN index
answers a condition on any of its columns alone as well, so plain search uses it too.
"""

from django.db import migrations


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS listing_category_search_gin ON listings_listing "
        "USING gin (category, search_vector)")
    schema_editor.execute("DROP INDEX IF EXISTS listing_search_gin")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE INDEX IF NOT EXISTS listing_search_gin "
                              "ON listings_listing USING gin (search_vector)")
        schema_editor.execute("DROP INDEX IF EXISTS listing_category_search_gin")


class Migration(migrations.Migration):
    dependencies = [("listings", "0005_listing_earth_gist")]
    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
