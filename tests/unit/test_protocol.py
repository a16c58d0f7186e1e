"""The protocol's decoding and validation at its limits, and positions and cursors, without
a server: each limit of docs/protocol.md is accepted at its value and refused past it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from cdc.declarations import SNAPSHOT_MAX as MAX_SNAPSHOT
from cdc.filters import MAX_BIGINT as MAX_ID
from cdc.filters import MAX_IN, Filters
from cdc.filters import MAX_TEXT as MAX_TEXT_FILTER
from cdc.log import Batch, Change, Cursor, change_from_row
from cdc.ticks import BadPosition, Position
from consumers.protocol import (
    MAX_FRAME_BYTES,
    Ping,
    ProtocolError,
    Streams,
    Subscribe,
    Unsubscribe,
    decode,
    parse,
)
from testkit.streams import filters


def error_of(message: Any) -> ProtocolError:
    """The error a message gets, checked to read as docs/protocol.md says an error does."""
    with pytest.raises(ProtocolError) as error:
        parse(message)
    reply = error.value.as_message()
    assert reply["type"] == "error"
    assert isinstance(reply["message"], str)
    assert reply["message"]
    return error.value


def subscribe(**fields: Any) -> dict[str, Any]:
    return {"type": "subscribe", "stream": "posts", **fields}


def test_a_frame_of_exactly_the_limit_is_decoded_one_byte_more_is_too_large():
    pad = MAX_FRAME_BYTES - len(json.dumps({"type": "ping", "p": ""}))
    exact = json.dumps({"type": "ping", "p": "x" * pad})
    assert len(exact.encode()) == MAX_FRAME_BYTES
    assert decode(exact, None) == {"type": "ping", "p": "x" * pad}
    over = json.dumps({"type": "ping", "p": "é" * (pad // 2 + 1)})  # counted in bytes, not characters
    with pytest.raises(ProtocolError, match=str(MAX_FRAME_BYTES)) as error:
        decode(over, None)
    assert error.value.code == "message_too_large"
    with pytest.raises(ProtocolError) as error:
        decode(None, b"x" * (MAX_FRAME_BYTES + 1))
    assert error.value.code == "message_too_large"
    for frame in (None, "not json", '{"type": "ping"', "[" * 60_000):
        with pytest.raises(ProtocolError) as error:
            decode(frame, b"{}" if frame is None else None)
        assert error.value.code == "bad_json"
        assert error.value.message


def test_each_request_parses_to_what_it_asks_and_nulls_count_as_absent():
    assert parse({"type": "ping"}) == Ping()
    assert parse({"type": "streams"}) == Streams()
    assert parse({"type": "unsubscribe", "stream": "articles"}) == Unsubscribe("articles")
    assert parse(subscribe(filters=None, snapshot=None, after=None)) == Subscribe(
        "posts", Filters(), None, None
    )
    full = parse(subscribe(filters={"author_id": 7, "visibility": "public"}, snapshot=0, after="12:345"))
    wanted = filters("posts", author_id=7, visibility="public")
    assert full == Subscribe("posts", wanted, 0, Position(12, 345))
    articles = parse({"type": "subscribe", "stream": "articles", "filters": {"category": "c", "source": "s"}})
    assert isinstance(articles, Subscribe)
    assert articles.filters == filters("articles", category={"eq": "c"}, source="s")
    assert [(c.column, c.op, c.value) for c in articles.filters.conditions] == [
        ("category", "eq", "c"),
        ("source", "eq", "s"),
    ]
    ranged = parse(subscribe(filters={"author_id": {"gte": 2, "lt": 9, "neq": None}, "visibility": None}))
    assert isinstance(ranged, Subscribe)
    assert [(c.column, c.op, c.value) for c in ranged.filters.conditions] == [
        ("author_id", "gte", 2),
        ("author_id", "lt", 9),
    ]


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (subscribe(snapshot=MAX_SNAPSHOT), None),
        (subscribe(snapshot=MAX_SNAPSHOT + 1), "bad_message"),
        (subscribe(snapshot=-1), "bad_message"),
        (subscribe(snapshot=True), "bad_message"),
        (subscribe(filters={"author_id": 1}), None),
        (subscribe(filters={"author_id": MAX_ID}), None),
        (subscribe(filters={"author_id": -MAX_ID - 1}), None),
        (subscribe(filters={"author_id": -MAX_ID - 2}), "bad_filter"),
        (subscribe(filters={"author_id": MAX_ID + 1}), "bad_filter"),
        (subscribe(filters={"author_id": True}), "bad_filter"),
        (subscribe(filters={"author_id": 1.0}), "bad_filter"),
        (subscribe(filters={"author_id": {"in": list(range(MAX_IN))}}), None),
        (subscribe(filters={"author_id": {"in": list(range(MAX_IN + 1))}}), "bad_filter"),
        (subscribe(filters={"author_id": {"in": []}}), "bad_filter"),
        (subscribe(filters={"author_id": {"in": [1, None]}}), "bad_filter"),
        (subscribe(filters={"author_id": {"in": 1}}), "bad_filter"),
        (subscribe(filters={"author_id": {"like": 1}}), "bad_filter"),
        (subscribe(filters={"author_id": {"like": None}}), "bad_filter"),
        (subscribe(filters={"visibility": {"gt": "a"}}), "bad_filter"),
        (subscribe(filters={"visibility": "private"}), None),
        (subscribe(filters={"visibility": {"in": ["public", "private"]}}), None),
        (subscribe(filters={"visibility": {"in": ["public", "secret"]}}), "bad_filter"),
        (subscribe(filters={"visibility": None}), None),
        (subscribe(filters={"category": "x"}), "bad_filter"),
        ({"type": "subscribe", "stream": "articles", "filters": {"category": "x" * MAX_TEXT_FILTER}}, None),
        ({"type": "subscribe", "stream": "articles", "filters": {"source": "x" * MAX_TEXT_FILTER}}, None),
        ({"type": "subscribe", "stream": "articles", "filters": {"category": "x" * 1001}}, "bad_filter"),
        ({"type": "subscribe", "stream": "articles", "filters": {"source": "x" * 1001}}, "bad_filter"),
        ({"type": "subscribe", "stream": "articles", "filters": {"source": 1}}, "bad_filter"),
        ({"type": "subscribe", "stream": "articles", "filters": {"author_id": 1}}, "bad_filter"),
        (subscribe(filters=[]), "bad_filter"),
        (subscribe(filters="author_id"), "bad_filter"),
        (subscribe(after="1:2:3"), "bad_position"),
        (subscribe(after="1" * 19 + ":1"), "bad_position"),
        (subscribe(after="1" * 18 + ":" + "2" * 18), None),
        ({"type": "unsubscribe", "stream": "posts", "snapshot": 1}, "bad_message"),
        ({"type": "ping", "stream": "posts"}, "bad_message"),
        ({"type": "subscribe", "stream": 1}, "bad_message"),
        ({"type": "subscribe", "stream": "comments"}, "unknown_stream"),
        ({"type": 1}, "bad_message"),
        ({"type": "shout"}, "bad_message"),
        ({"type": "subscribe", "stream": "posts", "since": 1}, "bad_message"),
        (["ping"], "bad_message"),
    ],
)
def test_every_field_is_accepted_at_its_limit_and_refused_past_it(message, code):
    if code is None:
        assert isinstance(parse(message), Subscribe)
        return
    error = error_of(message)
    assert error.code == code
    # An error about a field of a subscription to a known stream names that stream.
    about_a_field = code in ("bad_filter", "bad_position") or (
        isinstance(message, dict) and message.get("type") == "subscribe" and "snapshot" in message
    )
    assert error.stream == (message["stream"] if about_a_field else None)


def test_an_error_names_its_stream_only_when_it_concerns_one():
    assert ProtocolError("bad_json", "no").as_message() == {
        "type": "error",
        "code": "bad_json",
        "message": "no",
    }
    with pytest.raises(ProtocolError) as error:
        parse(subscribe(filters=[]))
    assert error.value.as_message()["stream"] == "posts"


def test_positions_round_trip_and_anything_else_is_refused():
    assert Position.parse("0:0") == Position(0, 0)
    assert str(Position.parse("12:345")) == "12:345"
    assert Position(2, 1) > Position(1, 999)
    for bad in ("", "1:", ":1", "-1:2", "1:2 ", " 1:2", "a:b", 12, None, ["1:2"]):
        with pytest.raises(BadPosition, match="123:4567") as error:
            Position.parse(bad)
        assert repr(str(bad)) in str(error.value), "the message quotes what was sent"


def changes(*ids: int) -> list[Change]:
    return [Change(i, 100, "public.article", "insert", {"id": i}, None, datetime.now(UTC)) for i in ids]


def test_a_complete_batch_continues_after_its_snapshot_an_incomplete_one_within_its_delta():
    cursor = Cursor(since="10:12:10")
    done = Batch(cursor=cursor, snapshot="12:15:", changes=changes(1, 2), complete=True)
    assert done.next_cursor() == Cursor(since="12:15:")
    part = Batch(cursor=cursor, snapshot="12:15:", changes=changes(1, 2, 3), complete=False)
    assert part.next_cursor() == Cursor(since="10:12:10", until="12:15:", after_id=3)


def test_a_logged_row_becomes_a_change_whatever_the_query_selected_first():
    at = datetime.now(UTC)
    row = ("snapshot", 5, "123", "public.post", "update", {"id": 1}, {"id": 0}, at)
    assert change_from_row(row) == Change(5, 123, "public.post", "update", {"id": 1}, {"id": 0}, at)
