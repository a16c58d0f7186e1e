"""Capture: every change to article and post, from any writer, lands in cdc.event."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import psycopg
import pytest

from cdc.sql import query
from testkit.pg import doorbell, events, psql

ARTICLE_COLUMNS = {"id", "title", "body", "url", "source", "category", "published_at"}
POST_COLUMNS = {"id", "author_id", "body", "visibility", "created_at"}


def test_psql_insert_with_required_columns_only_is_captured_with_defaults(fresh_db, user_id):
    psql(
        fresh_db,
        f"""
        INSERT INTO article (title) VALUES ('Rates rise');
        INSERT INTO post (author_id, body) VALUES ({user_id}, 'hello');
        """,
    )

    article, post = events(fresh_db)
    assert (article["table_name"], article["op"], article["old_row"]) == ("public.article", "insert", None)
    assert set(article["new_row"]) == ARTICLE_COLUMNS
    assert article["new_row"]["title"] == "Rates rise"
    assert article["new_row"]["category"] == "general"
    assert article["new_row"]["body"] == article["new_row"]["url"] == article["new_row"]["source"] == ""
    assert article["new_row"]["published_at"]  # now(), as an ISO 8601 string
    assert (post["table_name"], post["op"]) == ("public.post", "insert")
    assert set(post["new_row"]) == POST_COLUMNS
    assert post["new_row"]["author_id"] == user_id
    assert post["new_row"]["visibility"] == "public"
    assert post["txid"] != article["txid"]  # two autocommit statements, two transactions


def test_plain_psycopg_writer_without_django_is_captured(fresh_db, user_id):
    writer = textwrap.dedent(
        f"""
        import sys, psycopg
        with psycopg.connect(sys.argv[1]) as conn:
            conn.execute("INSERT INTO article (title, category) VALUES ('From Go, say', 'tech')")
            conn.execute("INSERT INTO post (author_id, body) VALUES ({user_id}, 'plain')")
        assert not any(m == "django" or m.startswith("django.") for m in sys.modules), "django imported"
        """
    )
    subprocess.run([sys.executable, "-c", writer, fresh_db], check=True, timeout=60)

    captured = [
        (e["table_name"], e["new_row"].get("title") or e["new_row"]["body"]) for e in events(fresh_db)
    ]
    assert captured == [("public.article", "From Go, say"), ("public.post", "plain")]


def test_rolled_back_insert_leaves_nothing_and_rings_nothing(fresh_db):
    with doorbell(fresh_db) as bell, psycopg.connect(fresh_db) as writer:
        writer.execute("INSERT INTO article (title) VALUES ('never')")
        writer.rollback()
        assert bell.rings_until_now() == 0
        writer.execute("INSERT INTO article (title) VALUES ('kept')")
        writer.commit()
        assert bell.rings_until_now() == 1

    assert [e["new_row"]["title"] for e in events(fresh_db)] == ["kept"]


@pytest.mark.parametrize(
    "body",
    [
        "x" * 1_000_000,
        "Grüße, 東京, Ελλάδα, \U0001f680\U0001f525, e\u0301, 'quotes' \"and\" \\ backslashes\n\t",
        ("\U0001f4f0 newsflash " * 40_000),  # 1 MB of multi-byte text
    ],
    ids=["1MB-ascii", "multibyte", "1MB-emoji"],
)
def test_large_and_multibyte_rows_are_captured_intact(fresh_db, body):
    with psycopg.connect(fresh_db) as conn:
        conn.execute("INSERT INTO article (title, body) VALUES (%s, %s)", (body[:100], body))

    (event,) = events(fresh_db)
    assert event["new_row"]["body"] == body
    assert event["new_row"]["title"] == body[:100]


def test_update_and_delete_carry_the_old_row(fresh_db):
    psql(
        fresh_db,
        """
        INSERT INTO article (title, category) VALUES ('draft', 'tech');
        UPDATE article SET title = 'final', category = 'science';
        UPDATE article SET title = 'final';  -- changes nothing: not a change
        DELETE FROM article;
        """,
    )

    insert, update, delete = events(fresh_db)
    assert insert["op"] == "insert"
    assert update["op"] == "update"
    assert (update["old_row"]["title"], update["old_row"]["category"]) == ("draft", "tech")
    assert (update["new_row"]["title"], update["new_row"]["category"]) == ("final", "science")
    assert delete["op"] == "delete"
    assert delete["new_row"] is None
    assert delete["old_row"] == update["new_row"]


def test_excluded_column_never_appears_in_the_log(fresh_db):
    psql(
        fresh_db,
        """
        ALTER TABLE article ADD COLUMN editor_notes text NOT NULL DEFAULT '';
        SELECT cdc.track('public.article', excluded_columns => '{editor_notes}');
        INSERT INTO article (title, editor_notes) VALUES ('t', 'secret source: Deep Throat');
        UPDATE article SET editor_notes = 'still secret';   -- only a hidden column: no event
        UPDATE article SET title = 't2', editor_notes = 'more secrets';
        DELETE FROM article;
        """,
    )

    log = events(fresh_db)
    assert [e["op"] for e in log] == ["insert", "update", "delete"]
    for e in log:
        for image in (e["new_row"], e["old_row"]):
            assert image is None or ("editor_notes" not in image and "title" in image)
    with psycopg.connect(fresh_db) as conn:
        raw = conn.execute("SELECT string_agg(new_row::text || old_row::text, '') FROM cdc.event").fetchone()
    assert "secret" not in str(raw)


def test_track_rejects_unknown_excluded_columns(fresh_db):
    with psycopg.connect(fresh_db) as conn, pytest.raises(psycopg.errors.RaiseException, match="no_such"):
        conn.execute("SELECT cdc.track('public.article', '{no_such}')")


def test_a_writer_rings_only_while_the_relay_sleeps(fresh_db: str) -> None:
    with doorbell(fresh_db) as bell:  # holds the doorbell lock, as a sleeping relay
        psql(fresh_db, "INSERT INTO article (title) VALUES ('while asleep')")
        assert bell.rings_until_now() == 1
        bell.conn.execute(query("doorbell_wake"))  # awake: writers take the lock shared instead
        with psycopg.connect(fresh_db) as writer:
            writer.execute("INSERT INTO article (title) VALUES ('while awake')")
            held = writer.execute(
                "SELECT mode FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
            ).fetchall()
            assert held == [("ShareLock",)]  # to its end: the relay cannot fall asleep before
        assert bell.rings_until_now() == 0

    assert [e["new_row"]["title"] for e in events(fresh_db)] == ["while asleep", "while awake"]


def test_bulk_insert_of_10000_rows_rings_the_doorbell_once(fresh_db):
    with doorbell(fresh_db) as bell:
        psql(fresh_db, "INSERT INTO article (title) SELECT 'bulk ' || i FROM generate_series(1, 10000) AS i;")
        assert bell.rings_until_now() == 1

    with psycopg.connect(fresh_db) as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT txid) FROM cdc.event").fetchone() == (10000, 1)


def test_doorbell_payload_is_constant_and_small(fresh_db):
    with doorbell(fresh_db) as bell:
        with psycopg.connect(fresh_db) as conn:
            conn.execute("INSERT INTO article (title, body) VALUES ('big', repeat('x', 100000))")
        conn = bell.conn
        conn.execute("NOTIFY test_sync")
        payloads = [n.payload for n in conn.notifies(timeout=5, stop_after=2) if n.channel == "cdc"]
    assert payloads == [""]
