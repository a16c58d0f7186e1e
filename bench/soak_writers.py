"""The soak's writers (bench/soak.py): plain psycopg, as a service in another language would
write, inserting, updating and deleting articles and posts at a steady pace through every
fault, and remembering which transactions the server confirmed.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from bench.common import pause

ARTICLE, POST = "public.article", "public.post"
CATEGORIES = ("tech", "world", "sport")
SOURCE = "soak"
MARKER = "marker: "  # the title and body of the soak's markers start with it
MARKER_CATEGORY = "tech"  # with SOURCE: markers reach every articles subscription of the soak

Conn = psycopg.AsyncConnection[Any]
Change = tuple[str, str, int]  # (table, op, row id)


@dataclass
class Writer:
    dsn: str
    authors: list[int]
    rate: float  # transactions a second
    seed: int
    acked: Counter[Change] = field(default_factory=Counter)  # changes whose COMMIT returned
    transactions: int = 0
    failures: int = 0  # transactions lost to a fault (their outcome is the database's)
    _articles: list[int] = field(default_factory=list)
    _posts: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self._actions: list[tuple[float, Callable[[Conn], Awaitable[list[Change]]]]] = [
            (0.35, self._insert_article),
            (0.15, self._update_article),
            (0.05, self._delete_article),
            (0.25, self._insert_post),
            (0.10, self._update_post),
            (0.10, self._insert_articles),
        ]

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.dsn, application_name="soak writer"
                ) as conn:
                    while not stopping.is_set():
                        await self._transaction(conn)
                        await pause(stopping, 1 / self.rate)
            except psycopg.Error:
                self.failures += 1
                await pause(stopping, 0.2)

    async def _transaction(self, conn: Conn) -> None:
        weights, actions = zip(*self._actions, strict=True)
        action = self.rng.choices(actions, weights)[0]
        async with conn.transaction():
            done = await action(conn)
        self.transactions += 1
        self.acked.update(done)  # only now: the COMMIT returned

    async def _one(
        self, conn: Conn, table: str, op: str, statement: str, params: tuple[Any, ...]
    ) -> list[Change]:
        row = await (await conn.execute(statement, params)).fetchone()
        return [] if row is None else [(table, op, int(row[0]))]

    async def _insert_article(self, conn: Conn) -> list[Change]:
        title = f"w{self.seed}-{self.transactions}"
        done = await self._one(
            conn,
            ARTICLE,
            "insert",
            "INSERT INTO article (title, category, source) VALUES (%s, %s, %s) RETURNING id",
            (title, self.rng.choice(CATEGORIES), SOURCE),
        )
        self._articles += [c[2] for c in done]
        return done

    async def _insert_articles(self, conn: Conn) -> list[Change]:
        """Several changes in one transaction: they must arrive together, in order."""
        return [c for _ in range(3) for c in await self._insert_article(conn)]

    async def _update_article(self, conn: Conn) -> list[Change]:
        return await self._update_body(conn, ARTICLE, self._articles) or await self._insert_article(conn)

    async def _delete_article(self, conn: Conn) -> list[Change]:
        if not self._articles:
            return await self._insert_article(conn)
        article = self._articles.pop(self.rng.randrange(len(self._articles)))
        return await self._one(
            conn, ARTICLE, "delete", "DELETE FROM article WHERE id = %s RETURNING id", (article,)
        )

    async def _insert_post(self, conn: Conn) -> list[Change]:
        visibility = "private" if self.rng.random() < 0.2 else "public"
        statement = "INSERT INTO post (author_id, body, visibility) VALUES (%s, %s, %s) RETURNING id"
        params = (self.rng.choice(self.authors), f"w{self.seed}-{self.transactions}", visibility)
        done = await self._one(conn, POST, "insert", statement, params)
        self._posts += [c[2] for c in done]
        return done

    async def _update_post(self, conn: Conn) -> list[Change]:
        return await self._update_body(conn, POST, self._posts) or await self._insert_post(conn)

    async def _update_body(self, conn: Conn, table: str, ids: list[int]) -> list[Change]:
        """Edit one of `ids` (article and post both have a body); nothing when there is none."""
        if not ids:
            return []
        statement = f"UPDATE {table} SET body = %s WHERE id = %s RETURNING id"  # table: a constant
        params = (f"edit {self.transactions}", self._pick(ids))
        return await self._one(conn, table, "update", statement, params)

    def _pick(self, ids: list[int]) -> int:
        return ids[self.rng.randrange(len(ids))]


async def write_marker(dsn: str, name: str, author_id: int) -> None:
    """One transaction with an article and a public post that carry the marker `name`,
    retried until the database takes it (it may be restarting)."""
    marker = MARKER + name
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(dsn) as conn, conn.transaction():
                await conn.execute(
                    "INSERT INTO article (title, category, source) VALUES (%s, %s, %s)",
                    (marker, MARKER_CATEGORY, SOURCE),
                )
                await conn.execute("INSERT INTO post (author_id, body) VALUES (%s, %s)", (author_id, marker))
            return
        except psycopg.OperationalError:
            await asyncio.sleep(0.1)  # pacing the retry while the server restarts
