"""What consumers read from the database: snapshots and replays of the change log.

Each subscribe (or repair) reads in one REPEATABLE READ transaction, so the rows, the
current position, the tick range and the replayed changes all come from one database
snapshot: nothing pruned, committed or relayed in between can make them disagree.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing, asynccontextmanager
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from psycopg import AsyncConnection, IsolationLevel, sql
from psycopg_pool import AsyncConnectionPool

from cdc import ticks
from cdc.declarations import Stream
from cdc.filters import Filters
from cdc.log import change_from_row
from cdc.routing import StreamChange
from cdc.sql import fetch_one, query
from cdc.ticks import Position
from consumers.subscription import Subscription
from core.database import conninfo

SQL_DIR = Path(__file__).resolve().parent / "sql"
POOL_SIZE = 10  # database connections per daphne process for subscribes and repairs
POOL_TIMEOUT = 10.0  # seconds a subscribe waits for a connection before it is `unavailable`
# Seconds a repair waits: after an overload every overflowed consumer repairs at once, and
# waiting in line is cheaper than closing (the client's resume reads the same changes anew).
REPAIR_TIMEOUT = 60.0
APPLICATION_NAME = "livefeed consumers"  # in pg_stat_activity, for operators
REPLAY_LIMIT = 10_000  # changes a resume may replay; further behind gets a reset
PAGE = 500  # most rows read from the database at a time
FETCH_BYTES = 256 * 1024  # about the bytes of rows read at a time: fewer rows when they are large
EXPIRED, UNKNOWN, TOO_FAR_BEHIND = "expired", "unknown", "too_far_behind"
TRUNCATED = "truncated"  # a reset's reason: the table was truncated

_pools: dict[str, AsyncConnectionPool[AsyncConnection[Any]]] = {}


@cache
def _sql(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text()


async def _configure(conn: AsyncConnection[Any]) -> None:
    await conn.set_isolation_level(IsolationLevel.REPEATABLE_READ)
    await conn.set_read_only(True)


@asynccontextmanager
async def consistent(wait: float | None = None) -> AsyncIterator[AsyncConnection[Any]]:
    """A connection whose statements all see one snapshot (the transaction ends on exit);
    psycopg_pool.PoolTimeout when none is free within `wait` seconds (POOL_TIMEOUT)."""
    dsn = conninfo()
    pool = _pools.get(dsn)
    if pool is None:
        pool = _pools[dsn] = AsyncConnectionPool(
            dsn,
            kwargs={"application_name": APPLICATION_NAME},
            min_size=1,
            max_size=POOL_SIZE,
            open=False,
            configure=_configure,
            check=AsyncConnectionPool.check_connection,
            name="consumers",
        )
    await pool.open()
    async with pool.connection(wait or POOL_TIMEOUT) as conn:
        yield conn


async def close_pools() -> None:
    while _pools:
        await _pools.popitem()[1].close()


async def latest_rows(
    conn: AsyncConnection[Any], sub: Subscription, limit: int, row_id: int | None = None
) -> AsyncIterator[str]:
    """The latest `limit` rows the subscription matches (only row `row_id`, when given),
    newest first, as JSON text."""
    statement, params = latest_query(sub.declared, sub.filters, sub.viewer_id)
    params = {**params, "limit": limit, "id": row_id}
    async for row in _stream(conn, statement, params, lambda r: len(r[0])):
        yield row[0]


def latest_query(
    stream: Stream, wanted: Filters, viewer_id: int | None
) -> tuple[sql.Composed, dict[str, Any]]:
    """The snapshot query of `stream` (consumers/sql/latest_rows.sql), and its bound values
    but `limit` and `id`: identifiers from the declaration only."""
    access, access_params = _access(stream, viewer_id)
    filters, filter_params = wanted.where("t", "f")
    statement = sql.SQL(_sql("latest_rows")).format(
        table=sql.Identifier(*stream.table.split(".", 1)),
        access=access,
        filters=filters,
        order=sql.SQL(", ").join(
            sql.SQL("{} DESC" if o.startswith("-") else "{} ASC").format(sql.Identifier("t", o.lstrip("-")))
            for o in stream.order
        ),
    )
    params = {"table": stream.table, "hidden": list(stream.hidden), **access_params, **filter_params}
    return statement, params


def _access(stream: Stream, viewer_id: int | None) -> tuple[sql.Composable, dict[str, Any]]:
    """Which rows `viewer_id` may see, as SQL: those the rule makes public, and their own."""
    owner = stream.access.owner
    if owner is None:
        return sql.SQL("TRUE"), {}
    own = sql.SQL("{} = %(viewer_id)s::bigint").format(sql.Identifier("t", owner))
    if stream.access.public_when is None:
        return own, {"viewer_id": viewer_id}
    public, params = stream.public_when.where("t", "p")
    return sql.SQL("({} OR {})").format(public, own), {**params, "viewer_id": viewer_id}


async def _stream(
    conn: AsyncConnection[Any],
    query: str | sql.Composed,
    params: dict[str, Any],
    nbytes: Callable[[Any], int],
) -> AsyncGenerator[Any]:
    """The rows of `query` through a server-side cursor, fetched a few at a time: about
    FETCH_BYTES in memory at once, however large the rows (`nbytes` sizes one)."""
    async with conn.cursor(name="live_read") as cur:
        await cur.execute(query, params)
        count = 1
        while rows := await cur.fetchmany(count):
            for row in rows:
                yield row
            average = max(1, sum(map(nbytes, rows)) // len(rows))
            count = max(1, min(PAGE, FETCH_BYTES // average))


async def cannot_replay(conn: AsyncConnection[Any], start: Position, newest: int) -> str | None:
    """Why the log cannot replay from `start` (a reset reason), or None when it can."""
    oldest, _ = await ticks.tick_range(conn)
    if start.tick < oldest:
        return EXPIRED
    if start.tick > newest:
        return UNKNOWN
    row = await fetch_one(conn, _sql("pending_changes"), {"tick": start.tick, "max_tick": newest})
    return TOO_FAR_BEHIND if row[0] > REPLAY_LIMIT else None


async def replay(
    conn: AsyncConnection[Any], sub: Subscription, start: Position, up_to_tick: int
) -> AsyncIterator[StreamChange]:
    """Every change after `start` through tick `up_to_tick` as the subscriber sees it, in
    order, each admitted once by the subscription; read as it is consumed."""
    tables = [sub.declared.table]
    params = {"tick": start.tick, "event_id": start.event_id, "max_tick": up_to_tick, "tables": tables}
    rows = _stream(conn, query("tick_changes"), {**params, "limit": None}, _change_size)
    async with aclosing(rows):
        async for row in rows:
            seen = sub.view(StreamChange.of(change_from_row(row), tick=row[0]))
            if seen is not None and sub.admit(seen):
                yield seen


def _change_size(row: tuple[Any, ...]) -> int:
    """About the bytes of a change read from the log: its row images, as JSON."""
    return len(orjson.dumps(row[5])) + len(orjson.dumps(row[6]))
