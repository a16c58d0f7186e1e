"""The websocket consumer in-process: every message of docs/protocol.md, both ways.

A real relay carries real commits through Channels' in-memory layer to the real ASGI app;
a writer is a plain SQL connection. "Never arrives" is checked with a sentinel: a later
change the client must get next, since changes arrive in commit order.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

import pytest
from channels.layers import get_channel_layer
from django.db import connections

from cdc import retention
from cdc.relay import Relay
from consumers import reads
from consumers.live import LiveConsumer
from consumers.protocol import MAX_FRAME_BYTES
from core.metrics import WS_REPAIRS
from testkit.wsclient import TIMEOUT
from tests.consumer_env import connected, insert_post, log_in_new_user, running

# Django and the consumers on this test's database, Channels' in-memory layer.
pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("live_db", "layer")]
with_relay = pytest.mark.usefixtures("relay")


async def insert_article(aconn, title: str, category: str = "general", source: str = "") -> int:
    cur = await aconn.execute(
        "INSERT INTO article (title, category, source) VALUES (%s, %s, %s) RETURNING id",
        (title, category, source),
    )
    return (await cur.fetchone())[0]


async def test_ping_gets_pong():
    async with connected() as client:
        assert await client.ask({"type": "ping"}) == {"type": "pong"}


async def test_subscribe_with_snapshot_sends_the_latest_rows_newest_first(aconn):
    for i in range(5):
        await aconn.execute(
            "INSERT INTO article (title, published_at) VALUES (%s, now() - make_interval(mins => %s))",
            (f"a{i}", 10 - i),
        )
    async with connected() as client:
        subscribed, snapshot = await client.subscribe("articles", snapshot=3)

    assert subscribed["stream"] == "articles"
    assert snapshot["type"] == "snapshot"
    assert snapshot["position"] == subscribed["position"]
    assert [r["title"] for r in snapshot["rows"]] == ["a4", "a3", "a2"]
    row = snapshot["rows"][0]
    assert set(row) == {"id", "title", "body", "url", "source", "category", "published_at"}
    assert datetime.fromisoformat(row["published_at"]).tzinfo is not None


@with_relay
async def test_insert_update_delete_arrive_as_changes_with_positions(aconn):
    async with connected() as client:
        await client.subscribe("articles")
        article = await insert_article(aconn, "first")
        await aconn.execute("UPDATE article SET title = 'renamed' WHERE id = %s", (article,))
        await aconn.execute("DELETE FROM article WHERE id = %s", (article,))
        insert, update, delete = await client.changes(3)

    assert (insert["op"], insert["row"]["title"], "old" in insert) == ("insert", "first", False)
    assert (update["op"], update["row"]["title"], update["old"]["title"]) == ("update", "renamed", "first")
    assert (delete["op"], delete["row"], delete["old"]["id"]) == ("delete", None, article)
    assert insert["id"] < update["id"] < delete["id"]
    assert all(m["stream"] == "articles" and isinstance(m["position"], str) for m in (insert, update, delete))


@with_relay
async def test_filters_select_articles_by_category_and_source(aconn):
    async with connected() as client:
        await client.subscribe("articles", filters={"category": "tech", "source": "wire"})
        await insert_article(aconn, "wrong category", category="sport", source="wire")
        await insert_article(aconn, "wrong source", category="tech", source="blog")
        await insert_article(aconn, "both match", category="tech", source="wire")
        [change] = await client.changes(1)
        assert change["row"]["title"] == "both match"


@with_relay
async def test_an_article_leaving_the_category_still_arrives(aconn):
    article = await insert_article(aconn, "moving", category="tech")
    async with connected() as client:
        _, snapshot = await client.subscribe("articles", filters={"category": "tech"}, snapshot=5)
        await aconn.execute("UPDATE article SET category = 'sport' WHERE id = %s", (article,))
        [change] = await client.changes(1)
    assert [r["id"] for r in snapshot["rows"]] == [article]
    assert (change["old"]["category"], change["row"]["category"]) == ("tech", "sport")


@with_relay
async def test_filters_select_posts_by_author(aconn):
    alice, _ = await log_in_new_user("alice")
    bob, _ = await log_in_new_user("bob")
    async with connected() as client:
        await client.subscribe("posts", filters={"author_id": bob})
        await insert_post(aconn, alice, "from alice")
        await insert_post(aconn, bob, "from bob")
        [change] = await client.changes(1)
        assert change["row"]["body"] == "from bob"


@with_relay
async def test_subscribing_again_replaces_the_subscription(aconn):
    async with connected() as client:
        await client.subscribe("articles", filters={"category": "a"})
        await client.subscribe("articles", filters={"category": "b"})
        await insert_article(aconn, "in a", category="a")
        await insert_article(aconn, "in b", category="b")
        [change] = await client.changes(1)
        assert change["row"]["title"] == "in b"
        assert await client.answers_ping()


@with_relay
async def test_unsubscribe_stops_the_stream(aconn):
    alice, _ = await log_in_new_user("alice")
    async with connected() as client:
        await client.subscribe("articles")
        await client.subscribe("posts")
        assert await client.ask({"type": "unsubscribe", "stream": "articles"}) == {
            "type": "unsubscribed",
            "stream": "articles",
        }
        await insert_article(aconn, "not for me")
        await insert_post(aconn, alice, "sentinel")
        [change] = await client.changes(1)
        assert change["stream"] == "posts"


@with_relay
async def test_after_replays_exactly_what_was_missed_then_goes_live(aconn):
    async with connected() as client:
        await client.subscribe("articles")
        await insert_article(aconn, "seen")
        [seen] = await client.changes(1)
    for i in range(5):
        await insert_article(aconn, f"missed {i}")
    async with connected() as client:
        await client.subscribe("articles", after=seen["position"])
        replayed = await client.changes(5)
        await insert_article(aconn, "live")
        [live] = await client.changes(1)
        assert await client.answers_ping()
    assert [m["row"]["title"] for m in replayed] == [f"missed {i}" for i in range(5)]
    assert live["row"]["title"] == "live"


async def test_an_expired_position_gets_a_reset_and_a_fresh_snapshot(aconn, fresh_db):
    async with connected() as client, running(Relay(fresh_db, layer=get_channel_layer())):
        await client.subscribe("articles")
        await insert_article(aconn, "old")
        [old] = await client.changes(1)
        await insert_article(aconn, "newer")
        await client.changes(1)
    # The relay stopped and stored its position; retention, with nothing young enough to keep,
    # drops every tick before it.
    assert (await retention.prune(aconn, 0))["ticks"] > 0
    async with connected() as client:
        resume = {"type": "subscribe", "stream": "articles", "after": old["position"], "snapshot": 5}
        await client.send(resume)
        subscribed, reset, snapshot = [await client.receive() for _ in range(3)]
    assert subscribed["type"] == "subscribed"
    assert reset == {"type": "reset", "stream": "articles", "reason": "expired"}
    assert snapshot["type"] == "snapshot"
    assert [r["title"] for r in snapshot["rows"]] == ["newer", "old"]


async def test_an_unknown_position_gets_a_reset():
    async with connected() as client:
        await client.send({"type": "subscribe", "stream": "articles", "after": "999999:1"})
        messages = [await client.receive() for _ in range(3)]
    assert [m["type"] for m in messages] == ["subscribed", "reset", "snapshot"]
    assert messages[1]["reason"] == "unknown"
    assert messages[2]["rows"] == []


@with_relay
async def test_a_resume_too_far_behind_gets_a_reset(aconn, monkeypatch):
    monkeypatch.setattr(reads, "REPLAY_LIMIT", 3)
    async with connected() as client:
        subscribed, _ = await client.subscribe("articles", snapshot=0)
        await aconn.execute("INSERT INTO article (title) SELECT 'r' || i FROM generate_series(1, 4) i")
        await client.changes(4)
    async with connected() as client:
        await client.send({"type": "subscribe", "stream": "articles", "after": subscribed["position"]})
        messages = [await client.receive() for _ in range(3)]
    assert [m.get("reason") for m in messages] == [None, "too_far_behind", None]


@with_relay
async def test_a_resume_over_more_bytes_than_a_replay_may_hold_gets_a_reset(aconn, settings):
    """LIVE_REPLAY_MAX_BYTES: a replay past it stops, and the client is told to start again
    from a fresh snapshot (whatever of the replay it already got is thrown away with the rest)."""
    settings.LIVE_REPLAY_MAX_BYTES = 25_000
    async with connected() as client:
        subscribed, _ = await client.subscribe("articles", snapshot=0)
        await aconn.execute(
            "INSERT INTO article (title, body)"
            " SELECT 'r' || i, repeat('b', 10000) FROM generate_series(1, 4) i"
        )
        await client.changes(4)
    async with connected() as client:
        await client.send(
            {"type": "subscribe", "stream": "articles", "after": subscribed["position"], "snapshot": 4}
        )
        messages = [await client.receive() for _ in range(5)]
    assert [m["type"] for m in messages] == ["subscribed", "change", "change", "reset", "snapshot"]
    assert messages[3]["reason"] == "too_far_behind"
    assert [r["title"] for r in messages[4]["rows"]] == ["r4", "r3", "r2", "r1"]


async def test_a_relay_resending_a_tick_delivers_nothing_twice(aconn, fresh_db):
    first = Relay(fresh_db, layer=get_channel_layer(), name="first")
    witness = await get_channel_layer().new_channel()  # sees what the relay hands on
    await get_channel_layer().group_add("cdc.articles", witness)
    async with connected() as client:
        await client.subscribe("articles")
        async with running(first):
            await insert_article(aconn, "once")
            [change] = await client.changes(1)
        # A leader that died after handing a tick on, before recording it: the next resends it.
        await aconn.execute("UPDATE cdc.relay SET relayed_tick = relayed_tick - 1")
        second = Relay(fresh_db, layer=get_channel_layer(), name="second")
        async with running(second):
            await insert_article(aconn, "after the resend")
            [after] = await client.changes(1)
    assert change["row"]["title"] == "once"
    assert after["row"]["title"] == "after the resend"
    handed_on = []
    while "after the resend" not in handed_on:
        message = await asyncio.wait_for(get_channel_layer().receive(witness), 10)
        handed_on += [json.loads(c["text"])["row"]["title"] for c in message["changes"]]
    assert handed_on == ["once", "once", "after the resend"], "the second relay did not resend"


@with_relay
async def test_a_transport_gap_is_repaired_from_the_log(aconn):
    memory = get_channel_layer()
    async with connected() as client:
        await client.subscribe("articles")
        await insert_article(aconn, "before")
        await client.changes(1)
        # The layer loses what it carries for a while: the process's hub (one member for all
        # its connections) is out of the group, while a witness sees the relay hand them on.
        [hub] = memory.groups["cdc.articles"]
        await memory.group_discard("cdc.articles", hub)
        witness = await memory.new_channel()
        await memory.group_add("cdc.articles", witness)
        for i in range(3):
            await insert_article(aconn, f"lost {i}")
        handed_on: list[str] = []
        while len(handed_on) < 3:
            message = await asyncio.wait_for(memory.receive(witness), TIMEOUT)
            handed_on += [json.loads(c["text"])["row"]["title"] for c in message["changes"]]
        await memory.group_add("cdc.articles", hub)
        await memory.send(hub, {"type": "transport.gap", "reason": "overflow"})
        repaired = await client.changes(3)
        await insert_article(aconn, "live again")
        [live] = await client.changes(1)
    assert [m["row"]["title"] for m in repaired] == ["lost 0", "lost 1", "lost 2"]
    assert live["row"]["title"] == "live again"


async def test_a_process_joins_each_group_once_for_all_its_connections():
    memory = get_channel_layer()
    async with connected() as one, connected() as two, connected() as three:
        await one.subscribe("articles")
        await two.subscribe("articles")
        await three.subscribe("articles", filters={"category": "tech"})
        members = {group: set(channels) for group, channels in memory.groups.items()}
        assert len(members["cdc.articles"]) == 1  # the hub's, however many connections
        assert members["cdc.articles"] == set().union(*(members[g] for g in members if ".category." in g))
        await one.ask({"type": "unsubscribe", "stream": "articles"})
        assert len(memory.groups["cdc.articles"]) == 1  # two is still subscribed
        await two.ask({"type": "unsubscribe", "stream": "articles"})
        assert not memory.groups.get("cdc.articles")


@with_relay
async def test_a_malformed_message_to_a_group_is_ignored_and_delivery_goes_on(aconn):
    """Any writer may send to a group (a Postgres layer takes NOTIFYs from any database user)."""
    memory = get_channel_layer()
    async with connected() as client:
        await client.subscribe("articles")
        for bad in ({"type": "cdc.changes"}, {"type": "cdc.changes", "group": "cdc.articles", "changes": 7}):
            await memory.group_send("cdc.articles", bad)
        await memory.group_send("cdc.articles", {"type": "something.else"})
        await insert_article(aconn, "still live")
        [change] = await client.changes(1)
    assert change["row"]["title"] == "still live"


def overflow_repairs() -> float:
    [sample] = [s for s in WS_REPAIRS.labels("overflow").collect()[0].samples if s.name.endswith("_total")]
    return sample.value


@with_relay
async def test_what_waits_past_the_send_budget_is_dropped_and_repaired_from_the_log(aconn, settings):
    """A client behind on its acknowledgements: what it is offered waits for it, at most
    LIVE_SEND_BUDGET_BYTES of it; past that the connection forgets it and, once the client
    acknowledges again, re-reads it from the log. The client sees every change once, in order."""
    settings.LIVE_SEND_BUDGET_BYTES = 300_000  # above the client's ACK_BYTES, or no client keeps up
    repairs = overflow_repairs()
    async with connected() as client:
        await client.subscribe("articles")
        client.acking = False
        await aconn.execute(  # one transaction of 800 KB: one batch, offered at once
            "INSERT INTO article (title, body)"
            " SELECT 'r' || i, repeat('b', 40000) FROM generate_series(1, 20) i"
        )
        first = await client.changes(8)  # 320 KB: over budget, so the other 480 KB wait, and overflow
        assert overflow_repairs() == repairs + 1
        await client.ack()
        client.acking = True
        rest = await client.changes(12)
        assert await client.answers_ping()  # and nothing more arrived before the pong
    assert [c["row"]["title"] for c in first + rest] == [f"r{i}" for i in range(1, 21)]


# Errors: each gets an `error` naming the problem, and the connection goes on working.

TOO_LARGE = json.dumps({"type": "ping", "pad": "x" * MAX_FRAME_BYTES})
BAD_FRAMES = [
    ("not json", "bad_json", None),
    (b"\x00binary", "bad_json", None),
    ('{"type": "ping"', "bad_json", None),
    ("[1, 2]", "bad_message", None),
    ('{"type": "shout"}', "bad_message", None),
    ('{"type": "ping", "echo": 1}', "bad_message", "'echo'"),
    ('{"type": "subscribe"}', "bad_message", "'stream'"),
    ('{"type": "subscribe", "stream": "articles", "since": "x"}', "bad_message", "'since'"),
    ('{"type": "subscribe", "stream": "articles", "snapshot": 101}', "bad_message", "'snapshot'"),
    ('{"type": "subscribe", "stream": "articles", "snapshot": true}', "bad_message", "'snapshot'"),
    ('{"type": "subscribe", "stream": "articles", "snapshot": 1e400}', "bad_message", "'snapshot'"),
    ('{"type": "subscribe", "stream": "comments"}', "unknown_stream", "'comments'"),
    ('{"type": "unsubscribe", "stream": "comments"}', "unknown_stream", "'comments'"),
    ('{"type": "subscribe", "stream": "articles", "filters": {"author_id": 1}}', "bad_filter", "'author_id'"),
    ('{"type": "subscribe", "stream": "articles", "filters": {"category": 5}}', "bad_filter", "'category'"),
    ('{"type": "subscribe", "stream": "articles", "filters": []}', "bad_filter", "'filters'"),
    ('{"type": "subscribe", "stream": "posts", "filters": {"author_id": 1e30}}', "bad_filter", "'author_id'"),
    ('{"type": "subscribe", "stream": "posts", "filters": {"author_id": "7"}}', "bad_filter", "'author_id'"),
    (
        '{"type": "subscribe", "stream": "posts", "filters": {"visibility": "all"}}',
        "bad_filter",
        "'visibility'",
    ),
    ('{"type": "subscribe", "stream": "articles", "after": "yesterday"}', "bad_position", "'yesterday'"),
    ('{"type": "subscribe", "stream": "articles", "after": 12}', "bad_position", "12"),
    ('{"type": "subscribe", "stream": "posts", "filters": {"visibility": "private"}}', "forbidden", "author"),
    (TOO_LARGE, "message_too_large", str(MAX_FRAME_BYTES)),
]


@pytest.mark.parametrize(
    ("frame", "code", "named"), BAD_FRAMES, ids=[f"{c}:{str(f)[:30]}" for f, c, _ in BAD_FRAMES]
)
async def test_a_bad_frame_gets_an_error_and_the_connection_goes_on(frame, code, named):
    async with connected() as client:
        await client.send_frame(frame)
        error = await client.receive()
        assert await client.answers_ping()
    assert error["type"] == "error"
    assert error["code"] == code
    assert named is None or named in error["message"]
    if code in ("bad_filter", "bad_position", "forbidden"):
        assert error["stream"] in ("articles", "posts")


class Strict(LiveConsumer):
    rate = 0.001  # no refill within a test
    burst = 3
    max_subscriptions = 1


async def test_too_many_messages_are_rate_limited_pings_included():
    async with connected(app=Strict.as_asgi()) as client:
        replies = [await client.ask({"type": "unsubscribe", "stream": "posts"}) for _ in range(3)]
        refused = await client.ask({"type": "ping"})
    assert [r["type"] for r in replies] == ["unsubscribed"] * 3
    assert (refused["type"], refused["code"]) == ("error", "rate_limited")


async def test_subscriptions_beyond_the_limit_are_refused_replacing_one_is_not():
    async with connected(app=Strict.as_asgi()) as client:
        await client.subscribe("articles")
        refused = await client.ask({"type": "subscribe", "stream": "posts"})
        await client.subscribe("articles", filters={"category": "tech"})
    assert (refused["code"], refused["stream"]) == ("too_many_subscriptions", "posts")


async def test_without_the_database_a_subscribe_is_unavailable(monkeypatch):
    monkeypatch.setattr(reads, "POOL_TIMEOUT", 0.5)
    settings_dict = connections["default"].settings_dict
    name, settings_dict["NAME"] = settings_dict["NAME"], "no_such_database"
    try:
        async with connected() as client:
            error = await client.ask({"type": "subscribe", "stream": "articles"})
            assert await client.answers_ping()
    finally:
        settings_dict["NAME"] = name
    assert (error["type"], error["code"], error["stream"]) == ("error", "unavailable", "articles")
