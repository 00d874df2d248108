"""The real bridge.js in two Salesforce console pages of one agent (Chromium): the second
console takes Omni-Channel over (DuplicateLogin from another browser,
DuplicateLoginInSameBrowser from another tab), the first bridge stops driving Omni, and the
agent stays in the contact center's queue."""

from __future__ import annotations

import httpx
from playwright.sync_api import Browser, Page, expect

from presencesync_sandbox.demo import DemoStack, console_url
from tests.e2e.conftest import ensure_mapping

TIMEOUT_MS = 10_000

RECORD_LOGOUTS = """
window.logoutReasons = [];
window.omniEvents.on("omniChannelLogout", function (event) {
  window.logoutReasons.push(event.getParam("reason") || null);
});
"""


def open_console(page: Page, stack: DemoStack, agent: dict[str, str]) -> None:
    page.goto(console_url(stack.info, agent))
    expect(page.locator("body")).to_have_attribute(
        "data-presencesync-bridge", "connected", timeout=TIMEOUT_MS
    )
    page.evaluate(RECORD_LOGOUTS)


def test_a_second_console_takes_over_from_the_first(browser: Browser, stack: DemoStack) -> None:
    ensure_mapping(stack)
    agent = stack.info["agents"][3]
    first_browser, second_browser = browser.new_context(), browser.new_context()
    api = httpx.Client(
        base_url=stack.api_url,
        headers={"Authorization": f"Bearer {agent['token']}"},
        trust_env=False,
    )
    path = f"/api/v1/agents/{agent['agent_id']}"
    try:
        first = first_browser.new_page()
        open_console(first, stack, agent)
        api.post(path + "/login", json={"state": "Away/Break"}).raise_for_status()
        expect(first.locator("#omni-status-line")).to_have_text(
            "Omni-Channel: On Break", timeout=TIMEOUT_MS
        )

        # The agent opens Salesforce in another browser.
        second = second_browser.new_page()
        open_console(second, stack, agent)
        first.wait_for_function(
            "() => window.logoutReasons.includes('DuplicateLogin')", timeout=TIMEOUT_MS
        )
        assert first.evaluate("presencesyncBridge.state().degraded") == "displaced"
        # The server made the second bridge the agent's console; the first one stopped.
        expect(first.locator("body")).to_have_attribute(
            "data-presencesync-bridge", "refused", timeout=TIMEOUT_MS
        )
        view = api.get(path).json()
        assert (view["logged_in"], view["state"], view["console_connected"]) == (
            True,
            "Away/Break",
            True,
        )
        # The surviving console drives Omni.
        api.put(path + "/state", json={"state": "Ready"}).raise_for_status()
        expect(second.locator("#omni-status-line")).to_have_text(
            "Omni-Channel: Available", timeout=TIMEOUT_MS
        )
        history = api.get(path + "/history").json()
        assert "LoggedOut" not in [h["to"] for h in history if h["side"] == "contact_center"]

        # Now a second tab of that browser: DuplicateLoginInSameBrowser.
        third = second_browser.new_page()
        open_console(third, stack, agent)
        second.wait_for_function(
            "() => window.logoutReasons.includes('DuplicateLoginInSameBrowser')",
            timeout=TIMEOUT_MS,
        )
        assert api.get(path).json()["logged_in"] is True
        api.post(path + "/logout").raise_for_status()
        expect(third.locator("#omni-status-line")).to_have_text(
            "Omni-Channel: Offline", timeout=TIMEOUT_MS
        )
    finally:
        api.close()
        first_browser.close()
        second_browser.close()
