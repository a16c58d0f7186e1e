"""Login throttling (django-axes) on a real daphne through the real login form: after
AXES_FAILURE_LIMIT wrong passwords for one username from one address, even the right one is
refused for the cool-off; other users from that address still log in."""

from __future__ import annotations

import secrets
import urllib.error
import urllib.parse
import urllib.request

import pytest

from testkit.live_servers import web_server
from testkit.wsclient import TIMEOUT
from tests.consumer_env import make_user

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("live_db")]
LIMIT = 5


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def log_in(url: str, username: str, password: str) -> tuple[int, bool]:
    """POST the login form as a browser would: (status, whether a session cookie was set)."""
    token = secrets.token_hex(16)
    form = {"username": username, "password": password, "csrfmiddlewaretoken": token}
    request = urllib.request.Request(
        url, data=urllib.parse.urlencode(form).encode(), headers={"Cookie": f"csrftoken={token}"}
    )
    try:
        with urllib.request.build_opener(NoRedirects).open(request, timeout=TIMEOUT) as response:
            status, headers = response.status, response.headers
    except urllib.error.HTTPError as error:
        status, headers = error.code, error.headers
    cookies = headers.get_all("Set-Cookie") or []
    return int(status), any(c.startswith("sessionid=") for c in cookies)


async def test_wrong_passwords_lock_that_username_at_that_address_out(fresh_db):
    await make_user("alice", "the right one")
    await make_user("bob", "bob's own")
    with web_server(fresh_db, AXES_FAILURE_LIMIT=str(LIMIT)) as web:
        url = web.url("/accounts/login/")
        answers = [log_in(url, "alice", f"guess {i}") for i in range(60)]
        assert answers[: LIMIT - 1] == [(200, False)] * (LIMIT - 1)  # the form again, with an error
        assert set(answers[LIMIT:]) == {(429, False)}
        assert log_in(url, "alice", "the right one") == (429, False)
        assert log_in(url, "bob", "bob's own") == (302, True)
