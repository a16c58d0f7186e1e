"""The relay: carries every committed change from the log to the channel layer.

Two loops, as in procrastinate's worker: the outer one (re)connects with backoff after any
failure; the inner one, once this process holds the leader's advisory lock, reads a batch,
stores it as a tick, hands it to the channel layer and only then records the new position.
A standby process runs the same code and waits for the lock.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg
from channels.layers import BaseChannelLayer, get_channel_layer
from django.conf import settings
from psycopg import AsyncConnection
from psycopg.types.json import set_json_loads

from cdc import metrics, retention, ticks
from cdc.backoff import Backoff, pause
from cdc.doorbell import LISTEN, Doorbell
from cdc.log import Batch, plan_reads_once, read_batch
from cdc.routing import ChangesMessage, RelayedChange, StreamChange, routes
from cdc.sql import query
from cdc.wire import encode_change

log = logging.getLogger(__name__)

LEADER_LOCK_KEY = 0x6364_635F_6C69_7374  # "cdc_list": one relay leader per database
CHANGES_PER_MESSAGE = 500  # a burst goes out in a few large messages, not one per change...
BYTES_PER_MESSAGE = 1024 * 1024  # ...of at most about a MiB of changes (one change may be more)
SUMMARY_EVERY = 10.0  # seconds between batch-summary log lines
HOUSEKEEPING_EVERY = 30.0  # seconds between retention runs
HEARTBEAT_EVERY = 1.0  # seconds between writes of this process's health row
DEAD_LISTENER_AFTER = 60.0  # seconds without a heartbeat before a listener row is removed
# Fault injection for tests (tests/system/test_crash_windows.py): CDC_FAULT=<step> freezes the
# process (SIGSTOP) the first time the leader reaches that step, for the test to kill -9.
FAULT_STEPS = ("after_store", "after_hand_on", "after_mark", "after_resend")


@dataclass
class RelayStats:
    relayed_total: int = 0
    last_tick: int | None = None
    last_read_at: float | None = None
    window: Counter[str] = field(default_factory=Counter)


class Relay:
    def __init__(
        self,
        conninfo: str,
        *,
        layer: BaseChannelLayer | None = None,
        name: str | None = None,
        poll_interval: float | None = None,
        batch_size: int | None = None,
        retention_seconds: int | None = None,
    ) -> None:
        self.conninfo = conninfo
        self.layer = layer or get_channel_layer()
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.poll_interval = poll_interval or settings.CDC_POLL_INTERVAL
        self.batch_size = batch_size or settings.CDC_BATCH_SIZE
        self.retention_seconds = retention_seconds or settings.CDC_RETENTION_SECONDS
        self.stats = RelayStats()
        self.is_leader = False
        self.role_logged: str | None = None
        self._stopping = asyncio.Event()
        self._last_heartbeat = 0.0
        self._last_summary = 0.0
        self._fault = os.environ.get("CDC_FAULT") or None
        if self._fault not in (None, *FAULT_STEPS):
            raise ValueError(f"CDC_FAULT must be one of {FAULT_STEPS}, not {self._fault!r}")
        self._doorbell: Doorbell | None = None  # the leader's, for the session (cdc/doorbell.py)
        # Tests hold the leader with it after a read, before it waits (tests/integration/test_doorbell.py).
        self.before_wait: Callable[[], Awaitable[None]] | None = None

    def stop(self) -> None:
        """Finish the batch in hand, store the position, and return from `run`."""
        self._stopping.set()

    async def run(self) -> None:
        log.info("cdc_listen starting", extra={"listener": self.name})
        backoff = Backoff()
        while not self._stopping.is_set():
            try:
                async with await AsyncConnection.connect(
                    self.conninfo, autocommit=True, application_name="cdc_listen"
                ) as conn:
                    set_json_loads(orjson.loads, conn)  # rows are most of the relay's work
                    await self._session(conn, backoff)
            except (psycopg.Error, OSError) as exc:
                await self._recover(backoff, f"database connection lost: {exc}")
            except Exception:  # a failing channel layer, say: never needs a restart by hand
                log.exception("relay failed")
                await self._recover(backoff, "relay failed")
        log.info("cdc_listen stopped", extra={"listener": self.name})

    async def _recover(self, backoff: Backoff, why: str) -> None:
        self._lose_leadership(why)
        metrics.RECONNECTS.inc()
        delay = backoff.next_delay()
        log.warning("%s; reconnecting in %.1fs", why, delay)
        await pause(self._stopping, delay)

    async def _session(self, conn: AsyncConnection[Any], backoff: Backoff) -> None:
        await conn.execute(LISTEN)
        await plan_reads_once(conn)
        try:
            while not self._stopping.is_set():
                if await self._try_lead(conn):
                    backoff.reset()
                    await self._lead(conn)
                else:
                    backoff.reset()
                    await self._heartbeat(conn)
                    await pause(self._stopping, self.poll_interval)
        finally:
            if self._doorbell is not None:
                gate, self._doorbell = self._doorbell, None
                await gate.close()
            if self._stopping.is_set() and not conn.closed:
                await conn.execute(query("forget_listener"), {"name": self.name})

    async def _try_lead(self, conn: AsyncConnection[Any]) -> bool:
        async with conn.cursor() as cur:
            await cur.execute(query("try_lead"), {"key": LEADER_LOCK_KEY})
            row = await cur.fetchone()
        leader = bool(row and row[0])
        if leader and not self.is_leader:
            log.info("leader gained", extra={"listener": self.name})
        elif not leader and self.role_logged != "standby":
            log.info("standing by: another cdc_listen is the leader", extra={"listener": self.name})
        self.is_leader = leader
        metrics.LEADER.set(leader)
        self.role_logged = "leader" if leader else "standby"
        return leader

    def _lose_leadership(self, why: str) -> None:
        if self.is_leader:
            self.is_leader = False
            metrics.LEADER.set(0)
            self.role_logged = None
            log.warning("leader lost: %s", why, extra={"listener": self.name})

    async def _lead(self, conn: AsyncConnection[Any]) -> None:
        await self._resend_unrelayed(conn)
        cursor = await ticks.next_cursor(conn)
        last_tick = (await ticks.tick_range(conn))[1]
        next_housekeeping = 0.0
        while not self._stopping.is_set():
            batch = await read_batch(conn, cursor, limit=self.batch_size)
            self.stats.last_read_at = time.time()
            metrics.batch_read(batch)
            if batch.changes:
                last_tick += 1
                by_group = self._route(StreamChange.of(c, last_tick) for c in batch.changes)
                await ticks.store_tick(conn, last_tick, batch, _newest_by_group(by_group))
                self._crash_point("after_store", last_tick)
                await self._send(by_group)
                self._crash_point("after_hand_on", last_tick)
                await ticks.mark_relayed(conn, last_tick)
                self._crash_point("after_mark", last_tick)
                self._count(last_tick, batch)
            cursor = batch.next_cursor()
            await self._heartbeat(conn)  # at most every HEARTBEAT_EVERY, and while catching up too
            if time.monotonic() >= next_housekeeping:
                await self._housekeeping(conn)
                next_housekeeping = time.monotonic() + HOUSEKEEPING_EVERY
            if batch.complete and batch.cursor.until is None:
                await self._wait_for_doorbell(conn, found=bool(batch.changes))

    async def _resend_unrelayed(self, conn: AsyncConnection[Any]) -> None:
        """Ticks stored by a leader that died before recording them as relayed."""
        relayed = await ticks.relayed_tick(conn)
        newest = (await ticks.tick_range(conn))[1]
        for tick in range(relayed + 1, newest + 1):
            changes = await ticks.changes_after(
                conn, ticks.Position(tick, 0), up_to_tick=tick, tables=None, limit=2**31
            )
            await self._send(self._route(changes))
            self._crash_point("after_resend", tick)
            await ticks.mark_relayed(conn, tick)
            log.info("resent tick %d (%d changes) stored by a previous leader", tick, len(changes))

    def _crash_point(self, step: str, tick: int) -> None:
        """Stop dead here when CDC_FAULT names this step: a crash at an exact moment."""
        if step == self._fault:
            self._fault = None
            log.warning("CDC_FAULT: stopped dead %s of tick %d", step, tick)
            os.kill(os.getpid(), signal.SIGSTOP)

    @staticmethod
    def _route(changes: Iterable[StreamChange]) -> dict[str, list[RelayedChange]]:
        by_group: dict[str, list[RelayedChange]] = {}
        for change in changes:
            messages: dict[int, RelayedChange] = {}  # one message per view, shared by its groups
            for group, view in routes(change):
                if (message := messages.get(id(view))) is None:
                    message = messages[id(view)] = view.as_message(encode_change(view))
                by_group.setdefault(group, []).append(message)
        return by_group

    async def _send(self, by_group: dict[str, list[RelayedChange]]) -> None:
        for group, changes in by_group.items():
            for chunk in _chunks(changes):
                message: ChangesMessage = {"type": "cdc.changes", "group": group, "changes": chunk}
                await self.layer.group_send(group, message)

    async def _wait_for_doorbell(self, conn: AsyncConnection[Any], found: bool) -> None:
        """Until the next read is due (cdc/doorbell.py): at once while reads find changes,
        else on a ring; the poll timer bounds every wait, so a lost ring only delays."""
        if self.before_wait is not None:
            await self.before_wait()
        if self._doorbell is None:
            self._doorbell = await Doorbell.open(self.conninfo, conn, self.poll_interval, self._stopping)
        await self._doorbell.wait(found)

    async def _heartbeat(self, conn: AsyncConnection[Any]) -> None:
        if time.monotonic() - self._last_heartbeat < HEARTBEAT_EVERY:
            return
        self._last_heartbeat = time.monotonic()
        await conn.execute(
            query("heartbeat"),
            {
                "name": self.name,
                "role": "leader" if self.is_leader else "standby",
                "last_read_at": _timestamp(self.stats.last_read_at),
                "last_tick": self.stats.last_tick,
                "relayed_total": self.stats.relayed_total,
            },
        )
        self._maybe_log_summary()

    async def _housekeeping(self, conn: AsyncConnection[Any]) -> None:
        await conn.execute(query("forget_dead_listeners"), {"seconds": DEAD_LISTENER_AFTER})
        pruned = await retention.prune(conn, self.retention_seconds, stopping=self._stopping.is_set)
        if any(pruned.values()):
            log.info("retention pruned %(ticks)d ticks and %(events)d changes", pruned)

    def _count(self, tick: int, batch: Batch) -> None:
        self.stats.relayed_total += len(batch.changes)
        self.stats.last_tick = tick
        self.stats.window["changes"] += len(batch.changes)
        self.stats.window["ticks"] += 1
        metrics.tick_relayed(batch)

    def _maybe_log_summary(self) -> None:
        now = time.monotonic()
        if now - self._last_summary < SUMMARY_EVERY or not self.stats.window:
            return
        log.info(
            "relayed %d changes in %d ticks; last tick %s",
            self.stats.window["changes"],
            self.stats.window["ticks"],
            self.stats.last_tick,
        )
        self.stats.window.clear()
        self._last_summary = now


def _chunks(changes: list[RelayedChange]) -> Iterator[list[RelayedChange]]:
    """`changes` in messages of at most CHANGES_PER_MESSAGE changes and about BYTES_PER_MESSAGE
    of wire text: a receiving process holds a message whole, so none may be huge."""
    chunk: list[RelayedChange] = []
    size = 0
    for change in changes:
        if chunk and (len(chunk) == CHANGES_PER_MESSAGE or size + len(change["text"]) > BYTES_PER_MESSAGE):
            yield chunk
            chunk, size = [], 0
        chunk.append(change)
        size += len(change["text"])
    if chunk:
        yield chunk


def _newest_by_group(by_group: dict[str, list[RelayedChange]]) -> dict[str, int]:
    """The newest event id each group is sent (what cdc.group_position keeps)."""
    return {group: max(m["id"] for m in messages) for group, messages in by_group.items()}


def _timestamp(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)
