"""The relay's own Prometheus metrics, served by `cdc_listen --metrics-port` (off by default).

Each cdc_listen process counts what it did itself; the database-wide view (changes captured,
lag as the web sees it) is on the web's /metrics (core/metrics.py). docs/operations.md says
what each one means and what to alert on.
"""

from __future__ import annotations

import logging
import time

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from cdc.log import Batch

log = logging.getLogger(__name__)

CHANGES = Counter("livefeed_relay_changes", "Changes handed to the channel layer by this process.")
TICKS = Counter("livefeed_relay_ticks", "Batches (ticks) handed to the channel layer by this process.")
BATCH_SIZE = Histogram(
    "livefeed_relay_batch_size",
    "Changes per tick.",
    buckets=(1, 2, 5, 10, 50, 100, 500, 1000, 5000),
)
RECONNECTS = Counter("livefeed_relay_reconnects", "Times this process lost its session and reconnected.")
LEADER = Gauge("livefeed_relay_leader", "1 while this process is the leader, 0 while it stands by.")
LAG = Gauge(
    "livefeed_relay_lag_seconds",
    "Age of the oldest change in the last batch read, at reading time (0 when nothing was waiting).",
)


def serve(port: int) -> None:
    """Serve /metrics on `port` (all interfaces) from a background thread."""
    start_http_server(port)
    log.info("serving metrics on port %d", port, extra={"port": port})


def batch_read(batch: Batch) -> None:
    # Ids follow capture order, so the first change is the oldest (to the microsecond).
    oldest = batch.changes[0].captured_at.timestamp() if batch.changes else time.time()
    LAG.set(max(0.0, time.time() - oldest))


def tick_relayed(batch: Batch) -> None:
    CHANGES.inc(len(batch.changes))
    TICKS.inc()
    BATCH_SIZE.observe(len(batch.changes))
