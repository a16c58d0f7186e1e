"""The delivery edge with real processes (psql, cdc_listen, daphne, a `websockets` client):
frames within LIVE_MAX_FRAME_BYTES whatever the rows, snapshots and replays in pages, and a
client that stops reading closed with "resume later" and resumed with nothing lost."""

from __future__ import annotations

import asyncio
import json

import pytest
from django.conf import settings

from consumers.edge import CLOSE_TRY_AGAIN
from testkit.live_servers import live_system
from testkit.pg import psql
from testkit.probes import get
from testkit.wsclient import RealSocket, real_socket, until_closed
from tests.consumer_env import log_in_new_user

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("each_web_server")]
MiB = 1024 * 1024


async def write(dsn: str, script: str) -> str:
    return await asyncio.to_thread(psql, dsn, script)


def articles(count: int, body_bytes: int, prefix: str = "a") -> str:
    """One transaction per row, each with a body of `body_bytes` (made by Postgres itself)."""
    return "".join(
        f"INSERT INTO article (title, body) VALUES ('{prefix}{i}', repeat('{i % 10}', {body_bytes}));\n"
        for i in range(count)
    )


class Recording(RealSocket):
    """A client that notes the size of every frame it receives."""

    sizes: list[int]

    async def receive_text(self) -> str:
        frame = await super().receive_text()
        self.sizes.append(len(frame.encode()))
        return frame


def recording(client: RealSocket) -> Recording:
    """`client`, from now on noting the size of every frame it receives."""
    client.__class__ = Recording
    assert isinstance(client, Recording)
    client.sizes = []
    return client


async def test_a_5_mb_row_reaches_subscribers_cut_to_a_frame_and_whole_over_http(fresh_db):
    with live_system(fresh_db) as system:
        async with real_socket(system.port) as socket:
            client = recording(socket)
            await client.subscribe("articles")
            await write(fresh_db, articles(1, 5 * MiB, prefix="huge"))
            [change] = await client.changes(1)
            assert await client.answers_ping()  # the socket stays open
            status, body = get(system.url(f"/live/rows/articles/{change['row']['id']}"))
    assert max(client.sizes) <= settings.LIVE_MAX_FRAME_BYTES
    assert change["truncated"] == ["body"]
    assert change["row"]["title"] == "huge0"
    assert 0 < len(change["row"]["body"]) < settings.LIVE_MAX_FRAME_BYTES
    assert status == 200
    whole = json.loads(body)
    assert whole["body"] == "0" * 5 * MiB
    assert whole["body"].startswith(change["row"]["body"])


async def test_a_large_snapshot_arrives_in_pages_within_the_frame_bound(fresh_db):
    await write(fresh_db, articles(30, 160_000))  # 4.8 MB of rows
    with live_system(fresh_db) as system:
        async with real_socket(system.port) as socket:
            client = recording(socket)
            _, snapshot = await client.subscribe("articles", snapshot=30)
            assert await client.answers_ping()
    pages = len(client.sizes) - 2  # less `subscribed` and `pong`
    assert pages >= 5
    assert max(client.sizes) <= settings.LIVE_MAX_FRAME_BYTES
    assert [r["title"] for r in snapshot["rows"]] == [f"a{i}" for i in reversed(range(30))]
    assert all(len(r["body"]) == 160_000 for r in snapshot["rows"])
    assert "truncated" not in snapshot


async def test_a_replay_of_megabytes_arrives_whole_and_in_order(fresh_db):
    with live_system(fresh_db) as system:
        async with real_socket(system.port) as client:
            [subscribed] = await client.subscribe("articles")
        await write(fresh_db, articles(120, 100_000))  # 12 MB missed: three send budgets
        async with real_socket(system.port) as socket:
            client = recording(socket)
            await client.subscribe("articles", after=subscribed["position"])
            replayed = await client.changes(120)
            assert await client.answers_ping()
    assert [c["row"]["title"] for c in replayed] == [f"a{i}" for i in range(120)]
    assert all(len(c["row"]["body"]) == 100_000 for c in replayed)
    assert max(client.sizes) <= settings.LIVE_MAX_FRAME_BYTES


async def test_a_client_that_stops_reading_is_closed_and_resumes_with_nothing_lost(fresh_db):
    with live_system(fresh_db) as system:
        async with real_socket(system.port) as slow, real_socket(system.port) as brisk:
            await slow.subscribe("articles")
            await brisk.subscribe("articles")
            # The slow client acknowledges nothing (as if it read nothing) while 8 MB go past.
            slow.acking = False
            await write(fresh_db, articles(80, 100_000))
            assert [c["row"]["title"] for c in await brisk.changes(80)] == [f"a{i}" for i in range(80)]
            got = await until_closed(slow)
            assert slow.ws.close_code == CLOSE_TRY_AGAIN
            assert 0 < len(got) < 80  # closed at its budget, not after everything
        async with real_socket(system.port) as slow:
            await slow.subscribe("articles", after=got[-1]["position"])
            got += await slow.changes(80 - len(got))
    assert [c["row"]["title"] for c in got] == [f"a{i}" for i in range(80)]


async def test_a_private_post_is_whole_over_http_to_its_author_only(live_db):
    author, author_cookie = await log_in_new_user("author")
    _, other_cookie = await log_in_new_user("other")
    insert = f"INSERT INTO post (author_id, body, visibility) VALUES ({author}, 'mine', 'private')"
    post = (await write(live_db, f"{insert} RETURNING id")).strip()
    with live_system(live_db) as system:
        url = system.url(f"/live/rows/posts/{post}")
        mine, others = get(url, {"Cookie": author_cookie}), get(url, {"Cookie": other_cookie})
        anonymous = get(url)
        unknown = get(system.url("/live/rows/comments/1"))
    assert mine[0] == 200
    assert json.loads(mine[1])["body"] == "mine"
    assert others[0] == anonymous[0] == 404
    assert "mine" not in others[1] + anonymous[1]
    assert unknown[0] == 404
    assert json.loads(unknown[1])["error"] == "unknown_stream"
