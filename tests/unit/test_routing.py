"""Routing: group names Channels accepts for any key, and who sees what of a post."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from channels.layers import BaseChannelLayer
from django.core.exceptions import ImproperlyConfigured
from hypothesis import given
from hypothesis import strategies as st

from cdc import declarations
from cdc.declarations import Access, Stream
from cdc.filters import NUMBER, TEXT, Column
from cdc.log import Change
from cdc.routing import (
    OWNER,
    PUBLIC,
    StreamChange,
    control_group,
    own_group,
    partition_group,
    routes,
    stream_for,
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
    group = partition_group("articles", "category", category)
    assert layer.require_valid_group_name(group)
    assert len(group) < 100


@given(st.text(max_size=50), st.text(max_size=50))
def test_different_categories_get_different_groups(a, b):
    assert (partition_group("articles", "category", a) == partition_group("articles", "category", b)) == (
        a == b
    )


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
        partition_group("articles", "category", "misc"),
        partition_group("articles", "category", "tech"),
    ]


def test_private_post_goes_only_to_its_authors_own_group():
    assert [(g, v.audience) for g, v in routes(post("insert", post_row("private")))] == [
        (own_group("posts", 42), OWNER)
    ]


def test_public_post_goes_to_everyone_and_to_the_author():
    groups = {g: v.audience for g, v in routes(post("insert", post_row("public")))}
    assert groups == {
        "cdc.posts": PUBLIC,
        partition_group("posts", "author_id", 42): PUBLIC,
        own_group("posts", 42): OWNER,
    }


def test_a_post_turning_private_leaves_public_view_without_its_body():
    change = post("update", post_row("private", "now secret"), old=post_row("public", "was public"))
    seen = view_for(change, viewer_id=None)
    assert seen is not None
    assert (seen.op, seen.row, seen.old) == (
        "delete",
        None,
        {"id": 1, "author_id": 42, "visibility": "public"},
    )
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
    carried = StreamChange.from_message(change.as_message("{}"))
    keys = {"id": 1, "author_id": 42}
    assert carried == post("update", {**keys, "visibility": "public"}, {**keys, "visibility": "private"})
    assert "secret" not in str(change.as_message("{}"))
    assert change.as_message("{}")["position"] == "3:7"


def test_a_public_update_shows_everyone_the_same_change_and_the_author_their_own_view():
    change = post("update", post_row("public", "new"), old=post_row("public", "old"))
    for viewer in (None, 7):
        seen = view_for(change, viewer_id=viewer)
        assert seen == StreamChange(
            id=7,
            txid=100,
            tick=3,
            stream="posts",
            op="update",
            row=change.row,
            old=change.old,
            audience=PUBLIC,
        )
    own = view_for(change, viewer_id=42)
    assert own is not None
    assert (own.audience, own.row, own.old) == (OWNER, change.row, change.old)


def test_a_post_entering_public_view_carries_its_row():
    change = post("update", post_row("public", "now public"), old=post_row("private"))
    seen = view_for(change, viewer_id=None)
    assert seen is not None
    assert (seen.row, seen.audience) == (change.row, PUBLIC)
    gone = view_for(post("update", post_row("private"), old=post_row("public")), viewer_id=None)
    assert gone is not None
    assert gone.audience == PUBLIC


def test_articles_are_the_same_for_every_viewer():
    change = StreamChange(
        id=1, txid=1, tick=1, stream="articles", op="insert", row={"category": "c"}, old=None
    )
    assert view_for(change, viewer_id=None) == change
    assert view_for(change, viewer_id=5) == change


def test_a_table_no_stream_declares_goes_nowhere():
    change = StreamChange(
        id=1, txid=1, tick=1, stream=stream_for("shop.order"), op="insert", row={}, old=None
    )
    assert change.stream == "shop.order"
    assert routes(change) == []


def test_a_table_no_stream_declares_is_not_the_stream_its_bare_name_is():
    # public.article feeds `articles`; another schema's `articles` table feeds nothing, and
    # least of all the articles stream's subscribers, under that stream's access rule.
    row = {"id": 1, "category": "economy", "title": "another table's row"}
    change = StreamChange.of(Change(1, 1, "shop.articles", "insert", row, None, datetime.now(UTC)), tick=1)
    assert change.stream == "shop.articles"
    assert routes(change) == []


def test_a_truncate_goes_to_the_streams_control_group_only():
    change = StreamChange(id=1, txid=1, tick=1, stream="posts", op="truncate", row=None, old=None)
    assert routes(change) == [(control_group("posts"), change)]


@given(st.text(max_size=500), st.sampled_from(["category", "c", "a_column_of_20_char"]))
def test_any_partition_value_of_any_declarable_column_gives_a_valid_group_name(value, column):
    assert layer.require_valid_group_name(partition_group("streamname_of_20_ch", column, value))


def test_a_public_post_goes_to_the_stream_and_author_groups_and_the_own_group():
    change = post("delete", None, old=post_row("public"))
    assert [(g, v.audience) for g, v in routes(change)] == [
        ("cdc.posts", PUBLIC),
        (partition_group("posts", "author_id", 42), PUBLIC),
        (own_group("posts", 42), OWNER),
    ]


def test_a_logged_change_becomes_a_stream_change_of_its_tick():
    at = datetime.now(UTC)
    change = Change(9, 123, "public.article", "update", {"id": 1}, {"id": 1, "title": "old"}, at)
    assert StreamChange.of(change, tick=4) == StreamChange(
        id=9, txid=123, tick=4, stream="articles", op="update", row={"id": 1}, old={"id": 1, "title": "old"}
    )
    assert StreamChange.of(change, tick=4).audience == PUBLIC


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"name": "Bad-Name"}, "'Bad-Name' must match"),
        ({"columns": {"x": Column(TEXT, operators=("like",))}}, "no operator 'like'"),
        ({"columns": {"x": Column(NUMBER, partition=True)}}, "partition 'x' must be text or integer"),
        ({"columns": {"x": Column(TEXT)}, "hidden": ("x",)}, "hidden column 'x'"),
        ({"access": Access(owner="x")}, "owner column 'x' must be declared"),
        ({"columns": {"v": Column(TEXT)}, "access": Access(owner="o", public_when={"v": 1})}, "public_when"),
    ],
)
def test_a_declaration_that_cannot_work_is_refused_at_start(fields, problem):
    with pytest.raises(ImproperlyConfigured, match=problem):
        Stream(**{"name": "things", "table": "thing", "columns": {}, **fields})


def test_a_declared_hidden_column_never_leaves_the_log():
    change = Change(
        1, 1, "public.thing", "update", {"id": 1, "secret": "s"}, {"id": 1, "secret": "t"}, datetime.now(UTC)
    )
    declarations.register(Stream(name="things", table="thing", columns={}, hidden=("secret",)))
    try:
        seen = StreamChange.of(change, tick=1)
    finally:
        declarations.unregister("things")
    assert (seen.stream, seen.row, seen.old) == ("things", {"id": 1}, {"id": 1})
