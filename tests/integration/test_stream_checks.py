"""`manage.py check --database default` and `cdc_listen` report a stream declaration that does
not fit its database, each problem with its fix; the project's own declarations fit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from cdc import declarations
from cdc.checks import check_streams
from cdc.declarations import Stream
from cdc.filters import INTEGER, TEXT, Column

pytestmark = pytest.mark.usefixtures("django_db_at")


@pytest.fixture
def declare() -> Iterator[Any]:
    """Register streams for one test."""
    names: list[str] = []

    def register(stream: Stream) -> None:
        declarations.register(stream)
        names.append(stream.name)

    yield register
    for name in names:
        declarations.unregister(name)


def problems() -> dict[str, tuple[str, str]]:
    """Each reported problem's id: its message and hint."""
    return {p.id: (p.msg, p.hint or "") for p in check_streams(databases=["default"])}  # type: ignore[misc]


def test_the_projects_declarations_fit_the_migrated_database():
    assert problems() == {}


def test_a_missing_table_is_reported_with_its_fix(declare):
    declare(Stream(name="orders", table="shop.orders", columns={}))
    msg, hint = problems()["cdc.E001"]
    assert "shop.orders does not exist" in msg
    assert "migration" in hint


def test_a_table_not_under_capture_and_a_missing_column_are_reported_with_their_fixes(declare, fresh_db):
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE comment (id bigint PRIMARY KEY, body text, post_id int)")
    declare(
        Stream(
            name="comments",
            table="comment",
            columns={"post_id": Column(TEXT), "author": Column(INTEGER)},
            order=("-created_at",),
        )
    )
    found = check_streams(databases=["default"])
    by_id = {(p.id, p.msg) for p in found}
    assert (
        "cdc.E002",
        "stream 'comments': table public.comment is not under capture (no cdc_capture trigger)",
    ) in by_id
    assert {p.hint for p in found if p.id == "cdc.E002"} == {
        "in a migration: SELECT cdc.track('public.comment')"
    }
    assert {m for i, m in by_id if i == "cdc.E003"} == {
        "stream 'comments': table public.comment has no column 'author'",
        "stream 'comments': table public.comment has no column 'created_at'",
    }
    assert {m for i, m in by_id if i == "cdc.E004"} == {
        "stream 'comments': column 'post_id' is int4, which a text filter cannot read"
    }


def test_a_column_excluded_from_capture_cannot_be_filtered_on(declare, fresh_db):
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE note (id bigint PRIMARY KEY, topic text)")
        conn.execute("SELECT cdc.track('public.note', excluded_columns => '{topic}')")
    declare(Stream(name="notes", table="public.note", columns={"topic": Column(TEXT)}))
    msg, hint = problems()["cdc.E005"]
    assert "'topic' is excluded from capture" in msg
    assert "hidden" in hint


def test_cdc_listen_refuses_to_start_on_a_declaration_that_does_not_fit(declare):
    declare(Stream(name="orders", table="shop.orders", columns={}))
    with pytest.raises(SystemCheckError, match=r"cdc\.E001"):
        call_command("cdc_listen")
