"""What a process holds of the layer, in memory: its channels' queues, their memberships, and
the receivers waiting on normal channels. Plain synchronous bookkeeping (a receive() awaits
its queue, nothing else awaits), shared by every event loop of the process.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from channels.layers import BaseChannelLayer

from pglayer.messages import GapNotice, GapReason, gap, serialize

GAP_REASONS: tuple[GapReason, ...] = ("overflow", "expired", "reconnected")


class Waiters:
    """The receive()s waiting for something to change; usually one."""

    def __init__(self) -> None:
        self._futures: list[asyncio.Future[None]] = []

    def add(self) -> asyncio.Future[None]:
        future = asyncio.get_running_loop().create_future()
        self._futures.append(future)
        return future

    def wake(self) -> None:
        for future in self._futures:
            if not future.done():  # a cancelled receive() leaves its future behind
                future.set_result(None)
        self._futures.clear()


CAPACITY_BYTES = 16 * 1024 * 1024  # a process channel's queue, in bytes (messages can be large)


class Inbox:
    """A process channel's queue: at most `capacity` messages and `capacity_bytes` bytes (the
    oldest go first), each dropped at its expiry. Losses are silent, as Channels' contract has
    it, unless the channel asked for gap notices (`gaps`): then a notice goes ahead of the
    messages that are left."""

    def __init__(
        self,
        capacity: int,
        expiry: float,
        notices: dict[GapReason, bytes] | None = None,
        capacity_bytes: int = CAPACITY_BYTES,
    ) -> None:
        self.capacity = capacity
        self.capacity_bytes = capacity_bytes
        self.bytes = 0  # of the queued messages
        self.expiry = expiry
        self._notices = notices or {reason: serialize(gap(reason)) for reason in GAP_REASONS}
        self.gaps = False
        self._messages: deque[tuple[float, bytes]] = deque()
        self._gap: GapReason | None = None
        self._waiters = Waiters()

    def full(self) -> bool:
        return len(self._messages) >= self.capacity

    def put_nowait(self, data: bytes, expires_at: float | None = None) -> None:
        """Queue a message (channels_redis calls this as it would on an asyncio.Queue)."""
        while self._messages and (self.full() or self.bytes + len(data) > self.capacity_bytes):
            self._pop()
            self.mark_gap("overflow")
        self._messages.append((expires_at or time.time() + self.expiry, data))
        self.bytes += len(data)
        self._waiters.wake()

    def _pop(self) -> bytes:
        data = self._messages.popleft()[1]
        self.bytes -= len(data)
        return data

    def mark_gap(self, reason: GapReason) -> None:
        if self.gaps:
            self._gap = self._gap or reason
            self._waiters.wake()

    def get_nowait(self) -> bytes | None:
        """The next message (or gap notice), dropping expired ones; None when there is none."""
        now = time.time()
        while self._messages and self._messages[0][0] <= now:
            self._pop()
            self.mark_gap("expired")
        if self._gap:
            reason, self._gap = self._gap, None
            return self._notices[reason]
        return self._pop() if self._messages else None

    async def get(self) -> bytes:
        while (data := self.get_nowait()) is None:
            await self._waiters.add()
        return data


class Inboxes:
    """Makes inboxes: capacity by channel name as Channels' layers take it (a default and glob
    patterns), expiry, and gap notices in the layer's encoding (channels_redis may encrypt)."""

    def __init__(
        self,
        expiry: float,
        capacity: int,
        channel_capacity: dict[str, int] | None,
        encode: Callable[[GapNotice], bytes] = serialize,
    ) -> None:
        self._limits = BaseChannelLayer(expiry=expiry, capacity=capacity)
        self._limits.channel_capacity = self._limits.compile_capacities(channel_capacity or {})
        self._notices = {reason: encode(gap(reason)) for reason in GAP_REASONS}

    def capacity(self, channel: str) -> int:
        capacity: int = self._limits.get_capacity(channel)
        return capacity

    def new(self, channel: str) -> Inbox:
        return Inbox(self.capacity(channel), self._limits.expiry, self._notices)


