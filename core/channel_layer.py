"""The channel layers: the project's own over Postgres LISTEN/NOTIFY (the default), and
channels_redis' RedisPubSubChannelLayer for deployments with several daphne hosts
(settings.CHANNEL_LAYER picks one; docs/channel-layer.md says how they work).

Both work alike. A process holds one subscription connection and the queues (`Inbox`) of its
own channels; a group message crosses the wire once per process and is fanned out to the
local members in memory. When a local channel may have missed messages (its queue
overflowed, a message expired unread, the subscription connection dropped), it receives
`{"type": "transport.gap", "reason": ...}` ahead of what it has left, so the consumer can
re-read from the change log: the log, not the layer, is the source of truth.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from typing import Any, Generic, Protocol, TypeVar

import msgpack
import psycopg
from channels.exceptions import ChannelFull
from channels.layers import BaseChannelLayer
from channels_redis import pubsub
from psycopg import sql
from psycopg.pq import TransactionStatus
from redis.asyncio.client import PubSub

from cdc.backoff import Backoff
from cdc.sql import query

log = logging.getLogger("core.channel_layer")

GAP_TYPE = "transport.gap"  # handled by a consumer's `transport_gap`
# NOTIFY payloads must be shorter than 8000 bytes; a longer one goes through the side table.
INLINE_LIMIT = 7800
WAKE = "w"  # a payload that only makes the listener apply new LISTENs
RESYNC_EVERY = 5.0  # seconds: the longest a lost wake-up can delay a LISTEN
SWEEP_EVERY = 10.0  # seconds (at most) between deletions of expired side-table rows, per sender
LISTEN_APP = "channel-layer listen"  # application_name, for pg_stat_activity and operators
SEND_APP = "channel-layer send"
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}


def gap(reason: str) -> dict[str, str]:
    """The message telling a channel it may have missed some: 'overflow', 'expired', 'reconnected'."""
    return {"type": GAP_TYPE, "reason": reason}


class Inbox:
    """A local channel's queue: at most `capacity` messages (the oldest go first), each dropped
    at its expiry; any loss puts a gap notice ahead of the messages that are left."""

    def __init__(self, capacity: int, expiry: float, notice: Callable[[str], bytes]) -> None:
        self.capacity = capacity
        self.expiry = expiry
        self._notice = notice
        self._messages: deque[tuple[float, bytes]] = deque()
        self._gap: str | None = None
        self._waiters: list[asyncio.Future[None]] = []  # receive()s waiting; usually one

    def full(self) -> bool:
        return len(self._messages) >= self.capacity

    def put_nowait(self, data: bytes, expires_at: float | None = None) -> None:
        """Queue a message (channels_redis calls this as it would on an asyncio.Queue)."""
        if self.full():
            self._messages.popleft()
            self.mark_gap("overflow")
        self._messages.append((expires_at or time.time() + self.expiry, data))
        self._wake()

    def mark_gap(self, reason: str) -> None:
        self._gap = self._gap or reason
        self._wake()

    def _wake(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():  # a cancelled receive() leaves its waiter behind
                waiter.set_result(None)
        self._waiters.clear()

    async def get(self) -> bytes:
        while True:
            now = time.time()
            while self._messages and self._messages[0][0] <= now:
                self._messages.popleft()
                self._gap = self._gap or "expired"
            if self._gap:
                reason, self._gap = self._gap, None
                return self._notice(reason)
            if self._messages:
                return self._messages.popleft()[1]
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter


class Inboxes:
    """Makes a layer's inboxes: capacity by channel name as Channels' layers take it (a default
    and glob patterns), expiry, and the gap notice in the layer's own encoding."""

    def __init__(
        self,
        expiry: float,
        capacity: int,
        channel_capacity: dict[str, int] | None,
        encode: Callable[[dict[str, Any]], bytes],
    ) -> None:
        self._limits = BaseChannelLayer(expiry=expiry, capacity=capacity)
        self._limits.channel_capacity = self._limits.compile_capacities(channel_capacity or {})
        self._notices = {reason: encode(gap(reason)) for reason in ("overflow", "expired", "reconnected")}

    def new(self, channel: str) -> Inbox:
        return Inbox(self._limits.get_capacity(channel), self._limits.expiry, self._notices.__getitem__)


class _Flushable(Protocol):
    async def flush(self) -> None: ...


F = TypeVar("F", bound=_Flushable)


