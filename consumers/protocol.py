"""The websocket protocol's client messages: decoding and validation (docs/protocol.md).

Everything a client sends is checked here before the consumer acts on it; anything wrong
raises `ProtocolError`, which the consumer turns into an `error` message and goes on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cdc import declarations, filters
from cdc.declarations import Stream
from cdc.filters import Filters
from cdc.ticks import BadPosition, Position

MAX_FRAME_BYTES = 64 * 1024


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


@dataclass(frozen=True, slots=True)
class Streams:
    pass


Request = Subscribe | Unsubscribe | Ping | Streams
_FIELDS = {
    "subscribe": {"type", "stream", "filters", "snapshot", "after"},
    "unsubscribe": {"type", "stream"},
    "ping": {"type"},
    "streams": {"type"},
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
    if kind == "streams":
        return Streams()
    stream = _stream(message.get("stream"))
    if kind == "unsubscribe":
        return Unsubscribe(stream.name)
    return Subscribe(
        stream=stream.name,
        filters=_filters(stream, message.get("filters")),
        snapshot=_snapshot(stream, message.get("snapshot")),
        after=_after(stream.name, message.get("after")),
    )


def _stream(value: Any) -> Stream:
    if not isinstance(value, str):
        raise ProtocolError("bad_message", f"'stream' must be a string, not {_kind(value)}")
    stream = declarations.get(value)
    if stream is None:
        names = " or ".join(declarations.all_streams())
        raise ProtocolError("unknown_stream", f"no stream {value[:40]!r}: choose {names}")
    return stream


def _filters(stream: Stream, value: Any) -> Filters:
    try:
        return stream.filters_of(value)
    except filters.FilterError as exc:
        raise ProtocolError("bad_filter", f"{stream.name}: {exc}", stream.name) from None


def _snapshot(stream: Stream, value: Any) -> int | None:
    if value is None:
        return None
    if not (_is_int(value) and 0 <= value <= stream.snapshot_max):
        raise ProtocolError(
            "bad_message", f"'snapshot' must be an integer from 0 to {stream.snapshot_max}", stream.name
        )
    return int(value)


def _after(stream: str, value: Any) -> Position | None:
    if value is None:
        return None
    try:
        return Position.parse(value)
    except BadPosition as exc:
        raise ProtocolError("bad_position", str(exc), stream) from exc


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else "a number"
    )
