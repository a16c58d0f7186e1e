"""The dashboard in a real headless Chromium against real processes (tests/browser.py):
live articles through a daphne restart, posts and their audiences, the category filter."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, expect

from testkit.live_servers import LiveSystem
from testkit.pg import psql
from tests.browser import insert, log_in, open_dashboard
from tests.consumer_env import make_user

RECONNECTED = 20_000  # ms: backoff (at most 8 s between attempts) after a restart of seconds

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


async def test_articles_appear_live_and_once_after_a_daphne_restart(
    browser: Browser, system: LiveSystem
) -> None:
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
async def test_a_logged_in_user_writes_posts_that_others_see_live_unless_private(
    browser: Browser, system: LiveSystem
) -> None:
    await make_user("alice", "correct horse")
    watcher = await open_dashboard(browser, system)  # anonymous, in another browser context

    author = await log_in(await browser.new_context(), system, "alice", "correct horse")

    for body, visibility in (("only for me", "private"), ("hello everyone", "public")):
        await author.fill("#post-form textarea[name=body]", body)
        await author.select_option("#post-form select[name=visibility]", visibility)
        await author.click("#post-form button[type=submit]")
        await expect(author.locator("#posts > li .body").first).to_have_text(body)

    await expect(watcher.locator("#posts > li .body")).to_have_text(["hello everyone"])
    await expect(author.locator("#posts > li .body")).to_have_text(["hello everyone", "only for me"])


async def test_the_category_filter_resubscribes_with_a_fresh_snapshot(
    browser: Browser, system: LiveSystem
) -> None:
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