class PerLoop(Generic[F]):
    """One state per running event loop, flushed when that loop closes: connections and tasks
    belong to a loop, and async_to_sync runs each call in a new one (channels_redis does the same)."""

    def __init__(self, factory: Callable[[], F]) -> None:
        self._factory = factory
        self._states: dict[asyncio.AbstractEventLoop, F] = {}

    def get(self) -> F:
        loop = asyncio.get_running_loop()
        state = self._states.get(loop)
        if state is None:
            state = self._states[loop] = self._factory()
            self._flush_on_close(loop)
        return state

    def _flush_on_close(self, loop: asyncio.AbstractEventLoop) -> None:
        close = loop.close

        def flush_then_close() -> None:
            state = self._states.pop(loop, None)
            if state is not None and not loop.is_closed():
                loop.run_until_complete(state.flush())
            close()

        loop.close = flush_then_close  # type: ignore[method-assign]


class _Connections:
    """Up to `size` autocommit connections for NOTIFY and side-table reads, each opened when
    first needed and kept. Not psycopg_pool: asyncio.run and async_to_sync cancel its worker
    tasks before the loop closes, and the pool then cannot close; nothing here needs them."""

    def __init__(self, conninfo: Callable[[], str], size: int) -> None:
        self._conninfo = conninfo
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._slots = asyncio.Semaphore(size)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with self._slots:
            conn = self._idle.pop() if self._idle else await self._connect()
            try:
                yield conn
            finally:
                if conn.info.transaction_status == TransactionStatus.IDLE:
                    self._idle.append(conn)
                else:  # broken, or left mid-statement by a cancellation: the next use opens another
                    await conn.close()

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        conninfo = self._conninfo()
        return await psycopg.AsyncConnection.connect(conninfo, autocommit=True, application_name=SEND_APP)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()


