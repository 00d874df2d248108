"""The Python console client against a running emulator (real socket)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from presencesync_emulator.console_client import ConsoleClient, ToolkitCallError
from presencesync_emulator.testing import running_emulator, ssl_context


async def _scenario(url: str, verify: Any = True) -> None:
    async with httpx.AsyncClient(base_url=url, verify=verify, timeout=5) as control:
        agent = (await control.get("/emulator/v1/users")).json()[1]["id"]
        statuses = {
            s["developer_name"]: s["id"]
            for s in (await control.get("/emulator/v1/presence-statuses")).json()
        }
        seen: list[str] = []
        context = verify if not isinstance(verify, bool) else None
        async with ConsoleClient(url, agent, ssl_context=context) as console:
            assert console.hello == {
                "type": "hello",
                "user_id": agent,
                "online": False,
                "status": None,
            }
            console.on("omniChannelStatusChanged", lambda params: seen.append(params["reason"]))
            with pytest.raises(ToolkitCallError) as offline:
                await console.call("getServicePresenceStatusId")
            assert offline.value.error_code == "OMNI_OFFLINE"
            result = await console.call("setServicePresenceStatus", statusId=statuses["Available"])
            assert result["statusApiName"] == "Available"
            assert (await console.next_event())["name"] == "lightning:omniChannelLoginSuccess"
            assert (await console.next_event())["params"]["reason"] == "OmniLoginStatusChange"
            await control.put(
                f"/emulator/v1/users/{agent}/omni/status", json={"presence_status": "Lunch"}
            )
            changed = await console.next_event()
            assert changed["params"]["statusApiName"] == "Lunch"
            assert seen == ["OmniLoginStatusChange", "OmniManualStatusChange"]
            assert await console.call("logout") is True
            assert (await console.next_event())["name"] == "lightning:omniChannelLogout"
        assert console.closed is not None and console.closed.done()


def test_console_client_over_http() -> None:
    with running_emulator() as url:
        asyncio.run(_scenario(url))


def test_console_client_over_https(tmp_path: Path) -> None:
    with running_emulator(tls=True, tls_dir=tmp_path) as url:
        asyncio.run(_scenario(url, verify=ssl_context(tmp_path)))


def test_console_client_for_unknown_user() -> None:
    async def attempt(url: str) -> None:
        with pytest.raises(ToolkitCallError) as refused:
            await ConsoleClient(url, "005nobody").connect()
        assert refused.value.error_code == "NOT_FOUND"

    with running_emulator() as url:
        asyncio.run(attempt(url))
