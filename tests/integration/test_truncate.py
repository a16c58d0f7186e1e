"""TRUNCATE of a tracked table is captured (cdc_truncate, a statement trigger): one event with
op 'truncate' and no images, in the writer's transaction; it rings the doorbell like any
change, and the relay hands it to the stream's group."""

from __future__ import annotations

import asyncio
import json

import psycopg
from channels.layers import InMemoryChannelLayer

from cdc.relay import Relay
from cdc.routing import control_group, stream_group
from testkit.pg import doorbell, events, psql

HOUR = 3600.0  # the relay's poll interval: only a ring can wake it within the test's timeout
TIMEOUT = 10.0


def truncates(dsn: str) -> list[tuple[str, object, object]]:
    return [(e["table_name"], e["new_row"], e["old_row"]) for e in events(dsn) if e["op"] == "truncate"]


def test_a_truncate_in_a_transaction_is_one_event_per_table_without_images_and_one_ring(fresh_db, user_id):
    psql(
        fresh_db,
        f"""
        INSERT INTO ticker (symbol, price) VALUES ('ACME', 12.5);
        INSERT INTO post (author_id, body) VALUES ({user_id}, 'soon gone');
        """,
    )
    with doorbell(fresh_db) as bell, psycopg.connect(fresh_db) as writer:
        writer.execute("TRUNCATE ticker, post")
        [(txid,)] = writer.execute("SELECT pg_current_xact_id()::text").fetchall()
        writer.commit()
        assert bell.rings_until_now() == 1

    assert truncates(fresh_db) == [("public.ticker", None, None), ("public.post", None, None)]
    assert {e["txid"] for e in events(fresh_db) if e["op"] == "truncate"} == {txid}


def test_a_rolled_back_truncate_leaves_nothing_and_rings_nothing(fresh_db):
    psql(fresh_db, "INSERT INTO article (title) VALUES ('stays')")
    with doorbell(fresh_db) as bell, psycopg.connect(fresh_db) as writer:
        writer.execute("TRUNCATE article")
        writer.rollback()
        assert bell.rings_until_now() == 0

    assert truncates(fresh_db) == []
    assert psql(fresh_db, "SELECT title FROM article").split() == ["stays"]


def test_a_cascaded_truncate_is_captured_for_the_tracked_table_it_reaches(fresh_db, user_id):
    psql(
        fresh_db,
        f"INSERT INTO post (author_id, body) VALUES ({user_id}, 'by a user'); TRUNCATE auth_user CASCADE",
    )
    assert ("public.post", None, None) in truncates(fresh_db)


def test_an_untracked_table_is_truncated_without_an_event(fresh_db):
    psql(fresh_db, "SELECT cdc.untrack('public.ticker'); TRUNCATE ticker")
    assert truncates(fresh_db) == []


async def test_a_truncate_wakes_the_sleeping_relay_which_hands_it_to_the_stream_control_group(fresh_db):
    layer = InMemoryChannelLayer()
    channel = await layer.new_channel()
    await layer.group_add(stream_group("ticker"), channel)
    await layer.group_add(control_group("ticker"), channel)
    relay = Relay(fresh_db, layer=layer, name="truncate-test", poll_interval=HOUR)
    running = asyncio.create_task(relay.run())
    try:
        await asyncio.to_thread(psql, fresh_db, "INSERT INTO ticker (symbol, price) VALUES ('ACME', 10)")
        inserted = await asyncio.wait_for(layer.receive(channel), TIMEOUT)
        await asyncio.to_thread(psql, fresh_db, "TRUNCATE ticker")  # the relay sleeps by now, or soon
        message = await asyncio.wait_for(layer.receive(channel), TIMEOUT)
    finally:
        relay.stop()
        await asyncio.wait_for(running, TIMEOUT)

    assert [c["op"] for c in inserted["changes"]] == ["insert"]
    [change] = message["changes"]
    assert (change["stream"], change["op"], change["row"], change["old"]) == (
        "ticker",
        "truncate",
        None,
        None,
    )
    sent = json.loads(change["text"])
    assert (sent["type"], sent["stream"], sent["op"], sent["row"], sent["old"]) == (
        "change",
        "ticker",
        "truncate",
        None,
        None,
    )
