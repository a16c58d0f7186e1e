"""Which Channels groups a change goes to, and what each audience may see of it.

Every change goes to its stream group (`cdc.articles`, `cdc.posts`) and to the narrower
partition group of its key (an article's category, a post's author), so a selective
subscriber is not sent everything. Posts have two audiences: the public sees public posts
only; an author's own group (`cdc.posts.own.<id>`, joinable only by that logged-in user)
sees all of the author's posts. A post that turns private leaves public view as a delete
carrying no body; one that turns public enters it as an insert.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings

from cdc.log import Change

ARTICLES, POSTS = "articles", "posts"
PUBLIC, AUTHOR = "public", "author"
_SAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True, slots=True)
class StreamChange:
    """A change as the relay hands it on: one event of the log, seen by one audience."""

    id: int
    txid: int
    tick: int
    stream: str
    op: str
    row: dict[str, Any] | None
    old: dict[str, Any] | None
    audience: str = PUBLIC

    @classmethod
    def of(cls, change: Change, tick: int) -> StreamChange:
        return cls(
            id=change.id,
            txid=change.txid,
            tick=tick,
            stream=stream_for(change.table),
            op=change.op,
            row=change.row,
            old=change.old,
        )

    @property
    def position(self) -> str:
        return f"{self.tick}:{self.id}"

    @property
    def image(self) -> dict[str, Any]:
        """The row as it is now, or as it was when deleted: where keys are looked up."""
        return self.row if self.row is not None else (self.old or {})

    def as_message(self) -> dict[str, Any]:
        """The change as the channel layer carries it to the consumers: its images cut down
        to the columns they filter and route by (KEYS; the wire text carries the rest)."""
        return {
            "id": self.id,
            "txid": self.txid,
            "tick": self.tick,
            "position": self.position,
            "stream": self.stream,
            "op": self.op,
            "row": _keys(self.stream, self.row),
            "old": _keys(self.stream, self.old),
            "audience": self.audience,
        }

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> StreamChange:
        return cls(**{k: v for k, v in message.items() if k not in ("position", "text")})


# The columns a consumer decides by: filters, partitions and access (docs/protocol.md).
KEYS = {ARTICLES: ("id", "category", "source"), POSTS: ("id", "author_id", "visibility")}


def _keys(stream: str, image: dict[str, Any] | None) -> dict[str, Any] | None:
    if image is None:
        return None
    return {column: image[column] for column in KEYS.get(stream, ("id",)) if column in image}


def stream_for(table: str) -> str:
    """The stream a captured table feeds: settings.CDC_STREAMS, else its bare name."""
    streams: dict[str, str] = settings.CDC_STREAMS
    return streams.get(table) or table.rpartition(".")[2]


def token(value: object) -> str:
    """A group-name-safe token for any partition key: readable prefix, collision-proof hash."""
    text = str(value)
    digest = hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
    return f"{_SAFE.sub('_', text)[:40]}.{digest}"


def stream_group(stream: str) -> str:
    return f"cdc.{stream}"


def category_group(category: object) -> str:
    return f"cdc.{ARTICLES}.category.{token(category)}"


def author_group(author_id: object) -> str:
    return f"cdc.{POSTS}.author.{int(str(author_id))}"


def own_group(author_id: object) -> str:
    """Every post of one author, private ones included: only that author may join."""
    return f"cdc.{POSTS}.own.{int(str(author_id))}"


def routes(change: StreamChange) -> list[tuple[str, StreamChange]]:
    """(group, the change as that group's audience sees it) for every group it goes to."""
    if change.stream == ARTICLES:
        categories = {img["category"] for img in (change.row, change.old) if img is not None}
        return [(stream_group(ARTICLES), change)] + [(category_group(c), change) for c in sorted(categories)]
    if change.stream != POSTS:  # a table put under capture with cdc.track(): its stream only
        return [(stream_group(change.stream), change)]
    out: list[tuple[str, StreamChange]] = []
    author = change.image["author_id"]
    if (public := view_for(change, viewer_id=None)) is not None:
        out += [(stream_group(POSTS), public), (author_group(author), public)]
    out.append((own_group(author), replace(change, audience=AUTHOR)))
    return out


def view_for(change: StreamChange, viewer_id: int | None) -> StreamChange | None:
    """The change as `viewer_id` (None: anyone) may see it, or None if it shows them nothing."""
    if change.stream != POSTS:
        return change
    if viewer_id is not None and change.image.get("author_id") == viewer_id:
        return replace(change, audience=AUTHOR)
    before, after = _public(change.old), _public(change.row)
    if before is None and after is None:
        return None
    if before is None:
        return replace(change, op="insert", row=after, old=None, audience=PUBLIC)
    if after is None:
        gone = {"id": before["id"], "author_id": before["author_id"]}
        return replace(change, op="delete", row=None, old=gone, audience=PUBLIC)
    return replace(change, audience=PUBLIC)


def _public(image: dict[str, Any] | None) -> dict[str, Any] | None:
    return image if image is not None and image.get("visibility") == "public" else None
