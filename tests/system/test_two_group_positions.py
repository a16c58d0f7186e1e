"""A logged-in author's unfiltered posts subscription takes changes from two groups (the
public posts and the author's own), so within one tick they may arrive out of id order.
Resuming from *every* position such a subscription hands out must skip nothing; it may
repeat changes of that position's tick only (clients drop repeats by id, docs/protocol.md).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from testkit.live_servers import live_system
from testkit.pg import psql
from testkit.wsclient import JsonSocket, real_socket
from tests.consumer_env import log_in_new_user

pytestmark = pytest.mark.timeout(180)


def transaction(alice: int, bob: int, n: int) -> str:
    """Alice's and Bob's posts in one tick: public ones reach Alice through the public
    group, hers through her own, so her record of the tick is not in id order."""
    return f"""BEGIN;
        INSERT INTO post (author_id, body, visibility) VALUES ({alice}, 'a{n} private', 'private');
        INSERT INTO post (author_id, body) VALUES ({bob}, 'b{n}');
        INSERT INTO post (author_id, body, visibility) VALUES ({bob}, 'b{n} private', 'private');
        INSERT INTO post (author_id, body) VALUES ({alice}, 'a{n}');
        INSERT INTO post (author_id, body) VALUES ({bob}, 'b{n} again');
        UPDATE post SET visibility = 'private' WHERE body = 'a{n}';
        COMMIT;
    """


async def until_body(client: JsonSocket, body: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while not out or (out[-1]["row"] or {}).get("body") != body:
        out += await client.changes(1)
    return out


@pytest.mark.usefixtures("live_db")  # Django on the test database: it makes the sessions
async def test_a_resume_from_every_position_of_a_two_group_subscription_skips_nothing(fresh_db):
    alice, cookie = await log_in_new_user("alice")
    bob, _ = await log_in_new_user("bob")
    with live_system(fresh_db) as system:
        async with real_socket(system.port, cookie) as client:
            [subscribed] = await client.subscribe("posts")
            script = "".join(transaction(alice, bob, n) for n in range(3))
            script += f"INSERT INTO post (author_id, body) VALUES ({bob}, 'sentinel');"
            await asyncio.to_thread(psql, fresh_db, script)
            record = await until_body(client, "sentinel")
        ids = [m["id"] for m in record]
        assert ids != sorted(ids), "no tick arrived out of id order: this test tests nothing"
        assert not {"b0 private", "b1 private", "b2 private"} & {(m["row"] or {}).get("body") for m in record}

        starts = [subscribed["position"]] + [m["position"] for m in record[:-1]]
        for i, start in enumerate(starts):
            async with real_socket(system.port, cookie) as resumer:
                await resumer.subscribe("posts", after=start)
                replay = [m["id"] for m in await until_body(resumer, "sentinel")]
            missed = ids[i:]  # what a client that got ids[:i] still lacks
            assert set(missed) <= set(replay), f"resuming from {start} skipped {set(missed) - set(replay)}"
            assert len(replay) == len(set(replay)), f"a replay from {start} repeats itself"
            tick = int(start.split(":")[0])
            repeated = {m["id"] for m in record[:i] if int(m["position"].split(":")[0]) == tick}
            assert set(replay) - set(missed) <= repeated, f"a replay from {start} goes back past its tick"
