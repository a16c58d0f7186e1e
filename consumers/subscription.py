"""One subscription of one connection: what it asked for, where it listens, what it sent.

The relay delivers at least once (a restarted leader resends its last tick), a replaced
subscription may still get messages from its old groups, and a snapshot or replay overlaps
the live stream: `admit` lets each change through at most once, and never one that the
snapshot or replay already covered.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cdc import declarations
from cdc.declarations import Stream
from cdc.filters import Filters
from cdc.log import TRUNCATE, snapshot_sees
from cdc.routing import (
    PUBLIC,
    StreamChange,
    control_group,
    own_group,
    partition_group,
    stream_group,
    view_for,
)
from cdc.ticks import ORIGIN, Position
from consumers.protocol import ProtocolError


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
    mixed: bool = field(init=False)  # two groups of rows: each in order, interleaved by tick only
    declared: Stream = field(init=False)

    def __post_init__(self) -> None:
        declared = declarations.get(self.stream)
        assert declared is not None, f"no stream {self.stream!r}"  # the protocol checked it
        self.declared = declared
        data = self._groups()
        # A truncate comes through the control group, and is followed by a fresh snapshot
        # whatever came before it: only the groups of the rows are ever interleaved.
        self.groups = data | {control_group(self.stream)}
        self.mixed = len(data) > 1

    def check_access(self) -> None:
        """Rows the access rule does not make public go to their owner only: asking for only
        those, or for another owner's, is forbidden."""
        if not self.declared.may_be_public(self.filters) and not self._mine():
            owner = self.declared.access.owner
            raise ProtocolError(
                "forbidden",
                f"{self.stream} that are not public go to their owner ({owner}) only: "
                "log in and ask for your own",
                self.stream,
            )

    def _mine(self) -> bool:
        """Whether the viewer may see their own rows here: logged in, and no other owner asked for."""
        owner = self.declared.access.owner
        return (
            owner is not None
            and self.viewer_id is not None
            and self.filters.equal(owner) in (None, self.viewer_id)
        )

    def _groups(self) -> frozenset[str]:
        public = self._public_group()
        owner = self.declared.access.owner
        if owner is None or not self._mine():
            return frozenset({public})
        others = self.filters.equal(owner) is None and self.declared.may_be_public(self.filters)
        mine = own_group(self.stream, self.viewer_id)
        return frozenset({mine, public} if others else {mine})

    def _public_group(self) -> str:
        """The narrowest group of public rows: a partition this subscription pins, or the stream's."""
        for column in self.declared.partitions:
            value = self.filters.equal(column)
            if value is not None:
                return partition_group(self.stream, column, value)
        return stream_group(self.stream)

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
        return own_group(self.stream, self.viewer_id) if self.viewer_id is not None else None

    def matches(self, change: StreamChange) -> bool:
        """Whether either image passes the filters (an item leaving the filter still arrives);
        a truncate concerns every subscriber."""
        if change.op == TRUNCATE:
            return True
        return any(self.filters.holds(image) for image in (change.row, change.old) if image is not None)

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
