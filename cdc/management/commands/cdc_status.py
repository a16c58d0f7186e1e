from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from cdc.status import RelayHealth, capture_report, relay_health


class Command(BaseCommand):
    help = (
        "Report tables under capture and triggers that are missing or outdated (exit 1 if any), "
        "and the relay's health: leader, lag, listeners."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        with connection.cursor() as cursor:
            report = capture_report(cursor)
            relay = relay_health(cursor)
        self.stdout.write("capture triggers:")
        for status in report:
            excluded = f"  excluded: {', '.join(status.excluded_columns)}" if status.excluded_columns else ""
            self.stdout.write(f"  {status.table:<30} {status.trigger:<13} {status.state:<9}{excluded}")
        self.write_relay(relay)
        problems = [s for s in report if not s.ok]
        if problems:
            hint = "re-install with: SELECT cdc.track('<table>');"
            raise CommandError(f"{len(problems)} capture trigger(s) need attention; {hint}")

    def write_relay(self, relay: RelayHealth) -> None:
        """The relay's health as /healthz judges it; informative only (a relay that is not
        running yet is not a capture problem, so it does not change the exit status)."""
        max_age = settings.HEALTH_MAX_HEARTBEAT_AGE
        leader = relay.leader(max_age)
        problems = relay.problems(max_heartbeat_age=max_age, max_lag=settings.HEALTH_MAX_LAG)
        self.stdout.write("relay:")
        self.stdout.write(f"  {'health':<14} {'; '.join(problems) or 'ok'}")
        self.stdout.write(f"  {'leader':<14} {leader.name if leader else 'none'}")
        self.stdout.write(f"  {'lag':<14} {relay.lag_seconds:.1f}s ({relay.pending} changes waiting)")
        self.stdout.write(
            f"  {'relayed tick':<14} {relay.relayed_tick} at {relay.relayed_at:%Y-%m-%d %H:%M:%S %Z}"
        )
        self.stdout.write("listeners:" if relay.listeners else "listeners: none running")
        for x in relay.listeners:
            self.stdout.write(
                f"  {x.name:<30} {x.role:<8} heartbeat {x.heartbeat_age:.1f}s ago"
                f"  last tick {x.last_tick if x.last_tick is not None else '-'}  relayed {x.relayed_total}"
            )
