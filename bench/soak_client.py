"""A websocket client for the soak (bench/soak.py) that behaves as docs/protocol.md asks a
client to: it reconnects after any drop, resumes each subscription from the last position
it received, and records every change it is given, so the soak can compare the record
with the change log afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException
from websockets.typing import Origin

from bench.common import pause
from bench.soak_writers import MARKER
from cdc.backoff import Backoff

RESUBSCRIBE_AFTER = 0.2  # seconds before asking again when the database was unavailable
TRANSIENT = frozenset({"unavailable"})  # error codes a client is expected to retry
ACK_EVERY = 32  # messages between acknowledgements (docs/protocol.md, "ack")


@dataclass
class Subscription:
    stream: str
    filters: dict[str, Any]
    start: str | None = None  # the position of the first `subscribed`: the record starts there
    resume: str | None = None  # the last position received: where a reconnect resumes
    ids: list[int] = field(default_factory=list)  # event ids received, in order
    markers: set[str] = field(default_factory=set)  # names of the soak's markers received

    def request(self) -> dict[str, Any]:
        return {"type": "subscribe", "stream": self.stream, "filters": self.filters, "after": self.resume}


@dataclass
class Client:
    url: str
    origin: str
    subscriptions: dict[str, Subscription]
    connections: int = 0
    retried: int = 0  # subscribes answered `unavailable`, then sent again
    anomalies: list[str] = field(default_factory=list)  # anything a correct server never sends
    _received: asyncio.Condition = field(default_factory=asyncio.Condition)
    _retries: set[asyncio.Task[None]] = field(default_factory=set)

    async def run(self, stopping: asyncio.Event) -> None:
        """Stay connected until `stopping` is set, however often the server goes away."""
        backoff = Backoff(start=0.1, cap=2.0)
        while not stopping.is_set():
            try:
                async with connect(
                    self.url, origin=Origin(self.origin), proxy=None, max_size=None, open_timeout=5
                ) as ws:
                    self.connections += 1
                    backoff.reset()
                    await self._session(ws, stopping)
            except (OSError, TimeoutError, WebSocketException):
                pass  # the web server restarting, or the connection closed under us: resume below
            await pause(stopping, backoff.next_delay())

    async def _session(self, ws: ClientConnection, stopping: asyncio.Event) -> None:
        for sub in self.subscriptions.values():
            await ws.send(orjson.dumps(sub.request()).decode())
        closing = asyncio.create_task(stopping.wait())
        received = 0
        try:
            while not stopping.is_set():
                frame = asyncio.create_task(ws.recv())
                await asyncio.wait({frame, closing}, return_when=asyncio.FIRST_COMPLETED)
                if not frame.done():
                    frame.cancel()
                    return
                received += 1
                if received % ACK_EVERY == 0:  # the server paces what it sends by these
                    await ws.send(orjson.dumps({"type": "ack", "received": received}).decode())
                await self._handle(ws, orjson.loads(frame.result()))
        finally:
            closing.cancel()

    async def _handle(self, ws: ClientConnection, message: dict[str, Any]) -> None:
        kind, sub = message["type"], self.subscriptions.get(message.get("stream", ""))
        if kind == "subscribed" and sub is not None:
            sub.start = sub.start or message["position"]
            sub.resume = sub.resume or message["position"]
        elif kind == "change" and sub is not None:
            await self._record(sub, message)
        elif kind == "error" and message.get("code") in TRANSIENT and sub is not None:
            self.retried += 1
            retry = asyncio.create_task(_resubscribe(ws, sub))
            self._retries.add(retry)
            retry.add_done_callback(self._retries.discard)
        else:
            self.anomalies.append(orjson.dumps(message).decode()[:300])

    async def _record(self, sub: Subscription, change: dict[str, Any]) -> None:
        sub.ids.append(change["id"])
        sub.resume = change["position"]
        row = change["row"] or {}
        marker = row.get("title") or row.get("body")
        async with self._received:
            if isinstance(marker, str) and marker.startswith(MARKER):
                sub.markers.add(marker.removeprefix(MARKER))
            self._received.notify_all()

    async def wait_for(self, stream: str, name: str) -> None:
        """Until this client has received the marker `name` (the caller bounds the wait)."""
        sub = self.subscriptions[stream]
        async with self._received:
            await self._received.wait_for(lambda: name in sub.markers)


async def _resubscribe(ws: ClientConnection, sub: Subscription) -> None:
    """Ask again a little later; a closed connection is fine: the reconnect subscribes anew."""
    await asyncio.sleep(RESUBSCRIBE_AFTER)  # pacing the retry, not waiting for an event
    with contextlib.suppress(WebSocketException):
        await ws.send(orjson.dumps(sub.request()).decode())


def clients_for(count: int, url: str, origin: str, specs: list[dict[str, dict[str, Any]]]) -> list[Client]:
    """`count` clients, the i-th subscribing as `specs[i % len(specs)]` ({stream: filters})."""
    return [
        Client(url, origin, {stream: Subscription(stream, filters) for stream, filters in spec.items()})
        for spec in (specs[i % len(specs)] for i in range(count))
    ]
