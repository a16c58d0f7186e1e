"""End to end through real processes: a writer's COMMIT to a websocket client's `change`.

On a scratch database migrated by `manage.py migrate`: `cdc_listen`, one web process (each of
the ASGI servers asked for: uvicorn, daphne), a writer
process (single-row autocommit INSERTs at a fixed rate; rows share a transaction above
1,000/s) and load-generator processes holding the websocket clients (bench/e2e_clients.py),
every client subscribed to `articles`. Latency is the time from the writer's COMMIT
returning to a client receiving the change, per change and client (CLOCK_MONOTONIC in both
processes); a change that never arrives counts as infinitely late.

- latency: 1 client, 10, 100 and 1,000 changes/s from one writer, and 100 changes/s from
  each of 8 writers at once (goal at 100/s a writer: p50 <= 5 ms, p99 <= 20 ms);
- fan-out: 1, 100 and 1,000 clients; changes/s doubles each step until p95 passes 200 ms or
  a client misses a change, gets an error or is disconnected; the figure is deliveries/s
  (changes/s x clients served) at the last step within 200 ms (goal at 1,000 clients:
  >= 32,000/s). The CPU of the web process, cdc_listen, the clients and the writer says what
  limits it; the web's and the clients' CPU per delivery say what one delivery costs the
  server and what it costs the load generator (which must stay well below the server's).

    .venv/bin/python -m bench.e2e [--layer postgres|redis|both] [--server uvicorn|daphne|both]
        [--seconds 10] [--step-seconds 3]
        [--clients 1,100,1000] [--processes 2] [--start 2000] [--only latency|fanout]

Prints Markdown tables and writes bench/results/e2e.json; with --only, the other part is
kept from the file's last run, with the command and machine of that run (`kept`).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.pool import Pool
from typing import Any

from bench.capture import percentile
from bench.common import RESULTS_DIR, machine_facts, markdown_table, write_results
from bench.e2e_clients import Clients, Harvest, clients
from bench.e2e_system import (
    CpuMeter,
    Written,
    command_line,
    layers,
    live,
    migrated_database,
    rows_for,
    write_paced,
)
from core.commands import WEB_SERVERS
from testkit.live_servers import LiveSystem
from testkit.probes import metrics

# Latency steps: (writers, changes/s each). Concurrent writers are where the doorbell differs
# (cdc/doorbell.py): several of them commit while the relay reads.
LATENCY_STEPS = ((1, 10), (1, 100), (1, 1000), (8, 100))
WRITERS = max(writers for writers, _ in LATENCY_STEPS)
GOAL_RATE, GOAL_P50_MS, GOAL_P99_MS = 100, 5.0, 20.0
FANOUT_CLIENTS = (1, 100, 1000)
FANOUT_P95_MS = 200.0
GOAL_CLIENTS, GOAL_DELIVERIES = 1000, 32_000  # Supabase Realtime: 32,000 msgs/s, p95 184-238 ms
GOAL_US_PER_DELIVERY = 30.0  # the web process's CPU per delivery at GOAL_CLIENTS
DRAIN_SECONDS = 5.0  # after the writer ends, how long clients may take to get the last change
WRITER_SHORTFALL = 0.9  # a writer below this share of its rate bounds the step, not the system
# Commits a second the writer makes at most; above, rows share transactions. Latency: one row
# per commit at every rate. Fan-out: one row per commit up to 100/s, so that to 100 or 1,000
# clients every change is relayed on its own (the dearest case); above (1 client), shared
# transactions let the writer, which manages 1,000-2,000 single-row commits/s, keep up.
LATENCY_COMMITS, FANOUT_COMMITS = 1000, 100
# Each new set of clients first gets a second of light load (first code paths, not measured;
# light, so that no backlog spills into the first step).
WARM_UP_DELIVERIES = 1000
# The web process's log lines counted per step (consumers/live.py): a connection that could not
# re-read what it missed from the log, and closed. Those that did are counted in its /metrics.
LOGGED = {"failed_repairs": "repair after a transport gap failed"}


@dataclass
class Rig:
    """The system under test for one channel layer, and the writer that loads it."""

    dsn: str
    system: LiveSystem
    writer: Pool
    next_key: int = 1  # titles are unique keys over the whole run

    @property
    def web_pid(self) -> int:
        return self.system.web.popen.pid

    def step(
        self,
        pool: Clients,
        rate: float,
        seconds: float,
        max_commits: float = FANOUT_COMMITS,
        drain: float = DRAIN_SECONDS,
        writers: int = 1,
    ) -> dict[str, Any]:
        """Write at `rate` for `seconds` from each of `writers` processes, give the clients
        `drain` seconds more to receive the last change, and summarise."""
        first, rows = self.next_key, writers * rows_for(rate, seconds)
        self.next_key += rows
        pool.expect(first, rows)
        log_start, repairs = len(self.web_lines), self.repairs()
        meter = CpuMeter(
            {"web": [self.web_pid], "cdc_listen": [self.system.listener.popen.pid], "clients": pool.pids}
        )
        written = self.write(first, rate, seconds, max_commits, writers)
        cpu = {**meter.percent(), "writer": round(100 * written.cpu_seconds / written.seconds, 1)}
        drained = pool.wait_done(drain)
        drain_s = time.monotonic() - written.commits[-1] if drained else None
        spent = meter.seconds()  # from the step's start to its last change's arrival
        harvest = pool.harvest()
        counted = {**self.logged(log_start), "repairs": round(self.repairs() - repairs)}
        result = step_result(pool.total, first, written, harvest, cpu, counted, writers)
        return {
            **result,
            "writers": writers,
            "cpu_us_per_delivery": per_delivery(spent, result["delivered"]),
            "acks_refused": harvest.acks_refused,  # a server that does not know acks
            "close_codes": {str(code): n for code, n in harvest.close_codes.items()},
            "drain_s": drain_s and round(drain_s, 2),  # last commit to the last client's last change
        }

    def write(self, first: int, rate: float, seconds: float, max_commits: float, writers: int) -> Written:
        """`writers` writer processes at once, each its own range of keys; as one writer."""
        each = rows_for(rate, seconds)
        jobs = [
            self.writer.apply_async(write_paced, (self.dsn, first + i * each, rate, seconds, max_commits))
            for i in range(writers)
        ]
        parts: list[Written] = [job.get() for job in jobs]
        return Written(
            started=min(p.started for p in parts),
            commits=[c for p in parts for c in p.commits],
            rows_per_commit=parts[0].rows_per_commit,
            cpu_seconds=sum(p.cpu_seconds for p in parts),
            rate=rate * writers,
        )

    def logged(self, start: int) -> dict[str, int]:
        """How often the web process logged each of LOGGED since line `start`."""
        lines = self.web_lines[start:]
        return {name: sum(text in line for line in lines) for name, text in LOGGED.items()}

    def repairs(self) -> float:
        """Connections that re-read changes from the log so far, for any reason (a connection
        that fell more than LIVE_SEND_BUDGET_BYTES behind, a channel-layer gap)."""
        samples = metrics(f"http://127.0.0.1:{self.system.port}/metrics")
        return sum(v for name, v in samples.items() if name.startswith("livefeed_ws_repairs_total"))

    @property
    def web_lines(self) -> list[str]:
        return self.system.web.lines

    def warm_up(self, pool: Clients) -> None:
        self.step(pool, max(1.0, WARM_UP_DELIVERIES / pool.total), 1.0)


@contextmanager
def rig(dsn: str, layer: str, server: str) -> Iterator[Rig]:
    with live(dsn, layer, server) as system, mp.get_context("spawn").Pool(WRITERS) as writer:
        yield Rig(dsn, system, writer)


def latencies_ms(harvest: Harvest, first: int, commits: list[float]) -> list[float]:
    """Sorted receipt - commit times of the step's changes, one per client that got each."""
    end = first + len(commits)
    pairs = zip(harvest.keys, harvest.times, strict=True)
    return sorted((t - commits[k - first]) * 1000 for k, t in pairs if first <= k < end)


