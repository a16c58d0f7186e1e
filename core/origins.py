"""The websocket origin check: a socket is opened only by a page of this site.

A browser sends its page's origin (scheme, host, port) with every websocket handshake, and
sends the user's cookies whatever that page is, so the origin is what stops another site from
reading a logged-in user's private posts. As Django's CSRF check does for forms, an origin is
accepted when it is the server's own (the same scheme, host and port as the request, for a
host in ALLOWED_HOSTS) or is listed in CSRF_TRUSTED_ORIGINS. Anything else is refused before
the handshake completes (HTTP 403).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

from core.client_address import header

DEFAULT_PORTS = {"http": 80, "https": 443}
Origin = tuple[str, str, int]


def parse_origin(text: str) -> Origin | None:
    """(scheme, host, port) of an origin, or None when it is not an http(s) origin."""
    try:
        parts = urlsplit(text.strip().lower())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.scheme, parts.hostname, port or DEFAULT_PORTS[parts.scheme]


def request_scheme(scope: dict[str, Any]) -> str:
    """The scheme the browser used: wss, or https at a TLS proxy that says so (as Django's
    SECURE_PROXY_SSL_HEADER), is https."""
    if scope.get("scheme") in ("wss", "https"):
        return "https"
    proxy_header: tuple[str, str] | None = settings.SECURE_PROXY_SSL_HEADER
    if proxy_header is not None:
        name, secure_value = proxy_header
        value = header(scope, name.removeprefix("HTTP_").replace("_", "-"))
        if value is not None and value.split(",", 1)[0].strip() == secure_value:
            return "https"
    return "http"


def origin_allowed(scope: dict[str, Any]) -> bool:
    origin = parse_origin(header(scope, "origin") or "")
    if origin is None:
        return False
    if origin in {parse_origin(trusted) for trusted in settings.CSRF_TRUSTED_ORIGINS}:
        return True
    host = header(scope, "host") or ""
    domain, _ = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return False
    return origin == parse_origin(f"{request_scheme(scope)}://{host}")


class OriginCheck:
    """ASGI middleware for websockets: refuse a handshake from another origin."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if origin_allowed(scope):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)
