"""Streams as declarations: the one place a live stream is defined.

An app declares its streams in its own `streams.py`, found at start like the admin's
`admin.py` (cdc/apps.py); nothing else names them. From a declaration the relay routes a
captured table's changes (cdc/routing.py), the protocol validates subscribes
(consumers/protocol.py), subscriptions choose their groups (consumers/subscription.py),
snapshots and replays build their SQL (consumers/reads.py), and `manage.py check` verifies
the table (cdc/checks.py). The project's own are core/streams.py; an app's orders, each
its customer's only, would be:

    register(Stream(
        name="orders",
        table="shop.orders",
        columns={"customer_id": Column(INTEGER), "total": Column(NUMBER)},
        order=("-placed_at", "-id"),
        access=Access(owner="customer_id"),
    ))
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import autodiscover_modules

from cdc import filters
from cdc.filters import INTEGER, TEXT, Column, Filters

KEY = "id"  # every stream's rows have it: changes, snapshots and whole-row fetches name rows by it
SNAPSHOT_MAX = 100
_NAME = re.compile(r"[a-z][a-z0-9_]{0,19}")  # a stream or column name: part of Channels group names
_COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,19}")
_ORDER = re.compile(r"-?[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True, slots=True)
class Access:
    """Who may see a stream's rows. `Access()`: anyone. `Access(owner="user_id")`: each row its
    owner only (the column holds a user id). With `public_when` (filters in the wire form, `eq`
    only) too: anyone the rows it holds for, the owner the others."""

    owner: str | None = None
    public_when: Mapping[str, Any] | None = None

    @property
    def kind(self) -> str:
        if self.owner is None:
            return "public"
        return "owner" if self.public_when is None else "public_when"


@dataclass(frozen=True)
class Stream:
    name: str
    table: str  # schema-qualified ('public.article'); a bare name is in `public`
    columns: Mapping[str, Column]  # what clients may filter on, and what the access rule reads
    order: tuple[str, ...] = ("-id",)  # the snapshot's order, newest first: "-column" descending
    snapshot_max: int = SNAPSHOT_MAX  # most rows a subscribe's snapshot may ask for
    hidden: tuple[str, ...] = ()  # columns never sent (capture may also exclude some: cdc.track)
    access: Access = field(default_factory=Access)
    public_when: Filters = field(init=False)  # the access rule's predicate, parsed
    # The columns consumers decide by (filters, groups, access): what the relay carries
    # besides each change's wire text, and what a row leaving a viewer's sight keeps.
    keys: tuple[str, ...] = field(init=False)
    partitions: tuple[str, ...] = field(init=False)  # filter columns with a Channels group per value

    def __post_init__(self) -> None:
        if "." not in self.table:
            object.__setattr__(self, "table", f"public.{self.table}")
        object.__setattr__(self, "public_when", self._predicate())
        object.__setattr__(self, "keys", tuple(dict.fromkeys((KEY, *self.columns))))
        object.__setattr__(self, "partitions", tuple(n for n, c in self.columns.items() if c.partition))
        self._validate()

    def _predicate(self) -> Filters:
        rule = self.access.public_when
        if rule is not None and not all(not isinstance(v, dict | list) for v in rule.values()):
            raise ImproperlyConfigured(f"stream {self.name!r}: public_when takes plain values (eq) only")
        try:
            return filters.parse({name: filters.Column(c.kind) for name, c in self.columns.items()}, rule)
        except filters.FilterError as exc:
            raise ImproperlyConfigured(f"stream {self.name!r}: public_when: {exc}") from None

    def _validate(self) -> None:
        names = [
            (self.name, _NAME),
            *((c, _COLUMN) for c in self.columns),
            *((o, _ORDER) for o in self.order),
        ]
        problems = [
            f"{name!r} must match {pattern.pattern}" for name, pattern in names if not pattern.fullmatch(name)
        ]
        problems += [
            f"partition {c!r} must be text or integer"
            for c in self.partitions
            if self.columns[c].kind not in (TEXT, INTEGER)
        ]
        problems += [
            f"hidden column {c!r} is one the stream decides by" for c in self.hidden if c in self.keys
        ]
        problems += [
            f"column {name!r}: no operator {op!r} (operators: {', '.join(filters.OPERATORS)})"
            for name, column in self.columns.items()
            for op in column.allowed
            if op not in filters.OPERATORS
        ]
        owner = self.access.owner
        if owner is not None and (owner not in self.columns or self.columns[owner].kind is not INTEGER):
            problems.append(f"the owner column {owner!r} must be declared in columns as INTEGER")
        if not 0 <= self.snapshot_max <= 10_000:
            problems.append("snapshot_max must be from 0 to 10000")
        if problems:
            raise ImproperlyConfigured(f"stream {self.name!r}: {'; '.join(problems)}")

    def filters_of(self, value: Any) -> Filters:
        """The filters a subscribe's `filters` field asks for; FilterError if it may not."""
        return filters.parse(self.columns, value)

    def is_public(self, image: Mapping[str, Any]) -> bool:
        """Whether anyone may see this row image."""
        if self.access.owner is None:
            return True
        return self.access.public_when is not None and self.public_when.holds(image)

    def owner_of(self, image: Mapping[str, Any]) -> int | None:
        owner = image.get(self.access.owner) if self.access.owner is not None else None
        return owner if isinstance(owner, int) and not isinstance(owner, bool) else None

    def may_be_public(self, wanted: Filters) -> bool:
        """Whether rows matching `wanted` may be public (False: only owners may ask for them)."""
        if self.access.public_when is None:
            return self.access.owner is None
        return wanted.on(self.access.public_when).holds(self.access.public_when)

    def describe(self) -> dict[str, Any]:
        """What a client may ask of this stream (the `streams` message, docs/protocol.md)."""
        return {
            "name": self.name,
            "filters": {
                name: {
                    "type": column.kind.name,
                    "operators": list(column.allowed),
                    "partition": column.partition,
                    **({"choices": list(column.choices)} if column.choices else {}),
                }
                for name, column in self.columns.items()
                if column.allowed
            },
            "snapshot_max": self.snapshot_max,
            "access": self.access.kind,
        }


_streams: dict[str, Stream] = {}
_by_table: dict[str, Stream] = {}  # the relay looks a stream up by table for every change


def register(*streams: Stream) -> None:
    """Make streams live: called from an app's `streams.py`."""
    for stream in streams:
        for other in _streams.values():
            if stream.name == other.name or stream.table == other.table:
                raise ImproperlyConfigured(
                    f"stream {stream.name!r}: {other.name!r} already has its name or table"
                )
        _streams[stream.name] = _by_table[stream.table] = stream


def unregister(name: str) -> None:
    stream = _streams.pop(name, None)
    if stream is not None:
        del _by_table[stream.table]


def autodiscover() -> None:
    """Import every installed app's `streams` module, which registers its streams."""
    autodiscover_modules("streams")


def all_streams() -> dict[str, Stream]:
    return dict(_streams)


def get(name: str) -> Stream | None:
    return _streams.get(name)


def streams_message() -> dict[str, Any]:
    """Every stream and what it accepts: the `streams` message and GET /live/streams."""
    return {"type": "streams", "streams": [stream.describe() for stream in _streams.values()]}


def for_table(table: str) -> Stream | None:
    return _by_table.get(table)
