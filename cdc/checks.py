"""System checks of the stream declarations against the database (`manage.py check --database
default`, `migrate`, and `cdc_listen` at start): each problem with its fix in the hint.

Until the migrations are all applied the tables may not exist yet, so nothing is checked:
`migrate` runs the checks before it migrates.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.core import checks
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.migrations.executor import MigrationExecutor

from cdc import declarations
from cdc.declarations import Stream
from cdc.sql import query


@checks.register(checks.Tags.database)
def check_streams(
    app_configs: Any = None, databases: Sequence[str] | None = None, **_: Any
) -> list[checks.CheckMessage]:
    if not databases or DEFAULT_DB_ALIAS not in databases:
        return []
    connection = connections[DEFAULT_DB_ALIAS]
    try:
        executor = MigrationExecutor(connection)
        if executor.migration_plan(executor.loader.graph.leaf_nodes()):
            return []
        with connection.cursor() as cursor:
            return [
                error for stream in declarations.all_streams().values() for error in _check(cursor, stream)
            ]
    except DatabaseError as exc:  # cdc_listen waits for the database; it need not stop here
        return [checks.Warning(f"stream declarations not checked: {exc}", id="cdc.W001")]


def _check(cursor: Any, stream: Stream) -> Iterable[checks.CheckMessage]:
    cursor.execute(query("stream_table"), {"table": stream.table})
    found, named_types, captured, excluded = cursor.fetchone()
    columns = dict(column.split(" ", 1) for column in named_types)
    where = f"stream {stream.name!r}"
    if not found:
        yield checks.Error(
            f"{where}: table {stream.table} does not exist",
            hint="create it (a migration), or fix the declaration's table (schema-qualified)",
            id="cdc.E001",
        )
        return
    if not captured:
        yield checks.Error(
            f"{where}: table {stream.table} is not under capture (no cdc_capture trigger)",
            hint=f"in a migration: SELECT cdc.track('{stream.table}')",
            id="cdc.E002",
        )
    wanted = [*stream.keys, *(o.lstrip("-") for o in stream.order), *stream.hidden]
    for name in dict.fromkeys(wanted):
        if name not in columns:
            yield checks.Error(
                f"{where}: table {stream.table} has no column {name!r}",
                hint=f"add the column, or remove {name!r} from the declaration",
                id="cdc.E003",
            )
        elif name in stream.columns and columns[name] not in stream.columns[name].kind.pg_types:
            kind = stream.columns[name].kind
            yield checks.Error(
                f"{where}: column {name!r} is {columns[name]}, which a {kind.name} filter cannot read",
                hint=f"declare it as one of the kinds that read {columns[name]}, or change the column to "
                + " or ".join(sorted(kind.pg_types)),
                id="cdc.E004",
            )
        elif name in stream.keys and name in excluded:
            yield checks.Error(
                f"{where}: column {name!r} is excluded from capture, so its changes never show it",
                hint=f"SELECT cdc.track('{stream.table}', excluded_columns => ...) without {name!r}, or "
                "list it in the declaration's hidden columns instead",
                id="cdc.E005",
            )
