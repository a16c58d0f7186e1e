"""Reading the change log in commit order.

Event ids are handed out at insert time, but transactions commit in another order, so "every
id above the last one seen" would skip a row whose transaction began earlier and committed
later. The log is read by snapshot instead, as PgQ does: each batch is every change whose
transaction was not visible in the previous batch's snapshot and is visible in this one. It
is exact (nothing skipped, nothing twice) and a long-open transaction holds nobody up.

A delta between two snapshots can be larger than one batch should be (a 100,000-row insert
commits at once), so a `Cursor` may also pin the upper snapshot and continue after an id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from cdc.sql import fetch_one, query

TRUNCATE = "truncate"  # the op of a captured TRUNCATE: the table's rows are gone, no images


@dataclass(frozen=True, slots=True)
class Change:
    id: int
    txid: int
    table: str  # schema-qualified, 'public.article'
    op: str  # 'insert' | 'update' | 'delete' | 'truncate'
    row: dict[str, Any] | None  # the new row; None for a delete or truncate
    old: dict[str, Any] | None  # the old row; None for an insert or truncate
    captured_at: datetime


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the next read starts: after snapshot `since`, up to `until` (None: now), past
    `after_id` (only within a pinned `until`)."""

    since: str
    until: str | None = None
    after_id: int = 0


@dataclass(frozen=True, slots=True)
class Batch:
    cursor: Cursor  # what was read
    snapshot: str  # the upper snapshot of this batch
    changes: list[Change]
    complete: bool  # False: the same delta holds more changes, after changes[-1]

    def next_cursor(self) -> Cursor:
        if self.complete:
            return Cursor(since=self.snapshot)
        return Cursor(since=self.cursor.since, until=self.snapshot, after_id=self.changes[-1].id)


def snapshot_sees(snapshot: str, txid: int) -> bool:
    """Whether a transaction's changes are visible in a snapshot ('xmin:xmax:xip,...'),
    as pg_visible_in_snapshot() would say, for a transaction known to have committed."""
    xmin, xmax, xip = snapshot.split(":")
    if txid < int(xmin):
        return True
    if txid >= int(xmax):
        return False
    return str(txid) not in xip.split(",")


async def current_cursor(conn: AsyncConnection[Any]) -> Cursor:
    """A cursor that reads every change committed from now on."""
    row = await fetch_one(conn, query("current_snapshot"))
    return Cursor(since=row[0])


async def plan_reads_once(conn: AsyncConnection[Any]) -> None:
    """Make `conn` plan `read_changes` once, not for every read: the relay reads every few
    milliseconds under steady writes, and planning each read cost more than running it. The
    connection then plans no sequential scan either: a plan kept for the connection's life,
    made while the log was small, would otherwise scan the log on every read as it grows.
    Nor does it JIT-compile: a scan it cannot avoid is then priced past every threshold."""
    await conn.execute(query("plan_once"))


async def read_batch(conn: AsyncConnection[Any], cursor: Cursor, limit: int = 5000) -> Batch:
    """Every change committed after `cursor`, at most `limit` of them, from one snapshot."""
    params = {"since": cursor.since, "until": cursor.until, "after_id": cursor.after_id, "limit": limit + 1}
    async with conn.cursor() as cur:
        await cur.execute(query("read_changes"), params)
        rows = await cur.fetchall()
    changes = [change_from_row(r) for r in rows if r[1] is not None]
    return Batch(cursor=cursor, snapshot=rows[0][0], changes=changes[:limit], complete=len(changes) <= limit)


def change_from_row(r: tuple[Any, ...]) -> Change:
    """A Change from a row whose columns 1-7 are, as the queries in cdc/queries.sql select
    them: id, txid, table_name, op, new_row, old_row, captured_at (column 0 is theirs)."""
    return Change(r[1], int(r[2]), r[3], r[4], r[5], r[6], r[7])
