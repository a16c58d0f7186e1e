"""What capture costs a writer: insert throughput into the same table with and without it.

In a scratch database (migrations_sql/0001 and 0005 applied), two tables of the article
shape, one plain and one under `cdc.track()`. Each is measured with single-row autocommit
INSERTs of a ~300-byte row from 1 and from 8 writer processes (own connection each, a
warm-up, then a fixed time), and with one 10,000-row INSERT ... SELECT. Every run starts
from empty tables after a CHECKPOINT, and the relay's reading side runs throughout as
cdc_listen's leader does: it reads the log in commit order (cdc/log.py) and waits between
reads on the doorbell (cdc/doorbell.py), so writers ring exactly when they would for it.
Plain and captured runs alternate; rates are medians over rounds, and the cost is the median
of each round's ratio (captured time per insert / plain's). Beside it, the CPU cost: the CPU
time every process involved spent per insert (the writers and their server processes, the
relay, Postgres's own processes), as a multiple of plain's; other load on a shared machine
moves it much less than the time, and at 8 writers on few cores the time follows it.

    .venv/bin/python -m bench.capture [--seconds 3] [--rounds 5] [--database-url URL]
                                      [--variants [--tables T,...]] [--waits]

--variants also measures other ways to capture (bench/capture_variants.sql), to see where
the cost goes; --tables keeps only some of them. Every run also reports the WAL that
Postgres wrote per insert, which every commit waits to flush. --waits samples, every 5 ms
from a process of its own, what the writers' server processes are doing: waiting for their
client's next statement, running, waiting on the WAL (its write lock, its write, its
flush), or waiting on anything else. Results: a Markdown table on stdout,
bench/results/capture.json (with --variants: capture-variants.json).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psycopg
import uvloop
from psycopg import AsyncConnection, sql
from psycopg.types.json import set_json_loads

from bench.common import (
    cpu_seconds,
    machine_facts,
    markdown_table,
    scratch_database,
    server_url,
    write_results,
)
from cdc.doorbell import GATE_NAME, LISTEN, Doorbell
from cdc.log import current_cursor, plan_reads_once, read_batch

HERE = Path(__file__).resolve().parent
# The change log and the capture trigger, as migrated (0005 is the trigger's doorbell).
CDC_SCHEMA = [HERE.parent / "migrations_sql" / f for f in ("0001_cdc_schema.sql", "0005_doorbell_lock.sql")]
POLL_INTERVAL = 1.0  # settings.CDC_POLL_INTERVAL's default

# The issues' goals: what capture may cost, as a multiple of the plain insert's time.
GOALS = {1: 1.3, 8: 1.3}
DEFAULTS = {"seconds": 3.0, "rounds": 5}  # of each insert run, and of runs per table and writer count
WRITERS = (1, 8)
BULK_ROWS = 10_000
BULK_RUNS = 5
WARMUP_SECONDS = 1.0

# Measured table (article_<name>) -> how it captures.
TABLES = {
    "plain": "no capture",
    "captured": "cdc.track(): the shipped row trigger, change log + doorbell rung while the relay sleeps",
}
VARIANTS = {
    "ring_always": "the trigger before migration 0005: change log + doorbell rung by every writer",
    "no_doorbell": "shipped trigger without its doorbell (change log only)",
    "flag_doorbell": "shipped trigger that reads a flag without a lock where it takes the doorbell lock"
    " (a lock-free doorbell's writer; the flag says awake, so the relay reads by the timer)",
    "doorbell_only": "row trigger that only calls pg_notify (no change log)",
    "statement_doorbell": "no_doorbell + a statement-level pg_notify",
    "one_ringer": "statement_doorbell, rung only if pg_try_advisory_xact_lock() succeeds",
    "statement_capture": "statement-level trigger: one INSERT ... SELECT from the transition table",
    "unindexed_log": "no_doorbell into a copy of cdc.event without its two indexes",
    "one_index": "no_doorbell into a copy of cdc.event with one index, on (txid, id), for its two",
    "no_row_images": "change log without the row images (no to_jsonb), no doorbell",
    "minimal_log": "a row trigger that inserts one constant into a one-column table without index",
    "empty_trigger": "a plpgsql row trigger that does nothing",
}
DESCRIPTIONS = {**TABLES, **VARIANTS}

# cdc.event, and the variants' copies of it.
LOGS = (
    "SELECT relname FROM pg_class"
    " WHERE relnamespace = 'cdc'::regnamespace AND relkind = 'r' AND relname LIKE 'event%'"
)
SERVER_PROCESSES = (
    "SELECT pid, application_name FROM pg_stat_activity"
    " WHERE (datname = current_database() OR datname IS NULL) AND application_name <> %s"
)
WAL_INSERTED = "SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn"  # bytes of WAL so far
# --waits: the writers' server processes, sampled by a connection that no part counts.
WRITER_NAME, SAMPLER_NAME = "bench capture writer", "bench capture sampler"
WRITERS_NOW = (
    "SELECT state, wait_event_type, wait_event FROM pg_stat_activity"
    " WHERE application_name = %s AND datname = current_database()"
)
SAMPLE_EVERY = 0.005
WAIT_STATES = ("client", "running", "wal", "other")
# The relay's connections: its reading one (follow() names it) and the doorbell's gate.
RELAY_CONNECTIONS = ("bench capture relay", GATE_NAME)
RELAY = 0  # others_cpu()'s key for this process: the relay's thread (the main one sleeps)
# Where capture's CPU goes: the parts every process involved belongs to.
PARTS = ("writers", "relay", "postgres")
INSERT = "INSERT INTO {} (title, body, url, source, category) VALUES (%s, %s, %s, %s, %s)"
BULK_INSERT = (
    "INSERT INTO {} (title, body, url, source, category)"
    " SELECT %s || i, %s, %s || i, %s, %s FROM generate_series(1, %s) AS i"
)
BODY = (
    "Markets moved little after the announcement; analysts now expect the first cut in the "
    "spring, citing slower wage growth and easing energy prices across the region."
)
CATEGORIES = ("economy", "politics", "tech", "science", "sport")


def article_row(n: int) -> tuple[str, str, str, str, str]:
    """A realistic article, about 300 bytes; `n` makes each one different."""
    return (
        f"Central bank holds rates steady as inflation cools, #{n}",
        BODY,
        f"https://news.example.com/2025/11/23/central-bank-holds-rates-{n}",
        "Example Wire",
        CATEGORIES[n % len(CATEGORIES)],
    )


@dataclass
class InsertRun:
    rate: float  # inserts/s, all writers together
    latencies: list[float]  # seconds, one per insert in the measured window
    cpu_per_insert: float  # seconds of CPU, every process involved, in the measured window
    cpu_parts: dict[str, float]  # the same by part (PARTS): writers and their server processes,
    # the relay (its thread and connections), Postgres's own processes (and the bench's admin)
    wal_per_insert: float  # bytes of WAL written in the measured window, per insert
    waits: dict[str, float] | None  # --waits: writers' server processes in each WAIT_STATES, on average


def write_rows(dsn: str, table: str, seconds: float, start: Any, out: Any) -> None:
    """One writer process: single-row autocommit INSERTs until the time is up. Sends its
    latencies, its server process's id, and the CPU time both spent in the measured window."""
    insert = sql.SQL(INSERT).format(sql.Identifier(table))
    latencies = []
    with psycopg.connect(dsn, autocommit=True, application_name=WRITER_NAME) as conn:
        server = conn.info.backend_pid
        conn.execute(insert, article_row(0), prepare=True)  # connected and prepared before the clock
        start.wait()
        measure_from = time.monotonic() + WARMUP_SECONDS
        until = measure_from + seconds
        n, cpu_from = 0, None
        while (began := time.monotonic()) < until:
            if cpu_from is None and began >= measure_from:
                cpu_from = time.process_time() + cpu_seconds(server)
            n += 1
            conn.execute(insert, article_row(n), prepare=True)
            if began >= measure_from:
                latencies.append(time.monotonic() - began)
        cpu = time.process_time() + cpu_seconds(server) - (cpu_from or 0.0)
        out.put((latencies, server, cpu))


