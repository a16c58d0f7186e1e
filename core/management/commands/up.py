from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from core.database import conninfo
from core.launcher import Launcher


class Command(BaseCommand):
    help = "Start the whole system: migrations, daphne, cdc_listen and the demo writers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-demo", action="store_true", help="no demo writers and no demo/demo login")

    def handle(self, *args: Any, host: str, port: int, no_demo: bool, **options: Any) -> None:
        launcher = Launcher(database_url=conninfo(), host=host, port=port, demo=not no_demo)
        raise SystemExit(launcher.run())
