"""channels_redis' RedisPubSubChannelLayer with this package's queues (pglayer.local): bounded,
expiring, with gap notices for the channels that ask (`want_gaps`).

channels_redis ships no type information, so mypy sees its classes as Any; pyproject.toml lets
this one module subclass them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from channels_redis import pubsub
from redis.asyncio.client import PubSub, Redis
from redis.asyncio.connection import ConnectionPool

from pglayer import messages
from pglayer.local import Inbox, Inboxes
from pglayer.loops import PerLoop
from pglayer.messages import Message


class _ResubscribingPubSub(PubSub):
    """redis-py reconnects a pub/sub connection by itself and calls `on_connect` (on each
    reconnection, not the first connect) to subscribe again; then the channels are told."""

    def __init__(self, pool: ConnectionPool, after_reconnect: Callable[[], None]) -> None:
        super().__init__(pool)
        self._after_reconnect = after_reconnect

    async def on_connect(self, connection: Any) -> None:
        await super().on_connect(connection)
        self._after_reconnect()


class _RedisShard(pubsub.RedisSingleShardConnection):
    _redis: Redis | None

    def _ensure_redis(self) -> None:
        if self._redis is None:
            super()._ensure_redis()
            assert self._redis is not None
            self._pubsub = _ResubscribingPubSub(self._redis.connection_pool, self.channel_layer.reconnected)


class _RedisLoopLayer(pubsub.RedisPubSubLoopLayer):
    _shards: list[pubsub.RedisSingleShardConnection]
    channels: dict[str, Inbox]

    def __init__(self, *args: Any, new_inbox: Callable[[str], Inbox], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._new_inbox = new_inbox
        self._shards = [_RedisShard(shard.host, self) for shard in self._shards]

    async def _subscribe_to_channel(self, channel: str) -> None:
        self.channels[channel] = self._new_inbox(channel)
        await self._get_shard(channel).subscribe(channel)

    async def receive(self, channel: str) -> Message:
        try:
            while True:
                message: Message | None = await super().receive(channel)
                if message is not None:  # else not a message (counted and logged): the next one
                    return message
        except asyncio.CancelledError:
            # channels_redis forgets a closed channel but not its memberships, and so keeps
            # its groups subscribed for ever: leave them too.
            prefix = self._get_group_channel_name("")
            for group_channel in [g for g, members in self.groups.items() if channel in members]:
                await self.group_discard(group_channel.removeprefix(prefix), channel)
            raise

    def reconnected(self) -> None:
        for inbox in self.channels.values():
            inbox.mark_gap("reconnected")

    def want_gaps(self, channel: str) -> None:
        inbox = self.channels.get(channel)
        if inbox is None:
            raise ValueError(f"want_gaps({channel!r}): not a channel of this process from new_channel()")
        inbox.gaps = True


class RedisPubSubChannelLayer(pubsub.RedisPubSubChannelLayer):
    """channels_redis' RedisPubSubChannelLayer (CONFIG `hosts` etc. as it documents) whose
    local queues are bounded and expiring (`capacity`, `channel_capacity`, `expiry`) and whose
    channels that asked are told when they may have missed messages, as PostgresChannelLayer's.
    Its `send` publishes even to a local channel, so it never raises ChannelFull."""

    def __init__(
        self,
        *args: Any,
        expiry: float = 60,
        capacity: int = 100,
        channel_capacity: dict[str, int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        new_inbox = Inboxes(expiry, capacity, channel_capacity, self.serialize).new
        self._loop_layers = PerLoop(
            lambda: _RedisLoopLayer(*self._args, **self._kwargs, channel_layer=self, new_inbox=new_inbox)
        )

    def _get_layer(self) -> _RedisLoopLayer:
        return self._loop_layers.get()

    def want_gaps(self, channel: str) -> None:
        """As PostgresChannelLayer.want_gaps."""
        self._get_layer().want_gaps(channel)

    def deserialize(self, data: bytes) -> Message | None:
        """The message, or None when `data` is not one (any Redis client may PUBLISH to a
        channel's name): counted and logged as PostgresChannelLayer does."""
        try:
            decoded = super().deserialize(data)  # channels_redis': decrypted if so configured
        except Exception:  # msgpack's ValueErrors, cryptography's InvalidToken: not a message
            decoded = None
        return messages.valid(decoded)
