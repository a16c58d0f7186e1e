"""Which Channels groups a change goes to, and what each audience may see of it.

Every stream has audiences (`AUDIENCES`): the public, who may see the rows `public` allows,
and each row's owner, who also sees their own rows. One rule holds for all of them
(`seen_by`): an audience is shown an image (`row` or `old`) only if it may see that image; a
row leaving its view is a `delete` keeping only the row's keys, one entering it an `insert`.
So a private post moved to another author is a delete for the old author and an insert for
the new one, and neither sees the other's image.

The public view goes to the stream group (`cdc.articles`, `cdc.posts`) and to the narrower
partition groups of its images' keys (an article's category, a post's author), so a selective
subscriber is not sent everything. Each owner's view goes to their own group
(`cdc.posts.own.<id>`, joinable only by that logged-in user).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal, TypedDict

from django.conf import settings

from cdc.log import Change

ARTICLES, POSTS, TICKER = "articles", "posts", "ticker"
PUBLIC, AUTHOR = "public", "author"
TRUNCATE = "truncate"  # the op of a captured TRUNCATE: no images, every row is gone
_SAFE = re.compile(r"[^A-Za-z0-9_-]")


class RelayedChange(TypedDict):
    """One change in a `cdc.changes` message (what cdc/relay.py sends, consumers/live.py reads)."""

    id: int
    txid: int
    tick: int
    position: str
    stream: str
    op: str
    row: dict[str, Any] | None  # only the KEYS columns
    old: dict[str, Any] | None
    audience: str
    owners: list[int]
    text: str  # the `change` message, encoded once (cdc/wire.py)


class ChangesMessage(TypedDict):
    """What the relay sends each group: a batch of changes (handled by `cdc_changes`)."""

    type: Literal["cdc.changes"]
    group: str  # the group it was sent to: a process's hub joins many (consumers/hub.py)
    changes: list[RelayedChange]


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
    owners: tuple[int, ...] = ()  # who gets this change in their own group (transport only)

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

    def as_message(self, text: str) -> RelayedChange:
        """The change as the channel layer carries it to the consumers: its images cut down
        to the columns they filter and route by (KEYS), and `text`, the change as it goes on
        the wire (cdc/wire.py), which carries the rest."""
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
            "owners": list(self.owners),
            "text": text,
        }

    @classmethod
    def from_message(cls, message: RelayedChange) -> StreamChange:
        m = message
        return cls(
            m["id"], m["txid"], m["tick"], m["stream"], m["op"], m["row"], m["old"], m["audience"],
            tuple(m["owners"]),
        )  # fmt: skip


# The columns a consumer decides by: filters, partitions and access (docs/protocol.md).
KEYS = {
    ARTICLES: ("id", "category", "source"),
    POSTS: ("id", "author_id", "visibility"),
    TICKER: ("id", "symbol"),
}


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
    if change.op == TRUNCATE:  # no image to judge: for the whole stream
        return [(stream_group(change.stream), change)]
    owners = owners_of(change)
    out: list[tuple[str, StreamChange]] = []
    public = seen_by(change, AUDIENCES[change.stream].public if change.stream in AUDIENCES else _anyone)
    if public is not None:
        public = replace(public, owners=owners)
        out += [(group, public) for group in public_groups(public)]
    for owner in owners:
        mine = view_for(change, owner)
        assert mine is not None  # an owner may see their own image
        out.append((own_group(owner), mine))
    return out


def public_groups(change: StreamChange) -> list[str]:
    """The stream's group and the partition groups of every image the public sees."""
    stream = change.stream
    images = [image for image in (change.row, change.old) if image is not None]
    if stream == ARTICLES:
        return [stream_group(stream)] + [category_group(c) for c in sorted({i["category"] for i in images})]
    if stream == POSTS:
        return [stream_group(stream)] + [author_group(a) for a in sorted({i["author_id"] for i in images})]
    return [stream_group(stream)]  # a table put under capture with cdc.track(): its stream only


def view_for(change: StreamChange, viewer_id: int | None) -> StreamChange | None:
    """The change as `viewer_id` (None: anyone) may see it, or None if it shows them nothing."""
    audiences = AUDIENCES.get(change.stream)
    if audiences is None:
        return change
    mine = viewer_id is not None and viewer_id in owners_of(change)

    def may_see(image: dict[str, Any]) -> bool:
        return audiences.public(image) or (mine and audiences.owner(image) == viewer_id)

    seen = seen_by(change, may_see)
    return replace(seen, audience=AUTHOR) if seen is not None and mine else seen


def seen_by(change: StreamChange, may_see: Callable[[dict[str, Any]], bool]) -> StreamChange | None:
    """The change as an audience sees it that may see only the images `may_see` allows: a row
    leaving its view is a delete keeping only the row's keys, one entering it an insert."""
    before = change.old if change.old is not None and may_see(change.old) else None
    after = change.row if change.row is not None and may_see(change.row) else None
    if before is None and after is None:
        return None
    if before is None:
        return replace(change, op="insert", row=after, old=None)
    if after is None and change.op != "delete":
        keys = AUDIENCES[change.stream].keys
        return replace(change, op="delete", row=None, old={k: before[k] for k in keys if k in before})
    return change


def owners_of(change: StreamChange) -> tuple[int, ...]:
    """The owners of the change's images: each sees it in their own group."""
    audiences = AUDIENCES.get(change.stream)
    if audiences is None:
        return ()
    found = {audiences.owner(image) for image in (change.old, change.row) if image is not None}
    return tuple(sorted(owner for owner in found if owner is not None))


@dataclass(frozen=True, slots=True)
class Audiences:
    """Who may see a stream's rows: anyone those `public` allows, and each row's owner."""

    public: Callable[[dict[str, Any]], bool]
    owner: Callable[[dict[str, Any]], int | None]
    keys: tuple[str, ...]  # what a row leaving an audience's view keeps: enough to drop it


def _anyone(image: dict[str, Any]) -> bool:
    return True


def _post_author(image: dict[str, Any]) -> int | None:
    author = image.get("author_id")
    return int(author) if author is not None else None


AUDIENCES = {
    ARTICLES: Audiences(public=_anyone, owner=lambda image: None, keys=("id", "category")),
    POSTS: Audiences(
        public=lambda image: image.get("visibility") == "public", owner=_post_author, keys=("id", "author_id")
    ),
}
