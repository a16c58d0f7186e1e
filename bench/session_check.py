"""What the periodic re-check of logged-in sockets' sessions costs (consumers/sessions.py).

Every WS_SESSION_CHECK_SECONDS each web process runs `ended()` over the sessions of its
logged-in sockets, in a worker thread: one round's time is how late, at most, a socket whose
session ended closes after the round begins, and the CPU it takes. On a scratch database
migrated by `manage.py migrate`, with N users each logged in once:

    .venv/bin/python -m bench.session_check [--sessions 100,1000] [--rounds 5]

Prints a Markdown table and writes bench/results/session_check.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any

from bench.common import machine_facts, markdown_table, scratch_database, server_url, write_results
from testkit.processes import migrate


def logins(count: int) -> set[tuple[str, int]]:
    """`count` new users, each with a logged-in session: (session key, user id)."""
    from django.contrib.auth import get_user_model

    from tests.consumer_env import logged_in_session

    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"user{i}-{count}", password="!") for i in range(count)
    )
    return {(logged_in_session(user), user.pk) for user in users}


def measure(count: int, rounds: int) -> dict[str, Any]:
    from consumers.sessions import ended

    watched = logins(count)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        assert ended(watched) == set()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {"sessions": count, "round_ms": round(median * 1000, 1), "per_session_ms": median * 1000 / count}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", default="100,1000")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    with scratch_database(server_url(), "bench_sessions") as dsn:
        migrate(dsn)
        os.environ["DATABASE_URL"] = dsn
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
        import django

        django.setup()
        machine = machine_facts(dsn)
        results = [measure(int(n), args.rounds) for n in args.sessions.split(",")]
        from django.db import connections

        connections.close_all()  # before the scratch database is dropped
    rows = [[r["sessions"], r["round_ms"], f"{r['per_session_ms']:.3f}"] for r in results]
    print(markdown_table(["logged-in sessions", "one round (ms, median)", "per session (ms)"], rows))
    command = " ".join(["python -m bench.session_check", *argv])
    print(write_results("session_check", machine, {"command": command, "steps": results}))


if __name__ == "__main__":
    main(sys.argv[1:])
