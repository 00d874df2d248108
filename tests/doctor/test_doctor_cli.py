"""`presencesync doctor` against a healthy emulated org, then against orgs broken on purpose,
one fault at a time: the right check fails, with the right message, and the exit code is 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from presencesync.cli import main as cli_main
from presencesync.domain import PresenceStatus, StatusOption
from presencesync.service import SalesforceConnection

from .conftest import Org, by_id, statuses

ALL_CHECKS = [
    "login.jwt_bearer",
    "login.client_credentials",
    "api_version",
    "api_enabled",
    "view_setup",
    "object_access",
    "presence_statuses",
    "agents",
    "status_access",
    "api_budget",
    "bridge",
    "csp_trusted_site",
]


def only_problems(report: dict) -> set[str]:
    return {c["id"] for c in report["checks"] if c["status"] == "problem"}


def test_a_healthy_org_passes_every_check(healthy: Org, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = healthy.doctor(capsys=capsys)
    assert code == 0
    assert [c["id"] for c in report["checks"]] == ALL_CHECKS
    assert set(statuses(report).values()) == {"ok"}, report
    assert report["ok"] is True and report["problems"] == 0
    checks = by_id(report)
    assert "6 statuses x 3 agents" in checks["status_access"]["message"]
    assert "answers" in checks["bridge"]["message"]


def test_the_text_report_has_one_line_per_check(
    healthy: Org, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    code = cli_main(
        ["doctor", "--database-url", healthy.database_url, "--account", healthy.account_id]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert out.count("[ok     ]") == 10  # no --server-url: bridge and CSP skipped
    assert "[skipped] Bridge reachable: no server URL given" in out
    assert out.rstrip().endswith("presencesync is ready for this org.")


def test_api_enabled_removed(healthy: Org, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("PresenceSync_Integration", healthy.integration_profile()):
        healthy.patch_permission_set(name, api_enabled=False)
    code, report = healthy.doctor(capsys=capsys)
    assert code == 1
    check = by_id(report)["api_enabled"]
    assert check["status"] == "problem"
    assert "API_DISABLED_FOR_ORG" in check["message"]
    assert "PresenceSync_Integration" in check["fix"]
    assert only_problems(report) == {"api_enabled"}
    assert statuses(report)["login.jwt_bearer"] == "ok"
    assert statuses(report)["view_setup"] == "skipped"


def test_view_setup_removed(healthy: Org, capsys: pytest.CaptureFixture[str]) -> None:
    healthy.patch_permission_set("PresenceSync_Integration", view_setup=False)
    code, report = healthy.doctor(capsys=capsys)
    assert code == 1
    checks = by_id(report)
    assert checks["view_setup"]["status"] == "problem"
    assert "cannot read permission sets (INVALID_TYPE)" in checks["view_setup"]["message"]
    # Without View Setup the presence statuses' API names are hidden too (object reference:
    # DeveloperName needs View DeveloperName or View Setup and Configuration).
    assert checks["object_access"]["status"] == "problem"
    assert "ServicePresenceStatus (a field is hidden" in checks["object_access"]["message"]
    assert checks["agents"]["status"] == "ok"


def test_read_on_agent_work_removed(healthy: Org, capsys: pytest.CaptureFixture[str]) -> None:
    healthy.patch_permission_set("PresenceSync_Integration", object_read={"AgentWork": False})
    code, report = healthy.doctor(capsys=capsys)
    assert code == 1
    assert only_problems(report) == {"object_access"}
    check = by_id(report)["object_access"]
    assert check["message"] == "cannot read AgentWork (no read access)"
    assert check["details"] == {"denied": {"AgentWork": "INVALID_TYPE"}}


def test_a_status_grant_revoked(healthy: Org, capsys: pytest.CaptureFixture[str]) -> None:
    healthy.emulator.delete(
        "/emulator/v1/permission-sets/PresenceSync_Agent/presence-statuses/Lunch"
    ).raise_for_status()
    code, report = healthy.doctor(capsys=capsys)
    assert code == 1
    assert only_problems(report) == {"status_access"}
    check = by_id(report)["status_access"]
    assert check["message"] == "Lunch not granted to agent-1, agent-2, agent-3"
    assert "Service Presence Status Access" in check["fix"]


def test_one_agent_without_the_agent_permission_set(
    healthy: Org, capsys: pytest.CaptureFixture[str]
) -> None:
    user = healthy.agents[1]["salesforce_user_id"]
    healthy.emulator.delete(
        f"/emulator/v1/permission-sets/PresenceSync_Agent/assignments/{user}"
    ).raise_for_status()
    code, report = healthy.doctor(capsys=capsys)
    assert code == 1
    missing = by_id(report)["status_access"]["details"]["missing"]
    assert missing and all(agents == ["agent-2"] for agents in missing.values())


def test_a_deactivated_agent(healthy: Org, capsys: pytest.CaptureFixture[str]) -> None:
    user = healthy.agents[2]["salesforce_user_id"]
    healthy.emulator.patch(f"/emulator/v1/users/{user}", json={"is_active": False})
    code, report = healthy.doctor(capsys=capsys)
    assert code == 1
    assert only_problems(report) == {"agents"}
    assert by_id(report)["agents"]["message"] == f"inactive: agent-3 ({user})"


def test_a_mapped_status_the_org_does_not_have(
    healthy: Org, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = healthy.stack.engine
    before = engine.get_omni_config(healthy.account_id)
    fetched = engine.get_presence_statuses(healthy.account_id)
    ghost = PresenceStatus("0N55g00000000ZZAAA", "Ghost_Status", "Ghost", StatusOption.BUSY, ())
    engine.save_presence_statuses(healthy.account_id, [*fetched, ghost], "test")
    config = before.config.to_api()
    config["state_mappings"] = [
        {**m, "presence_status": "Ghost_Status"} if m["state"] == "Wrap" else m
        for m in config["state_mappings"]
    ]
    engine.save_omni_config(healthy.account_id, config, "test")
    try:
        code, report = healthy.doctor(capsys=capsys)
    finally:
        engine.save_presence_statuses(healthy.account_id, fetched, "test")
        engine.save_omni_config(healthy.account_id, before.config.to_api(), "test")
    assert code == 1
    check = by_id(report)["presence_statuses"]
    assert check["status"] == "problem"
    assert check["message"] == (
        "the state mapping sets statuses the org does not have: Ghost_Status"
    )
    assert only_problems(report) == {"presence_statuses"}


def test_api_budget_low_is_a_warning(healthy: Org, capsys: pytest.CaptureFixture[str]) -> None:
    healthy.emulator.put("/emulator/v1/limits", json={"used": 14_000}).raise_for_status()
    code, report = healthy.doctor(capsys=capsys)
    assert code == 0  # warnings do not fail the preflight
    check = by_id(report)["api_budget"]
    assert check["status"] == "warning"
    assert "left (less than 10%)" in check["message"]
    code, report = healthy.doctor("--budget-warning", "5", capsys=capsys)
    assert by_id(report)["api_budget"]["status"] == "ok"


def test_api_budget_exhausted(healthy: Org, capsys: pytest.CaptureFixture[str]) -> None:
    healthy.emulator.put("/emulator/v1/limits", json={"used": 15_000}).raise_for_status()
    code, report = healthy.doctor(capsys=capsys)
    assert code == 1
    check = by_id(report)["api_budget"]
    assert check["status"] == "problem"
    assert "REQUEST_LIMIT_EXCEEDED" in check["message"]
    assert statuses(report)["object_access"] == "skipped"


def test_bridge_unreachable(healthy: Org, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = healthy.doctor("--server-url", "http://127.0.0.1:9", capsys=capsys)
    assert code == 1
    bridge = by_id(report)["bridge"]
    assert bridge["status"] == "problem"
    assert "GET /static/bridge.js failed" in bridge["message"]
    assert "ws://127.0.0.1:9/api/v1/bridge failed" in bridge["message"]
    # ... and no trusted URL names that address either
    assert by_id(report)["csp_trusted_site"]["status"] == "problem"


def test_csp_trusted_site_missing(healthy: Org, capsys: pytest.CaptureFixture[str]) -> None:
    healthy.emulator.delete("/emulator/v1/csp-trusted-sites/PresenceSyncServer")
    code, report = healthy.doctor(capsys=capsys)
    assert code == 1
    assert only_problems(report) == {"csp_trusted_site"}
    check = by_id(report)["csp_trusted_site"]
    assert "Lightning blocks the bridge's WebSocket" in check["message"]
    assert "Setup > Trusted URLs" in check["fix"]


def test_csp_trusted_site_inactive(healthy: Org, capsys: pytest.CaptureFixture[str]) -> None:
    from presencesync_sandbox.demo import ws_url

    healthy.emulator.put(
        "/emulator/v1/csp-trusted-sites/PresenceSyncServer",
        json={"endpoint_url": ws_url(healthy.stack.api_url), "is_active": False},
    )
    code, report = healthy.doctor(capsys=capsys)
    assert code == 1
    assert "inactive" in by_id(report)["csp_trusted_site"]["message"]


def test_unsupported_api_version(healthy: Org, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = healthy.doctor("--api-version", "v99.0", capsys=capsys)
    assert code == 1
    check = by_id(report)["api_version"]
    assert check["message"] == "the org does not serve v99.0 (newest: v62.0)"
    assert "--api-version v62.0" in check["fix"]


def _flags(org: Org, tmp_path: Path, **overrides: str) -> list[str]:
    app = org.emulator.get("/emulator/v1/oauth-clients").json()[0]
    key = tmp_path / "key.pem"
    key.write_text(app["private_key_pem"])
    flags = {
        "--login-url": org.stack.emulator_url,
        "--client-id": app["client_id"],
        "--username": app["username"],
        "--private-key-file": str(key),
        **overrides,
    }
    return [part for item in flags.items() for part in item]


def test_jwt_audience_of_the_my_domain_is_refused(
    healthy: Org, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    flags = _flags(healthy, tmp_path, **{"--audience": healthy.stack.emulator_url})
    code, report = healthy.doctor(*flags, capsys=capsys)
    assert code == 1
    login = by_id(report)["login.jwt_bearer"]
    assert login["status"] == "problem"
    assert login["message"] == ("Salesforce refused the login (invalid_grant: audience is invalid)")
    assert "https://login.salesforce.com (production)" in login["fix"]
    assert statuses(report)["api_version"] == "skipped"
    # the right audience, given explicitly, works
    code, report = healthy.doctor(
        *_flags(healthy, tmp_path, **{"--audience": "https://login.salesforce.com"}),
        capsys=capsys,
    )
    assert code == 0, report


def test_a_user_not_pre_authorized(
    healthy: Org, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    flags = _flags(healthy, tmp_path, **{"--username": "someone@else.example"})
    code, report = healthy.doctor(*flags, capsys=capsys)
    assert code == 1
    login = by_id(report)["login.jwt_bearer"]
    assert "user hasn't approved this consumer" in login["message"]
    assert "Admin approved users are pre-authorized" in login["fix"]


def test_a_wrong_client_secret(
    healthy: Org, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch
) -> None:
    app = healthy.emulator.get("/emulator/v1/oauth-clients").json()[0]
    monkeypatch.setenv("PRESENCESYNC_SF_CLIENT_SECRET", "not-the-secret")
    code, report = healthy.doctor(
        "--login-url", healthy.stack.emulator_url, "--client-id", app["client_id"], capsys=capsys
    )
    assert code == 1
    login = by_id(report)["login.client_credentials"]
    assert login["message"] == (
        "Salesforce refused the login (invalid_client: invalid client credentials)"
    )
    assert "Consumer Secret" in login["fix"]


def test_an_account_without_a_connection_and_save_connection(
    org: Org, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    engine = org.stack.engine
    account = engine.create_account("Initech")
    base = ["doctor", "--database-url", org.database_url, "--account", account, "--json"]
    capsys.readouterr()
    assert cli_main(base) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["checks"][0]["id"] == "login"
    assert "no Salesforce connection is configured" in report["checks"][0]["message"]
    assert statuses(report)["presence_statuses"] == "skipped"  # nothing mapped yet

    # a failing login is not saved
    bad = _flags(org, tmp_path, **{"--audience": org.stack.emulator_url})
    assert cli_main([*base, *bad, "--save-connection"]) == 1
    assert json.loads(capsys.readouterr().out)["connection_saved"] is False
    assert engine.get_salesforce_connection(account) is None
    # a working one is
    assert cli_main([*base, *_flags(org, tmp_path), "--save-connection"]) == 0
    saved_report = json.loads(capsys.readouterr().out)
    assert saved_report["connection_saved"] is True
    stored = engine.get_salesforce_connection(account)
    assert isinstance(stored, SalesforceConnection) and stored.login_url == org.stack.emulator_url
    assert stored.audience is None
    # from now on the stored connection is checked
    assert cli_main(base) == 0
    assert by_id(json.loads(capsys.readouterr().out))["agents"]["status"] == "warning"


def test_an_agent_linked_to_a_user_the_org_does_not_have(
    org: Org, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = org.stack.engine
    account = engine.create_account("Umbrella")
    engine.set_salesforce_connection(account, engine.get_salesforce_connection(org.account_id))
    engine.create_agent(account, "ghost", "Ghost", "0055g00000000ZZAAA")
    engine.create_agent(account, "avery", "Avery", org.agents[0]["salesforce_user_id"])
    capsys.readouterr()
    code = cli_main(["doctor", "--database-url", org.database_url, "--account", account, "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    assert by_id(report)["agents"]["message"] == "no such user: ghost (0055g00000000ZZAAA)"
    assert by_id(report)["agents"]["details"]["missing"] == ["ghost"]


def test_usage_errors(org: Org, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["doctor", "--database-url", org.database_url]) == 2
    assert "give --account" in capsys.readouterr().err
    assert cli_main(["doctor", "--database-url", org.database_url, "--account", "nope"]) == 2
    assert cli_main(["doctor", "--client-id", "x", "--save-connection"]) == 2


def test_account_create_prints_an_admin_token(org: Org, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert (
        cli_main(["account", "create", "--database-url", org.database_url, "--name", "Hooli"]) == 0
    )
    created = json.loads(capsys.readouterr().out)
    principal = org.stack.engine.resolve_token(created["admin_token"])
    assert principal is not None and principal.role == "admin"
    assert principal.account_id == created["account_id"]
    assert org.stack.engine.get_account(created["account_id"]).omni_feature is True


def test_account_token_issues_tokens_of_each_role(
    org: Org, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["account", "token", "--database-url", org.database_url, "--account", org.account_id]
    capsys.readouterr()
    assert cli_main([*base, "--role", "agent", "--agent", "agent-1"]) == 0
    issued = json.loads(capsys.readouterr().out)
    principal = org.stack.engine.resolve_token(issued["token"])
    assert (principal.role, principal.agent_id) == ("agent", "agent-1")
    assert cli_main([*base, "--role", "supervisor"]) == 0
    supervisor = json.loads(capsys.readouterr().out)["token"]
    assert org.stack.engine.resolve_token(supervisor).role == "supervisor"
    assert cli_main([*base, "--role", "agent"]) == 2  # which agent?
    assert cli_main([*base, "--role", "admin", "--agent", "agent-1"]) == 2
    assert cli_main([*base, "--role", "agent", "--agent", "nobody"]) == 2
    assert "nobody" in capsys.readouterr().err
