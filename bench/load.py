"""1,000 websocket connections on one web process, each subscribed to `articles`.

On a scratch database migrated by `manage.py migrate`, with `cdc_listen`, one web process (uvicorn
unless --server says daphne) and the
load generators of bench/e2e.py (connections spread over 2 processes):

- memory: the web process's resident memory (VmRSS) after a warm-up connection has come and gone,
  and with every connection open and subscribed; per connection = the difference / count;
- CPU: the web process's share of one core with the connections idle, and while a writer inserts
  100 changes/s (both over 10 s, from /proc/<pid>/stat);
- delivery: after the writer stops, every connection must get every change, in order and
  once, with no error frame and no disconnect (the clients may take a while: under overload
  the server drops queued messages and repairs from the change log).

    .venv/bin/python -m bench.load [--clients 1000] [--processes 2] [--idle-seconds 10]
        [--rate 100] [--seconds 10] [--drain-seconds 180] [--layer postgres|redis]
        [--server uvicorn|daphne]

Prints a Markdown table and writes bench/results/load.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from bench.common import machine_facts, markdown_table, write_results
from bench.e2e import Rig, rig, us_per_delivery
from bench.e2e_clients import clients
from bench.e2e_system import CpuMeter, command_line, migrated_database, rss_kib
from core.commands import WEB_SERVERS


def measure(r: Rig, args: argparse.Namespace) -> dict[str, Any]:
    pid = r.web_pid
    with clients(r.system.port, 1, 1) as pool:  # loads the consumer's code and pools once
        r.warm_up(pool)
    rss_before = rss_kib(pid)
    with clients(r.system.port, args.clients, args.processes) as pool:
        rss_connected = rss_kib(pid)
        meter = CpuMeter({"web": [pid], "clients": pool.pids})
        time.sleep(args.idle_seconds)  # the measuring window, not a wait for anything
        idle = meter.percent()
        loaded = r.step(pool, args.rate, args.seconds, drain=args.drain_seconds)
        rss_after = rss_kib(pid)
    return {
        "clients": args.clients,
        "rss_kib": {"before": rss_before, "connected": rss_connected, "after_load": rss_after},
        "kib_per_connection": round((rss_connected - rss_before) / args.clients, 1),
        "idle_seconds": args.idle_seconds,
        "idle_cpu_percent": idle,
        "loaded": loaded,
    }


def every_change_arrived(loaded: dict[str, Any]) -> bool:
    return (
        loaded["complete_connections"] == loaded["clients"]
        and loaded["missed"] == 0
        and not (loaded["errors"] or loaded["disconnects"] or loaded["disorder"])
    )


def table(results: dict[str, Any]) -> str:
    """The figures (bench/report.py prints the same table into docs/benchmarks.md)."""
    n, rss, loaded = results["clients"], results["rss_kib"], results["loaded"]
    rate = f"{loaded['rate']:g} changes/s"
    drain = "not within the drain time" if loaded["drain_s"] is None else f"{loaded['drain_s']:g} s"
    web = results["server"]
    rows = [
        [f"{web} RSS after a warm-up connection (MiB)", f"{rss['before'] / 1024:.1f}", ""],
        [f"{web} RSS with {n:,} connections subscribed (MiB)", f"{rss['connected'] / 1024:.1f}", ""],
        ["memory per connection (KiB)", f"{results['kib_per_connection']:g}", ""],
        [f"{web} RSS after the load (MiB)", f"{rss['after_load'] / 1024:.1f}", ""],
        [
            f"{web} CPU, idle over {results['idle_seconds']:g} s (% of a core)",
            f"{results['idle_cpu_percent']['web']:g}",
            "",
        ],
        [f"{web} CPU at {rate} (% of a core)", f"{loaded['cpu_percent']['web']:g}", ""],
        [f"clients' CPU at {rate} (% of a core, all processes)", f"{loaded['cpu_percent']['clients']:g}", ""],
        [f"CPU per delivery at {rate}, {web} / clients (µs)", us_per_delivery(loaded), ""],
        [f"deliveries ({loaded['rows']:,} changes x {n:,})", f"{loaded['delivered']:,}", "all"],
        ["connections that got every change", f"{loaded['complete_connections']:,}", f"{n:,}"],
        ["error frames / disconnects / repeats or reorders", _counts(loaded), "0 / 0 / 0"],
        ["connections that re-read from the log / whose repair failed", _repairs(loaded), ""],
        ["disconnects by close code", _close_codes(loaded) or "none", "none"],
        ["last commit → last change at the last client", drain, ""],
        ["latency p50 / p95 / p99 (ms)", f"{loaded['p50_ms']} / {loaded['p95_ms']} / {loaded['p99_ms']}", ""],
    ]
    return markdown_table(["figure", "measured", "expected"], rows)


def _repairs(loaded: dict[str, Any]) -> str:
    return f"{loaded['repairs']:,} / {loaded['failed_repairs']:,}"


def _close_codes(loaded: dict[str, Any]) -> str:
    return ", ".join(f"{code}: {n:,}" for code, n in sorted(loaded["close_codes"].items()))


def _counts(loaded: dict[str, Any]) -> str:
    return f"{loaded['errors']} / {loaded['disconnects']} / {loaded['disorder']}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=2, help="load-generator processes")
    parser.add_argument("--idle-seconds", type=float, default=10)
    parser.add_argument("--rate", type=float, default=100, help="changes/s while loaded")
    parser.add_argument("--seconds", type=float, default=10, help="how long the writer writes")
    parser.add_argument("--drain-seconds", type=float, default=180, help="how long delivery may lag")
    parser.add_argument("--layer", choices=["postgres", "redis"], default="postgres")
    parser.add_argument("--server", choices=WEB_SERVERS, default=WEB_SERVERS[0], help="ASGI server")
    parser.add_argument("--database-url", help="server to measure (default: DATABASE_URL, else embedded)")
    args = parser.parse_args()

    with migrated_database(args.database_url, "bench_load") as dsn:
        machine = machine_facts(dsn)
        with rig(dsn, args.layer, args.server) as r:
            measured = measure(r, args)
    results = {
        "command": command_line("bench.load", sys.argv[1:]),
        "layer": args.layer,
        "server": args.server,
        **measured,
        "every_change_arrived": every_change_arrived(measured["loaded"]),
    }
    print(table(results))
    print(f"\nwritten: {write_results('load', machine, results)}")


if __name__ == "__main__":
    main()
