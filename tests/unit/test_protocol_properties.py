"""The client messages (consumers/protocol.py): what is accepted becomes the right request,
and anything else is a ProtocolError with a code docs/protocol.md documents."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cdc import declarations
from cdc.declarations import SNAPSHOT_MAX as MAX_SNAPSHOT
from cdc.filters import MAX_BIGINT as MAX_ID
from cdc.filters import MAX_IN, Filters
from cdc.filters import MAX_TEXT as MAX_TEXT_FILTER
from cdc.ticks import Position
from consumers.protocol import (
    MAX_FRAME_BYTES,
    Ping,
    ProtocolError,
    Request,
    Streams,
    Subscribe,
    Unsubscribe,
    decode,
    parse,
)

STREAMS = tuple(declarations.all_streams())
VISIBILITIES = ("public", "private")


def filters_of(stream: str, wanted: Any) -> Filters:
    return declarations.all_streams()[stream].filters_of(wanted)


def documented_codes() -> set[str]:
    """The codes in the table under "### `error`" in docs/protocol.md."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
    section = text.split("### `error`", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(\w+)` \|", section, re.MULTILINE))


CODES = documented_codes()


def error_of(text: str | None = None, data: bytes | None = None, message: Any = None) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        parse(decode(text, data) if text is not None or data is not None else message)
    assert caught.value.code in CODES
    return caught.value


def test_the_documented_codes_were_found():
    assert {"bad_json", "bad_message", "bad_filter", "bad_position", "message_too_large"} <= CODES


# Accepted messages: each becomes exactly the request it asks for.

positions = st.builds(Position, st.integers(0, 10**18 - 1), st.integers(0, 10**18 - 1))
filter_text = st.text(alphabet=st.characters(blacklist_characters="\x00"), max_size=30) | st.just(
    "x" * MAX_TEXT_FILTER
)  # Postgres text holds no NUL
KIND_VALUES = {
    "text": filter_text,
    "integer": st.integers(-MAX_ID - 1, MAX_ID) | st.sampled_from([1, MAX_ID, -MAX_ID - 1]),
    "number": st.integers(-(10**6), 10**6) | st.floats(allow_nan=False, allow_infinity=False),
    "boolean": st.booleans(),
    "timestamp": st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat),
}


def column_values(stream: str, column: str) -> st.SearchStrategy[Any]:
    declared = declarations.all_streams()[stream]
    choices = declared.columns[column].choices
    return st.sampled_from(choices) if choices else KIND_VALUES[declared.columns[column].kind.name]


@st.composite
def stream_filters(draw: st.DrawFn, stream: str) -> dict[str, Any]:
    """Valid filters of `stream`: per column a bare value, or an object of allowed operators."""
    declared = declarations.all_streams()[stream]
    out: dict[str, Any] = {}
    for name, column in declared.columns.items():
        if not column.allowed or draw(st.booleans()):
            continue
        values = column_values(stream, name)
        ops = draw(st.lists(st.sampled_from(column.allowed), unique=True, min_size=1, max_size=3))
        if ops == ["eq"] and draw(st.booleans()):
            out[name] = draw(values)
        else:
            out[name] = {
                op: draw(st.lists(values, min_size=1, max_size=3) if op == "in" else values) for op in ops
            }
    return out


@st.composite
def subscribes(draw: st.DrawFn) -> tuple[dict[str, Any], Subscribe]:
    stream = draw(st.sampled_from(STREAMS))
    filters: dict[str, Any] = draw(stream_filters(stream))
    most = declarations.all_streams()[stream].snapshot_max
    snapshot = draw(st.none() | st.integers(0, most) | st.sampled_from([0, most]))
    after = draw(st.none() | positions)
    message: dict[str, Any] = {"type": "subscribe", "stream": stream}
    # Absent and null are the same; {} is no filter.
    for name, value in (("filters", filters), ("snapshot", snapshot), ("after", after)):
        if value is not None or draw(st.booleans()):
            message[name] = str(value) if isinstance(value, Position) else value
    expected = Subscribe(stream, declarations.all_streams()[stream].filters_of(filters), snapshot, after)
    return message, expected


@settings(max_examples=50, deadline=None)
@given(subscribes())
def test_a_valid_subscribe_round_trips(case):
    message, expected = case
    assert parse(decode(json.dumps(message), None)) == expected


@given(st.sampled_from(STREAMS))
def test_unsubscribe_and_ping_round_trip(stream):
    assert parse(decode(json.dumps({"type": "unsubscribe", "stream": stream}), None)) == Unsubscribe(stream)
    assert parse(decode('{"type": "ping"}', None)) == Ping()
    assert parse(decode('{"type": "streams"}', None)) == Streams()


# Anything at all: a ProtocolError with a documented code, or a request valid as sent.

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats()
    | st.text(max_size=20)
    | st.text(alphabet=st.sampled_from("\x00a\u00e9\U0001f600"), max_size=5)
    | st.just("x" * (MAX_TEXT_FILTER + 1))
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
FIELDS = ("type", "stream", "filters", "snapshot", "after")
FILTERS = {name: tuple(stream.columns) for name, stream in declarations.all_streams().items()}
OPERATORS = ("eq", "neq", "lt", "lte", "gt", "gte", "in")
too_long = "x" * (MAX_TEXT_FILTER + 1)
# Per field, values at and around its bounds, so that edges come up often, not by luck.
EDGES = {
    "type": st.sampled_from(["subscribe", "unsubscribe", "ping", "Ping", "", None]),
    "stream": st.sampled_from([*STREAMS, "article", "cdc.posts", "", None, 1]),
    "filters": st.sampled_from([{}, None, [], "tech", {"tag": "x"}]),
    "snapshot": st.sampled_from([MAX_SNAPSHOT + 1, True, -1, 2**64, False, 50.0, "5", None, 0, MAX_SNAPSHOT]),
    "after": st.sampled_from(["0:0", "1:", ":1", "1:2:3", "-1:2", "9" * 19 + ":1", " 1:2", 12, None])
    | positions.map(str),
    "category": st.sampled_from(["", "x" * MAX_TEXT_FILTER, too_long, None, 5, ["tech"]]),
    "source": st.sampled_from(["", "x" * MAX_TEXT_FILTER, too_long, None, 5, ["wire"]]),
    "author_id": st.sampled_from(
        [True, MAX_ID + 1, 0, "3", MAX_ID, 1, {"gt": 1}, {"in": []}, {"in": [1] * (MAX_IN + 1)}, {"lt": None}]
    ),
    "visibility": st.sampled_from(
        [*VISIBILITIES, "Public", "", None, 1, True, {"in": ["public"]}, {"gt": "public"}, {"neq": "x"}]
    ),
}


def with_value(message: dict[str, Any], name: str, value: Any, data: st.DataObject) -> None:
    """`message` with field or filter `name` set to `value` (a filter: mostly of its stream)."""
    if name in FIELDS:
        message[name] = value
    elif name in EDGES:
        own = "articles" if name in FILTERS["articles"] else "posts"
        stream = message["stream"] = data.draw(st.sampled_from([own, own, own, *STREAMS]))
        filters = message.get("filters")
        kept = {k: v for k, v in filters.items() if k in FILTERS[stream]} if isinstance(filters, dict) else {}
        message["filters"] = {**kept, name: value}
    else:
        message[name] = value


@st.composite
def nearly_valid(draw: st.DrawFn) -> dict[str, Any]:
    """A valid subscribe with one or two things changed (a field, a filter, a field more),
    mostly to a value at an edge: every check of the parser is reached, not only the first."""
    message = draw(subscribes())[0]
    data = draw(st.data())
    for _ in range(draw(st.integers(1, 2))):
        name = draw(st.sampled_from([*EDGES]) | st.text(max_size=8))
        with_value(message, name, draw(EDGES.get(name, json_values) | json_values), data)
    return message


messages = (
    json_values
    | st.dictionaries(st.sampled_from([*FIELDS, "extra"]) | st.text(max_size=8), json_values, max_size=5)
    | nearly_valid()
)


def assert_valid_as_sent(message: Any, request: Request) -> None:
    """An accepted message was valid as docs/protocol.md says (checked apart from the
    parser's code), and became the request it asks for."""
    kind = message["type"]
    allowed = {
        "ping": {"type"},
        "streams": {"type"},
        "unsubscribe": {"type", "stream"},
        "subscribe": set(FIELDS),
    }
    assert set(message) <= allowed[kind]
    if kind in ("ping", "streams"):
        assert request == (Ping() if kind == "ping" else Streams())
        return
    stream = message["stream"]
    assert stream in STREAMS
    if kind == "unsubscribe":
        assert request == Unsubscribe(stream)
        return
    snapshot, after, filters = message.get("snapshot"), message.get("after"), message.get("filters")
    assert snapshot is None or (type(snapshot) is int and 0 <= snapshot <= 100)
    assert after is None or (type(after) is str and re.fullmatch(r"\d{1,18}:\d{1,18}", after))
    assert filters is None or type(filters) is dict
    assert isinstance(request, Subscribe)
    got = [(c.column, c.op, c.value) for c in request.filters.conditions]
    assert sorted(got, key=lambda c: (c[0], c[1])) == valid_conditions(stream, filters or {})
    assert (request.stream, request.snapshot) == (stream, snapshot)
    assert request.after == (None if after is None else Position.parse(after))


def valid_conditions(stream: str, filters: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """The conditions valid filters name, each checked as docs/protocol.md says (a bare value
    is `eq`, null is no condition), apart from the parser's code."""
    declared = declarations.all_streams()[stream]
    out = []
    for name, wanted in filters.items():
        assert name in declared.columns
        assert declared.columns[name].allowed
        for op, operand in (wanted if type(wanted) is dict else {"eq": wanted}).items():
            assert op in OPERATORS
            assert op in declared.columns[name].allowed
            if operand is None:
                continue
            if op == "in":
                assert type(operand) is list
                assert 1 <= len(operand) <= MAX_IN
                out.append((name, op, tuple(valid_value(stream, name, v) for v in operand)))
            else:
                out.append((name, op, valid_value(stream, name, operand)))
    return sorted(out, key=lambda c: (c[0], c[1]))


def valid_value(stream: str, name: str, value: Any) -> Any:
    column = declarations.all_streams()[stream].columns[name]
    assert not column.choices or value in column.choices
    match column.kind.name:
        case "text":
            assert type(value) is str
            assert len(value) <= MAX_TEXT_FILTER
            assert "\x00" not in value
        case "integer":
            assert type(value) is int
            assert -(2**63) <= value < 2**63
        case "number":
            assert type(value) in (int, float)
            assert abs(value) != float("inf")
            assert value == value
            return float(value)
        case "boolean":
            assert type(value) is bool
        case "timestamp":
            assert type(value) is str
            assert datetime.fromisoformat(value).tzinfo is not None
            return datetime.fromisoformat(value)
    return value


def outcome(request: Callable[[], Request]) -> Request | ProtocolError:
    """The request, or the ProtocolError, checked to be one docs/protocol.md documents."""
    try:
        return request()
    except ProtocolError as error:
        caught = error
    assert caught.code in CODES
    assert caught.stream in (None, *STREAMS)
    assert caught.as_message()["code"] == caught.code
    return caught


def check(message: Any) -> None:
    request = outcome(lambda: parse(message))
    if not isinstance(request, ProtocolError):
        assert_valid_as_sent(message, request)


@settings(max_examples=100, deadline=None)
@given(messages)
def test_any_value_is_a_documented_error_or_a_valid_request(message):
    check(message)


@settings(max_examples=100, deadline=None)
@given(nearly_valid())
def test_any_nearly_valid_subscribe_is_a_documented_error_or_a_valid_request(message):
    check(message)


@pytest.mark.parametrize("name", [*EDGES, "extra"])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_each_field_and_filter_at_its_edges(name, data):
    message = data.draw(subscribes())[0]
    at_edge = data.draw(st.sampled_from([True, True, True, False]))
    value = data.draw(EDGES[name] if at_edge and name in EDGES else json_values)
    with_value(message, name, value, data)
    check(message)


def padded(text: str, size: int) -> str:
    """The frame with trailing whitespace (still the same JSON) up to `size` bytes."""
    return text + " " * (size - len(text.encode()))


frames = (
    messages.map(json.dumps)
    | st.text(max_size=50)
    | st.binary(max_size=50).map(lambda b: b.decode("latin-1"))
    | (st.sampled_from([999, 1001, 5000, 30_000]) | st.integers(1, 30_000)).map(lambda n: "[" * n + "]" * n)
    | st.integers(4300, 4400).map(lambda digits: "1" * digits)
    | st.builds(padded, messages.map(json.dumps), st.integers(MAX_FRAME_BYTES - 2, MAX_FRAME_BYTES + 2))
)


@settings(max_examples=150, deadline=None)
@given(frames)
def test_any_text_frame_is_a_documented_error_or_a_valid_request(text):
    request = outcome(lambda: parse(decode(text, None)))
    too_large = len(text.encode()) > MAX_FRAME_BYTES
    if isinstance(request, ProtocolError):
        assert (request.code == "message_too_large") == too_large
    else:
        assert not too_large
        assert_valid_as_sent(json.loads(text), request)


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=100) | frames.map(str.encode))
def test_any_binary_frame_is_refused(data):
    request = outcome(lambda: parse(decode(None, data)))
    assert isinstance(request, ProtocolError)
    assert request.code == ("message_too_large" if len(data) > MAX_FRAME_BYTES else "bad_json")


# Specific cases, by code.


@pytest.mark.parametrize(
    ("snapshot", "code"),
    [
        (0, None),
        (MAX_SNAPSHOT, None),
        (MAX_SNAPSHOT + 1, "bad_message"),
        (-1, "bad_message"),
        (2**70, "bad_message"),
        (True, "bad_message"),
        (50.0, "bad_message"),
        ("5", "bad_message"),
    ],
)
def test_snapshot_bounds(snapshot, code):
    message = {"type": "subscribe", "stream": "articles", "snapshot": snapshot}
    if code is None:
        assert parse(message) == Subscribe("articles", Filters(), snapshot, None)
    else:
        assert error_of(message=message).code == code


@pytest.mark.parametrize(
    ("author_id", "ok"),
    [
        (1, True),
        (MAX_ID, True),
        (0, True),
        (-5, True),
        (-MAX_ID - 1, True),
        (MAX_ID + 1, False),
        (True, False),
        ("3", False),
        (3.0, False),
    ],
)
def test_author_id_is_a_64_bit_integer_and_not_a_boolean(author_id, ok):
    message = {"type": "subscribe", "stream": "posts", "filters": {"author_id": author_id}}
    if ok:
        assert parse(message) == Subscribe("posts", filters_of("posts", {"author_id": author_id}), None, None)
    else:
        error = error_of(message=message)
        assert (error.code, error.stream) == ("bad_filter", "posts")


@pytest.mark.parametrize(
    ("filters", "ok"),
    [
        ({"category": "x" * MAX_TEXT_FILTER}, True),
        ({"category": "x" * (MAX_TEXT_FILTER + 1)}, False),
        ({"source": 7}, False),
        ({"author_id": 3}, False),  # a posts filter on articles
        ("tech", False),
        ([], False),
    ],
)
def test_article_filters(filters, ok):
    message = {"type": "subscribe", "stream": "articles", "filters": filters}
    if ok:
        assert parse(message) == Subscribe("articles", filters_of("articles", filters), None, None)
    else:
        assert error_of(message=message).code == "bad_filter"


@pytest.mark.parametrize("visibility", ["secret", "", 1, ["public"], {"in": ["secret"]}, {"lt": "public"}])
def test_visibility_is_public_or_private(visibility):
    message = {"type": "subscribe", "stream": "posts", "filters": {"visibility": visibility}}
    assert error_of(message=message).code == "bad_filter"


@pytest.mark.parametrize(
    "message",
    [
        {"type": "ping", "stream": "posts"},
        {"type": "unsubscribe", "stream": "posts", "snapshot": 1},
        {"type": "subscribe", "stream": "posts", "filter": {}},
        {"type": "subscribe", "stream": "posts", "\x00": 1},
    ],
)
def test_an_unknown_field_is_named_in_bad_message(message):
    error = error_of(message=message)
    assert error.code == "bad_message"
    assert "unknown field" in error.message


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ([], "bad_message"),
        ("ping", "bad_message"),
        (None, "bad_message"),
        ({}, "bad_message"),
        ({"type": "PING"}, "bad_message"),
        ({"type": ["ping"]}, "bad_message"),
        ({"type": "subscribe"}, "bad_message"),
        ({"type": "subscribe", "stream": 1}, "bad_message"),
        ({"type": "subscribe", "stream": "cdc.posts"}, "unknown_stream"),
        ({"type": "unsubscribe", "stream": "x" * 10_000}, "unknown_stream"),
    ],
)
def test_malformed_messages(message, code):
    assert error_of(message=message).code == code


@pytest.mark.parametrize(
    ("after", "ok"),
    [
        ("0:0", True),
        ("9" * 18 + ":" + "9" * 18, True),
        ("9" * 19 + ":1", False),
        ("1:-2", False),
        ("1:2\n", False),
        ("1:2:3", False),
        ("1\x00:2", False),
        ("\u0661\u0662:\u0663", False),  # Arabic-Indic digits: no position this server hands out
        (12, False),
        ({"tick": 1}, False),
    ],
)
def test_after_is_a_position(after, ok):
    message = {"type": "subscribe", "stream": "posts", "after": after}
    if ok:
        assert parse(message) == Subscribe("posts", Filters(), None, Position.parse(after))
    else:
        error = error_of(message=message)
        assert (error.code, error.stream) == ("bad_position", "posts")


def test_binary_frames_are_refused_even_when_they_hold_json():
    assert error_of(data=b'{"type": "ping"}').code == "bad_json"


@pytest.mark.parametrize("binary", [False, True])
def test_a_frame_over_the_limit_is_too_large_and_one_at_it_is_not(binary):
    def frame(size: int) -> tuple[str | None, bytes | None]:
        text = '{"type": "ping", "x": "' + "\u00e9" * ((size - 25) // 2) + '"}'
        text += " " * (size - len(text.encode()))  # exactly `size` bytes, most of them two-byte
        assert len(text.encode()) == size
        return (None, text.encode()) if binary else (text, None)

    assert error_of(*frame(MAX_FRAME_BYTES + 1)).code == "message_too_large"
    at_limit = error_of(*frame(MAX_FRAME_BYTES))  # past the size check: refused for what it holds
    assert at_limit.code == ("bad_json" if binary else "bad_message")


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "bad_json"),
        ("{", "bad_json"),
        ('{"type": "ping"} x', "bad_json"),
        ('"\x00"', "bad_json"),  # a raw control character in a string
        ("[" * 50_000, "bad_json"),  # deeper than the parser goes
        ("1" * 5_000, "bad_json"),  # an integer of more than 4300 digits
        ("NaN", "bad_message"),  # JSON to Python's parser, but not an object
    ],
)
def test_frames_that_are_not_json_objects(text, code):
    assert error_of(text).code == code
