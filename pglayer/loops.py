"""One state per running event loop, flushed when that loop closes: connections and tasks
belong to a loop, and async_to_sync runs each call in a new one (channels_redis does the same)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar


class Flushable(Protocol):
    async def flush(self) -> None: ...


F = TypeVar("F", bound=Flushable)


class PerLoop(Generic[F]):
    def __init__(self, factory: Callable[[], F]) -> None:
        self._factory = factory
        self._states: dict[asyncio.AbstractEventLoop, F] = {}

    def get(self) -> F:
        loop = asyncio.get_running_loop()
        state = self._states.get(loop)
        if state is None:
            state = self._states[loop] = self._factory()
            self._flush_on_close(loop)
        return state

    def _flush_on_close(self, loop: asyncio.AbstractEventLoop) -> None:
        close = loop.close

        def flush_then_close() -> None:
            state = self._states.pop(loop, None)
            if state is not None and not loop.is_closed():
                loop.run_until_complete(state.flush())
            close()

        loop.close = flush_then_close  # type: ignore[method-assign]
