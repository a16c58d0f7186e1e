"""The same filter means the same thing live and in SQL (cdc/filters.py): for generated rows
(NULLs, unicode, integers, numerics, floats, booleans, timestamps) and generated filters,
the Python filter over each row's captured image (to_jsonb, decoded as the relay decodes it)
selects exactly the rows the SQL filter selects in the real Postgres."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC
from decimal import Decimal
from typing import Any

import orjson
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql
from psycopg.types.json import set_json_loads

from cdc.declarations import Stream
from cdc.filters import BOOLEAN, INTEGER, NUMBER, OPERATORS, TEXT, TIMESTAMP, Column

STREAM = Stream(
    name="mixed",
    table="public.mixed",
    columns={
        "txt": Column(TEXT, operators=OPERATORS),  # text orderings too: by code point on both sides
        "i": Column(INTEGER),
        "n": Column(NUMBER),
        "f": Column(NUMBER),
        "b": Column(BOOLEAN),
        "ts": Column(TIMESTAMP),
    },
)
# The text column has a linguistic collation, as a production database may: its orderings
# differ from code point order, which the SQL filter must follow (COLLATE "C"). The first
# of these the server has (an ICU build has the first; the embedded server, built without
# ICU, has the OS's locales), else the database's own.
LINGUISTIC = ["und-x-icu", "en_US.utf8", "en_US.UTF-8", "en_GB.utf8", "de_DE.utf8"]
TABLE = sql.SQL(
    "CREATE TABLE mixed (id int PRIMARY KEY, txt text {collate},"
    " i bigint, n numeric, f float8, b boolean, ts timestamptz)"
)

texts = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=6) | st.sampled_from(
    ["", "a", "B", "é", "e\u0301", "\U0001f600", "Z", "\uffff"]
)
numerics = st.decimals(min_value=-(10**12), max_value=10**12, places=3, allow_nan=False, allow_infinity=False)
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "txt": texts,
    "i": st.integers(-(2**63), 2**63 - 1) | st.integers(-3, 3),
    "n": numerics | st.sampled_from([Decimal("0"), Decimal("1.5"), Decimal("-0.001")]),
    "f": st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from([0.0, -0.0, 1.5, 1e-300]),
    "b": st.booleans(),
    "ts": st.datetimes(timezones=st.just(UTC)),
}


def wire(column: str, value: Any) -> Any:
    """A row's value as a client would name it in a filter (JSON)."""
    if column == "n":
        return float(value)
    return value.isoformat() if column == "ts" else value


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    rows = draw(
        st.lists(
            st.fixed_dictionaries({c: st.none() | v for c, v in VALUES.items()}), min_size=1, max_size=12
        )
    )
    seen = {c: [r[c] for r in rows if r[c] is not None] for c in VALUES}

    def values(column: str) -> st.SearchStrategy[Any]:
        of_rows = st.sampled_from(seen[column]) if seen[column] else VALUES[column]
        return (of_rows | VALUES[column]).map(lambda v: wire(column, v))

    filters: dict[str, Any] = {}
    for name in draw(st.lists(st.sampled_from(list(VALUES)), unique=True, max_size=3)):
        ops = draw(
            st.lists(st.sampled_from(STREAM.columns[name].allowed), unique=True, min_size=1, max_size=2)
        )
        filters[name] = {
            op: draw(st.lists(values(name), min_size=1, max_size=3) if op == "in" else values(name))
            for op in ops
        }
    return rows, filters


@pytest.fixture
def conn(fresh_db: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        set_json_loads(orjson.loads, conn)  # as the relay reads the log (cdc/relay.py)
        found = conn.execute(
            "SELECT collname FROM pg_collation WHERE collname = ANY(%(names)s)"
            " ORDER BY array_position(%(names)s, collname::text) LIMIT 1",
            {"names": LINGUISTIC},
        ).fetchone()
        collate = sql.SQL("COLLATE {}").format(sql.Identifier(found[0])) if found else sql.SQL("")
        conn.execute(TABLE.format(collate=collate))
        yield conn


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=cases())
def test_python_and_postgres_select_the_same_rows(conn, case):
    rows, wanted = case
    filters = STREAM.filters_of(wanted)
    conn.execute("TRUNCATE mixed")
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO mixed VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [(n, *(row[c] for c in VALUES)) for n, row in enumerate(rows)],
        )
    images = conn.execute("SELECT id, to_jsonb(t) FROM mixed AS t").fetchall()
    where, params = filters.where("t", "f")
    in_sql = conn.execute(sql.SQL("SELECT id FROM mixed AS t WHERE {}").format(where), params).fetchall()
    in_python = {row_id for row_id, image in images if filters.holds(image)}
    assert {row_id for (row_id,) in in_sql} == in_python, (filters, images)
