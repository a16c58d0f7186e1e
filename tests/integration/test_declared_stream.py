"""A stream declared by an app of its own (tests/streams_app: a model, its migration, a
`streams.py`), nothing in consumers/ or cdc/ naming it, through the real consumer and relay:
discovery, snapshots, live changes with operator filters, resume, hidden columns, access
rules, and a TRUNCATE reaching every subscriber as a reset and a fresh snapshot.

`bids` are public unless sealed; a sealed bid is its bidder's only. "Never arrives" is
checked with a later change the client must get next (changes arrive in commit order).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.consumer_env import connected, log_in_new_user

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("live_db", "layer")]
with_relay = pytest.mark.usefixtures("relay")


async def bid(aconn: Any, item: str, amount: float, bidder: int | None = None, sealed: bool = False) -> int:
    cur = await aconn.execute(
        "INSERT INTO streams_app_bid (item, amount, bidder_id, sealed, note) VALUES (%s, %s, %s, %s, 'NOTE')"
        " RETURNING id",
        (item, amount, bidder, sealed),
    )
    return (await cur.fetchone())[0]


def amounts(items: list[dict[str, Any]]) -> list[float]:
    return [float((item.get("row") or item)["amount"]) for item in items]


def no_notes(messages: list[dict[str, Any]]) -> bool:
    """The hidden column is in no row image of any message."""
    images = [i for m in messages for i in (*m.get("rows", []), m.get("row"), m.get("old")) if i]
    return bool(images) and all("note" not in image for image in images)


@pytest.fixture
def http() -> Any:
    from django.test import AsyncClient

    return AsyncClient()


async def test_the_streams_message_and_endpoint_describe_the_declared_stream(http):
    async with connected() as socket:
        reply = await socket.ask({"type": "streams"})
    bids = next(s for s in reply["streams"] if s["name"] == "bids")
    assert bids["filters"]["amount"] == {
        "type": "number",
        "operators": ["eq", "neq", "lt", "lte", "gt", "gte", "in"],
        "partition": False,
    }
    assert bids["filters"]["item"]["partition"] is True
    assert (bids["snapshot_max"], bids["access"]) == (20, "public_when")
    assert {"articles", "posts", "bids"} <= {s["name"] for s in reply["streams"]}
    assert (await http.get("/live/streams")).json() == reply


async def test_a_snapshot_holds_the_public_rows_filtered_in_order_without_hidden_columns(aconn):
    alice, alice_cookie = await log_in_new_user("alice")
    for amount in (50, 150, 250):
        await bid(aconn, "lamp", amount)
    await bid(aconn, "lamp", 300, alice, sealed=True)
    over_100 = {"amount": {"gt": 100}}
    async with connected() as anonymous, connected(alice_cookie) as mine:
        _, theirs = await anonymous.subscribe("bids", filters=over_100, snapshot=20)
        _, own = await mine.subscribe("bids", filters=over_100, snapshot=20)
        refused = await anonymous.ask({"type": "subscribe", "stream": "bids", "snapshot": 21})
    assert amounts(theirs["rows"]) == [250, 150]  # newest first, the sealed one not at all
    assert amounts(own["rows"]) == [300, 250, 150]
    assert no_notes([theirs, own])
    assert (refused["code"], refused["stream"]) == ("bad_message", "bids")


@with_relay
async def test_live_changes_enter_and_leave_an_operator_filter(aconn):
    bid_id = await bid(aconn, "lamp", 50)
    async with connected() as client:
        await client.subscribe("bids", filters={"amount": {"gte": 100}, "item": "lamp"})
        await aconn.execute("UPDATE streams_app_bid SET amount = 150 WHERE id = %s", (bid_id,))
        await aconn.execute("UPDATE streams_app_bid SET amount = 20 WHERE id = %s", (bid_id,))
        await aconn.execute("UPDATE streams_app_bid SET amount = 30 WHERE id = %s", (bid_id,))  # never in
        await bid(aconn, "chair", 500)  # another item's: never sent
        await bid(aconn, "lamp", 100)  # the sentinel
        entered, left, sentinel = await client.changes(3)
    assert (entered["op"], amounts([entered]), amounts([{"row": entered["old"]}])) == ("update", [150], [50])
    assert (left["op"], amounts([left])) == ("update", [20])
    assert (sentinel["op"], amounts([sentinel])) == ("insert", [100])
    assert no_notes([entered, left, sentinel])


@with_relay
async def test_a_resume_replays_what_was_missed_with_the_same_filter(aconn):
    async with connected() as client:
        [subscribed] = await client.subscribe("bids", filters={"amount": {"in": [1, 2, 3]}})
    for amount in (1, 5, 2, 3.5, 3):
        await bid(aconn, "pen", amount)
    async with connected() as client:
        await client.subscribe("bids", filters={"amount": {"in": [1, 2, 3]}}, after=subscribed["position"])
        replayed = await client.changes(3)
        await bid(aconn, "pen", 2)
        [live] = await client.changes(1)
    assert amounts(replayed) == [1, 2, 3]
    assert amounts([live]) == [2]
    assert no_notes([*replayed, live])


@with_relay
async def test_a_sealed_bid_reaches_its_bidder_only_and_asking_for_others_is_forbidden(aconn):
    alice, alice_cookie = await log_in_new_user("alice")
    bob, bob_cookie = await log_in_new_user("bob")
    async with connected(alice_cookie) as mine, connected(bob_cookie) as other, connected() as anonymous:
        for socket in (mine, other, anonymous):
            await socket.subscribe("bids")
        sealed = {"type": "subscribe", "stream": "bids", "filters": {"sealed": True}}
        alices = {**sealed, "filters": {"sealed": True, "bidder_id": alice}}
        refused = [await anonymous.ask(sealed), await other.ask(alices)]
        await mine.subscribe("bids", filters={"sealed": True})  # her own: allowed
        await bid(aconn, "ring", 900, alice, sealed=True)
        await bid(aconn, "ring", 10, bob)
        [secret] = await mine.changes(1)
        for socket in (other, anonymous):
            assert amounts(await socket.changes(1)) == [10]
    assert [(r["code"], r["stream"]) for r in refused] == [("forbidden", "bids")] * 2
    assert amounts([secret]) == [900]


@pytest.fixture
async def truncate_captured(aconn: Any) -> None:
    """TRUNCATE of the bids table writes a `truncate` event, as the capture's statement trigger
    does (migration 0008): installed here only where it is not yet, with the same op name."""
    await aconn.execute(
        """DO $$ BEGIN
        IF NOT EXISTS (SELECT FROM pg_trigger
                       WHERE tgrelid = 'public.streams_app_bid'::regclass AND tgtype & 32 <> 0) THEN
            ALTER TABLE cdc.event DROP CONSTRAINT IF EXISTS event_op_check,
                ADD CONSTRAINT event_op_check CHECK (op IN ('insert', 'update', 'delete', 'truncate'));
            CREATE FUNCTION public.test_capture_truncate() RETURNS trigger LANGUAGE plpgsql AS $f$
            BEGIN
                INSERT INTO cdc.event (table_name, op)
                VALUES (TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, 'truncate');
                PERFORM pg_notify('cdc', '');
                RETURN NULL;
            END $f$;
            CREATE TRIGGER cdc_truncate AFTER TRUNCATE ON streams_app_bid
                FOR EACH STATEMENT EXECUTE FUNCTION public.test_capture_truncate();
        END IF;
        END $$"""
    )


@with_relay
@pytest.mark.usefixtures("truncate_captured")
async def test_a_truncate_resets_every_subscriber_whatever_its_groups_and_a_resume_too(aconn):
    _, alice_cookie = await log_in_new_user("alice")
    async with connected() as resumer:
        await resumer.subscribe("bids")
        await bid(aconn, "lamp", 10)
        [start] = await resumer.changes(1)
    async with connected(alice_cookie) as mine, connected() as on_lamps, connected() as on_chairs:
        await mine.subscribe("bids", filters={"sealed": True}, snapshot=5)  # her own group only
        await on_lamps.subscribe("bids", filters={"item": "lamp"}, snapshot=5)  # a partition group
        await on_chairs.subscribe("bids", filters={"item": "chair"})  # no snapshot asked for
        await aconn.execute("TRUNCATE streams_app_bid")
        await bid(aconn, "lamp", 20)
        for socket in (mine, on_chairs):  # neither sees the bid after it: not sealed, not a chair
            reset, snapshot = await socket.receive(), await socket.snapshot()
            assert reset == {"type": "reset", "stream": "bids", "reason": "truncated"}
            assert snapshot["rows"] == []
        reset, snapshot = await on_lamps.receive(), await on_lamps.snapshot()
        assert reset["reason"] == "truncated"
        assert amounts(snapshot["rows"]) in ([], [20])  # the bid after it: in the snapshot or next
        if not snapshot["rows"]:
            assert amounts(await on_lamps.changes(1)) == [20]
        await bid(aconn, "lamp", 30)
        assert amounts(await on_lamps.changes(1)) == [30]
    async with connected() as resumer:
        resume = {"type": "subscribe", "stream": "bids", "after": start["position"], "snapshot": 5}
        subscribed, reset = await resumer.ask(resume), await resumer.receive()
        snapshot = await resumer.snapshot()
    assert subscribed["type"] == "subscribed"
    assert reset == {"type": "reset", "stream": "bids", "reason": "truncated"}
    assert amounts(snapshot["rows"]) == [30, 20]
