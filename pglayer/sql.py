"""The layer's SQL, in files beside it: `schema.sql` (installed by migrations/0001_schema.py)
and `queries.sql` (runtime statements as named blocks, `-- name: take`)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCHEMA = HERE / "schema.sql"


@cache
def query(name: str) -> str:
    blocks: list[str] = re.split(r"^-- name: (\w+)\n", (HERE / "queries.sql").read_text(), flags=re.MULTILINE)
    return {n: body.strip() for n, body in zip(blocks[1::2], blocks[2::2], strict=True)}[name]
