"""Subscription (consumers/subscription.py): at most once, nothing lost, honest positions.

The tests play what consumers/live.py does with a subscription against a generated log of
ticks, delivered as the relay and the channel layer really deliver: tick after tick, each
group's changes in order and two groups' interleaved, a tick partly sent then resent whole
(a restarted leader), late copies of an older tick (a deposed leader still sending), runs
of messages lost with a gap notice (docs/channel-layer.md), repaired by replaying the log
from `resume_point()` or by a reset. A model of the client (what its snapshot, its `after`
and the changes it got tell it) is the oracle.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cdc.filters import Filters
from cdc.log import snapshot_sees
from cdc.routing import OWNER, PUBLIC, StreamChange, control_group
from cdc.ticks import ORIGIN, Position
from consumers.subscription import Subscription
from testkit.streams import filters

ARTICLES, POSTS = "articles", "posts"

VIEWER = 7


@dataclass(frozen=True)
class Kind:
    """A kind of subscription, and the authors of the posts it is sent."""

    name: str
    stream: str
    filters: Filters
    viewer: int | None
    authors: tuple[int, ...]
    groups: int

    def subscription(self) -> Subscription:
        sub = Subscription(self.stream, self.filters, self.viewer)
        assert (len(sub.groups - {control_group(self.stream)}), sub.mixed) == (self.groups, self.groups > 1)
        return sub

    def change(self, tick: int, event_id: int, txid: int, author: int, private: bool) -> StreamChange:
        if self.stream == ARTICLES:
            row: dict[str, Any] = {"id": event_id, "category": "tech"}
        else:
            visibility = self.filters.equal("visibility")
            mine = author == self.viewer and visibility is None
            private = visibility == "private" or (private and mine)
            row = {"id": event_id, "author_id": author, "visibility": "private" if private else "public"}
        audience = OWNER if self.viewer is not None and author == self.viewer else PUBLIC
        return StreamChange(event_id, txid, tick, self.stream, "insert", row, None, audience)


KINDS = [
    Kind("articles of a category", ARTICLES, filters(ARTICLES, category="tech"), None, (0,), 1),
    Kind("anonymous, every post", POSTS, Filters(), None, (VIEWER, 8, 9), 1),
    Kind("one author's posts", POSTS, filters(POSTS, author_id=8), VIEWER, (8,), 1),
    Kind("my private posts", POSTS, filters(POSTS, visibility="private"), VIEWER, (VIEWER,), 1),
    Kind("logged in, every post (mixed)", POSTS, Filters(), VIEWER, (VIEWER, 8, 9), 2),
    Kind(
        "logged in, public posts (mixed)",
        POSTS,
        filters(POSTS, visibility="public"),
        VIEWER,
        (VIEWER, 8, 9),
        2,
    ),
]
MIXED = KINDS[-2]


def pos(change: StreamChange) -> Position:
    return Position(change.tick, change.id)


def in_snapshot(sub: Subscription, change: StreamChange) -> bool:
    return sub.snapshot is not None and snapshot_sees(sub.snapshot, change.txid)


def group_of(change: StreamChange) -> str:
    """The group a change reaches the subscription through: a mixed one has two."""
    return "own" if change.audience == OWNER else "public"


# The log: ticks 1..n (tick 0 is the empty one 0003_relay makes), event ids unique, in id
# order within a tick but not across ticks (ids are handed out at insert, not at commit).


@dataclass
class Log:
    ticks: list[list[StreamChange]]  # ticks[t] holds tick t's changes

    @property
    def changes(self) -> list[StreamChange]:
        return [c for tick in self.ticks for c in tick]

    def end_of(self, tick: int) -> Position:
        """The position current_position reports while `tick` is the newest."""
        return Position(tick, max((c.id for c in self.ticks[tick]), default=0))

    def after(self, start: Position, through_tick: int) -> list[StreamChange]:
        """What a replay reads: changes after `start`, through `through_tick`, in log order."""
        return [c for c in self.changes if start < pos(c) and c.tick <= through_tick]


@st.composite
def logs(draw: st.DrawFn, kind: Kind) -> Log:
    sizes = draw(st.lists(st.integers(0, 4), min_size=2, max_size=6))
    ids = iter(draw(st.lists(st.integers(1, 300), min_size=sum(sizes), max_size=sum(sizes), unique=True)))
    ticks: list[list[StreamChange]] = [[]]
    for tick, size in enumerate(sizes, start=1):
        changes = []
        for event_id in sorted(next(ids) for _ in range(size)):
            txid = draw(st.integers(100, 115))
            author = draw(st.sampled_from(kind.authors))
            changes.append(kind.change(tick, event_id, txid, author, draw(st.booleans())))
        ticks.append(changes)
    return Log(ticks)


def snapshot(rnd: random.Random) -> str:
    """'xmin:xmax:xip', over the txids the logs use, so it sees some changes and not others."""
    xmin = rnd.randint(98, 116)
    xmax = rnd.randint(xmin, 118)
    xip = rnd.sample(range(xmin, xmax), min(xmax - xmin, rnd.randint(0, 3)))
    return f"{xmin}:{xmax}:{','.join(map(str, sorted(xip)))}"


@dataclass
class Client:
    """What a client following docs/protocol.md holds: everything up to `base`, whatever
    its latest snapshot saw, and the changes it was sent since."""

    base: Position
    snapshot: str | None = None
    received: set[int] = field(default_factory=set)

    def knows(self, change: StreamChange) -> bool:
        seen = self.snapshot is not None and snapshot_sees(self.snapshot, change.txid)
        return change.id in self.received or pos(change) <= self.base or seen


class Run:
    """One subscription and its client, checked at every step."""

    def __init__(self, kind: Kind, log: Log, rnd: random.Random) -> None:
        self.sub = kind.subscription()
        self.log = log
        self.rnd = rnd
        self.passed: set[int] = set()  # every change admitted, over the subscription's life
        self.client = Client(ORIGIN)
        for change in log.changes:
            assert self.sub.accepts_live(change)

    def offer(self, change: StreamChange) -> bool:
        """admit() passes exactly the changes not passed yet, above the floor, and not in the snapshot."""
        sub = self.sub
        wanted = change.id not in self.passed and pos(change) > sub.floor and not in_snapshot(sub, change)
        assert sub.admit(change) == wanted, (change, sub.floor, sub.snapshot, sub.tick, sub.delivered)
        if wanted:
            self.passed.add(change.id)
            self.client.received.add(change.id)
            # The client is sent the change's position: a resume from it skips nothing it lacks.
            self.assert_nothing_missed_after(sub.resume_from(pos(change)), f"resume_from({change})")
        return wanted

    def assert_nothing_missed_after(self, position: Position, what: str) -> None:
        missing = [pos(c) for c in self.log.changes if not self.client.knows(c) and pos(c) <= position]
        assert not missing, f"{what} = {position} is after {missing}, which the client lacks"

    def subscribe(self, tick: int) -> None:
        """A subscribe while `tick` is the newest, as LiveConsumer.subscribe does it."""
        position = self.log.end_of(tick)
        mode = self.rnd.choice(["live", "snapshot", "after"])
        if mode == "after":
            held = [
                ORIGIN,
                *(Position(t, 0) for t in range(tick + 1)),
                *(pos(c) for c in self.log.after(ORIGIN, tick)),
            ]
            after = self.rnd.choice(held)
            self.client.base = after
            for change in self.log.after(after, tick):
                self.offer(change)
        else:
            self.client.base = position
        if mode == "snapshot":
            self.reset(position)
        self.sub.covered_through(position)

    def reset(self, position: Position) -> None:
        """A fresh snapshot as of `position`: the client starts again from it."""
        self.sub.snapshot = snapshot(self.rnd)
        self.client = Client(position, self.sub.snapshot)

    def repair(self, newest: int) -> None:
        """A gap notice while `newest` is the newest tick: LiveConsumer.transport_gap."""
        position = self.log.end_of(newest)
        self.assert_nothing_missed_after(self.sub.resume_point(), "resume_point()")
        if self.rnd.random() < 0.2:  # too far behind: reset
            self.reset(position)
        else:
            tick, delivered = self.sub.tick, set(self.sub.delivered)
            for change in self.log.after(self.sub.resume_point(), newest):
                # What it re-reads in vain is at most the current tick's, or the snapshot's.
                sent_again = change.tick == tick and change.id in delivered
                assert self.offer(change) or sent_again or in_snapshot(self.sub, change), change
        self.sub.covered_through(position)


def interleaved(changes: list[StreamChange], rnd: random.Random) -> list[StreamChange]:
    """One delivery of a tick: each group's changes in order, the groups interleaved."""
    queues = {group: [c for c in changes if group_of(c) == group] for group in ("own", "public")}
    out: list[StreamChange] = []
    while nonempty := [g for g, q in queues.items() if q]:
        out.append(queues[rnd.choice(nonempty)].pop(0))
    return out


