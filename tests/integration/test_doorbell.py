"""The doorbell (cdc/doorbell.py): writers ring only while the relay sleeps, and a writer
that skipped the ring is still relayed without the poll timer, in every interleaving.

The real relay runs in the test's event loop with a poll interval of an hour, so a change
that only the poll timer would read fails the test by its timeout. Writers are psycopg
connections whose transactions the test opens and commits step by step; the relay is held
after a read, before it waits (`Relay.before_wait`), where the test says. What the relay
and each writer hold is read from pg_locks, as a DBA would.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import pytest
from channels.layers import InMemoryChannelLayer

from cdc import doorbell
from cdc.relay import Relay

Conn = psycopg.AsyncConnection[Any]
HOUR = 3600.0  # the poll interval: no read in these tests may come from the timer
TIMEOUT = 10.0
GATE = "cdc_listen doorbell"  # the application_name of the relay's lock-holding connection
LOCKS = """
SELECT l.mode, l.granted FROM pg_locks AS l
WHERE l.locktype = 'advisory' AND l.pid = %s
  AND (l.classid::bigint << 32) + l.objid::bigint = (SELECT cdc.doorbell_key())
"""


class Hold:
    """Holds the relay after each read, before it waits, while engaged: `reached()` returns
    once it is held there, with the event that lets it go on."""

    def __init__(self) -> None:
        self.engaged = True
        self._held: asyncio.Queue[asyncio.Event] = asyncio.Queue()
        self._all: list[asyncio.Event] = []

    async def here(self) -> None:
        if self.engaged:
            go = asyncio.Event()
            self._all.append(go)
            await self._held.put(go)
            await go.wait()

    async def reached(self) -> asyncio.Event:
        return await asyncio.wait_for(self._held.get(), TIMEOUT)

    async def step(self) -> None:
        """Once the relay is held, let it go on (to be held again after its next read)."""
        (await self.reached()).set()

    def release(self, go: asyncio.Event) -> None:
        self.engaged = False
        go.set()

    def release_all(self) -> None:
        self.engaged = False
        for go in self._all:
            go.set()


class Member:
    """A member of the articles group: the titles the relay handed on, in order."""

    def __init__(self, layer: InMemoryChannelLayer, channel: str) -> None:
        self.layer, self.channel = layer, channel

    async def titles(self, count: int) -> list[str]:
        titles: list[str] = []
        while len(titles) < count:
            message = await asyncio.wait_for(self.layer.receive(self.channel), TIMEOUT)
            titles += [json.loads(change["text"])["row"]["title"] for change in message["changes"]]
        return titles


Running = tuple[Relay, Hold, Member]


@pytest.fixture
async def relay(fresh_db: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Running]:
    # Every ring wakes the relay (none comes after it has waited an hour): the protocol of a
    # relay that writers keep busy. A test of rings that come apart sets it to 0.
    monkeypatch.setattr(doorbell, "SPARSE_RINGS", HOUR)
    layer = InMemoryChannelLayer()
    channel = await layer.new_channel()
    await layer.group_add("cdc.articles", channel)
    relay = Relay(fresh_db, layer=layer, name="doorbell-test", poll_interval=HOUR)
    hold = Hold()
    relay.before_wait = hold.here
    task = asyncio.create_task(relay.run())
    try:
        yield relay, hold, Member(layer, channel)
    finally:
        hold.release_all()
        relay.stop()
        await asyncio.wait_for(task, TIMEOUT)


@asynccontextmanager
async def writer(dsn: str) -> AsyncIterator[Conn]:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        yield conn


async def insert(conn: Conn, title: str) -> None:
    """An article inserted in `conn`'s open transaction (committed by the caller)."""
    await conn.execute("INSERT INTO article (title) VALUES (%s)", (title,))


async def doorbell_locks(aconn: Conn, pid: int) -> list[tuple[str, bool]]:
    cur = await aconn.execute(LOCKS, (pid,))
    return [(mode, granted) for mode, granted in await cur.fetchall()]