def per_delivery(spent: dict[str, float], delivered: int) -> dict[str, float | None]:
    """CPU µs per delivery of the server and of the load generator (all its processes)."""
    return {k: round(1e6 * spent[k] / delivered, 1) if delivered else None for k in ("web", "clients")}


def step_result(
    clients_n: int,
    first: int,
    written: Written,
    harvest: Harvest,
    cpu: dict[str, float],
    logged: dict[str, int],
    writers: int = 1,
) -> dict[str, Any]:
    lat = latencies_ms(harvest, first, written.commits)
    rows = len(written.commits)
    missed = clients_n * rows - len(lat)
    ranked = lat + [math.inf] * max(0, missed)  # a missed change is infinitely late
    result: dict[str, Any] = {
        "clients": clients_n,
        "rate": written.rate,
        "rows": rows,
        "rows_per_commit": written.rows_per_commit,
        "changes_per_s": round(rows / written.seconds, 1),
        "deliveries_per_s": round(len(lat) / written.seconds),
        "delivered": len(lat),
        "missed": missed,
        "complete_connections": sum(count == rows for count in harvest.in_window),
        **{f"p{q}_ms": _ms(percentile(ranked, q / 100)) for q in (50, 95, 99)},
        "max_ms": _ms(ranked[-1]) if ranked else None,
        "errors": harvest.errors,
        "disconnects": harvest.disconnects,
        # Keys arrive in commit order: out of key order only with one writer is that wrong.
        "disorder": harvest.disorder if writers == 1 else None,
        **logged,
        "cpu_percent": cpu,
    }
    writer_bound = result["changes_per_s"] < WRITER_SHORTFALL * written.rate
    return {**result, "limit": limit(result), "writer_bound": writer_bound}


