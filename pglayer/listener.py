"""The listening side: one LISTEN connection per process, and the loop that hands each
notification to the process's channels (pglayer.local).

The connection belongs to the process, not to an event loop: when the loop running the
listener closes (each async_to_sync call in sync code runs in a loop of its own), the loop's
task stops but the connection stays open and LISTENing, so notifications sent meanwhile wait
in it for the next loop's listener. It closes when the process holds nothing to listen for.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Coroutine
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.pq import TransactionStatus

from pglayer import wire
from pglayer.local import Inbox, Local
from pglayer.messages import malformed
from pglayer.sending import Connection, Sender

log = logging.getLogger("pglayer")

LISTEN_APP = "channel-layer listen"  # application_name, for pg_stat_activity and operators
RESYNC_EVERY = 5.0  # seconds: the longest a lost wake-up can delay a LISTEN
BACKOFF_START, BACKOFF_CAP = 0.5, 30.0  # seconds between reconnections: doubling, ±10 %
# A network cut is noticed by TCP keepalives within about 25 s.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}


class Listener:
    """LISTENs to the process's own address (`own`, for sends to its channels) and to each
    address with a member or receiver here (Local.addresses); `sender` is the running loop's."""

    def __init__(
        self, conninfo: Callable[[], str], own: str, local: Local, sender: Callable[[], Sender]
    ) -> None:
        self._conninfo = conninfo
        self.own = own
        self.local = local
        self._sender = sender
        self.conn: Connection | None = None
        self.task: asyncio.Task[None] | None = None
        self.listening: set[str] = set()  # LISTENs in force on the connection
        self.waiters: dict[str, asyncio.Future[None]] = {}  # address -> its LISTEN in force
        self.dirty = True  # the wanted LISTENs may differ from those in force
        self.serving = False  # waiting for notifications in the running loop
        self.connected_before = False
        self._wake_pending = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def listening_to(self, address: str) -> None:
        """Until a LISTEN for `address` is in force (or nobody here wants it any more)."""
        self.start()
        if address in self.listening:
            return
        waiter = self.waiters.setdefault(address, asyncio.get_running_loop().create_future())
        await asyncio.shield(waiter)  # shared by every caller: one's cancellation is not all's

    def start(self) -> None:
        """Exactly one listener task, however many first calls arrive at once: the check and
        the start happen with no await between them."""
        if self.task is None or self.task.done():
            self._sender()  # makes the loop's state: the loop's closing then stops the task first
            self.task = asyncio.create_task(self._run())

    def want_sync(self) -> None:
        """The wanted LISTENs changed: the listener, waiting in notifies(), is woken to apply them."""
        self.dirty = True
        if self.serving and not self._wake_pending:
            self._wake_pending = True
            self._spawn(self._wake())

    async def _wake(self) -> None:
        try:
            await self._sender().execute("notify", {"address": self.own, "payload": wire.WAKE})
        except psycopg.Error as exc:
            log.warning("channel layer: wake-up failed (%s); the listener re-syncs soon", exc)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self, keep_connection: bool) -> None:
        """Stop the task (in the loop that runs it); keep the connection, LISTENing, if asked
        and if it is idle (not cut short mid-statement)."""
        loop = asyncio.get_running_loop()
        if self.task is not None and self.task.get_loop() is not loop and not self.task.done():
            return  # the listener runs in another event loop, which goes on
        tasks = [task for task in (self.task, *self._tasks) if task and task.get_loop() is loop]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.task, self.serving, self._wake_pending = None, False, False
        for waiter in self.waiters.values():
            waiter.cancel()
        self.waiters.clear()
        conn = self.conn
        idle = conn is not None and conn.info.transaction_status == TransactionStatus.IDLE
        if conn is not None and not (keep_connection and idle):
            await self._drop(conn)

    async def _drop(self, conn: Connection) -> None:
        self.conn, self.listening, self.serving = None, set(), False
        await conn.close()

    async def _run(self) -> None:
        """Connect (or go on with the connection an earlier loop left), LISTEN, deliver; after
        a failure, reconnect with backoff, LISTEN again, and tell the channels that asked."""
        delay = BACKOFF_START
        while True:
            try:
                fresh = self.conn is None
                conn = self.conn = self.conn or await self._connect()
                self.dirty = True
                await self._sync(conn)
                if fresh and self.connected_before:
                    self.local.tell("reconnected")
                self.connected_before = True
                delay = BACKOFF_START
                await self._serve(conn)
            except psycopg.Error as exc:  # the database went away: expected, so no traceback
                log.warning("channel layer: listener failed (%r); reconnecting in %.1fs", exc, delay)
            except Exception:  # a bug: never needs a restart by hand, but says where it is
                log.exception("channel layer: listener failed; reconnecting in %.1fs", delay)
            if self.conn is not None:
                await self._drop(self.conn)
            await asyncio.sleep(delay * random.uniform(0.9, 1.1))
            delay = min(delay * 2, BACKOFF_CAP)

    async def _connect(self) -> Connection:
        conninfo = make_conninfo(self._conninfo(), application_name=LISTEN_APP, **KEEPALIVES)
        return await psycopg.AsyncConnection.connect(conninfo, autocommit=True)

    async def _serve(self, conn: Connection) -> None:
        self.serving = True
        try:
            while True:
                # stop_after=1 ends the generator after a whole batch, so none is cut short.
                async for note in conn.notifies(timeout=RESYNC_EVERY, stop_after=1):
                    if note.payload != wire.WAKE:
                        await self._dispatch(note.channel, note.payload)
                await self._sync(conn)
        finally:
            self.serving = False

    async def _sync(self, conn: Connection) -> None:
        """LISTEN to what is wanted, UNLISTEN the rest, in one round trip; wanted changes made
        meanwhile are applied in the next one."""
        while self.dirty:
            self.dirty = self._wake_pending = False
            wanted = self._wanted()
            listen, unlisten = wanted - self.listening, self.listening - wanted
            self.listening -= unlisten
            statements = [sql.SQL("LISTEN {}").format(sql.Identifier(a)) for a in listen]
            statements += [sql.SQL("UNLISTEN {}").format(sql.Identifier(a)) for a in unlisten]
            if statements:
                await conn.execute(sql.SQL("; ").join(statements))
            self.listening |= listen
        wanted = self._wanted()
        for address in [a for a in self.waiters if a in self.listening or a not in wanted]:
            self.waiters.pop(address).set_result(None)

    def _wanted(self) -> set[str]:
        return self.local.addresses() | {self.own}

    async def _dispatch(self, address: str, payload: str) -> None:
        """Hand one notification to its local channels, in arrival order (a side-table read is
        awaited here, so a later small message cannot overtake it)."""
        bell = self.local.bells.get(address)
        if bell is not None:  # a normal channel: its receivers here take from the queue
            bell.ring()
            return
        now = time.time()
        self.local.expire_memberships(now)
        try:
            note = wire.parse(payload)
        except wire.Malformed:
            malformed(f"notification {payload[:40]!r} on {address}")
            return
        inboxes = self._recipients(address, note.target)
        if not inboxes:
            return
        data = None
        if note.expires_at > now:
            data = note.data
            if data is None:
                data = await self._sender().read_stored(note.stored_id, bool(note.target))
        for inbox in inboxes:
            if data is None:  # expired on the way, or its row already deleted as expired
                inbox.mark_gap("expired")
            else:
                inbox.put_nowait(data, note.expires_at)

    def _recipients(self, address: str, target: str) -> list[Inbox]:
        if address == self.own:
            inbox = self.local.inboxes.get(target)
            return [inbox] if inbox else []
        return self.local.recipients(address)
