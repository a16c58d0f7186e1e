"""PostgresChannelLayer: Channels' layer contract over Postgres, in the project's database.

Process channels (`specific.<process>!<random>`, from new_channel()) and groups travel by
LISTEN/NOTIFY and are queued in memory in the receiving process (pglayer.local); a group
message is one NOTIFY, fanned out in each process. Normal channels ("thumbnails") are a
table: a message waits there until one receiver takes it or it expires. docs/channel-layer.md
says how and why.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable

import psycopg
from channels.exceptions import ChannelFull
from channels.layers import BaseChannelLayer

from pglayer import messages, wire
from pglayer.listener import RESYNC_EVERY, Listener
from pglayer.local import Inbox, Inboxes, Local
from pglayer.loops import PerLoop
from pglayer.messages import Message
from pglayer.sending import Sender

log = logging.getLogger("pglayer")


class _LoopState:
    """What belongs to one event loop: its sending connections, and the listener's task if
    it runs there."""

    def __init__(self, layer: PostgresChannelLayer) -> None:
        self.layer = layer
        self.sender = Sender(layer.conninfo, layer.pool_size, layer.expiry, layer.prefix)

    async def flush(self) -> None:
        local = self.layer.local
        await self.layer.listener.stop(keep_connection=bool(local.inboxes or local.addresses()))
        await self.sender.close()


class PostgresChannelLayer:
    """CONFIG: `conninfo` (a libpq conninfo or URL, or a function returning one when first
    needed), `prefix`, `expiry`, `group_expiry`, `capacity`, `channel_capacity` (as Channels'
    layers take them) and `pool_size` (sending connections per event loop)."""

    extensions = ["groups", "flush"]

    def __init__(
        self,
        conninfo: str | Callable[[], str],
        prefix: str = "asgi",
        expiry: float = 60,
        group_expiry: float = 86400,
        capacity: int = 100,
        channel_capacity: dict[str, int] | None = None,
        pool_size: int = 4,
    ) -> None:
        self._conninfo = conninfo
        self.prefix = prefix
        self.expiry = expiry
        self.pool_size = pool_size
        self._names = BaseChannelLayer()  # Channels' own rules for names
        self.inboxes = Inboxes(expiry, capacity, channel_capacity)
        self.pid = uuid.uuid4().hex
        self.own = self.address("p", self.pid)
        self.local = Local(self.inboxes, group_expiry, lambda: self.listener.want_sync())
        self.listener = Listener(self.conninfo, self.own, self.local, lambda: self._loop().sender)
        self._loops = PerLoop(lambda: _LoopState(self))

    def conninfo(self) -> str:
        return self._conninfo if isinstance(self._conninfo, str) else self._conninfo()

    def address(self, kind: str, name: str) -> str:
        return wire.address(self.prefix, kind, name)

    serialize = staticmethod(messages.serialize)

    def _loop(self) -> _LoopState:
        return self._loops.get()

    # The contract.

    async def send(self, channel: str, message: Message) -> None:
        """A normal channel's message goes to its queue (ChannelFull past `capacity`); a channel
        of this process gets it at once (ChannelFull if its queue is full); another process's
        through its address."""
        assert isinstance(message, dict), "message is not a dict"
        self._names.require_valid_channel_name(channel)
        data, expires_at = messages.serialize(message), time.time() + self.expiry
        if "!" not in channel:
            address, capacity = self.address("c", channel), self.inboxes.capacity(channel)
            if not await self._loop().sender.enqueue(address, channel, data, expires_at, capacity):
                raise ChannelFull(channel)
        elif (pid := _process_id(channel)) != self.pid:
            await self._loop().sender.notify(self.address("p", pid), channel, data, expires_at)
        elif inbox := self.local.inboxes.get(channel):  # else: closed, the message is dropped
            if inbox.full():
                raise ChannelFull(channel)
            inbox.put_nowait(data, expires_at)

    async def receive(self, channel: str) -> Message:
        """The next message; a group message to many local channels is decoded once for all of
        them (as the Redis pub/sub layer does), so receivers must not change what they get."""
        local = "!" in channel
        receive = self._receive_local if local else self._take
        decode = messages.deserialize_shared if local else messages.deserialize
        while (message := decode(await receive(channel))) is None:
            pass  # not a message (counted and logged): the next one
        return message

    async def new_channel(self, prefix: str = "specific.") -> str:
        channel = f"{prefix}{self.pid}!{uuid.uuid4().hex}"
        self.local.open(channel)
        await self.listener.listening_to(self.own)  # its name is never handed out before it can hear
        return channel

    async def group_add(self, group: str, channel: str) -> None:
        self._names.require_valid_group_name(group)
        self._names.require_valid_channel_name(channel)
        if channel not in self.local.inboxes:
            raise RuntimeError(
                f"group_add({group!r}, {channel!r}): only a channel of this process can join a group"
                " (the consumer's own self.channel_name)"
            )
        address = self.address("g", group)
        self.local.join(address, channel, time.time())
        await self.listener.listening_to(address)

    async def group_discard(self, group: str, channel: str) -> None:
        self._names.require_valid_group_name(group)
        self._names.require_valid_channel_name(channel)
        self.local.leave(self.address("g", group), channel)

    async def group_send(self, group: str, message: Message) -> None:
        assert isinstance(message, dict), "message is not a dict"
        self._names.require_valid_group_name(group)
        data, expires_at = messages.serialize(message), time.time() + self.expiry
        await self._loop().sender.notify(self.address("g", group), "", data, expires_at)

    async def flush(self) -> None:
        """Forget this process's channels, groups and queued messages, and close its connections
        (they reopen on next use); delete every message waiting on a normal channel of this
        layer (this `prefix`). Other processes keep their channels and groups."""
        await self.listener.stop(keep_connection=False)
        await self._loop().sender.forget_queued()
        await self._loop().sender.close()
        self.local.reset()

    # Beyond the contract.

    def want_gaps(self, channel: str) -> None:
        """Opt `channel` (one of this process's, from new_channel()) in to gap notices: a
        `transport.gap` message ahead of what is left whenever it may have lost messages."""
        inbox = self.local.inboxes.get(channel)
        if inbox is None:
            raise ValueError(f"want_gaps({channel!r}): not a channel of this process from new_channel()")
        inbox.gaps = True

    def status(self) -> dict[str, int | bool]:
        """This process's side, for health checks: whether its listener is connected, and how
        many local channels, groups with local members and LISTENs it holds."""
        return {
            "connected": self.listener.serving,
            "channels": len(self.local.inboxes),
            "groups": len(self.local.members),
            "listening": len(self.listener.listening),
        }

    # Receiving.

    async def _receive_local(self, channel: str) -> bytes:
        """From this process's queue of `channel`; a channel received on without new_channel()
        (or closed) is opened. Channels cancels a consumer's receive() when the consumer ends,
        and has no other "close channel" call: the channel and its memberships go then."""
        try:
            inbox = self.local.inboxes.get(channel)
            if inbox is None:
                inbox = self._open(channel)
                await self.listener.listening_to(self.own)
            else:
                self.listener.start()  # the listener of this event loop (sync code runs many)
            return await inbox.get()
        except asyncio.CancelledError:
            self.local.close(channel)
            raise

    def _open(self, channel: str) -> Inbox:
        self._names.require_valid_channel_name(channel)
        if _process_id(channel) != self.pid:
            raise ValueError(f"{channel!r} belongs to another process: only that one can receive on it")
        return self.local.open(channel)

    async def _take(self, channel: str) -> bytes:
        """The oldest message of a normal channel, for this receiver only: taken from the
        queue when there is one, else when the channel's NOTIFY rings (or every RESYNC_EVERY)."""
        self._names.require_valid_channel_name(channel)
        address = self.address("c", channel)
        bell = self.local.bell(address)
        try:
            await self.listener.listening_to(address)
            while True:
                rings = bell.rings
                try:
                    data = await self._loop().sender.take(channel)
                except psycopg.OperationalError as exc:  # the database is away: a worker waits
                    log.warning("channel layer: receive(%r) failed (%s); retrying", channel, exc)
                    data = None
                if data is not None:
                    return data
                await bell.wait(rings, RESYNC_EVERY)  # the listener rings when it reconnects
        finally:
            self.local.release(address, bell)


def _process_id(channel: str) -> str:
    """The process part of a process-specific name: the 32 hex digits before its '!'."""
    return channel[: channel.index("!")][-32:]
