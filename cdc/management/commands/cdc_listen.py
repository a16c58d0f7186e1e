from __future__ import annotations

import asyncio
import signal
from typing import Any

import uvloop
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import DEFAULT_DB_ALIAS

from cdc import metrics
from cdc.relay import Relay
from core.database import conninfo
from core.file_limit import warn_if_file_limit_low


class Command(BaseCommand):
    help = "Relay every committed change from the change log to the channel layer (runs until stopped)."
    requires_system_checks: list[str] = []  # handle() runs them all, the database's too (cdc/checks.py)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--poll-interval", type=float, help="seconds between reads without a doorbell")
        parser.add_argument("--batch-size", type=int, help="most changes per batch")
        parser.add_argument(
            "--metrics-port",
            type=int,
            default=settings.CDC_METRICS_PORT,
            help="serve Prometheus metrics on this port (default: $CDC_METRICS_PORT; off when unset)",
        )

    def handle(
        self,
        *args: Any,
        poll_interval: float | None,
        batch_size: int | None,
        metrics_port: int | None,
        **options: Any,
    ) -> None:
        self.check(databases=[DEFAULT_DB_ALIAS])
        warn_if_file_limit_low("cdc_listen")
        if metrics_port:
            metrics.serve(metrics_port)
        # On uvloop, as the web runs: under steady writes the relay wakes hundreds of times a
        # second, and each wake (a read, a pause, a look for rings) is a few event-loop turns
        # and system calls, which uvloop makes cheaper (docs/architecture.md, "The doorbell").
        uvloop.run(self.serve(Relay(conninfo(), poll_interval=poll_interval, batch_size=batch_size)))

    @staticmethod
    async def serve(relay: Relay) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, relay.stop)
        await relay.run()