def deliveries(log: Log, first: int, rnd: random.Random) -> list[StreamChange]:
    """What the relay sends to the subscription's groups from just before it subscribed
    (tick `first`) on: at least once, tick by tick."""
    sent: list[StreamChange] = []
    early = range(max(1, first - 1), first + 1)  # in flight while it subscribed: any part of them
    for tick in early:
        sent += [c for c in interleaved(log.ticks[tick], rnd) if rnd.random() < 0.5]
    for tick in range(first + 1, len(log.ticks)):
        for _ in range(rnd.choice([0, 0, 1, 2])):  # a leader sent part of it, then stopped
            attempt = interleaved(log.ticks[tick], rnd)
            sent += attempt[: rnd.randint(0, len(attempt))]
        sent += interleaved(log.ticks[tick], rnd)
        if tick > 1 and rnd.random() < 0.4:  # a deposed leader's late copies of the tick before
            sent += [c for c in log.ticks[tick - 1] if rnd.random() < 0.7]
    return sent


def run(kind: Kind, log: Log, rnd: random.Random) -> None:
    r = Run(kind, log, rnd)
    first = min(rnd.randint(0, len(log.ticks) - 1) for _ in range(2))  # the newest tick then
    r.subscribe(first)
    sent = deliveries(log, first, rnd)
    i = 0
    while i < len(sent):
        r.assert_nothing_missed_after(r.sub.resume_point(), "resume_point()")
        if rnd.random() > 0.08:
            r.offer(sent[i])
            i += 1
            continue
        # A gap: `lost` messages never arrive; the notice goes ahead of the `queued` ones before
        # them (a reconnect) or of none (an overflow, an expiry). The log then holds at least
        # every tick sent so far.
        queued, lost = rnd.randint(0, 2), rnd.randint(0, 3)
        sent_so_far = sent[: i + queued + lost]
        newest = max([r.sub.floor.tick, *(c.tick for c in sent_so_far)]) + rnd.randint(0, 1)
        r.repair(min(newest, len(log.ticks) - 1))
        for change in sent[i : i + queued]:
            r.offer(change)
        i += queued + lost
    r.assert_nothing_missed_after(r.sub.resume_point(), "resume_point()")
    assert all(r.client.knows(c) for c in log.changes), "a change was lost"


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_admit_passes_each_change_once_and_loses_none(kind, data):
    # The log shrinks; the delivery schedule comes from a seeded Random (cheaper than a
    # draw per decision) that hypothesis prints with a failing example.
    run(kind, data.draw(logs(kind), label="log"), data.draw(st.randoms(use_true_random=True), label="rnd"))


