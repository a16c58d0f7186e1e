"""What crosses the layer: Channels messages (dicts with a `type`), msgpack-encoded as
channels_redis encodes them, and the gap notices a channel may opt in to."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any, Literal, TypedDict

import msgpack

from pglayer import metrics

log = logging.getLogger("pglayer")

Message = dict[str, Any]  # Channels' own: a `type` and whatever else the sender put in
GapReason = Literal["overflow", "expired", "reconnected"]
SHARED_DECODES = 4  # group messages whose decoded form is kept for the other local receivers (they are
# large: a cache of hundreds held a slow reader's worth of changes twice, bench/edge.py)
GAP_TYPE = "transport.gap"  # handled by a consumer's `transport_gap` (the web's: consumers/hub.py)


class GapNotice(TypedDict):
    """Sent only to channels that asked for it (`want_gaps`): some messages may be lost."""

    type: Literal["transport.gap"]
    reason: GapReason


def gap(reason: GapReason) -> GapNotice:
    return {"type": "transport.gap", "reason": reason}


def want_gaps(layer: Any, channel: str) -> None:
    """Ask `layer` for gap notices on `channel` (a consumer's `self.channel_name`); a no-op
    on layers that have none to give, such as Channels' in-memory layer."""
    opt_in = getattr(layer, "want_gaps", None)
    if opt_in is not None:
        opt_in(channel)


def serialize(message: Message | GapNotice) -> bytes:
    data = msgpack.packb(message, use_bin_type=True)
    assert isinstance(data, bytes)
    return data


def deserialize(data: bytes) -> Message | None:
    """The message, or None (counted and logged) when `data` is not one: any database user
    may NOTIFY a layer's address."""
    try:
        decoded = msgpack.unpackb(data, raw=False)
    except (ValueError, TypeError):  # msgpack's errors are ValueErrors; unhashable keys TypeErrors
        decoded = None
    return valid(decoded)


# The same bytes of one NOTIFY sit in every local channel of its group: decoded once, for the
# few latest payloads (a fan-out to a thousand consumers is a thousand look-ups, one decode).
deserialize_shared = lru_cache(maxsize=SHARED_DECODES)(deserialize)


def valid(decoded: object) -> Message | None:
    """`decoded` if it is a Channels message (a dict with a string `type`), else None, counted."""
    if isinstance(decoded, dict) and isinstance(decoded.get("type"), str):
        return decoded
    malformed("a message that is not a map with a string `type`")
    return None


_logged: list[str] = []  # the first malformed input, once logged


def malformed(what: str) -> None:
    """Count a malformed notification or message in /metrics; log only the first: a flood of
    them must not flood the log."""
    if not _logged:
        _logged.append(what)
        log.warning("channel layer: ignored %s (counted in %s; logged once)", what, metrics.MALFORMED_NAME)
    metrics.MALFORMED.inc()
