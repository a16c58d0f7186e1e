"""Background workers on the Postgres layer, the way Django projects run them: a real
`manage.py runworker thumbnails` (tests/worker_app.py), started before or after the messages
are sent, restarted, and two at once: every message is handled, each exactly once."""

from __future__ import annotations

import asyncio
import sys

from pglayer.layer import PostgresChannelLayer
from testkit.processes import Process

TIMEOUT = 30.0


def worker(dsn: str) -> Process:
    argv = [sys.executable, "manage.py", "runworker", "thumbnails"]
    env = {"DATABASE_URL": dsn, "DJANGO_SETTINGS_MODULE": "tests.worker_settings"}
    return Process(argv, env, "runworker")


async def test_runworker_handles_each_message_once_whenever_it_starts(fresh_db):
    layer = PostgresChannelLayer(conninfo=fresh_db)
    workers: list[Process] = []
    try:
        replies = await layer.new_channel()

        async def ask(numbers: range) -> None:
            for n in numbers:
                await layer.send("thumbnails", {"type": "thumbnail.make", "n": n, "reply_to": replies})

        async def answered(count: int) -> list[int]:
            done = [await asyncio.wait_for(layer.receive(replies), TIMEOUT) for _ in range(count)]
            return sorted(reply["n"] for reply in done)

        await ask(range(3))  # no worker yet
        workers.append(worker(fresh_db))
        assert await answered(3) == [0, 1, 2]

        workers[0].kill()  # a worker restarted: what is sent meanwhile waits for the next
        await ask(range(3, 6))
        workers += [worker(fresh_db), worker(fresh_db)]  # and two at once share the work
        await ask(range(6, 12))
        assert await answered(9) == list(range(3, 12))
    finally:
        for each in workers:
            each.kill()
        await layer.flush()
