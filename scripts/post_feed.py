#!/usr/bin/env python3
"""A social feed: inserts posts by a few demo authors at a steady rate, with plain psycopg.

    python scripts/post_feed.py --rate 0.5
    python scripts/post_feed.py --count 20 --authors ada,grace --private 0.5

Authors that do not exist yet are created with SQL, with unusable passwords (no one can
log in as them). Some posts are private: only their author may see them live.
"""

from __future__ import annotations

import random
import sys
from typing import Any

import psycopg
from feed import Writer, check, comma_list, parser, run

AUTHORS = "ada,grace,linus,margaret,ken"
OPENERS = ["Just shipped", "Reading about", "Thinking about", "Can't stop fixing", "Finally tried"]
TOPICS = ["the rail link", "commit order", "a tiny parser", "the climate pledge", "sourdough", "Postgres"]
CLOSERS = ["!", ".", " :)", "... thoughts?", ", more soon."]

# '!' is Django's prefix for an unusable password (django.contrib.auth.hashers).
CREATE_AUTHORS = """
INSERT INTO auth_user (username, password, is_superuser, is_staff, is_active,
                       first_name, last_name, email, date_joined)
SELECT name, '!' || md5(random()::text), false, false, true, '', '', '', now()
FROM unnest(%(names)s::text[]) AS name
ON CONFLICT (username) DO NOTHING
"""


def author_ids(conn: psycopg.Connection[Any], names: list[str]) -> list[int]:
    conn.execute(CREATE_AUTHORS, {"names": names})
    rows = conn.execute("SELECT id FROM auth_user WHERE username = ANY(%s)", (names,)).fetchall()
    return [row[0] for row in rows]


def posts(names: list[str], private_share: float) -> Writer:
    authors: list[int] = []

    def write(conn: psycopg.Connection[Any], rng: random.Random, count: int) -> None:
        if not authors:
            authors.extend(author_ids(conn, names))
        rows = [
            {
                "author": rng.choice(authors),
                "body": f"{rng.choice(OPENERS)} {rng.choice(TOPICS)}{rng.choice(CLOSERS)}",
                "visibility": "private" if rng.random() < private_share else "public",
            }
            for _ in range(count)
        ]
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO post (author_id, body, visibility)"
                " VALUES (%(author)s, %(body)s, %(visibility)s)",
                rows,
            )

    return write


def main(argv: list[str]) -> int:
    p = parser("Insert social posts at a steady rate.", rate=0.5)
    p.add_argument("--authors", default=AUTHORS, help=f"comma-separated usernames (default {AUTHORS})")
    p.add_argument("--private", type=float, default=0.2, help="share of private posts (default 0.2)")
    args = p.parse_args(argv)
    check(p, args)
    names = comma_list(p, args.authors, "--authors")
    return run(args, posts(names, args.private), program="post_feed", noun="posts")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
