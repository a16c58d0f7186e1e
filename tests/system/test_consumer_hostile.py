"""Malformed and hostile input: every frame gets an error naming the problem, the connection
still answers ping, and the server stays up.

Hypothesis drives the bulk in-process (each generated frame has exactly one defect, so the
error code it must get is known); a real web server (each of them) takes the frames only a real server can be
sent: a megabyte, more than the server's own limit, thousands of subscribes at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed

from cdc import declarations
from cdc.declarations import SNAPSHOT_MAX as MAX_SNAPSHOT
from cdc.ticks import BadPosition, Position
from consumers.edge import CLOSE_FLOODING
from consumers.live import LiveConsumer
from consumers.protocol import MAX_FRAME_BYTES
from testkit.live_servers import live_system
from testkit.wsclient import real_socket, until_closed
from tests.consumer_env import connected

STREAMS = tuple(declarations.all_streams())
VISIBILITIES = ("public", "private")
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**40), max_value=10**40)  # far beyond any id or count
    | st.floats()
    | st.text(max_size=20)
)
JSON = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
)
SUBSCRIBES = st.sampled_from([{"type": "subscribe", "stream": s} for s in STREAMS])
BASES = SUBSCRIBES | st.sampled_from([{"type": "unsubscribe", "stream": s} for s in STREAMS])
FIELDS = {"subscribe": {"type", "stream", "filters", "snapshot", "after"}, "unsubscribe": {"type", "stream"}}


def is_json(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


def is_count(value: Any) -> bool:
    return type(value) is int and 0 <= value <= MAX_SNAPSHOT


def is_position(value: Any) -> bool:
    try:
        Position.parse(value)
    except BadPosition:
        return False
    return True


def with_field(bases: st.SearchStrategy, name: str, values: st.SearchStrategy) -> st.SearchStrategy:
    return st.builds(lambda base, value: {**base, name: value}, bases, values)


def defect(messages: st.SearchStrategy, code: str) -> st.SearchStrategy:
    return messages.map(lambda m: (json.dumps(m), code))


def articles_filters(values: st.SearchStrategy) -> st.SearchStrategy:
    return st.builds(lambda v: {"type": "subscribe", "stream": "articles", "filters": v}, values)


def posts_filters(values: st.SearchStrategy) -> st.SearchStrategy:
    return st.builds(lambda v: {"type": "subscribe", "stream": "posts", "filters": v}, values)


def not_a(kind: type | tuple[type, ...]) -> st.SearchStrategy:
    return JSON.filter(lambda v: v is not None and not isinstance(v, kind))


def unknown_field(base: dict[str, Any]) -> st.SearchStrategy:
    names = st.text(min_size=1, max_size=12).filter(lambda n: n not in FIELDS[base["type"]])
    return st.builds(lambda name, value: {**base, name: value}, names, JSON)


UNKNOWN_ARTICLE_FILTER = st.text(max_size=10).filter(lambda k: k not in ("category", "source"))
# Just past each limit as often as anything else: a generic JSON value is rarely an integer
# out of range by one.
BAD_COUNT = (
    st.integers(MAX_SNAPSHOT + 1, MAX_SNAPSHOT + 3)
    | st.integers(MAX_SNAPSHOT + 1)
    | st.integers(max_value=-1)
    | JSON.filter(lambda v: v is not None and not is_count(v))
)
# A filter's value: a bare value, or an object of operators (those are tested in tests/unit).
BAD_AUTHOR = st.sampled_from([-(2**63) - 1, 2**63, 2**63 + 1]) | not_a(dict).filter(
    lambda v: not (type(v) is int and -(2**63) <= v < 2**63)
)
OVERSIZED = st.integers(1, 1000).map(
    lambda n: json.dumps({"type": "ping", "pad": "x" * (MAX_FRAME_BYTES + n)})
)
NOT_JSON = (
    st.text(min_size=1, max_size=40).filter(lambda t: not is_json(t))
    | st.binary(min_size=1, max_size=40)
    | st.sampled_from(["[" * 60_000, '{"a":' * 12_000, '{"type": "ping", "n": ' + "9" * 5000 + "}"])
)
HOSTILE = st.one_of(
    NOT_JSON.map(lambda frame: (frame, "bad_json")),
    OVERSIZED.map(lambda frame: (frame, "message_too_large")),
    defect(JSON.filter(lambda v: not isinstance(v, dict)), "bad_message"),
    defect(
        with_field(
            BASES, "type", JSON.filter(lambda v: v not in ("subscribe", "unsubscribe", "ping", "streams"))
        ),
        "bad_message",
    ),
    defect(BASES.flatmap(unknown_field), "bad_message"),
    defect(with_field(BASES, "stream", not_a(str) | st.none()), "bad_message"),
    defect(
        with_field(BASES, "stream", st.text(max_size=20).filter(lambda s: s not in STREAMS)), "unknown_stream"
    ),
    defect(with_field(SUBSCRIBES, "snapshot", BAD_COUNT), "bad_message"),
    defect(
        with_field(SUBSCRIBES, "after", JSON.filter(lambda v: v is not None and not is_position(v))),
        "bad_position",
    ),
    defect(with_field(SUBSCRIBES, "filters", not_a(dict)), "bad_filter"),
    defect(
        articles_filters(st.dictionaries(UNKNOWN_ARTICLE_FILTER, JSON, min_size=1, max_size=2)), "bad_filter"
    ),
    defect(articles_filters(st.builds(lambda v: {"category": v}, not_a((str, dict)))), "bad_filter"),
    defect(posts_filters(st.builds(lambda v: {"author_id": v}, BAD_AUTHOR)), "bad_filter"),
    defect(
        posts_filters(
            st.builds(lambda v: {"visibility": v}, not_a(dict).filter(lambda v: v not in VISIBILITIES))
        ),
        "bad_filter",
    ),
)


@pytest.mark.usefixtures("layer")
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=st.lists(HOSTILE, min_size=1, max_size=6))
async def test_each_hostile_frame_gets_its_error_and_the_connection_goes_on(frames):
    async with connected() as client:
        for frame, code in frames:
            await client.send_frame(frame)
            reply = await client.receive()
            assert (reply["type"], reply["code"]) == ("error", code), (frame[:80], reply)
            assert isinstance(reply["message"], str)
        assert await client.answers_ping()


@pytest.mark.usefixtures("live_db", "layer")
@pytest.mark.parametrize("stream_filter", [("articles", "category"), ("articles", "source")])
async def test_a_nul_character_in_a_text_filter_is_a_bad_filter_and_logs_nothing(stream_filter, caplog):
    stream, name = stream_filter
    async with connected() as client:
        reply = await client.ask({"type": "subscribe", "stream": stream, "filters": {name: "a\u0000b"}})
        assert (reply["type"], reply["code"], reply["stream"]) == ("error", "bad_filter", stream)
        assert await client.answers_ping()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


@pytest.mark.timeout(120)
@pytest.mark.usefixtures("each_web_server")
async def test_a_real_server_survives_megabytes_floods_and_oversized_frames(fresh_db):
    with live_system(fresh_db) as system:
        async with real_socket(system.port) as client:
            for frame in ("x" * 1_000_000, b"\0" * 1_000_000):
                await client.send_frame(frame)
                assert (await client.receive())["code"] == "message_too_large"

            assert await client.answers_ping()

        # A flood is limited as it arrives: a burst's worth is served, the rest refused with
        # `rate_limited`, and a client that keeps going is closed (4008); others see nothing.
        async with real_socket(system.port) as flooder, real_socket(system.port) as bystander:
            subscribe = json.dumps({"type": "subscribe", "stream": "articles"})
            with contextlib.suppress(ConnectionClosed):
                for _ in range(3000):
                    await flooder.send_frame(subscribe)
            replies = Counter(reply.get("code", reply["type"]) for reply in await until_closed(flooder))
            assert flooder.ws.close_code == CLOSE_FLOODING
            assert set(replies) <= {"subscribed", "rate_limited"}
            assert replies["rate_limited"] >= 1
            assert replies["subscribed"] <= LiveConsumer.burst
            assert await bystander.answers_ping()

        # Past the server's own limit (1 MiB) the frame never reaches the consumer: the server
        # drops that connection, and nothing else.
        async with real_socket(system.port) as victim, real_socket(system.port) as bystander:
            with contextlib.suppress(ConnectionClosed):  # it may close while this is sent
                await victim.send_frame("x" * (2 * 1024 * 1024))
            with pytest.raises(ConnectionClosed):
                await victim.receive()
            assert await bystander.answers_ping()
        async with real_socket(system.port) as newcomer:
            assert await newcomer.answers_ping()
        assert system.web.popen.poll() is None
