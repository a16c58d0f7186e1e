"""The websocket load generator of bench/e2e.py and bench/load.py.

Each generator process holds many connections to daphne, each subscribed to `articles` as
tests/wsclient.py's real_socket opens them, and notes the key (the title) of every change
and the `time.monotonic()` it arrived. The orchestrating process drives them through a pipe:

    ("expect", first, count)  a step writes keys first .. first+count-1: say ("done",) once
                              every open connection has all of them (or has closed)
    ("harvest",)              answer ("harvest", Harvest) with what arrived since the last one
    ("stop",)                 close every connection and exit
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import time
from array import array
from collections import Counter
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from bench.e2e_system import raise_fd_limit
from tests.wsclient import real_socket

CONNECTS_AT_ONCE = 50  # per process: daphne and the database are not stormed by handshakes
READY_TIMEOUT = 180.0  # seconds for a process to open and subscribe all its connections


@dataclass
class Harvest:
    keys: array = field(default_factory=lambda: array("q"))  # key of each change received
    times: array = field(default_factory=lambda: array("d"))  # when it arrived (monotonic)
    in_window: list[int] = field(default_factory=list)  # per connection: expected keys received
    errors: int = 0  # `error` frames
    disconnects: int = 0  # connections the server closed or lost
    close_codes: Counter[int | None] = field(default_factory=Counter)  # of those disconnects
    disorder: int = 0  # changes not after the connection's previous one: repeats or reordering

    def merge(self, other: Harvest) -> None:
        self.keys.extend(other.keys)
        self.times.extend(other.times)
        self.in_window += other.in_window
        self.errors += other.errors
        self.disconnects += other.disconnects
        self.close_codes += other.close_codes
        self.disorder += other.disorder


class Generator:
    """The connections of one load-generator process."""

    def __init__(self, count: int, control: Connection) -> None:
        self.count = count
        self.control = control
        self.harvest = Harvest(in_window=[0] * count)
        self.last_key = [0] * count
        self.window = range(0)
        # Open connections that have not yet received every key of the window (counted, not
        # the last key: concurrent writers commit, and so deliver, out of key order).
        self.waiting = 0
        self.open = 0
        self.closing = False
        self.readers: list[asyncio.Task[None]] = []  # held: the loop keeps only weak references

    async def serve(self, port: int) -> None:
        commands: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        loop.add_reader(self.control.fileno(), lambda: commands.put_nowait(self._command()))
        async with AsyncExitStack() as stack:
            limit = asyncio.Semaphore(CONNECTS_AT_ONCE)
            await asyncio.gather(*(self._open(port, i, stack, limit) for i in range(self.count)))
            self.control.send(("ready", self.count))
            while (command := await commands.get())[0] != "stop":
                self._obey(command)
            self.closing = True
        loop.remove_reader(self.control.fileno())

    def _command(self) -> tuple[Any, ...]:
        try:
            return self.control.recv()
        except EOFError:  # the orchestrator is gone
            return ("stop",)

    def _obey(self, command: tuple[Any, ...]) -> None:
        if command[0] == "expect":
            first, count = command[1:]
            self.window = range(first, first + count)
            self.waiting = self.open
            self.harvest.in_window = [0] * self.count
        elif command[0] == "harvest":
            self.control.send(("harvest", self.harvest))
            self.harvest = Harvest(in_window=[0] * self.count)
            self.window, self.waiting = range(0), 0

    async def _open(self, port: int, index: int, stack: AsyncExitStack, limit: asyncio.Semaphore) -> None:
        async with limit:
            socket = await stack.enter_async_context(real_socket(port))
            await socket.subscribe("articles")
        self.open += 1
        self.readers.append(asyncio.create_task(self._read(index, socket.ws)))

    async def _read(self, index: int, ws: ClientConnection) -> None:
        try:
            async for frame in ws:
                self._note(index, frame, time.monotonic())
        except ConnectionClosed:
            pass
        self.open -= 1
        if self.closing:
            return
        self.harvest.disconnects += 1
        self.harvest.close_codes[ws.close_code] += 1
        if self.window and self.harvest.in_window[index] < len(self.window):
            self._one_less_waiting()  # it never will: the step need not wait for it

    def _one_less_waiting(self) -> None:
        self.waiting -= 1
        if self.waiting == 0:
            self.control.send(("done",))

    def _note(self, index: int, frame: str | bytes, now: float) -> None:
        message = orjson.loads(frame)
        if message["type"] == "error":
            self.harvest.errors += 1
        if message["type"] != "change":
            return
        key = int(message["row"]["title"])
        harvest = self.harvest
        harvest.keys.append(key)
        harvest.times.append(now)
        if key <= self.last_key[index]:
            harvest.disorder += 1
        self.last_key[index] = key
        if key in self.window:
            harvest.in_window[index] += 1
            if harvest.in_window[index] == len(self.window):
                self._one_less_waiting()


def generate(port: int, count: int, control: Connection) -> None:
    """A load-generator process's body."""
    raise_fd_limit()
    asyncio.run(Generator(count, control).serve(port))


