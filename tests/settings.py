"""The project's settings, with the test app tests/streams_app installed: a stream declared
outside the project's own apps (tests/integration/test_declared_stream.py)."""

from core.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.streams_app"]  # noqa: F405
