"""Where the database is: `DATABASE_URL`, or the project's own embedded Postgres.

With `DATABASE_URL` unset, the `pgserver` package runs a real Postgres server from
`.pgdata/` over a Unix socket. pgserver counts the processes holding it and stops the
server when the last one exits, so `manage.py` commands run alone clean up after
themselves, and a running `manage.py up` keeps it alive for the others.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

from psycopg.conninfo import conninfo_to_dict, make_conninfo

EMBEDDED_DATA_DIR = Path(__file__).resolve().parent.parent / ".pgdata"


def database_url() -> str:
    return os.environ.get("DATABASE_URL") or embedded_server_url(EMBEDDED_DATA_DIR)


def embedded_server_url(data_dir: Path, *, cleanup_mode: str | None = "stop") -> str:
    """Start (or join) the embedded server in `data_dir` and return its URL."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset in containers
        from pgserver.postgres_server import get_server

    # Its INFO lines include one written at interpreter exit, after stderr may be closed.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    return get_server(data_dir, cleanup_mode=cleanup_mode).get_uri()


def django_database(url: str) -> dict[str, Any]:
    """Django's DATABASES entry for a libpq URL (host may be a socket directory)."""
    params: dict[str, Any] = conninfo_to_dict(url)
    # Every query here is short. A misestimated plan (cdc.event's txids are few and skewed
    # after bulk inserts) must not buy a JIT compile, hundreds of ms, on the hot path; the
    # URL's own `options` come after, so they can turn it back on.
    params["options"] = " ".join(filter(None, ["-c jit=off", params.get("options")]))
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": params.pop("dbname", "postgres"),
        "USER": params.pop("user", ""),
        "PASSWORD": params.pop("password", ""),
        "HOST": params.pop("host", ""),
        "PORT": params.pop("port", ""),
        "OPTIONS": params,
        "CONN_HEALTH_CHECKS": True,
    }


def conninfo(alias: str = "default", **overrides: Any) -> str:
    """A libpq connection string for one of Django's databases (the test one in tests)."""
    from django.db import connections

    db = connections[alias].settings_dict  # the test database's name, under tests
    params = {
        "dbname": db["NAME"],
        "user": db["USER"] or None,
        "password": db["PASSWORD"] or None,
        "host": db["HOST"] or None,
        "port": db["PORT"] or None,
        **db.get("OPTIONS", {}),
        **overrides,
    }
    return make_conninfo(**{k: v for k, v in params.items() if v is not None})
