"""The channel layer contract, run against both layers: the project's Postgres layer and
channels_redis' RedisPubSubChannelLayer as pglayer/redis_layer.py extends it.

"Another process" is a real one (testkit/layer_peer.py). The Redis run needs REDIS_URL or a
server on 127.0.0.1:6379; without one it is skipped, and the skip says so. What pub/sub
cannot do (normal channels as queues, a channel used across event loops) is skipped on Redis
with the reason (`Backend.cannot`), as docs/channel-layer.md says.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
import redis.asyncio
from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull

from core.database import conninfo
from pglayer import metrics as layer_metrics
from pglayer.layer import PostgresChannelLayer
from pglayer.listener import LISTEN_APP
from pglayer.messages import gap
from pglayer.redis_layer import RedisPubSubChannelLayer
from pglayer.wire import INLINE_LIMIT
from testkit.layer_peer import REDIS_URL, redis_reachable
from testkit.processes import Process
from tests.conftest import require

PEER = Path(__file__).resolve().parents[2] / "testkit" / "layer_peer.py"
TIMEOUT = 20.0


class Backend:
    """One layer under test: makes layers and peer processes, and looks at the server."""

    name = ""
    layer_class: Any = None

    def __init__(self, config: dict[str, Any], database: str) -> None:
        self.config = config
        self.database = database  # the peers' DATABASE_URL
        self.layers: list[Any] = []
        self.peers: list[Process] = []

    def cannot(self, name: str, reason: str) -> None:
        """This part of the contract is beyond the `name` layer: skip, saying why (not a
        missing server, so not a failure in CI either)."""
        if self.name == name:
            pytest.skip(f"{name}: {reason}")

    def layer(self, **overrides: Any) -> Any:
        layer = self.layer_class(**{**self.config, **overrides})
        self.layers.append(layer)
        return layer

    def peer(self, *role: str) -> Process:
        path = f"{self.layer_class.__module__}.{self.layer_class.__name__}"
        argv = [sys.executable, str(PEER), path, json.dumps(self.config), *role]
        peer = Process(argv, {"DATABASE_URL": self.database}, f"{self.name} peer")
        self.peers.append(peer)
        return peer

    async def listeners(self) -> int:
        """Subscription connections open on the server, for this test."""
        raise NotImplementedError

    async def kill_listener(self) -> None:
        raise NotImplementedError

    async def resources(self, layer: Any = None) -> dict[str, Any]:
        """What the layers hold on the server for this test (and what `layer` holds locally)."""
        raise NotImplementedError


class PostgresBackend(Backend):
    name = "postgres"
    layer_class = PostgresChannelLayer

    async def _one(self, statement: str, params: tuple[Any, ...] = ()) -> Any:
        async with await psycopg.AsyncConnection.connect(self.database, autocommit=True) as conn:
            cursor = await conn.execute(statement, params)
            row = await cursor.fetchone()
        assert row is not None
        return row[0] if len(row) == 1 else row

    async def listeners(self) -> int:
        return await self._one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = %s",
            (LISTEN_APP,),
        )

    async def listener_id(self) -> Any:
        return await self._one(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s",
            (LISTEN_APP,),
        )

    async def inject(self, layer: Any, channel: str, group: str) -> int:
        """NOTIFY the layer's addresses with what it never sends; how many."""
        later = int(time.time() * 1000) + 60_000
        hostile = [
            (layer.own, "garbage"),
            (layer.own, ""),
            (layer.address("g", group), "t1,,not-an-id"),
            (layer.address("g", group), f"m{later},,not base64!"),
            (layer.own, f"m{later},{channel},wQ=="),  # base64 of 0xc1: not msgpack
            (layer.own, f"m{later},{channel},{base64.b64encode(layer.serialize([1])).decode()}"),
        ]
        async with await psycopg.AsyncConnection.connect(self.database, autocommit=True) as conn:
            for address, payload in hostile:
                await conn.execute("SELECT pg_notify(%s, %s)", (address, payload))
        return len(hostile)

    async def kill_listener(self) -> None:
        killed = await self._one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = %s",
            (LISTEN_APP,),
        )
        assert killed == 1

    async def resources(self, layer: Any = None) -> dict[str, Any]:
        locks, advisory, stored, connections = await self._one(
            """
            WITH here AS (SELECT pid FROM pg_stat_activity
                          WHERE datname = current_database() AND pid <> pg_backend_pid())
            SELECT (SELECT count(*) FROM pg_locks WHERE pid IN (SELECT pid FROM here)),
                   (SELECT count(*) FROM pg_locks WHERE pid IN (SELECT pid FROM here)
                                                    AND locktype = 'advisory'),
                   (SELECT count(*) FROM pglayer.message) + (SELECT count(*) FROM pglayer.queue),
                   (SELECT count(*) FROM here)
            """
        )
        local = layer.status() if layer else {}
        return {"locks": locks, "advisory": advisory, "stored": stored, "connections": connections, **local}


