"""The ticker panel in a real headless Chromium against real processes (tests/browser.py):
current prices at once from the snapshot, then each price written by plain SQL updated in
place, its move shown by colour, arrow and words, without a reload."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import Browser, expect

from testkit.live_servers import LiveSystem
from testkit.pg import psql
from tests.browser import open_dashboard, problems

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


async def sql(system: LiveSystem, script: str) -> None:
    await asyncio.to_thread(psql, system.dsn, script)


async def test_prices_update_in_place_with_their_direction_without_a_reload(
    browser: Browser, system: LiveSystem
) -> None:
    await sql(system, "INSERT INTO ticker (symbol, price) VALUES ('HOOLI', 80.5), ('ACME', 12.25)")
    context = await browser.new_context()
    errors = problems(context)
    page = await open_dashboard(context, system)
    rows = page.locator("#ticker > tr")
    acme = page.locator("#ticker > tr", has=page.get_by_role("rowheader", name="ACME"))
    await expect(rows.locator(".symbol")).to_have_text(["ACME", "HOOLI"])  # the snapshot, at once
    await expect(acme.locator(".price")).to_have_text("12.25")
    await page.evaluate("window.notReloaded = true")

    await sql(system, "UPDATE ticker SET price = 13.00, updated_at = now() WHERE symbol = 'ACME'")
    await expect(acme.locator(".price")).to_have_text("13.00")
    await expect(acme).to_have_class("up")
    await expect(acme.locator(".move")).to_have_text("▲up 0.75")

    await sql(system, "UPDATE ticker SET price = 12.50 WHERE symbol = 'ACME'")
    await expect(acme.locator(".price")).to_have_text("12.50")
    await expect(acme).to_have_class("down")
    await expect(acme.locator(".move .visually-hidden")).to_have_text("down")

    await sql(
        system,
        "INSERT INTO ticker (symbol, price) VALUES ('GLOBEX', 5); DELETE FROM ticker WHERE symbol = 'HOOLI'",
    )
    await expect(rows.locator(".symbol")).to_have_text(["ACME", "GLOBEX"])  # in symbol order
    assert await page.evaluate("window.notReloaded") is True
    assert errors == []
