"""The websocket endpoint `/ws/live/`: subscriptions to live streams of changes.

The contract is docs/protocol.md. Relayed changes reach a connection through its process's
hub (consumers/hub.py), decoded and encoded once for all of them (cdc/wire.py): a connection
filters and writes. While it is sending something else (a subscribe's snapshot or replay, a
repair, or a client behind on its acknowledgements), what it is offered waits in its own
bounded queue and is filtered against what the read covered when its turn comes. The
client's own frames go through its Edge (consumers/edge.py): limited on arrival,
acknowledgements taken at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from cdc import declarations, ticks
from cdc.log import TRUNCATE
from cdc.ticks import Position
from cdc.wire import SnapshotPages, encode_change, size
from consumers import reads
from consumers.edge import BURST, CLOSE_TRY_AGAIN, RATE, Edge, edge
from consumers.hub import Batch, Offered, hub_for
from consumers.protocol import Ping, ProtocolError, Streams, Subscribe, Unsubscribe, decode, parse
from consumers.sessions import SessionBound
from consumers.subscription import Subscription
from core import metrics

log = logging.getLogger(__name__)
_sent = functools.cache(metrics.WS_MESSAGES_SENT.labels)  # a label's look-up costs more than its count

Connection = psycopg.AsyncConnection[Any]


class SlowReader(Exception):
    """The client did not take a snapshot or replay within LIVE_SEND_WAIT: it was closed."""


class LiveConsumer(SessionBound, AsyncJsonWebsocketConsumer):  # SessionBound: issue 11, item 2
    max_subscriptions = 10  # one per stream (cdc/declarations.py)
    rate = RATE  # client frames a second, on average, counted by the Edge on arrival
    burst = BURST

    @classmethod
    def as_asgi(cls, **initkwargs: Any) -> Any:
        """The consumer behind its Edge: there is no LiveConsumer without one."""
        return edge(super().as_asgi(**initkwargs), cls.rate, cls.burst)

    async def connect(self) -> None:
        user = self.scope.get("user")
        self.viewer_id: int | None = user.pk if user is not None and user.is_authenticated else None
        self.subscriptions: dict[str, Subscription] = {}
        self.joined: set[str] = set()
        self.edge: Edge = self.scope["edge"]
        self.hub = hub_for(self.channel_layer)
        self.sending = asyncio.Lock()  # one sender at a time: the writer, or a subscribe
        self.waiting: deque[Batch] = deque()  # offered, not yet sent
        self.waiting_bytes = 0
        self.gap = False  # offers were lost: the writer repairs from the log
        self.woken = asyncio.Event()
        self.writer = asyncio.create_task(self._write())
        await self.accept()
        await self.bind_session(self.viewer_id)  # closes with 4401 when the login ends
        metrics.WS_CONNECTIONS.inc()

    async def disconnect(self, code: int) -> None:
        metrics.WS_CONNECTIONS.dec()
        await self.unbind_session()
        for group in self.joined:
            await self.hub.leave(group, self)
        self.writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.writer

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch without its `aclose_old_connections()` before every message: a
        hop to daphne's one sync thread per relayed batch per connection, which made fan-out
        to 1,000 sockets CPU-bound (bench/e2e.py). This consumer reads through its own pool
        (consumers/reads.py) and never holds a Django database connection."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"no handler for message type {message['type']}")
        await handler(message)

    # Client messages (acknowledgements never get here: the Edge takes them)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **_: Any) -> None:
        try:
            match parse(decode(text_data, bytes_data)):
                case Ping():
                    await self.send_json({"type": "pong"})
                case Streams():
                    await self.send_json(declarations.streams_message())
                case Subscribe() as request:
                    await self.subscribe(request)
                case Unsubscribe() as request:
                    await self.unsubscribe(request.stream)
        except ProtocolError as error:
            await self.send_json(error.as_message())
        except SlowReader:
            pass  # closed: the disconnect follows

    async def subscribe(self, request: Subscribe) -> None:
        stream = request.stream
        if stream not in self.subscriptions and len(self.subscriptions) >= self.max_subscriptions:
            raise ProtocolError(
                "too_many_subscriptions", f"at most {self.max_subscriptions} subscriptions", stream
            )
        sub = Subscription(stream, request.filters, self.viewer_id, snapshot_size=request.snapshot or 0)
        sub.check_access()
        async with self.sending:
            await self._subscribe(sub, request)

    async def _subscribe(self, sub: Subscription, request: Subscribe) -> None:
        stream = sub.stream
        self.subscriptions.pop(stream, None)  # replaced: nothing more goes to the old one
        try:
            await self._join(sub.groups)  # before reading: a change relayed after the read arrives
            async with reads.consistent() as conn:
                position, snapshot = await ticks.current_position(conn)
                shown = await ticks.groups_position(conn, sub.groups, position)
                await self.send_json({"type": "subscribed", "stream": stream, "position": str(shown)})
                if request.after is not None:
                    await self._catch_up(conn, sub, sub.resume_from(request.after), position, snapshot)
                elif request.snapshot is not None:
                    await self._snapshot(conn, sub, position, snapshot, shown)
            sub.covered_through(position)
            self.subscriptions[stream] = sub
        except psycopg.Error as exc:
            log.warning("subscribe to %s failed: %s", stream, exc)
            raise ProtocolError("unavailable", "database unavailable: subscribe again later", stream) from exc
        finally:
            await self._leave_unused()

    async def unsubscribe(self, stream: str) -> None:
        async with self.sending:  # not while the drain repairs the subscriptions
            self.subscriptions.pop(stream, None)
            await self._leave_unused()
            await self.send_json({"type": "unsubscribed", "stream": stream})

    # Relayed changes, from the hub: queued at once, sent by the connection's writer

    def offer(self, batch: Batch) -> None:
        """A batch relayed to one of this connection's groups. It waits for the writer, at
        most LIVE_SEND_BUDGET_BYTES of batches; past that they are forgotten and re-read
        from the log instead (a client too slow for that is closed first: it is over budget)."""
        if self.waiting_bytes + batch.nbytes > settings.LIVE_SEND_BUDGET_BYTES:
            self._forget_waiting()
            self._lose("overflow")
        elif not self.gap:  # with a repair due, it covers this batch too
            self.waiting.append(batch)
            self.waiting_bytes += batch.nbytes
            self.woken.set()

    def lost(self) -> None:
        """The channel layer may have dropped changes: the writer re-reads them from the log."""
        self._lose("transport_gap")

    def _lose(self, reason: str) -> None:
        if not self.gap:
            metrics.WS_REPAIRS.labels(reason).inc()
        self.gap = True
        self.woken.set()

    async def _write(self) -> None:
        """Send what waits, at the pace the client acknowledges, and never during a
        subscribe's snapshot or replay (it filters by what they covered)."""
        try:
            while True:
                await self.woken.wait()
                self.woken.clear()
                async with self.sending:
                    await self._send_waiting()
        except SlowReader:
            pass  # closed: the disconnect follows

    async def _send_waiting(self) -> None:
        while self.gap or self.waiting:
            if self.gap:
                self.gap = False
                self._forget_waiting()  # relayed before the repair's read: it covers them
                await self._repair()
                continue
            batch = self.waiting.popleft()
            self.waiting_bytes -= batch.nbytes
            for offered in batch.changes:
                await self._live(offered)

    def _forget_waiting(self) -> None:
        self.waiting.clear()
        self.waiting_bytes = 0

    async def _live(self, offered: Offered) -> None:
        change = offered.change
        sub = self.subscriptions.get(change.stream)
        if sub is None or not (sub.accepts_live(change) and sub.admit(change)):
            return
        if change.op == TRUNCATE:
            await self._restart(sub, reads.TRUNCATED)
        else:
            await self._paced(offered.text, "change")

    async def _repair(self) -> None:
        async def catch_up(conn: Connection, position: Position, snapshot: str) -> None:
            for sub in self.subscriptions.values():
                await self._catch_up(conn, sub, sub.resume_point(), position, snapshot)
                sub.covered_through(position)

        await self._reread("repair after a transport gap", catch_up)

    async def _reread(self, what: str, work: Callable[[Connection, Position, str], Awaitable[None]]) -> None:
        """`work` on a consistent read of the log as of now (connection, position, snapshot).
        If the database fails it, the connection is closed with 4013: without the log there
        is no exact repair, so the client reconnects and resumes."""
        try:
            async with reads.consistent(reads.REPAIR_TIMEOUT) as conn:
                position, snapshot = await ticks.current_position(conn)
                await work(conn, position, snapshot)
        except psycopg.Error as exc:  # the pool's timeout too: psycopg_pool.PoolTimeout
            log.warning("%s failed: %s; closing the connection", what, exc)
            await self.edge.close(CLOSE_TRY_AGAIN, "repair_failed")

    # Snapshots and replays stream from the database as the client takes them: a page is read
    # only when the client has acknowledged enough of what went before (LIVE_SEND_WAIT at most,
    # while the read holds one pooled connection), so memory stays within the send budget.
    # Live changes are paced the same way; meanwhile later batches wait in `waiting`.

    async def _catch_up(
        self, conn: Connection, sub: Subscription, start: Position, position: Position, snapshot: str
    ) -> None:
        """Every change after `start` through `position`, or a reset and a fresh snapshot."""
        reason = await reads.cannot_replay(conn, start, position.tick)
        if reason is None:
            sent = 0
            async for change in reads.replay(conn, sub, start, position.tick):
                if change.op == TRUNCATE:
                    reason = reads.TRUNCATED  # the rows before it are gone: a fresh snapshot
                    break
                text = encode_change(change)
                sent += size(text)
                if sent > settings.LIVE_REPLAY_MAX_BYTES:
                    reason = reads.TOO_FAR_BEHIND
                    break
                await self._paced(text, "change")
            else:
                return
        await self._reset(conn, sub, reason, position, snapshot)

    async def _restart(self, sub: Subscription, reason: str) -> None:
        """A reset and a fresh snapshot as of now, in the middle of the live stream."""

        async def reset(conn: Connection, position: Position, snapshot: str) -> None:
            await self._reset(conn, sub, reason, position, snapshot)
            sub.covered_through(position)

        await self._reread(f"fresh snapshot after a {reason}", reset)

    async def _reset(
        self, conn: Connection, sub: Subscription, reason: str, position: Position, snapshot: str
    ) -> None:
        await self.send_json({"type": "reset", "stream": sub.stream, "reason": reason})
        await self._snapshot(conn, sub, position, snapshot)

    async def _snapshot(
        self,
        conn: Connection,
        sub: Subscription,
        position: Position,
        snapshot: str,
        shown: Position | None = None,
    ) -> None:
        """The snapshot as of `position`, labelled with `shown`, the newest position of the
        subscription's groups (read here unless the caller has it): the log's own would move
        with changes it may not see."""
        sub.snapshot = snapshot
        if shown is None:
            shown = await ticks.groups_position(conn, sub.groups, position)
        pages = SnapshotPages(sub.stream, str(shown))
        async for row in reads.latest_rows(conn, sub, sub.snapshot_size):
            if (page := pages.add(row)) is not None:
                await self._paced(page, "snapshot")
        await self._paced(pages.page(complete=True), "snapshot")

    async def _paced(self, text: str, kind: str) -> None:
        """Send once the client has acknowledged enough of what went before; a client that
        does not within LIVE_SEND_WAIT is closed (4013: resume later)."""
        if self.edge.flow.over_budget and not await self.edge.flow.room(settings.LIVE_SEND_WAIT):
            await self.edge.close(CLOSE_TRY_AGAIN, "slow_reader")
            raise SlowReader
        _sent(kind).inc()
        await self.edge.send({"type": "websocket.send", "text": text})  # self.send's end, for less per frame

    async def send_json(self, content: dict[str, Any], close: bool = False) -> None:
        metrics.WS_MESSAGES_SENT.labels(content["type"]).inc()
        if content["type"] == "error":
            metrics.WS_ERRORS.labels(content["code"]).inc()
        await super().send_json(content, close)

    async def _join(self, groups: frozenset[str]) -> None:
        for group in sorted(groups - self.joined):
            await self.hub.join(group, self)
            self.joined.add(group)

    async def _leave_unused(self) -> None:
        wanted = set().union(*(sub.groups for sub in self.subscriptions.values()))
        for group in sorted(self.joined - wanted):
            await self.hub.leave(group, self)
            self.joined.discard(group)
