"""The relay plans `read_changes` once (cdc/log.py plan_reads_once): that one plan, made
without the parameters' values, must still search the indexes for the changes a read
returns, however long the log, and with transactions open across the snapshot. The
connection it plans on turns sequential scans off, and must not thereby price any statement
of the relay's into a JIT compile."""

from __future__ import annotations

import re
from typing import Any

import psycopg
from psycopg import sql

from cdc.log import Cursor, current_cursor, plan_reads_once, read_batch
from cdc.sql import query
from testkit.plans import rows_looked_at

PARAMETERS = {"since": "$1", "until": "$2", "after_id": "$3", "limit": "$4"}
PREPARE = "PREPARE read_changes (pg_snapshot, pg_snapshot, bigint, bigint) AS {}"


def positional(text: str) -> str:
    """read_changes with $1..$4 for its named parameters, as a PREPARE takes it."""
    return re.sub(r"%\((\w+)\)s", lambda m: PARAMETERS[m[1]], text)


async def test_the_plan_made_once_reads_only_the_new_changes_of_a_long_log(
    aconn: psycopg.AsyncConnection[Any], fresh_db: str
) -> None:
    cursor = await current_cursor(aconn)
    await aconn.execute("INSERT INTO article (title) SELECT 'old ' || i FROM generate_series(1, 20000) AS i")
    for i in range(50):  # single-row transactions too, as most writers' are
        await aconn.execute("INSERT INTO article (title) VALUES (%s)", (f"single {i}",))
    async with await psycopg.AsyncConnection.connect(fresh_db) as open_writer:
        await open_writer.execute("INSERT INTO article (title) VALUES ('open across the snapshot')")
        cursor = (await read_batch(aconn, cursor, limit=100_000)).next_cursor()
        await open_writer.commit()
    await aconn.execute("ANALYZE cdc.event")
    await aconn.execute("INSERT INTO article (title) VALUES ('new')")

    await plan_reads_once(aconn)
    await aconn.execute(PREPARE.format(positional(query("read_changes"))))
    plan = await explain_read(aconn, cursor)

    assert rows_looked_at(plan, "event") <= 10
    titles = [c.row["title"] for c in (await read_batch(aconn, cursor)).changes]
    assert titles == ["open across the snapshot", "new"]


async def test_the_plan_made_while_the_log_was_small_still_searches_it_once_it_is_long(
    aconn: psycopg.AsyncConnection[Any], fresh_db: str
) -> None:
    # A new install, or a log that retention just emptied: the plan is made with the
    # statistics of a few rows, and the relay keeps it while the log grows (no ANALYZE
    # comes between: autovacuum is off for the log, as it may be late on a busy server).
    await aconn.execute("ALTER TABLE cdc.event SET (autovacuum_enabled = off)")
    await aconn.execute("INSERT INTO article (title) VALUES ('a first change')")
    await aconn.execute("ANALYZE cdc.event")
    await plan_reads_once(aconn)
    await aconn.execute(PREPARE.format(positional(query("read_changes"))))
    cursor = await current_cursor(aconn)
    await explain_read(aconn, cursor)  # planned now, for good

    await aconn.execute("INSERT INTO article (title) SELECT 'old ' || i FROM generate_series(1, 20000) AS i")
    async with await psycopg.AsyncConnection.connect(fresh_db) as open_writer:
        await open_writer.execute("INSERT INTO article (title) VALUES ('open across the snapshot')")
        cursor = (await read_batch(aconn, cursor, limit=100_000)).next_cursor()
        await open_writer.commit()
    await aconn.execute("INSERT INTO article (title) VALUES ('new')")
    plan = await explain_read(aconn, cursor)

    assert rows_looked_at(plan, "event") <= 10
    titles = [c.row["title"] for c in (await read_batch(aconn, cursor)).changes]
    assert titles == ["open across the snapshot", "new"]


async def explain_read(aconn: psycopg.AsyncConnection[Any], cursor: Cursor) -> dict[str, Any]:
    """The plan of the prepared read from `cursor`, as it ran; checks that it is the plan
    made without the values, the one every read of the relay runs."""
    execute = sql.SQL("EXECUTE read_changes ({}::pg_snapshot, NULL, 0, 501)").format(cursor.since)
    cur = await aconn.execute(sql.SQL("EXPLAIN {}").format(execute))
    generic = "\n".join(line for (line,) in await cur.fetchall())
    assert "$1" in generic
    cur = await aconn.execute(sql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) {}").format(execute))
    return (await cur.fetchone())[0][0]["Plan"]


# Every statement the relay runs on its reading connection, with parameters like its own.
RELAY_STATEMENTS: dict[str, dict[str, Any]] = {
    "current_snapshot": {},
    "read_changes": {"since": "100:100:", "until": None, "after_id": 0, "limit": 5001},
    "last_tick": {},
    "tick_range": {},
    "relayed_tick": {},
    "insert_tick": {
        "id": 1,
        "since": "100:100:",
        "snapshot": "101:101:",
        "complete": True,
        "event_ids": [1, 2],
        "groups": ["cdc.articles"],
        "group_event_ids": [2],
    },
    "mark_relayed": {"tick": 0},
    "tick_changes": {"tick": 0, "event_id": 0, "max_tick": 1, "tables": None, "limit": 2**31},
    "try_lead": {"key": 1},
    "heartbeat": {"name": "h:1", "role": "leader", "last_read_at": None, "last_tick": 0, "relayed_total": 0},
    "forget_listener": {"name": "h:1"},
    "forget_dead_listeners": {"seconds": 60},
    "prune_ticks": {"retention": 3600, "limit": 1000},
    "prune_events": {"limit": 1000},
}


async def test_a_server_that_can_compile_queries_compiles_none_of_the_relays(
    aconn: psycopg.AsyncConnection[Any],
) -> None:
    # With sequential scans off, the one plan a one-row table has is priced above every
    # threshold, JIT compilation's too: on a server built with JIT (most packaged ones, not
    # the embedded one) each mark_relayed then spent 30 ms compiling, and the relay, which
    # marks every tick, fell behind at 30 ticks a second. The project's connections turn JIT
    # off (core/database.py), but a DATABASE_URL's options may turn it back on, as here.
    await aconn.execute("SET jit = on")
    await plan_reads_once(aconn)
    cur = await aconn.execute("SELECT current_setting('jit')::bool, current_setting('jit_above_cost')::real")
    jit, above = await cur.fetchone() or (True, 0.0)
    compiled = {}
    for name, params in RELAY_STATEMENTS.items():
        cur = await aconn.execute(sql.SQL("EXPLAIN (FORMAT JSON) ") + sql.SQL(query(name)), params)
        cost = (await cur.fetchone() or [[{}]])[0][0]["Plan"]["Total Cost"]
        if jit and above >= 0 and cost > above:  # what a server that can compile would compile
            compiled[name] = cost
    assert compiled == {}
