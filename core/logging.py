"""Structured logs: with LOG_FORMAT=json every line is one JSON object, with the same fields
in every process (web, cdc_listen, manage.py commands):

    {"ts": "2026-01-02T03:04:05.678+00:00", "level": "INFO", "logger": "cdc.relay",
     "message": "leader gained", "listener": "host:1234"}

plus whatever a call passes in `extra=` (listener, port, method, path, status...), and `exc`
with the traceback when there is one. The web's access log comes from AccessLogMiddleware
below (daphne's own is plain text, so core/commands.py turns it off).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

# Attributes every LogRecord has: anything else on a record came from `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

access = logging.getLogger("livefeed.access")


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


class AccessLogMiddleware:
    """One `livefeed.access` line per HTTP request: method, path, status, duration."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if iscoroutinefunction(self):
            return self._acall(request)
        start = time.monotonic()
        response = self.get_response(request)
        _log(request, response, start)
        return response

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        start = time.monotonic()
        response = await self.get_response(request)
        _log(request, response, start)
        return response


def _log(request: HttpRequest, response: HttpResponseBase, start: float) -> None:
    duration_ms = round((time.monotonic() - start) * 1000, 1)
    access.info(
        "%s %s %d %.1fms",
        request.method,
        request.path,
        response.status_code,
        duration_ms,
        extra={
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": duration_ms,
        },
    )
