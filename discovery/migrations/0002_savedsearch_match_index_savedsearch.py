"""What saved-search matching reads on PostgreSQL: the search's text as a `tsquery`, its
positive lexemes, its anchor, and one partial index per anchor (discovery.selectors).

A trigger fills `q_tsquery`, `q_lexemes` and `anchor` on every insert and update, so every
writer (the service, admin, bulk_create in the benchmark) leaves them right:
- `q_tsquery`: `websearch_to_tsquery('english', q_websearch)`, what `GET /v1/listings` runs
  for `q` (q_websearch is `q` after listings.selectors.search_text);
- `q_lexemes`: the lexemes of `querytree(q_tsquery)`, the part of the query an index can
  answer (negated words left out). A listing the query matches holds at least one of them;
  an empty array (no text, stop words only, only negated words) means the words can't
  narrow and another anchor is used;
- `q_keys`: what the text index holds. Without an OR every lexeme is required, so one pair
  of them (`"a b"`) is a key a matching listing always has and few others do; with an OR,
  each lexeme. A listing offers its lexemes and their pairs (discovery.selectors); one with
  very many lexemes is matched on `q_lexemes` instead (second GIN index);
- `anchor`: `text` when there are lexemes, else `geo` with a place, else `category` with
  one, else `none`.
`saved_search_earth_box(lat, lng, radius_km)` is the cube around the search's circle
(earthdistance's `earth_box` on the listing's earth point, migration listings 0005): GiST
indexed, so a listing's point finds the circles that may hold it. SQLite (`make run`) has
none of this; the selectors filter in Python there.
"""

from django.db import migrations

FUNCTIONS = """
CREATE OR REPLACE FUNCTION saved_search_earth_box(lat float8, lng float8, radius_km float8)
RETURNS {cube}.cube
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT {ed}.earth_box({listing}.listing_earth_point(lat, lng),
                          radius_km / 6371.0088 * {ed}.earth())
$$;

CREATE OR REPLACE FUNCTION discovery_savedsearch_match_columns() RETURNS trigger AS $$
DECLARE
    pair text[];
BEGIN
    IF coalesce(NEW.q_websearch, '') = '' THEN
        NEW.q_tsquery := NULL;
        NEW.q_lexemes := '{{}}';
        NEW.q_keys := '{{}}';
    ELSE
        NEW.q_tsquery := websearch_to_tsquery('english'::regconfig, NEW.q_websearch);
        NEW.q_lexemes := ARRAY(
            SELECT DISTINCT replace(m[1], '''''', '''')
            FROM regexp_matches(querytree(NEW.q_tsquery), '''((?:[^'']|'''')+)''', 'g') AS m);
        IF cardinality(NEW.q_lexemes) >= 2 AND strpos(querytree(NEW.q_tsquery), '|') = 0 THEN
            -- Every word is required: key on the two longest (rarer, as a rule), "a b" with
            -- a < b in code point order (discovery.selectors.listing_text_keys).
            SELECT array_agg(w ORDER BY w COLLATE "C") INTO pair FROM (
                SELECT w FROM unnest(NEW.q_lexemes) AS w
                ORDER BY length(w) DESC, w COLLATE "C" LIMIT 2) AS longest;
            NEW.q_keys := ARRAY[pair[1] || ' ' || pair[2]];
        ELSE
            NEW.q_keys := NEW.q_lexemes;
        END IF;
    END IF;
    NEW.anchor := CASE
        WHEN cardinality(NEW.q_lexemes) > 0 THEN 'text'
        WHEN NEW.lat IS NOT NULL AND NEW.lng IS NOT NULL THEN 'geo'
        WHEN NEW.category IS NOT NULL THEN 'category'
        ELSE 'none' END;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS discovery_savedsearch_match ON discovery_savedsearch;
CREATE TRIGGER discovery_savedsearch_match
    BEFORE INSERT OR UPDATE ON discovery_savedsearch
    FOR EACH ROW EXECUTE FUNCTION discovery_savedsearch_match_columns();
"""

INDEXES = [
    "CREATE INDEX IF NOT EXISTS saved_search_anchor_text ON discovery_savedsearch "
    "USING gin (q_keys) WHERE notify AND anchor = 'text'",
    "CREATE INDEX IF NOT EXISTS saved_search_anchor_words ON discovery_savedsearch "
    "USING gin (q_lexemes) WHERE notify AND anchor = 'text'",
    "CREATE INDEX IF NOT EXISTS saved_search_anchor_geo ON discovery_savedsearch "
    "USING gist (saved_search_earth_box(lat, lng, COALESCE(radius_km, 500.0))) "
    "WHERE notify AND anchor = 'geo'",
]


def _schema(schema_editor, extension: str) -> str:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n "
                       "ON n.oid = e.extnamespace WHERE e.extname = %s", [extension])
        return schema_editor.quote_name(cursor.fetchone()[0])


def _function_schema(schema_editor, name: str) -> str:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT n.nspname FROM pg_proc p JOIN pg_namespace n "
                       "ON n.oid = p.pronamespace WHERE p.proname = %s", [name])
        return schema_editor.quote_name(cursor.fetchone()[0])


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTIONS.format(
        cube=_schema(schema_editor, "cube"), ed=_schema(schema_editor, "earthdistance"),
        listing=_function_schema(schema_editor, "listing_earth_point")))
    for statement in INDEXES:
        schema_editor.execute(statement)
    # Rows saved before this migration: the trigger fills their columns.
    schema_editor.execute("UPDATE discovery_savedsearch SET q_websearch = q_websearch")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS saved_search_anchor_text")
    schema_editor.execute("DROP INDEX IF EXISTS saved_search_anchor_words")
    schema_editor.execute("DROP INDEX IF EXISTS saved_search_anchor_geo")
    schema_editor.execute("DROP TRIGGER IF EXISTS discovery_savedsearch_match "
                          "ON discovery_savedsearch")
    schema_editor.execute("DROP FUNCTION IF EXISTS discovery_savedsearch_match_columns()")
    schema_editor.execute("DROP FUNCTION IF EXISTS "
                          "saved_search_earth_box(float8, float8, float8)")


class Migration(migrations.Migration):
    dependencies = [
        ("discovery", "0001_savedsearch_savedsearch"),
        ("listings", "0005_listing_earth_gist"),
    ]
    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