def insert_run(
    admin: psycopg.Connection, dsn: str, table: str, writers: int, seconds: float, waits: bool = False
) -> InsertRun:
    reset(admin, table)
    spawn = mp.get_context("spawn")  # a clean process: nothing inherited from this one's connections
    start, out = spawn.Barrier(writers + 1), spawn.Queue()
    procs = [spawn.Process(target=write_rows, args=(dsn, table, seconds, start, out)) for _ in range(writers)]
    sampling, sampled = spawn.Event(), spawn.Queue()
    if waits:  # started, and connected, before the clock
        procs.append(spawn.Process(target=sample_waits, args=(dsn, sampling, sampled)))
    for proc in procs:
        proc.start()
    start.wait(timeout=60)
    time.sleep(WARMUP_SECONDS)  # the writers' clocks: the measured window begins
    others_from, wal_from = others_cpu(admin), wal_inserted(admin)
    sampling.set()
    time.sleep(seconds)
    others, wal = others_cpu(admin), wal_inserted(admin)
    sampling.clear()
    waited = sampled.get(timeout=60) if waits else None
    latencies, parts = [], dict.fromkeys(PARTS, 0.0)
    for _ in range(writers):
        their_latencies, server, their_cpu = out.get(timeout=seconds + 60)
        latencies += their_latencies
        parts["writers"] += their_cpu
        others.pop(server, None)
    for proc in procs:
        proc.join(timeout=10)
        if proc.exitcode != 0:
            raise RuntimeError(f"a writer into {table} failed (exit code {proc.exitcode})")
    for pid, (used, part) in others.items():
        if pid in others_from:
            parts[part] += used - others_from[pid][0]
    n = len(latencies)
    return InsertRun(
        rate=n / seconds,
        latencies=latencies,
        cpu_per_insert=sum(parts.values()) / n,
        cpu_parts={part: used / n for part, used in parts.items()},
        wal_per_insert=(wal - wal_from) / n,
        waits=waited,
    )


