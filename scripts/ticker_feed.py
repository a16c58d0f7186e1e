#!/usr/bin/env python3
"""A price ticker: updates a handful of symbols' prices in place, a random walk, with plain psycopg.

    python scripts/ticker_feed.py --rate 5
    python scripts/ticker_feed.py --count 100 --rate 50 --symbols ACME,GLOBEX

Symbols that do not exist yet are inserted first, at a random price. Each update moves one
symbol's price by a small random step (at least a cent), so the stream is updates, where
the other demo writers' are inserts.
"""

from __future__ import annotations

import random
import sys
from typing import Any

import psycopg
from feed import Writer, check, comma_list, parser, run

SYMBOLS = "ACME,GLOBEX,INITECH,HOOLI,UMBRELLA,STARK"
VOLATILITY = 0.003  # the standard deviation of one step, as a share of the price

CREATE_SYMBOLS = """
INSERT INTO ticker (symbol, price)
SELECT symbol, price FROM unnest(%(symbols)s::text[], %(prices)s::numeric[]) AS u (symbol, price)
ON CONFLICT (symbol) DO NOTHING
"""
# One step: `step` times the price, rounded to the cent, but at least a cent (an update
# that moved no price would be no change to see) and never below a cent.
STEP = """
UPDATE ticker
SET price = greatest(
        0.01, price + sign(%(step)s::numeric) * greatest(0.01, round(abs(price * %(step)s::numeric), 2))
    ),
    updated_at = now()
WHERE symbol = %(symbol)s
"""


def prices(symbols: list[str]) -> Writer:
    created: list[bool] = []

    def write(conn: psycopg.Connection[Any], rng: random.Random, count: int) -> None:
        if not created:
            start = [round(rng.uniform(20, 500), 2) for _ in symbols]
            conn.execute(CREATE_SYMBOLS, {"symbols": symbols, "prices": start})
            created.append(True)
        steps = [{"symbol": rng.choice(symbols), "step": rng.gauss(0, VOLATILITY)} for _ in range(count)]
        with conn.cursor() as cur:
            cur.executemany(STEP, steps)

    return write


def main(argv: list[str]) -> int:
    p = parser("Update a few symbols' prices at a steady rate (a random walk).", rate=5.0)
    p.add_argument("--symbols", default=SYMBOLS, help=f"comma-separated (default {SYMBOLS})")
    args = p.parse_args(argv)
    check(p, args)
    symbols = comma_list(p, args.symbols, "--symbols")
    return run(args, prices(symbols), program="ticker_feed", noun="prices", verb="updated")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
