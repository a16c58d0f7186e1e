"""GET /live/rows/<stream>/<id>: one whole row, as a snapshot would show it to this user;
GET /live/streams: which streams there are and what each accepts.

A change or snapshot row too large for a frame arrives with its largest values cut and
named in `truncated` (cdc/wire.py); a client fetches the whole row here. The same query as
snapshots, so the same rules: excluded and hidden columns never, rows that are not public
only to their owner.
"""

from __future__ import annotations

import psycopg
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from cdc import declarations
from cdc.filters import Filters
from consumers import reads
from consumers.subscription import Subscription


@never_cache
@require_GET
async def row(request: HttpRequest, stream: str, row_id: int) -> HttpResponse:
    if declarations.get(stream) is None:
        return _error(404, "unknown_stream", f"no stream {stream[:40]!r}")
    user = await request.auser()
    viewer_id = user.pk if user.is_authenticated else None
    sub = Subscription(stream, Filters(), viewer_id)
    try:
        async with reads.consistent() as conn:
            found = [text async for text in reads.latest_rows(conn, sub, 1, row_id=row_id)]
    except psycopg.Error:
        return _error(503, "unavailable", "database unavailable: try again")
    if not found:  # absent, or not this user's to see: the same answer, so nothing leaks
        return _error(404, "not_found", f"no {stream} row {row_id}")
    return HttpResponse(found[0], content_type="application/json")


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": code, "message": message}, status=status)


@never_cache
@require_GET
async def streams(request: HttpRequest) -> HttpResponse:
    """GET /live/streams: every stream and what it accepts, as the `streams` message says it."""
    return JsonResponse(declarations.streams_message())
