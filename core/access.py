"""The web's access log: one line per HTTP request, through logging (so LOG_FORMAT=json applies)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

log = logging.getLogger(__name__)


class AccessLogMiddleware:
    """One `core.access` log line per HTTP request: method, path, status, duration."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.is_async:
            return self._acall(request)
        start = time.monotonic()
        response: HttpResponseBase = self.get_response(request)
        _log(request, response, start)
        return response

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        start = time.monotonic()
        response: HttpResponseBase = await self.get_response(request)
        _log(request, response, start)
        return response


def _log(request: HttpRequest, response: HttpResponseBase, start: float) -> None:
    duration_ms = round((time.monotonic() - start) * 1000, 1)
    log.info(
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
