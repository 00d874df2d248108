"""The pages' scripts in a real browser (Chromium, headless): what the seed scenario in
tests/e2e does not reach. Settings and minor states with their problems, a configuration
problem on a state row, a failed fetch, ContactPad's calls and live updates."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from presencesync.bootstrap import build_app
from presencesync.service import Engine

from .conftest import Account, save_statuses, seed, valid_config

CHROMIUM = Path(os.environ.get("PRESENCESYNC_CHROMIUM", "/usr/bin/chromium"))
TIMEOUT_MS = 8_000

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {CHROMIUM} is missing")
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def server(engine: Engine) -> Iterator[str]:
    """The real app (dispatcher and timers running) on a free loopback port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    uv = uvicorn.Server(uvicorn.Config(build_app(engine), log_level="warning"))
    thread = threading.Thread(target=lambda: asyncio.run(uv.serve(sockets=[sock])), daemon=True)
    thread.start()
    while not uv.started:
        if not thread.is_alive():
            raise RuntimeError("the server did not start")
        threading.Event().wait(0.02)
    yield f"http://127.0.0.1:{port}"
    uv.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture
def account(engine: Engine) -> Account:
    account = seed(engine, "Browser Co")
    save_statuses(engine, account.id)
    engine.save_omni_config(account.id, valid_config(), "test")
    engine.save_settings(account.id, {"wrap_seconds": 0}, "test")
    return account


def _page(chromium: Any, base: str, token: str) -> tuple[Any, list[str]]:
    page = chromium.new_context().new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    # The pages' CSP forbids inline code: anything the browser refuses shows up here.
    page.on(
        "console",
        lambda message: (
            problems.append(message.text)
            if "Content Security Policy" in message.text or "Refused to" in message.text
            else None
        ),
    )
    page.goto(base + "/login")
    page.get_by_label("Access token").fill(token)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    # The page's scripts attach their handlers by the load event: a click before that would
    # submit a form natively (seen on a loaded machine).
    page.wait_for_load_state("load")
    return page, problems


def test_admin_page_scripts(chromium: Any, server: str, account: Account) -> None:
    from playwright.sync_api import expect

    page, script_errors = _page(chromium, server, account.admin)
    expect(page).to_have_url(server + "/admin/omni-channel")

    wrap = page.get_by_label("Wrap time after a call (seconds)")
    wrap.fill("-5")
    page.get_by_role("button", name="Save Settings").click()
    expect(page.locator("#settings-problems")).to_contain_text("not saved", timeout=TIMEOUT_MS)
    expect(page.locator("#wrap_seconds-problem")).to_contain_text("between 0 and 86400")
    expect(wrap).to_have_attribute("aria-invalid", "true")
    wrap.fill("0")
    page.get_by_role("button", name="Save Settings").click()
    expect(page.locator("#settings-status")).to_have_text("Settings saved.", timeout=TIMEOUT_MS)
    expect(page.locator("#settings-problems")).to_be_empty()

    page.get_by_label("Wrap minor states", exact=True).fill("Auto, Manual")
    page.get_by_role("button", name="Save Minor States").click()
    expect(page.locator("#minors-Wrap-problem")).to_contain_text("Transferred")
    page.get_by_label("Wrap minor states", exact=True).fill("Auto, Manual, Transferred")
    page.get_by_label("Away minor states", exact=True).fill("Break, ComfortBreak, Coaching")
    page.get_by_role("button", name="Save Minor States").click()
    expect(page.locator("#states-status")).to_have_text("Minor states saved.", timeout=TIMEOUT_MS)
    expect(page.locator('#state-table tr[data-key="Away/Coaching"]')).to_be_visible()

    away = page.get_by_label("Salesforce Presence to map to (Away)", exact=True)
    away.select_option("")
    page.get_by_role("button", name="Save Configuration").click()
    alert = page.locator("#config-problems")
    expect(alert).to_contain_text("1 problem", timeout=TIMEOUT_MS)
    expect(alert).to_be_focused()  # keyboard users land on the summary
    expect(alert.get_by_role("link")).to_have_attribute("href", "#" + _row_id(page, "Away"))
    expect(page.locator('#state-table tr[data-key="Away"] .row-problems')).to_contain_text(
        "must be mapped"
    )
    away.select_option("On_Break")
    page.get_by_role("button", name="Save Configuration").click()
    expect(page.locator("#save-status")).to_contain_text("saved", timeout=TIMEOUT_MS)
    expect(alert).to_be_empty()
    expect(page.locator("#config-warnings")).to_contain_text(
        "Lunch -> ExtendedAway/Lunch -> On_Break"
    )

    page.get_by_role("button", name="Fetch Omni-channel configuration").click()
    expect(alert).to_contain_text("SALESFORCE_NOT_CONNECTED", timeout=TIMEOUT_MS)
    assert script_errors == []


def _row_id(page: Any, key: str) -> str:
    return page.locator(f'#state-table tr[data-key="{key}"]').get_attribute("id")


def test_contactpad_scripts(chromium: Any, server: str, account: Account) -> None:
    from playwright.sync_api import expect

    pad, script_errors = _page(chromium, server, account.agents["alice"])
    expect(pad).to_have_url(server + "/contactpad")
    expect(pad.locator("#live-status")).to_have_text("Live updates: connected", timeout=TIMEOUT_MS)
    state = pad.get_by_role("status").and_(pad.locator("#current-state"))
    expect(state).to_have_text("LoggedOut")

    pad.get_by_role("button", name="Log in").click()
    expect(state).to_have_text("Ready", timeout=TIMEOUT_MS)
    expect(pad.get_by_role("button", name="Log in")).to_be_hidden()
    # No console is connected: Omni-Channel is still offline, on its way to Available.
    expect(pad.locator("#omni-desired")).to_have_text("(being set to Available)")

    # A supervisor offers a call (from the agents overview): it appears without a reload.
    overview, overview_errors = _page(chromium, server, account.supervisor)
    expect(overview).to_have_url(server + "/agents")
    overview.get_by_label("Queue").fill("")
    overview.get_by_role("button", name="Offer a call").click()
    expect(overview.locator("#agents-problems")).to_contain_text("queue", timeout=TIMEOUT_MS)
    overview.get_by_label("Queue").fill("support")
    overview.get_by_role("button", name="Offer a call").click()
    expect(overview.locator("#offer-status")).to_contain_text(
        "offered to alice", timeout=TIMEOUT_MS
    )
    expect(pad.locator("#offer-text")).to_contain_text("support", timeout=TIMEOUT_MS)
    assert overview_errors == []
    pad.get_by_role("button", name="Answer").click()
    expect(state).to_have_text("Busy/Inbound", timeout=TIMEOUT_MS)

    pad.get_by_label("State", exact=True).select_option("Away/Break")
    pad.get_by_role("button", name="Change state").click()
    expect(pad.locator("#contactpad-problems")).to_contain_text("on a call", timeout=TIMEOUT_MS)

    pad.get_by_role("button", name="Hang up").click()
    expect(state).to_have_text("Ready", timeout=TIMEOUT_MS)  # wrap time is 0
    pad.get_by_label("State", exact=True).select_option("Away/Break")
    pad.get_by_role("button", name="Change state").click()
    expect(state).to_have_text("Away/Break", timeout=TIMEOUT_MS)
    expect(pad.locator("#contactpad-problems")).to_be_empty()

    pad.get_by_role("button", name="Log out").click()
    expect(state).to_have_text("LoggedOut", timeout=TIMEOUT_MS)
    pad.get_by_role("link", name="Sign out").click()
    expect(pad).to_have_url(server + "/login")
    assert script_errors == []
