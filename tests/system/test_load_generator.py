"""The benchmark's light load generator (bench/e2e_clients.py) with real processes and sockets:
against a `websockets` server that scripts what the server says, and against real daphne."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosedError
from websockets.sync.server import ServerConnection, serve

from bench.e2e_clients import ACK_BYTES, ACK_EVERY, Harvest, clients
from testkit.live_servers import live_system
from testkit.pg import psql

pytestmark = pytest.mark.timeout(120)
TIMEOUT = 10.0


def change(key: int, body: str = "") -> str:
    row = {"id": key, "title": str(key), "body": body}
    return json.dumps({"type": "change", "stream": "articles", "op": "insert", "id": key, "row": row})


Script = Callable[[ServerConnection, threading.Event], None]


@contextmanager
def scripted_server(script: Script) -> Iterator[tuple[int, queue.Queue[Any], threading.Event]]:
    """A websockets server on a free port running `script` for each connection, with an event
    the test sets once the generator knows which keys to expect (changes sent before it would
    fall outside the window); the queue gets every frame a client sent after the script ended,
    until it closed (or what the script raised)."""
    heard: queue.Queue[Any] = queue.Queue()
    expecting = threading.Event()

    def handler(ws: ServerConnection) -> None:
        try:
            script(ws, expecting)
            heard.put([json.loads(frame) for frame in ws])
        except Exception as error:  # shown by the test, not lost in the server's thread
            heard.put(error)

    with serve(handler, "127.0.0.1", 0, compression=None, ping_interval=None) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield server.socket.getsockname()[1], heard, expecting
        server.shutdown()
    thread.join(TIMEOUT)


def receive(ws: ServerConnection) -> dict[str, Any]:
    return dict(json.loads(ws.recv(TIMEOUT)))


def subscribed(ws: ServerConnection, expecting: threading.Event) -> None:
    """Answer the subscription, then wait until the generator has been told what to expect.
    A ping answered after that is read after the command too: it was on the generator's
    epoll first."""
    assert receive(ws) == {"type": "subscribe", "stream": "articles"}
    ws.send(json.dumps({"type": "subscribed", "stream": "articles", "position": "1:0"}))  # message 1
    assert expecting.wait(TIMEOUT)
    assert ws.ping(b"are you there").wait(TIMEOUT)  # the client answers pings


def acks_until_refused(ws: ServerConnection, expecting: threading.Event) -> None:
    subscribed(ws, expecting)
    for key in range(1, ACK_EVERY):  # messages 2 .. 32
        ws.send(change(key))
    assert receive(ws) == {"type": "ack", "received": ACK_EVERY}
    ws.send(change(ACK_EVERY, body="x" * ACK_BYTES))  # message 33: past the bytes an ack waits for
    assert receive(ws) == {"type": "ack", "received": ACK_EVERY + 1}
    ws.send(json.dumps({"type": "error", "code": "bad_message", "message": "'type' must be one of …"}))
    ws.send(['{"type": ', '"pong"}'])  # a fragmented message: not a change, but counted
    for key in range(ACK_EVERY + 1, 4 * ACK_EVERY + 1):  # no acks any more
        ws.send(change(key))


def harvested(port: int, keys: int, expecting: threading.Event) -> Harvest:
    """What one generator connection received of keys 1 .. `keys`."""
    with clients(port, 1, 1) as pool:
        pool.expect(1, keys)
        expecting.set()
        assert pool.wait_done(TIMEOUT)
        return pool.harvest()


def test_it_acks_every_32_messages_or_256_kib_until_the_server_refuses_acks() -> None:
    with scripted_server(acks_until_refused) as (port, heard, expecting):
        harvest = harvested(port, 4 * ACK_EVERY, expecting)
        after = heard.get(timeout=TIMEOUT)
    assert after == []  # nothing but its close after the refusal: no more acks
    assert list(harvest.keys) == list(range(1, 4 * ACK_EVERY + 1))
    assert harvest.in_window == [4 * ACK_EVERY]
    assert (harvest.acks_refused, harvest.errors, harvest.disconnects, harvest.disorder) == (1, 0, 0, 0)


def closes_with_try_again_later(ws: ServerConnection, expecting: threading.Event) -> None:
    subscribed(ws, expecting)
    ws.send(change(1))
    ws.send(json.dumps({"type": "error", "code": "rate_limited", "message": "slow down"}))
    ws.close(4013, "try again later")


def test_errors_and_a_close_by_the_server_are_counted() -> None:
    with scripted_server(closes_with_try_again_later) as (port, heard, expecting):
        harvest = harvested(port, 2, expecting)  # key 2 never comes: the closed connection is not waited for
        ended = heard.get(timeout=TIMEOUT)
    assert isinstance(ended, ConnectionClosedError)  # not 1000: the server's iteration raises
    assert ended.rcvd is not None
    assert ended.rcvd.code == 4013  # the client echoed the close
    assert list(harvest.keys) == [1]
    assert (harvest.errors, harvest.acks_refused, harvest.disconnects) == (1, 0, 1)
    assert harvest.close_codes == {4013: 1}


def test_every_change_reaches_every_connection_through_daphne(fresh_db: str) -> None:
    rows = 2 * ACK_EVERY  # the connections ack (or learn that daphne knows no acks)
    with live_system(fresh_db) as system, clients(system.port, 3, 2) as pool:
        pool.expect(1, rows)
        psql(fresh_db, f"INSERT INTO article (title) SELECT g::text FROM generate_series(1, {rows}) g")
        assert pool.wait_done(30)
        harvest = pool.harvest()
    assert sorted(harvest.keys) == sorted(list(range(1, rows + 1)) * 3)
    assert harvest.in_window == [rows] * 3
    assert (harvest.errors, harvest.disconnects, harvest.disorder) == (0, 0, 0)