def wal_inserted(admin: psycopg.Connection) -> int:
    (inserted,) = admin.execute(WAL_INSERTED).fetchone() or (0,)
    return int(inserted)


def sample_waits(dsn: str, sampling: Any, out: Any) -> None:
    """A process of its own (--waits): while `sampling` is set, every SAMPLE_EVERY, counts the
    writers' server processes in each WAIT_STATES; sends the average count of each."""
    counts, samples = dict.fromkeys(WAIT_STATES, 0), 0
    with psycopg.connect(dsn, autocommit=True, application_name=SAMPLER_NAME) as conn:
        sampling.wait(timeout=60)
        while sampling.is_set():
            for state, wait_type, wait_event in conn.execute(WRITERS_NOW, (WRITER_NAME,)).fetchall():
                counts[wait_state(state, wait_type, wait_event)] += 1
            samples += 1
            time.sleep(SAMPLE_EVERY)
    out.put({state: count / max(samples, 1) for state, count in counts.items()})


def wait_state(state: str, wait_type: str | None, wait_event: str | None) -> str:
    """What a writer's server process is doing, as one of WAIT_STATES."""
    if state != "active" or wait_type == "Client":  # idle, or reading the rest of a statement
        return "client"
    if wait_type is None:
        return "running"  # on a core, or waiting for one
    return "wal" if (wait_event or "").startswith("WAL") else "other"  # WALWrite, WALSync, WALInsert


def others_cpu(admin: psycopg.Connection) -> dict[int, tuple[float, str]]:
    """CPU time so far, and part, of this process (the relay's thread) and of the server's
    processes for this database and for none (Postgres's own), writers' too (the caller
    drops those, which they count themselves), by pid."""
    used = {RELAY: (time.process_time(), "relay")}
    for pid, application in admin.execute(SERVER_PROCESSES, (SAMPLER_NAME,)).fetchall():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):  # a connection that just ended
            used[pid] = (cpu_seconds(pid), "relay" if application in RELAY_CONNECTIONS else "postgres")
    return used


def bulk_seconds(admin: psycopg.Connection, table: str) -> float:
    """One INSERT ... SELECT of BULK_ROWS rows, in its own transaction."""
    reset(admin, table)
    bulk = sql.SQL(BULK_INSERT).format(sql.Identifier(table))
    title, body, url, source, category = article_row(0)
    began = time.perf_counter()
    admin.execute(bulk, (title, body, url, source, category, BULK_ROWS))
    return time.perf_counter() - began


