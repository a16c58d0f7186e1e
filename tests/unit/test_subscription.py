"""Subscription's rules, without a server: which groups, who may ask for what, which change
goes through (`admit`), and where a resume or a repair starts (`resume_from`, `resume_point`)."""

from __future__ import annotations

from typing import Any

import pytest

from cdc.routing import OWNER, PUBLIC, StreamChange, control_group, own_group, partition_group, stream_group
from cdc.ticks import ORIGIN, Position
from consumers.protocol import ProtocolError
from consumers.subscription import Subscription
from testkit.streams import filters as filters_of

ME, OTHER = 3, 4


def article(id: int, tick: int, txid: int = 100, **row: Any) -> StreamChange:
    image = {"id": id, "category": "tech", "source": "wire", **row}
    return StreamChange(id=id, txid=txid, tick=tick, stream="articles", op="insert", row=image, old=None)


def post(id: int, author: int, visibility: str = "public", audience: str = PUBLIC, **kw: Any) -> StreamChange:
    """A post's insert as the relay routes it: its public view names its owner, whose own group
    has the author's view (cdc/routing.py routes)."""
    row = {"id": id, "author_id": author, "body": "b", "visibility": visibility}
    return StreamChange(
        id=id, txid=kw.get("txid", 100), tick=kw.get("tick", 1), stream="posts", op="insert",
        row=row, old=None, audience=audience, owners=(author,),
    )  # fmt: skip


def sub(stream: str = "articles", viewer: int | None = None, **filters: Any) -> Subscription:
    """A subscription to `stream` by `viewer` (None: anonymous) with `filters` in the wire form."""
    return Subscription(stream, filters_of(stream, **filters), viewer)


@pytest.mark.parametrize(
    ("stream", "viewer", "filters", "groups"),
    [
        ("articles", None, {}, {stream_group("articles")}),
        ("articles", ME, {"source": "wire"}, {stream_group("articles")}),
        ("articles", None, {"category": "tech"}, {partition_group("articles", "category", "tech")}),
        ("posts", None, {}, {stream_group("posts")}),
        ("posts", None, {"author_id": ME}, {partition_group("posts", "author_id", ME)}),
        ("posts", ME, {}, {own_group("posts", ME), stream_group("posts")}),
        ("posts", ME, {"visibility": "public"}, {own_group("posts", ME), stream_group("posts")}),
        ("posts", ME, {"visibility": "private"}, {own_group("posts", ME)}),
        ("posts", ME, {"author_id": ME}, {own_group("posts", ME)}),
        ("posts", ME, {"author_id": OTHER}, {partition_group("posts", "author_id", OTHER)}),
    ],
)
def test_each_subscription_listens_to_the_narrowest_groups(stream, viewer, filters, groups):
    subscription = sub(stream, viewer, **filters)
    assert subscription.groups == {*groups, control_group(stream)}  # every subscription hears a truncate
    assert subscription.mixed == (len(groups) == 2)


@pytest.mark.parametrize(
    ("viewer", "filters"),
    [(None, {"visibility": "private"}), (ME, {"visibility": "private", "author_id": OTHER})],
)
def test_private_posts_of_anyone_else_are_forbidden(viewer, filters):
    with pytest.raises(ProtocolError) as error:
        sub("posts", viewer, **filters).check_access()
    assert (error.value.code, error.value.stream) == ("forbidden", "posts")
    assert "author" in error.value.message


@pytest.mark.parametrize(
    ("viewer", "filters"),
    [(ME, {"visibility": "private"}), (ME, {"visibility": "private", "author_id": ME}), (None, {})],
)
def test_own_private_posts_and_public_ones_are_allowed(viewer, filters):
    sub("posts", viewer, **filters).check_access()


def test_admit_lets_each_change_through_once_per_tick_and_never_an_older_tick():
    s = sub()
    assert s.admit(article(5, tick=2))
    assert not s.admit(article(5, tick=2)), "a resent change went through twice"
    assert s.admit(article(4, tick=2)), "a change of the same tick arriving late was dropped"
    assert not s.admit(article(5, tick=2)), "a resent change went through twice"
    assert s.admit(article(9, tick=3))
    assert not s.admit(article(6, tick=2)), "a change of an older tick went through"
    assert s.admit(article(9, tick=4)), "the same id in a later tick is a later change"


