"""Tests run against a real Postgres: `DATABASE_URL` when set, the embedded server otherwise.

`manage.py migrate` builds a template database once per session; `fresh_db` clones it
(CREATE DATABASE ... TEMPLATE, a file copy) for each test, so every test has its own
database to commit to, LISTEN on, and point real processes at.

Three folders, each a marker of the same name (`python3 dev.py test -m unit`):
unit/ pure logic, in seconds; integration/ against a real Postgres (and Redis), in this
process or with a helper process; system/ the whole system as real processes (the web server,
cdc_listen, the demo writers, Chromium). A test in another folder may be marked `unit` too
when it needs no more than a plain query.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.async_api import Browser, async_playwright
from psycopg import sql

from core.commands import WEB_SERVERS
from core.database import conninfo
from testkit.live_servers import LiveSystem, live_system
from testkit.pg import DisposableServer
from testkit.processes import migrate

# Fixtures of the websocket tests (live_db, layer, relay, django_db_at), for every test module.
pytest_plugins = ["tests.consumer_env"]

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() == "true"


LAYERS = ("unit", "integration", "system")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test is marked by its folder."""
    for item in items:
        layer = item.path.parent.name
        if layer in LAYERS:
            item.add_marker(layer)


def require(condition: bool, reason: str) -> None:
    """Skip when a tool or server is missing; under CI=true, fail instead: nothing is
    silently left out of CI."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def template_db() -> Iterator[str]:
    """A database migrated once per session by the real `manage.py migrate`."""
    name = f"livefeed_template_{os.getpid()}"
    with psycopg.connect(conninfo(), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        migrate(conninfo(dbname=name))
        yield name
    finally:
        drop_database(name)


@pytest.fixture
def fresh_db(template_db: str) -> Iterator[str]:
    """A new database cloned from the migrated template; yields its conninfo."""
    name = f"cdc_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(conninfo(), autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template_db)
            )
        )
    try:
        yield conninfo(dbname=name)
    finally:
        drop_database(name)


def drop_database(name: str) -> None:
    with psycopg.connect(conninfo(), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
async def aconn(fresh_db: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    async with await psycopg.AsyncConnection.connect(fresh_db, autocommit=True) as conn:
        yield conn


@pytest.fixture
def user_id(fresh_db: str) -> int:
    """A Django user, made with SQL like an external system would (posts need an author)."""
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO auth_user (username, password, is_superuser, is_staff, is_active,"
            " first_name, last_name, email, date_joined)"
            " VALUES ('alice', '!', false, false, true, '', '', '', now()) RETURNING id"
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def disposable_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DisposableServer]:
    """A migrated Postgres server of the test's own: it may be restarted or killed."""
    server = DisposableServer(tmp_path_factory.mktemp("pg") / "data")
    try:
        migrate(server.dsn)
        yield server
    finally:
        server.cleanup()


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def chromium() -> Path:
    require(CHROMIUM.exists(), "Debian's chromium is not installed (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    """A real headless Chromium (Debian's package), for the browser tests (tests/browser.py)."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture(params=WEB_SERVERS)
def each_web_server(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The test runs once on each ASGI server the project supports (core/commands.py); the
    others run on the default one."""
    monkeypatch.setenv("WEB_SERVER", request.param)
    return str(request.param)


@pytest.fixture
def system(fresh_db: str) -> Iterator[LiveSystem]:
    """The live system as real processes on the test's database (testkit/live_servers.py)."""
    with live_system(fresh_db) as running:
        yield running