def reset(admin: psycopg.Connection, table: str) -> None:
    """Same start for every run: empty tables, and no checkpoint debt left by the last run."""
    logs = admin.execute(LOGS).fetchall()
    admin.execute(
        sql.SQL("TRUNCATE {}").format(
            sql.SQL(", ").join([sql.Identifier(table), *(sql.Identifier("cdc", name) for (name,) in logs)])
        )
    )
    admin.execute("CHECKPOINT")


@contextmanager
def relaying(dsn: str) -> Iterator[None]:
    """The relay's reading side, in a thread of its own (on uvloop, as cdc_listen runs), from
    now until the block ends."""
    ready, loop = threading.Event(), uvloop.new_event_loop()
    stopping = asyncio.Event()
    thread = threading.Thread(
        target=loop.run_until_complete, args=(follow(dsn, ready, stopping),), name="relay", daemon=True
    )
    thread.start()
    if not ready.wait(timeout=30):
        raise RuntimeError("the relay did not connect")
    try:
        yield
    finally:
        loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout=30)
        loop.close()


async def follow(dsn: str, ready: threading.Event, stopping: asyncio.Event) -> None:
    """Read every change in commit order as Relay._lead does, without storing or handing on."""
    async with await AsyncConnection.connect(
        dsn, autocommit=True, application_name=RELAY_CONNECTIONS[0]
    ) as conn:
        set_json_loads(orjson.loads, conn)
        await conn.execute(LISTEN)
        await plan_reads_once(conn)
        cursor = await current_cursor(conn)
        doorbell = await Doorbell.open(dsn, conn, POLL_INTERVAL, stopping)
        ready.set()
        try:
            while not stopping.is_set():
                batch = await read_batch(conn, cursor)
                cursor = batch.next_cursor()
                if batch.complete and batch.cursor.until is None:
                    await doorbell.wait(found=bool(batch.changes))
        finally:
            await doorbell.close()


def measure(
    dsn: str, tables: list[str], seconds: float, rounds: int, waits: bool = False
) -> dict[str, dict[str, Any]]:
    """Every table under every workload. Within a round the tables' runs follow each other,
    so each is compared with the plain run next to it: load that comes and goes on a shared
    machine then moves both sides of a ratio together."""
    runs: dict[str, dict[int, list[InsertRun]]] = {t: {w: [] for w in WRITERS} for t in tables}
    bulk: dict[str, list[float]] = {t: [] for t in tables}
    with psycopg.connect(dsn, autocommit=True) as admin, relaying(dsn):
        for round_no in range(1, rounds + 1):
            for writers in WRITERS:
                for table in tables:
                    run = insert_run(admin, dsn, f"article_{table}", writers, seconds, waits)
                    runs[table][writers].append(run)
                    print(f"round {round_no}, {writers} writer(s), {table}: {run.rate:,.0f}/s", flush=True)
        for _ in range(BULK_RUNS):
            for table in tables:
                bulk[table].append(bulk_seconds(admin, f"article_{table}"))
    return {table: summarise(runs[table], bulk[table], runs["plain"], bulk["plain"]) for table in tables}


def summarise(
    runs: dict[int, list[InsertRun]],
    bulk: list[float],
    plain_runs: dict[int, list[InsertRun]],
    plain_bulk: list[float],
) -> dict[str, Any]:
    """Medians, and the cost: the median over rounds of this table's time per insert as a
    multiple of the plain table's in the same round."""
    result: dict[str, Any] = {}
    for writers, done in runs.items():
        latencies = sorted(lat for run in done for lat in run.latencies)
        pairs = list(zip(done, plain_runs[writers], strict=True))
        ratios = [plain.rate / run.rate for run, plain in pairs]
        cpu_ratios = [run.cpu_per_insert / plain.cpu_per_insert for run, plain in pairs]
        result[f"writers_{writers}"] = {
            "inserts_per_second": round(statistics.median(run.rate for run in done)),
            "cost_vs_plain": round(statistics.median(ratios), 3),
            "rounds": [round(run.rate) for run in done],
            "cpu_us_per_insert": round(1e6 * statistics.median(run.cpu_per_insert for run in done), 1),
            "cpu_cost_vs_plain": round(statistics.median(cpu_ratios), 3),
            "cpu_us_per_insert_by_part": {
                part: round(1e6 * statistics.median(run.cpu_parts[part] for run in done), 1) for part in PARTS
            },
            "latency_ms_p50": round(1000 * percentile(latencies, 0.50), 3),
            "latency_ms_p99": round(1000 * percentile(latencies, 0.99), 3),
            "wal_bytes_per_insert": round(statistics.median(run.wal_per_insert for run in done)),
        }
        if all(run.waits is not None for run in done):
            result[f"writers_{writers}"]["writer_processes_by_state"] = {
                state: round(statistics.median(run.waits[state] for run in done if run.waits), 2)
                for state in WAIT_STATES
            }
    result[f"bulk_{BULK_ROWS}"] = {
        "milliseconds": round(1000 * statistics.median(bulk), 1),
        "cost_vs_plain": round(statistics.median(s / p for s, p in zip(bulk, plain_bulk, strict=True)), 3),
        "runs": [round(1000 * s, 1) for s in bulk],
    }
    return result


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


