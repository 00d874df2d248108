"""Helpers for the bridge tests: API and emulator clients, polling, one console per agent."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from presencesync_sandbox.demo import DemoStack
from presencesync_sandbox.headless_console import HeadlessConsole, HeadlessConsoles

T = TypeVar("T")


def wait_for(
    probe: Callable[[], T], check: Callable[[T], bool], timeout: float = 5.0, what: str = ""
) -> T:
    """Poll `probe()` until `check` holds; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    value = probe()
    while not check(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}: last value {value!r}")
        time.sleep(0.03)
        value = probe()
    return value


@dataclass
class AgentConsole:
    agent_id: str
    user_id: str
    token: str
    client: HeadlessConsole
    clients: HeadlessConsoles
    api: httpx.Client  # with the agent's token
    emulator: httpx.Client

    def view(self) -> dict[str, Any]:
        return self.api.get(f"/api/v1/agents/{self.agent_id}").raise_for_status().json()

    def omni(self) -> dict[str, Any]:
        return (
            self.emulator.get(f"/emulator/v1/users/{self.user_id}/omni").raise_for_status().json()
        )

    def history(self) -> list[dict[str, Any]]:
        url = f"/api/v1/agents/{self.agent_id}/history"
        return self.api.get(url, params={"limit": 500}).raise_for_status().json()

    def login(self, state: str | None = None) -> dict[str, Any]:
        body = {"state": state} if state else None
        return (
            self.api.post(f"/api/v1/agents/{self.agent_id}/login", json=body)
            .raise_for_status()
            .json()
        )

    def logout(self) -> None:
        self.api.post(f"/api/v1/agents/{self.agent_id}/logout").raise_for_status()

    def set_state(self, state: str) -> None:
        self.api.put(
            f"/api/v1/agents/{self.agent_id}/state", json={"state": state}
        ).raise_for_status()

    def set_status(self, status: str) -> None:
        """The agent picks a status in the Omni-Channel widget."""
        url = f"/emulator/v1/users/{self.user_id}/omni/status"
        self.emulator.put(url, json={"presence_status": status}).raise_for_status()

    def omni_logout(self, reason: str | None = None) -> None:
        """The agent goes offline in the widget, or Omni logs the agent out with `reason`."""
        body = {"reason": reason} if reason else None
        url = f"/emulator/v1/users/{self.user_id}/omni/logout"
        self.emulator.post(url, json=body).raise_for_status()

    def wait_state(self, state: str, timeout: float = 5.0) -> dict[str, Any]:
        return wait_for(self.view, lambda v: v["state"] == state, timeout, f"state {state}")

    def wait_presence(self, status: str | None, timeout: float = 5.0) -> dict[str, Any]:
        return wait_for(
            self.omni,
            lambda o: o["presence_status"] == status and o["online"] == (status is not None),
            timeout,
            f"Omni status {status}",
        )

    def wait_quiet(self) -> None:
        """Until the console has nothing unacknowledged and the server no command in flight."""
        wait_for(
            lambda: (self.client.unacked, self.view()["desired_presence_status"], self.omni()),
            lambda t: t[0] == 0 and t[1] == t[2]["presence_status"],
            5.0,
            "a quiet console",
        )
        time.sleep(0.2)


class Env:
    def __init__(self, stack: DemoStack) -> None:
        self.stack = stack
        self.info = stack.info
        self.emulator = httpx.Client(base_url=stack.emulator_url, timeout=10, trust_env=False)
        self.admin = self._api(self.info["admin_token"])
        self.supervisor = self._api(self.info["supervisor_token"])
        self._free = list(self.info["agents"])

    def _api(self, token: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.stack.api_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
            trust_env=False,
        )

    def console_for(
        self, entry: dict[str, Any], **options: Any
    ) -> tuple[HeadlessConsole, HeadlessConsoles]:
        client = HeadlessConsole(
            self.stack.emulator_url,
            entry["salesforce_user_id"],
            self.stack.api_url,
            entry["token"],
            **options,
        )
        return client, HeadlessConsoles([client]).start()

    def take_agent(self, **options: Any) -> AgentConsole:
        assert self._free, "no demo agent left: raise AGENTS in conftest"
        entry = self._free.pop(0)
        client, clients = self.console_for(entry, **options)
        clients.wait_ready()
        return AgentConsole(
            entry["agent_id"],
            entry["salesforce_user_id"],
            entry["token"],
            client,
            clients,
            self._api(entry["token"]),
            self.emulator,
        )

    def release(self, console: AgentConsole) -> None:
        """Leave the agent logged out everywhere, so it never takes another test's work."""
        try:
            if console.view()["logged_in"]:
                console.logout()
            if console.client.ready:
                console.wait_presence(None)
        finally:
            console.clients.stop()
            if console.omni()["online"]:
                console.omni_logout()
            console.api.close()

    def close(self) -> None:
        for client in (self.emulator, self.admin, self.supervisor):
            client.close()
