"""`presencesync doctor` checks the Change Data Capture subscription of an account that has it on:
both topics subscribed as the integration user, or the refusal with what to do about it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import httpx
import pytest

from presencesync_sandbox.demo import DemoStack


def doctor(stack: DemoStack, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, Any]:
    """The preflight: through the API (in the server's process, the way the admin page runs
    it) for the account's stored connection; the command line, in a process of its own, when
    flags are given (gRPC's asyncio client keeps to one event loop per process)."""
    account = stack.engine.resolve_token(stack.info["admin_token"])
    assert account is not None
    if not extra:
        headers = {"Authorization": f"Bearer {stack.info['admin_token']}"}
        with httpx.Client(base_url=stack.api_url, headers=headers, trust_env=False) as api:
            report = api.post("/api/v1/omni/doctor", json={}, timeout=60).raise_for_status()
            body = report.json()
        return (0 if body["ok"] else 1), body
    command = [sys.executable, "-m", "presencesync", "doctor", "--json"]
    command += ["--database-url", stack.engine.database_url, "--account", account.account_id]
    result = subprocess.run(
        [*command, *extra], capture_output=True, text=True, timeout=120, env=dict(os.environ)
    )
    out = result.stdout
    return result.returncode, json.loads(out) if out.strip().startswith("{") else out


def cdc_check(report: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in report["checks"] if c["id"] == "change_data_capture")


def refuse(stack: DemoStack, status: str, error_code: str) -> None:
    with httpx.Client(base_url=stack.emulator_url, trust_env=False) as emu:
        emu.post(
            "/emulator/v1/pubsub/faults",
            json={"refuse_next": 1, "status": status, "error_code": error_code},
        ).raise_for_status()


def test_the_subscription_is_checked_when_the_account_has_it_on(
    cdc_stack: DemoStack, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = doctor(cdc_stack, capsys)
    check = cdc_check(report)
    assert check["status"] == "ok", check
    assert "/data/UserServicePresenceChangeEvent" in check["message"]
    assert "/data/AgentWorkChangeEvent" in check["message"]
    assert check["details"]["endpoint"].startswith("grpc://127.0.0.1:")
    assert code == 0


def test_entities_not_selected_for_change_data_capture(
    cdc_stack: DemoStack, capsys: pytest.CaptureFixture[str]
) -> None:
    refuse(cdc_stack, "NOT_FOUND", "sfdc.platform.eventbus.grpc.service.topic.not.found")
    code, report = doctor(cdc_stack, capsys)
    check = cdc_check(report)
    assert code == 1 and check["status"] == "problem"
    assert "NOT_FOUND" in check["message"]
    assert "Change Data Capture" in check["fix"] and "Selected" in check["fix"]


def test_an_integration_user_without_view_all(
    cdc_stack: DemoStack, capsys: pytest.CaptureFixture[str]
) -> None:
    refuse(cdc_stack, "PERMISSION_DENIED", "sfdc.platform.eventbus.grpc.service.permission")
    code, report = doctor(cdc_stack, capsys)
    check = cdc_check(report)
    assert code == 1 and check["status"] == "problem"
    assert "View All" in check["fix"] and "PresenceSync_Integration" in check["fix"]


def test_an_unreachable_endpoint_and_a_malformed_one(
    cdc_stack: DemoStack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    oauth = cdc_stack.info["salesforce"]
    monkeypatch.setenv("PRESENCESYNC_SF_CLIENT_SECRET", oauth["client_secret"])
    flags = ["--login-url", cdc_stack.emulator_url, "--client-id", oauth["client_id"]]
    code, report = doctor(cdc_stack, capsys, *flags, "--pubsub-endpoint", "grpc://127.0.0.1:1")
    check = cdc_check(report)
    assert code == 1 and check["status"] == "problem", check
    assert "127.0.0.1:1" in check["fix"]
    code, _out = doctor(cdc_stack, capsys, *flags, "--pubsub-endpoint", "not an endpoint")
    assert code == 2


def test_off_means_not_checked_unless_asked(
    cdc_stack: DemoStack, capsys: pytest.CaptureFixture[str]
) -> None:
    headers = {"Authorization": f"Bearer {cdc_stack.info['admin_token']}"}
    with httpx.Client(base_url=cdc_stack.api_url, headers=headers, trust_env=False) as api:
        api.put("/api/v1/settings", json={"change_data_capture": False}).raise_for_status()
        try:
            _code, report = doctor(cdc_stack, capsys)
            assert "change_data_capture" not in {c["id"] for c in report["checks"]}
            _code, report = doctor(cdc_stack, capsys, "--change-data-capture")
            assert cdc_check(report)["status"] == "ok"
        finally:
            api.put("/api/v1/settings", json={"change_data_capture": True}).raise_for_status()
