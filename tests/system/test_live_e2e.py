"""End to end with real processes: psql writes, cdc_listen relays through the default
(Postgres) channel layer, the web server serves /ws/live/, a `websockets` client reads."""

from __future__ import annotations

import asyncio
import random
import string
from typing import Any

import pytest
from psycopg.conninfo import conninfo_to_dict
from websockets.exceptions import ConnectionClosed

from cdc import retention
from consumers.edge import CLOSE_TRY_AGAIN
from consumers.reads import APPLICATION_NAME, REPAIR_TIMEOUT
from core.database import conninfo
from pglayer.layer import PostgresChannelLayer
from testkit.live_servers import live_system
from testkit.pg import PSQL, psql
from testkit.probes import get, poll
from testkit.processes import free_port, web_process
from testkit.wsclient import real_socket
from tests.consumer_env import log_in_new_user

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("each_web_server")]


async def write(dsn: str, script: str) -> str:
    return await asyncio.to_thread(psql, dsn, script)


def titles(messages: list[dict]) -> list[str]:
    return [m["row"]["title"] for m in messages]


async def test_changes_arrive_filtered_and_intact_even_at_200_kb(fresh_db):
    body = "".join(random.choices(string.ascii_letters + "åß€ \n", k=200_000))
    with live_system(fresh_db) as system:
        async with real_socket(system.port) as everything, real_socket(system.port) as tech:
            await everything.subscribe("articles")
            await tech.subscribe("articles", filters={"category": "tech"})
            await write(fresh_db, "INSERT INTO article (title, category) VALUES ('sport news', 'sport')")
            await write(fresh_db, "INSERT INTO article (title, category) VALUES ('tech news', 'tech')")
            await write(fresh_db, f"INSERT INTO article (title, body) VALUES ('big', $body${body}$body$)")

            assert titles(await everything.changes(3)) == ["sport news", "tech news", "big"]
            [only] = await tech.changes(1)
            assert only["row"]["title"] == "tech news"
            assert await tech.answers_ping()
        async with real_socket(system.port) as late:
            _, snapshot = await late.subscribe("articles", snapshot=1)
    [big] = snapshot["rows"]
    assert big["body"] == body


async def test_snapshot_then_live_has_no_gap_and_no_repeat_while_a_writer_inserts(fresh_db):
    count = 1000
    # A steady writer, one commit a millisecond or so (no fsync wait), still writing when the
    # client subscribes: one that has finished leaves nothing for the live part to test.
    script = "SET synchronous_commit = off;\n"
    script += "".join(
        f"INSERT INTO article (title) VALUES ('w{i}'); SELECT pg_sleep(0.001);\n" for i in range(count)
    )
    with live_system(fresh_db) as system:
        async with real_socket(system.port) as watcher, real_socket(system.port) as client:
            await watcher.subscribe("articles")
            writer = await asyncio.create_subprocess_exec(
                PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", fresh_db, "-f", "-", "-o", "/dev/null",
                stdin=asyncio.subprocess.PIPE,
            )  # fmt: skip
            writer_done = asyncio.ensure_future(writer.communicate(script.encode()))
            await watcher.changes(100)  # the writer is well under way
            _, snapshot = await client.subscribe("articles", snapshot=100)
            await writer_done
            assert writer.returncode == 0
            last = int((await write(fresh_db, "SELECT max(id) FROM article")).strip())
            changes: list[dict[str, Any]] = []
            while last not in [row["id"] for row in snapshot["rows"]] + [m["row"]["id"] for m in changes]:
                changes += await client.changes(1)
            assert await client.answers_ping()

    in_snapshot = [row["id"] for row in snapshot["rows"]]
    live = [m["row"]["id"] for m in changes]
    assert len(in_snapshot) == 100
    assert in_snapshot == sorted(in_snapshot, reverse=True)
    assert live == sorted(set(live)), "live changes repeat or come out of commit order"
    # Together they are every article from the oldest in the snapshot to the last, each once.
    assert sorted(in_snapshot + live) == list(range(min(in_snapshot), last + 1))
    assert 0 < len(live) < count - 100