class RedisBackend(Backend):
    name = "redis"
    layer_class = RedisPubSubChannelLayer

    @property
    def client_name(self) -> str:
        return self.config["hosts"][0]["client_name"]

    async def _clients(self, kind: str | None = None) -> list[dict[str, Any]]:
        async with redis.asyncio.from_url(REDIS_URL) as server:
            clients = await server.client_list(_type=kind)
        return [c for c in clients if c["name"] == self.client_name]

    async def listeners(self) -> int:
        return len(await self._clients("pubsub"))

    async def listener_id(self) -> Any:
        (listener,) = await self._clients("pubsub")
        return listener["id"]

    async def inject(self, layer: Any, channel: str, group: str) -> int:
        """PUBLISH to the layer's channels what it never sends; how many."""
        hostile = [
            (channel, b"\xc1"),
            (channel, layer.serialize([1])),
            (f"{self.config['prefix']}__group__{group}", b"x"),
        ]
        async with redis.asyncio.from_url(REDIS_URL) as server:
            for name, data in hostile:
                await server.publish(name, data)
        return len(hostile)

    async def kill_listener(self) -> None:
        (listener,) = await self._clients("pubsub")
        async with redis.asyncio.from_url(REDIS_URL) as server:
            await server.client_kill_filter(_id=listener["id"])

    async def resources(self, layer: Any = None) -> dict[str, Any]:
        async with redis.asyncio.from_url(REDIS_URL) as server:
            subscriptions = await server.pubsub_channels(f"{self.config['prefix']}*")
        return {"subscriptions": len(subscriptions), "connections": len(await self._clients())}


