"""Filters (cdc/filters.py) without a database: what each operator holds for in Python, how
NULL and unreadable row values count, and the SQL each condition becomes (the same meaning
against the real Postgres: tests/integration/test_filter_equivalence.py)."""

from __future__ import annotations

from typing import Any

import pytest

from cdc.declarations import Stream
from cdc.filters import BOOLEAN, INTEGER, NUMBER, OPERATORS, TEXT, TIMESTAMP, Column, FilterError, Filters

STREAM = Stream(
    name="things",
    table="thing",
    columns={
        "name": Column(TEXT, operators=OPERATORS),
        "n": Column(INTEGER),
        "price": Column(NUMBER),
        "on": Column(BOOLEAN),
        "at": Column(TIMESTAMP),
        "secret": Column(TEXT, operators=()),
    },
)


def holds(wanted: dict[str, Any], image: dict[str, Any]) -> bool:
    return STREAM.filters_of(wanted).holds(image)


@pytest.mark.parametrize(
    ("wanted", "image", "expected"),
    [
        ({"n": 5}, {"n": 5}, True),
        ({"n": {"eq": 5}}, {"n": 6}, False),
        ({"n": {"neq": 5}}, {"n": 6}, True),
        ({"n": {"neq": 5}}, {"n": 5}, False),
        ({"n": {"lt": 5}}, {"n": 5}, False),
        ({"n": {"lte": 5}}, {"n": 5}, True),
        ({"n": {"gt": 5}}, {"n": 5}, False),
        ({"n": {"gte": 5}}, {"n": 5}, True),
        ({"n": {"gt": 1, "lt": 9}}, {"n": 9}, False),
        ({"n": {"in": [1, 2]}}, {"n": 2}, True),
        ({"n": {"in": [1, 2]}}, {"n": 3}, False),
        ({"n": 1}, {"n": True}, False),  # a boolean is no integer, in a row either
        ({"name": {"lt": "b"}}, {"name": "B"}, True),  # by code point: "B" < "b"
        ({"name": {"gt": "z"}}, {"name": "é"}, True),
        ({"price": {"gt": 100}}, {"price": 100.5}, True),
        ({"price": 2}, {"price": 2.0}, True),
        ({"price": {"lt": 1}}, {"price": "0"}, False),  # not a number: no condition holds
        ({"on": False}, {"on": False}, True),
        ({"on": {"neq": True}}, {"on": False}, True),
        (
            {"at": {"gt": "2025-01-01T00:00:00+00:00"}},
            {"at": "2025-01-01T00:30:00+01:00"},
            False,
        ),  # 23:30 UTC
        ({"at": "2025-01-01T00:00:00+00:00"}, {"at": "2025-01-01T01:00:00+01:00"}, True),  # one instant
        ({"at": {"lt": "2025-01-01T00:00:00+00:00"}}, {"at": "infinity"}, False),
        ({}, {}, True),
        ({"n": None, "name": {"eq": None}}, {}, True),  # null: no condition
    ],
)
def test_each_operator_holds_as_documented(wanted, image, expected):
    assert holds(wanted, image) is expected


@pytest.mark.parametrize("op", OPERATORS)
def test_a_null_or_absent_column_holds_no_condition_whatever_the_operator(op):
    value = [5] if op == "in" else 5
    assert not holds({"n": {op: value}}, {"n": None})
    assert not holds({"n": {op: value}}, {})


@pytest.mark.parametrize(
    ("wanted", "message"),
    [
        ({"nope": 1}, "no filter 'nope': filter on name or n or price or on or at"),
        ({"secret": "x"}, "no filter 'secret'"),
        ({"on": {"gt": True}}, "'on' takes the operators eq, neq, not 'gt'"),
        ({"price": float("nan")}, "'price' must be a finite number"),
        ({"at": "2025-01-01T00:00:00"}, "'at' must be an ISO 8601 date and time with an offset"),
        ({"at": "yesterday"}, "'at' must be an ISO 8601"),
        ({"name": "a\0b"}, "'name' must be a string of at most 1000 characters, without NUL"),
        ({"n": {"in": []}}, "'n' 'in' takes an array of 1 to 100 values"),
        ([], "'filters' must be an object"),
    ],
)
def test_what_a_stream_does_not_accept_says_what_it_does(wanted, message):
    with pytest.raises(FilterError) as error:
        STREAM.filters_of(wanted)
    assert str(error.value).startswith(message)


def test_conditions_become_sql_with_identifiers_and_bound_values_only():
    wanted = {"name": {"gte": "a", "in": ["x", "y"]}, "price": {"lt": 3}, "on": True, "at": {"neq": None}}
    where, params = STREAM.filters_of(wanted).where("t", "f")
    assert where.as_string(None) == (
        '("t"."name" COLLATE "C" >= %(f0)s::text AND "t"."name" = ANY(%(f1)s::text[])'
        ' AND "t"."on" = %(f2)s::boolean AND "t"."price"::float8 < %(f3)s::float8)'
    )
    assert params == {"f0": "a", "f1": ["x", "y"], "f2": True, "f3": 3.0}
    assert Filters().where("t", "f")[0].as_string(None) == "TRUE"


def test_equal_filters_compare_equal_whatever_their_order_and_form():
    assert STREAM.filters_of({"n": 1, "name": "a"}) == STREAM.filters_of(
        {"name": {"eq": "a"}, "n": {"eq": 1}}
    )
    assert STREAM.filters_of({"n": {"gt": 1}}).equal("n") is None
    assert STREAM.filters_of({"n": 1}).equal("n") == 1
