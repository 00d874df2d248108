"""The console page in Chromium: the Omni-Channel widget, live updates, the toolkit object and
the bridge script slot (a stand-in bridge records what a real bridge would see)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from presencesync_emulator.testing import running_emulator

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.browser

if not CHROMIUM.exists() and os.environ.get("CI") != "true":
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

STAND_IN_BRIDGE = """
window.bridgeLog = [];
["omniChannelLoginSuccess", "omniChannelStatusChanged", "omniChannelLogout",
 "omniChannelWorkAssigned", "omniChannelWorkAccepted", "omniChannelWorkClosed"]
  .forEach(function (name) {
    window.omniEvents.on(name, function (event) {
      window.bridgeLog.push({name: event.getName(), params: event.getParams(),
                             reason: event.getParam("reason")});
    });
  });
window.bridgeLoaded = window.presencesyncBridgeConfig;
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield instance
        instance.close()


def _reasons(page: Page) -> list[str]:
    return page.evaluate(
        "() => window.bridgeLog.filter(e => e.name.endsWith('StatusChanged')).map(e => e.reason)"
    )


def test_widget_toolkit_and_bridge_slot(browser: Browser) -> None:
    with running_emulator() as url, httpx.Client(base_url=url, timeout=5) as control:
        agent = control.get("/emulator/v1/users").json()[1]["id"]
        statuses = {
            s["developer_name"]: s["id"]
            for s in control.get("/emulator/v1/presence-statuses").json()
        }
        bridge = "data:text/javascript," + quote(STAND_IN_BRIDGE)
        context = browser.new_context()  # closed before the emulator stops: no idle sockets
        page = context.new_page()
        # Another host name than the emulator's base URL: the page must use its own origin.
        page_url = url.replace("127.0.0.1", "localhost")
        page.goto(f"{page_url}/console/{agent}?bridge={quote(bridge)}&server=ws://127.0.0.1:9/b")
        page.wait_for_function("() => window.bridgeLoaded")
        assert page.evaluate("() => window.bridgeLoaded.salesforceUserId") == agent
        assert page.evaluate("() => window.bridgeLoaded.server") == "ws://127.0.0.1:9/b"

        live = page.get_by_role("status")
        expect(live).to_have_text("Omni-Channel: Offline")
        status_menu = page.get_by_label("Omni-Channel status")
        status_menu.select_option("Available")
        expect(live).to_have_text("Omni-Channel: Available")
        status_menu.select_option("On_Break")
        expect(live).to_have_text("Omni-Channel: On Break")
        assert _reasons(page) == ["OmniLoginStatusChange", "OmniManualStatusChange"]

        # A change made elsewhere (here: the control API, as a supervisor) shows up live.
        control.put(
            f"/emulator/v1/users/{agent}/omni/status",
            json={"presence_status": "Available", "reason": "OmniSupervisorStatusChange"},
        )
        expect(live).to_have_text("Omni-Channel: Available")

        work = control.post("/emulator/v1/work", json={"channel": "Case", "subject": "Jam"}).json()
        page.get_by_role("button", name="Accept Jam").click()
        page.get_by_role("button", name="Close Jam").click()
        expect(page.get_by_role("button", name="Close Jam")).to_have_count(0)
        state = control.get(f"/emulator/v1/work/{work['id']}").json()
        assert state["status"] == "Closed"

        result = page.evaluate(
            "async (id) => (await omniToolkitAPI.setServicePresenceStatus({statusId: id}))"
            ".statusApiName",
            statuses["Lunch"],
        )
        assert result == "Lunch"
        expect(live).to_have_text("Omni-Channel: Lunch")
        assert _reasons(page)[-1] == "OmniToolkitStatusChange"

        status_menu.select_option("__offline__")
        expect(live).to_have_text("Omni-Channel: Offline")
        code = page.evaluate(
            "async () => { try { await omniToolkitAPI.getServicePresenceStatusId(); return 'ok'; }"
            " catch (e) { return e.errorCode; } }"
        )
        assert code == "OMNI_OFFLINE"
        names = page.evaluate("() => window.bridgeLog.map(e => e.name)")
        assert "lightning:omniChannelWorkAccepted" in names
        assert names[-1] == "lightning:omniChannelLogout"
        context.close()