async def test_a_resume_gets_exactly_the_missed_changes_and_an_expired_one_a_reset(fresh_db, aconn):
    with live_system(fresh_db) as system:
        async with real_socket(system.port) as client:
            await client.subscribe("articles")
            await write(fresh_db, "INSERT INTO article (title) VALUES ('seen')")
            [seen] = await client.changes(1)

        missed = [f"missed {i}" for i in range(50)]
        await write(fresh_db, "".join(f"INSERT INTO article (title) VALUES ('{t}');\n" for t in missed))
        async with real_socket(system.port) as client:
            await client.subscribe("articles", after=seen["position"])
            assert titles(await client.changes(50)) == missed
            await write(fresh_db, "INSERT INTO article (title) VALUES ('sentinel')")
            assert titles(await client.changes(1)) == ["sentinel"]  # nothing else before it

        assert system.listener is not None
        system.listener.stop()  # stores its position; retention keeps that tick and later ones
        pruned = await retention.prune(aconn, 0)
        assert pruned["ticks"] > 0
        async with real_socket(system.port) as client:
            await client.send(
                {"type": "subscribe", "stream": "articles", "after": seen["position"], "snapshot": 2}
            )
            subscribed, reset, snapshot = [await client.receive() for _ in range(3)]
    assert subscribed["type"] == "subscribed"
    assert reset == {"type": "reset", "stream": "articles", "reason": "expired"}
    assert [r["title"] for r in snapshot["rows"]] == ["sentinel", "missed 49"]


@pytest.mark.usefixtures("live_db")  # Django on the test database: it makes the sessions
async def test_private_posts_reach_their_author_only_live_in_snapshots_and_replays(fresh_db):
    alice, alice_cookie = await log_in_new_user("alice")
    bob, bob_cookie = await log_in_new_user("bob")

    def post(author: int, body: str, visibility: str = "public") -> str:
        return (
            f"INSERT INTO post (author_id, body, visibility) VALUES ({author}, '{body}', '{visibility}');\n"
        )

    with live_system(fresh_db) as system:
        port = system.port
        async with (
            real_socket(port, alice_cookie) as mine,
            real_socket(port, bob_cookie) as other,
            real_socket(port) as anonymous,
        ):
            starts = {}
            for name, client in (("mine", mine), ("other", other), ("anonymous", anonymous)):
                [subscribed] = await client.subscribe("posts")
                starts[name] = subscribed["position"]
            await write(fresh_db, post(alice, "secret", "private") + post(bob, "sentinel"))
            assert sorted(m["row"]["body"] for m in await mine.changes(2)) == ["secret", "sentinel"]
            for client in (other, anonymous):
                assert [m["row"]["body"] for m in await client.changes(1)] == ["sentinel"]

        async with (
            real_socket(port, alice_cookie) as mine,
            real_socket(port, bob_cookie) as other,
            real_socket(port) as anonymous,
        ):
            _, own_snapshot = await mine.subscribe("posts", snapshot=10)
            await mine.subscribe("posts", after=starts["mine"])
            assert sorted(m["row"]["body"] for m in await mine.changes(2)) == ["secret", "sentinel"]
            for name, client in (("other", other), ("anonymous", anonymous)):
                _, snapshot = await client.subscribe("posts", snapshot=10)
                assert [r["body"] for r in snapshot["rows"]] == ["sentinel"], name
                await client.subscribe("posts", after=starts[name])  # replaces: a replay
                assert [m["row"]["body"] for m in await client.changes(1)] == ["sentinel"], name
                assert await client.answers_ping()
    assert [r["body"] for r in own_snapshot["rows"]] == ["sentinel", "secret"]


async def test_a_repair_that_cannot_read_the_log_closes_with_try_again_later(fresh_db):
    """When the layer may have dropped changes and the log cannot be read either, the server
    asks the client to come back and resume (docs/protocol.md, "Repair")."""
    database = conninfo_to_dict(fresh_db)["dbname"]
    shut_out = f"""ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS false;
        SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE application_name = '{APPLICATION_NAME}';"""
    port = free_port()
    web = web_process(fresh_db, port)
    peer = PostgresChannelLayer(conninfo=fresh_db)
    try:
        await asyncio.to_thread(poll, lambda: get(f"http://127.0.0.1:{port}/healthz")[0], bool)
        async with real_socket(port) as ws:
            await ws.subscribe("articles")
            empty = {"type": "cdc.changes", "group": "cdc.articles", "changes": []}
            await peer.group_send("cdc.articles", empty)  # connects
            await write(conninfo(), shut_out)  # from another database: not this one
            await peer.group_send("cdc.articles", {"type": "transport.gap", "reason": "a test says so"})
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.ws.recv(), timeout=REPAIR_TIMEOUT + 15)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == CLOSE_TRY_AGAIN == 4013
    finally:
        await peer.flush()
        web.stop()
