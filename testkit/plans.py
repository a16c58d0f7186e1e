"""Reading Postgres query plans (EXPLAIN (ANALYZE, FORMAT JSON)) in tests."""

from __future__ import annotations

from typing import Any


def rows_looked_at(node: dict[str, Any], table: str) -> int:
    """Rows that scans of `table` in a plan returned or filtered out, over all their loops."""
    own = 0
    if node.get("Relation Name") == table:
        own = (node["Actual Rows"] + node.get("Rows Removed by Filter", 0)) * node["Actual Loops"]
    return own + sum(rows_looked_at(child, table) for child in node.get("Plans", []))
