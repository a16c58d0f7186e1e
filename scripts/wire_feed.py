#!/usr/bin/env python3
"""A news wire: inserts articles in several categories at a steady rate, with plain psycopg.

    python scripts/wire_feed.py --rate 2 --categories world,business,tech
    python scripts/wire_feed.py --count 100 --rate 50 --database-url postgresql://...

It knows nothing of Django or websockets: Postgres captures each row, cdc_listen relays it.
"""

from __future__ import annotations

import random
import sys
from typing import Any

import psycopg
from feed import Writer, check, comma_list, parser, run

CATEGORIES = "world,business,tech,science,sports"
SOURCES = ["Wire One", "Northern Post", "Daily Ledger", "Metro Desk", "Harbour Times"]
SUBJECTS = ["Regulators", "Researchers", "City council", "A startup", "The central bank", "Local club"]
VERBS = ["unveils", "delays", "backs", "questions", "wins", "rejects", "expands", "reviews"]
OBJECTS = ["new plan", "record budget", "merger talks", "climate pledge", "rail link", "data rules"]


def articles(categories: list[str]) -> Writer:
    def write(conn: psycopg.Connection[Any], rng: random.Random, count: int) -> None:
        rows = [article(rng, rng.choice(categories)) for _ in range(count)]
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO article (title, body, url, source, category)"
                " VALUES (%(title)s, %(body)s, %(url)s, %(source)s, %(category)s)",
                rows,
            )

    return write


def article(rng: random.Random, category: str) -> dict[str, str]:
    title = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}"
    slug = "-".join(title.lower().split())
    source = rng.choice(SOURCES)
    return {
        "title": title,
        "body": f"{title}, {source} reports. More to follow.",
        "url": f"https://news.example/{category}/{slug}-{rng.randrange(10**6)}",
        "source": source,
        "category": category,
    }


def main(argv: list[str]) -> int:
    p = parser("Insert news articles at a steady rate.", rate=1.0)
    p.add_argument("--categories", default=CATEGORIES, help=f"comma-separated (default {CATEGORIES})")
    args = p.parse_args(argv)
    check(p, args)
    categories = comma_list(p, args.categories, "--categories")
    return run(args, articles(categories), program="wire_feed", noun="articles")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
