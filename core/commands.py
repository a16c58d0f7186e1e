"""The command lines of the system's processes, in one place.

`manage.py up` (core/launcher.py), the test harness (testkit/processes.py) and compose.yaml run
these same commands; tests/system/test_compose.py checks that compose.yaml has not drifted from them.
Each is the argument list after the Python interpreter, run from the project root.
"""

from __future__ import annotations

import os

# Bytes a client frame may have before the server drops the connection (1009): frames up to
# it that break the protocol's own limit get a `message_too_large` error instead.
WS_MAX_FRAME_IN = 1024 * 1024

MIGRATE = ["manage.py", "migrate", "--verbosity=1"]

# The demo writers' pace: a first-time user sees the page move within a second or two.
DEMO_WIRE_RATE = "1"
DEMO_POSTS_RATE = "0.5"
DEMO_TICKER_RATE = "5"  # price updates per second: the ticker panel moves several times a second


# The ASGI servers the project runs and tests; the first is the default. WEB_SERVER chooses.
# Why uvicorn leads: docs/benchmarks.md, "Fan-out" (a delivery costs it a fraction of daphne's).
WEB_SERVERS = ("uvicorn", "daphne")


def web(host: str, port: int, server: str | None = None) -> list[str]:
    server = server or os.environ.get("WEB_SERVER") or WEB_SERVERS[0]
    if server == "uvicorn":
        # wsproto on uvloop: the fastest of uvicorn's websocket stacks here, and one that
        # keeps the socket alive with pings as daphne does. No proxy headers: which address a
        # client has is core/client_address.py's to decide. No lifespan: Channels has none.
        # No access log: core.access.AccessLogMiddleware writes one in LOG_FORMAT.
        return [
            "-m", "uvicorn", "--host", host, "--port", str(port), "--loop", "uvloop", "--http", "httptools",
            "--ws", "wsproto", "--ws-max-size", str(WS_MAX_FRAME_IN), "--lifespan", "off",
            "--no-proxy-headers", "--no-access-log", "--log-level", "warning", "core.asgi:application",
        ]  # fmt: skip
    if server == "daphne":
        # --verbosity 0: daphne's own access log is plain text (see above).
        return ["-m", "daphne", "--verbosity", "0", "-b", host, "-p", str(port), "core.asgi:application"]
    raise ValueError(f"WEB_SERVER must be one of {', '.join(WEB_SERVERS)}, not {server!r}")


def listener(*options: str) -> list[str]:
    return ["manage.py", "cdc_listen", *options]


def wire_feed(*options: str) -> list[str]:
    return ["scripts/wire_feed.py", *options]


def post_feed(*options: str) -> list[str]:
    return ["scripts/post_feed.py", *options]


def ticker_feed(*options: str) -> list[str]:
    return ["scripts/ticker_feed.py", *options]


def demo_writers() -> dict[str, list[str]]:
    return {
        "wire": wire_feed("--rate", DEMO_WIRE_RATE),
        "posts": post_feed("--rate", DEMO_POSTS_RATE),
        "ticker": ticker_feed("--rate", DEMO_TICKER_RATE),
    }
