"""SQL lives in files: `migrations_sql/NNNN_*.sql` (installed by migrations) and
`cdc/queries.sql` (runtime queries as named blocks, `-- name: read_changes`)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from django.db import migrations

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
