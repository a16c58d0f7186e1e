"""Retention drops old ticks and their changes, never one a kept tick still needs."""

from __future__ import annotations

import psycopg

from cdc import retention, ticks
from cdc.log import read_batch


async def relay_one_tick(conn) -> int:
    """What the leader does for one batch, minus the channel layer: store, mark relayed."""
    tick = (await ticks.tick_range(conn))[1] + 1
    batch = await read_batch(conn, await ticks.next_cursor(conn))
    await ticks.store_tick(conn, tick, batch, groups={})
    await ticks.mark_relayed(conn, tick)
    return tick


async def titles_after(conn, position: ticks.Position) -> list[str]:
    newest = (await ticks.tick_range(conn))[1]
    return [c.row["title"] for c in await ticks.changes_after(conn, position, up_to_tick=newest)]


async def test_prune_keeps_every_change_of_kept_ticks(aconn, fresh_db):
    with psycopg.connect(fresh_db) as slow:
        slow.execute("INSERT INTO article (title) VALUES ('captured early, committed late')")
        await aconn.execute("INSERT INTO article (title) VALUES ('old 1')")
        await relay_one_tick(aconn)
        await aconn.execute("INSERT INTO article (title) VALUES ('old 2')")
        old_tick = await relay_one_tick(aconn)
        slow.commit()
    await aconn.execute("INSERT INTO article (title) VALUES ('recent')")
    recent_tick = await relay_one_tick(aconn)
    await aconn.execute(
        "UPDATE cdc.event SET captured_at = now() - interval '2 days'"
    )  # every event looks old: only the ticks decide
    await aconn.execute(
        "UPDATE cdc.tick SET created_at = now() - interval '2 days' WHERE id <= %s", (old_tick,)
    )

    pruned = await retention.prune(aconn, retention_seconds=24 * 3600)

    assert pruned == {"ticks": old_tick + 1, "events": 2}  # ticks 0..old_tick; 'old 1', 'old 2'
    oldest, newest = await ticks.tick_range(aconn)
    assert (oldest, newest) == (recent_tick, recent_tick)
    assert sorted(await titles_after(aconn, ticks.Position(recent_tick, 0))) == [
        "captured early, committed late",
        "recent",
    ]


async def test_prune_never_removes_the_relay_position_or_unrelayed_ticks(aconn):
    await aconn.execute("INSERT INTO article (title) VALUES ('a')")
    tick = await relay_one_tick(aconn)
    await aconn.execute("UPDATE cdc.tick SET created_at = now() - interval '30 days'")

    await retention.prune(aconn, retention_seconds=1)

    assert await ticks.tick_range(aconn) == (tick, tick)
    assert await titles_after(aconn, ticks.Position(tick, 0)) == ["a"]


async def test_a_kept_tick_resumes_exactly_after_an_event_within_it(aconn):
    await aconn.execute("INSERT INTO article (title) SELECT 't' || i FROM generate_series(1, 5) i")
    tick = await relay_one_tick(aconn)
    third = (await ticks.changes_after(aconn, ticks.Position(tick, 0), up_to_tick=tick))[2]

    assert await titles_after(aconn, ticks.Position(tick, third.id)) == ["t4", "t5"]
