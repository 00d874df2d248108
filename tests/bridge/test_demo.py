"""`presencesync demo` as a user runs it: a subprocess, the info file, headless consoles, Ctrl-C;
then a second run on the same database."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from presencesync_sandbox.demo import start_stack
from tests.bridge.kit import wait_for


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(tmp: Path, info: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PRESENCESYNC_LOG_LEVEL": "WARNING"}
    for key in [k for k in env if k.startswith("PRESENCESYNC_") and k != "PRESENCESYNC_LOG_LEVEL"]:
        del env[key]
    command = [
        sys.executable,
        "-m",
        "presencesync",
        "demo",
        "--info-file",
        str(info),
        "--agents",
        "2",
        "--port",
        str(_free_port()),
        "--emulator-port",
        str(_free_port()),
        "--database-url",
        f"sqlite:///{tmp}/demo.db",
    ]
    return subprocess.Popen(
        command, cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _wait_running(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.strip().startswith("No consoles") or "Headless consoles" in line:
            return "".join(lines)
    process.kill()
    raise AssertionError("the demo did not come up:\n" + "".join(lines))


def _stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()


def test_demo_runs_syncs_without_a_browser_and_reruns(tmp_path: Path) -> None:
    info_file = tmp_path / "demo.json"
    process = _start(tmp_path, info_file)
    try:
        printed = _wait_running(process)
        info: dict[str, Any] = json.loads(info_file.read_text())
        assert set(info) == {
            "api_url",
            "emulator_url",
            "admin_token",
            "supervisor_token",
            "agents",
            "salesforce",
        }
        assert set(info["salesforce"]) == {"client_id", "client_secret", "username"}
        assert len(info["agents"]) == 2
        for key in ("api_url", "admin_token", "supervisor_token"):
            assert info[key] in printed
        assert "/console/" in printed and "bridge=" in printed
        agent = info["agents"][1]
        assert agent["token"] in printed
        headers = {"Authorization": f"Bearer {agent['token']}"}
        api = httpx.Client(base_url=info["api_url"], headers=headers, trust_env=False)
        emulator = httpx.Client(base_url=info["emulator_url"], trust_env=False)
        path = f"/api/v1/agents/{agent['agent_id']}"
        omni = f"/emulator/v1/users/{agent['salesforce_user_id']}/omni"
        view = wait_for(lambda: api.get(path).json(), lambda v: v["console_connected"])

        # The mapping is in place and the headless console carries both directions.
        api.post(path + "/login").raise_for_status()
        wait_for(lambda: emulator.get(omni).json()["presence_status"], lambda s: s == "Available")
        emulator.put(omni + "/status", json={"presence_status": "Lunch"}).raise_for_status()
        view = wait_for(lambda: api.get(path).json(), lambda v: v["state"] != "Ready")
        assert view["state"] == "ExtendedAway/Lunch"
        api.close()
        emulator.close()
    finally:
        _stop(process)

    # Same database, same info file (in-process this time, to keep the suite quick): the
    # account, its tokens, agents and saved mapping are reused.
    stack = start_stack(
        database_url=f"sqlite:///{tmp_path}/demo.db",
        agents=2,
        consoles="none",
        info_file=info_file,
    )
    try:
        second = json.loads(info_file.read_text())
        assert second["api_url"] == stack.api_url != info["api_url"]
        assert second["admin_token"] == info["admin_token"]
        assert [a["token"] for a in second["agents"]] == [a["token"] for a in info["agents"]]
        headers = {"Authorization": f"Bearer {second['admin_token']}"}
        with httpx.Client(base_url=stack.api_url, headers=headers, trust_env=False) as api:
            assert api.get("/api/v1/omni/config").json()["enabled"] is True
            agents = api.get("/api/v1/agents").json()
            listed = agents["agents"] if isinstance(agents, dict) else agents
            assert sorted(a["agent_id"] for a in listed) == ["agent-1", "agent-2"]
            # The agent kept its state from the first run (the emulator's file kept Lunch).
            lunch = next(a for a in listed if a["agent_id"] == agent["agent_id"])
            assert lunch["state"] == "ExtendedAway/Lunch"
    finally:
        stack.stop()
