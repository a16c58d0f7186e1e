"""The project's settings, with tests/worker_app.py as the ASGI application (for runworker)."""

from core.settings import *  # noqa: F403

ASGI_APPLICATION = "tests.worker_app.application"
