"""The relay plans `read_changes` once (cdc/log.py plan_reads_once): that one plan, made
without the parameters' values, must still search the indexes for the changes a read
returns, however long the log, and with transactions open across the snapshot."""

from __future__ import annotations

import re
from typing import Any

import psycopg
from psycopg import sql

from cdc.log import current_cursor, plan_reads_once, read_batch
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
    execute = sql.SQL("EXECUTE read_changes ({}::pg_snapshot, NULL, 0, 501)").format(cursor.since)
    cur = await aconn.execute(sql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) {}").format(execute))
    plan = (await cur.fetchone())[0][0]["Plan"]
    cur = await aconn.execute(sql.SQL("EXPLAIN {}").format(execute))
    generic = "\n".join(line for (line,) in await cur.fetchall())

    assert "$1" in generic  # planned without the values: the plan every read of the relay runs
    assert rows_looked_at(plan, "event") <= 10
    titles = [c.row["title"] for c in (await read_batch(aconn, cursor)).changes]
    assert titles == ["open across the snapshot", "new"]