async def gate_pids(aconn: Conn) -> list[int]:
    cur = await aconn.execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND datname = current_database()",
        (GATE,),
    )
    return [pid for (pid,) in await cur.fetchall()]


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Ask Postgres again until `check` holds (a lock request shows in pg_locks soon after
    the relay sends it); fail after TIMEOUT."""
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {TIMEOUT}s: {what}")
        await asyncio.sleep(0.01)  # the polling interval of a question to pg_locks


async def gate_is(aconn: Conn, state: list[tuple[str, bool]]) -> None:
    async def check() -> bool:
        return [await doorbell_locks(aconn, pid) for pid in await gate_pids(aconn)] == [state]

    await until(check, f"the relay's doorbell lock is {state}")


HELD = [("ExclusiveLock", True)]  # asleep: writers ring
ASKED = [("ExclusiveLock", False)]  # falling asleep: waits for the writers that skipped the ring
FREE: list[tuple[str, bool]] = []  # awake: writers skip the ring
SKIPPED = [("ShareLock", True)]  # a writer that did not ring


async def asleep(hold: Hold, aconn: Conn) -> asyncio.Event:
    """From the relay's start to its last read before sleeping: held there."""
    await hold.step()  # the first read found nothing: it takes the lock, free
    go = await hold.reached()
    await gate_is(aconn, HELD)
    return go


async def wake(hold: Hold, aconn: Conn, ringer: Conn, title: str) -> asyncio.Event:
    """`ringer` writes while the relay sleeps, and rings: the relay wakes, lets go of the
    lock, reads, and is held after that read."""
    await insert(ringer, title)
    await ringer.commit()
    go = await hold.reached()
    await gate_is(aconn, FREE)
    return go


async def skip(aconn: Conn, skipper: Conn, title: str) -> None:
    """`skipper` writes while the relay is awake: it takes the lock shared, and does not ring."""
    await insert(skipper, title)
    assert await doorbell_locks(aconn, skipper.info.backend_pid) == SKIPPED


async def test_a_writer_that_skipped_the_ring_while_the_relay_read_is_read_before_it_sleeps(
    relay: Running, aconn: Conn, fresh_db: str
) -> None:
    _, hold, member = relay
    (await asleep(hold, aconn)).set()
    async with writer(fresh_db) as ringer, writer(fresh_db) as skipper:
        go = await wake(hold, aconn, ringer, "rang")  # held between that read and its wait
        await gate_is(aconn, FREE)
        assert await member.titles(1) == ["rang"]

        await skip(aconn, skipper, "skipped")
        hold.release(go)  # it reads again, finds nothing for a while, and asks for the lock
        await gate_is(aconn, ASKED)  # which waits for the writer that skipped
        await skipper.commit()
        assert await member.titles(1) == ["skipped"]  # read on the grant, not by the timer
    await gate_is(aconn, HELD)


async def test_a_writer_that_skipped_and_committed_before_the_relay_took_the_lock_is_read_last(
    relay: Running, aconn: Conn, fresh_db: str
) -> None:
    _, hold, member = relay
    (await asleep(hold, aconn)).set()
    async with writer(fresh_db) as ringer, writer(fresh_db) as skipper:
        go = await wake(hold, aconn, ringer, "rang")
        await skip(aconn, skipper, "skipped")
        go.set()
        go = await hold.reached()  # held after a read that found nothing: the skipper is open
        await skipper.commit()
        hold.release(go)  # the lock is free now: it takes it, reads once more, and sleeps
        assert await member.titles(2) == ["rang", "skipped"]
    await gate_is(aconn, HELD)


async def test_three_writers_committing_around_the_relay_falling_asleep(
    relay: Running, aconn: Conn, fresh_db: str
) -> None:
    _, hold, member = relay
    (await asleep(hold, aconn)).set()
    async with writer(fresh_db) as first, writer(fresh_db) as second, writer(fresh_db) as third:
        go = await wake(hold, aconn, first, "first rang")
        await skip(aconn, second, "second skipped, committed while the relay was held")
        await skip(aconn, third, "third skipped, committed last")
        await second.commit()
        hold.release(go)  # it reads "second", then nothing for a while, and asks for the lock
        await gate_is(aconn, ASKED)

        async with writer(fresh_db) as fourth:  # asks while the relay waits for the lock: rings
            await insert(fourth, "fourth rang while the relay waited for the lock")
            assert await doorbell_locks(aconn, fourth.info.backend_pid) == FREE
            await fourth.commit()
        assert await member.titles(3) == [
            "first rang",
            "second skipped, committed while the relay was held",
            "fourth rang while the relay waited for the lock",
        ]
        await gate_is(aconn, ASKED)  # still waiting for the third
        await third.commit()
        assert await member.titles(1) == ["third skipped, committed last"]
    await gate_is(aconn, HELD)


