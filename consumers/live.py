"""The websocket endpoint `/ws/live/`: subscriptions to live streams of changes.

The contract is docs/protocol.md. Channels dispatches one message at a time per connection,
so while a subscribe streams its snapshot or replay, relayed changes wait in the channel
layer's queue and are filtered against what the read covered when their turn comes. The
client's own frames meanwhile go through its Edge (consumers/edge.py): limited on arrival,
acknowledgements taken at once. Changes arrive encoded (cdc/wire.py): a connection filters
and writes.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from cdc import declarations, ticks
from cdc.log import TRUNCATE
from cdc.routing import ChangesMessage, StreamChange
from cdc.ticks import Position
from cdc.wire import SnapshotPages, encode_change, size
from consumers import reads
from consumers.edge import BURST, CLOSE_TRY_AGAIN, RATE, Edge, edge
from consumers.protocol import Ping, ProtocolError, Streams, Subscribe, Unsubscribe, decode, parse
from consumers.sessions import SessionBound
from consumers.subscription import Subscription
from core import metrics
from pglayer.messages import want_gaps

log = logging.getLogger(__name__)

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
        want_gaps(self.channel_layer, self.channel_name)  # transport_gap repairs from the log
        await self.accept()
        await self.bind_session(self.viewer_id)  # closes with 4401 when the login ends
        metrics.WS_CONNECTIONS.inc()

    async def disconnect(self, code: int) -> None:
        metrics.WS_CONNECTIONS.dec()
        await self.unbind_session()
        for group in self.joined:
            await self.channel_layer.group_discard(group, self.channel_name)

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
        self.subscriptions.pop(stream, None)
        await self._leave_unused()
        await self.send_json({"type": "unsubscribed", "stream": stream})

    # Channel layer messages

    async def cdc_changes(self, event: ChangesMessage) -> None:
        """A batch from the relay (cdc/relay.py), from any group this connection joined: each
        change already encoded, sent at the pace the client acknowledges."""
        for message in event["changes"]:
            sub = self.subscriptions.get(message["stream"])
            if sub is None:
                continue
            change = StreamChange.from_message(message)
            if sub.accepts_live(change) and sub.admit(change):
                if change.op == TRUNCATE:
                    await self._restart(sub, reads.TRUNCATED)
                else:
                    await self._paced(message["text"], "change")

    async def transport_gap(self, event: dict[str, Any]) -> None:
        """The channel layer may have dropped messages: re-read them from the change log."""
        log.info("transport gap (%s): repairing from the log", event.get("reason"))
        try:
            async with reads.consistent(reads.REPAIR_TIMEOUT) as conn:
                position, snapshot = await ticks.current_position(conn)
                for sub in self.subscriptions.values():
                    await self._catch_up(conn, sub, sub.resume_point(), position, snapshot)
                    sub.covered_through(position)
        except SlowReader:
            pass
        except psycopg.Error as exc:  # the pool's timeout too: psycopg_pool.PoolTimeout
            # Without the log there is no exact repair: the client reconnects and resumes.
            log.warning("repair after a transport gap failed: %s; closing the connection", exc)
            await self.edge.close(CLOSE_TRY_AGAIN, "repair_failed")

    # Snapshots and replays stream from the database as the client takes them: a page is read
    # only when the client has acknowledged enough of what went before (LIVE_SEND_WAIT at most,
    # while the read holds one pooled connection), so memory stays within the send budget.
    # Live changes are paced the same way; meanwhile later batches wait in the channel
    # layer's bounded queue (past it: a transport gap, repaired from the log).

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
        try:
            async with reads.consistent(reads.REPAIR_TIMEOUT) as conn:
                position, snapshot = await ticks.current_position(conn)
                await self._reset(conn, sub, reason, position, snapshot)
            sub.covered_through(position)
        except psycopg.Error as exc:
            log.warning("fresh snapshot after a %s failed: %s; closing the connection", reason, exc)
            await self.edge.close(CLOSE_TRY_AGAIN, "repair_failed")

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
        metrics.WS_MESSAGES_SENT.labels(kind).inc()
        await self.send(text_data=text)

    async def send_json(self, content: dict[str, Any], close: bool = False) -> None:
        metrics.WS_MESSAGES_SENT.labels(content["type"]).inc()
        if content["type"] == "error":
            metrics.WS_ERRORS.labels(content["code"]).inc()
        await super().send_json(content, close)

    async def _join(self, groups: frozenset[str]) -> None:
        for group in sorted(groups - self.joined):
            await self.channel_layer.group_add(group, self.channel_name)
            self.joined.add(group)

    async def _leave_unused(self) -> None:
        wanted = set().union(*(sub.groups for sub in self.subscriptions.values()))
        for group in sorted(self.joined - wanted):
            await self.channel_layer.group_discard(group, self.channel_name)
            self.joined.discard(group)
