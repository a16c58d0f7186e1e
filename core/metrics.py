"""GET /metrics on the web: this process's websocket metrics, plus the relay's state as the
database shows it, read at scrape time (Prometheus text format, prometheus-client).

cdc_listen serves its own process metrics (cdc/metrics.py). Every web process reports the
same database-wide values, so aggregate those with max(), not sum(). docs/operations.md says
what each metric means.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterator

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponseBase, HttpResponseForbidden
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.django import PrometheusDjangoView
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from core.health import read_relay_health
from core.ops_access import ops_allowed
from pglayer import metrics as layer_metrics

REGISTRY = CollectorRegistry()  # the web's own: nothing else in the process scrapes the database
for _collector in (ProcessCollector, PlatformCollector, GCCollector):
    _collector(registry=REGISTRY)

# Called by the websocket consumers (consumers/).
WS_CONNECTIONS = Gauge("livefeed_ws_connections", "Open websocket connections.", registry=REGISTRY)
WS_MESSAGES_SENT = Counter(
    "livefeed_ws_messages_sent", "Messages sent to browsers, by message type.", ["type"], registry=REGISTRY
)
WS_REFUSED = Counter(
    "livefeed_ws_refused",
    "Websockets closed at the handshake for a connection cap, by cap (core/connection_limits.py).",
    ["cap"],
    registry=REGISTRY,
)
WS_ERRORS = Counter(
    "livefeed_ws_errors", "Error messages sent to browsers, by error code.", ["code"], registry=REGISTRY
)

WS_CLOSED = Counter(
    "livefeed_ws_closed_by_server",
    "Websocket connections the server closed, by reason (slow_reader, flooding, repair_failed).",
    ["reason"],
    registry=REGISTRY,
)

WS_REPAIRS = Counter(
    "livefeed_ws_repairs",
    "Connections that re-read changes from the log, by reason: overflow (more waited than"
    " LIVE_SEND_BUDGET_BYTES) or transport_gap (the channel layer may have dropped some).",
    ["reason"],
    registry=REGISTRY,
)


class RelayStateCollector(Collector):
    """The change log and the relay, read from the database when Prometheus scrapes."""

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("livefeed_database_up", "1 when the database answered this scrape.")
        try:
            relay = read_relay_health()
        except DatabaseError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield CounterMetricFamily(
            "livefeed_cdc_captured",
            "Change ids handed out by the capture trigger (a rolled-back write takes one too).",
            value=relay.captured_total,
        )
        yield GaugeMetricFamily(
            "livefeed_cdc_pending_changes", "Committed changes not relayed yet.", value=relay.pending
        )
        yield GaugeMetricFamily(
            "livefeed_cdc_relay_lag_seconds",
            "Age of the oldest committed change not relayed yet (0 when none).",
            value=relay.lag_seconds,
        )
        yield GaugeMetricFamily(
            "livefeed_cdc_relayed_tick",
            "The newest tick handed to the channel layer.",
            value=relay.relayed_tick,
        )
        leader = relay.leader(settings.HEALTH_MAX_HEARTBEAT_AGE)
        yield GaugeMetricFamily(
            "livefeed_cdc_leader_up",
            "1 when a cdc_listen leader's heartbeat is fresher than HEALTH_MAX_HEARTBEAT_AGE.",
            value=int(leader is not None),
        )
        roles = Tally(x.role for x in relay.listeners)
        listeners = GaugeMetricFamily(
            "livefeed_cdc_listeners", "cdc_listen processes by role.", labels=["role"]
        )
        for role in ("leader", "standby"):
            listeners.add_metric([role], roles[role])
        yield listeners
        relayed = CounterMetricFamily(
            "livefeed_cdc_listener_relayed",
            "Changes each running cdc_listen relayed since it started (from its heartbeat).",
            labels=["listener"],
        )
        for x in relay.listeners:
            relayed.add_metric([x.name], x.relayed_total)
        yield relayed


REGISTRY.register(RelayStateCollector())
REGISTRY.register(layer_metrics.MALFORMED)  # this process's channel layer

_scrape = PrometheusDjangoView.as_view(registry=REGISTRY)


def scrape(request: HttpRequest) -> HttpResponseBase:
    """The metrics page, for those core/ops_access.py allows; 403 for anyone else."""
    if not ops_allowed(request):
        return HttpResponseForbidden("metrics: see OPS_ALLOWED_ADDRESSES and OPS_TOKEN\n")
    response: HttpResponseBase = _scrape(request)
    return response
