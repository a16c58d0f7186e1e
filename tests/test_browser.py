"""The dashboard in a real headless Chromium (Debian's package) against real processes:
psql writes, cdc_listen relays, daphne serves the page, static/live.js keeps it live."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.conftest import require
from tests.consumer_env import live_db, make_user  # noqa: F401
from tests.live_servers import LiveSystem, live_system
from tests.pg import psql

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
RECONNECTED = 20_000  # ms: backoff (at most 8 s between attempts) after a restart of seconds

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


@pytest.fixture
def chromium() -> Path:
    require(CHROMIUM.exists(), "Debian's chromium is not installed (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(chromium), args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
def system(fresh_db: str):
    with live_system(fresh_db) as running:
        yield running


async def insert(dsn: str, sql: str) -> int:
    return int((await asyncio.to_thread(psql, dsn, sql + " RETURNING id")).strip())


async def open_dashboard(browser: Browser, system: LiveSystem) -> Page:
    page = await browser.new_page()
    await page.goto(system.url("/"))
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    return page


async def test_articles_appear_live_and_once_after_a_daphne_restart(browser, system):
    page = await open_dashboard(browser, system)
    articles = page.locator("#articles > li")

    first = await insert(system.dsn, "INSERT INTO article (title) VALUES ('fresh from psql')")
    await expect(page.locator(f'#articles > li[data-id="{first}"] .title')).to_have_text(
        "fresh from psql", timeout=2000
    )

    system.stop_web()
    await expect(page.locator("#connection")).to_have_attribute("data-state", "offline")
    missed = await insert(system.dsn, "INSERT INTO article (title) VALUES ('written while down')")
    system.start_web()

    await expect(page.locator("#connection")).to_have_attribute("data-state", "live", timeout=RECONNECTED)
    await expect(page.locator(f'#articles > li[data-id="{missed}"]')).to_have_count(1, timeout=RECONNECTED)
    after = await insert(system.dsn, "INSERT INTO article (title) VALUES ('after the restart')")
    await expect(articles.first).to_have_attribute("data-id", str(after), timeout=2000)
    assert await articles.evaluate_all("items => items.map(li => li.dataset.id)") == [
        str(after),
        str(missed),
        str(first),
    ]


@pytest.mark.usefixtures("live_db")  # Django on the test database: it makes the user
async def test_a_logged_in_user_writes_posts_that_others_see_live_unless_private(browser, system):
    await make_user("alice", "correct horse")
    watcher = await open_dashboard(browser, system)  # anonymous, in another browser context

    author = await (await browser.new_context()).new_page()
    await author.goto(system.url("/accounts/login/"))
    await author.fill("#id_username", "alice")
    await author.fill("#id_password", "correct horse")
    await author.click("button[type=submit]")
    await expect(author.locator(".who")).to_have_text("alice")

    for body, visibility in (("only for me", "private"), ("hello everyone", "public")):
        await author.fill("#post-form textarea[name=body]", body)
        await author.select_option("#post-form select[name=visibility]", visibility)
        await author.click("#post-form button[type=submit]")
        await expect(author.locator("#posts > li .body").first).to_have_text(body)

    await expect(watcher.locator("#posts > li .body")).to_have_text(["hello everyone"])
    await expect(author.locator("#posts > li .body")).to_have_text(["hello everyone", "only for me"])


async def test_the_category_filter_resubscribes_with_a_fresh_snapshot(browser, system):
    psql(
        system.dsn, "INSERT INTO article (title, category) VALUES ('a match', 'tech'), ('no match', 'sport')"
    )
    page = await open_dashboard(browser, system)
    titles = page.locator("#articles > li .title")
    await expect(titles).to_have_text(["no match", "a match"])

    await page.select_option("#category-filter", "tech")
    await expect(titles).to_have_text(["a match"])
    await insert(system.dsn, "INSERT INTO article (title, category) VALUES ('other', 'sport')")
    await insert(system.dsn, "INSERT INTO article (title, category) VALUES ('another match', 'tech')")
    await expect(titles).to_have_text(["another match", "a match"])
