"""What is under capture, and whether each installed trigger is still the current one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cdc import declarations
from cdc.sql import query

ROW, TRUNCATE = "cdc_capture", "cdc_truncate"  # the two triggers cdc.track() installs


@dataclass(frozen=True, slots=True)
class TriggerStatus:
    table: str
    trigger: str  # ROW | TRUNCATE
    state: str  # 'ok' | 'outdated' | 'disabled' | 'missing'
    excluded_columns: tuple[str, ...] = ()
    installed_hash: str | None = None

    @property
    def ok(self) -> bool:
        return self.state == "ok"


def capture_report(cursor: Any) -> list[TriggerStatus]:
    """Both triggers of every table under capture, plus the configured tables that lack them."""
    cursor.execute(query("capture_status"))
    installed: dict[tuple[str, str], TriggerStatus] = {}
    for table, excluded, *stamps in cursor.fetchall():  # (installed, expected, enabled) of each
        row, truncate = stamps[:3], stamps[3:]
        installed[table, ROW] = TriggerStatus(table, ROW, _state(*row), tuple(excluded), row[0])
        installed[table, TRUNCATE] = TriggerStatus(table, TRUNCATE, _state(*truncate), (), truncate[0])
    missing = {
        (table, trigger): TriggerStatus(table, trigger, "missing")
        for table in (stream.table for stream in declarations.all_streams().values())
        for trigger in (ROW, TRUNCATE)
    }
    return sorted({**missing, **installed}.values(), key=lambda s: (s.table, s.trigger))


def _state(installed_hash: str | None, expected_hash: str | None, enabled: bool) -> str:
    if expected_hash is None:
        return "missing"
    if installed_hash != expected_hash:
        return "outdated"
    return "ok" if enabled else "disabled"


@dataclass(frozen=True, slots=True)
class Listener:
    name: str
    role: str  # 'leader' | 'standby'
    heartbeat_age: float  # seconds since its last heartbeat
    last_tick: int | None
    relayed_total: int  # changes this process relayed since it started


@dataclass(frozen=True, slots=True)
class RelayHealth:
    relayed_tick: int
    relayed_at: datetime
    lag_seconds: float  # age of the oldest committed change not relayed yet
    pending: int  # committed changes not relayed yet
    captured_total: int  # event ids handed out so far
    listeners: tuple[Listener, ...]

    def leader(self, max_heartbeat_age: float) -> Listener | None:
        """The leader, if its heartbeat is fresh: a killed leader's row outlives it."""
        return next(
            (x for x in self.listeners if x.role == "leader" and x.heartbeat_age < max_heartbeat_age), None
        )

    def problems(self, *, max_heartbeat_age: float, max_lag: float) -> list[str]:
        """Why the relay is unhealthy; empty when it is healthy (/healthz, cdc_status)."""
        found = []
        if self.leader(max_heartbeat_age) is None:
            found.append(f"no cdc_listen leader has sent a heartbeat in the last {max_heartbeat_age:g}s")
        if self.lag_seconds > max_lag:
            found.append(f"relay lag {self.lag_seconds:.1f}s is over {max_lag:g}s")
        return found


def relay_health(cursor: Any) -> RelayHealth:
    cursor.execute(query("relay_health"))
    relayed_tick, relayed_at, lag, pending, captured, listeners = cursor.fetchone()
    return RelayHealth(
        relayed_tick=relayed_tick,
        relayed_at=relayed_at,
        lag_seconds=lag,
        pending=pending,
        captured_total=captured,
        listeners=tuple(
            Listener(
                name=row["name"],
                role=row["role"],
                heartbeat_age=row["heartbeat_age"],
                last_tick=row["last_tick"],
                relayed_total=row["relayed_total"],
            )
            for row in listeners or ()
        ),
    )