def _ms(value: float) -> float | None:
    return None if math.isinf(value) else round(value, 2)


def limit(step: dict[str, Any]) -> str | None:
    """Why a fan-out step does not count (None: it does)."""
    p95 = step["p95_ms"]
    reasons = [
        (step["errors"] > 0, "error frames"),
        (step["disconnects"] > 0, "disconnects"),
        (step["missed"] > 0, "clients fell behind (changes missing after the drain)"),
        ((step["disorder"] or 0) > 0, "repeated or reordered changes"),
        (p95 is None or p95 > FANOUT_P95_MS, f"p95 > {FANOUT_P95_MS:g} ms"),
    ]
    return next((why for failed, why in reasons if failed), None)


def latency(rig: Rig, seconds: float, processes: int) -> list[dict[str, Any]]:
    port = rig.system.port
    with clients(port, 1, processes) as pool:
        rig.warm_up(pool)
        return [
            progress(rig.step(pool, rate, seconds, LATENCY_COMMITS, writers=writers))
            for writers, rate in LATENCY_STEPS
        ]


def fan_out(rig: Rig, clients_n: int, args: argparse.Namespace) -> dict[str, Any]:
    """Double the rate until a step does not count; the last one that did is the figure."""
    steps: list[dict[str, Any]] = []
    rate = max(1.0, args.start / clients_n)
    with clients(rig.system.port, clients_n, args.processes) as pool:
        rig.warm_up(pool)
        while rate * clients_n <= args.max_deliveries:
            steps.append(progress(rig.step(pool, rate, args.step_seconds)))
            if steps[-1]["limit"] or steps[-1]["writer_bound"]:
                break
            rate *= 2
    passed = [s for s in steps if not s["limit"]]
    best = passed[-1] if passed else None
    return {"clients": clients_n, "best": best, "stopped_by": stopped_by(steps), "steps": steps}


def stopped_by(steps: list[dict[str, Any]]) -> str:
    last = steps[-1] if steps else {}
    if last.get("limit"):
        return str(last["limit"])
    if last.get("writer_bound"):
        return f"the writer: {last['changes_per_s']:g} of {last['rate']:g} changes/s"
    return "--max-deliveries reached"


