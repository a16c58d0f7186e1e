"""A logged-in socket lives no longer than its login session.

Identity is fixed when a socket opens (docs/protocol.md), so a session that ends must end its
sockets too, or they keep receiving the user's private posts. Two ways it is noticed:

- logging out: Django's `user_logged_out` signal sends `session.ended` to the session's group,
  which every socket of that session joined; they close at once, in any web process;
- anything else (password changed, user deactivated or deleted, session expired or deleted):
  each web process re-checks all its logged-in sockets' sessions every
  WS_SESSION_CHECK_SECONDS (jittered between 50% and 90% of it), the way Django's auth checks
  a request's, and closes those that no longer log their user in.

A closed socket gets code 4401 (docs/protocol.md). Used by consumers/live.py as a mixin.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from importlib import import_module
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import get_user, user_logged_out
from django.db import DatabaseError
from django.dispatch import receiver
from django.http import HttpRequest

log = logging.getLogger("consumers.sessions")

CLOSE_SESSION_ENDED = 4401  # the login session ended: log in again, then reconnect


def session_group(session_key: str) -> str:
    """The group of one session's sockets; a hash, so the key itself never travels."""
    return "session." + hashlib.blake2b(session_key.encode(), digest_size=16).hexdigest()


def logged_in_user(session_key: str) -> int | None:
    """The id of the user a session still logs in, judged as Django judges a request's."""
    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user = get_user(request)
    return int(user.pk) if user.is_authenticated else None


def ended(logins: set[tuple[str, int]]) -> set[tuple[str, int]]:
    """Which of these (session key, user id) logins have ended."""
    return {login for login in logins if logged_in_user(login[0]) != login[1]}


@receiver(user_logged_out)
def _close_on_logout(request: HttpRequest | None = None, **_: Any) -> None:
    key = request.session.session_key if request is not None else None
    if not key:
        return
    try:
        async_to_sync(get_channel_layer().group_send)(session_group(key), {"type": "session.ended"})
    except Exception as exc:  # any layer's failure: the logout itself must still succeed
        log.warning("logout: could not tell the session's sockets (%s); the re-check closes them", exc)


class SessionWatch:
    """The logged-in sockets of this process, their sessions re-checked together."""

    def __init__(self) -> None:
        self.sockets: dict[SessionBound, tuple[str, int]] = {}
        self.task: asyncio.Task[None] | None = None

    def add(self, socket: SessionBound, login: tuple[str, int]) -> None:
        self.sockets[socket] = login
        if self.task is None or self.task.done() or self.task.get_loop() is not asyncio.get_running_loop():
            self.task = asyncio.create_task(self.run())

    def discard(self, socket: SessionBound) -> None:
        self.sockets.pop(socket, None)

    async def run(self) -> None:
        while self.sockets:
            # Jittered so processes started together do not check together; at most 90% of
            # the interval, leaving the rest for the round itself.
            await asyncio.sleep(settings.WS_SESSION_CHECK_SECONDS * random.uniform(0.5, 0.9))
            await self.check()

    async def check(self) -> None:
        watched = dict(self.sockets)
        try:
            # Off daphne's one sync thread (HTTP views run there): a round over 1,000 sessions
            # takes seconds on a busy machine (bench/session_check.py).
            gone = await database_sync_to_async(ended, thread_sensitive=False)(set(watched.values()))
        except DatabaseError as exc:  # checked again next round; sockets stay meanwhile
            log.warning("session check failed: %s", exc)
            return
        for socket, login in watched.items():
            if login in gone:
                await socket.end_session()


WATCH = SessionWatch()


class SessionBound:
    """Mixin for a websocket consumer: it closes when its login session ends."""

    scope: dict[str, Any]
    channel_layer: Any
    channel_name: str
    login_group: str | None = None

    if TYPE_CHECKING:

        async def close(self, code: int | None = None) -> None: ...

    async def bind_session(self, user_id: int | None) -> None:
        """Call once the socket is accepted, with the logged-in user (None: anonymous)."""
        session = self.scope.get("session")
        key = session.session_key if session is not None else None
        if user_id is None or not key:
            return
        self.login_group = session_group(key)
        await self.channel_layer.group_add(self.login_group, self.channel_name)
        WATCH.add(self, (key, user_id))

    async def unbind_session(self) -> None:
        """Call on disconnect."""
        WATCH.discard(self)
        if self.login_group is not None:
            await self.channel_layer.group_discard(self.login_group, self.channel_name)

    async def end_session(self) -> None:
        WATCH.discard(self)
        await self.close(CLOSE_SESSION_ENDED)

    async def session_ended(self, event: dict[str, Any]) -> None:
        """`session.ended` from the logout signal, through the channel layer."""
        await self.end_session()
