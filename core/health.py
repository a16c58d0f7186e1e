"""GET /healthz: is the system delivering changes? For orchestrators, load balancers, humans.

200 when the database answers, a cdc_listen leader's heartbeat is fresh and the relay lag is
below HEALTH_MAX_LAG; 503 otherwise, with the reasons in `problems`. The relay's state comes
from its rows in the database (cdc/status.py), so every web process answers the same.
Anyone gets the status code and `{"status": ...}`; the details only those core/ops_access.py
allows (they name hosts and process ids).
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from cdc.status import RelayHealth, relay_health
from core.ops_access import ops_allowed

log = logging.getLogger(__name__)

QUERY_TIMEOUT_MS = 5000  # a hung database is an unhealthy one, not a hung probe


def read_relay_health() -> RelayHealth:
    """The relay's health as the database sees it (raises DatabaseError when it is down)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL statement_timeout = {QUERY_TIMEOUT_MS}")
        return relay_health(cursor)


def report() -> tuple[bool, dict[str, Any]]:
    try:
        relay = read_relay_health()
    except DatabaseError as exc:  # the details go to the log, not to whoever asks
        log.warning("health check: database error: %s", exc)
        problem = f"database: {type(exc).__name__} (details in the web's log)"
        return False, {"status": "unhealthy", "database": "down", "problems": [problem]}
    problems = relay.problems(
        max_heartbeat_age=settings.HEALTH_MAX_HEARTBEAT_AGE, max_lag=settings.HEALTH_MAX_LAG
    )
    leader = relay.leader(settings.HEALTH_MAX_HEARTBEAT_AGE)
    body = {
        "status": "unhealthy" if problems else "ok",
        "database": "ok",
        "relay": {
            "leader": leader.name if leader else None,
            "lag_seconds": round(relay.lag_seconds, 3),
            "pending": relay.pending,
            "relayed_tick": relay.relayed_tick,
            "listeners": [asdict(listener) for listener in relay.listeners],
        },
        "problems": problems,
    }
    return not problems, body


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    healthy, body = report()
    shown = body if ops_allowed(request) else {"status": body["status"]}
    return JsonResponse(shown, status=200 if healthy else 503)
