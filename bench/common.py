"""What every benchmark in bench/ shares: a scratch database on the server being measured,
the facts of the machine, a Markdown table for the terminal and a JSON file for the record.

Run benchmarks as modules from the repository root (`.venv/bin/python -m bench.capture`),
so that `bench.common` and `core` import without path tricks.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import os
import platform
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from core.database import database_url

RESULTS_DIR = Path(__file__).resolve().parent / "results"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def server_url(url: str | None = None) -> str:
    """The server to measure: `url`, else DATABASE_URL, else the project's embedded Postgres
    (started for this process and stopped when it exits, unless someone else holds it)."""
    return url or database_url()


@contextmanager
def scratch_database(server: str, prefix: str) -> Iterator[str]:
    """A new, empty database on `server`, dropped afterwards (even on error); yields its conninfo."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(server, dbname=name)
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def machine_facts(dsn: str) -> dict[str, Any]:
    """What a reader needs to compare two result files. Call it before measuring: the load
    average then says whether something else was busy on the machine."""
    with psycopg.connect(dsn) as conn:
        settings: dict[str, str] = dict(
            conn.execute(
                "SELECT name, current_setting(name) FROM unnest(%s::text[]) AS name",
                (["server_version", "fsync", "synchronous_commit", "shared_buffers", "max_wal_size"],),
            ).fetchall()
        )
    server = conninfo_to_dict(dsn)
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "postgres": {"host": server.get("host", ""), "port": server.get("port", ""), **settings},
    }


def _cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor()
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (fields 14 and 15 of /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub Markdown table: the first column names the row, the others are right-aligned."""
    lines = [list(headers), ["---"] + ["---:"] * (len(headers) - 1), *([str(v) for v in row] for row in rows)]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def write_results(name: str, machine: dict[str, Any], results: dict[str, Any]) -> Path:
    """Write bench/results/<name>.json (atomically: a crash leaves the old file whole)."""
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    tmp = path.with_suffix(".tmp")
    machine = {**machine, "load_average_1m_at_end": round(os.getloadavg()[0], 2)}
    document = {"benchmark": name, "machine": machine, "results": results}
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    tmp.replace(path)
    return path


async def pause(stopping: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less when `stopping` is set: pacing, never synchronisation."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)