async def test_a_ring_while_the_relay_is_held_before_sleeping_wakes_it(
    relay: Running, aconn: Conn, fresh_db: str
) -> None:
    _, hold, member = relay
    go = await asleep(hold, aconn)  # it holds the lock, its last read done, not yet waiting
    async with writer(fresh_db) as late:
        await insert(late, "rang before the relay waited")
        assert await doorbell_locks(aconn, late.info.backend_pid) == FREE
        await late.commit()
    hold.release(go)
    assert await member.titles(1) == ["rang before the relay waited"]


async def test_writers_that_skip_while_the_relay_lost_its_lock_are_read_by_the_next_session(
    relay: Running, aconn: Conn, fresh_db: str
) -> None:
    _, hold, member = relay
    (await asleep(hold, aconn)).set()
    [gate] = await gate_pids(aconn)
    await aconn.execute("SELECT pg_terminate_backend(%s)", (gate,))

    async def gone() -> bool:
        return await gate_pids(aconn) == []

    await until(gone, "the relay's doorbell connection ended")
    async with writer(fresh_db) as skipper:
        await skip(aconn, skipper, "written while the relay had no lock")
        go = await hold.reached()  # the relay reconnected: its first read, without the change
        hold.release(go)
        await gate_is(aconn, ASKED)
        await skipper.commit()
        assert await member.titles(1) == ["written while the relay had no lock"]
    await gate_is(aconn, HELD)


async def test_an_awake_relay_that_keeps_finding_changes_reads_each_writer_without_the_timer(
    relay: Running, aconn: Conn, fresh_db: str
) -> None:
    _, hold, member = relay
    (await asleep(hold, aconn)).set()
    async with writer(fresh_db) as first, writer(fresh_db) as second, writer(fresh_db) as third:
        go = await wake(hold, aconn, first, "first rang")
        assert await member.titles(1) == ["first rang"]
        for skipper, title in ((second, "second skipped"), (third, "third skipped")):
            await skip(aconn, skipper, title)
            await skipper.commit()
            go.set()  # its read found a change: it paces (READ_EVERY), and reads again
            go = await hold.reached()
            assert await member.titles(1) == [title]
        hold.release(go)
    await gate_is(aconn, HELD)


async def test_a_relay_that_rings_come_to_apart_reads_each_and_keeps_the_writers_ringing(
    relay: Running, aconn: Conn, fresh_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, hold, member = relay
    monkeypatch.setattr(doorbell, "SPARSE_RINGS", 0.0)  # every ring comes late enough
    (await asleep(hold, aconn)).set()
    async with writer(fresh_db) as first, writer(fresh_db) as second:
        await insert(first, "first rang")
        assert await doorbell_locks(aconn, first.info.backend_pid) == FREE
        await first.commit()
        go = await hold.reached()  # the relay read on the ring, and did not let go
        await gate_is(aconn, HELD)
        assert await member.titles(1) == ["first rang"]

        await insert(second, "second rang too")  # so the lock did not let it skip
        assert await doorbell_locks(aconn, second.info.backend_pid) == FREE
        await second.commit()
        hold.release(go)  # back to sleep: woken by the second ring, not by the timer
        assert await member.titles(1) == ["second rang too"]
    await gate_is(aconn, HELD)


async def test_a_ring_that_came_while_the_relay_was_busy_wakes_it_however_long_ago_it_read(
    relay: Running, aconn: Conn, fresh_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Rings that come faster than the relay hands changes on: were they judged by the time
    # since the last read began, a slow hand-on would keep the relay asleep and every writer
    # ringing, which makes commits, and so hand-ons, slower still.
    _, hold, member = relay
    monkeypatch.setattr(doorbell, "SPARSE_RINGS", 0.0)  # the first ring comes late enough
    (await asleep(hold, aconn)).set()
    async with writer(fresh_db) as first, writer(fresh_db) as second:
        await insert(first, "first rang")
        await first.commit()
        go = await hold.reached()  # read on that ring, still asleep; now busy handing it on
        await gate_is(aconn, HELD)
        monkeypatch.setattr(doorbell, "SPARSE_RINGS", 0.5)  # far above a loaded loop's stall
        await insert(second, "second rang while the relay was busy")
        assert await doorbell_locks(aconn, second.info.backend_pid) == FREE
        await second.commit()
        await asyncio.sleep(2 * doorbell.SPARSE_RINGS)  # busy for longer than SPARSE_RINGS
        go.set()
        go = await hold.reached()  # held after the read on the second ring, as it left it
        await gate_is(aconn, FREE)  # the ring was waiting: writers come fast, it woke
        hold.release(go)
        assert await member.titles(2) == ["first rang", "second rang while the relay was busy"]
