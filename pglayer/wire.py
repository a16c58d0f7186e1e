"""The NOTIFY side of the layer: addresses, and the payload a message travels in.

A payload is `m<expiry ms>,<target channel>,<base64 message>`, or, over the payload limit,
`t<expiry ms>,<target>,<id in pglayer.message>`; the target is empty for a group.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import NamedTuple

# NOTIFY payloads must be shorter than 8000 bytes; a longer one goes through the side table.
INLINE_LIMIT = 7800
WAKE = "w"  # a payload that only makes the listener apply new LISTENs


class Malformed(ValueError):
    """A notification on one of the layer's addresses that the layer did not send."""


def address(prefix: str, kind: str, name: str) -> str:
    """The NOTIFY channel of a group ('g'), a normal channel ('c') or a process ('p'): an
    identifier of 34 characters whatever the name's length (the limit is 63 bytes)."""
    digest = hashlib.blake2b(f"{prefix}\0{kind}\0{name}".encode(), digest_size=16).hexdigest()
    return f"{kind}_{digest}"


def inline(expires_at: float, target: str, data: bytes) -> str | None:
    """The payload carrying `data`, or None when it would not fit."""
    payload = f"m{int(expires_at * 1000)},{target},{base64.b64encode(data).decode()}"
    return payload if len(payload) < INLINE_LIMIT else None  # ASCII: characters are bytes


def stored_head(expires_at: float, target: str) -> str:
    """The payload of a stored message, but for its id (which the database appends)."""
    return f"t{int(expires_at * 1000)},{target},"


class Notification(NamedTuple):
    expires_at: float
    target: str  # a process channel, or "" for a group
    data: bytes | None  # inline, or None when stored
    stored_id: int


def parse(payload: str) -> Notification:
    kind, rest = payload[:1], payload[1:]
    try:
        expires_ms, target, body = rest.split(",", 2)
        if kind == "m":
            return Notification(int(expires_ms) / 1000, target, base64.b64decode(body, validate=True), 0)
        if kind == "t":
            return Notification(int(expires_ms) / 1000, target, None, int(body))
    except (ValueError, binascii.Error) as exc:  # too few parts, not a number, not base64
        raise Malformed(payload[:40]) from exc
    raise Malformed(payload[:40])
