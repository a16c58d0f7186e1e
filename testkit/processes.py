"""Real processes for end-to-end tests: cdc_listen, the web server (uvicorn or daphne: WEB_SERVER),
each with its own DATABASE_URL.

Output is collected line by line on a thread, so a test waits for a log line (with a
timeout) instead of sleeping.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from core import commands

ROOT = Path(__file__).resolve().parent.parent


class Process:
    def __init__(self, argv: list[str], env: dict[str, str], name: str) -> None:
        self.name = name
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.popen = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float = 20.0, *, after: int = 0) -> str:
        """The first output line from index `after` on that matches `pattern`."""
        regex = re.compile(pattern)

        def found() -> str | None:
            return next((line for line in self.lines[after:] if regex.search(line)), None)

        with self._changed:
            if not self._changed.wait_for(lambda: found() or self.popen.poll() is not None, timeout):
                raise AssertionError(
                    f"{self.name}: no line matching {pattern!r} in {timeout}s:\n{self.output}"
                )
            line = found()
        if line is None:
            raise AssertionError(f"{self.name} exited ({self.popen.returncode}) first:\n{self.output}")
        return line

    @property
    def output(self) -> str:
        return "\n".join(self.lines[-60:])

    def signal(self, sig: int) -> None:
        self.popen.send_signal(sig)

    def stop(self, timeout: float = 10.0) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait()

    def kill(self) -> None:
        self.popen.kill()
        self.popen.wait()


def cdc_listen(dsn: str, *args: str, name: str = "cdc_listen", **env: str) -> Process:
    argv = [sys.executable, *commands.listener(*args)]
    return Process(argv, {"DATABASE_URL": dsn, **env}, name)


def web_process(dsn: str, port: int, files: int | None = None, **env: str) -> Process:
    """The web server (WEB_SERVER chooses, core/commands.py) on 127.0.0.1:`port`; with
    `files`, under that open-file limit (prlimit)."""
    argv = [sys.executable, *commands.web("127.0.0.1", port)]
    if files is not None:
        argv = ["prlimit", f"--nofile={files}:{files}", *argv]
    return Process(argv, {"DATABASE_URL": dsn, **env}, "web")


def migrate(dsn: str) -> None:
    """Install everything the real way: `manage.py migrate` in its own process."""
    env = {**os.environ, "DATABASE_URL": dsn}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=120
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
