"""The operations pages show their details only to operators, and the documented production
settings pass Django's deployment checks.

On a real daphne: anyone gets /healthz's status code and one word; its details (hosts,
process ids) and /metrics need an address in OPS_ALLOWED_ADDRESSES or the OPS_TOKEN."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

import pytest

from testkit.live_servers import web_server
from testkit.probes import get
from tests.conftest import ROOT

pytestmark = pytest.mark.timeout(120)
TOKEN = secrets.token_urlsafe(24)
# The production variables docs/operations.md lists ("Production settings").
PRODUCTION = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DJANGO_ALLOWED_HOSTS": "news.example.com",
    "DJANGO_HTTPS": "true",
}


def test_health_details_and_metrics_need_an_allowed_address_or_the_token(fresh_db):
    with web_server(fresh_db, OPS_ALLOWED_ADDRESSES="10.0.0.0/8", OPS_TOKEN=TOKEN) as web:
        health, metrics = web.url("/healthz"), web.url("/metrics")
        outsiders = [{}, {"Authorization": "Bearer wrong"}, {"X-Forwarded-For": "10.0.0.1"}]
        for headers in outsiders:  # X-Forwarded-For: not trusted unless CLIENT_ADDRESS_HEADER says
            status, body = get(health, headers)
            assert (status, json.loads(body)) == (503, {"status": "unhealthy"}), headers
            assert get(metrics, headers)[0] == 403, headers
        operator = {"Authorization": f"Bearer {TOKEN}"}
        status, body = get(health, operator)
        assert status == 503
        assert {"status", "database", "relay", "problems"} <= set(json.loads(body))
        status, body = get(metrics, operator)
        assert status == 200
        assert "livefeed_ws_connections" in body


def check_deploy(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_documented_production_settings_pass_check_deploy(fresh_db):
    clean = check_deploy(DATABASE_URL=fresh_db, **PRODUCTION)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "System check identified no issues" in clean.stdout
    forgot = {**PRODUCTION, "DJANGO_HTTPS": "false", "DJANGO_SECRET_KEY": ""}
    flagged = check_deploy(DATABASE_URL=fresh_db, **forgot)
    for warning in ("security.W004", "security.W009", "security.W012", "security.W016"):
        assert warning in flagged.stderr + flagged.stdout, warning
