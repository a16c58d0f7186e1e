"""Stream declarations for tests: filters as a subscribe asks for them."""

from __future__ import annotations

from typing import Any

from cdc import declarations
from cdc.filters import Filters


def filters(stream: str, **wanted: Any) -> Filters:
    """The filters a subscribe to `stream` with `"filters": wanted` asks for (the wire form)."""
    return declarations.all_streams()[stream].filters_of(wanted)
