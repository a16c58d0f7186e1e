"""What the server sends, encoded once and never larger than a frame may be.

A change is encoded once per audience view by the relay (cdc/relay.py), so a websocket
connection only writes the text out. A row too large for a frame keeps its shape: its largest values are cut
(strings to a prefix, anything else to null) and named in `truncated`; the whole row is one
HTTP request away (consumers/rows.py). Snapshots go out as pages, each within the bound.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
from django.conf import settings

from cdc.routing import StreamChange

SLACK = 256  # bytes a snapshot page keeps free for its own fields


def dumps(message: object) -> str:
    return orjson.dumps(message).decode()


def size(text: str) -> int:
    """Bytes of `text` in UTF-8, without encoding it when it is ASCII (nearly always)."""
    return len(text) if text.isascii() else len(text.encode())


def change_message(change: StreamChange) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "change",
        "stream": change.stream,
        "op": change.op,
        "id": change.id,
        "position": change.position,
        "row": change.row,
    }
    if change.op != "insert":
        message["old"] = change.old
    return message


def encode_change(change: StreamChange, limit: int | None = None) -> str:
    """The `change` message's text, within `limit` bytes (LIVE_MAX_FRAME_BYTES)."""
    return fit(change_message(change), limit or settings.LIVE_MAX_FRAME_BYTES)


def fit(message: dict[str, Any], limit: int) -> str:
    """`message` as text of at most `limit` bytes. If it is larger, every value of its row
    images longer than some cap is cut to that cap (strings to a prefix, other values to
    null), with the largest cap that fits; the cut columns are listed in `truncated`."""
    text = dumps(message)
    if size(text) <= limit:
        return text
    low, high = 0, max(map(_length, _values(message)), default=0)
    best = _capped(message, 0)
    while low <= high:  # the largest cap that fits: a few dozen encodings, for rare rows only
        cap = (low + high) // 2
        candidate = _capped(message, cap)
        if size(candidate) <= limit:
            best, low = candidate, cap + 1
        else:
            high = cap - 1
    return best


_IMAGES = ("row", "old")


def _values(message: dict[str, Any]) -> Iterator[Any]:
    for name in _IMAGES:
        if isinstance(image := message.get(name), dict):
            yield from image.values()


def _length(value: Any) -> int:
    return len(value) if isinstance(value, str) else len(dumps(value))


def _capped(message: dict[str, Any], cap: int) -> str:
    out, cut = dict(message), set()
    for name in _IMAGES:
        image = message.get(name)
        if not isinstance(image, dict):
            continue
        out[name] = {column: _cap(value, cap) for column, value in image.items()}
        cut |= {column for column, value in image.items() if column != "id" and _length(value) > cap}
        out[name]["id"] = image.get("id")  # the key stays whole: the row can be fetched
    out["truncated"] = sorted(cut)
    return dumps(out)


def _cap(value: Any, cap: int) -> Any:
    if _length(value) <= cap:
        return value
    return value[:cap] if isinstance(value, str) else None


class SnapshotPages:
    """Rows (as JSON text) into `snapshot` messages of at most `limit` bytes each; the last
    has `"complete": true`. A row too large for a page alone is cut like a change's."""

    def __init__(self, stream: str, position: str, limit: int | None = None) -> None:
        self.limit = limit or settings.LIVE_MAX_FRAME_BYTES
        self.head = dumps({"type": "snapshot", "stream": stream, "position": position})[:-1]
        self.room = self.limit - len(self.head) - SLACK
        self.rows: list[str] = []
        self.used = 0
        self.truncated: dict[str, list[str]] = {}

    def add(self, text: str) -> str | None:
        """Take one row; a full page to send first, when this row does not fit in the last."""
        cut = None
        if size(text) > self.room:
            shrunk = orjson.loads(fit({"row": orjson.loads(text)}, self.room))
            text, cut = dumps(shrunk["row"]), (str(shrunk["row"].get("id")), shrunk["truncated"])
        full = None
        if self.rows and self.used + size(text) + 1 > self.room:
            full = self.page(complete=False)
        if cut:
            self.truncated[cut[0]] = cut[1]
        self.rows.append(text)
        self.used += size(text) + 1
        return full

    def page(self, *, complete: bool) -> str:
        """The page of the rows taken since the last one (the last page: `complete`)."""
        cut = f',"truncated":{dumps(self.truncated)}' if self.truncated else ""
        text = f'{self.head},"complete":{dumps(complete)}{cut},"rows":[{",".join(self.rows)}]}}'
        self.rows, self.used, self.truncated = [], 0, {}
        return text
