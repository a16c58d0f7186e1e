"""A channel-layer group member in its own process: joins groups, prints what arrives.

    python tests/group_member.py GROUP [GROUP ...]

Prints `ready` once it is in every group, then one JSON line per change received
(`{"id", "position", "op", "stream", "audience", "title"}`, where
`title` is an article's title or a post's body) and one per other message type.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import django

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
django.setup()

from channels.layers import get_channel_layer  # noqa: E402  (needs settings)


async def main(groups: list[str]) -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    for group in groups:
        await layer.group_add(group, channel)
    print("ready", flush=True)
    while True:
        message = await layer.receive(channel)
        for change in message.get("changes", [message]):
            line = {k: change.get(k) for k in ("type", "id", "position", "op", "stream", "audience")}
            wire = json.loads(change["text"]) if "text" in change else change  # the whole change
            image = wire.get("row") or wire.get("old") or {}
            line["title"] = image.get("title") or image.get("body")
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
