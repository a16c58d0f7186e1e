"""How the leading relay waits for changes, and when writers ring for it.

The doorbell is NOTIFY: cheap for one writer, but Postgres commits every notifying
transaction under one lock for the whole server, held through the commit's WAL flush, so
concurrent writers that all ring commit one at a time. Writers therefore ring only while the
relay sleeps, and the relay shows that it sleeps by holding the doorbell lock (an advisory
lock on `cdc.doorbell_key()`) on a second connection of its own, the gate:

- asleep: the gate holds the lock; the trigger (migrations_sql/0005) cannot take it shared
  and rings. A ring, or the poll timer, wakes the relay: it reads. While rings come apart
  (the relay lay waiting SPARSE_RINGS or longer before one came) the gate keeps the lock,
  and the relay reads on each ring and sleeps again: at such a pace no two rings contend,
  and one read per change is all the relay spends. A ring sooner than that, or one that
  came while the relay was busy, means writers come fast: the gate lets go, and the relay
  is awake.
- awake: the trigger takes the lock shared, to the end of its transaction, and does not
  ring. The relay reads again as long as reads find changes, READ_EVERY after the last read
  began: back to back, a read took a change or two, and the relay's reading cost the server
  more CPU per change than the writers' capture did (docs/benchmarks.md, capture).
- falling asleep: after a read that found nothing, the gate tries the lock. Taken, no
  writer that skipped the ring is still open: the relay reads once more, and sleeps. Not
  taken, some are: the relay stays awake and reads again (after POLL_WHILE_OPEN), as
  writers in flight commit in groups a flush apart. After LINGER of that, the gate asks
  for the lock instead: Postgres grants it once every writer holding it shared has ended,
  and meanwhile makes new writers' tries fail, so they ring; the relay reads on those rings
  while it waits, and once the lock is granted it reads once more, and sleeps.

So a writer that skipped the ring has ended before the relay's last read before sleeping:
its change is read without the poll timer (docs/architecture.md, "The doorbell"). The lock
dies with the gate; a relay whose gate is lost restarts its session (and the first request
of the next gate waits for the writers that skipped meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from psycopg import AsyncConnection, sql

from cdc.backoff import pause
from cdc.sql import query

# The NOTIFY channel the capture trigger rings (migrations_sql/0005_doorbell_lock.sql writes
# it as a literal; testkit/pg.py's Doorbell listens here, so the tests that count rings check
# that the two agree).
CHANNEL = "cdc"
LISTEN = sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL))
# The gate's application_name: what pg_stat_activity and pg_locks show it as.
GATE_NAME = "cdc_listen doorbell"
# Awake, after a read that found nothing while writers that skipped the ring are open: the
# pause before reading again, and how long to keep that up before asking for the lock
# (a writer open longer, idle in its transaction say, makes the others ring meanwhile).
POLL_WHILE_OPEN = 0.001
LINGER = 0.02
# Awake, after a read that found changes: the next read begins this long after it began (at
# once if handing them on took longer), a millisecond on average added to a change's way.
READ_EVERY = 0.002
# Asleep, a ring that comes after the relay has waited this long does not wake it: rings that
# far apart do not queue behind each other's commit, and reading on each costs the relay less
# than waking, reading until a read finds nothing, and falling asleep again. Measured from the
# start of the wait, not of the last read, so that rings which come faster than the relay
# hands changes on always wake it (docs/architecture.md, "The doorbell").
SPARSE_RINGS = 0.005


class Doorbell:
    """The relay's side of the doorbell. `listening` is the connection that LISTENs for
    rings (and reads); `gate` holds the lock; every wait ends after `poll_interval` seconds,
    or when `stopping` is set."""

    def __init__(
        self,
        listening: AsyncConnection[Any],
        gate: AsyncConnection[Any],
        poll_interval: float,
        stopping: asyncio.Event,
    ) -> None:
        self.listening = listening
        self.gate = gate
        self.poll_interval = poll_interval
        self.stopping = stopping
        self.asleep = False
        self._request: asyncio.Task[Any] | None = None  # falling asleep: the gate's lock request
        self._empty_since: float | None = None  # awake: when reads began to find nothing
        self._waking: asyncio.Task[Any] | None = None  # the gate letting go, beside the read
        self._read_at = 0.0  # when the last wait returned: the last read began

    @classmethod
    async def open(
        cls, conninfo: str, listening: AsyncConnection[Any], poll_interval: float, stopping: asyncio.Event
    ) -> Doorbell:
        gate = await AsyncConnection.connect(conninfo, autocommit=True, application_name=GATE_NAME)
        return cls(listening, gate, poll_interval, stopping)

    async def close(self) -> None:
        """Let go of the lock (with the gate): writers stop ringing."""
        for task in (self._request, self._waking):
            if task is not None:
                task.cancel()
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await task
        await self.gate.close()

    async def wait(self, found: bool) -> None:
        """Called after a read that caught up (`found`: it found changes); returns when the
        next read is due: READ_EVERY after the last began, on a ring, when the gate is granted
        the lock, or after the poll interval (a lost ring only delays)."""
        if self._waking is not None:  # done by now, as a rule; raises if the gate failed
            waking, self._waking = self._waking, None
            await waking
        if self.asleep:
            await self._sleep()
        elif self._request is not None:
            await self._fall_asleep()
        elif found:
            self._empty_since = None
            await pause(self.stopping, self._read_at + READ_EVERY - self._now())
            await self._drain()  # the next read serves the rings that came meanwhile
        else:
            await self._try_to_sleep()
        self._read_at = self._now()

    async def _try_to_sleep(self) -> None:
        now = self._now()
        self._empty_since = self._empty_since or now
        cur = await self.gate.execute(query("doorbell_try_sleep"))
        if (await cur.fetchone()) == (True,):
            self._empty_since = None
            self.asleep = True  # the read that follows is the last before sleeping
        elif now - self._empty_since < LINGER:
            await pause(self.stopping, POLL_WHILE_OPEN)
        else:
            self._empty_since = None
            await self._fall_asleep()
        await self._drain()

    async def _fall_asleep(self) -> None:
        if self._request is None:
            self._request = asyncio.create_task(self.gate.execute(query("doorbell_sleep")))
        if await self._first(self._request):
            self._request = None
            self.asleep = True  # the read that follows is the last before sleeping
        await self._drain()

    async def _sleep(self) -> None:
        began = self._now()
        gate_lost = asyncio.create_task(self._gate_lost())
        try:
            await self._first(gate_lost)
        finally:
            await _cancelled(gate_lost)
        if self._now() - began < SPARSE_RINGS:
            # Letting go need not come before the read (writers ring meanwhile, which is only
            # wasted), so it runs beside it, off the path from a commit to its reader.
            self._waking = asyncio.create_task(self.gate.execute(query("doorbell_wake")))
            self.asleep = False
        await self._drain()

    async def _first(self, task: asyncio.Task[Any]) -> bool:
        """Wait for a ring, `task`, a stop or the poll interval; whether `task` finished. Raises
        what a connection raised."""
        ring = asyncio.create_task(_next_ring(self.listening))
        stop = asyncio.create_task(self.stopping.wait())
        try:
            done, _ = await asyncio.wait(
                {ring, stop, task}, timeout=self.poll_interval, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            await _cancelled(ring)
            await _cancelled(stop)
        for finished in done & {ring, task}:
            finished.result()
        return task in done

    async def _gate_lost(self) -> None:
        """Returns never; raises when the gate's connection ends (the lock goes with it)."""
        async for _ in self.gate.notifies():  # the gate LISTENs to nothing: this waits on its socket
            pass
        raise ConnectionError("the doorbell's connection closed")

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    async def _drain(self) -> None:
        async for _ in self.listening.notifies(timeout=0):
            pass


async def _next_ring(conn: AsyncConnection[Any]) -> None:
    async for _ in conn.notifies(stop_after=1):
        pass


async def _cancelled(task: asyncio.Task[Any]) -> None:
    """Cancel a helper task that still runs, and wait until it has let go of its connection
    (a task that finished is its caller's to read)."""
    if task.done():
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
