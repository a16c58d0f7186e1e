"""Who may read the operations pages' details: /healthz's body and /metrics.

They name hosts, process ids and traffic, which help an attacker more than a user. Allowed:
a client address in OPS_ALLOWED_ADDRESSES (networks; loopback by default), or a request
carrying `Authorization: Bearer <OPS_TOKEN>` (Prometheus' `authorization` scrape option).
"""

from __future__ import annotations

import ipaddress
import secrets

from django.conf import settings
from django.http import HttpRequest

from core.client_address import request_client_address


def ops_allowed(request: HttpRequest) -> bool:
    return _has_token(request) or _from_allowed_address(request)


def _has_token(request: HttpRequest) -> bool:
    token: str = settings.OPS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and secrets.compare_digest(given.strip(), token)


def _from_allowed_address(request: HttpRequest) -> bool:
    try:
        address = ipaddress.ip_address(request_client_address(request) or "")
    except ValueError:
        return False
    networks = (ipaddress.ip_network(net, strict=False) for net in settings.OPS_ALLOWED_ADDRESSES)
    return any(address in network for network in networks)
