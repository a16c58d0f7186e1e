"""The websocket protocol's client messages: decoding and validation (docs/protocol.md).

Everything a client sends is checked here before the consumer acts on it; anything wrong
raises `ProtocolError`, which the consumer turns into an `error` message and goes on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cdc.routing import ARTICLES, POSTS, TICKER
from cdc.ticks import BadPosition, Position

# The filters each stream accepts (validated below).
FILTERS = {ARTICLES: ("category", "source"), POSTS: ("author_id", "visibility"), TICKER: ("symbol",)}
STREAMS = tuple(FILTERS)
MAX_FRAME_BYTES = 64 * 1024
MAX_SNAPSHOT = 100
MAX_ID = 2**63 - 1  # Postgres bigint
MAX_TEXT_FILTER = 1000  # characters in a text filter (category, source, symbol)
VISIBILITIES = ("public", "private")


class ProtocolError(Exception):
    """What the client did wrong, as the `error` message it gets."""

    def __init__(self, code: str, message: str, stream: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.stream = stream

    def as_message(self) -> dict[str, Any]:
        out = {"type": "error", "code": self.code, "message": self.message}
        if self.stream is not None:
            out["stream"] = self.stream
        return out


@dataclass(frozen=True, slots=True)
class Filters:
    category: str | None = None
    source: str | None = None
    author_id: int | None = None
    visibility: str | None = None
    symbol: str | None = None


@dataclass(frozen=True, slots=True)
class Subscribe:
    stream: str
    filters: Filters
    snapshot: int | None
    after: Position | None


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    stream: str


@dataclass(frozen=True, slots=True)
class Ping:
    pass


Request = Subscribe | Unsubscribe | Ping
_FIELDS = {
    "subscribe": {"type", "stream", "filters", "snapshot", "after"},
    "unsubscribe": {"type", "stream"},
    "ping": {"type"},
}


def decode(text: str | None, data: bytes | None) -> Any:
    """The JSON value of one frame: text frames of at most MAX_FRAME_BYTES only."""
    size = len(data) if text is None and data is not None else len((text or "").encode())
    if size > MAX_FRAME_BYTES:
        raise ProtocolError("message_too_large", f"a frame holds at most {MAX_FRAME_BYTES} bytes, not {size}")
    if text is None:
        raise ProtocolError("bad_json", "binary frames are not accepted: send JSON in a text frame")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # ValueError: also ints of >4300 digits
        raise ProtocolError("bad_json", f"not JSON: {str(exc)[:100]}") from exc


def parse(message: Any) -> Request:
    """The request a decoded frame makes, or ProtocolError saying what is wrong with it."""
    if not isinstance(message, dict):
        raise ProtocolError("bad_message", f"a message is a JSON object, not {_kind(message)}")
    kind = message.get("type")
    if not isinstance(kind, str) or kind not in _FIELDS:
        raise ProtocolError("bad_message", f"'type' must be one of {', '.join(_FIELDS)}")
    unknown = sorted(set(message) - _FIELDS[kind])
    if unknown:
        raise ProtocolError("bad_message", f"unknown field {unknown[0][:40]!r} in {kind}")
    if kind == "ping":
        return Ping()
    stream = _stream(message.get("stream"))
    if kind == "unsubscribe":
        return Unsubscribe(stream)
    return Subscribe(
        stream=stream,
        filters=_filters(stream, message.get("filters")),
        snapshot=_snapshot(stream, message.get("snapshot")),
        after=_after(stream, message.get("after")),
    )


def _stream(value: Any) -> str:
    if not isinstance(value, str):
        raise ProtocolError("bad_message", f"'stream' must be a string, not {_kind(value)}")
    if value not in STREAMS:
        raise ProtocolError("unknown_stream", f"no stream {value[:40]!r}: choose {', '.join(STREAMS)}")
    return value


def _filters(stream: str, value: Any) -> Filters:
    if value is None:
        return Filters()
    if not isinstance(value, dict):
        raise ProtocolError("bad_filter", f"'filters' must be an object, not {_kind(value)}", stream)
    allowed = FILTERS[stream]
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ProtocolError(
            "bad_filter", f"{stream} has no filter {unknown[0][:40]!r}: use {' or '.join(allowed)}", stream
        )
    for name in ("category", "source", "symbol"):
        if name in value and not _is_text(value[name]):
            raise ProtocolError(
                "bad_filter",
                f"{name!r} must be a string of at most {MAX_TEXT_FILTER} characters, without NUL",
                stream,
            )
    author = value.get("author_id")
    if author is not None and not (_is_int(author) and 1 <= author <= MAX_ID):
        raise ProtocolError("bad_filter", f"'author_id' must be a user id (1 to {MAX_ID})", stream)
    if "visibility" in value and value["visibility"] not in VISIBILITIES:
        raise ProtocolError("bad_filter", "'visibility' must be 'public' or 'private'", stream)
    return Filters(**value)


def _snapshot(stream: str, value: Any) -> int | None:
    if value is None:
        return None
    if not (_is_int(value) and 0 <= value <= MAX_SNAPSHOT):
        raise ProtocolError("bad_message", f"'snapshot' must be an integer from 0 to {MAX_SNAPSHOT}", stream)
    return int(value)


def _after(stream: str, value: Any) -> Position | None:
    if value is None:
        return None
    try:
        return Position.parse(value)
    except BadPosition as exc:
        raise ProtocolError("bad_position", str(exc), stream) from exc


def _is_text(value: Any) -> bool:
    """A string the database can compare: Postgres text cannot hold a NUL character."""
    return isinstance(value, str) and len(value) <= MAX_TEXT_FILTER and "\0" not in value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else "a number"
    )
