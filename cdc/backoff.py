"""Waiting between tries: exponential backoff with jitter, after psycopg_pool's (start,
double, ±10 %, cap), and a pause that a stop cuts short."""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass


@dataclass
class Backoff:
    start: float = 0.5
    cap: float = 30.0
    jitter: float = 0.1
    _next: float = 0.0

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._next = self.start

    def next_delay(self) -> float:
        delay = self._next * random.uniform(1 - self.jitter, 1 + self.jitter)
        self._next = min(self._next * 2, self.cap)
        return delay


async def pause(stopping: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, but wake at once when `stopping` is set."""
    if seconds > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), seconds)
