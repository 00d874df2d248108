"""The Lightning (Aura) wrapper's helper, run in Chromium against the emulator's toolkit.

There is no Lightning runtime here, so the test plays Aura's part: a component object with
`find("omniToolkit")`, `get`/`set` of attributes and `getGlobalId()`, `$A.getCallback`, and the
`lightning:omniChannel*` events delivered to the controller. Everything else is the shipped code:
the helper and controller of salesforce/package/, and bridge.js loaded from the server.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import httpx
from playwright.sync_api import Browser, expect

from presencesync_sandbox.demo import DemoStack
from tests.e2e.conftest import ensure_mapping

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "salesforce" / "package" / "aura" / "PresenceSyncBridge"

# A stand-in for the Aura runtime around the component, in the console page.
AURA_SHIM = """
(function (config) {
  window.$A = { getCallback: function (fn) { return fn; } };
  var attributes = { "v.serverUrl": config.server, "v.userId": config.userId,
                     "v.statusText": "", "v.needsToken": false, "v.tokenInput": "" };
  var component = {
    get: function (key) { return attributes[key]; },
    set: function (key, value) { attributes[key] = value; },
    find: function (id) { return id === "omniToolkit" ? window.omniToolkitAPI : null; },
    getGlobalId: function () { return "1:0"; },
    isValid: function () { return true; },
  };
  window.auraComponent = component;
  window.auraAttributes = attributes;
  window.localStorage.setItem("presencesync.token." + config.userId, config.token);
  var controller = window.eval(config.controller);
  var helper = window.eval(config.helper);
  window.omniEvents.on("*", function (event) {
    var name = event.getName().replace("lightning:", "");  // Aura's getName() has no namespace
    controller.onOmniEvent(component, {
      getName: function () { return name; },
      getParams: function () { return event.getParams(); },
    }, helper);
  });
  var script = document.createElement("script");
  script.src = config.bridgeJs;
  script.onload = function () { controller.onScriptsLoaded(component, null, helper); };
  document.head.appendChild(script);
})
"""


def test_the_aura_helper_drives_the_bridge(browser: Browser, stack: DemoStack) -> None:
    agent = stack.info["agents"][1]
    ensure_mapping(stack)
    page = browser.new_page()
    # No bridge parameters: the page's own auto-start stays out of the way.
    page.goto(f"{stack.emulator_url}/console/{agent['salesforce_user_id']}")
    page.wait_for_function("() => window.omniConsole && window.omniConsole.state().hellos > 0")
    server = stack.api_url.replace("http://", "ws://")
    config = {
        "server": server,
        "userId": agent["salesforce_user_id"],
        "token": agent["token"],
        "bridgeJs": f"{stack.api_url}/static/bridge.js?aura={quote('1')}",
        "controller": (BUNDLE / "PresenceSyncBridgeController.js").read_text(),
        "helper": (BUNDLE / "PresenceSyncBridgeHelper.js").read_text(),
    }
    page.evaluate(f"{AURA_SHIM}({json.dumps(config)})")
    page.wait_for_function(
        "() => window.auraAttributes['v.statusText'] === 'presencesync: connected'",
        timeout=10_000,
    )

    headers = {"Authorization": f"Bearer {agent['token']}"}
    with httpx.Client(base_url=stack.api_url, headers=headers, trust_env=False) as api:
        api.post(f"/api/v1/agents/{agent['agent_id']}/login").raise_for_status()
        widget = page.locator("#omni-status-line")
        expect(widget).to_have_text("Omni-Channel: Available", timeout=10_000)
        page.get_by_label("Omni-Channel status").select_option("Lunch")
        expect(widget).to_have_text("Omni-Channel: Lunch")
        path = f"/api/v1/agents/{agent['agent_id']}"
        for _ in range(100):
            if api.get(path).json()["state"] == "ExtendedAway/Lunch":
                break
            page.wait_for_timeout(50)
        assert api.get(path).json()["state"] == "ExtendedAway/Lunch"
        api.post(path + "/logout").raise_for_status()
        expect(widget).to_have_text("Omni-Channel: Offline", timeout=10_000)
    page.close()


def test_the_component_handles_every_omni_event_and_uses_the_toolkit() -> None:
    markup = (BUNDLE / "PresenceSyncBridge.cmp").read_text()
    assert '<lightning:omniToolkitAPI aura:id="omniToolkit" />' in markup
    for name in (
        "LoginSuccess",
        "StatusChanged",
        "Logout",
        "WorkAssigned",
        "WorkAccepted",
        "WorkDeclined",
        "WorkClosed",
        # The real Aura runtime delivers an event only to a handler declared in the markup.
        "ConnectionError",
        "WorkloadChanged",
    ):
        assert f'event="lightning:omniChannel{name}"' in markup
    manifest = (ROOT / "salesforce" / "manifest" / "package.xml").read_text()
    for kind in ("AuraDefinitionBundle", "StaticResource", "CspTrustedSite", "PermissionSet"):
        assert f"<name>{kind}</name>" in manifest
