"""A logged-in socket ends with its login session, on a real daphne with real websockets:
at once when the same browser logs out, within WS_SESSION_CHECK_SECONDS when the session
ends any other way; meanwhile a socket whose session lives on keeps working."""

from __future__ import annotations

import secrets
import urllib.request
from contextlib import AsyncExitStack

import pytest
from channels.db import database_sync_to_async

from consumers.sessions import CLOSE_SESSION_ENDED
from testkit.live_servers import web_server
from testkit.pg import psql
from testkit.wsclient import TIMEOUT, real_socket
from tests.consumer_env import insert_post, log_in_new_user

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("live_db")]
CHECK_SECONDS = 20  # the re-check runs 10 to 18 s apart: a close within 5 s is the logout's


def log_out(url: str, cookie: str) -> int:
    """POST the logout form as the browser holding `cookie` does (with its CSRF token)."""
    token = secrets.token_hex(16)  # a CSRF secret of Django's length, in cookie and header
    request = urllib.request.Request(
        url, method="POST", headers={"Cookie": f"{cookie}; csrftoken={token}", "X-CSRFToken": token}
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        return int(response.status)


@database_sync_to_async
def change_password(user_id: int) -> None:
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(pk=user_id)
    user.set_password("a new one")
    user.save()


async def test_sockets_close_when_their_login_session_ends(fresh_db, aconn):
    users = {name: await log_in_new_user(name) for name in ("out", "pw", "off", "expired", "gone", "stays")}
    with web_server(fresh_db, WS_SESSION_CHECK_SECONDS=str(CHECK_SECONDS)) as web:
        async with AsyncExitStack() as stack:
            sockets = {
                name: await stack.enter_async_context(real_socket(web.port, cookie))
                for name, (_, cookie) in users.items()
            }
            for client in sockets.values():
                await client.subscribe("posts", snapshot=1)

            assert log_out(web.url("/accounts/logout/"), users["out"][1]) == 200
            assert await sockets["out"].close_code(within=5) == CLOSE_SESSION_ENDED

            await change_password(users["pw"][0])
            psql(fresh_db, f"UPDATE auth_user SET is_active = false WHERE id = {users['off'][0]}")
            expired, gone = (users[name][1].partition("=")[2] for name in ("expired", "gone"))
            psql(fresh_db, f"UPDATE django_session SET expire_date = now() WHERE session_key = '{expired}'")
            psql(fresh_db, f"DELETE FROM django_session WHERE session_key = '{gone}'")
            for name in ("pw", "off", "expired", "gone"):
                assert await sockets[name].close_code(within=CHECK_SECONDS + 5) == CLOSE_SESSION_ENDED, name

            survivor = sockets["stays"]
            await insert_post(aconn, users["stays"][0], "still mine", "private")
            assert await survivor.answers_ping()
            _, snapshot = await survivor.subscribe("posts", snapshot=1)
            assert [row["body"] for row in snapshot["rows"]] == ["still mine"]
