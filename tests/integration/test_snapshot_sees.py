"""`cdc.log.snapshot_sees` answers as Postgres's own `pg_visible_in_snapshot` does.

The consumers use it to drop a live change that their snapshot already reflects; a wrong
answer for a transaction that was in flight at the snapshot silently loses that change. The
generated cases are biased to where answers differ: the bounds and the in-progress list.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdc.log import snapshot_sees
from core.database import conninfo

pytestmark = pytest.mark.unit  # a plain query, no fresh database: among the fast tests


@st.composite
def snapshots_and_txids(draw: st.DrawFn) -> tuple[str, list[int]]:
    xmin = draw(st.integers(3, 2**31) | st.integers(3, 40))  # Postgres refuses some xids past 2**32
    xmax = xmin + draw(st.integers(0, 12))
    xip = sorted(draw(st.sets(st.integers(xmin, max(xmin, xmax - 1)), max_size=6)) - {xmax})
    if xip and xip[0] != xmin:
        xip = [xmin, *xip]  # xmin is the oldest transaction in progress whenever any is
    edges = [xmin - 2, xmin - 1, xmin, xmin + 1, xmax - 1, xmax, xmax + 1]
    txids = draw(st.lists(st.sampled_from(edges + xip) | st.integers(1, xmax + 20), min_size=1, max_size=12))
    return f"{xmin}:{xmax}:{','.join(map(str, xip))}", txids


@pytest.fixture(scope="module")
def pg() -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(conninfo(), autocommit=True) as conn:
        yield conn


def postgres_says(pg: psycopg.Connection[Any], snapshot: str, txids: list[int]) -> list[bool]:
    rows = pg.execute(
        "SELECT pg_visible_in_snapshot(t::text::xid8, %s::pg_snapshot) FROM unnest(%s::bigint[]) AS t",
        (snapshot, txids),
    ).fetchall()
    return [row[0] for row in rows]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=snapshots_and_txids())
def test_snapshot_sees_agrees_with_postgres_on_generated_snapshots(pg, case):
    snapshot, txids = case
    assert [snapshot_sees(snapshot, t) for t in txids] == postgres_says(pg, snapshot, txids), snapshot


def test_snapshot_sees_agrees_with_postgres_on_a_real_snapshot_with_transactions_in_flight(pg):
    """Three writers open, the middle one and a later one committed: the snapshot lists the
    first and the third as in progress."""
    dsn = conninfo()
    with psycopg.connect(dsn) as a, psycopg.connect(dsn) as b, psycopg.connect(dsn) as c:
        txids = [int(conn.execute("SELECT pg_current_xact_id()::text").fetchone()[0]) for conn in (a, b, c)]
        b.commit()
        pg.execute("SELECT pg_current_xact_id()")  # commits a later transaction: xmax moves past c
        snapshot = pg.execute("SELECT pg_current_snapshot()::text").fetchone()[0]
    around = range(min(txids) - 2, max(txids) + 3)
    in_progress = snapshot.split(":")[2].split(",")  # other sessions' may be there too
    assert str(txids[0]) in in_progress
    assert str(txids[2]) in in_progress
    assert str(txids[1]) not in in_progress
    assert [snapshot_sees(snapshot, t) for t in around] == postgres_says(pg, snapshot, list(around))
    assert [snapshot_sees(snapshot, t) for t in txids] == [False, True, False]