class Clients:
    """The orchestrator's side: `total` connections spread over `processes` generator processes."""

    def __init__(self, port: int, total: int, processes: int) -> None:
        self.port = port
        self.total = total
        self.processes = max(1, min(processes, total))
        self.pipes: list[Connection] = []
        self.workers: list[mp.process.BaseProcess] = []

    def start(self) -> None:
        context = mp.get_context("spawn")
        n = self.processes
        for share in (self.total // n + (i < self.total % n) for i in range(n)):
            ours, theirs = context.Pipe()
            worker = context.Process(target=generate, args=(self.port, share, theirs), daemon=True)
            worker.start()
            theirs.close()
            self.pipes.append(ours)
            self.workers.append(worker)

    @property
    def pids(self) -> list[int]:
        return [w.pid for w in self.workers if w.pid is not None]

    def wait_ready(self) -> None:
        for pipe in self.pipes:
            self._receive(pipe, "ready", READY_TIMEOUT)

    def expect(self, first: int, count: int) -> None:
        for pipe in self.pipes:
            pipe.send(("expect", first, count))

    def wait_done(self, timeout: float) -> bool:
        """Until every connection has the step's last key (True), or `timeout` (False)."""
        deadline = time.monotonic() + timeout
        pending = list(self.pipes)
        while pending:
            ready = wait(pending, max(0.0, deadline - time.monotonic()))
            if not ready:
                return False
            for pipe in ready:
                self._receive(pipe, "done", 0)
                pending.remove(pipe)  # type: ignore[arg-type]
        return True

    def harvest(self) -> Harvest:
        merged = Harvest()
        for pipe in self.pipes:
            pipe.send(("harvest",))
        for pipe in self.pipes:
            reply = self._receive(pipe, "harvest", 60, skip=("done",))
            merged.merge(reply[1])
        return merged

    def stop(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):  # that process is already gone
                pipe.send(("stop",))
        for worker in self.workers:
            worker.join(30)
            if worker.is_alive():
                worker.terminate()
                worker.join()

    def _receive(
        self, pipe: Connection, kind: str, timeout: float, skip: tuple[str, ...] = ()
    ) -> tuple[Any, ...]:
        """The next message of `kind` from a generator; a late "done" of a timed-out step is
        skipped when `skip` says so."""
        while True:
            if not pipe.poll(timeout):
                raise TimeoutError(f"no {kind!r} from a load generator in {timeout}s")
            try:
                message = pipe.recv()
            except EOFError:
                raise RuntimeError("a load-generator process died (see its traceback above)") from None
            if message[0] == kind:
                return message
            if message[0] not in skip:
                raise RuntimeError(f"load generator said {message!r}, expected {kind!r}")


@contextmanager
def clients(port: int, total: int, processes: int) -> Iterator[Clients]:
    """`total` subscribed connections to daphne on `port`, stopped on exit."""
    pool = Clients(port, total, processes)
    try:
        pool.start()
        pool.wait_ready()
        yield pool
    finally:
        pool.stop()
