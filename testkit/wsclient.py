"""A websocket client for tests, speaking docs/protocol.md: over Channels' in-process
WebsocketCommunicator, or over a real socket to a real web server (the `websockets` package)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from channels.testing import WebsocketCommunicator
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

TIMEOUT = 10.0  # seconds any one expected message may take
ACK_EVERY = 32  # messages between acknowledgements (docs/protocol.md, "ack")...
ACK_BYTES = 256 * 1024  # ...or characters received, whichever comes first


class JsonSocket:
    """JSON in, JSON out, each wait bounded, every ACK_EVERY messages acknowledged; the
    transport is a subclass's."""

    received = 0
    acked = 0
    unacked_text = 0
    acking = True  # False: a client that stops taking what it is sent

    async def send_frame(self, frame: str | bytes) -> None:
        raise NotImplementedError

    async def receive_text(self) -> str:
        raise NotImplementedError

    async def send(self, message: dict[str, Any]) -> None:
        await self.send_frame(json.dumps(message))

    async def receive(self) -> dict[str, Any]:
        text = await self.receive_text()
        self.received += 1
        self.unacked_text += len(text)
        if self.acking and (self.received - self.acked >= ACK_EVERY or self.unacked_text >= ACK_BYTES):
            await self.ack()
        message: dict[str, Any] = json.loads(text)
        return message

    async def ack(self) -> None:
        await self.send({"type": "ack", "received": self.received})
        self.acked, self.unacked_text = self.received, 0

    async def ask(self, message: dict[str, Any]) -> dict[str, Any]:
        await self.send(message)
        return await self.receive()

    async def subscribe(self, stream: str, **fields: Any) -> list[dict[str, Any]]:
        """Subscribe; the `subscribed` message, and the snapshot if one was asked for (its
        pages joined into one message)."""
        first = await self.ask({"type": "subscribe", "stream": stream, **fields})
        assert first["type"] == "subscribed", first
        return [first, await self.snapshot()] if "snapshot" in fields else [first]

    async def snapshot(self) -> dict[str, Any]:
        """A whole snapshot: its pages, received up to the `complete` one, as one message."""
        whole = await self.receive()
        assert whole["type"] == "snapshot", whole
        while not whole["complete"]:
            page = await self.receive()
            assert (page["type"], page["position"]) == ("snapshot", whole["position"]), page
            truncated = {**whole.get("truncated", {}), **page.get("truncated", {})}
            whole = {**whole, **page, "rows": whole["rows"] + page["rows"]}
            if truncated:
                whole["truncated"] = truncated
        return whole

    async def changes(self, count: int) -> list[dict[str, Any]]:
        out = [await self.receive() for _ in range(count)]
        assert all(m["type"] == "change" for m in out), [str(m)[:200] for m in out if m["type"] != "change"]
        return out

    async def answers_ping(self) -> bool:
        """Pong is the next message: no other reply was pending for this client."""
        return await self.ask({"type": "ping"}) == {"type": "pong"}


class CommunicatorSocket(JsonSocket):
    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.ws = communicator

    async def send_frame(self, frame: str | bytes) -> None:
        if isinstance(frame, bytes):
            await self.ws.send_to(bytes_data=frame)
        else:
            await self.ws.send_to(text_data=frame)

    async def receive_text(self) -> str:
        return str(await self.ws.receive_from(timeout=TIMEOUT))


class RealSocket(JsonSocket):
    def __init__(self, connection: ClientConnection) -> None:
        self.ws = connection

    async def send_frame(self, frame: str | bytes) -> None:
        await self.ws.send(frame)

    async def receive_text(self) -> str:
        frame = await asyncio.wait_for(self.ws.recv(), TIMEOUT)
        assert isinstance(frame, str)
        return frame

    async def close_code(self, within: float = TIMEOUT) -> int | None:
        """The code the server closes this socket with, waiting up to `within` seconds."""
        await asyncio.wait_for(self.ws.wait_closed(), within)
        return self.ws.close_code


@asynccontextmanager
async def communicator(app: Any, cookie: str | None = None) -> AsyncIterator[CommunicatorSocket]:
    headers = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    ws = WebsocketCommunicator(app, "/ws/live/", headers=headers)
    accepted, _ = await ws.connect(timeout=TIMEOUT)
    assert accepted
    try:
        yield CommunicatorSocket(ws)
    finally:
        await ws.disconnect(timeout=TIMEOUT)


SAME_SITE = "same site"  # real_socket's default origin: the server's own


@asynccontextmanager
async def real_socket(
    port: int,
    cookie: str | None = None,
    *,
    origin: str | None = SAME_SITE,
    headers: dict[str, str] | None = None,
) -> AsyncIterator[RealSocket]:
    """A websocket to the web server on 127.0.0.1:`port`, as a browser on that origin opens it (or on
    `origin`; None: no Origin header), with `headers` too."""
    async with connect(
        f"ws://127.0.0.1:{port}/ws/live/",
        origin=f"http://127.0.0.1:{port}" if origin == SAME_SITE else origin,  # type: ignore[arg-type]
        additional_headers={**({"Cookie": cookie} if cookie else {}), **(headers or {})},
        compression=None,  # frames go on the wire at their real size
        proxy=None,
        max_size=None,
        max_queue=None,  # a client that stops reading still takes the close handshake
        open_timeout=TIMEOUT,
    ) as ws:
        yield RealSocket(ws)


async def until_closed(client: RealSocket) -> list[dict[str, Any]]:
    """Every message the client receives until the server closes it."""
    out = []
    with contextlib.suppress(ConnectionClosed):
        while True:
            out.append(await client.receive())
    return out
