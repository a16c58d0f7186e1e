"""Helpers for the browser tests: a real headless Chromium (Debian's package) on the
dashboard, against real processes (the `browser` and `system` fixtures, tests/conftest.py):
psql writes, cdc_listen relays, daphne serves the page, static/live.js keeps it live."""

from __future__ import annotations

import asyncio

from playwright.async_api import Browser, BrowserContext, Page, expect

from testkit.live_servers import LiveSystem
from testkit.pg import psql


async def insert(dsn: str, sql: str) -> int:
    return int((await asyncio.to_thread(psql, dsn, sql + " RETURNING id")).strip())


async def open_dashboard(browser: Browser | BrowserContext, system: LiveSystem) -> Page:
    page = await browser.new_page()
    await page.goto(system.url("/"))
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    return page


async def log_in(context: BrowserContext, system: LiveSystem, username: str, password: str) -> Page:
    """A page of `context` on the dashboard, logged in through the login form."""
    page = await context.new_page()
    await page.goto(system.url("/accounts/login/"))
    await page.fill("#id_username", username)
    await page.fill("#id_password", password)
    await page.click("button[type=submit]")
    await expect(page.locator(".who")).to_have_text(username)
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    return page


def problems(context: BrowserContext) -> list[str]:
    """What pages of `context` log as errors from now on, and every HTTP answer of 400 or more."""
    found: list[str] = []
    context.on("console", lambda message: found.append(message.text) if message.type == "error" else None)
    context.on("weberror", lambda error: found.append(str(error.error)))
    context.on(
        "response",
        lambda answer: found.append(f"{answer.status} {answer.url}") if answer.status >= 400 else None,
    )
    return found
