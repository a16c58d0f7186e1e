"""What a subscriber is told of positions reveals nothing it may not see (issue 11, item 7):
`subscribed` and `snapshot` positions move with changes of the subscriber's own groups only,
and a resume from them is exact. Real cdc_listen, daphne and websocket clients."""

from __future__ import annotations

import asyncio

import pytest

from testkit.live_servers import live_system
from testkit.pg import psql
from testkit.wsclient import real_socket
from tests.consumer_env import log_in_new_user

pytestmark = pytest.mark.timeout(120)


async def write(dsn: str, script: str) -> None:
    await asyncio.to_thread(psql, dsn, script)


async def test_a_private_post_moves_no_position_that_others_are_shown(live_db):
    alice, cookie = await log_in_new_user("alice")
    with live_system(live_db) as system:
        async with real_socket(system.port) as anonymous, real_socket(system.port, cookie=cookie) as author:
            [before, _] = await anonymous.subscribe("posts", snapshot=5)
            [articles_before] = await anonymous.subscribe("articles")
            await author.subscribe("posts")
            await write(
                live_db, f"INSERT INTO post (author_id, body, visibility) VALUES ({alice}, 's', 'private')"
            )
            [private] = await author.changes(1)  # relayed: the log and the ticks have moved

        async with real_socket(system.port) as later:
            [subscribed, snapshot] = await later.subscribe("posts", snapshot=5)
            [articles] = await later.subscribe("articles")
            await write(live_db, f"INSERT INTO post (author_id, body) VALUES ({alice}, 'public')")
            [public] = await later.changes(1)
        async with real_socket(system.port) as resumed:
            await resumed.subscribe("posts", after=subscribed["position"])
            [again] = await resumed.changes(1)
        async with real_socket(system.port, cookie=cookie) as own:
            [own_view] = await own.subscribe("posts")

    assert subscribed["position"] == snapshot["position"] == before["position"]
    assert articles["position"] == articles_before["position"]
    assert private["position"] != before["position"]  # the author is shown her own change
    assert own_view["position"] == public["position"]
    assert again["id"] == public["id"]  # the shown position resumes exactly: nothing skipped