class Bell:
    """Rung when a normal channel may have a message waiting in the database; its receivers
    in this process then try to take it."""

    def __init__(self) -> None:
        self.rings = 0
        self.receivers = 0
        self._waiters = Waiters()

    def ring(self) -> None:
        self.rings += 1
        self._waiters.wake()

    async def wait(self, since: int, at_most: float) -> None:
        """Until a ring after the count `since`, or `at_most` seconds (a ring may be lost)."""
        if self.rings == since:
            await asyncio.wait([self._waiters.add()], timeout=at_most)


class Local:
    """A process's channels and memberships. Memberships are by address (wire.address: a
    group's, or a normal channel's for its receivers here); `on_change` is called when the
    set of addresses with members changes, so the listener can LISTEN or UNLISTEN."""

    def __init__(self, inboxes: Inboxes, group_expiry: float, on_change: Callable[[], None]) -> None:
        self._new_inbox = inboxes.new
        self.group_expiry = group_expiry
        self._on_change = on_change
        self.reset()

    def reset(self) -> None:
        """Forget every channel, membership and receiver (a flush)."""
        self.inboxes: dict[str, Inbox] = {}
        self.members: dict[str, dict[str, float]] = {}  # group address -> {channel: joined at}
        self.joined: dict[str, set[str]] = {}  # channel -> group addresses it is a member of
        self.bells: dict[str, Bell] = {}  # normal channel address -> its receivers' bell
        self.next_expiry_check = time.time() + min(self.group_expiry, 60)

    def open(self, channel: str) -> Inbox:
        inbox = self.inboxes[channel] = self._new_inbox(channel)
        return inbox

    def close(self, channel: str) -> None:
        self.inboxes.pop(channel, None)
        for address in self.joined.pop(channel, set()):
            self.leave(address, channel)

    def join(self, address: str, channel: str, now: float) -> None:
        if address not in self.members:
            self.members[address] = {}
            self._on_change()
        self.members[address][channel] = now
        self.joined.setdefault(channel, set()).add(address)

    def leave(self, address: str, channel: str) -> None:
        members = self.members.get(address, {})
        if members.pop(channel, None) is None:
            return
        self.joined.get(channel, set()).discard(address)
        if not members:
            del self.members[address]
            self._on_change()

    def expire_memberships(self, now: float) -> None:
        """Channels' group_expiry: a membership lasts that long after its latest group_add."""
        if now < self.next_expiry_check:
            return
        self.next_expiry_check = now + min(self.group_expiry, 60)
        for address, members in list(self.members.items()):
            for channel in [c for c, joined_at in members.items() if now - joined_at > self.group_expiry]:
                self.leave(address, channel)

    def bell(self, address: str) -> Bell:
        """A receiver of a normal channel starts waiting: its bell (LISTENed to while any waits)."""
        if address not in self.bells:
            self.bells[address] = Bell()
            self._on_change()
        bell = self.bells[address]
        bell.receivers += 1
        return bell

    def release(self, address: str, bell: Bell) -> None:
        """A receiver stops waiting (a flush may have forgotten its bell already)."""
        bell.receivers -= 1
        if not bell.receivers and self.bells.get(address) is bell:
            del self.bells[address]
            self._on_change()

    def recipients(self, address: str) -> list[Inbox]:
        """The local inboxes of a group address's members."""
        return [self.inboxes[c] for c in self.members.get(address, ()) if c in self.inboxes]

    def addresses(self) -> set[str]:
        """Every address with a member or a receiver here."""
        return self.members.keys() | self.bells.keys()

    def tell(self, reason: GapReason) -> None:
        """Every channel that asked for gap notices may have lost messages; every waiting
        receiver of a normal channel looks again."""
        for inbox in self.inboxes.values():
            inbox.mark_gap(reason)
        for bell in self.bells.values():
            bell.ring()
