"""`manage.py cdc_status` reports installed, outdated, disabled and missing triggers."""

from __future__ import annotations

import os
import subprocess
import sys

from testkit.pg import psql
from tests.conftest import ROOT


def cdc_status(dsn: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "cdc_status"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": dsn},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def lines(out: str) -> dict[str, str]:
    return {parts[0]: parts[1] for parts in (line.split() for line in out.splitlines()) if len(parts) >= 2}


def test_fresh_install_reports_both_tables_ok(fresh_db):
    done = cdc_status(fresh_db)
    assert done.returncode == 0, done.stderr
    assert lines(done.stdout).items() >= {"public.article": "ok", "public.post": "ok"}.items()


def test_outdated_missing_and_disabled_triggers_are_reported(fresh_db):
    psql(
        fresh_db,
        """
        -- a newer capture function, installed without re-tracking the tables
        CREATE OR REPLACE FUNCTION cdc.capture() RETURNS trigger LANGUAGE plpgsql
            AS $$ BEGIN RETURN NULL; END $$;
        SELECT cdc.track('public.article');
        SELECT cdc.untrack('public.post');
        CREATE TABLE audit (id int);
        SELECT cdc.track('public.audit');
        ALTER TABLE audit DISABLE TRIGGER cdc_capture;
        """,
    )
    done = cdc_status(fresh_db)
    assert done.returncode == 1
    assert "need attention" in done.stderr
    assert (
        lines(done.stdout).items()
        >= {
            "public.article": "ok",
            "public.post": "missing",
            "public.audit": "disabled",
        }.items()
    )

    psql(
        fresh_db,
        "CREATE OR REPLACE FUNCTION cdc.capture() RETURNS trigger"
        " LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END $$",
    )
    assert lines(cdc_status(fresh_db).stdout)["public.article"] == "outdated"
