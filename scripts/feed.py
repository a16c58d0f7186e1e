"""What the demo writers share: their options, their pace and a clean stop.

Plain psycopg and nothing of Django: they write the way any outside system would, and the
change capture in Postgres does the rest.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

import psycopg

# Writes (or updates) `count` rows in one transaction (the connection is not in autocommit mode).
Writer = Callable[[psycopg.Connection[Any], random.Random, int], None]


def parser(description: str, *, rate: float) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="libpq URL or conninfo (default: $DATABASE_URL)",
    )
    p.add_argument("--rate", type=float, default=rate, help=f"rows per second (default {rate})")
    stop = p.add_mutually_exclusive_group()
    stop.add_argument("--count", type=int, help="stop after this many rows")
    stop.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--seed", type=int, help="for a repeatable sequence of rows")
    return p


def check(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not args.database_url:
        p.error("set DATABASE_URL or pass --database-url")
    if args.rate <= 0:
        p.error("--rate must be positive")


def comma_list(p: argparse.ArgumentParser, text: str, option: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        p.error(f"{option} needs at least one name")
    return items


def run(args: argparse.Namespace, write: Writer, *, program: str, noun: str, verb: str = "inserted") -> int:
    """Write rows at `args.rate` per second until --count, --duration, SIGTERM or Ctrl-C;
    print how many were committed ("<program>: <verb> <count> <noun>")."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop as Ctrl-C does
    rng = random.Random(args.seed)
    limit = _limit(args)
    written = 0
    try:
        with psycopg.connect(args.database_url, application_name=program) as conn:
            start = time.monotonic()
            while True:
                due = min(limit, math.floor((time.monotonic() - start) * args.rate) + 1) - written
                if due > 0:
                    with conn.transaction():
                        write(conn, rng, int(due))
                    written += int(due)
                if written >= limit:
                    break
                next_row_at = start + written / args.rate
                time.sleep(max(0.0, next_row_at - time.monotonic()))  # pacing, not synchronisation
    except KeyboardInterrupt:
        pass
    except psycopg.Error as exc:
        print(f"{program}: {exc}", file=sys.stderr)
        return 1
    finally:
        print(f"{program}: {verb} {written} {noun}", flush=True)
    return 0


def _limit(args: argparse.Namespace) -> float:
    """How many rows in all: --count, the rows due within --duration, or no end."""
    if args.count is not None:
        return float(args.count)
    if args.duration is not None:
        return float(math.ceil(args.duration * args.rate))
    return math.inf
