"""SQL lives in files: `migrations_sql/NNNN_*.sql` (installed by migrations) and
`cdc/queries.sql` (runtime queries as named blocks, `-- name: read_changes`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from django.db import migrations
from psycopg import AsyncConnection
from psycopg.rows import AsyncRowFactory, TupleRow, tuple_row

Row = TypeVar("Row")

MIGRATIONS_SQL = Path(__file__).resolve().parent.parent / "migrations_sql"
QUERIES_FILE = Path(__file__).resolve().parent / "queries.sql"


def run_sql_file(name: str) -> migrations.RunSQL:
    """A migration operation that applies one file of `migrations_sql/`, as psql would."""
    return migrations.RunSQL([(MIGRATIONS_SQL / name).read_text()])


@cache
def queries() -> dict[str, str]:
    blocks = re.split(r"^-- name: (\w+)\n", QUERIES_FILE.read_text(), flags=re.MULTILINE)
    return {name: body.strip() for name, body in zip(blocks[1::2], blocks[2::2], strict=True)}


def query(name: str) -> str:
    return queries()[name]


class SchemaMissing(RuntimeError):
    """The database lacks what the migrations install."""


async def fetch_one(
    conn: AsyncConnection[Any],
    sql: str,
    params: Mapping[str, Any] | None = None,
    *,
    missing: str = "a query that always returns a row returned none",
) -> TupleRow:
    """The one row `sql` returns; SchemaMissing saying `missing` (and what to do) if none."""
    return await fetch_one_as(conn, sql, params, tuple_row, missing=missing)


async def fetch_one_as(
    conn: AsyncConnection[Any],
    sql: str,
    params: Mapping[str, Any] | None,
    row_factory: AsyncRowFactory[Row],
    *,
    missing: str = "a query that always returns a row returned none",
) -> Row:
    """The one row `sql` returns; SchemaMissing saying `missing` (and what to do) if none."""
    async with conn.cursor(row_factory=row_factory) as cur:
        await cur.execute(sql, params)
        row = await cur.fetchone()
    if row is None:
        raise SchemaMissing(f"{missing}: run `python manage.py migrate` on this database")
    return row
