"""The websocket load generator of bench/e2e.py and bench/load.py.

Each generator process holds many connections to daphne, each subscribed to `articles` as
testkit/wsclient.py's real_socket opens them (Host and Origin of 127.0.0.1:port), and notes
the key (the title) of every change and the `time.monotonic()` it arrived. It is a light
client, so that the benchmark measures the server rather than itself: non-blocking sockets
on one epoll, the small codec of bench/wsframe.py, the key found by a scan of the frame.

Every ACK_EVERY messages, or ACK_BYTES of them, a connection says how many messages it has
received (`{"type": "ack", "received": N}`), so that a server can tell a client that keeps
up from one that does not. A server that does not know acks answers `bad_message`: such
answers are counted apart (Harvest.acks_refused) and that connection stops acking.

The orchestrating process drives the generators through a pipe:

    ("expect", first, count)  a step writes keys first .. first+count-1: say ("done",) once
                              every open connection has all of them (or has closed)
    ("harvest",)              answer ("harvest", Harvest) with what arrived since the last one
    ("stop",)                 close every connection and exit
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import select
import socket
import time
from array import array
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

import orjson

from bench import wsframe
from bench.e2e_system import raise_fd_limit

CONNECTS_AT_ONCE = 50  # per process: daphne and the database are not stormed by handshakes
READY_TIMEOUT = 180.0  # seconds for a process to open and subscribe all its connections
CONNECT_TIMEOUT = 10.0  # seconds for one TCP connect and upgrade request
PATH = "/ws/live/"
SUBSCRIBE = orjson.dumps({"type": "subscribe", "stream": "articles"})
ACK_EVERY, ACK_BYTES = 32, 256 * 1024  # messages, bytes of them, between acks
RECV_BYTES = 256 * 1024  # read at once, at most
MAX_UNSENT = 1024 * 1024  # bytes a connection may hold unwritten: past it, it is dropped
CLOSE_ABNORMAL = 1006  # the connection ended without a close frame (RFC 6455 section 7.4.1)
CHANGE_STARTS = (b'{"type": "change"', b'{"type":"change"')  # as json.dumps and orjson write it


@dataclass
class Harvest:
    keys: array[int] = field(default_factory=lambda: array("q"))  # key of each change received
    times: array[float] = field(default_factory=lambda: array("d"))  # when it arrived (monotonic)
    in_window: list[int] = field(default_factory=list)  # per connection: expected keys received
    errors: int = 0  # `error` frames
    disconnects: int = 0  # connections the server closed or lost
    close_codes: Counter[int | None] = field(default_factory=Counter)  # of those disconnects
    disorder: int = 0  # changes not after the connection's previous one: repeats or reordering
    acks_refused: int = 0  # `bad_message` errors answering acks (a server that knows none)

    def merge(self, other: Harvest) -> None:
        self.keys.extend(other.keys)
        self.times.extend(other.times)
        self.in_window += other.in_window
        self.errors += other.errors
        self.disconnects += other.disconnects
        self.close_codes += other.close_codes
        self.disorder += other.disorder
        self.acks_refused += other.acks_refused


class Link:
    """One websocket connection of a generator."""

    __slots__ = (
        "acked",
        "acking",
        "fd",
        "head",
        "index",
        "key",
        "last_key",
        "parser",
        "received",
        "sock",
        "subscribed",
        "unacked_bytes",
        "unsent",
    )

    def __init__(self, index: int, sock: socket.socket, key: str) -> None:
        self.index = index  # in the generator's Harvest.in_window
        self.sock = sock
        self.fd = sock.fileno()
        self.key = key  # the upgrade's Sec-WebSocket-Key
        self.head: bytes | None = b""  # the upgrade answer so far; None once upgraded
        self.parser = wsframe.Parser()
        self.subscribed = False
        self.last_key = 0  # of the last change received
        self.received = 0  # messages since the upgrade, of every type: what an ack counts
        self.acked = 0  # `received` at the last ack (0: none sent yet)
        self.unacked_bytes = 0  # of the messages received since
        self.acking = True
        self.unsent = bytearray()  # what the socket did not take yet


class Generator:
    """The connections of one load-generator process: non-blocking sockets on one epoll."""

    def __init__(self, port: int, count: int, control: Connection) -> None:
        self.port = port
        self.count = count
        self.control = control
        self.harvest = Harvest(in_window=[0] * count)
        self.window = range(0)
        # Open connections that have not yet received every key of the window (counted, not
        # the last key: concurrent writers commit, and so deliver, out of key order).
        self.waiting = 0
        self.open = 0  # subscribed and not lost
        self.started = 0
        self.links: dict[int, Link] = {}  # by file descriptor
        self.poller = select.epoll()
        self.running = True

    def serve(self) -> None:
        control = self.control.fileno()
        self.poller.register(control, select.EPOLLIN)
        for _ in range(min(CONNECTS_AT_ONCE, self.count)):
            self._connect()
        while self.running:
            for fd, events in self.poller.poll():
                if fd == control:
                    self._command()
                elif (link := self.links.get(fd)) is not None:
                    self._ready(link, events)
        for link in self.links.values():
            with contextlib.suppress(OSError):
                link.sock.send(wsframe.close_frame())
            link.sock.close()
        self.poller.close()

    def _command(self) -> None:
        try:
            command = self.control.recv()
        except EOFError:  # the orchestrator is gone
            command = ("stop",)
        if command[0] == "expect":
            first, count = command[1:]
            self.window = range(first, first + count)
            self.waiting = self.open
            self.harvest.in_window = [0] * self.count
            if not self.waiting:  # every connection closed already: nothing to wait for
                self.control.send(("done",))
        elif command[0] == "harvest":
            self.control.send(("harvest", self.harvest))
            self.harvest = Harvest(in_window=[0] * self.count)
            self.window, self.waiting = range(0), 0
        elif command[0] == "stop":
            self.running = False

    def _connect(self) -> None:
        """Open the next connection and ask for the upgrade; its answer arrives on the epoll."""
        host = f"127.0.0.1:{self.port}"
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=CONNECT_TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = wsframe.new_key()
        sock.sendall(wsframe.upgrade_request(host, PATH, f"http://{host}", key))
        sock.setblocking(False)
        link = Link(self.started, sock, key)
        self.started += 1
        self.links[link.fd] = link
        self.poller.register(link.fd, select.EPOLLIN)

    def _ready(self, link: Link, events: int) -> None:
        if events & select.EPOLLOUT:
            self._flush(link)
        if not events & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR):
            return
        try:
            data = link.sock.recv(RECV_BYTES)
        except BlockingIOError:
            return
        except OSError:  # reset by the server
            data = b""
        if not data:
            self._lost(link, CLOSE_ABNORMAL)
            return
        now = time.monotonic()  # one read's messages arrived together
        if link.head is not None:
            data = self._upgrade(link, link.head + data)
        for opcode, payload in link.parser.feed(data):
            if opcode == wsframe.OP_TEXT:
                self._text(link, payload, now)
            elif opcode == wsframe.OP_PING:
                self._send(link, wsframe.encode(wsframe.OP_PONG, payload))
            elif opcode == wsframe.OP_CLOSE:
                self._send(link, wsframe.encode(wsframe.OP_CLOSE, payload[:2]))  # its code echoed
                self._lost(link, wsframe.close_code(payload))
                return

    def _upgrade(self, link: Link, head: bytes) -> bytes:
        """The frames after the upgrade answer (none while it is incomplete); on it, subscribe."""
        frames = wsframe.split_upgrade(head, link.key)
        if frames is None:
            link.head = head
            return b""
        link.head = None
        self._send(link, wsframe.encode(wsframe.OP_TEXT, SUBSCRIBE))
        return frames

    def _text(self, link: Link, payload: bytes, now: float) -> None:
        link.received += 1
        link.unacked_bytes += len(payload)
        found = key_or_message(payload)
        if isinstance(found, int):
            self._change(link, found, now)
        else:
            self._other(link, found)
        if link.acking and (link.received - link.acked >= ACK_EVERY or link.unacked_bytes > ACK_BYTES):
            link.acked, link.unacked_bytes = link.received, 0
            self._send(link, wsframe.encode(wsframe.OP_TEXT, b'{"type":"ack","received":%d}' % link.received))

    def _change(self, link: Link, key: int, now: float) -> None:
        harvest = self.harvest
        harvest.keys.append(key)
        harvest.times.append(now)
        if key <= link.last_key:
            harvest.disorder += 1
        link.last_key = key
        if key in self.window:
            harvest.in_window[link.index] += 1
            if harvest.in_window[link.index] == len(self.window):
                self._one_less_waiting()

    def _other(self, link: Link, message: dict[str, Any]) -> None:
        if not link.subscribed:
            if message["type"] != "subscribed":
                raise RuntimeError(f"subscribe answered {message}")
            self._subscribed(link)
        elif message["type"] == "error":
            if message["code"] == "bad_message" and link.acked:  # we send nothing else after subscribe
                link.acking = False
                self.harvest.acks_refused += 1
            else:
                self.harvest.errors += 1

    def _subscribed(self, link: Link) -> None:
        link.subscribed = True
        self.open += 1
        if self.started < self.count:
            self._connect()
        elif self.open == self.count:
            self.control.send(("ready", self.count))

    def _lost(self, link: Link, code: int) -> None:
        """The server closed `link` (with `code`) or the connection broke (1006)."""
        self.poller.unregister(link.fd)
        del self.links[link.fd]
        link.sock.close()
        if not link.subscribed:
            raise RuntimeError(f"connection {link.index} ended ({code}) before it was subscribed")
        self.open -= 1
        self.harvest.disconnects += 1
        self.harvest.close_codes[code] += 1
        if self.window and self.harvest.in_window[link.index] < len(self.window):
            self._one_less_waiting()  # it never will: the step need not wait for it

    def _one_less_waiting(self) -> None:
        self.waiting -= 1
        if self.waiting == 0:
            self.control.send(("done",))

    def _send(self, link: Link, data: bytes) -> None:
        """Write what the socket takes now; the rest when epoll says it can take more. Errors
        are left to the reading side, which sees the connection end."""
        if not link.unsent:
            try:
                data = data[link.sock.send(data) :]
            except BlockingIOError:
                pass
            except OSError:
                return
            if not data:
                return
            self.poller.modify(link.fd, select.EPOLLIN | select.EPOLLOUT)
        link.unsent += data
        if len(link.unsent) > MAX_UNSENT:  # the server does not read: end it, reading sees the end
            with contextlib.suppress(OSError):
                link.sock.shutdown(socket.SHUT_RDWR)

    def _flush(self, link: Link) -> None:
        try:
            sent = link.sock.send(link.unsent)
        except BlockingIOError:
            return
        except OSError:  # reading sees the end
            sent = len(link.unsent)
        del link.unsent[:sent]
        if not link.unsent:
            self.poller.modify(link.fd, select.EPOLLIN)


def key_or_message(payload: bytes) -> int | dict[str, Any]:
    """A change's key (its row's title, the first `"title":` after `"row":`: JSON escapes every
    quote inside a string), or any other message parsed. The scan costs about two thirds of
    orjson.loads on a 250-byte change; anything it does not recognise is parsed."""
    if payload.startswith(CHANGE_STARTS):
        at = payload.find(b'"title":', payload.find(b'"row":'))
        if at >= 0:
            start = payload.index(b'"', at + 8) + 1
            return int(payload[start : payload.index(b'"', start)])
    message: dict[str, Any] = orjson.loads(payload)
    return int(message["row"]["title"]) if message["type"] == "change" else message


def generate(port: int, count: int, control: Connection) -> None:
    """A load-generator process's body."""
    raise_fd_limit()
    Generator(port, count, control).serve()


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
                assert isinstance(pipe, Connection)  # wait() gives back what it was given
                self._receive(pipe, "done", 0)
                pending.remove(pipe)
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
                message: tuple[Any, ...] = pipe.recv()
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
