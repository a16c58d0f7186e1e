"""A background worker for tests/system/test_runworker.py: `manage.py runworker thumbnails` with
tests/worker_settings.py. Each `thumbnail.make` is answered on its `reply_to` channel."""

from __future__ import annotations

import os
from typing import Any

from asgiref.sync import async_to_sync
from channels.consumer import SyncConsumer
from channels.routing import ChannelNameRouter, ProtocolTypeRouter


class Thumbnailer(SyncConsumer):  # type: ignore[misc]  # channels has no types
    def thumbnail_make(self, message: dict[str, Any]) -> None:
        reply = {"type": "thumbnail.done", "n": message["n"], "worker": os.getpid()}
        async_to_sync(self.channel_layer.send)(message["reply_to"], reply)


application = ProtocolTypeRouter({"channel": ChannelNameRouter({"thumbnails": Thumbnailer.as_asgi()})})
