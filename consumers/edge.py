"""The edge of one websocket connection: frames are limited as they arrive, and what is sent
is counted until the client acknowledges it.

Channels hands a consumer one message at a time, so while LiveConsumer streams a snapshot
the client's frames would wait unread, acknowledgements included, and a flood would queue
without bound. `Edge` reads the client's frames itself as they arrive: acknowledgements are
taken at once, every other frame counts against the rate limit on arrival and waits in a
short queue for the consumer; over the limit a frame is answered `rate_limited` and dropped.

ASGI's `send` returns once the server has taken a frame, not once the socket has, and daphne
buffers without bound, so the budget is kept here: the client acknowledges how many messages
it has received (`{"type": "ack", "received": N}`), and `Flow` counts the bytes not yet
acknowledged. LiveConsumer sends no change, snapshot page or replayed change while they
exceed LIVE_SEND_BUDGET_BYTES, and closes with 4013 (resume later) a connection that stays
over it for LIVE_SEND_WAIT seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.conf import settings

from cdc.wire import dumps, size
from consumers.protocol import ProtocolError
from consumers.ratelimit import TokenBucket
from core import metrics

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]

CLOSE_TRY_AGAIN = 4013  # "resume later": the client reconnects and resumes from its position
CLOSE_FLOODING = 4008  # the client kept sending past the rate limit
RATE = 20.0  # frames a second on average, pings included (acknowledgements: see Edge._ack)
BURST = 40
WAITING = 8  # frames waiting for the consumer; one more is `rate_limited`
STRIKES = 100  # frames refused in a row before the connection is closed
ACK_MAX = 100  # characters: a longer frame is no acknowledgement
SERVER_SEND = "livefeed.server_send"  # the scope key of keep_server_send


class Flow:
    """Bytes sent on one connection, and how many of them the client has acknowledged."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.sent = 0  # messages sent
        self.acked = 0  # messages the client said it received
        self.unacked_bytes = 0
        self._sizes: deque[int] = deque()  # sizes of the unacknowledged messages, oldest first
        self._room = asyncio.Event()
        self._room.set()

    def sending(self, nbytes: int) -> None:
        self.sent += 1
        self._sizes.append(nbytes)
        self.unacked_bytes += nbytes
        if self.unacked_bytes > self.budget:
            self._room.clear()

    def ack(self, received: object) -> str | None:
        """Take an acknowledgement; what is wrong with it, or None."""
        if not isinstance(received, int) or isinstance(received, bool) or received < self.acked:
            return f"'received' must be an integer, at least {self.acked}"
        if received > self.sent:
            return f"'received' is {received}, but only {self.sent} messages were sent"
        while self.acked < received:
            self.unacked_bytes -= self._sizes.popleft()
            self.acked += 1
        if self.unacked_bytes <= self.budget:
            self._room.set()
        return None

    @property
    def over_budget(self) -> bool:
        return self.unacked_bytes > self.budget

    async def room(self, seconds: float) -> bool:
        """Wait until the unacknowledged bytes are within the budget; False after `seconds`."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._room.wait(), seconds)
        return not self.over_budget


class Edge:
    """One connection's edge; the consumer finds it in `scope["edge"]`."""

    def __init__(
        self, receive: Receive, send: Send, rate: float, burst: int, server_send: Send | None = None
    ) -> None:
        self._receive = receive
        self._send = send
        self._frame = server_send or send  # text frames: see `keep_server_send`
        self.flow = Flow(settings.LIVE_SEND_BUDGET_BYTES)
        self.rate = rate
        self.bucket = TokenBucket(rate, burst)
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.strikes = 0
        self.closed = False

    async def run(self, app: App, scope: MutableMapping[str, Any]) -> None:
        pump = asyncio.create_task(self._pump())
        try:
            await app({**scope, "edge": self}, self.inbox.get, self.send)
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump

    async def send(self, message: Message) -> None:
        """The consumer's ASGI send, counting text frames (LiveConsumer paces by the count)."""
        if self.closed:
            return  # the close is on its way; the consumer learns of it by its disconnect
        send = self._send
        if message["type"] == "websocket.close":
            self.closed = True
        elif message["type"] == "websocket.send" and (text := message.get("text")) is not None:
            self.flow.sending(size(text))
            send = self._frame
        await self._to_server(send, message)

    async def close(self, code: int, why: str) -> None:
        metrics.WS_CLOSED.labels(why).inc()
        self.closed = True
        await self._to_server(self._send, {"type": "websocket.close", "code": code})

    async def _to_server(self, send: Send, message: Message) -> None:
        try:
            await send(message)
        except OSError:  # the client has gone (uvicorn says so; daphne drops the frame)
            self.closed = True  # and the disconnect is on its way

    async def _pump(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] != "websocket.receive":
                self.inbox.put_nowait(message)  # connect and disconnect: never refused
                if message["type"] == "websocket.disconnect":
                    return
                continue
            await self._arrived(message)

    async def _arrived(self, message: Message) -> None:
        ack = _ack_of(message.get("text"))
        if ack is not None:
            await self._ack(ack)
        elif not self.bucket.take() or self.inbox.qsize() >= WAITING:
            await self._refuse()
        else:
            self.strikes = 0
            self.inbox.put_nowait(message)

    async def _ack(self, ack: dict[str, Any]) -> None:
        """Acknowledgements are outside the rate limit, since the server's sending sets their
        pace; so one that acknowledges nothing new counts as a refused frame."""
        received = ack.get("received")
        if set(ack) != {"type", "received"}:
            await self._error("bad_message", "an ack has exactly the fields 'type' and 'received'")
        elif received == self.flow.acked:
            await self._refuse()
        elif (problem := self.flow.ack(received)) is not None:
            await self._error("bad_message", problem)

    async def _refuse(self) -> None:
        self.strikes += 1
        if self.strikes > STRIKES:
            await self.close(CLOSE_FLOODING, "flooding")
        elif self.strikes == 1 or self.strikes % 10 == 0:  # not an answer to every frame of a flood
            await self._error("rate_limited", f"at most {self.rate:g} messages a second: slow down")

    async def _error(self, code: str, text: str) -> None:
        metrics.WS_ERRORS.labels(code).inc()
        await self.send({"type": "websocket.send", "text": dumps(ProtocolError(code, text).as_message())})


def _ack_of(text: str | None) -> dict[str, Any] | None:
    """The frame as an acknowledgement, or None if it is none (acks are short)."""
    if text is None or len(text) > ACK_MAX or "ack" not in text:
        return None
    try:
        message = json.loads(text)
    except ValueError:
        return None
    return message if isinstance(message, dict) and message.get("type") == "ack" else None


def edge(app: App, rate: float = RATE, burst: int = BURST) -> App:
    """ASGI middleware: gives each websocket connection of `app` its Edge."""

    async def middleware(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await app(scope, receive, send)
            return
        await Edge(receive, send, rate, burst, scope.get(SERVER_SEND)).run(app, scope)

    return middleware


def keep_server_send(app: Callable[..., Awaitable[Any]]) -> App:
    """ASGI middleware, outermost: keeps the server's own `send` in the scope, for the Edge to
    write data frames with. Between the two, Channels' session middleware looks the session
    up on every frame, though it saves one only with an HTTP response: at a thousand
    connections that look-up was a tenth of a delivery's cost (docs/benchmarks.md, fan-out)."""

    async def middleware(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        await app({**scope, SERVER_SEND: send}, receive, send)

    return middleware
