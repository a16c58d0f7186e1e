"""Fault-injection soak: nothing is lost, nothing arrives twice, everything in commit order.

The whole system on a Postgres server of the soak's own (it restarts it): two `cdc_listen`
(a leader and a standby), one web server, writers inserting, updating and deleting through
psycopg, and resuming websocket clients (bench/soak_client.py) recording what they get.
Meanwhile, one fault at a time on a schedule: kill -9 the leader (a new standby replaces
it, as systemd or compose would), `pg_terminate_backend` the listener's and the channel
layer's connections, restart the web server, and, once, restart Postgres. After each fault a probe
change is written, and its recovery time is how long until every client has it.

At the end every client's record must equal the change log's committed changes for its
subscriptions, in the log's order, from where the client first subscribed: none missing,
none twice. Every write the server confirmed must be in the log.

    .venv/bin/python -m bench.soak [--seconds 600] [--clients 50] [--rate 40]

tests/system/test_soak.py runs it for 60 seconds in the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from bench.common import machine_facts, markdown_table, write_results
from bench.soak_client import Client, clients_for
from bench.soak_writers import ARTICLE, POST, SOURCE, Writer, write_marker
from testkit.pg import DisposableServer
from testkit.probes import get, poll
from testkit.processes import Process, cdc_listen, free_port, migrate, web_process

RECOVERY_TIMEOUT = 60.0  # seconds a probe may take to reach every client before it counts as lost
STREAMS = {ARTICLE: "articles", POST: "posts"}
ROLE = re.compile(r"leader gained|leader lost|standing by")
Position = tuple[int, int]


class System:
    """The running processes, and the faults the soak injects into them."""

    def __init__(self, server: DisposableServer) -> None:
        self.server = server
        self.dsn = server.dsn
        self.port = free_port()
        self.started = 0
        self.listeners = [self._listener(), self._listener()]
        self.web = web_process(self.dsn, self.port)
        self.listeners[0].wait_for("leader gained|standing by")
        self.wait_for_leader()
        self._wait_web()

    def _listener(self) -> Process:
        self.started += 1
        return cdc_listen(self.dsn, "--poll-interval", "0.2", name=f"cdc_listen-{self.started}")

    def _wait_web(self) -> None:
        poll(lambda: get(f"http://127.0.0.1:{self.port}/healthz")[0], lambda status: status in (200, 503))

    def leader(self) -> Process | None:
        """The running listener whose latest role line says it leads."""
        for process in self.listeners:
            roles = [line for line in process.lines if ROLE.search(line)]
            if process.popen.poll() is None and roles and "leader gained" in roles[-1]:
                return process
        return None

    def wait_for_leader(self) -> Process:
        return poll(self.leader, lambda leader: leader is not None)  # type: ignore[return-value]

    # The faults: each returns once the fault is in place, not once it is repaired.

    def kill_leader(self) -> None:
        leader = self.wait_for_leader()
        leader.kill()
        self.listeners.remove(leader)
        self.listeners.append(self._listener())

    def terminate_listener_connection(self) -> None:
        self._terminate("cdc_listen")

    def terminate_layer_connections(self) -> None:
        self._terminate("channel-layer listen")

    def restart_web(self) -> None:
        self.web.stop()
        self.web = web_process(self.dsn, self.port)

    def restart_postgres(self) -> None:
        self.server.restart()

    def _terminate(self, application_name: str) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                (application_name,),
            )

    def stop(self) -> None:
        for process in [self.web, *self.listeners]:
            process.stop()


@dataclass
class Report:
    seconds: float
    clients: int
    transactions: int = 0
    confirmed_changes: int = 0
    logged_changes: int = 0
    deliveries: int = 0
    client_reconnects: int = 0
    unavailable_retries: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    recoveries: dict[str, list[float]] = field(default_factory=dict)  # seconds, by fault
    problems: list[str] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)

    def table(self) -> str:
        rows: list[tuple[str, object]] = [
            ("duration (s)", f"{self.seconds:.0f}"),
            ("websocket clients", self.clients),
            ("write transactions confirmed", self.transactions),
            ("changes confirmed to writers", self.confirmed_changes),
            ("changes in the log", self.logged_changes),
            ("changes delivered to clients", self.deliveries),
            ("faults injected", ", ".join(f"{kind}: {n}" for kind, n in sorted(self.faults.items()))),
            *((f"recovery after {kind}: median / max (s)", _spread(t)) for kind, t in self._recoveries()),
            ("client reconnects", self.client_reconnects),
            ("subscribes retried (database unavailable)", self.unavailable_retries),
            ("problems", len(self.problems)),
        ]
        return markdown_table(["soak", "figure"], rows)

    def _recoveries(self) -> list[tuple[str, list[float]]]:
        return sorted(self.recoveries.items())


def _spread(seconds: list[float]) -> str:
    return f"{statistics.median(seconds):.2f} / {max(seconds):.2f}"


async def soak(seconds: float, clients: int = 50, rate: float = 40.0) -> Report:
    """Run the soak for `seconds` and check what every client received."""
    report = Report(seconds, clients)
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        server = DisposableServer(Path(tmp) / "data")
        try:
            migrate(server.dsn)
            report.machine = machine_facts(server.dsn)
            authors = create_authors(server.dsn)
            progress("starting two cdc_listen and the web server")
            system = await asyncio.to_thread(System, server)
            try:
                run = await _run(system, authors, report, clients, rate)
            finally:
                await asyncio.to_thread(system.stop)
            check(report, run, read_log(server.dsn))
        finally:
            server.cleanup()
    return report


@dataclass
class Run:
    clients: list[Client]
    writers: list[Writer]


async def _run(system: System, authors: list[int], report: Report, count: int, rate: float) -> Run:
    specs: list[dict[str, dict[str, Any]]] = [
        {"articles": {}},
        {"articles": {"category": "tech"}},
        {"posts": {}},
        {"posts": {"author_id": authors[0]}},
        {"articles": {"source": SOURCE}, "posts": {}},
    ]
    origin = f"http://127.0.0.1:{system.port}"
    run = Run(
        clients_for(count, f"ws://127.0.0.1:{system.port}/ws/live/", origin, specs),
        [Writer(system.dsn, authors, rate / 2, seed) for seed in (1, 2)],
    )
    stop_clients, stop_writers = asyncio.Event(), asyncio.Event()
    tasks = [asyncio.create_task(c.run(stop_clients)) for c in run.clients]
    try:
        await _until_subscribed(run.clients)
        progress("clients subscribed; writers start")
        tasks += [asyncio.create_task(w.run(stop_writers)) for w in run.writers]
        await _inject_faults(system, run.clients, authors[0], report)
        stop_writers.set()
        try:
            await _recover(system.dsn, run.clients, authors[0], "final")
        except TimeoutError:
            report.problems.append(f"the final marker did not reach every client in {RECOVERY_TIMEOUT:g}s")
    finally:
        stop_writers.set()
        stop_clients.set()
        await asyncio.gather(*tasks)
    return run


async def _until_subscribed(clients: list[Client]) -> None:
    deadline = time.monotonic() + 30
    while not all(s.start for c in clients for s in c.subscriptions.values()):
        if time.monotonic() > deadline:
            raise TimeoutError("the clients did not all subscribe within 30s")
        await asyncio.sleep(0.05)  # polling the clients' state: each round reads it anew


async def _inject_faults(system: System, clients: list[Client], author: int, report: Report) -> None:
    """One fault per slot, Postgres's restart in the middle one, each followed by a probe."""
    cycle: list[tuple[str, Callable[[], None]]] = [
        ("kill -9 leader", system.kill_leader),
        ("terminate listener connection", system.terminate_listener_connection),
        ("terminate layer connections", system.terminate_layer_connections),
        ("restart the web server", system.restart_web),
    ]
    interval = min(10.0, max(5.0, report.seconds / 8))
    slots = max(1, int(report.seconds // interval))
    started = time.monotonic()
    schedule = [cycle[i % len(cycle)] for i in range(slots - 1)]
    schedule.insert(slots // 2, ("restart postgres", system.restart_postgres))  # once, mid-run
    for slot, (kind, inject) in enumerate(schedule):
        await asyncio.sleep(max(0.0, started + (slot + 0.5) * interval - time.monotonic()))  # the schedule
        fault_at = time.monotonic()
        progress(f"fault {slot + 1}/{slots}: {kind}")
        await asyncio.to_thread(inject)
        report.faults[kind] += 1
        try:
            await _recover(system.dsn, clients, author, f"probe {slot}")
            report.recoveries.setdefault(kind, []).append(time.monotonic() - fault_at)
            progress(f"every client has the probe after {report.recoveries[kind][-1]:.2f}s")
        except TimeoutError:
            report.problems.append(
                f"after {kind}, a probe did not reach every client in {RECOVERY_TIMEOUT:g}s"
            )
    await asyncio.sleep(max(0.0, started + report.seconds - time.monotonic()))


async def _recover(dsn: str, clients: list[Client], author: int, marker: str) -> None:
    """Write `marker` and wait until every client has it on every subscription."""
    await write_marker(dsn, marker, author)
    waits: list[Awaitable[None]] = [c.wait_for(stream, marker) for c in clients for stream in c.subscriptions]
    async with asyncio.timeout(RECOVERY_TIMEOUT):
        await asyncio.gather(*waits)


def progress(what: str) -> None:
    print(f"soak: {what}", file=sys.stderr, flush=True)


def create_authors(dsn: str) -> list[int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "INSERT INTO auth_user (username, password, is_superuser, is_staff, is_active,"
            " first_name, last_name, email, date_joined)"
            " SELECT name, '!', false, false, true, '', '', '', now() FROM unnest(%s::text[]) AS name"
            " RETURNING id",
            (["ada", "grace"],),
        ).fetchall()
    return [int(row[0]) for row in rows]


# The check


@dataclass(frozen=True)
class Logged:
    """One change of the log, where the relay put it."""

    position: Position
    table: str
    op: str
    row: dict[str, Any] | None
    old: dict[str, Any] | None

    @property
    def key(self) -> tuple[str, str, int]:
        image = self.row if self.row is not None else self.old
        assert image is not None
        return (self.table, self.op, int(image["id"]))

    def seen_by(self, stream: str, filters: dict[str, Any]) -> bool:
        """Whether an anonymous subscription with `filters` gets it (no post changes visibility
        in the soak, so a private post is simply never seen)."""
        images = [
            i for i in (self.row, self.old) if i is not None and i.get("visibility", "public") == "public"
        ]
        same_stream = STREAMS[self.table] == stream
        return same_stream and any(all(i.get(k) == v for k, v in filters.items()) for i in images)


@dataclass
class Log:
    relayed: list[Logged]  # in tick order, and within a tick in the order handed on
    captured: int  # every change in cdc.event, relayed or not


def read_log(dsn: str) -> Log:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT t.id, e.id, e.table_name, e.op, e.new_row, e.old_row"
            " FROM cdc.tick AS t, unnest(t.event_ids) WITH ORDINALITY AS u(event_id, n), cdc.event AS e"
            " WHERE e.id = u.event_id ORDER BY t.id, u.n"
        ).fetchall()
        captured = conn.execute("SELECT count(*) FROM cdc.event").fetchone()
    assert captured is not None
    return Log([Logged((tick, id_), *rest) for tick, id_, *rest in rows], int(captured[0]))


def check(report: Report, run: Run, log: Log) -> None:
    """Fill the report's figures, and its problems with every way the run went wrong."""
    confirmed = sum((w.acked for w in run.writers), Counter[tuple[str, str, int]]())
    report.transactions = sum(w.transactions for w in run.writers)
    report.confirmed_changes = confirmed.total()
    report.logged_changes = log.captured
    report.deliveries = sum(len(s.ids) for c in run.clients for s in c.subscriptions.values())
    report.client_reconnects = sum(c.connections - 1 for c in run.clients)
    report.unavailable_retries = sum(c.retried for c in run.clients)
    if log.captured != len(log.relayed):
        report.problems.append(f"{log.captured - len(log.relayed)} logged changes were never relayed")
    lost = confirmed - Counter(change.key for change in log.relayed)
    if lost:
        report.problems.append(f"{lost.total()} confirmed writes are not in the log, e.g. {next(iter(lost))}")
    for number, client in enumerate(run.clients):
        report.problems += [f"client {number} got {message}" for message in client.anomalies]
        for stream, sub in client.subscriptions.items():
            assert sub.start is not None
            start = _position(sub.start)
            expected = [
                c.position[1] for c in log.relayed if c.position > start and c.seen_by(stream, sub.filters)
            ]
            difference = _difference(expected, sub.ids)
            if difference:
                report.problems.append(f"client {number}, {stream} {sub.filters}: {difference}")


def _position(text: str) -> Position:
    tick, event_id = text.split(":")
    return int(tick), int(event_id)


def _difference(expected: list[int], received: list[int]) -> str | None:
    """How a client's record differs from what it should be, or None when it does not."""
    if received == expected:
        return None
    missing = sorted(set(expected) - set(received))
    twice = sorted(i for i, n in Counter(received).items() if n > 1)
    extra = sorted(set(received) - set(expected))
    if missing or twice or extra:
        return (
            f"missing {len(missing)} {missing[:5]}, twice {len(twice)} {twice[:5]},"
            f" unexpected {len(extra)} {extra[:5]}"
        )
    at = next(i for i, (a, b) in enumerate(zip(expected, received, strict=True)) if a != b)
    return (
        f"out of commit order from change {at}: expected {expected[at : at + 3]}, got {received[at : at + 3]}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=600.0, help="how long writers write (default 600)")
    parser.add_argument("--clients", type=int, default=50, help="resuming websocket clients (default 50)")
    parser.add_argument("--rate", type=float, default=40.0, help="write transactions a second (default 40)")
    args = parser.parse_args(argv)
    report = asyncio.run(soak(args.seconds, args.clients, args.rate))
    print(report.table())
    for problem in report.problems:
        print(f"PROBLEM: {problem}")
    results = {k: v for k, v in vars(report).items() if k != "machine"}
    write_results("soak", report.machine, {**results, "faults": dict(report.faults)})
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
