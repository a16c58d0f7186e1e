"""Who sees which posts: a private post reaches its author's logged-in sockets only, live,
in a snapshot and in a replay. "Never" is checked with a later public post (a sentinel):
changes arrive in commit order, so a socket whose next change is the sentinel did not get
the private one."""

from __future__ import annotations

import pytest

from tests.consumer_env import connected, insert_post, log_in_new_user

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("live_db", "layer")]


def bodies(rows_or_changes: list[dict]) -> list[str]:
    return [(item.get("row") or item)["body"] for item in rows_or_changes]


@pytest.mark.usefixtures("relay")
async def test_a_private_post_reaches_its_author_only(aconn):
    alice, alice_cookie = await log_in_new_user("alice")
    bob, bob_cookie = await log_in_new_user("bob")
    async with connected(alice_cookie) as mine, connected(bob_cookie) as other, connected() as anonymous:
        for client in (mine, other, anonymous):
            await client.subscribe("posts")
        await insert_post(aconn, alice, "alice's secret", "private")
        await insert_post(aconn, alice, "alice's public")
        await insert_post(aconn, bob, "bob's")
        # Alice's own posts and everyone's public ones come from two groups: in commit
        # order across ticks, possibly not within one (docs/protocol.md, "Guarantees").
        assert sorted(bodies(await mine.changes(3))) == ["alice's public", "alice's secret", "bob's"]
        assert bodies(await other.changes(2)) == ["alice's public", "bob's"]
        assert bodies(await anonymous.changes(2)) == ["alice's public", "bob's"]
        await insert_post(aconn, bob, "sentinel")
        for client in (mine, other, anonymous):  # and nothing twice before it
            assert bodies(await client.changes(1)) == ["sentinel"]


@pytest.mark.usefixtures("relay")
async def test_a_post_turning_private_leaves_public_view_without_its_body(aconn):
    alice, alice_cookie = await log_in_new_user("alice")
    post_id = await insert_post(aconn, alice, "soon hidden")
    async with connected(alice_cookie) as mine, connected() as anonymous:
        await mine.subscribe("posts", snapshot=5)
        await anonymous.subscribe("posts", snapshot=5)
        await aconn.execute("UPDATE post SET visibility = 'private' WHERE id = %s", (post_id,))
        [own] = await mine.changes(1)
        [public] = await anonymous.changes(1)
    assert (own["op"], own["row"]["visibility"], own["row"]["body"]) == ("update", "private", "soon hidden")
    assert (public["op"], public["row"], public["old"]) == (
        "delete",
        None,
        {"id": post_id, "author_id": alice, "visibility": "public"},  # the keys, as the public saw them
    )


async def test_snapshots_hold_private_posts_for_their_author_only(aconn):
    alice, alice_cookie = await log_in_new_user("alice")
    _, bob_cookie = await log_in_new_user("bob")
    await insert_post(aconn, alice, "public one")
    await insert_post(aconn, alice, "private one", "private")
    async with connected(alice_cookie) as mine, connected(bob_cookie) as other, connected() as anonymous:
        _, own = await mine.subscribe("posts", snapshot=10)
        _, others = await other.subscribe("posts", snapshot=10)
        _, anonymous_view = await anonymous.subscribe("posts", filters={"author_id": alice}, snapshot=10)
    assert bodies(own["rows"]) == ["private one", "public one"]
    assert bodies(others["rows"]) == ["public one"]
    assert bodies(anonymous_view["rows"]) == ["public one"]


@pytest.mark.usefixtures("relay")
async def test_replays_hold_private_posts_for_their_author_only(aconn):
    alice, alice_cookie = await log_in_new_user("alice")
    _, bob_cookie = await log_in_new_user("bob")
    async with connected() as watcher:
        subscribed, _ = await watcher.subscribe("posts", snapshot=0)
        await insert_post(aconn, alice, "private while away", "private")
        await insert_post(aconn, alice, "public while away")
        await watcher.changes(1)  # the public post was relayed, so the private one was too
    start = subscribed["position"]
    async with connected(alice_cookie) as mine, connected(bob_cookie) as other, connected() as anonymous:
        await mine.subscribe("posts", after=start)
        await other.subscribe("posts", after=start)
        await anonymous.subscribe("posts", filters={"author_id": alice}, after=start)
        assert bodies(await mine.changes(2)) == ["private while away", "public while away"]
        for client in (other, anonymous):
            assert bodies(await client.changes(1)) == ["public while away"]
            assert await client.answers_ping()


@pytest.mark.usefixtures("relay")
async def test_an_author_may_ask_for_their_private_posts_nobody_else_may(aconn):
    alice, alice_cookie = await log_in_new_user("alice")
    _, bob_cookie = await log_in_new_user("bob")
    private_only = {"author_id": alice, "visibility": "private"}
    async with connected(alice_cookie) as mine, connected(bob_cookie) as other, connected() as anonymous:
        await mine.subscribe("posts", filters=private_only)
        for client in (other, anonymous):
            refused = await client.ask({"type": "subscribe", "stream": "posts", "filters": private_only})
            assert (refused["code"], refused["stream"]) == ("forbidden", "posts")
        await insert_post(aconn, alice, "public")
        await insert_post(aconn, alice, "private", "private")
        assert bodies(await mine.changes(1)) == ["private"]


async def test_a_forged_session_cookie_is_anonymous(aconn):
    alice, _ = await log_in_new_user("alice")
    await insert_post(aconn, alice, "private", "private")
    async with connected("sessionid=forged") as client:
        _, snapshot = await client.subscribe("posts", snapshot=10)
    assert snapshot["rows"] == []


@pytest.mark.usefixtures("relay")
async def test_a_private_post_moved_to_another_author_shows_neither_the_others_text(aconn):
    alice, alice_cookie = await log_in_new_user("alice")
    bob, bob_cookie = await log_in_new_user("bob")
    post_id = await insert_post(aconn, alice, "alice's secret", "private")
    async with connected(alice_cookie) as mine, connected(bob_cookie) as theirs, connected() as anonymous:
        subscribed, _ = await theirs.subscribe("posts", snapshot=0)
        await mine.subscribe("posts")
        await anonymous.subscribe("posts")
        await aconn.execute("UPDATE post SET author_id = %s, body = 'new' WHERE id = %s", (bob, post_id))
        await insert_post(aconn, bob, "sentinel")
        [left, _] = await mine.changes(2)
        [entered, _] = await theirs.changes(2)
        assert bodies(await anonymous.changes(1)) == ["sentinel"]
    gone = {"id": post_id, "author_id": alice, "visibility": "private"}  # its keys, as alice saw them
    assert (left["op"], left["row"], left["old"]) == ("delete", None, gone)
    assert (entered["op"], entered["row"]["body"], "old" in entered) == ("insert", "new", False)

    start = subscribed["position"]  # again, as a replay: unfiltered, and filtered on alice's id
    async with connected(bob_cookie) as replayed, connected(bob_cookie) as on_alice:
        await replayed.subscribe("posts", after=start)
        await on_alice.subscribe("posts", filters={"author_id": alice}, after=start)
        assert [(c["op"], c["row"]["body"], "old" in c) for c in await replayed.changes(2)] == [
            ("insert", "new", False),
            ("insert", "sentinel", False),
        ]
        assert await on_alice.answers_ping()  # the move showed alice's text to nobody but her
