"""The delivery edge under a hostile client: what one web process holds in memory.

On a scratch database migrated by `manage.py migrate`, with `cdc_listen` and one web process
(`--server`, uvicorn unless said):

- resume: a client subscribes, goes away while `--resume-mb` MB of 100 KB articles are
  written, then resumes (acknowledging as docs/protocol.md asks); `--resumers` do so at once.
  Goal: the web process grows by less than 40 MB for 60 MB missed.
- slow reader: one client subscribes and never acknowledges while `--stream-mb` MB stream
  past to a second client that reads briskly, until the server closes it. Goal: the web
  process grows by less than 24 MB for 40 MB, and the brisk client gets every change.
- big row: one 5 MB article to 10 subscribers: the largest frame each receives.

Growth is the web process's peak VmRSS, sampled every 20 ms, less its VmRSS before the scenario
(after a warm-up of 10 MB through one client).

    .venv/bin/python -m bench.edge [--resume-mb 60] [--resumers 1,4] [--stream-mb 40]
        [--server uvicorn|daphne]

Prints a Markdown table and writes bench/results/edge.json.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from bench.common import machine_facts, markdown_table, write_results
from bench.e2e_system import command_line, live, migrated_database, rss_kib
from core.commands import WEB_SERVERS
from testkit.live_servers import LiveSystem
from testkit.wsclient import real_socket, until_closed

ROW_BYTES = 100_000
CLOSE_WITHIN = 60.0  # seconds for the slow reader to be closed (LIVE_SEND_WAIT is 10)
MiB = 1024 * 1024


class PeakRss:
    """The highest VmRSS of a process while the block runs, sampled by a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.before = self.peak = rss_kib(pid)
        self._done = threading.Event()

    @contextmanager
    def watching(self) -> Iterator[PeakRss]:
        sampler = threading.Thread(target=self._sample, daemon=True)
        sampler.start()
        try:
            yield self
        finally:
            self._done.set()
            sampler.join()

    def _sample(self) -> None:
        while not self._done.wait(0.02):  # a sampling period, not synchronisation
            self.peak = max(self.peak, rss_kib(self.pid))

    @property
    def growth_mb(self) -> float:
        return round((self.peak - self.before) / 1024, 1)


def write_articles(dsn: str, megabytes: float, prefix: str) -> int:
    """Articles of ROW_BYTES each, one transaction per row; how many."""
    count = int(megabytes * 1_000_000 / ROW_BYTES)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i in range(count):
            conn.execute(
                "INSERT INTO article (title, body) VALUES (%s, repeat('x', %s))", (f"{prefix}{i}", ROW_BYTES)
            )
    return count


async def resume(system: LiveSystem, megabytes: float, resumers: int) -> dict[str, Any]:
    positions = []
    for _ in range(resumers):
        async with real_socket(system.port) as client:
            [subscribed] = await client.subscribe("articles")
            positions.append(subscribed["position"])
    count = await asyncio.to_thread(write_articles, system.dsn, megabytes, f"r{resumers}-")
    rss = PeakRss(system.web.popen.pid)
    started = time.monotonic()
    with rss.watching():

        async def one(position: str) -> int:
            async with real_socket(system.port) as client:
                await client.subscribe("articles", after=position)
                return len(await client.changes(count))

        received = await asyncio.gather(*(one(p) for p in positions))
    return {
        "scenario": f"resume over {megabytes:g} MB, {resumers} at once",
        "missed_mb": megabytes,
        "clients": resumers,
        "changes_each": count,
        "all_received": all(r == count for r in received),
        "seconds": round(time.monotonic() - started, 1),
        "web_growth_mb": rss.growth_mb,
    }