@pytest.fixture(params=["postgres", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    tag = uuid.uuid4().hex[:12]
    if request.param == "postgres":
        fresh_db = request.getfixturevalue("fresh_db")
        chosen: Backend = PostgresBackend({"conninfo": fresh_db}, fresh_db)
    else:
        require(
            redis_reachable(),
            f"no Redis at {REDIS_URL}: RedisPubSubChannelLayer run SKIPPED (set REDIS_URL to run it)",
        )
        hosts = [{"address": REDIS_URL, "client_name": f"layer-test-{tag}"}]
        chosen = RedisBackend({"hosts": hosts, "prefix": f"test{tag}."}, conninfo())
    yield chosen
    for peer in chosen.peers:
        peer.kill()
    for layer in chosen.layers:
        await layer.flush()


async def receive(layer: Any, channel: str) -> dict[str, Any]:
    return await asyncio.wait_for(layer.receive(channel), TIMEOUT)


async def peer_line(peer: Process, pattern: str, after: int = 0) -> str:
    return await asyncio.to_thread(peer.wait_for, pattern, TIMEOUT, after=after)


async def peer_lines(peer: Process, pattern: str, count: int) -> list[str]:
    """Wait until `count` of the peer's lines match `pattern`; return them."""
    found: list[str] = []
    after = 0
    while len(found) < count:
        line = await peer_line(peer, pattern, after)
        after = peer.lines.index(line, after) + 1
        found.append(line)
    return found


async def until(check: Any, expected: Any) -> None:
    """Wait, with a deadline, for the server to show what it should (it lags a process's exit)."""
    deadline = time.monotonic() + TIMEOUT
    while (seen := await check()) != expected:
        assert time.monotonic() < deadline, f"{seen} != {expected}"
        await asyncio.sleep(0.05)


async def close_channels(layer: Any, channels: list[str]) -> None:
    """Close channels the way Channels does when consumers end: cancel their receive()."""
    receives = [asyncio.create_task(layer.receive(c)) for c in channels]
    await asyncio.sleep(0)  # let each receive() start, so that it is waiting when cancelled
    for task in receives:
        task.cancel()
    await asyncio.gather(*receives, return_exceptions=True)


def message_of_size(layer: Any, size: int, n: int) -> dict[str, Any]:
    """A message whose encoding is exactly `size` bytes."""
    message: dict[str, Any] = {"type": "sized", "n": n, "pad": ""}
    message["pad"] = "a" * (size - len(layer.serialize(message)) - 2)  # str8/16 header grows
    while len(layer.serialize(message)) < size:
        message["pad"] += "a"
    assert len(layer.serialize(message)) == size
    return message


# Across processes.


async def test_group_send_reaches_members_in_another_process(backend):
    peer = backend.peer("members", "news", "3")
    await peer_line(peer, "^ready$")

    sender = backend.layer()
    for n in range(2):
        await sender.group_send("news", {"type": "news.item", "n": n})

    got = await peer_lines(peer, r"^got \d+ \d+$", 6)
    assert sorted(got) == sorted(f"got {i} {n}" for i in range(3) for n in range(2))


async def test_send_reaches_a_channel_in_another_process_and_back(backend):
    peer = backend.peer("echo")
    peer_channel = (await peer_line(peer, "^channel ")).split()[1]

    layer = backend.layer()
    mine = await layer.new_channel()
    for n in range(3):
        await layer.send(peer_channel, {"type": "echo.ask", "reply_to": mine, "n": n})
        assert await receive(layer, mine) == {"type": "echo.reply", "n": n}


async def test_a_hundred_consumers_at_once_get_each_message_exactly_once(backend):
    peer = backend.peer("members", "live", "100")  # a fresh process: all 100 start together
    await peer_line(peer, "^ready$")
    assert await backend.listeners() == 1

    sender = backend.layer()
    for n in range(6):
        await sender.group_send("live", {"type": "live.item", "n": n})

    await peer_lines(peer, r"^got \d+ 5$", 100)  # each member's last message: all are in
    deliveries = Counter(tuple(map(int, line.split()[1:])) for line in peer.lines if line.startswith("got"))
    assert deliveries == Counter({(i, n): 1 for i in range(100) for n in range(6)})
    assert await backend.listeners() == 1


async def test_a_dead_process_leaves_nothing_behind(backend):
    sender = backend.layer()
    await sender.group_send("gone", {"type": "warm.up"})
    before = await backend.resources()

    peer = backend.peer("members", "gone", "50")
    await peer_line(peer, "^ready$")
    peer.kill()

    await until(backend.resources, before)
    await sender.group_send("gone", {"type": "nobody.left"})  # and the group still works


# Connections.


async def test_the_layer_comes_back_after_its_listen_connection_is_killed_and_tells_who_asked(backend):
    layer, sender = backend.layer(), backend.layer()
    member, quiet = await layer.new_channel(), await layer.new_channel()
    layer.want_gaps(member)
    for channel in (member, quiet):
        await layer.group_add("after", channel)
    await sender.group_send("after", {"type": "before.kill"})
    assert [await receive(layer, c) for c in (member, quiet)] == [{"type": "before.kill"}] * 2

    await backend.kill_listener()

    assert await receive(layer, member) == gap("reconnected")
    await sender.group_send("after", {"type": "after.kill"})
    assert await receive(layer, member) == {"type": "after.kill"}
    assert await receive(layer, quiet) == {"type": "after.kill"}  # no notice: it did not ask
    await sender.send(member, {"type": "direct"})
    assert await receive(layer, member) == {"type": "direct"}
    assert await backend.listeners() == 1


async def test_twenty_thousand_channels_leave_nothing_behind(backend):
    fixed = {"pool_size": 1} if backend.name == "postgres" else {}  # no pool growth under load
    layer, sender = backend.layer(**fixed), backend.layer(**fixed)
    warm = await layer.new_channel()
    await layer.group_add("warm", warm)
    await sender.group_send("warm", {"type": "warm.up"})
    await receive(layer, warm)
    before = await backend.resources(layer)

    channels = [await layer.new_channel() for _ in range(20_000)]
    groups = [f"crowd.{i % 200}" for i in range(len(channels))]
    await asyncio.gather(*(layer.group_add(g, c) for g, c in zip(groups, channels, strict=True)))
    for g in sorted(set(groups)):
        await sender.group_send(g, {"type": "crowd", "group": g})
    for c in channels[::100]:
        await sender.send(c, {"type": "direct", "pad": "x" * 20_000})  # over the NOTIFY limit
    for i, (g, c) in enumerate(zip(groups, channels, strict=True)):
        assert await receive(layer, c) == {"type": "crowd", "group": g}
        if i % 100 == 0:
            assert (await receive(layer, c))["type"] == "direct"
    for g, c in list(zip(groups, channels, strict=True))[::2]:
        await layer.group_discard(g, c)  # the other half leave their groups by closing
    await close_channels(layer, channels)

    await until(lambda: backend.resources(layer), before)


# Sizes and names.


async def test_large_messages_long_group_names_and_sizes_around_the_notify_limit(backend):
    layer, sender = backend.layer(capacity=1000), backend.layer()
    channel = await layer.new_channel()
    group = "g" * 99  # the longest name Channels allows
    await layer.group_add(group, channel)

    big = {"type": "big", "text": "é" * 50_000}  # 100 KB
    await sender.group_send(group, big)
    assert await receive(layer, channel) == big
    await sender.send(channel, big)
    assert await receive(layer, channel) == big

    exactly_8000 = message_of_size(sender, 8000, 0)
    await sender.group_send(group, exactly_8000)
    assert await receive(layer, channel) == exactly_8000

    # Encodings whose NOTIFY payload (base64 and a header) crosses INLINE_LIMIT and 8000 bytes,
    # for a group (no target in the payload) and for one channel (its name in the payload).
    sizes = range(INLINE_LIMIT * 3 // 4 - 60, 8000 * 3 // 4 + 20, 3)
    for n, size in enumerate(sizes):
        await sender.group_send(group, message_of_size(sender, size, n))
        await sender.send(channel, message_of_size(sender, size, n))
    for n, size in enumerate(sizes):
        assert await receive(layer, channel) == message_of_size(sender, size, n)
        assert await receive(layer, channel) == message_of_size(sender, size, n)


# Capacity, expiry, flush.


async def test_an_overflowing_channel_keeps_the_newest_and_is_told_if_it_asked(backend):
    layer, sender = backend.layer(capacity=3), backend.layer()
    member, quiet, marker = [await layer.new_channel() for _ in range(3)]
    layer.want_gaps(member)
    for channel in (member, quiet):
        await layer.group_add("busy", channel)

    for n in range(6):
        await sender.group_send("busy", {"type": "busy", "n": n})  # never raises ChannelFull
    await sender.send(marker, {"type": "marker"})
    assert await receive(layer, marker) == {"type": "marker"}  # so all six have arrived

    newest = [{"type": "busy", "n": n} for n in (3, 4, 5)]
    assert [await receive(layer, member) for _ in range(4)] == [gap("overflow"), *newest]
    assert [await receive(layer, quiet) for _ in range(3)] == newest


async def test_send_to_a_full_channel_of_this_process_raises_channel_full(fresh_db):
    layer = PostgresChannelLayer(conninfo=fresh_db, capacity=2)
    try:
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "one"})
        await layer.send(channel, {"type": "two"})
        with pytest.raises(ChannelFull):
            await layer.send(channel, {"type": "three"})
        assert [await receive(layer, channel) for _ in range(2)] == [{"type": "one"}, {"type": "two"}]
    finally:
        await layer.flush()


async def test_expired_messages_are_dropped_silently_unless_the_channel_asked(backend):
    """The issue's case, faster: messages sent further apart than the expiry, received late."""
    layer, sender = backend.layer(expiry=0.5), backend.layer(expiry=0.5)
    asked, quiet, marker = [await layer.new_channel() for _ in range(3)]
    layer.want_gaps(asked)
    for channel in (asked, quiet):
        await sender.send(channel, {"type": "stale"})
    await sender.send(marker, {"type": "marker"})
    assert await receive(layer, marker) == {"type": "marker"}  # "stale" is queued

    await asyncio.sleep(0.6)  # what is under test: time passing beyond the expiry
    for channel in (asked, quiet):
        await sender.send(channel, {"type": "fresh"})

    assert await receive(layer, quiet) == {"type": "fresh"}  # no transport.gap to trip on
    assert await receive(layer, asked) == gap("expired")
    assert await receive(layer, asked) == {"type": "fresh"}


async def test_flush_forgets_queued_messages_and_groups_and_the_layer_goes_on(backend):
    layer, sender = backend.layer(), backend.layer()
    old, marker = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("flushed", old)
    await sender.send(old, {"type": "queued"})
    await sender.send(marker, {"type": "marker"})
    assert await receive(layer, marker) == {"type": "marker"}  # "queued" is queued

    await layer.flush()

    new = await layer.new_channel()
    await layer.group_add("flushed", new)
    await sender.group_send("flushed", {"type": "after.flush"})
    assert await receive(layer, new) == {"type": "after.flush"}

    # The old channel, received on again, starts empty and in no group. Probe until its
    # subscription is in force (Redis subscribes inside receive()).
    reopened = asyncio.create_task(layer.receive(old))
    deadline = time.monotonic() + TIMEOUT
    while not reopened.done():
        assert time.monotonic() < deadline, "the old channel never received the probe"
        await sender.group_send("flushed", {"type": "group.after.flush"})
        await sender.send(old, {"type": "probe"})
        await asyncio.wait({reopened}, timeout=0.05)
    assert reopened.result() == {"type": "probe"}


# Normal channels ("thumbnails"): each message waits for one receiver. Workers (manage.py
# runworker) are tests/system/test_runworker.py.

REDIS_PUBSUB = "pub/sub delivers a message to the receivers subscribed when it is published (each of them)"


async def test_a_normal_channel_keeps_each_message_until_one_receiver_takes_it(backend):
    backend.cannot("redis", REDIS_PUBSUB)
    sender, first, second = backend.layer(), backend.layer(), backend.layer()
    name = f"thumbnails.{uuid.uuid4().hex[:8]}"
    for n in range(6):
        await sender.send(name, {"type": "thumb", "n": n})  # nobody receives yet

    assert [await receive(first, name) for _ in range(3)] == [{"type": "thumb", "n": n} for n in range(3)]
    waiting = [asyncio.create_task(receive(layer, name)) for layer in (first, second) for _ in range(3)]
    for n in range(6, 9):  # some arrive while the receivers wait
        await sender.send(name, {"type": "thumb", "n": n})

    taken = await asyncio.gather(*waiting)
    assert sorted(message["n"] for message in taken) == list(range(3, 9))  # each once, none lost
    assert (await backend.resources())["stored"] == 0


async def test_a_normal_channel_drops_expired_messages_silently(backend):
    backend.cannot("redis", REDIS_PUBSUB)
    sender, receiver = backend.layer(expiry=0.5), backend.layer()
    name = f"thumbnails.{uuid.uuid4().hex[:8]}"
    await sender.send(name, {"type": "stale"})
    await asyncio.sleep(0.6)  # what is under test: time passing beyond the expiry
    await sender.send(name, {"type": "fresh"})

    assert await receive(receiver, name) == {"type": "fresh"}


async def test_a_full_normal_channel_raises_channel_full_until_one_is_taken(backend):
    backend.cannot("redis", REDIS_PUBSUB + ", so it is never full")
    sender, receiver = backend.layer(capacity=2), backend.layer()
    name = f"thumbnails.{uuid.uuid4().hex[:8]}"
    for n in range(2):
        await sender.send(name, {"type": "thumb", "n": n})
    with pytest.raises(ChannelFull):
        await sender.send(name, {"type": "thumb", "n": 2})

    assert await receive(receiver, name) == {"type": "thumb", "n": 0}
    await sender.send(name, {"type": "thumb", "n": 2})
    assert [await receive(receiver, name) for _ in range(2)] == [{"type": "thumb", "n": n} for n in (1, 2)]

    await sender.send(name, {"type": "thumb", "n": 3})
    await sender.flush()  # Channels' flush: what waits on normal channels goes too
    assert (await backend.resources())["stored"] == 0


# Sync code: each async_to_sync call runs in an event loop of its own.


async def test_sync_code_uses_one_channel_across_async_to_sync_calls(backend):
    backend.cannot(
        "redis", "channels_redis keeps a channel's queue and subscription in the loop that made it"
    )
    peer = backend.peer("echo")
    peer_channel = (await peer_line(peer, "^channel ")).split()[1]
    layer, sender = backend.layer(), backend.layer()

    def management_command() -> list[dict[str, Any]]:
        mine = async_to_sync(layer.new_channel)()
        async_to_sync(layer.group_add)("sync.news", mine)
        async_to_sync(layer.send)(peer_channel, {"type": "echo.ask", "reply_to": mine, "n": 1})
        peer.wait_for("^replied 1$", TIMEOUT)  # the reply came while no event loop ran here
        async_to_sync(sender.group_send)("sync.news", {"type": "news"})
        return [async_to_sync(receive)(layer, mine) for _ in range(2)]

    assert await asyncio.to_thread(management_command) == [{"type": "echo.reply", "n": 1}, {"type": "news"}]


# Notifications the layer did not send.


def malformed_count() -> float:
    """What /metrics shows as channel_layer_malformed_total (tests/system/test_ops.py sees it there)."""
    (metric,) = layer_metrics.MALFORMED.collect()
    return next(s.value for s in metric.samples if s.name == layer_metrics.MALFORMED_NAME)


async def test_a_malformed_message_is_ignored_and_counted_and_the_connection_kept(backend):
    layer, sender = backend.layer(), backend.layer()
    channel = await layer.new_channel()
    await layer.group_add("hostile", channel)
    listener = await backend.listener_id()
    before = malformed_count()

    sent = await backend.inject(layer, channel, "hostile")  # as any database or Redis user may

    await sender.group_send("hostile", {"type": "after"})
    assert await receive(layer, channel) == {"type": "after"}
    assert malformed_count() - before == sent
    assert await backend.listener_id() == listener  # never dropped


def test_sync_code_group_sends_through_async_to_sync_and_leaves_no_connection(fresh_db):
    """A Django view's way: each call runs in a new event loop, closed after it."""
    peer = PostgresBackend({"conninfo": fresh_db}, fresh_db).peer("members", "from.sync", "2")
    try:
        peer.wait_for("^ready$", TIMEOUT)
        connections = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        with psycopg.connect(fresh_db, autocommit=True) as conn:
            before = conn.execute(connections).fetchone()

            layer = PostgresChannelLayer(conninfo=fresh_db)
            for n in range(3):
                async_to_sync(layer.group_send)("from.sync", {"type": "sync.item", "n": n})
                async_to_sync(layer.group_send)("from.sync", {"type": "sync.big", "n": n, "pad": "x" * 9000})

            for line in ["got 0 2", "got 1 2"]:
                peer.wait_for(f"^{line}$", TIMEOUT)
            deadline = time.monotonic() + TIMEOUT
            while (now := conn.execute(connections).fetchone()) != before:  # backends exit just after
                assert time.monotonic() < deadline, f"{now} connections, {before} before the sends"
                time.sleep(0.05)
    finally:
        peer.kill()
    assert sorted(line for line in peer.lines if line.startswith("got")) == sorted(
        f"got {i} {n}" for i in range(2) for n in range(3) for _ in range(2)
    )


async def test_postgres_stores_big_messages_once_and_cleans_them_up(fresh_db):
    sender, *receivers = layers = [PostgresChannelLayer(conninfo=fresh_db, expiry=1) for _ in range(3)]
    stored = PostgresBackend({}, fresh_db).resources
    try:
        members = [(r, await r.new_channel()) for r in receivers for _ in range(2)]  # 2 per process
        for receiver, channel in members:
            await receiver.group_add("big", channel)
        big = {"type": "big", "text": "x" * 20_000}

        await sender.group_send("big", big)
        for receiver, channel in members:
            assert await receive(receiver, channel) == big
        assert (await stored())["stored"] == 1  # one row, however many processes and members

        receiver, channel = members[0]
        await sender.send(channel, big)
        assert await receive(receiver, channel) == big
        assert (await stored())["stored"] == 1  # a channel's own message goes as it is read

        await asyncio.sleep(1.1)  # what is under test: the group message's expiry passing
        await sender.group_send("big", {**big, "type": "big.again"})
        assert (await stored())["stored"] == 1  # the expired row went, the new one is in
    finally:
        for layer in layers:
            await layer.flush()


async def test_postgres_names_fit_notify_identifiers_and_longer_ones_are_refused():
    layer = PostgresChannelLayer(conninfo="never used: names are checked first")
    names = {layer.address("g", "g" * 99), layer.address("c", "c" * 99), layer.address("p", uuid.uuid4().hex)}
    assert len(names) == 3
    assert all(re.fullmatch(r"[a-z]_[0-9a-f]{32}", name) for name in names)  # 34 of 63 bytes
    with pytest.raises(TypeError):
        await layer.group_send("g" * 100, {"type": "too.long"})