def progress(step: dict[str, Any]) -> dict[str, Any]:
    print(
        f"  {step['clients']} clients at {step['rate']:g}/s: {step['deliveries_per_s']:,} deliveries/s,"
        f" p95 {step['p95_ms']} ms, missed {step['missed']}, web {step['cpu_percent']['web']}% CPU"
        f" (CPU µs/delivery web / clients: {us_per_delivery(step)})"
        f"{'; ' + step['limit'] if step['limit'] else ''}{'; writer-bound' if step['writer_bound'] else ''}",
        file=sys.stderr,
        flush=True,
    )
    return step


# Tables (bench/report.py prints the same ones into docs/benchmarks.md).


def latency_rows(results: dict[str, Any]) -> list[list[object]]:
    rows: list[list[object]] = []
    for layer, measured in results["layers"].items():
        for s in measured.get("latency", []):
            goal = ""
            if s["rate"] / s.get("writers", 1) == GOAL_RATE:
                met = _le(s["p50_ms"], GOAL_P50_MS) and _le(s["p99_ms"], GOAL_P99_MS)
                goal = f"p50 ≤ {GOAL_P50_MS:g}, p99 ≤ {GOAL_P99_MS:g} ({'met' if met else 'missed'})"
            cells = [s["p50_ms"], s["p95_ms"], s["p99_ms"], s["max_ms"]]
            rows.append([layer, _rate(s), s["rows"], *map(_cell, cells), goal])
    return rows


def fanout_rows(results: dict[str, Any]) -> list[list[object]]:
    rows: list[list[object]] = []
    for layer, measured in results["layers"].items():
        for f in measured.get("fanout", []):
            best = f["best"] or {}
            goal = ""
            if f["clients"] == GOAL_CLIENTS:
                met = best.get("deliveries_per_s", 0) >= GOAL_DELIVERIES
                goal = f"≥ {GOAL_DELIVERIES:,} ({'met' if met else 'missed'})"
            rows.append(
                [
                    layer,
                    f"{f['clients']:,}",
                    f"{best['deliveries_per_s']:,}" if best else "none within 200 ms",
                    _rate(best) if best else "",
                    _cell(best["p95_ms"]) if best else "",
                    us_per_delivery(best) if best else "",
                    f["stopped_by"],
                    goal,
                ]
            )
    return rows


def step_rows(results: dict[str, Any]) -> list[list[object]]:
    rows: list[list[object]] = []
    for layer, measured in results["layers"].items():
        for f in measured.get("fanout", []):
            for s in f["steps"]:
                cpu = s["cpu_percent"]
                rows.append(
                    [
                        layer,
                        f"{s['clients']:,}",
                        _rate(s),
                        f"{s['deliveries_per_s']:,}",
                        *(_cell(s[k]) for k in ("p50_ms", "p95_ms", "p99_ms")),
                        f"{s['missed']:,}",
                        f"{s['errors']}/{s['disconnects']}/{s['repairs']}",
                        *(f"{cpu[k]:g}" for k in ("web", "cdc_listen", "clients", "writer", "machine")),
                        us_per_delivery(s),
                    ]
                )
    return rows


def tables(results: dict[str, Any]) -> str:
    latency_table = markdown_table(
        ["layer, server", "changes/s", "changes", "p50 ms", "p95 ms", "p99 ms", "max ms", "goal"],
        latency_rows(results),
    )
    summary = markdown_table(
        [
            "layer, server",
            "clients",
            "deliveries/s (p95 ≤ 200 ms)",
            "changes/s",
            "p95 ms",
            "CPU µs/delivery web / clients",
            "then stopped by",
            "goal",
        ],
        fanout_rows(results),
    )
    steps = markdown_table(
        [
            "layer, server", "clients", "changes/s", "deliveries/s", "p50 ms", "p95 ms", "p99 ms", "missed",
            "errors/disconnects/repairs", "CPU % web", "cdc_listen", "clients", "writer", "machine",
            "CPU µs/delivery web / clients",
        ],
        step_rows(results),
    )  # fmt: skip
    return "\n\n".join(
        [
            "Latency, 1 client (COMMIT returned → `change` received):\n\n" + latency_table,
            "Fan-out, best step per client count:\n\n" + summary,
            "Fan-out, every step (CPU in % of one core; machine: all cores, out of"
            f" {results['cores'] * 100}):\n\n" + steps,
        ]
    )