SUMMARY_HEADERS = ["workload", "plain", "captured", "captured cost", "goal", "CPU cost"]
DETAIL_HEADERS = [
    "table",
    *(f"{w}w: {h}" for w in WRITERS for h in ("/s", "p50 / p99 ms", "cost", "CPU µs", "CPU cost")),
    f"{BULK_ROWS:,} rows: ms",
    "cost",
]


def summary_rows(results: dict[str, dict[str, Any]]) -> list[list[str]]:
    """The issue's table: plain against captured, with the goal."""
    plain, captured = results["plain"], results["captured"]
    rows = []
    for writers in WRITERS:
        workload = f"writers_{writers}"
        ratio = captured[workload]["cost_vs_plain"]
        rows.append(
            [
                f"{writers} writer{'s' if writers > 1 else ''}: single-row inserts/s",
                f"{plain[workload]['inserts_per_second']:,}",
                f"{captured[workload]['inserts_per_second']:,}",
                f"{ratio:.2f}",
                f"<= {GOALS[writers]} ({'met' if ratio <= GOALS[writers] else 'missed'})",
                cpu_cost(captured[workload]),
            ]
        )
    workload = f"bulk_{BULK_ROWS}"
    rows.append(
        [
            f"one {BULK_ROWS:,}-row INSERT ... SELECT: ms",
            f"{plain[workload]['milliseconds']:,}",
            f"{captured[workload]['milliseconds']:,}",
            f"{captured[workload]['cost_vs_plain']:.2f}",
            "none set",
            "",
        ]
    )
    return rows


def detail_rows(results: dict[str, dict[str, Any]]) -> list[list[str]]:
    """Every table measured: rate, latencies and cost against plain."""
    rows = []
    for table, result in results.items():
        row = [table]
        for writers in WRITERS:
            one = result[f"writers_{writers}"]
            row += [
                f"{one['inserts_per_second']:,}",
                f"{one['latency_ms_p50']:.2f} / {one['latency_ms_p99']:.2f}",
                f"{one['cost_vs_plain']:.2f}",
                f"{one['cpu_us_per_insert']:,}" if "cpu_us_per_insert" in one else "",
                cpu_cost(one),
            ]
        bulk = result[f"bulk_{BULK_ROWS}"]
        rows.append([*row, f"{bulk['milliseconds']:,}", f"{bulk['cost_vs_plain']:.2f}"])
    return rows


PARTS_HEADERS = ["table", *(f"{w}w: CPU µs {part}" for w in WRITERS for part in PARTS)]


def parts_rows(results: dict[str, dict[str, Any]]) -> list[list[str]]:
    """Every table measured: the CPU per insert of each part, with what it adds to plain's."""
    rows = []
    plain = results["plain"]
    for table, result in results.items():
        row = [table]
        for writers in WRITERS:
            workload = f"writers_{writers}"
            ours, base = (
                result[workload].get("cpu_us_per_insert_by_part"),
                plain[workload].get("cpu_us_per_insert_by_part"),
            )
            for part in PARTS:
                if ours is None or base is None:  # older results
                    row.append("")
                elif table == "plain":
                    row.append(f"{ours[part]:,}")
                else:
                    row.append(f"{ours[part]:,} ({ours[part] - base[part]:+,.0f})")
        rows.append(row)
    return rows


