"""Another process on a channel layer, for the layer tests and bench/layer.py.

    python testkit/layer_peer.py BACKEND CONFIG_JSON echo
    python testkit/layer_peer.py BACKEND CONFIG_JSON members GROUP N [--count M]

BACKEND is a layer's dotted path and CONFIG_JSON its CONFIG, as in CHANNEL_LAYERS.
`echo` prints `channel NAME`, answers each message that has a `reply_to` with
`{"type": "echo.reply", "n": ...}` (then prints `replied N`) and prints any other message as `received JSON`.
`members` starts N consumers at once, as a fresh daphne does when N browsers connect; each
joins GROUP. It prints `ready` when all have joined, then `got I N` for each message a member
I receives (`n` is the message's). With --count (for the benchmark), `ready` waits until every
member has also received a message (say a warm-up, n < 0), and the first member starts alone,
the others once it has received one: no layer then has a receive() racing its listener's
start, or a message arriving before its channel receives. Then only `done EPOCH` is printed,
each time every member has M more distinct messages with n >= 0, with `repeats R gaps G`
(messages seen again, and gap notices, so far).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")  # for the Redis layer's runs


def redis_reachable() -> bool:
    import redis

    try:
        with redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1) as server:
            return bool(server.ping())
    except redis.RedisError:
        return False


def make_layer(backend: str, config: dict[str, Any]) -> Any:
    import django
    from django.utils.module_loading import import_string

    if not backend.startswith("pglayer."):
        django.setup()  # channels-postgres reads Django's settings (the project's layers don't)
    return import_string(backend)(**config)


async def echo(layer: Any) -> None:
    channel = await layer.new_channel()
    print("channel", channel, flush=True)
    while True:
        message = await layer.receive(channel)
        if "reply_to" in message:
            await layer.send(message["reply_to"], {"type": "echo.reply", "n": message.get("n")})
            print("replied", message.get("n"), flush=True)
        else:
            print("received", json.dumps(message), flush=True)


async def members(layer: Any, group: str, size: int, count: int | None) -> None:
    joined = asyncio.Semaphore(0)
    heard = asyncio.Semaphore(0)  # released at each member's first message
    stats = Counter[str]()

    async def member(index: int) -> None:
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        joined.release()
        last = None
        while True:
            message = await layer.receive(channel)
            if last is None:
                heard.release()
                last = -1
            n = message.get("n")
            if count is None:
                print("got", index, n if n is not None else json.dumps(message), flush=True)
            elif n is None or 0 <= n <= last:
                stats["gaps" if n is None else "repeats"] += 1
            elif n >= 0:
                last = n
                stats["distinct"] += 1
                if stats["distinct"] % (size * count) == 0:  # a round of M messages is complete
                    print("done", repr(time.time()), flush=True)
                    print("repeats", stats["repeats"], "gaps", stats["gaps"], flush=True)

    tasks = [asyncio.create_task(member(0))]
    if count is not None:
        await heard.acquire()
    tasks += [asyncio.create_task(member(i)) for i in range(1, size)]  # all at once
    for _ in range(size):
        await joined.acquire()
    for _ in range(size - 1 if count is not None else 0):
        await heard.acquire()
    print("ready", flush=True)
    await asyncio.gather(*tasks)  # members receive until the process is stopped


def main() -> None:
    sys.path[0] = str(Path(__file__).resolve().parent.parent)  # the repo, not tests/ (it has an http.py)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
    parser = argparse.ArgumentParser()
    parser.add_argument("backend")
    parser.add_argument("config")
    parser.add_argument("role", choices=["echo", "members"])
    parser.add_argument("group", nargs="?")
    parser.add_argument("size", nargs="?", type=int)
    parser.add_argument("--count", type=int)
    args = parser.parse_args()
    layer = make_layer(args.backend, json.loads(args.config))
    if args.role == "echo":
        asyncio.run(echo(layer))
    else:
        asyncio.run(members(layer, args.group, args.size, args.count))


if __name__ == "__main__":
    main()
