"""A group member for bench/relay.py: joins `cdc.articles`, prints `<title>\t<time>` per change."""

from __future__ import annotations

import asyncio
import os
import sys
import time

import django
import orjson

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
django.setup()

from channels.layers import get_channel_layer  # noqa: E402  (needs settings)


async def main() -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("cdc.articles", channel)
    print("ready", flush=True)
    while True:
        message = await layer.receive(channel)
        now = time.time()
        rows = [orjson.loads(c["text"])["row"] for c in message.get("changes", [])]  # the wire text
        out = [f"{row['title']}\t{now}" for row in rows if row]
        if out:
            print("\n".join(out), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
