"""The reading primitive: every committed change exactly once, in commit-safe batches."""

from __future__ import annotations

import random

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdc.log import Cursor, current_cursor, read_batch
from cdc.sql import query
from testkit.plans import rows_looked_at


async def read_all(conn, cursor: Cursor, limit: int = 5000) -> tuple[list[str], Cursor]:
    """Read until the log has nothing more for now; return the titles and the next cursor."""
    titles: list[str] = []
    while True:
        batch = await read_batch(conn, cursor, limit=limit)
        titles += [c.row["title"] for c in batch.changes]
        if batch.complete and cursor.until is None:  # caught up with "now", not a pinned delta
            return titles, batch.next_cursor()
        cursor = batch.next_cursor()


async def test_reads_changes_committed_since_the_cursor(aconn, fresh_db):
    cursor = await current_cursor(aconn)
    await aconn.execute("INSERT INTO article (title) VALUES ('a'), ('b')")

    batch = await read_batch(aconn, cursor)
    assert [c.row["title"] for c in batch.changes] == ["a", "b"]
    assert batch.complete
    assert [c.op for c in batch.changes] == ["insert", "insert"]

    again = await read_batch(aconn, batch.next_cursor())
    assert again.changes == []


async def test_out_of_order_commits_both_arrive_exactly_once(aconn, fresh_db):
    cursor = await current_cursor(aconn)
    with psycopg.connect(fresh_db) as first, psycopg.connect(fresh_db) as second:
        first.execute("INSERT INTO article (title) VALUES ('inserted first, committed last')")
        second.execute("INSERT INTO article (title) VALUES ('inserted second, committed first')")
        second.commit()

        seen, cursor = await read_all(aconn, cursor)
        assert seen == ["inserted second, committed first"]

        first.commit()

    later, cursor = await read_all(aconn, cursor)
    assert later == ["inserted first, committed last"]
    assert (await read_all(aconn, cursor))[0] == []


async def test_long_open_transaction_does_not_hold_back_later_commits(aconn, fresh_db):
    cursor = await current_cursor(aconn)
    with psycopg.connect(fresh_db) as long_tx:
        long_tx.execute("INSERT INTO article (title) VALUES ('slow')")  # open from here on
        for i in range(3):
            await aconn.execute("INSERT INTO article (title) VALUES (%s)", (f"fast {i}",))
            seen, cursor = await read_all(aconn, cursor)
            assert seen == [f"fast {i}"]
        long_tx.commit()

    assert (await read_all(aconn, cursor))[0] == ["slow"]


async def test_a_large_delta_is_read_in_pages_without_loss(aconn, fresh_db):
    cursor = await current_cursor(aconn)
    await aconn.execute("INSERT INTO article (title) SELECT 'r' || i FROM generate_series(1, 1050) i")
    with psycopg.connect(fresh_db) as late:
        late.execute("INSERT INTO article (title) VALUES ('between pages')")
        first = await read_batch(aconn, cursor, limit=500)
        late.commit()  # commits after the delta's upper snapshot: belongs to the next delta

    assert not first.complete
    titles, cursor = await read_all(aconn, first.next_cursor(), limit=500)
    everything = [c.row["title"] for c in first.changes] + titles
    assert everything[:1050] == [f"r{i}" for i in range(1, 1051)]
    assert everything[1050:] == ["between pages"]


async def test_empty_log_still_returns_a_snapshot(aconn):
    cursor = await current_cursor(aconn)
    batch = await read_batch(aconn, cursor)
    assert batch.changes == []
    assert batch.complete
    assert batch.snapshot.count(":") == 2  # xmin:xmax:xip-list


# A randomised schedule: several writer transactions insert, then commit or roll back in a
# random order, with reads interleaved anywhere. Whatever the schedule, the reads together
# return exactly the committed rows, each once, and (read without paging) in commit order.
#
# Biased to the schedules that matter: an open transaction is in a snapshot's in-progress
# list (the branch of read_changes that finds it late) only when a later transaction has
# completed before that snapshot, since xmax is one past the newest *completed* one. So
# "bump" commits an unrelated transaction, and commits favour the newest open writer.
schedules = st.lists(
    st.sampled_from(
        ["begin", "begin", "commit", "commit", "rollback", "read", "read", "read", "bump", "bump"]
    ),
    min_size=8,
    max_size=40,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schedule=schedules, seed=st.integers(0, 2**16), paged=st.booleans())
async def test_any_interleaving_of_commits_rollbacks_and_reads_is_exact(
    aconn, fresh_db, schedule, seed, paged
):
    rng = random.Random(seed)
    await aconn.execute("TRUNCATE cdc.event")
    cursor = await current_cursor(aconn)
    open_txs: list[tuple[psycopg.Connection, str]] = []
    committed: list[str] = []  # in commit order
    reads_before_commit: dict[str, int] = {}
    seen: list[str] = []
    reads = 0
    try:
        for step, action in enumerate(schedule):
            if action == "begin":
                conn = psycopg.connect(fresh_db)
                title = f"t{step}"
                conn.execute("INSERT INTO article (title) VALUES (%s)", (title,))
                open_txs.append((conn, title))
            elif action in ("commit", "rollback") and open_txs:
                newest = rng.random() < 0.5
                conn, title = open_txs.pop(-1 if newest else rng.randrange(len(open_txs)))
                if action == "commit":
                    conn.commit()
                    committed.append(title)
                    reads_before_commit[title] = reads
                conn.close()  # closing without commit rolls back
            elif action == "bump":
                await aconn.execute("SELECT pg_current_xact_id()")  # takes an id and commits
            elif action == "read":
                batch = await read_batch(aconn, cursor, limit=rng.randint(1, 3) if paged else 1000)
                seen += [c.row["title"] for c in batch.changes]
                cursor = batch.next_cursor()
                reads += 1
    finally:
        for conn, _ in open_txs:
            conn.close()

    rest, _ = await read_all(aconn, cursor, limit=2 if paged else 1000)
    seen += rest
    assert sorted(seen) == sorted(committed)
    assert len(seen) == len(set(seen))
    if not paged:  # a commit before a read comes before every commit after that read
        for earlier in committed:
            for later in committed:
                if reads_before_commit[earlier] < reads_before_commit[later]:
                    assert seen.index(earlier) < seen.index(later), (earlier, later)


async def test_a_read_touches_the_new_changes_only_however_long_the_log(aconn):
    """A read looks at the changes it returns (and the few of transactions that were open),
    never at the whole log: otherwise every read slows down as the log grows."""
    cursor = await current_cursor(aconn)
    await aconn.execute("INSERT INTO article (title) SELECT 'old ' || i FROM generate_series(1, 20000) AS i")
    _, cursor = await read_all(aconn, cursor)
    await aconn.execute("ANALYZE cdc.event")
    await aconn.execute("INSERT INTO article (title) VALUES ('new')")

    params = {"since": cursor.since, "until": None, "after_id": 0, "limit": 501}
    explain = f"EXPLAIN (ANALYZE, FORMAT JSON) {query('read_changes')}"
    plan = (await (await aconn.execute(explain, params)).fetchone())[0][0]["Plan"]

    assert rows_looked_at(plan, "event") <= 10
    assert [c.row["title"] for c in (await read_batch(aconn, cursor)).changes] == ["new"]
