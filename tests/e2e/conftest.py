"""Real-browser tests: Playwright drives Debian's Chromium, headless.

Skipped only when Chromium is missing on a developer machine; with CI=true a missing Chromium
fails the run (the CI script installs it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from presencesync_sandbox.demo import DemoStack, start_stack

CHROMIUM = Path(os.environ.get("PRESENCESYNC_CHROMIUM", "/usr/bin/chromium"))
DOCS = Path(__file__).resolve().parents[2] / "docs"


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {CHROMIUM} is missing: install the chromium package")
    pytest.skip(f"{CHROMIUM} is not installed")


@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                # An agent keeps ContactPad and the console side by side: neither tab is a
                # throttled background tab.
                "--disable-background-timer-throttling",
                "--disable-renderer-backgrounding",
                "--disable-backgrounding-occluded-windows",
            ],
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    """A new account as an admin finds it: nothing fetched, nothing mapped, no consoles."""
    directory = tmp_path_factory.mktemp("e2e")
    stack = start_stack(
        database_url=f"sqlite:///{directory}/presencesync.db",
        emulator_db=":memory:",
        agents=4,
        consoles="none",
        configure=False,
    )
    try:
        yield stack
    finally:
        stack.stop()


def ensure_mapping(stack: DemoStack) -> None:
    """Tests that do not go through the admin page get the demo's mapping if none is saved."""
    import httpx

    from presencesync_sandbox.demo import default_omni_config

    admin = {"Authorization": f"Bearer {stack.info['admin_token']}"}
    with httpx.Client(base_url=stack.api_url, headers=admin, trust_env=False) as api:
        if api.get("/api/v1/omni/config").json().get("enabled"):
            return
        statuses = api.post("/api/v1/omni/fetch").json()["presence_statuses"]
        api.put("/api/v1/omni/config", json=default_omni_config(statuses)).raise_for_status()


@pytest.fixture(scope="package")
def docs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the scenario's screenshots go: docs/ when PRESENCESYNC_SCREENSHOTS=1 (to refresh
    the README's pictures), else a temporary folder, so a test run leaves the tree clean."""
    if os.environ.get("PRESENCESYNC_SCREENSHOTS") == "1":
        DOCS.mkdir(exist_ok=True)
        return DOCS
    return tmp_path_factory.mktemp("screenshots")
