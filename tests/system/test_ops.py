"""What an operator relies on, against real processes: /healthz follows the listener and the
database, /metrics parses and its counters move with the changes, logs are JSON lines with
the same fields in web and listener."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from psycopg.conninfo import conninfo_to_dict

from core import commands
from testkit.pg import psql
from testkit.probes import get, metrics, poll
from testkit.processes import Process, cdc_listen, free_port, web_process
from tests.conftest import ROOT, drop_database

FAST = ("--poll-interval", "0.2")
JSON_LOGS = {"LOG_FORMAT": "json"}
LOG_FIELDS = {"ts", "level", "logger", "message"}


@dataclass
class System:
    """A real web server on the test's database, and the cdc_listen processes the test starts."""

    dsn: str
    port: int
    web: Process
    listeners: list[Process] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def health(self) -> tuple[int, dict[str, Any]]:
        status, body = get(self.url("/healthz"))
        return status, json.loads(body)

    def start_listener(self, *args: str) -> Process:
        listener = cdc_listen(self.dsn, *FAST, *args, **JSON_LOGS)
        self.listeners.append(listener)
        listener.wait_for("leader gained")
        return listener

    def stop(self) -> None:
        for proc in [*self.listeners, self.web]:
            proc.stop()


@pytest.fixture
def system(fresh_db: str) -> Iterator[System]:
    port = free_port()
    web = web_process(fresh_db, port, None, HEALTH_MAX_HEARTBEAT_AGE="3", HEALTH_MAX_LAG="1", **JSON_LOGS)
    running = System(fresh_db, port, web)
    try:
        poll(running.health, lambda answer: answer[0] in (200, 503))
        yield running
    finally:
        running.stop()


def json_lines(proc: Process) -> list[dict[str, Any]]:
    entries = []
    for line in proc.lines:
        try:
            entries.append(json.loads(line))
        except ValueError:
            pytest.fail(f"{proc.name} wrote a line that is not JSON: {line!r}")
    return entries


def listener_name(listener: Process) -> str:
    return f"{socket.gethostname()}:{listener.popen.pid}"


def test_healthz_follows_the_listener_through_kill_restart_and_stop(system):
    status, body = system.health()
    assert status == 503
    assert body["database"] == "ok"
    assert any("no cdc_listen leader" in p for p in body["problems"])

    listener = system.start_listener()
    status, body = poll(system.health, lambda answer: answer[0] == 200)
    assert body["status"] == "ok"
    assert body["problems"] == []
    assert body["relay"]["leader"] == listener_name(listener)

    listener.kill()  # SIGKILL: its row stays, its heartbeat goes stale
    psql(system.dsn, "INSERT INTO article (title) SELECT 'while down ' || i FROM generate_series(1, 3) AS i")
    status, body = poll(system.health, lambda answer: len(answer[1]["problems"]) == 2)
    assert status == 503
    assert body["relay"]["pending"] == 3
    assert any("relay lag" in p for p in body["problems"])

    listener = system.start_listener()
    status, body = poll(system.health, lambda answer: answer[0] == 200)
    assert body["relay"]["pending"] == 0
    assert body["relay"]["leader"] == listener_name(listener)

    listener.stop()  # SIGTERM: a clean stop removes its row at once
    status, body = poll(system.health, lambda answer: answer[0] == 503, timeout=5)
    assert body["relay"]["leader"] is None


def test_a_leader_working_through_a_backlog_is_reported_alive(system):
    psql(system.dsn, "INSERT INTO article (title) SELECT 'backlog ' || i FROM generate_series(1, 30000) AS i")
    listener = system.start_listener("--batch-size", "10")  # thousands of ticks to catch up

    _status, body = poll(system.health, lambda answer: answer[1].get("relay", {}).get("leader") is not None)
    assert body["relay"]["leader"] == listener_name(listener)
    assert body["relay"]["pending"] > 0, "caught up before the check: make the backlog longer"


def test_healthz_is_503_when_the_database_is_gone(system):
    assert system.health()[1]["database"] == "ok"
    drop_database(str(conninfo_to_dict(system.dsn)["dbname"]))
    _status, body = poll(system.health, lambda answer: answer[0] == 503)
    assert body["database"] == "down"
    assert body["problems"][0].startswith("database: ")


