"""cdc_listen end to end: real Postgres, real cdc_listen processes, a group member in
another process, psql and psycopg as the writers."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator

import psycopg
import pytest

from cdc.routing import own_group, partition_group, stream_group
from testkit.pg import psql
from testkit.processes import Process, cdc_listen

FAST = ("--poll-interval", "0.2")


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for proc in started:
        proc.stop()


@pytest.fixture
def start_listener(fresh_db: str, processes: list[Process]) -> Callable[..., Process]:
    def start(dsn: str = fresh_db, name: str = "cdc_listen", wait: str = "leader gained") -> Process:
        proc = cdc_listen(dsn, *FAST, name=name)
        processes.append(proc)
        proc.wait_for(wait)
        return proc

    return start


@pytest.fixture
def member(fresh_db: str, processes: list[Process]) -> Callable[..., Process]:
    """A group member in its own process, in the `cdc.articles` group unless told otherwise."""

    def start(*groups: str, dsn: str = fresh_db) -> Process:
        argv = [sys.executable, "tests/group_member.py", *(groups or ("cdc.articles",))]
        proc = Process(argv, {"DATABASE_URL": dsn}, "member")
        processes.append(proc)
        proc.wait_for("^ready$")
        return proc

    return start


def titles(member: Process) -> list[str]:
    return [json.loads(line)["title"] for line in member.lines if line.startswith("{")]


def wait_for_title(member: Process, title: str, timeout: float = 20.0) -> None:
    member.wait_for(f'"title": "{title}"', timeout)


def test_psql_insert_reaches_a_group_member_in_another_process(start_listener, member, fresh_db):
    start_listener()
    articles = member("cdc.articles")
    psql(fresh_db, "INSERT INTO article (title, category) VALUES ('hello', 'tech')")

    line = json.loads(articles.wait_for('"title": "hello"'))
    assert line["op"] == "insert"
    assert line["stream"] == "articles"
    tick, event_id = map(int, line["position"].split(":"))
    assert tick >= 1
    assert event_id == line["id"]


def insert_rows(dsn: str, count: int, prefix: str = "row") -> threading.Thread:
    def write() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for i in range(count):
                conn.execute("INSERT INTO article (title) VALUES (%s)", (f"{prefix} {i}",))

    writer = threading.Thread(target=write)
    writer.start()
    return writer


def test_kill_9_while_a_writer_inserts_loses_nothing(start_listener, member, fresh_db):
    listener = start_listener()
    articles = member()
    writer = insert_rows(fresh_db, 2000)
    wait_for_title(articles, "row 200")
    listener.kill()  # SIGKILL: no chance to store anything
    start_listener()
    writer.join()
    wait_for_title(articles, "row 1999")

    seen = Counter(titles(articles))
    assert {f"row {i}" for i in range(2000)} <= set(seen), "rows were lost"


def test_terminated_connection_recovers_and_relays_what_was_written_meanwhile(
    start_listener, member, fresh_db
):
    listener = start_listener()
    articles = member()
    psql(
        fresh_db,
        """
        SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'cdc_listen';
        INSERT INTO article (title) SELECT 'during outage ' || i FROM generate_series(1, 50) AS i;
        """,
    )
    listener.wait_for("reconnecting")
    wait_for_title(articles, "during outage 50")
    assert {f"during outage {i}" for i in range(1, 51)} <= set(titles(articles))


def test_standby_takes_over_within_5_seconds_and_nothing_is_lost(start_listener, member, fresh_db):
    first = start_listener(name="first")
    second = start_listener(name="second", wait="standing by")
    articles = member()
    psql(fresh_db, "INSERT INTO article (title) SELECT 'before ' || i FROM generate_series(1, 20) AS i")
    wait_for_title(articles, "before 20")
    while_first_led = Counter(titles(articles))

    first.kill()
    killed_at = time.monotonic()
    psql(fresh_db, "INSERT INTO article (title) VALUES ('after failover')")
    second.wait_for("leader gained", timeout=10)
    wait_for_title(articles, "after failover", timeout=10)
    takeover = time.monotonic() - killed_at

    assert takeover < 5, f"the standby took {takeover:.1f}s to relay"
    relayed_once = all(while_first_led[f"before {i}"] == 1 for i in range(1, 21))
    assert relayed_once, "the standby relayed while a leader led"
    # The first leader may die between sending a tick and recording it as relayed:
    # the standby then sends that tick again (at least once), but never skips one.
    seen = Counter(titles(articles))
    assert all(seen[f"before {i}"] >= 1 for i in range(1, 21))
    assert seen["after failover"] == 1


def test_commit_order_rollbacks_and_a_long_transaction_hold_end_to_end(start_listener, member, fresh_db):
    start_listener()
    articles = member()
    with psycopg.connect(fresh_db) as long_tx, psycopg.connect(fresh_db) as rolled_back:
        long_tx.execute("INSERT INTO article (title) VALUES ('inserted first, committed last')")
        rolled_back.execute("INSERT INTO article (title) VALUES ('rolled back')")
        psql(fresh_db, "INSERT INTO article (title) VALUES ('inserted second, committed first')")
        wait_for_title(articles, "inserted second, committed first")
        rolled_back.rollback()
        long_tx.commit()
    wait_for_title(articles, "inserted first, committed last")
    psql(fresh_db, "INSERT INTO article (title) VALUES ('marker')")
    wait_for_title(articles, "marker")

    assert titles(articles) == [
        "inserted second, committed first",
        "inserted first, committed last",
        "marker",
    ]


def test_sigterm_exits_0_and_a_restart_resends_nothing(start_listener, member, fresh_db):
    listener = start_listener()
    articles = member()
    psql(fresh_db, "INSERT INTO article (title) SELECT 'before stop ' || i FROM generate_series(1, 100) AS i")
    wait_for_title(articles, "before stop 100")

    listener.signal(signal.SIGTERM)
    started = time.monotonic()
    assert listener.popen.wait(timeout=5) == 0
    assert time.monotonic() - started < 3
    assert "cdc_listen stopped" in listener.output

    start_listener()
    psql(fresh_db, "INSERT INTO article (title) VALUES ('after restart')")
    wait_for_title(articles, "after restart")
    seen = Counter(titles(articles))
    assert max(seen.values()) == 1, [t for t, n in seen.items() if n > 1]
    assert len(seen) == 101


def test_private_posts_reach_only_the_authors_own_group(start_listener, member, fresh_db, user_id):
    start_listener()
    everyone, by_author = (
        member(stream_group("posts")),
        member(partition_group("posts", "author_id", user_id)),
    )
    own = member(own_group("posts", user_id))
    psql(
        fresh_db,
        f"""
        INSERT INTO post (author_id, body, visibility) VALUES ({user_id}, 'secret', 'private');
        INSERT INTO post (author_id, body) VALUES ({user_id}, 'hello world');
        UPDATE post SET visibility = 'private' WHERE body = 'hello world';
        INSERT INTO post (author_id, body) VALUES ({user_id}, 'marker');
        """,
    )
    for proc in (everyone, by_author, own):
        wait_for_title(proc, "marker")

    for public in (everyone, by_author):
        changes = [json.loads(line) for line in public.lines if line.startswith("{")]
        # 'hello world' turning private leaves public view as a delete without its body
        assert [(c["op"], c["title"]) for c in changes] == [
            ("insert", "hello world"),
            ("delete", None),
            ("insert", "marker"),
        ]
        assert {c["audience"] for c in changes} == {"public"}
    assert titles(own) == ["secret", "hello world", "hello world", "marker"]


def test_postgres_restart_under_a_running_listener(disposable_server, processes, member):
    dsn = disposable_server.dsn
    listener = cdc_listen(dsn, *FAST)
    processes.append(listener)
    listener.wait_for("leader gained")
    psql(dsn, "INSERT INTO article (title) VALUES ('before restart')")
    articles = member(dsn=dsn)
    psql(dsn, "INSERT INTO article (title) VALUES ('second before restart')")
    wait_for_title(articles, "second before restart")

    disposable_server.restart()
    psql(dsn, "INSERT INTO article (title) VALUES ('after postgres restart')")
    listener.wait_for("reconnecting")
    wait_for_title(articles, "after postgres restart", timeout=30)
