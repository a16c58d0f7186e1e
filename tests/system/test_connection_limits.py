"""Connection caps on a real daphne: per client address and per process, each answered with
its close code (docs/protocol.md), the server still answering everything else; the client
address from a proxy's header only when configured; a warning at start when the open-file
limit is below what the caps need."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import pytest
from websockets.exceptions import ConnectionClosed

from core.connection_limits import CLOSE_SERVER_FULL, CLOSE_TOO_MANY_FROM_ADDRESS
from core.file_limit import FILE_HEADROOM
from testkit.live_servers import web_server
from testkit.probes import get, poll
from testkit.processes import cdc_listen
from testkit.wsclient import TIMEOUT, RealSocket, real_socket

pytestmark = pytest.mark.timeout(120)
HUGE = "1000000"  # sockets: far above this machine's open-file limit


async def open_socket(stack: AsyncExitStack, port: int, forwarded_for: str) -> RealSocket:
    return await stack.enter_async_context(real_socket(port, headers={"X-Forwarded-For": forwarded_for}))


async def accepted(client: RealSocket) -> bool:
    try:
        return await client.answers_ping()
    except ConnectionClosed:
        return False


async def test_sockets_past_a_cap_are_closed_with_its_code_and_the_server_goes_on(fresh_db):
    caps = {"WS_MAX_CONNECTIONS": "5", "WS_MAX_CONNECTIONS_PER_ADDRESS": "3"}
    with web_server(fresh_db, None, CLIENT_ADDRESS_HEADER="X-Forwarded-For", **caps) as web:
        async with AsyncExitStack() as stack:
            # The proxy appends the address it saw: only the last entry counts.
            mine = [await open_socket(stack, web.port, f"10.9.9.9, 10.0.0.{i}") for i in (1, 1, 1)]
            refused = await open_socket(stack, web.port, "10.0.0.1")
            assert await refused.close_code() == CLOSE_TOO_MANY_FROM_ADDRESS
            others = [await open_socket(stack, web.port, "10.0.0.2") for _ in range(2)]
            full = await open_socket(stack, web.port, "10.0.0.3")
            assert await full.close_code() == CLOSE_SERVER_FULL
            for client in mine + others:
                assert await client.answers_ping()
            assert poll(lambda: get(web.url("/healthz"))[0], lambda status: status in (200, 503))
            await mine[0].ws.close()
            # A closed socket frees its place (once daphne has seen it go).
            deadline = asyncio.get_running_loop().time() + TIMEOUT
            while True:
                newcomer = await open_socket(stack, web.port, "10.0.0.1")
                if await accepted(newcomer):
                    break
                assert asyncio.get_running_loop().time() < deadline, "the closed socket kept its place"
        assert "open-file limit" not in web.web.output


@pytest.mark.timeout(180)
async def test_sockets_from_many_addresses_never_exhaust_the_file_limit(fresh_db):
    """The default cap fits the process's open-file limit: past it sockets are turned away
    with 4503, and /healthz still answers (without the cap daphne could accept nothing)."""
    files = 256
    with web_server(fresh_db, files, CLIENT_ADDRESS_HEADER="X-Forwarded-For") as web:
        async with AsyncExitStack() as stack:
            sockets = [
                await open_socket(stack, web.port, f"10.1.{i // 200}.{i % 200}") for i in range(files + 50)
            ]
            answers = [await accepted(client) for client in sockets]
            refused = {client.ws.close_code for client, ok in zip(sockets, answers, strict=True) if not ok}
            assert answers.count(True) == files - FILE_HEADROOM
            assert refused == {CLOSE_SERVER_FULL}
            assert get(web.url("/healthz"))[0] in (200, 503)
        assert "open-file limit" not in web.web.output


async def test_a_client_address_header_is_ignored_unless_configured(fresh_db):
    with web_server(fresh_db, WS_MAX_CONNECTIONS_PER_ADDRESS="2", WS_MAX_CONNECTIONS=HUGE) as web:
        web.web.wait_for("open-file limit is \\d+, below the 1000100 that WS_MAX_CONNECTIONS=1000000 needs")
        async with AsyncExitStack() as stack:
            for address in ("10.0.0.1", "10.0.0.2"):
                assert await (await open_socket(stack, web.port, address)).answers_ping()
            spoofed = await open_socket(stack, web.port, "10.0.0.3")
            assert await spoofed.close_code() == CLOSE_TOO_MANY_FROM_ADDRESS


def test_cdc_listen_warns_when_the_file_limit_is_below_the_caps(fresh_db):
    listener = cdc_listen(fresh_db, WS_MAX_CONNECTIONS=HUGE)
    try:
        listener.wait_for("cdc_listen: the open-file limit is \\d+, below the 1000100")
    finally:
        listener.stop()
