"""Structured logs: with LOG_FORMAT=json every line is one JSON object, with the same fields
in every process (web, cdc_listen, manage.py commands):

    {"ts": "2026-01-02T03:04:05.678+00:00", "level": "INFO", "logger": "cdc.relay",
     "message": "leader gained", "listener": "host:1234"}

plus whatever a call passes in `extra=` (listener, port, method, path, status...), and `exc`
with the traceback when there is one. The web's access log comes from core/access.py
(daphne's own is plain text, so core/commands.py turns it off).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

# Attributes every LogRecord has: anything else on a record came from `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update((k, v) for k, v in vars(record).items() if k not in _STANDARD and k not in entry)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)  # e.g. Django's `request` extra: its repr
