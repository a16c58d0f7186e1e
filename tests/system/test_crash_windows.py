"""The relay's crash windows, hit on purpose: a real cdc_listen freezes at an exact step
(CDC_FAULT, cdc/relay.py), is killed with SIGKILL there, and a new one takes over. Then every
subscriber's record is compared with the log: nothing lost, nothing twice, in commit order.

The relay stores a tick, hands it on, then marks it relayed. A crash before the mark makes
the next leader resend the tick (the consumers drop what they already sent); a crash after it
resends nothing. With a small `--batch-size`, one transaction's changes span several ticks, so
a crash also lands in the middle of a delta (an incomplete tick: `ticks.next_cursor`).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from testkit.live_servers import FAST, LiveSystem, live_system
from testkit.pg import psql
from testkit.processes import Process, cdc_listen
from testkit.wsclient import JsonSocket, real_socket

pytestmark = pytest.mark.timeout(120)

ROWS = 7  # in one transaction: with --batch-size 3, ticks of 3 (incomplete), 3 (incomplete), 1
SMALL_BATCH = "3"
FROZEN = r"CDC_FAULT: stopped dead"


def relay_state(dsn: str) -> tuple[int, int]:
    """(the relay's recorded position, the newest stored tick)."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT relayed_tick, (SELECT max(id) FROM cdc.tick) FROM cdc.relay").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def logged_article_ids(dsn: str) -> list[int]:
    """Every article change in the log, in commit order (the writers here commit one by one),
    after checking that the ticks hold each of them exactly once."""
    with psycopg.connect(dsn) as conn:
        logged = [r[0] for r in conn.execute("SELECT id FROM cdc.event ORDER BY id")]
        in_ticks = [r[0] for r in conn.execute("SELECT unnest(event_ids) FROM cdc.tick ORDER BY id")]
    assert in_ticks == logged, "the ticks lose or repeat changes of the log"
    return logged


def tick_sizes(dsn: str) -> list[int]:
    with psycopg.connect(dsn) as conn:
        return [
            r[0] for r in conn.execute("SELECT cardinality(event_ids) FROM cdc.tick WHERE id > 0 ORDER BY id")
        ]


@pytest.fixture
def group_member(fresh_db: str) -> Iterator[Process]:
    """The channel layer's own record: a member of `cdc.articles` printing what arrives."""
    proc = Process(
        [sys.executable, "tests/group_member.py", "cdc.articles"], {"DATABASE_URL": fresh_db}, "member"
    )
    try:
        proc.wait_for("^ready$")
        yield proc
    finally:
        proc.stop()


def layer_record(member: Process) -> Counter[int]:
    return Counter(json.loads(line)["id"] for line in member.lines if line.startswith("{"))


async def changes_until(client: JsonSocket, title: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while not out or (out[-1]["row"] or {}).get("title") != title:
        [change] = await client.changes(1)
        out.append(change)
    return out


def restart_listener(system: LiveSystem, *args: str, **env: str) -> Process:
    """SIGKILL the frozen leader; a new cdc_listen takes over (and is stopped with the system)."""
    system.listener.kill()
    system.listener = cdc_listen(system.dsn, *FAST, *args, **env)
    system.listener.wait_for("leader gained")
    return system.listener


async def write(dsn: str, script: str) -> None:
    await asyncio.to_thread(psql, dsn, script)


def one_transaction(rows: int, prefix: str) -> str:
    values = ", ".join(f"('{prefix} {i}')" for i in range(rows))
    return f"INSERT INTO article (title) VALUES {values};"


CASES = [
    # (step, --batch-size or None, whether the next leader must resend the frozen tick)
    ("after_store", None, True),
    ("after_hand_on", None, True),
    ("after_mark", None, False),
    ("after_store", SMALL_BATCH, True),
    ("after_hand_on", SMALL_BATCH, True),
    ("after_mark", SMALL_BATCH, False),
]


@pytest.mark.parametrize(("step", "batch_size", "resends"), CASES)
async def test_a_crash_at_each_step_of_the_relay_loses_nothing_and_repeats_nothing(
    fresh_db, group_member, step, batch_size, resends
):
    batch = ("--batch-size", batch_size) if batch_size else ()
    with live_system(fresh_db, *batch, CDC_FAULT=step) as system:
        async with real_socket(system.port) as live:
            [start] = await live.subscribe("articles")

            await write(fresh_db, one_transaction(ROWS, "burst"))
            system.listener.wait_for(FROZEN)
            relayed, frozen_tick = relay_state(fresh_db)
            assert frozen_tick == 1
            # The design's one rule: the position moves only after the tick was handed on.
            assert relayed == (1 if step == "after_mark" else 0)
            first_tick = ROWS if batch_size is None else int(batch_size)
            if step != "after_store":  # handed on before the freeze: the client has it
                assert len(await live.changes(first_tick)) == first_tick

            await write(fresh_db, "INSERT INTO article (title) VALUES ('while frozen')")
            restart_listener(system, *batch)
            record = await changes_until(live, "while frozen")  # its own tick, then:
            await write(fresh_db, "INSERT INTO article (title) VALUES ('sentinel')")
            record += await changes_until(live, "sentinel")
            assert await live.answers_ping()
        async with real_socket(system.port) as resumer:  # from before the crash: a replay
            await resumer.subscribe("articles", after=start["position"])
            replay = await changes_until(resumer, "sentinel")
            assert await resumer.answers_ping()
        group_member.wait_for('"title": "sentinel"')

    logged = logged_article_ids(fresh_db)
    if step == "after_store":
        assert [m["id"] for m in record] == logged
    else:
        assert [m["id"] for m in record] == logged[first_tick:]
    assert [m["id"] for m in replay] == logged, "a resume across the crash differs from the log"
    if batch_size is not None:
        assert tick_sizes(fresh_db) == [3, 3, 1, 1, 1], "the delta was not read in pages"

    resent = "resent tick 1 " in system.listener.output
    assert resent == resends, system.listener.output
    # What went through the channel layer: the frozen tick twice exactly when it was handed
    # on before the freeze and resent after (the consumers dropped the repeat), else once.
    layer = layer_record(group_member)
    twice = {i for i, n in layer.items() if n == 2}
    assert set(layer) == set(logged)
    assert twice == (set(logged[:first_tick]) if step == "after_hand_on" else set())


async def test_a_crash_during_a_resend_is_resent_again(fresh_db, group_member):
    """The second leader freezes after resending but before marking: the third resends too."""
    with live_system(fresh_db, CDC_FAULT="after_store") as system:
        async with real_socket(system.port) as live:
            await live.subscribe("articles")
            await write(fresh_db, one_transaction(2, "burst"))
            system.listener.wait_for(FROZEN)
            second = restart_listener(system, CDC_FAULT="after_resend")
            assert "after_resend of tick 1" in second.wait_for(FROZEN)
            assert [m["row"]["title"] for m in await live.changes(2)] == ["burst 0", "burst 1"]
            assert relay_state(fresh_db) == (0, 1)
            third = restart_listener(system)
            third.wait_for("resent tick 1 ")
            await write(fresh_db, "INSERT INTO article (title) VALUES ('sentinel')")
            record = await changes_until(live, "sentinel")
        group_member.wait_for('"title": "sentinel"')

    assert [m["row"]["title"] for m in record] == ["sentinel"], "the repeat reached the client"
    logged = logged_article_ids(fresh_db)
    assert layer_record(group_member) == Counter({logged[0]: 2, logged[1]: 2, logged[2]: 1})