WAL_HEADERS = [
    "table",
    *(f"{w}w: WAL B/insert" for w in WRITERS),
    *(f"8w: {state}" for state in WAIT_STATES),
]


def wal_rows(results: dict[str, dict[str, Any]]) -> list[list[str]]:
    """Every table measured: the WAL per insert, and (--waits) what the 8 writers' server
    processes were doing, on average how many of them in each state."""
    rows = []
    for table, result in results.items():
        wal = [result[f"writers_{w}"].get("wal_bytes_per_insert") for w in WRITERS]
        states = result["writers_8"].get("writer_processes_by_state", {})
        rows.append(
            [table]
            + [f"{b:,}" if b is not None else "" for b in wal]  # older results have neither
            + [f"{states[state]:.2f}" if state in states else "" for state in WAIT_STATES]
        )
    return rows


def cpu_cost(one: dict[str, Any]) -> str:
    return f"{one['cpu_cost_vs_plain']:.2f}" if "cpu_cost_vs_plain" in one else ""  # older results


def prepare(dsn: str, variants: bool) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for path in CDC_SCHEMA:
            conn.execute(path.read_text())
        conn.execute((HERE / "capture.sql").read_text())
        if variants:
            conn.execute((HERE / "capture_variants.sql").read_text())


def report(machine: dict[str, Any], settings: dict[str, Any], results: dict[str, dict[str, Any]]) -> None:
    pg = machine["postgres"]
    print(
        f"\n{machine['cores']} cores, PostgreSQL {pg['server_version']}, fsync={pg['fsync']},"
        f" synchronous_commit={pg['synchronous_commit']}; {settings['seconds']:g} s runs,"
        f" {settings['rounds']} rounds; cost = time per insert / plain's, median of rounds;"
        " CPU: of every process involved, per insert\n"
    )
    print(markdown_table(SUMMARY_HEADERS, summary_rows(results)))
    print("\n" + markdown_table(DETAIL_HEADERS, detail_rows(results)))
    print("\nCPU per insert by part (beside it, what it adds to plain's):\n")
    print(markdown_table(PARTS_HEADERS, parts_rows(results)) + "\n")
    print(
        "WAL written per insert; with --waits, the 8 writers' server processes by what they were"
        " doing (on average how many: waiting for their client, running, waiting on the WAL, other):\n"
    )
    print(markdown_table(WAL_HEADERS, wal_rows(results)) + "\n")
    for table in results:
        print(f"- {table}: {DESCRIPTIONS[table]}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seconds", type=float, default=DEFAULTS["seconds"], help="measured time of each insert run"
    )
    parser.add_argument(
        "--rounds", type=int, default=DEFAULTS["rounds"], help="runs per table and writer count"
    )
    parser.add_argument("--database-url", help="server to measure (default: DATABASE_URL, else embedded)")
    parser.add_argument("--variants", action="store_true", help="also measure " + ", ".join(VARIANTS))
    parser.add_argument(
        "--tables", help="with --variants: only these variants, comma-separated (beside plain and captured)"
    )
    parser.add_argument("--waits", action="store_true", help="sample what the writers' server processes do")
    args = parser.parse_args()

    tables = [*TABLES, *(VARIANTS if args.variants else ())]
    if args.tables:
        wanted = set(args.tables.split(","))
        if unknown := wanted - set(tables):
            parser.error(f"no such table: {', '.join(sorted(unknown))}")
        tables = [t for t in tables if t in TABLES or t in wanted]
    with scratch_database(server_url(args.database_url), "bench_capture") as dsn:
        machine = machine_facts(dsn)
        prepare(dsn, args.variants)
        results = measure(dsn, tables, args.seconds, args.rounds, args.waits)
    settings = {
        "seconds": args.seconds,
        "rounds": args.rounds,
        "waits": args.waits,
        "warmup_seconds": WARMUP_SECONDS,
        "bulk_rows": BULK_ROWS,
        "bulk_runs": BULK_RUNS,
        "goals": GOALS,
        "tables": {table: DESCRIPTIONS[table] for table in tables},
    }
    report(machine, settings, results)
    path = write_results(
        "capture-variants" if args.variants else "capture",
        machine,
        {"settings": settings, "measured": results},
    )
    print(f"\nwritten: {path.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
