"""The command lines of the system's processes, in one place.

`manage.py up` (core/launcher.py), the test harness (testkit/processes.py) and compose.yaml run
these same commands; tests/system/test_compose.py checks that compose.yaml has not drifted from them.
Each is the argument list after the Python interpreter, run from the project root.
"""

from __future__ import annotations

MIGRATE = ["manage.py", "migrate", "--verbosity=1"]

# The demo writers' pace: a first-time user sees the page move within a second or two.
DEMO_WIRE_RATE = "1"
DEMO_POSTS_RATE = "0.5"
DEMO_TICKER_RATE = "5"  # price updates per second: the ticker panel moves several times a second


def web(host: str, port: int) -> list[str]:
    # --verbosity 0: daphne's own access log is plain text; core.access.AccessLogMiddleware
    # writes one in the configured LOG_FORMAT instead.
    return ["-m", "daphne", "--verbosity", "0", "-b", host, "-p", str(port), "core.asgi:application"]


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
