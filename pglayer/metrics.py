"""The layer's counters, registered with no registry: the project's /metrics adds them to its
own (core/metrics.py)."""

from __future__ import annotations

from prometheus_client import Counter

MALFORMED_NAME = "channel_layer_malformed_total"
MALFORMED = Counter(
    "channel_layer_malformed",
    "Notifications or messages on the layer's channels that were not the layer's, ignored.",
    registry=None,
)