# The same, on cases small enough to read.


def test_a_resent_tick_passes_only_what_was_not_sent():
    sub = KINDS[1].subscription()
    tick = [KINDS[1].change(3, event_id, 100, 8, False) for event_id in (10, 11, 12)]
    assert [sub.admit(c) for c in tick[:2]] == [True, True]
    assert [sub.admit(c) for c in tick] == [False, False, True]
    assert sub.resume_from(pos(tick[2])) == Position(3, 12)


def test_nothing_at_or_below_the_floor_nor_in_the_snapshot_passes():
    sub = KINDS[1].subscription()
    sub.snapshot = "105:108:106"  # sees 104 and 107, not 106 nor 108
    sub.covered_through(Position(3, 12))
    changes = {
        (3, 12, 106): False,  # at the floor
        (4, 5, 104): False,  # seen by the snapshot
        (4, 6, 107): False,
        (4, 7, 106): True,
        (4, 8, 108): True,
    }
    for (tick, event_id, txid), passes in changes.items():
        assert sub.admit(KINDS[1].change(tick, event_id, txid, 8, False)) == passes


def test_a_mixed_subscription_resumes_from_the_start_of_the_tick():
    """Its own post (id 12) can come before another author's (id 11) of the same tick: a
    resume after (5, 12) would skip 11."""
    sub = MIXED.subscription()
    mine = MIXED.change(5, 12, 100, VIEWER, True)
    theirs = MIXED.change(5, 11, 100, 8, False)
    assert sub.admit(mine)
    assert sub.resume_from(pos(mine)) == Position(5, 0)
    assert sub.resume_point() == Position(5, 0)
    assert sub.admit(theirs)
    assert sub.resume_from(pos(theirs)) == Position(5, 0)


def test_a_late_copy_of_an_older_tick_does_not_pass_again():
    sub = KINDS[1].subscription()
    older, newer = KINDS[1].change(3, 10, 100, 8, False), KINDS[1].change(4, 5, 101, 8, False)
    assert sub.admit(older)
    assert sub.admit(newer)
    assert not sub.admit(older)


def test_an_older_position_does_not_lower_the_floor():
    sub = KINDS[1].subscription()
    sub.covered_through(Position(5, 10))
    sub.covered_through(Position(3, 1))
    assert sub.floor == Position(5, 10)
    assert not sub.admit(KINDS[1].change(4, 2, 100, 8, False))
