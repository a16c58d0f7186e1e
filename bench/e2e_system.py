"""What bench/e2e.py and bench/load.py share: the live system as real processes on a migrated
scratch database, a paced writer, and the CPU and memory of processes read from /proc.

Times are `time.monotonic()`: on Linux that is CLOCK_MONOTONIC, one clock for every process
of the machine, so a commit time taken by the writer and a receipt time taken by a client
process can be subtracted.
"""

from __future__ import annotations

import math
import os
import resource
import shlex
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import psycopg

from bench.common import CLK_TCK, cpu_seconds, scratch_database, server_url
from core.commands import WEB_SERVERS
from testkit.layer_peer import redis_reachable
from testkit.live_servers import LiveSystem, live_system
from testkit.processes import migrate

LAYERS = ("postgres", "redis")
FD_LIMIT = 65536  # used when the hard limit is unlimited


def raise_fd_limit() -> int:
    """Lift the soft limit on open files to the hard one: 1,000 sockets exceed the usual 1,024.
    Children (the web process, started after this) inherit it."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = FD_LIMIT if hard == resource.RLIM_INFINITY else hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    return limit


def command_line(module: str, argv: list[str]) -> str:
    """How a result was produced, for the record; a --database-url (it may hold a password) is
    left out."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip or arg.startswith("--database-url"):
            skip = arg == "--database-url"
            continue
        kept.append(arg)
    return shlex.join(["python", "-m", module, *kept])


def layers(choice: str) -> list[str]:
    """`postgres`, `redis` or `both`; Redis only when it answers (a note says when it did not)."""
    wanted = list(LAYERS) if choice == "both" else [choice]
    if "redis" in wanted and not redis_reachable():
        print("Redis is not reachable (REDIS_URL): the redis layer is skipped", flush=True)
        wanted.remove("redis")
    return wanted


@contextmanager
def migrated_database(url: str | None, prefix: str) -> Iterator[str]:
    """A scratch database on the server being measured, migrated like production; dropped after."""
    with scratch_database(server_url(url), prefix) as dsn:
        migrate(dsn)
        yield dsn


@contextmanager
def live(dsn: str, layer: str, server: str = WEB_SERVERS[0]) -> Iterator[LiveSystem]:
    """cdc_listen and one web process (ASGI `server`, the default one unless said) on `dsn`
    over `layer`, both stopped on exit. testkit.live_servers starts them with this process's
    environment, so the layer and server are set there while they start."""
    # Every client connects from this machine: the per-address cap is the process's here.
    per_address = {"WS_MAX_CONNECTIONS_PER_ADDRESS": str(raise_fd_limit())}
    chosen = {"CHANNEL_LAYER": layer, "WEB_SERVER": server, **per_address}
    with mock.patch.dict(os.environ, chosen), live_system(dsn) as system:
        yield system


@dataclass
class Written:
    started: float  # monotonic time the first transaction began
    commits: list[float]  # row i (title str(first_key + i)): when its COMMIT returned
    rows_per_commit: int
    cpu_seconds: float  # the writer process's own CPU time
    rate: float  # the rate asked for

    @property
    def seconds(self) -> float:
        """How long writing took; at least the nominal time (rows / rate), so a writer that kept
        up counts at its rate and one that fell behind at what it managed."""
        return max(self.commits[-1] - self.started, len(self.commits) / self.rate)


def rows_for(rate: float, seconds: float) -> int:
    """How many rows a writer at `rate` for `seconds` inserts (at least one)."""
    return max(1, int(rate * seconds))


def write_paced(dsn: str, first_key: int, rate: float, seconds: float, max_commits: float) -> Written:
    """Insert rows_for(rate, seconds) articles titled with consecutive keys at `rate` rows/s, in
    autocommit transactions of one row, or of several when `rate` exceeds `max_commits` a
    second. Run in its own process: the writer is a client of the database like any other."""
    rows = rows_for(rate, seconds)
    per_commit = max(1, math.ceil(rate / max_commits))
    commits: list[float] = []
    cpu_before = time.process_time()  # a pool's worker is reused: count this call only
    with psycopg.connect(dsn, autocommit=True) as conn:
        started = time.monotonic()
        for done in range(0, rows, per_commit):
            delay = started + done / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # pacing the load, not synchronising
            titles = [str(first_key + i) for i in range(done, min(rows, done + per_commit))]
            conn.execute("INSERT INTO article (title) SELECT unnest(%s::text[])", (titles,))
            commits += [time.monotonic()] * len(titles)
    return Written(started, commits, per_commit, time.process_time() - cpu_before, rate)


# /proc readings.


def machine_busy_seconds() -> float:
    """CPU time all cores spent on anything but idle and iowait since boot (/proc/stat)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle, iowait = ticks[3], ticks[4]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - idle - iowait) / CLK_TCK


def rss_kib(pid: int) -> int:
    """Resident memory of a process (VmRSS in /proc/<pid>/status), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise ValueError(f"no VmRSS for process {pid}")


class CpuMeter:
    """CPU used by groups of processes from now until `percent()`, in % of one core (a group of
    processes may pass 100). "machine" is every process of the machine, out of cores x 100."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups
        self.started = time.monotonic()
        self.start = self._read()

    def _read(self) -> dict[str, float]:
        used = {name: sum(cpu_seconds(pid) for pid in pids) for name, pids in self.groups.items()}
        return {**used, "machine": machine_busy_seconds()}

    def seconds(self) -> dict[str, float]:
        """CPU seconds each group has used since the start."""
        end = self._read()
        return {name: end[name] - self.start[name] for name in end}

    def percent(self) -> dict[str, float]:
        wall = time.monotonic() - self.started
        return {name: round(100 * used / wall, 1) for name, used in self.seconds().items()}
