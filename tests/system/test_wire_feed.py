"""The demo writers insert what they say, with plain psycopg and no Django, and the capture
trigger sees every row they write."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
from django.contrib.auth.hashers import is_password_usable

from core import commands
from testkit.pg import events
from tests.conftest import ROOT


def run(argv: list[str], *python_options: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    return subprocess.run(
        [sys.executable, *python_options, *argv],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def rows(dsn: str, sql: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql).fetchall()


def test_wire_feed_inserts_the_articles_it_reports_in_the_given_categories(fresh_db):
    argv = commands.wire_feed("--database-url", fresh_db, "--count", "30", "--rate", "500", "--seed", "3")
    done = run([*argv, "--categories", "world, tech,arts"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "wire_feed: inserted 30 articles"

    articles = rows(fresh_db, "SELECT title, source, url, category FROM article")
    assert len(articles) == 30
    assert {a[3] for a in articles} == {"world", "tech", "arts"}
    assert all(title and source and url.startswith("https://") for title, source, url, _ in articles)
    captured = [e for e in events(fresh_db) if e["table_name"] == "public.article" and e["op"] == "insert"]
    assert len(captured) == 30


def test_a_duration_writes_the_rows_due_in_it(fresh_db):
    done = run(commands.wire_feed("--duration", "0.5", "--rate", "20"), DATABASE_URL=fresh_db)
    assert done.returncode == 0, done.stderr
    assert rows(fresh_db, "SELECT count(*) FROM article") == [(10,)]


def test_post_feed_creates_its_authors_without_usable_passwords_and_posts_as_them(fresh_db):
    argv = commands.post_feed("--count", "20", "--rate", "500", "--authors", "ada,grace", "--private", "0.5")
    for _ in range(2):  # a second run reuses the authors
        done = run([*argv, "--seed", "1"], DATABASE_URL=fresh_db)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "post_feed: inserted 20 posts"

    users = dict(rows(fresh_db, "SELECT username, password FROM auth_user"))
    assert users.keys() == {"ada", "grace"}
    assert not any(is_password_usable(password) for password in users.values())
    posts = rows(
        fresh_db,
        "SELECT u.username, p.visibility, p.body FROM post AS p JOIN auth_user AS u ON u.id = p.author_id",
    )
    assert len(posts) == 40
    assert {p[0] for p in posts} == {"ada", "grace"}
    assert {p[1] for p in posts} == {"public", "private"}
    assert all(p[2] for p in posts)


def test_ticker_feed_walks_its_symbols_prices_by_updates_in_place(fresh_db):
    argv = commands.ticker_feed("--count", "40", "--rate", "500", "--symbols", "ACME, HOOLI", "--seed", "2")
    done = run(argv, DATABASE_URL=fresh_db)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ticker_feed: updated 40 prices"

    prices = dict(rows(fresh_db, "SELECT symbol, price FROM ticker"))
    assert prices.keys() == {"ACME", "HOOLI"}
    captured = [(e["op"], (e["new_row"] or {}).get("symbol")) for e in events(fresh_db)]
    assert sorted(captured[:2]) == [("insert", "ACME"), ("insert", "HOOLI")]
    assert [op for op, _ in captured[2:]] == ["update"] * 40
    last = {e["new_row"]["symbol"]: e["new_row"]["price"] for e in events(fresh_db)}
    assert {s: float(p) for s, p in prices.items()} == last  # the log ends where the table is


def test_the_writers_import_nothing_of_django(fresh_db):
    writers = (commands.wire_feed, commands.post_feed, commands.ticker_feed)
    for argv in (writer("--count", "1") for writer in writers):
        done = run(argv, "-X", "importtime", DATABASE_URL=fresh_db)
        assert done.returncode == 0, done.stderr
        imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()]
        assert "psycopg" in imported
        assert not [name for name in imported if name.split(".")[0] == "django"]


def test_without_a_database_url_the_writers_say_so():
    done = run(commands.wire_feed("--count", "1"))
    assert done.returncode == 2
    assert "DATABASE_URL" in done.stderr
