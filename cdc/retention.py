"""Retention: drop relayed changes and ticks older than the setting, in small batches.

Ticks go first (never the relay's own position or later); then the events that belonged
only to dropped ticks. So a kept tick never loses an event, and a client position older
than the oldest kept tick is recognisably expired (it gets a `reset`, not a silent gap).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from psycopg import AsyncConnection

from cdc.sql import query

BATCH = 1000


async def prune(
    conn: AsyncConnection[Any], retention_seconds: float, *, stopping: Callable[[], bool] = lambda: False
) -> dict[str, int]:
    """Delete what retention allows; returns how many ticks and events went."""
    pruned = {"ticks": 0, "events": 0}
    for kind in pruned:
        while not stopping():
            cur = await conn.execute(query(f"prune_{kind}"), {"retention": retention_seconds, "limit": BATCH})
            pruned[kind] += cur.rowcount
            if cur.rowcount < BATCH:
                break
    return pruned
