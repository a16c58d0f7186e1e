"""One subscription of one connection: what it asked for, where it listens, what it sent.

The relay delivers at least once (a restarted leader resends its last tick), a replaced
subscription may still get messages from its old groups, and a snapshot or replay overlaps
the live stream: `admit` lets each change through at most once, and never one that the
snapshot or replay already covered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cdc.log import snapshot_sees
from cdc.routing import (
    ARTICLES,
    POSTS,
    PUBLIC,
    StreamChange,
    author_group,
    category_group,
    own_group,
    stream_group,
    view_for,
)
from cdc.ticks import ORIGIN, Position
from consumers.protocol import Filters, ProtocolError


@dataclass
class Subscription:
    stream: str
    filters: Filters
    viewer_id: int | None  # the logged-in user, None when anonymous
    snapshot_size: int = 0  # rows of the fresh snapshot that follows a reset
    floor: Position = ORIGIN  # changes at or before it are in a snapshot or replay
    snapshot: str | None = None  # changes this database snapshot sees are in the snapshot rows
    tick: int = 0  # the newest tick a change was delivered from
    delivered: set[int] = field(default_factory=set)  # event ids delivered from `tick`
    groups: frozenset[str] = field(init=False)  # the narrowest groups that carry its changes
    mixed: bool = field(init=False)  # two groups: each in order, interleaved by tick only

    def __post_init__(self) -> None:
        self.groups = self._groups()
        self.mixed = len(self.groups) > 1

    def check_access(self) -> None:
        """Private posts go to their author only: asking for anyone else's is forbidden."""
        f = self.filters
        mine = self.viewer_id is not None and f.author_id in (None, self.viewer_id)
        if f.visibility == "private" and not mine:
            raise ProtocolError(
                "forbidden", "private posts go to their author only: log in and ask for your own", self.stream
            )

    def _groups(self) -> frozenset[str]:
        f = self.filters
        if self.stream == ARTICLES:
            by_category = f.category is not None
            return frozenset({category_group(f.category) if by_category else stream_group(ARTICLES)})
        if self.stream != POSTS:  # no partitions and no owners (the ticker)
            return frozenset({stream_group(self.stream)})
        if self.viewer_id is not None and f.author_id in (None, self.viewer_id):
            mine = own_group(self.viewer_id)
            others = f.author_id is None and f.visibility != "private"
            return frozenset({mine, stream_group(POSTS)} if others else {mine})
        return frozenset({author_group(f.author_id) if f.author_id is not None else stream_group(POSTS)})

    def view(self, change: StreamChange) -> StreamChange | None:
        """A change read from the log, as this subscriber sees it (None: not at all)."""
        seen = view_for(change, self.viewer_id)
        return seen if seen is not None and self.matches(seen) else None

    def accepts_live(self, change: StreamChange) -> bool:
        """Whether a change relayed to one of this subscription's groups is for it."""
        if change.stream != self.stream:
            return False
        if change.audience == PUBLIC and self.viewer_id in change.owners and self.own_group in self.groups:
            return False  # the owner's own view of it comes from their own group
        return self.matches(change)

    @property
    def own_group(self) -> str | None:
        return own_group(self.viewer_id) if self.viewer_id is not None else None

    def matches(self, change: StreamChange) -> bool:
        """Whether either image passes the filters: an item leaving the filter still arrives."""
        return any(self._matches(image) for image in (change.row, change.old) if image is not None)

    def _matches(self, image: dict[str, Any]) -> bool:
        f = self.filters
        checks = (
            (f.category, image.get("category")),
            (f.source, image.get("source")),
            (f.author_id, image.get("author_id")),
            (f.symbol, image.get("symbol")),
            # The public view of a post gone private keeps only id and author_id: it was public.
            (f.visibility, image.get("visibility", "public")),
        )
        return all(wanted is None or wanted == actual for wanted, actual in checks)

    def admit(self, change: StreamChange) -> bool:
        """True the first time a change not already covered is offered; records it."""
        if Position(change.tick, change.id) <= self.floor:
            return False
        if self.snapshot is not None and snapshot_sees(self.snapshot, change.txid):
            return False
        if change.tick < self.tick or (change.tick == self.tick and change.id in self.delivered):
            return False
        if change.tick > self.tick:
            self.tick, self.delivered = change.tick, set()
        self.delivered.add(change.id)
        return True

    def resume_point(self) -> Position:
        """Where a re-read of the log must start so that nothing undelivered is skipped."""
        return max(self.floor, Position(self.tick, 0))

    def resume_from(self, after: Position) -> Position:
        """Where a resume from `after`, a position this subscription reported, starts: with
        two groups a tick arrives in two parts, so only the tick's start is safe (and the
        client drops the repeats by id)."""
        return Position(after.tick, 0) if self.mixed else after

    def covered_through(self, position: Position) -> None:
        """Everything up to `position` was delivered (or was not for this subscription)."""
        self.floor = max(self.floor, position)
