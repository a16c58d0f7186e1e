"""Columns excluded from capture (`cdc.track(table, excluded_columns)`) reach no client by
any path: live, a snapshot, a replay, a repair, a reset's snapshot.

A repair is made deterministic by freezing the relay after it stored a tick (CDC_FAULT):
the changes are in the log but were never handed on, so the client can only get them from
the repair that a transport gap starts.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from pglayer.layer import PostgresChannelLayer
from testkit.live_servers import FAST, live_system
from testkit.pg import psql
from testkit.processes import cdc_listen
from testkit.wsclient import JsonSocket, real_socket

pytestmark = pytest.mark.timeout(120)

SECRET = "SECRET"  # in every excluded column's value, and nowhere else
PRIVATE = {"article": "editor_notes", "post": "client_ip"}


def setup_sql() -> str:
    return "".join(
        f"ALTER TABLE {table} ADD COLUMN {column} text NOT NULL DEFAULT '{SECRET} default';\n"
        f"SELECT cdc.track('public.{table}', excluded_columns => '{{{column}}}');\n"
        for table, column in PRIVATE.items()
    )


def writes(author: int, n: int) -> str:
    """One transaction: inserts into both tables, updates touching the private column, a delete."""
    return f"""BEGIN;
        INSERT INTO article (title, editor_notes) VALUES ('a{n}', '{SECRET} a{n}'), ('b{n}', '{SECRET} b{n}');
        INSERT INTO post (author_id, body, client_ip) VALUES ({author}, 'p{n}', '{SECRET} p{n}');
        UPDATE article SET title = 'a{n}!', editor_notes = '{SECRET} edited' WHERE title = 'a{n}';
        UPDATE post SET body = 'p{n}!', client_ip = '{SECRET} edited' WHERE body = 'p{n}';
        DELETE FROM article WHERE title = 'b{n}';
        COMMIT;"""


class Recorder:
    """Every message a client received, for the leak check at the end."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def take(self, client: JsonSocket, count: int) -> list[dict[str, Any]]:
        got = [await client.receive() for _ in range(count)]
        self.messages += got
        return got


def images(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [*message.get("rows", []), *(message.get(k) or {} for k in ("row", "old"))]


async def test_excluded_columns_reach_no_client_live_in_snapshots_replays_repairs_or_resets(
    fresh_db, user_id
):
    psql(fresh_db, setup_sql())
    seen = Recorder()
    peer = PostgresChannelLayer(conninfo=fresh_db)
    with live_system(fresh_db, CDC_FAULT="after_store") as system:
        async with real_socket(system.port) as client:
            [start_articles] = await client.subscribe("articles")
            await client.subscribe("posts")
            psql(fresh_db, writes(user_id, 1))
            system.listener.wait_for("CDC_FAULT: stopped dead")  # stored, never handed on
            await peer.group_send("cdc.articles", {"type": "transport.gap", "reason": "test"})
            repaired = await seen.take(client, 6)  # 4 article and 2 post changes, from the log
            assert sorted((m["stream"], m["op"]) for m in repaired) == sorted(
                [("articles", "insert")] * 2 + [("articles", "update"), ("articles", "delete")]
                + [("posts", "insert"), ("posts", "update")]
            )  # fmt: skip

            system.listener.kill()
            system.listener = cdc_listen(fresh_db, *FAST)
            system.listener.wait_for("resent tick 1 ")  # the consumer drops these repeats
            psql(fresh_db, writes(user_id, 2))
            live = await seen.take(client, 6)
            assert {m["row"]["title"] for m in live if m["stream"] == "articles" and m["op"] == "insert"} == {
                "a2",
                "b2",
            }
        async with real_socket(system.port) as resumer:
            await resumer.subscribe("articles", after=start_articles["position"])
            await seen.take(resumer, 8)  # both transactions' article changes, replayed
            for stream in ("articles", "posts"):
                seen.messages += await resumer.subscribe(stream, snapshot=10)
            await resumer.send({"type": "subscribe", "stream": "posts", "after": "999999:1", "snapshot": 10})
            reset = await seen.take(resumer, 3)
            assert [m["type"] for m in reset] == ["subscribed", "reset", "snapshot"]
            assert await resumer.answers_ping()
    await peer.flush()

    kinds = {m["type"] for m in seen.messages}
    assert {"change", "snapshot"} <= kinds
    for message in seen.messages:
        assert SECRET not in json.dumps(message), message
        for image in images(message):
            assert not set(PRIVATE.values()) & set(image), message
    snapshot_rows = [row for m in seen.messages if m["type"] == "snapshot" for row in m["rows"]]
    assert {"title", "body"} & {key for row in snapshot_rows for key in row}, "the snapshots were empty"
