"""The websocket endpoint `/ws/live/`: subscriptions to live streams of changes.

The contract is docs/protocol.md. Channels dispatches one message at a time per connection,
so while a subscribe reads its snapshot or replay, relayed changes wait in the channel
layer's queue and are filtered against what the read covered when their turn comes.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from cdc import ticks
from cdc.routing import StreamChange
from cdc.ticks import Position
from consumers import reads
from consumers.protocol import Ping, ProtocolError, Subscribe, Unsubscribe, decode, parse
from consumers.ratelimit import TokenBucket
from consumers.sessions import SessionBound
from consumers.subscription import Subscription
from core import metrics

log = logging.getLogger("consumers.live")

Connection = psycopg.AsyncConnection[Any]
# Close code "try again later": the client resumes. 1013 says the same, but daphne's
# websocket library sends only 1000 and 3000-4999 (it turned 1013 into 1011, an error).
CLOSE_TRY_AGAIN = 4013


class LiveConsumer(SessionBound, AsyncJsonWebsocketConsumer):  # SessionBound: issue 11, item 2
    max_subscriptions = 10  # one per stream, so two today
    rate = 20.0  # messages a second, on average (pings are free)
    burst = 40  # messages at once

    async def connect(self) -> None:
        user = self.scope.get("user")
        self.viewer_id: int | None = user.pk if user is not None and user.is_authenticated else None
        self.subscriptions: dict[str, Subscription] = {}
        self.joined: set[str] = set()
        self.bucket = TokenBucket(self.rate, self.burst)
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

    # Client messages

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **_: Any) -> None:
        try:
            request: Any = parse(decode(text_data, bytes_data))
        except ProtocolError as error:
            request = error
        try:
            if not isinstance(request, Ping) and not self.bucket.take():
                raise ProtocolError("rate_limited", f"at most {self.rate:g} messages a second: slow down")
            match request:
                case ProtocolError():
                    raise request
                case Ping():
                    await self.send_json({"type": "pong"})
                case Subscribe():
                    await self.subscribe(request)
                case Unsubscribe():
                    await self.unsubscribe(request.stream)
        except ProtocolError as error:
            await self.send_json(error.as_message())

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
                out = [{"type": "subscribed", "stream": stream, "position": str(position)}]
                if request.after is not None:
                    out += await self._catch_up(conn, sub, request.after, position, snapshot)
                elif request.snapshot is not None:
                    out.append(await self._snapshot(conn, sub, position, snapshot))
            sub.covered_through(position)
            self.subscriptions[stream] = sub
        except psycopg.Error as exc:
            log.warning("subscribe to %s failed: %s", stream, exc)
            raise ProtocolError("unavailable", "database unavailable: subscribe again later", stream) from exc
        finally:
            await self._leave_unused()
        await self._send_all(out)

    async def unsubscribe(self, stream: str) -> None:
        self.subscriptions.pop(stream, None)
        await self._leave_unused()
        await self.send_json({"type": "unsubscribed", "stream": stream})

    # Channel layer messages

    async def cdc_changes(self, event: dict[str, Any]) -> None:
        """A batch from the relay (cdc/relay.py), from any group this connection joined."""
        for message in event["changes"]:
            sub = self.subscriptions.get(message["stream"])
            if sub is None:
                continue
            change = StreamChange.from_message(message)
            if sub.accepts_live(change) and sub.admit(change):
                await self.send_json(self._change(sub, change))

    async def transport_gap(self, event: dict[str, Any]) -> None:
        """The channel layer may have dropped messages: re-read them from the change log."""
        log.info("transport gap (%s): repairing from the log", event.get("reason"))
        out: list[dict[str, Any]] = []
        try:
            async with reads.consistent(reads.REPAIR_TIMEOUT) as conn:
                position, snapshot = await ticks.current_position(conn)
                for sub in self.subscriptions.values():
                    out += await self._catch_up(conn, sub, sub.resume_point(), position, snapshot)
                    sub.covered_through(position)
        except psycopg.Error as exc:  # the pool's timeout too: psycopg_pool.PoolTimeout
            # Without the log there is no exact repair: the client reconnects and resumes.
            log.warning("repair after a transport gap failed: %s; closing the connection", exc)
            await self.close(CLOSE_TRY_AGAIN)
            return
        await self._send_all(out)

    # Reading, then sending: the database connection goes back to the pool before the first
    # message goes out, so a slow socket never holds it (many consumers repair at once after
    # an overload, through a pool of a few connections).

    async def _catch_up(
        self, conn: Connection, sub: Subscription, start: Position, position: Position, snapshot: str
    ) -> list[dict[str, Any]]:
        """Every change after `start` through `position`, or a reset and a fresh snapshot."""
        reason = await reads.cannot_replay(conn, start, position.tick)
        if reason is None:
            changes = reads.replay(conn, sub, start, position.tick)
            return [self._change(sub, change) async for change in changes]
        reset = {"type": "reset", "stream": sub.stream, "reason": reason}
        return [reset, await self._snapshot(conn, sub, position, snapshot)]

    async def _snapshot(
        self, conn: Connection, sub: Subscription, position: Position, snapshot: str
    ) -> dict[str, Any]:
        rows = await reads.latest_rows(conn, sub, sub.snapshot_size)
        sub.snapshot = snapshot
        return {"type": "snapshot", "stream": sub.stream, "rows": rows, "position": str(position)}

    async def _send_all(self, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            await self.send_json(message)

    async def send_json(self, content: dict[str, Any], close: bool = False) -> None:
        metrics.WS_MESSAGES_SENT.labels(content["type"]).inc()
        if content["type"] == "error":
            metrics.WS_ERRORS.labels(content["code"]).inc()
        await super().send_json(content, close)

    @staticmethod
    def _change(sub: Subscription, change: StreamChange) -> dict[str, Any]:
        message = {
            "type": "change",
            "stream": change.stream,
            "op": change.op,
            "id": change.id,
            "position": str(sub.position_of(change)),
            "row": change.row,
        }
        if change.op != "insert":
            message["old"] = change.old
        return message

    async def _join(self, groups: frozenset[str]) -> None:
        for group in sorted(groups - self.joined):
            await self.channel_layer.group_add(group, self.channel_name)
            self.joined.add(group)

    async def _leave_unused(self) -> None:
        wanted = set().union(*(sub.groups for sub in self.subscriptions.values()))
        for group in sorted(self.joined - wanted):
            await self.channel_layer.group_discard(group, self.channel_name)
            self.joined.discard(group)
