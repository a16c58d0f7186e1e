"""How fast cdc_listen relays: a bulk burst, and lag under a steady trickle.

A real `manage.py cdc_listen` and a group member (bench/relay_member.py) in their own
processes, on a scratch database migrated by `manage.py migrate`:

- burst: one 100,000-row INSERT; changes/s from its COMMIT until the relay's position
  covers it (lag zero), and until the member has received every change;
- steady: single-row inserts at a fixed rate from a writer process; lag is the time from
  the writer's COMMIT returning to the member receiving the change (p50/p99).

    .venv/bin/python -m bench.relay [--rows 100000] [--rate 500] [--seconds 20] [--layer postgres|redis]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import time
from contextlib import ExitStack
from typing import Any

import psycopg

from bench.common import machine_facts, markdown_table, scratch_database, server_url, write_results
from testkit.processes import Process, cdc_listen, migrate

GOAL_CHANGES_PER_S = 20_000
GOAL_LAG_P99_MS = 50.0


def received(member: Process) -> dict[str, float]:
    """title -> first time the member received it."""
    seen: dict[str, float] = {}
    for line in list(member.lines):
        title, _, t = line.partition("\t")
        if t:
            seen.setdefault(title, float(t))
    return seen


def wait_until(predicate: Any, timeout: float, every: float = 0.005) -> float:
    """Poll `predicate` (a benchmark may poll; a test may not); return when it held."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark condition not reached")
        time.sleep(every)
    return time.time()


def relayed_through(dsn: str) -> Any:
    conn = psycopg.connect(dsn, autocommit=True)

    def check(last_event: int) -> bool:
        row = conn.execute(
            "SELECT t.event_ids[cardinality(t.event_ids)] >= %s AND t.complete"
            " FROM cdc.relay r JOIN cdc.tick t ON t.id = r.relayed_tick",
            (last_event,),
        ).fetchone()
        return bool(row and row[0])

    return check


def burst(dsn: str, member: Process, rows: int) -> dict[str, float]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        start = time.time()
        conn.execute(
            "INSERT INTO article (title, body, category) SELECT 'burst ' || i, repeat('x', 200),"
            " (ARRAY['world','tech','science','sport'])[1 + i %% 4] FROM generate_series(1, %s) AS i",
            (rows,),
        )
        committed = time.time()
        last_event = conn.execute("SELECT max(id) FROM cdc.event").fetchone()[0]  # type: ignore[index]
    check = relayed_through(dsn)
    relayed = wait_until(lambda: check(last_event), timeout=600, every=0.01)
    delivered = wait_until(lambda: len(received(member)) >= rows, timeout=600, every=0.05)
    return {
        "rows": rows,
        "insert_s": round(committed - start, 3),
        "until_lag_zero_s": round(relayed - committed, 3),
        "relayed_per_s": round(rows / (relayed - committed)),
        "until_all_received_s": round(delivered - committed, 3),
        "received_per_s": round(rows / (delivered - committed)),
    }


def paced_writer(dsn: str, rate: float, seconds: float) -> dict[str, float]:
    """Single-row autocommit inserts at `rate`/s; title -> time its COMMIT returned."""
    committed: dict[str, float] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        start = time.monotonic()
        for i in range(int(rate * seconds)):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # pacing the load, not synchronising
            conn.execute("INSERT INTO article (title) VALUES (%s)", (f"steady {i}",))
            committed[f"steady {i}"] = time.time()
    return committed


def steady(dsn: str, member: Process, rate: float, seconds: float) -> dict[str, float]:
    with mp.get_context("spawn").Pool(1) as pool:
        committed = pool.apply(paced_writer, (dsn, rate, seconds))
    wait_until(lambda: committed.keys() <= received(member).keys(), timeout=60, every=0.05)
    got = received(member)
    lags = sorted((got[title] - t) * 1000 for title, t in committed.items())
    return {
        "rate_per_s": rate,
        "seconds": seconds,
        "changes": len(lags),
        "lag_p50_ms": round(statistics.median(lags), 2),
        "lag_p99_ms": round(lags[int(len(lags) * 0.99) - 1], 2),
        "lag_max_ms": round(lags[-1], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--layer", choices=["postgres", "redis"], default="postgres")
    parser.add_argument("--database-url")
    args = parser.parse_args()

    env = {"CHANNEL_LAYER": args.layer, "LOG_LEVEL": "WARNING"}
    with ExitStack() as stack, scratch_database(server_url(args.database_url), "bench_relay") as dsn:
        migrate(dsn)
        machine = machine_facts(dsn)
        listener = cdc_listen(dsn, **{**env, "LOG_LEVEL": "INFO"})
        stack.callback(listener.stop)
        listener.wait_for("leader gained")
        member = Process([sys.executable, "bench/relay_member.py"], {"DATABASE_URL": dsn, **env}, "member")
        stack.callback(member.stop)
        member.wait_for("^ready$")

        results = {
            "layer": args.layer,
            "steady": steady(dsn, member, args.rate, args.seconds),
            "burst": burst(dsn, member, args.rows),
        }

    b, s = results["burst"], results["steady"]
    print(
        markdown_table(
            ["figure", "measured", "goal"],
            [
                [f"burst of {b['rows']:,} rows: relayed changes/s", f"{b['relayed_per_s']:,}", "≥ 20,000"],
                ["burst: commit → lag zero (s)", b["until_lag_zero_s"], ""],
                ["burst: commit → member received all (s)", b["until_all_received_s"], ""],
                [f"steady {s['rate_per_s']:.0f}/s: lag p50 (ms)", s["lag_p50_ms"], ""],
                [f"steady {s['rate_per_s']:.0f}/s: lag p99 (ms)", s["lag_p99_ms"], "< 50"],
                [f"steady {s['rate_per_s']:.0f}/s: lag max (ms)", s["lag_max_ms"], ""],
            ],
        )
    )
    print(f"\nwritten: {write_results(f'relay-{args.layer}', machine, results)}")


if __name__ == "__main__":
    main()
