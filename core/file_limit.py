"""A warning at start when this process may run out of file descriptors below its caps.

Each websocket holds one; a process past its open-file limit fails everything else too
(accepting, /healthz, database connections). Called by the web (core/asgi.py) and cdc_listen.
"""

from __future__ import annotations

import logging
import resource

from django.conf import settings

log = logging.getLogger("livefeed.limits")

FILE_HEADROOM = 100  # descriptors beside the sockets: database pools, the layer, logs, modules


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
