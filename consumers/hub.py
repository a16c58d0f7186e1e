"""One process's membership of the relay's groups, shared by all its live connections.

The relay sends each batch once per group (cdc/relay.py). Were every connection a member
itself, the channel layer would queue, decode and Channels dispatch each batch once per
connection: at a thousand connections that cost a web process more than writing to the
sockets did (docs/benchmarks.md, fan-out). So a process joins each group once, through its
`Hub`, and the hub hands each batch, decoded once, to the local connections that joined that
group, one after another.

A member takes what it is offered without waiting (LiveConsumer.offer queues it, within a
bound, for the connection's own writer task), so the hub hands a batch to a thousand
connections in one pass, and a socket that takes its time holds up no other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cdc.routing import ChangesMessage, StreamChange
from pglayer.messages import GAP_TYPE, want_gaps

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0  # after the layer failed to deliver: members repair from the log meanwhile
DEFAULT_GROUP_EXPIRY = 86400  # Channels' default: a membership lapses a day after its group_add


@dataclass(frozen=True, slots=True)
class Offered:
    """One relayed change as a member gets it: decoded once, and its wire text."""

    change: StreamChange
    text: str


@dataclass(frozen=True, slots=True)
class Batch:
    """One relayed message's changes, shared by every member it is offered to."""

    changes: Sequence[Offered]
    nbytes: int  # of wire text: what a member holds while it waits

    @classmethod
    def of(cls, message: ChangesMessage) -> Batch:
        changes = [Offered(StreamChange.from_message(m), m["text"]) for m in message["changes"]]
        return cls(changes, sum(len(offered.text) for offered in changes))


class Member(Protocol):
    def offer(self, batch: Batch) -> None:
        """A batch relayed to a group this member joined, taken without waiting."""

    def lost(self) -> None:
        """The layer may have dropped batches for this process: repair from the change log."""


class Hub:
    """The groups this process's members joined, each joined once in the channel layer on a
    channel of the hub's own, and the task that receives on that channel."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.members: dict[str, set[Member]] = {}
        self._channel: str | None = None
        self._tasks: list[asyncio.Task[None]] = []
        # One membership change at a time: a join returns once the layer has the membership,
        # and a member that follows joins no sooner.
        self._lock = asyncio.Lock()

    async def join(self, group: str, member: Member) -> None:
        """Once this returns, every batch relayed to `group` reaches `member`."""
        async with self._lock:
            channel = self._channel or await self._start()
            members = self.members.setdefault(group, set())
            if not members:
                await self.layer.group_add(group, channel)
            members.add(member)

    async def leave(self, group: str, member: Member) -> None:
        async with self._lock:
            members = self.members.get(group)
            if members is None or member not in members or self._channel is None:
                return
            members.discard(member)
            if members:
                return
            self.members.pop(group, None)
            await self.layer.group_discard(group, self._channel)
            if not self.members:
                await self._stop()

    async def _start(self) -> str:
        channel: str = await self.layer.new_channel("hub.")
        self._channel = channel
        want_gaps(self.layer, channel)
        self._tasks = [asyncio.create_task(self._receive(channel)), asyncio.create_task(self._renew(channel))]
        return channel

    async def _stop(self) -> None:
        self._channel = None
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _receive(self, channel: str) -> None:
        while True:
            try:
                message = await self.layer.receive(channel)
            except Exception as exc:  # the layer's connection, say; Redis raises its own errors
                log.warning("hub: receiving failed (%s); every connection repairs from the log", exc)
                self._lost()
                await asyncio.sleep(RETRY_SECONDS)
                continue
            try:
                self._handle(message)
            except (KeyError, TypeError, ValueError) as exc:  # anyone may send to a group
                log.warning("hub: ignored a malformed %r message (%r)", str(message.get("type"))[:40], exc)

    def _handle(self, message: dict[str, Any]) -> None:
        if message["type"] == GAP_TYPE:
            log.info("transport gap (%s): repairing from the log", message.get("reason"))
            self._lost()
        elif message["type"] == "cdc.changes":
            self._hand_on(message)  # type: ignore[arg-type]
        else:
            log.warning("hub: ignored a %r message", message["type"][:40])

    def _hand_on(self, message: ChangesMessage) -> None:
        members = self.members.get(message["group"])
        if not members:
            return  # left meanwhile
        batch = Batch.of(message)
        for member in members:
            member.offer(batch)

    def _lost(self) -> None:
        for member in set().union(*self.members.values()):
            member.lost()

    async def _renew(self, channel: str) -> None:
        """Memberships lapse after the layer's group_expiry; the hub's live as long as it does."""
        every = getattr(self.layer, "group_expiry", DEFAULT_GROUP_EXPIRY) / 2
        while True:
            await asyncio.sleep(every)
            async with self._lock:
                for group in self.members:
                    await self.layer.group_add(group, channel)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()


def hub_for(layer: Any) -> Hub:
    """This event loop's hub on `layer` (a process runs one loop; tests run one per test)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None or hub.layer is not layer:
        hub = _hubs[loop] = Hub(layer)
    return hub
