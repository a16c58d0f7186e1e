"""Filters on a stream's columns: one meaning, evaluated in Python (live) and in SQL (reads).

A filter is a set of conditions (column, operator, value) that all must hold. The wire form
(docs/protocol.md) is an object of columns: a bare value means `eq`, an object names
operators, `{"price": {"gt": 100, "lte": 200}, "category": "tech"}`; a null value is no
condition, as nulls are absent everywhere in the protocol.

A NULL column holds no condition, whatever the operator (`neq` included): SQL's rule, kept
in Python. Each column has a kind, which says what a value may be and how both sides compare:
text by code point (SQL `COLLATE "C"` for the orderings), numbers as double precision,
timestamps as instants. A row value Python cannot read as its kind (NaN, `infinity`) holds
no condition either; it is outside the contract (docs/protocol.md, "Filters").
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg import sql

MAX_TEXT = 1000  # characters in a text value
MAX_IN = 100  # values in one `in`
MAX_BIGINT = 2**63 - 1
ORDERINGS = ("lt", "lte", "gt", "gte")
OPERATORS = ("eq", "neq", *ORDERINGS, "in")
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "neq": operator.ne,
    "lt": operator.lt,
    "lte": operator.le,
    "gt": operator.gt,
    "gte": operator.ge,
    "in": lambda value, values: value in values,
}
_SQL_OPERATORS = {"eq": "=", "neq": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}


class FilterError(ValueError):
    """A filter a stream does not accept; the message says what it accepts."""


def _text(value: Any) -> str:
    if not (isinstance(value, str) and len(value) <= MAX_TEXT and "\0" not in value):
        raise ValueError
    return value


def _integer(value: Any) -> int:
    if not (
        isinstance(value, int) and not isinstance(value, bool) and -MAX_BIGINT - 1 <= value <= MAX_BIGINT
    ):
        raise ValueError
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError
    return float(value)


def _exactly(kind: type) -> Callable[[Any], Any]:
    """A row value's reader for a kind whose JSON value needs no conversion, only its type."""

    def load(value: Any) -> Any:
        if type(value) is not kind:
            raise ValueError
        return value

    return load


