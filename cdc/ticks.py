"""Ticks: the batches the leader hands on, kept so that positions are exact.

A tick is stored *before* its changes are handed on and never changes afterwards; the
relay's position (`cdc.relay.relayed_tick`) moves only after they were. So a restart
resends exactly the ticks that may not have gone out, and a client's position
`"<tick>:<event id>"` names one point in the stream that a resume replays from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cdc.log import Batch, Cursor, change_from_row
from cdc.routing import StreamChange
from cdc.sql import fetch_one, fetch_one_as, query

_POSITION = re.compile(r"(\d{1,18}):(\d{1,18})", re.ASCII)  # "١٢:٣" is no position we hand out


class BadPosition(ValueError):
    """Not a position this server ever handed out."""


@dataclass(frozen=True, order=True, slots=True)
class Position:
    tick: int
    event_id: int

    def __str__(self) -> str:
        return f"{self.tick}:{self.event_id}"

    @classmethod
    def parse(cls, text: object) -> Position:
        match = _POSITION.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise BadPosition(f"a position looks like '123:4567', not {str(text)[:40]!r}")
        return cls(int(match[1]), int(match[2]))


ORIGIN = Position(0, 0)  # before every change


async def next_cursor(conn: AsyncConnection[Any]) -> Cursor:
    """Where reading continues after the newest stored tick."""
    last = await fetch_one_as(
        conn,
        query("last_tick"),
        None,
        dict_row,
        missing="cdc.tick is empty (0003_relay makes tick 0)",
    )
    if last["complete"]:
        return Cursor(since=last["snapshot"])
    return Cursor(since=last["since"], until=last["snapshot"], after_id=max(last["event_ids"]))


async def store_tick(conn: AsyncConnection[Any], tick: int, batch: Batch, groups: dict[str, int]) -> None:
    """Store tick `tick`, with the newest event id it sends each of its `groups`."""
    await conn.execute(
        query("insert_tick"),
        {
            "id": tick,
            "since": batch.cursor.since,
            "snapshot": batch.snapshot,
            "complete": batch.complete,
            "event_ids": [c.id for c in batch.changes],
            "groups": list(groups),
            "group_event_ids": list(groups.values()),
        },
    )


async def groups_position(conn: AsyncConnection[Any], groups: Iterable[str], upto: Position) -> Position:
    """The newest position at which any of `groups` was sent a change, up to `upto`: what a
    subscriber of those groups may be told, since it moves only with changes they carry."""
    params = {"groups": list(groups), "tick": upto.tick, "event_id": upto.event_id}
    async with conn.cursor() as cur:
        await cur.execute(query("groups_position"), params)
        row = await cur.fetchone()
    return ORIGIN if row is None else Position(int(row[0]), int(row[1]))


async def mark_relayed(conn: AsyncConnection[Any], tick: int) -> None:
    await conn.execute(query("mark_relayed"), {"tick": tick})


async def relayed_tick(conn: AsyncConnection[Any]) -> int:
    row = await fetch_one(conn, query("relayed_tick"), missing="cdc.relay has no row")
    return int(row[0])


async def tick_range(conn: AsyncConnection[Any]) -> tuple[int, int]:
    row = await fetch_one(conn, query("tick_range"))
    return int(row[0]), int(row[1])


async def current_position(conn: AsyncConnection[Any]) -> tuple[Position, str]:
    """The newest position, and the snapshot of the statement that read it."""
    row = await fetch_one(conn, query("current_position"))
    return Position(int(row[0]), int(row[1])), row[2]


async def changes_after(
    conn: AsyncConnection[Any],
    position: Position,
    *,
    up_to_tick: int,
    tables: Iterable[str] | None = None,
    limit: int = 10_000,
) -> list[StreamChange]:
    """The changes after `position`, through tick `up_to_tick`, in the order handed on;
    only those of `tables` (schema-qualified names) unless it is None."""
    params = {
        "tick": position.tick,
        "event_id": position.event_id,
        "max_tick": up_to_tick,
        "tables": None if tables is None else list(tables),
        "limit": limit,
    }
    async with conn.cursor() as cur:
        await cur.execute(query("tick_changes"), params)
        rows = await cur.fetchall()
    return [StreamChange.of(change_from_row(r), tick=r[0]) for r in rows]
