"""The seed's scenario in a real browser (issue 5): the admin maps Omni-Channel, an agent works
with ContactPad in one tab and the Salesforce console (the emulator's, running bridge.js) in
another, and each side follows the other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, expect

from presencesync_sandbox.demo import DemoStack, console_url
from tests.e2e.conftest import ensure_mapping

TIMEOUT_MS = 10_000

# What the admin picks: Salesforce presence status -> ContactWorld state ...
MAPS_TO = {
    "Available": "Ready",
    "On_Break": "Away/Break",
    "Lunch": "ExtendedAway/Lunch",
    "Training": "ExtendedAway/Training",
}
# ... and ContactWorld state -> Salesforce presence status.
STATE_MAPPING = {
    "Ready": "Available",
    "Busy": "On_a_Call",
    "Wrap": "Busy",
    "Away": "On_Break",
    "ExtendedAway": "Busy",
    "ExtendedAway/Lunch": "Lunch",
}


def sign_in(page: Page, base_url: str, token: str) -> None:
    page.goto(base_url + "/login")
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Sign in").click()


def admin_configures_omni_channel(page: Page, stack: DemoStack, docs: Path) -> None:
    sign_in(page, stack.api_url, stack.info["admin_token"])
    expect(page).to_have_url(stack.api_url + "/admin/omni-channel")
    expect(page.get_by_role("heading", name="Omni-channel Configuration")).to_be_visible()

    page.get_by_role("button", name="Fetch Omni-channel configuration").click()
    expect(page.locator("#fetch-status")).to_contain_text("Fetched", timeout=TIMEOUT_MS)
    statuses = _statuses(stack)
    assert {"Available", "Lunch", "On_Break", "Busy"} <= set(statuses)

    page.get_by_label("Enable", exact=True).check()
    for name, option in statuses.items():
        busy = page.get_by_label(f"Busy ({name})", exact=True)
        busy.set_checked(option == "busy")
        page.get_by_label(f"Maps to ({name})", exact=True).select_option(MAPS_TO.get(name, ""))
    states = page.locator("#state-table tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.key)"
    )
    assert set(STATE_MAPPING) <= set(states)
    for state in states:  # every row, so that what was there before does not matter
        label = f"Salesforce Presence to map to ({state})"
        page.get_by_label(label, exact=True).select_option(STATE_MAPPING.get(state, ""))

    # A mistake: Available is an online status in Salesforce, so it cannot be marked Busy.
    before = _saved_config(stack)
    page.get_by_label("Busy (Available)", exact=True).check()
    page.get_by_role("button", name="Save Configuration").click()
    alert = page.locator("#config-problems")
    expect(alert).to_contain_text("not saved", timeout=TIMEOUT_MS)
    row = page.locator('#presence-table tr[data-key="Available"]')
    expect(row.locator(".row-problems")).not_to_be_empty()
    expect(page.get_by_label("Busy (Available)", exact=True)).to_have_attribute(
        "aria-invalid", "true"
    )
    assert _saved_config(stack) == before  # nothing was written
    page.screenshot(path=str(docs / "admin-omni-channel-problem.png"))

    page.get_by_label("Busy (Available)", exact=True).uncheck()
    page.get_by_role("button", name="Save Configuration").click()
    expect(page.locator("#save-status")).to_contain_text("saved", timeout=TIMEOUT_MS)
    expect(alert).to_be_empty()
    saved = _saved_config(stack)
    assert saved["enabled"] is True
    assert {m["state"]: m["presence_status"] for m in saved["state_mappings"]} == STATE_MAPPING
    page.screenshot(path=str(docs / "admin-omni-channel.png"), full_page=True)


def test_seed_scenario_in_the_browser(browser: Browser, stack: DemoStack, docs_dir: Path) -> None:
    admin = browser.new_context(viewport={"width": 1280, "height": 900})
    admin_configures_omni_channel(admin.new_page(), stack, docs_dir)
    admin.close()

    agent = stack.info["agents"][0]
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    pad = context.new_page()
    sign_in(pad, stack.api_url, agent["token"])
    expect(pad).to_have_url(stack.api_url + "/contactpad")
    state = pad.get_by_role("status").and_(pad.locator("#current-state"))
    expect(state).to_have_text("LoggedOut")

    # The agent's Salesforce console, in another tab, runs our bridge.
    console = context.new_page()
    console.goto(console_url(stack.info, agent))
    expect(console.locator("body")).to_have_attribute(
        "data-presencesync-bridge", "connected", timeout=TIMEOUT_MS
    )
    widget = console.locator("#omni-status-line")
    expect(widget).to_have_text("Omni-Channel: Offline")
    expect(pad.locator("#console-status")).to_have_text("connected", timeout=TIMEOUT_MS)

    # 1. Logging in to ContactPad puts the agent online in Omni-Channel (Ready -> Available).
    pad.get_by_role("button", name="Log in").click()
    expect(state).to_have_text("Ready", timeout=TIMEOUT_MS)
    expect(widget).to_have_text("Omni-Channel: Available", timeout=TIMEOUT_MS)
    expect(pad.locator("#omni-presence")).to_contain_text("Available", timeout=TIMEOUT_MS)

    # 2. The agent picks Lunch (ExtendedAway/Lunch): the widget shows the mapped status.
    picker = pad.get_by_label("State", exact=True)
    picker.focus()  # as a person's click does: live updates leave a focused picker alone
    picker.select_option("ExtendedAway/Lunch")
    pad.get_by_role("button", name="Change state").click()
    expect(state).to_have_text("ExtendedAway/Lunch", timeout=TIMEOUT_MS)
    expect(widget).to_have_text("Omni-Channel: Lunch", timeout=TIMEOUT_MS)

    # 3. The widget goes offline: ContactPad logs out.
    console.get_by_label("Omni-Channel status").select_option("__offline__")
    expect(widget).to_have_text("Omni-Channel: Offline", timeout=TIMEOUT_MS)
    expect(state).to_have_text("LoggedOut", timeout=TIMEOUT_MS)
    expect(pad.get_by_role("button", name="Log in")).to_be_visible()

    # 4. Back online; a case is routed to the agent and accepted in the widget.
    pad.get_by_role("button", name="Log in").click()
    expect(widget).to_have_text("Omni-Channel: Available", timeout=TIMEOUT_MS)
    emulator = httpx.Client(base_url=stack.emulator_url, timeout=10, trust_env=False)
    supervisor = _api(stack, stack.info["supervisor_token"])
    work = emulator.post(
        "/emulator/v1/work", json={"channel": "Case", "subject": "Printer on fire"}
    ).json()
    assert work["user_id"] == agent["salesforce_user_id"]
    accept = console.get_by_role("button", name="Accept Printer on fire")
    expect(accept).to_be_visible(timeout=TIMEOUT_MS)
    accept.click()
    expect(state).to_have_text("Busy/Inbound", timeout=TIMEOUT_MS)
    expect(pad.locator("#work-items")).to_contain_text(work["id"], timeout=TIMEOUT_MS)

    # ... and a call offered meanwhile is not routed to that agent.
    call = supervisor.post("/api/v1/interactions", json={"queue": "support"}).json()
    assert call["agent_id"] != agent["agent_id"]
    assert call["status"] == "queued"
    pad.wait_for_timeout(300)
    expect(pad.locator("#offer")).to_be_hidden()
    expect(pad.locator("#no-calls")).to_be_visible()
    pad.screenshot(path=str(docs_dir / "contactpad.png"), full_page=True)
    console.screenshot(path=str(docs_dir / "salesforce-console.png"), full_page=True)

    # Closing the case ends Busy/Inbound (rule 6) and the queued call reaches the agent.
    console.get_by_role("button", name="Close Printer on fire").click()
    expect(state).to_have_text("Ready", timeout=TIMEOUT_MS)
    expect(pad.locator("#offer")).to_be_visible(timeout=TIMEOUT_MS)
    pad.get_by_role("button", name="Answer").click()
    expect(state).to_have_text("Busy/Inbound", timeout=TIMEOUT_MS)
    pad.get_by_role("button", name="Hang up").click()
    expect(state).to_have_text("Wrap/Auto", timeout=TIMEOUT_MS)
    assert supervisor.get(f"/api/v1/interactions/{call['id']}").json()["status"] == "ended"
    emulator.close()
    supervisor.close()
    context.close()


def _api(stack: DemoStack, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=stack.api_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
        trust_env=False,
    )


def _statuses(stack: DemoStack) -> dict[str, str]:
    with _api(stack, stack.info["admin_token"]) as api:
        config = api.get("/api/v1/omni/config").json()
    return {s["developer_name"]: s["status_option"] for s in config["presence_statuses"]}


def _saved_config(stack: DemoStack) -> dict[str, Any]:
    with _api(stack, stack.info["admin_token"]) as api:
        return dict(api.get("/api/v1/omni/config").json())


def test_bridge_js_reconnects_and_replays(browser: Browser, stack: DemoStack) -> None:
    ensure_mapping(stack)
    agent = stack.info["agents"][2]
    page = browser.new_page()
    page.goto(console_url(stack.info, agent))
    body = page.locator("body")
    expect(body).to_have_attribute("data-presencesync-bridge", "connected", timeout=TIMEOUT_MS)
    widget = page.locator("#omni-status-line")
    with _api(stack, agent["token"]) as api:
        path = f"/api/v1/agents/{agent['agent_id']}"
        api.post(path + "/login").raise_for_status()
        expect(widget).to_have_text("Omni-Channel: Available", timeout=TIMEOUT_MS)

        # The server connection drops; the agent changes status before it is back.
        page.evaluate("window.presencesyncBridge.socket.close()")
        page.get_by_label("Omni-Channel status").select_option("Lunch")
        expect(widget).to_have_text("Omni-Channel: Lunch", timeout=TIMEOUT_MS)
        expect(body).to_have_attribute("data-presencesync-bridge", "connected", timeout=TIMEOUT_MS)
        page.wait_for_function("() => presencesyncBridge.state().unacked === 0", timeout=TIMEOUT_MS)
        state = page.evaluate("presencesyncBridge.state()")
        assert state["stats"]["connects"] == 2
        for _ in range(100):
            if api.get(path).json()["state"] == "ExtendedAway/Lunch":
                break
            page.wait_for_timeout(50)
        view = api.get(path).json()
        assert (view["state"], view["presence_status"]) == ("ExtendedAway/Lunch", "Lunch")
        history = api.get(path + "/history").json()
        assert [h["to"] for h in history if h["side"] == "contact_center"].count(
            "ExtendedAway/Lunch"
        ) == 1
        assert state["stats"]["commands"] == 1  # the login; nothing echoed back
        api.post(path + "/logout").raise_for_status()
        expect(widget).to_have_text("Omni-Channel: Offline", timeout=TIMEOUT_MS)
    page.close()
