"""The websocket origin check on a real daphne: only a page of this very site (scheme, host
and port) or an origin in DJANGO_CSRF_TRUSTED_ORIGINS opens a socket; the browser sends the
user's cookie whatever the page, so anything looser hands another site her private posts."""

from __future__ import annotations

import pytest
from websockets.exceptions import InvalidStatus

from testkit.live_servers import web_server
from testkit.wsclient import real_socket
from tests.consumer_env import log_in_new_user

pytestmark = [pytest.mark.timeout(90), pytest.mark.usefixtures("live_db")]
TRUSTED = "https://app.example"


async def test_only_this_sites_origin_or_a_trusted_one_opens_a_socket(fresh_db):
    _, cookie = await log_in_new_user("alice")
    with web_server(fresh_db, DJANGO_CSRF_TRUSTED_ORIGINS=TRUSTED) as web:
        port = web.port
        others = [
            "http://127.0.0.1:9999",  # another port: another site
            f"https://127.0.0.1:{port}",  # another scheme
            f"http://localhost:{port}",  # another host, though an allowed one
            "http://evil.example",
            "null",
            None,
        ]
        for origin in others:
            with pytest.raises(InvalidStatus) as refused:
                async with real_socket(port, cookie, origin=origin):
                    pass
            assert refused.value.response.status_code == 403, origin
        for origin in (f"http://127.0.0.1:{port}", TRUSTED):
            async with real_socket(port, cookie, origin=origin) as client:
                assert await client.answers_ping(), origin