def _rate(step: dict[str, Any]) -> str:
    """Changes/s asked for (and from how many writers), with what a writer that fell short
    managed, and rows per commit."""
    text = f"{step['rate']:g}"
    if (writers := step.get("writers", 1)) > 1:
        text += f" ({writers} writers x {step['rate'] / writers:g})"
    if step["writer_bound"]:
        text += f" (writer: {step['changes_per_s']:g})"
    if step["rows_per_commit"] > 1:
        text += f", {step['rows_per_commit']}/commit"
    return text


def us_per_delivery(step: dict[str, Any]) -> str:
    """CPU µs per delivery of the web process / of the clients."""
    measured = step.get("cpu_us_per_delivery")
    if measured is None:
        return ""
    return " / ".join("" if measured[k] is None else f"{measured[k]:g}" for k in ("web", "clients"))


def _cell(value: float | None) -> str:
    return "∞ (missed)" if value is None else f"{value:g}"


def _le(value: float | None, goal: float) -> bool:
    return value is not None and value <= goal


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--layer", choices=["postgres", "redis", "both"], default="both")
    parser.add_argument("--server", choices=[*WEB_SERVERS, "both"], default="both", help="ASGI server")
    parser.add_argument("--only", choices=["latency", "fanout"], help="run one part only")
    parser.add_argument("--seconds", type=float, default=10, help="writing time of each latency rate")
    parser.add_argument("--step-seconds", type=float, default=3, help="writing time of each fan-out step")
    parser.add_argument("--clients", default=",".join(map(str, FANOUT_CLIENTS)), help="fan-out client counts")
    parser.add_argument("--processes", type=int, default=2, help="load-generator processes (at most)")
    parser.add_argument("--start", type=float, default=2000, help="deliveries/s of the first fan-out step")
    parser.add_argument("--max-deliveries", type=float, default=256_000, help="no step beyond this")
    parser.add_argument("--database-url", help="server to measure (default: DATABASE_URL, else embedded)")
    return parser.parse_args()


def measure(dsn: str, layer: str, server: str, args: argparse.Namespace) -> dict[str, Any]:
    measured: dict[str, Any] = {}
    with rig(dsn, layer, server) as r:
        if args.only in (None, "latency"):
            print(f"{layer}, {server}: latency", file=sys.stderr, flush=True)
            measured["latency"] = latency(r, args.seconds, args.processes)
        if args.only in (None, "fanout"):
            print(f"{layer}, {server}: fan-out", file=sys.stderr, flush=True)
            measured["fanout"] = [fan_out(r, int(n), args) for n in args.clients.split(",")]
    return measured


def keep_other_part(results: dict[str, Any], part: str) -> None:
    """`part` of each layer from the last e2e.json, noting which run measured it."""
    path = RESULTS_DIR / "e2e.json"
    if not path.exists():
        return
    last = json.loads(path.read_text())
    kept = {k: v for k, v in last["results"].get("kept", {}).items() if k == part}
    for name, measured in results["layers"].items():
        if old := last["results"]["layers"].get(name, {}).get(part):
            measured[part] = old
            kept.setdefault(part, {"command": last["results"].get("command"), "machine": last["machine"]})
    if kept:
        results["kept"] = kept


def main() -> None:
    args = parse_args()
    with migrated_database(args.database_url, "bench_e2e") as dsn:
        machine = machine_facts(dsn)
        results: dict[str, Any] = {
            "command": command_line("bench.e2e", sys.argv[1:]),
            "cores": machine["cores"],
            "settings": {k: v for k, v in vars(args).items() if k != "database_url"},
            "layers": {
                f"{layer}, {server}": measure(dsn, layer, server, args)
                for layer in layers(args.layer)
                for server in (WEB_SERVERS if args.server == "both" else [args.server])
            },
        }
    if args.only:
        keep_other_part(results, "fanout" if args.only == "latency" else "latency")
    print(tables(results))
    print(f"\nwritten: {write_results('e2e', machine, results)}")


if __name__ == "__main__":
    main()
