"""A warning at start when this process may run out of file descriptors below its caps.

Each websocket holds one; a process past its open-file limit fails everything else too
(accepting, /healthz, database connections). Called by the web (core/asgi.py) and cdc_listen.
"""

from __future__ import annotations

import logging
import resource

from django.conf import settings

log = logging.getLogger(__name__)

FILE_HEADROOM = 100  # descriptors beside the sockets: database pools, the layer, logs, modules
MAX_CONNECTIONS = 2000  # the default cap on a web process's websockets, when the limit allows


def default_max_connections() -> int:
    """WS_MAX_CONNECTIONS when unset: MAX_CONNECTIONS, or fewer if this process's open-file
    limit cannot hold them and the headroom (then the cap, not the limit, turns sockets away)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(1, min(MAX_CONNECTIONS, soft - FILE_HEADROOM))


def warn_if_file_limit_low(process: str) -> None:
    """At start: say so when this process may run out of file descriptors below its caps."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = settings.WS_MAX_CONNECTIONS + FILE_HEADROOM
    if soft != resource.RLIM_INFINITY and soft < needed:
        log.warning(
            "%s: the open-file limit is %d, below the %d that WS_MAX_CONNECTIONS=%d needs;"
            " raise it (ulimit -n, compose ulimits.nofile) or lower WS_MAX_CONNECTIONS",
            process,
            soft,
            needed,
            settings.WS_MAX_CONNECTIONS,
        )
