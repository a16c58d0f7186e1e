"""Who is asking: the client's address, from a trusted proxy's header only when configured.

Behind a reverse proxy every connection comes from the proxy's address. With
`CLIENT_ADDRESS_HEADER` set (e.g. `X-Forwarded-For`), the last address in that header, the
one the proxy itself saw, is the client's; unset, the header is ignored (anyone can send one).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.http import HttpRequest


def client_address(peer: str | None, header_value: str | None) -> str | None:
    """The client's address, given the socket's peer and the configured header's value."""
    if settings.CLIENT_ADDRESS_HEADER and header_value:
        return header_value.rsplit(",", 1)[-1].strip()
    return peer


def scope_client_address(scope: dict[str, object]) -> str:
    """The client address of an ASGI connection (HTTP or websocket)."""
    client = scope.get("client")
    peer = str(client[0]) if isinstance(client, (list, tuple)) and client else None
    return client_address(peer, header(scope, settings.CLIENT_ADDRESS_HEADER)) or "unknown"


def header(scope: dict[str, object], name: str) -> str | None:
    """The value of an ASGI scope's header `name` (case-insensitive), or None."""
    if not name:
        return None
    wanted = name.lower().encode("latin1")
    headers: Iterable[tuple[bytes, bytes]] = scope.get("headers", [])  # type: ignore[assignment]
    return next((value.decode("latin1") for key, value in headers if key.lower() == wanted), None)


def request_client_address(request: HttpRequest) -> str | None:
    """The client address of a Django request (also django-axes' AXES_CLIENT_IP_CALLABLE)."""
    name = settings.CLIENT_ADDRESS_HEADER
    return client_address(request.META.get("REMOTE_ADDR"), request.headers.get(name) if name else None)