class PostgresChannelLayer(BaseChannelLayer):
    """Channels' layer contract over Postgres LISTEN/NOTIFY, in the database the project uses.

    CONFIG: `conninfo` (default: Django's database, core.database.conninfo()), `prefix`,
    `expiry`, `group_expiry`, `capacity`, `channel_capacity` (as Channels' layers take them) and
    `pool_size` (connections for NOTIFY and side-table reads, per process).
    """

    extensions = ["groups", "flush"]

    def __init__(
        self,
        conninfo: str | None = None,
        prefix: str = "asgi",
        expiry: float = 60,
        group_expiry: float = 86400,
        capacity: int = 100,
        channel_capacity: dict[str, int] | None = None,
        pool_size: int = 4,
    ) -> None:
        super().__init__(expiry=expiry, capacity=capacity)
        self.prefix = prefix
        self.group_expiry = group_expiry
        self.pool_size = pool_size
        self._conninfo = conninfo
        self.new_inbox = Inboxes(expiry, capacity, channel_capacity, self.serialize).new
        self._processes = PerLoop(lambda: _PgProcess(self))

    def conninfo(self) -> str:
        from core.database import conninfo  # needs Django's settings, so not at import time

        return self._conninfo or conninfo()

    def address(self, kind: str, name: str) -> str:
        """The NOTIFY channel of a group ('g'), a normal channel ('c') or a process ('p'): an
        identifier of 34 characters whatever the name's length (the limit is 63 bytes)."""
        digest = hashlib.blake2b(f"{self.prefix}\0{kind}\0{name}".encode(), digest_size=16).hexdigest()
        return f"{kind}_{digest}"

    @staticmethod
    def serialize(message: dict[str, Any]) -> bytes:
        return msgpack.packb(message, use_bin_type=True)

    @staticmethod
    def deserialize(data: bytes) -> dict[str, Any]:
        return msgpack.unpackb(data, raw=False)

    # The contract: validate and encode here; the running loop's _PgProcess does the rest.

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        await self._processes.get().send(channel, self.serialize(message), time.time() + self.expiry)

    async def receive(self, channel: str) -> dict[str, Any]:
        return self.deserialize(await self._processes.get().receive(channel))  # name checked on open

    async def new_channel(self, prefix: str = "specific.") -> str:
        return await self._processes.get().new_channel(prefix)

    async def group_add(self, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        await self._processes.get().group_add(group, channel)

    async def group_discard(self, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        self._processes.get().group_discard(group, channel)

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_group_name(group)
        await self._processes.get().group_send(group, self.serialize(message), time.time() + self.expiry)

    async def flush(self) -> None:
        """Forget this process's channels, groups and queued messages, and close its connections
        (they reopen on next use). Other processes keep theirs."""
        await self._processes.get().flush()

    def status(self) -> dict[str, int | bool]:
        """This process's side, for health checks: whether its listener is connected, and how
        many local channels, groups with local members and LISTENs it holds."""
        return self._processes.get().status()


def _process_id(channel: str) -> str:
    """The process part of a process-specific name: the 32 hex digits before its '!'."""
    return channel[: channel.index("!")][-32:]


class _PgProcess:
    """One process (strictly: one event loop) of the Postgres layer: a LISTEN connection, a
    few connections for NOTIFY and side-table reads, and the local channels and groups.

    The listener LISTENs to this process's own address (for `send`) and to each group and
    normal channel with a local member; a group message is one NOTIFY, fanned out here.
    Memberships live in this process only, so they end with it: nothing in the database
    grows with the number of channels or members.
    """

    def __init__(self, layer: PostgresChannelLayer) -> None:
        self.layer = layer
        self.pid = uuid.uuid4().hex
        self.address = layer.address("p", self.pid)
        self._reset()

    def _reset(self) -> None:
        self.inboxes: dict[str, Inbox] = {}
        self.members: dict[str, dict[str, float]] = {}  # address -> {local channel: joined at}
        self.joined: dict[str, set[str]] = {}  # local channel -> addresses it is a member of
        self.listening: set[str] = set()  # LISTENs in force on the current connection
        self.waiters: dict[str, asyncio.Future[None]] = {}  # address -> LISTEN in force
        self.dirty = True  # the wanted LISTENs may differ from those in force
        self.serving = False  # the listener is connected and waiting for notifications
        self.wake_pending = False
        self.connected_before = False
        self.listener: asyncio.Task[None] | None = None
        self.connections = _Connections(self.layer.conninfo, self.layer.pool_size)
        self.tasks: set[asyncio.Task[None]] = set()
        self.next_sweep = 0.0
        self.next_expiry_check = time.time() + min(self.layer.group_expiry, 60)

    # The contract, for validated names and encoded messages.

    async def send(self, channel: str, data: bytes, expires_at: float) -> None:
        """A channel of this process gets the message at once (ChannelFull if its queue is
        full); another process's through its address; a normal channel's through its own."""
        if "!" not in channel:
            await self._notify(self.layer.address("c", channel), "", data, expires_at)
        elif _process_id(channel) != self.pid:
            await self._notify(self.layer.address("p", _process_id(channel)), channel, data, expires_at)
        elif inbox := self.inboxes.get(channel):  # else: closed, the message is dropped
            if inbox.full():
                raise ChannelFull(channel)
            inbox.put_nowait(data, expires_at)

    async def receive(self, channel: str) -> bytes:
        try:
            inbox = self.inboxes.get(channel) or await self._open(channel)
            return await inbox.get()
        except asyncio.CancelledError:
            # Channels cancels a consumer's receive() when the consumer ends, and has no other
            # "close channel" call: forget the channel and its memberships.
            self._close(channel)
            raise

    async def new_channel(self, prefix: str) -> str:
        channel = f"{prefix}{self.pid}!{uuid.uuid4().hex}"
        self.inboxes[channel] = self.layer.new_inbox(channel)
        await self._listening_to(self.address)  # its name is never handed out before it can hear
        return channel

    async def group_add(self, group: str, channel: str) -> None:
        if channel not in self.inboxes:
            raise RuntimeError(
                f"group_add({group!r}, {channel!r}): only a channel of this process can join a group"
                " (the consumer's own self.channel_name)"
            )
        address = self.layer.address("g", group)
        self._join(address, channel, time.time())
        await self._listening_to(address)

    def group_discard(self, group: str, channel: str) -> None:
        self._leave(self.layer.address("g", group), channel)

    async def group_send(self, group: str, data: bytes, expires_at: float) -> None:
        await self._notify(self.layer.address("g", group), "", data, expires_at)

    async def flush(self) -> None:
        tasks = [task for task in (self.listener, *self.tasks) if task]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for waiter in self.waiters.values():
            waiter.cancel()
        await self.connections.close()
        self._reset()

    def status(self) -> dict[str, int | bool]:
        groups = sum(address.startswith("g_") for address in self.members)
        return {
            "connected": self.serving,
            "channels": len(self.inboxes),
            "groups": groups,
            "listening": len(self.listening),
        }

    # Local channels and memberships.

    async def _open(self, channel: str) -> Inbox:
        """A channel received on without new_channel(): a normal channel (any process may
        receive on it), or one of ours whose inbox was closed."""
        self.layer.require_valid_channel_name(channel)
        if "!" in channel and _process_id(channel) != self.pid:
            raise ValueError(f"{channel!r} belongs to another process: only that one can receive on it")
        inbox = self.inboxes[channel] = self.layer.new_inbox(channel)
        address = self.address if "!" in channel else self.layer.address("c", channel)
        if address != self.address:
            self._join(address, channel, float("inf"))  # its own member; never expires
        await self._listening_to(address)
        return inbox

    def _close(self, channel: str) -> None:
        self.inboxes.pop(channel, None)
        for address in self.joined.pop(channel, set()):
            self._leave(address, channel)

    def _join(self, address: str, channel: str, joined_at: float) -> None:
        if address not in self.members:
            self.members[address] = {}
            self._want_sync()
        self.members[address][channel] = joined_at
        self.joined.setdefault(channel, set()).add(address)

    def _leave(self, address: str, channel: str) -> None:
        members = self.members.get(address, {})
        if members.pop(channel, None) is None:
            return
        self.joined.get(channel, set()).discard(address)
        if not members:
            del self.members[address]
            self._want_sync()

    def _expire_memberships(self, now: float) -> None:
        """Channels' group_expiry: a membership lasts that long after its latest group_add."""
        self.next_expiry_check = now + min(self.layer.group_expiry, 60)
        for address, members in list(self.members.items()):
            expired = [c for c, joined_at in members.items() if now - joined_at > self.layer.group_expiry]
            for channel in expired:
                self._leave(address, channel)

    # Sending.

    async def _notify(self, address: str, target: str, data: bytes, expires_at: float) -> None:
        """One NOTIFY: `m<expiry ms>,<target channel>,<base64 message>`, or, over the payload
        limit, `t<expiry ms>,<target>,<side-table id>`. The target is empty for a group."""
        expires_ms = int(expires_at * 1000)
        payload = f"m{expires_ms},{target},{base64.b64encode(data).decode()}"
        if len(payload) < INLINE_LIMIT:  # ASCII: characters are bytes
            await self._execute("channel_layer_notify", {"address": address, "payload": payload})
            return
        head = f"t{expires_ms},{target},"
        await self._execute(
            "channel_layer_notify_stored",
            {"address": address, "head": head, "body": data, "expires_at": expires_at},
        )
        if time.monotonic() >= self.next_sweep:  # so a row outlives its expiry by this at most
            self.next_sweep = time.monotonic() + min(SWEEP_EVERY, self.layer.expiry)
            await self._execute("channel_layer_sweep")

    async def _execute(self, name: str, params: dict[str, Any] | None = None) -> tuple[Any, ...] | None:
        """One statement of cdc/queries.sql on a sending connection; its first row, if any."""
        async with self.connections.connection() as conn:
            cursor = await conn.execute(query(name), params)
            return await cursor.fetchone() if cursor.description else None

    # The listener.

    async def _listening_to(self, address: str) -> None:
        """Until a LISTEN for `address` is in force (or nobody here wants it any more)."""
        self._start_listener()
        if address in self.listening:
            return
        waiter = self.waiters.setdefault(address, asyncio.get_running_loop().create_future())
        await asyncio.shield(waiter)  # shared by every caller: one's cancellation is not all's

    def _start_listener(self) -> None:
        """Exactly one listener per process, however many first calls arrive at once: the check
        and the start happen with no await between them."""
        if self.listener is None or self.listener.done():
            self.listener = asyncio.create_task(self._listen())

    def _want_sync(self) -> None:
        self.dirty = True
        if self.serving and not self.wake_pending:  # the listener waits in notifies(): wake it
            self.wake_pending = True
            self._spawn(self._wake())

    async def _wake(self) -> None:
        try:
            await self._execute("channel_layer_notify", {"address": self.address, "payload": WAKE})
        except psycopg.Error as exc:
            log.warning("channel layer: wake-up failed (%s); the listener re-syncs soon", exc)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _listen(self) -> None:
        """Connect, LISTEN, deliver; after any failure reconnect with backoff, re-LISTEN, and
        tell every local channel that it may have missed messages."""
        backoff = Backoff()
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.layer.conninfo(), autocommit=True, application_name=LISTEN_APP, **KEEPALIVES
                ) as conn:
                    self.listening, self.dirty = set(), True
                    await self._sync(conn)
                    if self.connected_before:
                        _tell(self.inboxes.values(), "reconnected")
                    self.connected_before = True
                    backoff.reset()
                    await self._serve(conn)
            except Exception as exc:  # any failure: never needs a restart by hand
                self.serving = False
                delay = backoff.next_delay()
                log.warning("channel layer: listener failed (%r); reconnecting in %.1fs", exc, delay)
                await asyncio.sleep(delay)

    async def _serve(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.serving = True
        while True:
            # stop_after=1 ends the generator after a whole batch, so none is cut short.
            async for note in conn.notifies(timeout=RESYNC_EVERY, stop_after=1):
                if note.payload != WAKE:
                    await self._dispatch(note.channel, note.payload)
            await self._sync(conn)

    async def _sync(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """LISTEN to what is wanted, UNLISTEN the rest, in one round trip; wanted changes made
        meanwhile are applied in the next one."""
        while self.dirty:
            self.dirty = self.wake_pending = False
            listen, unlisten = self._wanted() - self.listening, self.listening - self._wanted()
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
        return self.members.keys() | {self.address}

    async def _dispatch(self, address: str, payload: str) -> None:
        """Hand one notification to its local channels, in arrival order (a side-table read is
        awaited here, so a later small message cannot overtake it)."""
        now = time.time()
        if now >= self.next_expiry_check:
            self._expire_memberships(now)
        kind, rest = payload[0], payload[1:]
        expires_ms, target, body = rest.split(",", 2)
        inboxes = self._recipients(address, target)
        if not inboxes:
            return
        expires_at = int(expires_ms) / 1000
        data = None
        if expires_at > now:
            data = base64.b64decode(body) if kind == "m" else await self._read_stored(int(body), bool(target))
        for inbox in inboxes:
            if data is None:  # expired on the way, or its row already deleted as expired
                inbox.mark_gap("expired")
            else:
                inbox.put_nowait(data, expires_at)

    def _recipients(self, address: str, target: str) -> list[Inbox]:
        if address == self.address:
            inbox = self.inboxes.get(target)
            return [inbox] if inbox else []
        return [self.inboxes[channel] for channel in self.members.get(address, ()) if channel in self.inboxes]

    async def _read_stored(self, message_id: int, single_reader: bool) -> bytes | None:
        name = "channel_layer_take" if single_reader else "channel_layer_read"
        row = await self._execute(name, {"id": message_id})
        return None if row is None else bytes(row[0])


def _tell(inboxes: Iterable[Inbox], reason: str) -> None:
    for inbox in inboxes:
        inbox.mark_gap(reason)


# channels_redis' RedisPubSubChannelLayer, with the same inboxes and the same gap notices.


class _ResubscribingPubSub(PubSub):
    """redis-py reconnects a pub/sub connection by itself and calls `on_connect` (on each
    reconnection, not the first connect) to subscribe again; then the channels are told."""

    def __init__(self, pool: Any, after_reconnect: Callable[[], None]) -> None:
        super().__init__(pool)
        self._after_reconnect = after_reconnect

    async def on_connect(self, connection: Any) -> None:
        await super().on_connect(connection)
        self._after_reconnect()


class _RedisShard(pubsub.RedisSingleShardConnection):
    def _ensure_redis(self) -> None:
        if self._redis is None:
            super()._ensure_redis()
            self._pubsub = _ResubscribingPubSub(self._redis.connection_pool, self.channel_layer.reconnected)


class _RedisLoopLayer(pubsub.RedisPubSubLoopLayer):
    def __init__(self, *args: Any, new_inbox: Callable[[str], Inbox], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._new_inbox = new_inbox
        self._shards = [_RedisShard(shard.host, self) for shard in self._shards]

    async def _subscribe_to_channel(self, channel: str) -> None:
        self.channels[channel] = self._new_inbox(channel)
        await self._get_shard(channel).subscribe(channel)

    async def receive(self, channel: str) -> Any:
        try:
            return await super().receive(channel)
        except asyncio.CancelledError:
            # channels_redis forgets a closed channel but not its memberships, and so keeps
            # its groups subscribed for ever: leave them too.
            prefix = self._get_group_channel_name("")
            for group_channel in [g for g, members in self.groups.items() if channel in members]:
                await self.group_discard(group_channel.removeprefix(prefix), channel)
            raise

    def reconnected(self) -> None:
        _tell(self.channels.values(), "reconnected")


class RedisPubSubChannelLayer(pubsub.RedisPubSubChannelLayer):
    """channels_redis' RedisPubSubChannelLayer (CONFIG `hosts` etc. as it documents) whose
    local queues are bounded and expiring (`capacity`, `channel_capacity`, `expiry`) and whose
    channels are told when they may have missed messages, exactly like PostgresChannelLayer's.
    Its `send` publishes even to a local channel, so it never raises ChannelFull."""

    def __init__(
        self,
        *args: Any,
        expiry: float = 60,
        capacity: int = 100,
        channel_capacity: dict[str, int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        new_inbox = Inboxes(expiry, capacity, channel_capacity, self.serialize).new
        self._loop_layers = PerLoop(
            lambda: _RedisLoopLayer(*self._args, **self._kwargs, channel_layer=self, new_inbox=new_inbox)
        )

    def _get_layer(self) -> _RedisLoopLayer:
        return self._loop_layers.get()
