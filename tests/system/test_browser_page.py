"""The dashboard as a person uses it, in a real headless Chromium against real processes
(tests/browser.py): names beside posts, the post form by keyboard, what a screen reader is
told, a resume after a drop at the worst moment, and the README's screenshot."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from playwright.async_api import Browser, Page, WebSocketRoute, expect

from testkit.live_servers import LiveSystem
from testkit.pg import psql
from tests.browser import insert, log_in, open_dashboard, problems
from tests.conftest import ROOT
from tests.consumer_env import make_user

SCREENSHOT = ROOT / "docs" / "img" / "dashboard.png"

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120), pytest.mark.usefixtures("live_db")]


async def post(system: LiveSystem, author: int, body: str, visibility: str = "public") -> int:
    return await insert(
        system.dsn,
        f"INSERT INTO post (author_id, body, visibility) VALUES ({author}, '{body}', '{visibility}')",
    )


async def test_posts_show_their_authors_names_and_the_page_logs_no_errors(
    browser: Browser, system: LiveSystem
) -> None:
    alice, bob = await make_user("alice", "pw"), await make_user("bob", "pw")
    await post(system, alice, "in the snapshot")
    context = await browser.new_context()
    errors = problems(context)
    page = await open_dashboard(context, system)
    authors = page.locator("#posts > li .author")
    await expect(authors).to_have_text(["alice"])

    await post(system, bob, "live")
    await post(system, alice, "live again")
    await expect(authors).to_have_text(["alice", "bob", "alice"])
    assert errors == []


async def test_a_post_written_by_keyboard_alone_is_public_by_default_and_announced(
    browser: Browser, system: LiveSystem
) -> None:
    await make_user("alice", "correct horse")
    watcher = await open_dashboard(browser, system)
    await expect(watcher.get_by_role("status")).to_have_text("Connection: live")
    author = await log_in(await browser.new_context(), system, "alice", "correct horse")
    visibility = author.locator("#post-form select[name=visibility]")
    await expect(visibility).to_have_value("public")
    await expect(visibility.locator("option")).to_have_text(["Public", "Private"])

    await tab_to(author, "#post-form textarea")
    await author.keyboard.type("typed, not clicked")
    await tab_to(author, "#post-form button[type=submit]")
    await author.keyboard.press("Enter")

    await expect(watcher.locator("#posts > li .body")).to_have_text(["typed, not clicked"])
    await expect(watcher.locator("#posts > li .author")).to_have_text(["alice"])
    await expect(watcher.locator("#announcer")).to_have_text("New post by alice")


async def tab_to(page: Page, selector: str) -> None:
    """Press Tab until `selector` has the focus, as a keyboard user would."""
    for _ in range(20):
        if await page.evaluate("s => document.activeElement.matches(s)", selector):
            return
        await page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reaches {selector}")


async def test_a_drop_between_subscribed_and_snapshot_resumes_with_the_rows(
    browser: Browser, system: LiveSystem
) -> None:
    kept = await insert(system.dsn, "INSERT INTO article (title) VALUES ('already there')")
    page = await browser.new_page()
    dropped = asyncio.Event()

    async def drop_after_first_subscribed(page_side: WebSocketRoute) -> None:
        server_side = page_side.connect_to_server()
        if dropped.is_set():
            return  # later connections go through untouched

        async def from_server(frame: str | bytes) -> None:
            if dropped.is_set():
                return  # the snapshot never reaches the page
            page_side.send(frame)
            if json.loads(frame)["type"] == "subscribed":
                dropped.set()
                await page_side.close()

        server_side.on_message(from_server)

    await page.route_web_socket(re.compile(r"/ws/live/$"), drop_after_first_subscribed)
    await page.goto(system.url("/"))
    await asyncio.wait_for(dropped.wait(), timeout=10)

    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    await expect(page.locator("#articles > li")).to_have_attribute("data-id", str(kept))
    later = await insert(system.dsn, "INSERT INTO article (title) VALUES ('after the resume')")
    await expect(page.locator("#articles > li")).to_have_count(2)
    await expect(page.locator("#articles > li").first).to_have_attribute("data-id", str(later))


async def test_the_readme_screenshot(browser: Browser, system: LiveSystem) -> None:
    """Taken here, so the README shows the page as it is: fixed rows and clock, no motion."""
    for name in ("demo", "alice", "bob"):
        await make_user(name, name)
    await asyncio.to_thread(psql, system.dsn, ";".join((ARTICLES, POSTS, TICKER)))
    context = await browser.new_context(
        viewport={"width": 1100, "height": 450}, timezone_id="UTC", locale="en-GB", reduced_motion="reduce"
    )
    errors = problems(context)
    page = await log_in(context, system, "demo", "demo")
    await expect(page.locator("#posts > li .author")).to_have_text(["demo", "bob", "alice"])
    await expect(page.locator("#ticker > tr")).to_have_count(4)
    await asyncio.to_thread(psql, system.dsn, "UPDATE ticker SET price = price + 1.25 WHERE symbol = 'ACME'")
    await expect(page.locator("#ticker > tr.up")).to_have_count(1)
    await page.screenshot(path=SCREENSHOT)
    assert errors == []


ARTICLES = """INSERT INTO article (title, source, category, url, published_at) VALUES
    ('Chip makers race to 2 nm', 'wire', 'tech', 'https://example.com/chips', '2025-05-01 08:00+00'),
    ('Rain expected across the north', 'wire', 'weather', '', '2025-05-01 08:30+00'),
    ('Local team wins the cup', 'sports desk', 'sport', '', '2025-05-01 09:00+00'),
    ('Postgres 18 released', 'wire', 'tech', 'https://example.com/pg', '2025-05-01 09:15+00')"""

POSTS = """INSERT INTO post (author_id, body, visibility, created_at)
    SELECT auth_user.id, body, visibility, created_at::timestamptz FROM (VALUES
        ('alice', 'Shipping the new dashboard today.', 'public', '2025-05-01 09:12+00'),
        ('bob', 'Anyone else reading the chip story?', 'public', '2025-05-01 09:20+00'),
        ('demo', 'Draft: notes for Friday''s talk', 'private', '2025-05-01 09:25+00')
    ) AS written (username, body, visibility, created_at) JOIN auth_user USING (username)"""


async def test_posts_too_large_for_a_frame_show_whole_in_snapshot_and_live(
    browser: Browser, system: LiveSystem
) -> None:
    alice = await make_user("alice", "pw")
    big = 2 * 1024 * 1024  # twice the frame bound: the server cuts it, the page fetches it
    for n in range(3):  # a snapshot of three pages at least
        await insert(system.dsn, f"INSERT INTO post (author_id, body) VALUES ({alice}, repeat('{n}', {big}))")
    context = await browser.new_context()
    errors = problems(context)
    page = await open_dashboard(context, system)
    bodies = page.locator("#posts > li .body")
    await expect(bodies).to_have_count(3)
    await insert(system.dsn, f"INSERT INTO post (author_id, body) VALUES ({alice}, repeat('L', {big}))")
    await expect(bodies).to_have_count(4, timeout=30_000)
    lengths = "nodes => nodes.map(n => n.textContent.length)"
    await page.wait_for_function(
        f"() => ({lengths})([...document.querySelectorAll('#posts > li .body')]).every(n => n === {big})"
    )
    assert [t[:1] for t in await bodies.all_text_contents()] == ["L", "2", "1", "0"]
    assert errors == []


TICKER = """INSERT INTO ticker (symbol, price, updated_at) VALUES
    ('ACME', 112.40, '2025-05-01 09:29:58+00'), ('GLOBEX', 48.05, '2025-05-01 09:29:59+00'),
    ('HOOLI', 301.75, '2025-05-01 09:29:57+00'), ('INITECH', 19.90, '2025-05-01 09:29:59+00')"""
