"""The live system as real processes on the test's database: cdc_listen relaying, the web
server serving /ws/live/ and the pages, the default channel layer between them; or the web alone."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from testkit.probes import get, poll
from testkit.processes import Process, cdc_listen, free_port, web_process

FAST = ("--poll-interval", "0.2")


@dataclass
class LiveSystem:
    dsn: str
    port: int
    _listener: Process | None  # None: the web alone (`web_server`)
    _web: Process | None = None

    @property
    def listener(self) -> Process:
        if self._listener is None:
            raise RuntimeError("this system has no cdc_listen: use live_system(), not web_server()")
        return self._listener

    @listener.setter
    def listener(self, process: Process) -> None:
        """A new cdc_listen in place of one that was killed (stopped with the system)."""
        self._listener = process

    @property
    def web(self) -> Process:
        if self._web is None:
            raise RuntimeError("the web server was not started: start_web() first")
        return self._web

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start_web(self, files: int | None = None, **env: str) -> None:
        """The web server on the same port (after `stop_web`, too)."""
        self._web = web_process(self.dsn, self.port, files, **env)

    def wait_web(self) -> None:
        poll(lambda: get(self.url("/healthz"))[0], lambda status: status in (200, 503))

    def stop_web(self) -> None:
        if self._web is not None:
            self._web.stop()

    def stop(self) -> None:
        self.stop_web()
        if self._listener is not None:
            self._listener.stop()


@contextmanager
def live_system(dsn: str, *listener_args: str, **listener_env: str) -> Iterator[LiveSystem]:
    """Both processes started and ready; the listener with extra arguments and environment."""
    listener = cdc_listen(dsn, *FAST, *listener_args, **listener_env)
    system = LiveSystem(dsn, free_port(), listener)
    try:
        system.start_web()  # both start at once: each takes seconds to import Django
        listener.wait_for("leader gained")
        system.wait_web()
        yield system
    finally:
        system.stop()


@contextmanager
def web_server(dsn: str, files: int | None = None, **env: str) -> Iterator[LiveSystem]:
    """The web server alone on `dsn` (no relay), with extra environment (and an open-file limit): for
    what the web decides by itself (handshakes, pages, caps)."""
    port = free_port()
    system = LiveSystem(dsn, port, None)
    system.start_web(files, **env)
    try:
        system.wait_web()
        yield system
    finally:
        system.stop()
