"""Which Channels groups a change goes to, and what each audience may see of it.

Everything here reads the stream's declaration (cdc/declarations.py). A stream has
audiences: the public, who may see the rows its access rule makes public, and each row's
owner, who also sees their own rows. One rule holds for all of them (`seen_by`): an audience
is shown an image (`row` or `old`) only if it may see that image; a row leaving its view is a
`delete` keeping only the row's keys, one entering it an `insert`. So a private post moved
to another author is a delete for the old author and an insert for the new one, and neither
sees the other's image.

The public view goes to the stream group (`cdc.<stream>`) and to the narrower partition
groups of its images' values (`cdc.<stream>.<column>.<value>`), so a selective subscriber
is not sent everything. Each owner's view goes to their own group (`cdc.<stream>.own.<id>`,
joinable only by that logged-in user). A truncate goes to the stream's control group, which
every subscription of the stream joins.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal, TypedDict

from cdc import declarations
from cdc.declarations import KEY
from cdc.log import TRUNCATE, Change

PUBLIC, OWNER = "public", "owner"
MAX_GROUP_NAME = 99  # Channels refuses group names of 100 characters or more
_SAFE = re.compile(r"[^A-Za-z0-9_-]")


class RelayedChange(TypedDict):
    """One change in a `cdc.changes` message (what cdc/relay.py sends, consumers/live.py reads)."""

    id: int
    txid: int
    tick: int
    position: str
    stream: str
    op: str
    row: dict[str, Any] | None  # only the stream's keys (cdc/declarations.py)
    old: dict[str, Any] | None
    audience: str
    owners: list[int]
    text: str  # the `change` message, encoded once (cdc/wire.py)


class ChangesMessage(TypedDict):
    """What the relay sends each group: a batch of changes (consumers/hub.py takes it)."""

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
    audience: str = PUBLIC  # or OWNER: the owner's own view
    owners: tuple[int, ...] = ()  # who gets this change in their own group (transport only)

    @classmethod
    def of(cls, change: Change, tick: int) -> StreamChange:
        """The change of the log as its stream carries it: without the declared hidden columns."""
        declared = declarations.for_table(change.table)
        hidden = declared.hidden if declared is not None else ()
        return cls(
            id=change.id,
            txid=change.txid,
            tick=tick,
            stream=stream_for(change.table),
            op=change.op,
            row=_without(change.row, hidden),
            old=_without(change.old, hidden),
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
        to the columns they filter and route by (the stream's keys), and `text`, the change
        as it goes on the wire (cdc/wire.py), which carries the rest."""
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


def _without(image: dict[str, Any] | None, hidden: tuple[str, ...]) -> dict[str, Any] | None:
    if image is None or not hidden:
        return image
    return {column: value for column, value in image.items() if column not in hidden}


def _keys(stream: str, image: dict[str, Any] | None) -> dict[str, Any] | None:
    """The image's columns that consumers decide by (the stream's keys)."""
    if image is None:
        return None
    declared = declarations.get(stream)
    keys = declared.keys if declared is not None else (KEY,)
    return {column: image[column] for column in keys if column in image}


def stream_for(table: str) -> str:
    """The stream a captured table feeds: its declaration's, else the table's own
    schema-qualified name, which no declaration can take (a stream's name has no dot): an
    undeclared `shop.articles` is not the `articles` stream, and goes nowhere."""
    declared = declarations.for_table(table)
    return declared.name if declared is not None else table


def token(value: object, room: int) -> str:
    """A group-name-safe token for any partition key: a readable prefix of at most `room`
    characters, and a collision-proof hash (17 characters)."""
    text = str(value)
    digest = hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
    return f"{_SAFE.sub('_', text)[:room]}.{digest}"


def stream_group(stream: str) -> str:
    return f"cdc.{stream}"


def partition_group(stream: str, column: str, value: object) -> str:
    """The rows whose `column` is `value` (a declared partition), as the public sees them."""
    head = f"cdc.{stream}.{column}."
    return head + token(value, min(40, MAX_GROUP_NAME - len(head) - 17))


def own_group(stream: str, owner: object) -> str:
    """Every row of one owner, those not public too: only that logged-in user may join."""
    return f"cdc.{stream}.own.{int(str(owner))}"


def control_group(stream: str) -> str:
    """Joined by every subscription of the stream: what all of them must hear (a truncate)."""
    return f"cdc.{stream}.control"


def routes(change: StreamChange) -> list[tuple[str, StreamChange]]:
    """(group, the change as that group's audience sees it) for every group it goes to."""
    declared = declarations.get(change.stream)
    if declared is None:
        return []  # a table under capture that no stream declares
    if change.op == TRUNCATE:
        return [(control_group(change.stream), change)]
    owners = owners_of(change)
    out: list[tuple[str, StreamChange]] = []
    public = seen_by(change, declared.is_public)
    if public is not None:
        if public.owners != owners:  # copying a change was most of what routing it cost
            public = replace(public, owners=owners)
        out += [(group, public) for group in public_groups(public)]
    for owner in owners:
        mine = view_for(change, owner)
        assert mine is not None  # an owner may see their own image
        out.append((own_group(change.stream, owner), mine))
    return out


def public_groups(change: StreamChange) -> list[str]:
    """The stream's group and the partition groups of every image the public sees."""
    declared = declarations.get(change.stream)
    partitions = declared.partitions if declared is not None else ()
    images = [image for image in (change.row, change.old) if image is not None]
    return [stream_group(change.stream)] + [
        partition_group(change.stream, column, value)
        for column in partitions
        for value in sorted({i[column] for i in images if i.get(column) is not None}, key=str)
    ]


def view_for(change: StreamChange, viewer_id: int | None) -> StreamChange | None:
    """The change as `viewer_id` (None: anyone) may see it, or None if it shows them nothing."""
    declared = declarations.get(change.stream)
    if declared is None or change.op == TRUNCATE:
        return change
    mine = viewer_id is not None and viewer_id in owners_of(change)

    def may_see(image: dict[str, Any]) -> bool:
        return declared.is_public(image) or (mine and declared.owner_of(image) == viewer_id)

    seen = seen_by(change, may_see)
    return replace(seen, audience=OWNER) if seen is not None and mine else seen


def seen_by(change: StreamChange, may_see: Callable[[dict[str, Any]], bool]) -> StreamChange | None:
    """The change as an audience sees it that may see only the images `may_see` allows: a row
    leaving its view is a delete keeping only the row's keys, one entering it an insert."""
    before = change.old if change.old is not None and may_see(change.old) else None
    after = change.row if change.row is not None and may_see(change.row) else None
    if before is None and after is None:
        return None
    if before is change.old and after is change.row:  # it may see every image: no copy to make
        return change
    if before is None:
        return replace(change, op="insert", row=after, old=None)
    return replace(change, op="delete", row=None, old=_keys(change.stream, before))  # the new one hidden


def owners_of(change: StreamChange) -> tuple[int, ...]:
    """The owners of the change's images: each sees it in their own group."""
    declared = declarations.get(change.stream)
    if declared is None:
        return ()
    found = {declared.owner_of(image) for image in (change.old, change.row) if image is not None}
    return tuple(sorted(owner for owner in found if owner is not None))