def test_metrics_parse_and_move_when_changes_flow(system):
    listener_port = free_port()
    listener = system.start_listener("--metrics-port", str(listener_port))
    listener.wait_for("serving metrics")
    relay_url, web_url = f"http://127.0.0.1:{listener_port}/metrics", system.url("/metrics")
    assert metrics(relay_url)["livefeed_relay_changes_total"] == 0
    assert metrics(web_url)["livefeed_cdc_captured_total"] == 0

    wire = subprocess.run(
        [sys.executable, *commands.wire_feed("--count", "25", "--rate", "1000")],
        cwd=ROOT,
        env={"DATABASE_URL": system.dsn},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "inserted 25 articles" in wire.stdout

    relay = poll(lambda: metrics(relay_url), lambda m: m["livefeed_relay_changes_total"] == 25)
    assert relay["livefeed_relay_batch_size_sum"] == 25
    assert relay["livefeed_relay_batch_size_count"] == relay["livefeed_relay_ticks_total"] >= 1
    assert relay["livefeed_relay_leader"] == 1
    assert relay["livefeed_relay_reconnects_total"] == 0

    name = listener_name(listener)
    web = poll(
        lambda: metrics(web_url),
        lambda m: m.get(f"livefeed_cdc_listener_relayed_total{{listener={name}}}") == 25,
    )
    assert web["livefeed_database_up"] == 1
    assert web["livefeed_cdc_captured_total"] == 25
    assert web["livefeed_cdc_pending_changes"] == 0
    assert web["livefeed_cdc_leader_up"] == 1
    assert web["livefeed_cdc_listeners{role=leader}"] == 1
    assert web["livefeed_ws_connections"] == 0  # the consumers' metrics are on the same page
    assert web["channel_layer_malformed_total"] == 0  # and the channel layer's

    psql(
        system.dsn,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = 'cdc_listen' AND datname = current_database()",
    )
    poll(lambda: metrics(relay_url), lambda m: m["livefeed_relay_reconnects_total"] == 1)


def test_logs_are_json_lines_with_the_same_fields_in_web_and_listener(system):
    listener = system.start_listener()
    poll(system.health, lambda answer: answer[0] == 200)
    assert get(system.url("/no-such-page"))[0] == 404
    system.web.wait_for(r"core\.access.*/no-such-page")
    listener.signal(signal.SIGTERM)
    listener.wait_for("cdc_listen stopped")

    lines = {"web": json_lines(system.web), "listener": json_lines(listener)}
    for name, entries in lines.items():
        assert entries, f"{name} logged nothing"
        assert all(entry.keys() >= LOG_FIELDS for entry in entries), name
    gained = next(e for e in lines["listener"] if e["message"] == "leader gained")
    assert gained["listener"] == listener_name(listener)
    assert gained["logger"] == "cdc.relay"
    access = [e for e in lines["web"] if e["logger"] == "core.access"]
    assert {"method": "GET", "path": "/no-such-page", "status": 404}.items() <= access[-1].items()
    assert any(e["path"] == "/healthz" and e["status"] == 200 for e in access)


def test_manage_py_up_runs_the_whole_system_with_demo_data_and_stops_cleanly(fresh_db):
    port = free_port()
    up = Process([sys.executable, "manage.py", "up", "--port", str(port)], {"DATABASE_URL": fresh_db}, "up")
    try:
        up.wait_for("log in as demo / demo")
        poll(lambda: get(f"http://127.0.0.1:{port}/healthz"), lambda answer: answer[0] == 200)
        poll(  # the demo writers' changes reach the relay within seconds
            lambda: metrics(f"http://127.0.0.1:{port}/metrics"),
            lambda m: any(k.startswith("livefeed_cdc_listener_relayed") and v >= 3 for k, v in m.items()),
        )
        tables = psql(fresh_db, "SELECT DISTINCT table_name FROM cdc.event ORDER BY 1").split()
        assert tables == ["public.article", "public.post", "public.ticker"]
        assert psql(fresh_db, "SELECT count(*) FROM auth_user WHERE username = 'demo'").strip() == "1"
    finally:
        assert up.stop() == 0
    assert "wire_feed: inserted" in up.output
    assert "post_feed: inserted" in up.output
    assert "ticker_feed: updated" in up.output