def _timestamp(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError
    return moment


@dataclass(frozen=True, slots=True)
class Kind:
    """What a column holds, as filters see it."""

    name: str
    describe: str  # what a value must be, for error messages
    read: Callable[[Any], Any]  # a filter's JSON value to a comparable one; ValueError if not
    load: Callable[[Any], Any]  # a row image's value (as captured) to a comparable one; ValueError if not
    cast: str  # the SQL type values are bound as
    pg_types: frozenset[str]  # the column types (pg_type.typname) it may declare
    operators: tuple[str, ...]  # those a column of this kind allows unless its declaration narrows them

    def sql_column(self, column: sql.Composable) -> sql.Composable:
        return sql.SQL("{}::float8").format(column) if self is NUMBER else column


TEXT = Kind(
    "text",
    f"a string of at most {MAX_TEXT} characters, without NUL",
    _text,
    _exactly(str),
    "text",
    frozenset({"text", "varchar", "bpchar", "citext"}),
    ("eq", "neq", "in"),
)
INTEGER = Kind(
    "integer",
    "an integer (64-bit)",
    _integer,
    _exactly(int),
    "bigint",
    frozenset({"int2", "int4", "int8"}),
    OPERATORS,
)
NUMBER = Kind(
    "number",
    "a finite number",
    _number,
    _number,
    "float8",
    frozenset({"int2", "int4", "int8", "numeric", "float4", "float8"}),
    OPERATORS,
)
BOOLEAN = Kind(
    "boolean", "true or false", _exactly(bool), _exactly(bool), "boolean", frozenset({"bool"}), ("eq", "neq")
)
TIMESTAMP = Kind(
    "timestamp",
    "an ISO 8601 date and time with an offset",
    _timestamp,
    _timestamp,
    "timestamptz",
    frozenset({"timestamptz"}),
    OPERATORS,
)


@dataclass(frozen=True, slots=True)
class Condition:
    column: str
    op: str
    value: Any  # already read by the column's kind; a tuple for `in`
    kind: Kind = field(repr=False)

    def holds(self, image: Mapping[str, Any]) -> bool:
        """Whether the condition holds for a row image (a NULL or unreadable value: never)."""
        raw = image.get(self.column)
        if raw is None:
            return False
        try:
            value = self.kind.load(raw)
        except (ValueError, TypeError):
            return False
        return _COMPARE[self.op](value, self.value)

    def sql(self, alias: str, param: str) -> sql.Composed:
        """The condition as SQL on `alias`'s column, its value bound as %(param)s."""
        column = self.kind.sql_column(sql.Identifier(alias, self.column))
        value = sql.Placeholder(param)
        if self.op == "in":
            return sql.SQL("{} = ANY({}::{}[])").format(column, value, sql.SQL(self.kind.cast))
        collate = sql.SQL(' COLLATE "C"') if self.kind is TEXT and self.op in ORDERINGS else sql.SQL("")
        symbol = sql.SQL(_SQL_OPERATORS[self.op])
        return sql.SQL("{}{} {} {}::{}").format(column, collate, symbol, value, sql.SQL(self.kind.cast))

    @property
    def bound(self) -> Any:
        return list(self.value) if self.op == "in" else self.value


@dataclass(frozen=True, slots=True)
class Column:
    """A column a stream's clients may filter on (or that its access rule reads)."""

    kind: Kind
    operators: tuple[str, ...] | None = None  # None: all its kind allows; (): none (access rule only)
    partition: bool = False  # a Channels group per value: subscribers of one value get only its rows
    choices: tuple[Any, ...] = ()  # the only values a filter may name (none: any of the kind)

    @property
    def allowed(self) -> tuple[str, ...]:
        return self.kind.operators if self.operators is None else self.operators


@dataclass(frozen=True, slots=True)
class Filters:
    """Conditions that must all hold, in a canonical order (equal filters compare equal)."""

    conditions: tuple[Condition, ...] = ()

    def holds(self, image: Mapping[str, Any]) -> bool:
        return all(condition.holds(image) for condition in self.conditions)

    def equal(self, column: str) -> Any:
        """The value `column` must equal, when an `eq` condition pins it (None otherwise)."""
        return next((c.value for c in self.conditions if c.column == column and c.op == "eq"), None)

    def on(self, columns: Mapping[str, Any]) -> Filters:
        """Only the conditions on `columns`."""
        return Filters(tuple(c for c in self.conditions if c.column in columns))

    def where(self, alias: str, prefix: str) -> tuple[sql.Composable, dict[str, Any]]:
        """The conditions as one SQL expression on `alias`, and their bound values."""
        if not self.conditions:
            return sql.SQL("TRUE"), {}
        names = [f"{prefix}{n}" for n in range(len(self.conditions))]
        parts = [c.sql(alias, name) for c, name in zip(self.conditions, names, strict=True)]
        return sql.SQL("({})").format(sql.SQL(" AND ").join(parts)), {
            name: c.bound for c, name in zip(self.conditions, names, strict=True)
        }


def parse(columns: Mapping[str, Column], value: Any) -> Filters:
    """The filters a wire value asks for on `columns`, or FilterError saying what is wrong."""
    if value is None:
        return Filters()
    if not isinstance(value, dict):
        raise FilterError("'filters' must be an object of columns")
    conditions: list[Condition] = []
    for name, wanted in value.items():
        column = columns.get(name)
        if column is None or not column.allowed:
            names = " or ".join(n for n, c in columns.items() if c.allowed) or "nothing"
            raise FilterError(f"no filter {name[:40]!r}: filter on {names}")
        if wanted is None:
            continue
        ops = wanted if isinstance(wanted, dict) else {"eq": wanted}
        for op, operand in ops.items():
            if op not in column.allowed:
                raise FilterError(
                    f"{name!r} takes the operators {', '.join(column.allowed)}, not {op[:20]!r}"
                )
            if operand is not None:
                conditions.append(_condition(name, column, op, operand))
    return Filters(tuple(sorted(conditions, key=lambda c: (c.column, c.op))))


def _condition(name: str, column: Column, op: str, operand: Any) -> Condition:
    if op == "in":
        if not (isinstance(operand, list) and 1 <= len(operand) <= MAX_IN):
            raise FilterError(f"{name!r} 'in' takes an array of 1 to {MAX_IN} values")
        return Condition(name, op, tuple(_value(name, column, item) for item in operand), column.kind)
    return Condition(name, op, _value(name, column, operand), column.kind)


def _value(name: str, column: Column, operand: Any) -> Any:
    try:
        value = column.kind.read(operand)
    except (ValueError, TypeError):
        raise FilterError(f"{name!r} must be {column.kind.describe}") from None
    if column.choices and value not in column.choices:
        raise FilterError(f"{name!r} must be one of {', '.join(map(repr, column.choices))}")
    return value
