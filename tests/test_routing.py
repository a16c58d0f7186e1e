"""Routing: group names Channels accepts for any key, and who sees what of a post."""

from __future__ import annotations

from channels.layers import BaseChannelLayer
from hypothesis import given
from hypothesis import strategies as st

from cdc.routing import (
    AUTHOR,
    PUBLIC,
    StreamChange,
    category_group,
    own_group,
    routes,
    stream_group,
    view_for,
)

layer = BaseChannelLayer()


def post(op: str, row: dict | None, old: dict | None = None) -> StreamChange:
    return StreamChange(id=7, txid=100, tick=3, stream="posts", op=op, row=row, old=old)


def post_row(visibility: str, body: str = "text") -> dict:
    return {"id": 1, "author_id": 42, "body": body, "visibility": visibility}


@given(st.text(max_size=500))
def test_any_category_text_gives_a_valid_group_name(category):
    group = category_group(category)
    assert layer.require_valid_group_name(group)
    assert len(group) < 100


@given(st.text(max_size=50), st.text(max_size=50))
def test_different_categories_get_different_groups(a, b):
    assert (category_group(a) == category_group(b)) == (a == b)


def test_articles_go_to_the_stream_and_to_old_and_new_category_groups():
    moved = StreamChange(
        id=1,
        txid=1,
        tick=1,
        stream="articles",
        op="update",
        row={"category": "tech"},
        old={"category": "misc"},
    )
    assert [g for g, _ in routes(moved)] == [
        stream_group("articles"),
        category_group("misc"),
        category_group("tech"),
    ]


def test_private_post_goes_only_to_its_authors_own_group():
    assert [(g, v.audience) for g, v in routes(post("insert", post_row("private")))] == [
        (own_group(42), AUTHOR)
    ]


def test_public_post_goes_to_everyone_and_to_the_author():
    groups = {g: v.audience for g, v in routes(post("insert", post_row("public")))}
    assert groups == {
        "cdc.posts": PUBLIC,
        "cdc.posts.author.42": PUBLIC,
        own_group(42): AUTHOR,
    }


def test_a_post_turning_private_leaves_public_view_without_its_body():
    change = post("update", post_row("private", "now secret"), old=post_row("public", "was public"))
    seen = view_for(change, viewer_id=None)
    assert seen is not None
    assert (seen.op, seen.row, seen.old) == ("delete", None, {"id": 1, "author_id": 42})
    author_view = view_for(change, viewer_id=42)
    assert author_view is not None
    assert (author_view.op, author_view.row["body"]) == ("update", "now secret")


def test_a_post_turning_public_enters_public_view_as_an_insert():
    change = post("update", post_row("public"), old=post_row("private"))
    seen = view_for(change, viewer_id=7)
    assert seen is not None
    assert (seen.op, seen.old) == ("insert", None)


def test_private_changes_show_other_viewers_nothing():
    assert view_for(post("delete", None, old=post_row("private")), viewer_id=None) is None
    assert view_for(post("insert", post_row("private")), viewer_id=43) is None


def test_a_change_keeps_what_consumers_decide_by_through_a_message_and_nothing_more():
    change = post("update", post_row("public", body="new"), post_row("private", body="secret"))
    carried = StreamChange.from_message(change.as_message())
    keys = {"id": 1, "author_id": 42}
    assert carried == post("update", {**keys, "visibility": "public"}, {**keys, "visibility": "private"})
    assert "secret" not in str(change.as_message())
    assert change.as_message()["position"] == "3:7"


def test_a_private_post_moved_to_another_author_leaves_one_and_enters_the_other():
    moved = post(
        "update", {**post_row("private", "bob's now"), "author_id": 43}, old=post_row("private", "alice's")
    )
    views = dict(routes(moved))
    assert set(views) == {own_group(42), own_group(43)}  # nothing public
    old_author, new_author = views[own_group(42)], views[own_group(43)]
    assert (old_author.op, old_author.row, old_author.old) == ("delete", None, {"id": 1, "author_id": 42})
    assert (new_author.op, new_author.old, new_author.row["body"]) == ("insert", None, "bob's now")
    assert view_for(moved, viewer_id=43) == new_author
    assert view_for(moved, viewer_id=None) is None


def test_a_public_post_moved_to_another_author_is_an_update_for_everyone():
    moved = post("update", {**post_row("public", "new"), "author_id": 43}, old=post_row("public", "old"))
    views = dict(routes(moved))
    assert set(views) == {
        "cdc.posts",
        "cdc.posts.author.42",
        "cdc.posts.author.43",
        own_group(42),
        own_group(43),
    }
    assert {(v.op, v.old["body"], v.row["body"]) for v in views.values()} == {("update", "old", "new")}
    assert views["cdc.posts"].owners == (42, 43)  # owners take their own group's copy instead


def test_an_image_is_shown_only_to_an_audience_allowed_to_see_it():
    """The rule on every combination: whatever a viewer gets, each image in it is one they may see."""
    images = [None, post_row("public", "p42"), post_row("private", "s42")]
    images += [{**post_row(v, f"{v[0]}43"), "author_id": 43} for v in ("public", "private")]
    for old in images:
        for row in images:
            if old is None and row is None:
                continue
            change = post("insert" if old is None else "delete" if row is None else "update", row, old)
            for viewer in (None, 42, 43, 44):
                seen = view_for(change, viewer)
                shown = [] if seen is None else [i for i in (seen.row, seen.old) if i and "body" in i]
                assert all(i["visibility"] == "public" or i["author_id"] == viewer for i in shown)
                if seen is not None and seen.op == "delete" and change.op != "delete":
                    assert set(seen.old) == {"id", "author_id"}