def test_admit_drops_what_a_snapshot_or_replay_covered_and_nothing_after():
    s = sub()
    s.covered_through(Position(5, 50))
    assert not s.admit(article(49, tick=5))
    assert not s.admit(article(50, tick=5)), "the floor itself is covered"
    assert s.admit(article(51, tick=5))
    s.covered_through(Position(4, 99))  # the floor never moves back
    assert s.floor == Position(5, 50)


def test_admit_drops_changes_the_snapshot_sees_and_keeps_those_in_flight_at_it():
    s = sub()
    s.snapshot = "100:110:103,107"
    assert not s.admit(article(1, tick=1, txid=99))
    assert not s.admit(article(2, tick=1, txid=105))
    assert s.admit(article(3, tick=1, txid=103)), "in progress at the snapshot: not in its rows"
    assert s.admit(article(4, tick=1, txid=110))


def test_a_resume_is_exact_with_one_group_and_starts_the_tick_again_with_two():
    single, mixed = sub(), sub("posts", ME)
    assert str(single.resume_from(Position(3, 7))) == "3:7"
    assert str(mixed.resume_from(Position(3, 7))) == "3:0"


def test_a_re_read_starts_at_the_floor_or_at_the_start_of_the_newest_tick_delivered():
    s = sub()
    assert s.resume_point() == ORIGIN
    s.covered_through(Position(2, 20))
    assert s.resume_point() == Position(2, 20)
    s.admit(article(30, tick=4))
    assert s.resume_point() == Position(4, 0)


def test_live_changes_of_another_stream_or_filter_are_not_for_the_subscription():
    tech = sub(category="tech")
    assert tech.accepts_live(article(1, tick=1))
    assert sub(source="wire", category="tech").accepts_live(article(1, tick=1))
    assert sub("posts", author_id=OTHER).accepts_live(post(1, OTHER))
    assert sub("posts", ME, visibility="private").accepts_live(post(1, ME, "private", OWNER))
    assert not sub("posts", ME, visibility="private").accepts_live(post(1, ME, "public", OWNER))
    assert not sub("posts", author_id=OTHER).accepts_live(post(1, ME))
    assert not tech.accepts_live(article(1, tick=1, category="sport"))
    assert not sub(source="agency").accepts_live(article(1, tick=1))
    assert not sub("posts").accepts_live(article(1, tick=1))


def test_an_author_takes_their_own_posts_from_their_own_group_only():
    mine = sub("posts", ME)
    assert not mine.accepts_live(post(1, ME, audience=PUBLIC)), "would arrive twice"
    assert mine.accepts_live(post(1, ME, audience=OWNER))
    assert mine.accepts_live(post(2, OTHER, audience=PUBLIC))
    assert sub("posts").accepts_live(post(1, ME, audience=PUBLIC))


def test_an_item_leaving_the_filter_or_the_publics_view_still_arrives():
    moved = StreamChange(
        id=1, txid=1, tick=1, stream="articles", op="update",
        row={"id": 1, "category": "sport"}, old={"id": 1, "category": "tech"},
    )  # fmt: skip
    assert sub(category="tech").matches(moved)
    assert not sub(category="misc").matches(moved)
    assert not sub(category={"in": ["misc", "news"]}).matches(moved)
    assert sub(category={"neq": "tech"}).matches(moved)
    hidden = StreamChange(
        id=2, txid=1, tick=1, stream="posts", op="update",
        row={"id": 2, "author_id": OTHER, "body": "b", "visibility": "private"},
        old={"id": 2, "author_id": OTHER, "body": "b", "visibility": "public"},
    )  # fmt: skip
    gone = sub("posts", visibility="public").view(hidden)  # as the public sees it: a delete
    assert gone is not None
    assert (gone.op, gone.old) == ("delete", {"id": 2, "author_id": OTHER, "visibility": "public"})
    assert sub("posts", author_id=OTHER).matches(gone)
    assert not sub("posts", ME, visibility="private").matches(gone)


def test_a_truncate_reaches_every_subscription_of_its_stream_whatever_its_filters():
    truncate = StreamChange(id=3, txid=1, tick=1, stream="posts", op="truncate", row=None, old=None)
    for subscription in (sub("posts", ME, visibility="private"), sub("posts", author_id=OTHER)):
        assert subscription.accepts_live(truncate)
        assert subscription.view(truncate) == truncate
    assert not sub(category="tech").accepts_live(truncate)


def test_the_view_of_a_logged_change_hides_other_peoples_private_posts():
    assert sub("posts").view(post(1, OTHER, "private")) is None
    assert sub("posts", OTHER).view(post(1, OTHER, "private")) is not None
    assert sub("posts", author_id=OTHER).view(post(1, ME)) is None
