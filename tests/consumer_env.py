"""In-process websocket tests: the real ASGI application (origin check, session auth, the
consumer), Django pointed at the test's own database, Channels' in-memory layer, and the
real relay (cdc/relay.py) running in the test's event loop.

Test modules import the fixtures they use from here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import BaseChannelLayer, get_channel_layer
from django.db import connections
from django.test import override_settings

from cdc.relay import Relay
from consumers import reads
from core.database import django_database
from testkit.wsclient import TIMEOUT, CommunicatorSocket, communicator

MEMORY_LAYER = {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 10_000}}
_CONNECTION_KEYS = ("NAME", "USER", "PASSWORD", "HOST", "PORT", "OPTIONS")


@contextmanager
def django_on(dsn: str, django_db_blocker: Any) -> Iterator[None]:
    """Django's default database is `dsn` meanwhile (the test's own), and may be used."""
    settings_dict = connections["default"].settings_dict
    saved = {key: settings_dict[key] for key in _CONNECTION_KEYS}
    target = django_database(dsn)
    settings_dict.update({key: target[key] for key in _CONNECTION_KEYS})
    try:
        with django_db_blocker.unblock():
            yield
    finally:
        settings_dict.update(saved)


@pytest.fixture
def django_db_at(fresh_db: str, django_db_blocker: Any) -> Iterator[str]:
    """Django (users, sessions, pages) on `fresh_db`, for a test in this thread."""
    with django_on(fresh_db, django_db_blocker):
        yield fresh_db
        connections.close_all()  # this thread's, before the database goes


@pytest.fixture
async def live_db(fresh_db: str, django_db_blocker: Any) -> AsyncIterator[str]:
    """Django and the consumers' database pool on `fresh_db`, for an async test (Django's
    queries run in worker threads that close their connections after each call)."""
    with django_on(fresh_db, django_db_blocker):
        try:
            yield fresh_db
        finally:
            await reads.close_pools()


@pytest.fixture
def layer() -> Any:
    with override_settings(CHANNEL_LAYERS={"default": MEMORY_LAYER}):
        yield get_channel_layer()


@asynccontextmanager
async def running(relay: Relay) -> AsyncIterator[Relay]:
    task = asyncio.create_task(relay.run())
    try:
        yield relay
    finally:
        relay.stop()
        await asyncio.wait_for(task, TIMEOUT)


@pytest.fixture
async def relay(live_db: str, layer: BaseChannelLayer) -> AsyncIterator[Relay]:
    async with running(Relay(live_db, layer=layer, name="test-relay")) as relay:
        yield relay


async def insert_post(aconn: Any, author_id: int, body: str, visibility: str = "public") -> int:
    """A post written with plain SQL, as any writer would; its id."""
    cur = await aconn.execute(
        "INSERT INTO post (author_id, body, visibility) VALUES (%s, %s, %s) RETURNING id",
        (author_id, body, visibility),
    )
    return (await cur.fetchone())[0]


@database_sync_to_async
def make_user(username: str, password: str) -> int:
    """A user in Django's tables (the test needs `live_db`), for the login form; its id."""
    from django.contrib.auth import get_user_model

    return int(get_user_model().objects.create_user(username, password=password).pk)


@database_sync_to_async
def log_in_new_user(username: str) -> tuple[int, str]:
    """A new user with a logged-in session: (user id, the Cookie header that carries it)."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username)
    return user.pk, f"sessionid={logged_in_session(user)}"


def logged_in_session(user: Any) -> str:
    """The key of a new session in which `user` is logged in, as a login form makes one."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session.update(
        {
            SESSION_KEY: str(user.pk),
            BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
            HASH_SESSION_KEY: user.get_session_auth_hash(),
        }
    )
    session.create()
    assert session.session_key is not None
    return session.session_key


@asynccontextmanager
async def connected(cookie: str | None = None, app: Any = None) -> AsyncIterator[CommunicatorSocket]:
    """A websocket to the real ASGI application (or `app`), logged in when a cookie is given."""
    from core.asgi import application

    async with communicator(app or application, cookie) as client:
        yield client
