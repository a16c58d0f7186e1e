"""`manage.py cdc_status` reports installed, outdated, disabled and missing triggers: the row
trigger (cdc_capture) and the truncate trigger (cdc_truncate) of each table."""

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


def lines(out: str, trigger: str = "cdc_capture") -> dict[str, str]:
    """Each table's state for one of its triggers, as cdc_status prints them."""
    rows = (line.split() for line in out.splitlines())
    return {parts[0]: parts[2] for parts in rows if len(parts) >= 3 and parts[1] == trigger}


def test_fresh_install_reports_every_table_and_both_its_triggers_ok(fresh_db):
    done = cdc_status(fresh_db)
    assert done.returncode == 0, done.stderr
    tables = {
        "public.article": "ok",
        "public.post": "ok",
        "public.ticker": "ok",
        "public.streams_app_bid": "ok",
    }
    assert lines(done.stdout) == tables
    assert lines(done.stdout, "cdc_truncate") == tables


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


def test_a_missing_or_outdated_truncate_trigger_is_reported_and_track_installs_it(fresh_db):
    psql(
        fresh_db,
        """
        DROP TRIGGER cdc_truncate ON article;
        CREATE OR REPLACE FUNCTION cdc.capture_truncate() RETURNS trigger LANGUAGE plpgsql
            AS $$ BEGIN RETURN NULL; END $$;
        """,
    )
    done = cdc_status(fresh_db)
    assert done.returncode == 1
    assert set(lines(done.stdout).values()) == {"ok"}
    assert lines(done.stdout, "cdc_truncate") == {
        "public.article": "missing",
        "public.post": "outdated",
        "public.ticker": "outdated",
        "public.streams_app_bid": "outdated",  # the test app's (tests/streams_app)
    }

    psql(fresh_db, "SELECT cdc.track(table_name::regclass) FROM cdc.capture_status")
    done = cdc_status(fresh_db)
    assert done.returncode == 0, done.stderr
    assert set(lines(done.stdout, "cdc_truncate").values()) == {"ok"}
