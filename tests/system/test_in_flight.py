"""Transactions in flight across a snapshot, a replay and a repair, on purpose.

Each round opens three writers (an insert, an update, a delete) on connections the test
holds, and while they are open a client takes a snapshot, another resumes (a replay), and a
third has its subscriptions repaired (a transport gap). The writers then commit in one of the
six orders, each commit relayed before the next. Every client's record must match the log:
the changes after its starting point, in the order the relay handed them on, each once.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import psycopg
import pytest

from cdc.routing import partition_group
from consumers.reads import APPLICATION_NAME
from pglayer.layer import PostgresChannelLayer
from testkit.live_servers import live_system
from testkit.probes import poll
from testkit.wsclient import JsonSocket, real_socket

pytestmark = pytest.mark.timeout(240)

CATEGORY = "inflight"


def execute(dsn: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else []


def log_after(dsn: str, position: str) -> list[int]:
    """The article changes after `position`, in the order the relay handed them on."""
    tick, event_id = map(int, position.split(":"))
    rows = execute(
        dsn,
        """SELECT e.id FROM cdc.tick AS t, unnest(t.event_ids) WITH ORDINALITY AS u (id, n)
           JOIN cdc.event AS e ON e.id = u.id
           WHERE e.table_name = 'public.article' AND (t.id, u.id) > (%s, %s) ORDER BY t.id, u.n""",
        (tick, event_id),
    )
    return [r[0] for r in rows]


def no_consumer_transaction_open(dsn: str) -> bool:
    rows = execute(
        dsn,
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND state <> 'idle'",
        (APPLICATION_NAME,),
    )
    return rows[0][0] == 0


def assert_in_progress_lists(dsn: str, writers: list[psycopg.Connection[Any]]) -> None:
    """Make the writers appear in the in-progress list of the snapshots taken from now on.
    A snapshot's xmax is one past the newest *completed* transaction: without a later commit,
    open writers lie at or past xmax and the list (what `snapshot_sees` must read) is empty."""
    execute(dsn, "SELECT pg_current_xact_id()")  # a transaction that takes an id and commits
    [[snapshot]] = execute(dsn, "SELECT pg_current_snapshot()::text")
    xmax, xip = int(snapshot.split(":")[1]), snapshot.split(":")[2].split(",")
    for writer in writers:
        txid = writer.execute("SELECT pg_current_xact_id()::text").fetchone()
        assert txid is not None
        assert int(txid[0]) < xmax
        assert txid[0] in xip


async def until_title(client: JsonSocket, title: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while not out or (out[-1]["row"] or {}).get("title") != title:
        out += await client.changes(1)
    return out


def apply(rows: dict[int, str], changes: list[dict[str, Any]]) -> dict[int, str]:
    """A client's view: snapshot rows (id: title) with the changes applied in order."""
    out = dict(rows)
    for change in changes:
        if change["op"] == "delete":
            out.pop(change["old"]["id"])
        else:
            out[change["row"]["id"]] = change["row"]["title"]
    return out


async def test_snapshot_replay_and_repair_with_writers_in_flight_in_every_commit_order(fresh_db):
    peer = PostgresChannelLayer(conninfo=fresh_db)
    insert = "INSERT INTO article (title, category) VALUES (%s, %s) RETURNING id"
    with live_system(fresh_db) as system:
        async with real_socket(system.port) as everything, real_socket(system.port) as repaired:
            await everything.subscribe("articles")
            await repaired.subscribe("articles", filters={"category": CATEGORY})
            for round_, order in enumerate(itertools.permutations(range(3))):
                [[x]] = execute(fresh_db, insert, (f"x{round_}", CATEGORY))
                [[y]] = execute(fresh_db, insert, (f"y{round_}", CATEGORY))
                base = (await until_title(everything, f"y{round_}"))[-1]["position"]
                await until_title(repaired, f"y{round_}")

                writers = [psycopg.connect(fresh_db) for _ in range(3)]
                try:
                    writers[0].execute(insert, (f"a{round_}", CATEGORY))
                    writers[1].execute("UPDATE article SET title = %s WHERE id = %s", (f"x{round_}'", x))
                    writers[2].execute("DELETE FROM article WHERE id = %s", (y,))
                    assert_in_progress_lists(fresh_db, writers)

                    async with real_socket(system.port) as snapshotted, real_socket(system.port) as resumed:
                        _, snapshot = await snapshotted.subscribe("articles", snapshot=100)
                        await resumed.subscribe("articles", after=base)
                        seen_lines = len(system.web.lines)
                        await peer.group_send(
                            partition_group("articles", "category", CATEGORY),
                            {"type": "transport.gap", "reason": f"round {round_}"},
                        )
                        system.web.wait_for(rf"transport gap \(round {round_}\)", after=seen_lines)
                        await asyncio.to_thread(poll, lambda: no_consumer_transaction_open(fresh_db), bool)

                        committed = []
                        for i in order:
                            writers[i].commit()
                            committed += await everything.changes(1)  # relayed before the next commit
                        execute(fresh_db, insert, (f"sentinel{round_}", CATEGORY))
                        records = {
                            "everything": committed + await until_title(everything, f"sentinel{round_}"),
                            "repaired": await until_title(repaired, f"sentinel{round_}"),
                            "snapshotted": await until_title(snapshotted, f"sentinel{round_}"),
                            "resumed": await until_title(resumed, f"sentinel{round_}"),
                        }
                        for client in (everything, repaired, snapshotted, resumed):
                            assert await client.answers_ping()
                finally:
                    for writer in writers:
                        writer.close()

                expected = log_after(fresh_db, base)
                assert len(expected) == 4
                for name, record in records.items():
                    assert [m["id"] for m in record] == expected, (name, order)
                # The snapshot reflects none of the writers in flight, and with the changes
                # after it gives the table as it now is.
                rows = {r["id"]: r["title"] for r in snapshot["rows"]}
                assert rows[x] == f"x{round_}"
                assert y in rows
                now = dict(execute(fresh_db, "SELECT id, title FROM article"))
                assert apply(rows, records["snapshotted"]) == now, order
    await peer.flush()
