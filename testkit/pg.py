"""Small helpers for tests that talk to Postgres the way outside writers do."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from pgserver._commands import POSTGRES_BIN_PATH

from cdc.doorbell import CHANNEL, LISTEN
from cdc.sql import query

PSQL = POSTGRES_BIN_PATH / "psql"  # shipped by pgserver, so present wherever the project is


def psql(dsn: str, script: str) -> str:
    """Run `script` with the real psql client, as a cron job or a DBA would."""
    done = subprocess.run(
        [PSQL, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", dsn],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def events(dsn: str) -> list[dict[str, Any]]:
    with psycopg.connect(dsn) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute("SELECT * FROM cdc.event ORDER BY id").fetchall()


class Doorbell:
    """A LISTEN connection that counts doorbell rings between two points in time. It holds
    the doorbell lock, as a sleeping relay does (cdc/doorbell.py): writers ring only then."""

    def __init__(self, dsn: str) -> None:
        self.channel = CHANNEL
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.conn.execute(query("doorbell_sleep"))
        self.conn.execute(LISTEN)
        self.conn.execute("LISTEN test_sync")

    def rings_until_now(self, timeout: float = 10.0) -> int:
        """Rings received up to a marker sent now: NOTIFYs are delivered in commit order,
        so once the marker arrives, every earlier ring has too."""
        with psycopg.connect(self.conn.info.dsn, autocommit=True) as other:
            other.execute("NOTIFY test_sync")
        rings = 0
        for note in self.conn.notifies(timeout=timeout):
            if note.channel == "test_sync":
                return rings
            rings += note.channel == self.channel
        raise AssertionError(f"the sync marker did not arrive within {timeout}s")


@contextmanager
def doorbell(dsn: str) -> Iterator[Doorbell]:
    bell = Doorbell(dsn)
    try:
        yield bell
    finally:
        bell.conn.close()


class DisposableServer:
    """A Postgres server of the test's own (pgserver), so a test may restart it."""

    def __init__(self, data_dir: Path) -> None:
        from pgserver.postgres_server import get_server

        self.server = get_server(data_dir, cleanup_mode="delete")
        self.dsn = self.server.get_uri()

    def restart(self) -> None:
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]  # made at import time

        pg_ctl(["-w", "-m", "fast", "restart"], pgdata=self.server.pgdata, user=self.server.system_user)

    def cleanup(self) -> None:
        self.server.cleanup()
