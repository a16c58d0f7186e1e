"""`manage.py up`: the whole system on one machine, for a first look and for development.

It runs the migrations, creates the demo login (demo/demo), then supervises the long-running
processes as children sharing one DATABASE_URL: daphne, cdc_listen and the three demo writers
(scripts/wire_feed.py, scripts/post_feed.py, scripts/ticker_feed.py), so the page moves within
seconds. Ctrl-C stops
them all. The command lines are core/commands.py's, the same as compose.yaml's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import connection

from core import commands

ROOT = Path(__file__).resolve().parent.parent
DEMO_LOGIN = ("demo", "demo")  # development only: `up --no-demo` skips it and the writers


@dataclass
class Launcher:
    database_url: str
    host: str = "127.0.0.1"
    port: int = 8000
    demo: bool = True
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def commands(self) -> dict[str, list[str]]:
        argvs = {"web": commands.web(self.host, self.port), "listener": commands.listener()}
        if self.demo:
            argvs |= commands.demo_writers()
        return {name: [sys.executable, *argv] for name, argv in argvs.items()}

    def run(self) -> int:
        env = {**os.environ, "DATABASE_URL": self.database_url, "PYTHONUNBUFFERED": "1"}
        subprocess.run([sys.executable, *commands.MIGRATE], cwd=ROOT, env=env, check=True)
        if self.demo:
            ensure_demo_login()
        for name, argv in self.commands().items():
            self.children[name] = subprocess.Popen(argv, cwd=ROOT, env=env)
        login = f"; log in as {DEMO_LOGIN[0]} / {DEMO_LOGIN[1]}" if self.demo else ""
        print(
            f"\n  live dashboard: http://{self.host}:{self.port}/{login}   (Ctrl-C stops everything)\n",
            flush=True,
        )
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop as Ctrl-C does
        try:
            return self.wait()
        except KeyboardInterrupt:
            return 0
        finally:
            self.stop()

    def wait(self) -> int:
        while True:
            for name, child in self.children.items():
                code = child.poll()
                if code is not None:
                    print(f"up: {name} exited with {code}; stopping the rest", file=sys.stderr)
                    return code or 1
            time.sleep(0.5)  # a supervisor's heartbeat, not synchronisation

    def stop(self) -> None:
        for child in self.children.values():
            if child.poll() is None:
                child.terminate()
        for child in self.children.values():
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()


def ensure_demo_login() -> None:
    """A user to log in as (private posts show only to their author), unless one exists."""
    username, password = DEMO_LOGIN
    users = get_user_model().objects
    if not users.filter(username=username).exists():
        users.create_user(username, password=password)
    connection.close()  # the children hold the connections from here on
