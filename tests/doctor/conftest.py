"""A real server and a real emulator (the demo stack, no consoles) for the preflight tests,
and a way to put the org back in order after a test broke it on purpose."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from presencesync.cli import main as cli_main
from presencesync_sandbox.demo import DemoStack, start_stack, ws_url


@dataclass
class Org:
    stack: DemoStack
    database_url: str
    account_id: str
    emulator: httpx.Client

    @property
    def agents(self) -> list[dict[str, Any]]:
        return list(self.stack.info["agents"])

    def patch_permission_set(self, name: str, **body: Any) -> None:
        self.emulator.patch(f"/emulator/v1/permission-sets/{name}", json=body).raise_for_status()

    def integration_profile(self) -> str:
        sets = self.emulator.get("/emulator/v1/permission-sets").raise_for_status().json()
        return next(
            ps["name"] for ps in sets if ps["label"] == "Minimum Access - API Only Integrations"
        )

    def heal(self) -> None:
        """Undo every break the tests make (only what differs from the demo's org)."""
        e = self.emulator
        limits = e.get("/emulator/v1/limits").json()
        if limits != {"daily_api_requests": 15000, "used": limits["used"]} or limits["used"] > 100:
            e.put("/emulator/v1/limits", json={"daily_api_requests": 15000, "reset_usage": True})
        sets = {ps["name"]: ps for ps in e.get("/emulator/v1/permission-sets").json()}
        profile = next(
            name
            for name, ps in sets.items()
            if ps["label"] == "Minimum Access - API Only Integrations"
        )
        if not sets[profile]["api_enabled"]:
            self.patch_permission_set(profile, api_enabled=True)
        integration = sets["PresenceSync_Integration"]
        if not (
            integration["api_enabled"]
            and integration["view_setup"]
            and integration["object_read"] == ["AgentWork", "UserServicePresence"]
        ):
            self.patch_permission_set(
                "PresenceSync_Integration",
                api_enabled=True,
                view_setup=True,
                object_read={"AgentWork": True, "UserServicePresence": True},
            )
        agent_set = sets["PresenceSync_Agent"]
        for status in e.get("/emulator/v1/presence-statuses").json():
            name = status["developer_name"]
            if name not in agent_set["presence_statuses"]:
                e.put(
                    f"/emulator/v1/permission-sets/PresenceSync_Agent/presence-statuses/{name}"
                ).raise_for_status()
        users = {u["id"]: u for u in e.get("/emulator/v1/users").json()}
        for agent in self.agents:
            user = agent["salesforce_user_id"]
            if user not in agent_set["assignees"]:
                e.put(f"/emulator/v1/permission-sets/PresenceSync_Agent/assignments/{user}")
            if not users[user]["is_active"]:
                e.patch(f"/emulator/v1/users/{user}", json={"is_active": True}).raise_for_status()
        site = {"endpoint_url": ws_url(self.stack.api_url), "is_active": True}
        sites = e.get("/emulator/v1/csp-trusted-sites").json()
        if [(s["endpoint_url"], s["is_active"]) for s in sites] != [tuple(site.values())]:
            e.put("/emulator/v1/csp-trusted-sites/PresenceSyncServer", json=site).raise_for_status()

    def doctor(self, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
        """`presencesync doctor --json` for the stack's account; (exit code, report)."""
        capsys.readouterr()
        code = cli_main(
            [
                "doctor",
                "--database-url",
                self.database_url,
                "--account",
                self.account_id,
                "--server-url",
                self.stack.api_url,
                "--json",
                *args,
            ]
        )
        return code, json.loads(capsys.readouterr().out)


def by_id(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in report["checks"]}


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {c["id"]: c["status"] for c in report["checks"]}


@pytest.fixture(scope="package")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Org]:
    from presencesync.web.logging import configure_logging

    configure_logging("WARNING")  # JSON lines on stderr: stdout is the doctor's report
    directory: Path = tmp_path_factory.mktemp("doctor")
    database_url = f"sqlite:///{directory}/presencesync.db"
    stack = start_stack(
        database_url=database_url, emulator_db=":memory:", agents=3, consoles="none"
    )
    emulator = httpx.Client(base_url=stack.emulator_url, timeout=10, trust_env=False)
    try:
        principal = stack.engine.resolve_token(stack.info["admin_token"])
        yield Org(stack, database_url, principal.account_id, emulator)
    finally:
        emulator.close()
        stack.stop()


@pytest.fixture
def healthy(org: Org) -> Iterator[Org]:
    """The org as the demo sets it up; whatever a test breaks is repaired afterwards."""
    try:
        yield org
    finally:
        org.heal()