async def slow_reader(system: LiveSystem, megabytes: float) -> dict[str, Any]:
    rss = PeakRss(system.web.popen.pid)
    async with real_socket(system.port) as slow, real_socket(system.port) as brisk:
        await slow.subscribe("articles")
        await brisk.subscribe("articles")
        slow.acking = False  # it takes nothing: as far as the server knows, it reads nothing
        with rss.watching():
            started = time.monotonic()
            writing = asyncio.create_task(asyncio.to_thread(write_articles, system.dsn, megabytes, "s-"))
            count = int(megabytes * 1_000_000 / ROW_BYTES)
            received = len(await brisk.changes(count))
            brisk_done = time.monotonic() - started
            await writing
            await asyncio.wait_for(until_closed(slow), CLOSE_WITHIN)
        closed = slow.ws.close_code
    return {
        "scenario": f"slow reader while {megabytes:g} MB stream past",
        "streamed_mb": megabytes,
        "brisk_received_all": received == count,
        "brisk_seconds": round(brisk_done, 1),
        "slow_close_code": closed,
        "web_growth_mb": rss.growth_mb,
    }


async def big_row(system: LiveSystem, subscribers: int = 10) -> dict[str, Any]:
    from contextlib import AsyncExitStack

    async with AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(real_socket(system.port)) for _ in range(subscribers)]
        for client in clients:
            await client.subscribe("articles")
        with psycopg.connect(system.dsn, autocommit=True) as conn:
            conn.execute("INSERT INTO article (title, body) VALUES ('big', repeat('b', 5 * 1024 * 1024))")
        changes = [(await client.changes(1))[0] for client in clients]
        alive = all([await client.answers_ping() for client in clients])
    largest = max(len(str(c["row"]["body"])) for c in changes)
    return {
        "scenario": "a 5 MiB row to 10 subscribers",
        "truncated": sorted({col for c in changes for col in c.get("truncated", [])}),
        "largest_body_sent_kb": round(largest / 1024),
        "sockets_open_after": alive,
    }


async def warm_up(system: LiveSystem, megabytes: float = 10) -> None:
    """Changes through one reading client first: the allocator's first high-water mark is
    the same for every process and no scenario's doing."""
    async with real_socket(system.port) as client:
        await client.subscribe("articles")
        count = await asyncio.to_thread(write_articles, system.dsn, megabytes, "w-")
        await client.changes(count)


async def measure(system: LiveSystem, args: argparse.Namespace) -> list[dict[str, Any]]:
    await warm_up(system)
    out = [await resume(system, args.resume_mb, n) for n in args.resumers]
    out.append(await slow_reader(system, args.stream_mb))
    out.append(await big_row(system))
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--resume-mb", type=float, default=60)
    parser.add_argument("--resumers", type=lambda s: [int(n) for n in s.split(",")], default=[1, 4])
    parser.add_argument("--stream-mb", type=float, default=40)
    parser.add_argument("--server", choices=WEB_SERVERS, default=WEB_SERVERS[0])
    parser.add_argument("--database-url")
    args = parser.parse_args(argv)
    with migrated_database(args.database_url, "bench_edge") as dsn:
        machine = machine_facts(dsn)
        with live(dsn, "postgres", args.server) as system:
            results = asyncio.run(measure(system, args))
    print(table(results))
    run = {"command": command_line("bench.edge", argv), "server": args.server, "scenarios": results}
    path = write_results("edge", machine, run)
    print(f"\nwrote {path}")
    return 0


def table(results: list[dict[str, Any]]) -> str:
    rows = [
        [
            r["scenario"],
            r.get("web_growth_mb", "-"),
            "all" if delivered(r) else "NOT ALL",
            f"< {g:g} MB" if (g := goal_mb(r)) is not None else "-",
        ]
        for r in results
    ]
    return markdown_table(["scenario", "web growth (MB)", "delivered", "goal"], rows)


def delivered(result: dict[str, Any]) -> bool:
    return bool(
        result.get("all_received", result.get("brisk_received_all", result.get("sockets_open_after")))
    )


def goal_mb(result: dict[str, Any]) -> float | None:
    """The issue's goals: under 40 MB for 60 MB resumed, under 24 MB for 40 MB slowly read."""
    if "missed_mb" in result:
        return 40 * float(result["missed_mb"]) / 60
    if "streamed_mb" in result:
        return 24 * float(result["streamed_mb"]) / 40
    return None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
