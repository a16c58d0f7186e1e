"""The sending side: a few connections per event loop (connections belong to the loop that
opened them), and the statements of queries.sql."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from pglayer import wire
from pglayer.sql import query

SEND_APP = "channel-layer send"  # application_name, for pg_stat_activity and operators
SWEEP_EVERY = 10.0  # seconds (at most) between deletions of expired rows, per sender

Connection = psycopg.AsyncConnection[tuple[Any, ...]]


class Connections:
    """Up to `size` autocommit connections, each opened when first needed and kept. Not
    psycopg_pool: asyncio.run and async_to_sync cancel its worker tasks before the loop
    closes, and the pool then cannot close; nothing here needs them."""

    def __init__(self, conninfo: Callable[[], str], size: int) -> None:
        self._conninfo = conninfo
        self._idle: list[Connection] = []
        self._slots = asyncio.Semaphore(size)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        async with self._slots:
            conn = self._idle.pop() if self._idle else await self._connect()
            try:
                yield conn
            finally:
                if conn.info.transaction_status == TransactionStatus.IDLE:
                    self._idle.append(conn)
                else:  # broken, or left mid-statement by a cancellation: the next use opens another
                    await conn.close()

    async def _connect(self) -> Connection:
        return await psycopg.AsyncConnection.connect(
            self._conninfo(), autocommit=True, application_name=SEND_APP
        )

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()


class Sender:
    """One event loop's statements: NOTIFYs, the normal channels' queue, stored messages."""

    def __init__(self, conninfo: Callable[[], str], pool_size: int, expiry: float, prefix: str) -> None:
        self.connections = Connections(conninfo, pool_size)
        self._prefix = prefix
        self._sweep_every = min(SWEEP_EVERY, expiry)
        self._next_sweep = 0.0

    async def execute(self, name: str, params: dict[str, Any] | None = None) -> tuple[Any, ...] | None:
        """One statement of queries.sql; its first row, if any."""
        async with self.connections.connection() as conn:
            cursor = await conn.execute(query(name), params)
            return await cursor.fetchone() if cursor.description else None

    async def notify(self, address: str, target: str, data: bytes, expires_at: float) -> None:
        """One NOTIFY carrying the message, or naming its row when it is too big to carry."""
        payload = wire.inline(expires_at, target, data)
        if payload is not None:
            await self.execute("notify", {"address": address, "payload": payload})
            return
        head = wire.stored_head(expires_at, target)
        params = {"address": address, "head": head, "body": data, "expires_at": expires_at}
        await self.execute("notify_stored", params)
        await self._sweep()

    async def enqueue(
        self, address: str, channel: str, data: bytes, expires_at: float, capacity: int
    ) -> bool:
        """Queue a message of a normal channel and ring its receivers; False when it is full."""
        params = {
            "address": address,
            "prefix": self._prefix,
            "channel": channel,
            "body": data,
            "expires_at": expires_at,
            "capacity": capacity,
        }
        queued = await self.execute("enqueue", params) is not None
        await self._sweep()
        return queued

    async def take(self, channel: str) -> bytes | None:
        row = await self.execute("take", {"prefix": self._prefix, "channel": channel})
        return None if row is None else bytes(row[0])

    async def read_stored(self, message_id: int, single_reader: bool) -> bytes | None:
        row = await self.execute("take_stored" if single_reader else "read_stored", {"id": message_id})
        return None if row is None else bytes(row[0])

    async def _sweep(self) -> None:
        """Expired rows go, at most every SWEEP_EVERY (or `expiry`, if shorter) per sender, so a
        row outlives its expiry by that at most."""
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + self._sweep_every
            await self.execute("sweep")

    async def forget_queued(self) -> None:
        await self.execute("flush", {"prefix": self._prefix})

    async def close(self) -> None:
        await self.connections.close()
