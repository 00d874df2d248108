"""The admin page's Preflight check in a real browser, and the pictures of salesforce/SETUP.md:
the page's results (healthy, then with a problem) and the `presencesync doctor` report."""

from __future__ import annotations

import html
import subprocess
import sys
from pathlib import Path

import httpx
from playwright.sync_api import Browser, expect

from presencesync_sandbox.demo import DemoStack
from tests.e2e.conftest import ensure_mapping
from tests.e2e.test_omni_scenario import sign_in

# The preflight makes some twenty calls to the org: give a loaded machine time.
TIMEOUT_MS = 30_000

TERMINAL = """<!doctype html><meta charset="utf-8">
<style>body{margin:0;background:#1e1e1e}pre{margin:0;padding:16px 20px;color:#e6e6e6;
font:14px/1.45 "DejaVu Sans Mono",monospace;white-space:pre-wrap}</style><pre>%s</pre>"""


def test_preflight_check_on_the_admin_page(
    browser: Browser, stack: DemoStack, docs_dir: Path
) -> None:
    ensure_mapping(stack)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_in(page, stack.api_url, stack.info["admin_token"])
    section = page.locator("#preflight")
    expect(section.get_by_role("heading", name="Preflight check")).to_be_visible()

    page.get_by_role("button", name="Run preflight check").click()
    status = page.get_by_role("status").and_(page.locator("#preflight-status"))
    expect(status).to_contain_text("Preflight check: 12 ok. Ready.", timeout=TIMEOUT_MS)
    results = page.locator("#preflight-results li")
    expect(results).to_have_count(12)
    assert set(results.evaluate_all("items => items.map(i => i.dataset.status)")) == {"ok"}
    expect(page.locator("#preflight-problems")).to_be_empty()
    section.screenshot(path=str(docs_dir / "admin-preflight.png"))

    # An agent loses access to a mapped status: the next check says who and what to do.
    emulator = httpx.Client(base_url=stack.emulator_url, trust_env=False)
    grant = "/emulator/v1/permission-sets/PresenceSync_Agent/presence-statuses/Lunch"
    emulator.delete(grant).raise_for_status()
    try:
        page.get_by_role("button", name="Run preflight check").click()
        alert = page.get_by_role("alert").and_(page.locator("#preflight-problems"))
        expect(alert).to_contain_text("Lunch not granted to agent-1", timeout=TIMEOUT_MS)
        expect(status).to_contain_text("1 problem")
        problem = page.locator('#preflight-results li[data-check="status_access"]')
        expect(problem).to_have_attribute("data-status", "problem")
        expect(problem.locator(".fix")).to_contain_text("Service Presence Status Access")
        section.screenshot(path=str(docs_dir / "admin-preflight-problem.png"))
    finally:
        emulator.put(grant).raise_for_status()
        emulator.close()

    # The same checks from the command line, as an admin runs them after installing.
    account = stack.engine.resolve_token(stack.info["admin_token"]).account_id
    database_url = str(stack.engine.db.url)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "presencesync",
            "doctor",
            "--database-url",
            database_url,
            "--account",
            account,
            "--server-url",
            stack.api_url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "12 ok: presencesync is ready for this org." in run.stdout
    terminal = context.new_page()
    terminal.set_viewport_size({"width": 1180, "height": 400})
    command = f"$ presencesync doctor --account {account} --server-url {stack.api_url}\n"
    terminal.set_content(TERMINAL % html.escape(command + run.stdout))
    terminal.locator("pre").screenshot(path=str(docs_dir / "doctor-report.png"))
    context.close()
