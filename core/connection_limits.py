"""Caps on open websockets: per client address and per process (docs/operations.md).

Every socket holds a file descriptor; a process out of them fails everything else too
(/healthz, database connections). Past a cap the handshake is accepted and the socket closed
at once with a code saying which cap (docs/protocol.md), so a client can tell a full server
from a refused origin (HTTP 403). The client address is the trusted proxy's header when
CLIENT_ADDRESS_HEADER is set (core/client_address.py).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.conf import settings

from core import metrics
from core.client_address import scope_client_address

CLOSE_TOO_MANY_FROM_ADDRESS = 4429  # this address has WS_MAX_CONNECTIONS_PER_ADDRESS open
CLOSE_SERVER_FULL = 4503  # this process has WS_MAX_CONNECTIONS open: retry later, or elsewhere


class ConnectionLimits:
    """ASGI middleware for websockets: count open sockets, refuse those past a cap."""

    def __init__(self, application: Any) -> None:
        self.application = application
        self.open = 0
        self.by_address: Counter[str] = Counter()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        address = scope_client_address(scope)
        refusal = self.refusal(address)
        if refusal is not None:
            metrics.WS_REFUSED.labels(refusal[1]).inc()
            return await refuse(receive, send, refusal[0])
        self.open += 1
        self.by_address[address] += 1
        try:
            return await self.application(scope, receive, send)
        finally:
            self.open -= 1
            self.by_address[address] -= 1
            if not self.by_address[address]:
                del self.by_address[address]

    def refusal(self, address: str) -> tuple[int, str] | None:
        """(close code, metric label) when a new socket from `address` is past a cap."""
        if self.open >= settings.WS_MAX_CONNECTIONS:
            return CLOSE_SERVER_FULL, "server_full"
        if self.by_address[address] >= settings.WS_MAX_CONNECTIONS_PER_ADDRESS:
            return CLOSE_TOO_MANY_FROM_ADDRESS, "per_address"
        return None


async def refuse(receive: Any, send: Any, code: int) -> None:
    """Complete the handshake only to close with `code`: a refused handshake carries none."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": code})
