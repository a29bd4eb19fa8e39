"""Planner statistics after bulk writes, and the shape of a query plan (PostgreSQL).

Right after a bulk load PostgreSQL has no statistics for the new rows until autovacuum gets
to the table (a minute or more): the planner then takes a freshly loaded table for nearly
empty and picks nested loops that rescan an index once per row of the other side. Whatever
writes rows in bulk runs `analyze()` on what it wrote.

`plan_shape` reads `EXPLAIN (ANALYZE, FORMAT JSON)` output: every node with the rows it read
and the rows it passed on, so a benchmark or a test can print it and refuse a plan that reads
far more than it returns.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connection


def analyze(*models) -> None:
    """`ANALYZE` the models' tables (PostgreSQL; SQLite plans without it).

    Also merges the GIN indexes' pending lists (full text): rows written in bulk wait there
    until the next vacuum, every search reads the whole list meanwhile, and the planner,
    costing that, turns to a sequential scan. A manual ANALYZE doesn't merge them."""
    if connection.vendor != "postgresql" or not models:
        return
    names = [m._meta.db_table for m in models]
    tables = ", ".join(connection.ops.quote_name(name) for name in names)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT gin_clean_pending_list(i.indexrelid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam "
            "WHERE a.amname = 'gin' AND i.indrelid = ANY(%s::regclass[])", [names])
        cursor.execute(f"ANALYZE {tables}")


@dataclass(frozen=True)
class PlanNode:
    node_type: str
    relation: str | None
    index: str | None
    depth: int
    rows_out: float  # actual rows over all loops
    rows_read: float  # rows_out + rows removed by filters / index rechecks, over all loops
    loops: int

    @property
    def read_ratio(self) -> float:
        return self.rows_read / max(self.rows_out, 1.0)

    def describe(self) -> str:
        on = f" on {self.relation}" if self.relation else ""
        using = f" using {self.index}" if self.index else ""
        loops = f" ×{self.loops} loops" if self.loops > 1 else ""
        return (f"{'  ' * self.depth}{self.node_type}{on}{using}: read {self.rows_read:,.0f}"
                f" → {self.rows_out:,.0f} rows{loops}")


def _walk(node: dict[str, Any], depth: int = 0) -> Iterator[PlanNode]:
    loops = int(node.get("Actual Loops", 1) or 1)
    rows = float(node.get("Actual Rows", 0)) * loops
    removed = (float(node.get("Rows Removed by Filter", 0))
               + float(node.get("Rows Removed by Index Recheck", 0))) * loops
    yield PlanNode(node_type=node["Node Type"], relation=node.get("Relation Name"),
                   index=node.get("Index Name"), depth=depth, rows_out=rows,
                   rows_read=rows + removed, loops=loops)
    for child in node.get("Plans", ()):
        yield from _walk(child, depth + 1)


def plan_shape(explain_json: Any) -> list[PlanNode]:
    """The nodes of an `EXPLAIN (ANALYZE, FORMAT JSON)` result, depth first."""
    plan = explain_json[0] if isinstance(explain_json, list) else explain_json
    return list(_walk(plan["Plan"]))


def explain(sql: str, params: Any = None, *, analyze_: bool = True) -> dict[str, Any]:
    """`EXPLAIN (ANALYZE, FORMAT JSON)` of one statement: the plan document."""
    options = "ANALYZE, FORMAT JSON" if analyze_ else "FORMAT JSON"
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN ({options}) {sql}", params)
        doc = cursor.fetchone()[0]
    return doc[0] if isinstance(doc, list) else doc
