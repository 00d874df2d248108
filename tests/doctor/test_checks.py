"""The preflight's verdicts without an org: facts in, checks out."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from presencesync.service.doctor.checks import (
    AgentLink,
    ApiError,
    BridgeFacts,
    CheckResult,
    Expectations,
    LoginFact,
    OrgFacts,
    Report,
    bridge_socket_url,
    check_api_budget,
    check_csp,
    check_logins,
    check_status_access,
    evaluate,
)

AGENTS = (AgentLink("a1", "005000000000001AAA"), AgentLink("a2", "005000000000002AAA"))
EXP = Expectations(
    connection=True,
    flows=("jwt_bearer",),
    api_version="v62.0",
    state_statuses=("Available", "Busy"),
    agents=AGENTS,
    server_url="https://presencesync.example.com",
)
STATUS_IDS = {"Available": "0N5000000000001AAA", "Busy": "0N5000000000002AAA"}
HEALTHY = OrgFacts(
    logins=(LoginFact("jwt_bearer", True, user_id="005000000000009AAA", username="int@x"),),
    versions=("61.0", "62.0"),
    permission_sets=({"Name": "PresenceSync_Integration", "PermissionsViewSetup": True},),
    object_errors=dict.fromkeys(
        ("ServicePresenceStatus", "ServiceChannel", "ServiceChannelStatus", "AgentWork")
    ),
    statuses=STATUS_IDS,
    users={a.salesforce_user_id[:15]: {"IsActive": True} for a in AGENTS},
    grants={
        a.salesforce_user_id[:15]: frozenset(s[:15] for s in STATUS_IDS.values()) for a in AGENTS
    },
    api_limit=(15000, 14000),
    csp_sites=(
        {
            "DeveloperName": "PresenceSyncServer",
            "EndpointUrl": "wss://presencesync.example.com",
            "IsActive": True,
            "Context": "LEX",
            "IsApplicableToConnectSrc": True,
        },
    ),
)
BRIDGE = BridgeFacts("https://presencesync.example.com", True, "script ok", True, "socket ok")


def test_healthy_facts_pass() -> None:
    report = evaluate(EXP, HEALTHY, BRIDGE)
    assert {c.status for c in report.checks} == {"ok"}, report.render_text()
    assert report.ok and report.exit_code == 0


def test_every_login_refusal_has_its_own_advice() -> None:
    cases = {
        ("invalid_grant", "audience is invalid"): "never the My Domain URL",
        ("invalid_grant", "user hasn't approved this consumer"): "pre-authorized",
        ("invalid_client_id", "client identifier invalid"): "Consumer Key",
        ("invalid_client", "invalid client credentials"): "Consumer Secret",
        ("invalid_grant", "no client credentials user enabled"): "Run As",
        ("invalid_grant", "invalid signature on assertion"): "certificate",
        ("invalid_grant", "expired authorization code"): "clock",
        ("unreachable", "ConnectError"): "network",
    }
    for (error, description), advice in cases.items():
        facts = OrgFacts(logins=(LoginFact("jwt_bearer", False, error, description),))
        (result,) = check_logins(EXP, facts)
        assert result.status == "problem"
        assert advice in (result.fix or ""), (error, description, result.fix)


def test_without_a_login_the_org_checks_are_skipped_not_failed() -> None:
    facts = OrgFacts(logins=(LoginFact("jwt_bearer", False, "invalid_client", "x"),))
    report = evaluate(EXP, facts, BRIDGE)
    problems = [c.id for c in report.checks if c.status == "problem"]
    assert problems == ["login.jwt_bearer"]
    assert report.exit_code == 1


def test_grants_that_salesforce_does_not_show_at_all_are_a_warning() -> None:
    # Salesforce does not list presence statuses among SetupEntityType's values: if no grant
    # of any mapped status is visible, the check cannot tell and says so.
    facts = replace(HEALTHY, grants={}, grants_visible=False)
    result = check_status_access(EXP, facts)
    assert result.status == "warning"
    assert "Service Presence Status Access" in (result.fix or "")
    partial = replace(
        HEALTHY, grants={AGENTS[0].salesforce_user_id[:15]: frozenset({"0N5000000000001"})}
    )
    result = check_status_access(EXP, partial)
    assert result.status == "problem"
    assert result.details["missing"] == {"Available": ["a2"], "Busy": ["a1", "a2"]}


def test_grants_compare_15_character_ids() -> None:
    facts = replace(
        HEALTHY,
        users={a.salesforce_user_id[:15]: {"IsActive": True} for a in AGENTS},
        grants={
            a.salesforce_user_id[:15]: frozenset({"0N5000000000001", "0N5000000000002"})
            for a in AGENTS
        },
    )
    assert check_status_access(EXP, facts).status == "ok"


def test_api_budget_thresholds_and_header_fallback() -> None:
    assert check_api_budget(EXP, replace(HEALTHY, api_limit=(1000, 101))).status == "ok"
    assert check_api_budget(EXP, replace(HEALTHY, api_limit=(1000, 99))).status == "warning"
    assert check_api_budget(EXP, replace(HEALTHY, api_limit=(1000, 0))).status == "problem"
    # Salesforce lets usage go past the limit (api-usage=110018/100000): nothing is left.
    header_only = replace(HEALTHY, api_limit=None, api_usage=(110018, 100000))
    result = check_api_budget(EXP, header_only)
    assert result.status == "problem" and result.details["remaining"] == 0
    exhausted = replace(HEALTHY, rest_error=ApiError("REQUEST_LIMIT_EXCEEDED", "TotalRequests"))
    assert check_api_budget(EXP, exhausted).status == "problem"


def _site(url: str, **fields: object) -> dict[str, object]:
    return {
        "DeveloperName": "S",
        "EndpointUrl": url,
        "IsActive": True,
        "Context": "LEX",
        "IsApplicableToConnectSrc": True,
        **fields,
    }


def test_csp_trusted_site_matching() -> None:
    def verdict(*sites: dict[str, object], server: str = "https://ps.example.com") -> str:
        exp = replace(EXP, server_url=server)
        return check_csp(exp, replace(HEALTHY, csp_sites=sites)).status

    assert verdict(_site("wss://ps.example.com")) == "ok"
    assert verdict(_site("https://ps.example.com/")) == "ok"  # https: sources allow wss: too
    assert verdict(_site("wss://ps.example.com:443")) == "ok"
    assert verdict(_site("wss://ps.example.com:8443")) == "problem"
    assert verdict(_site("wss://other.example.com")) == "problem"
    assert verdict(_site("ws://ps.example.com")) == "problem"  # not TLS
    assert verdict(_site("wss://ps.example.com", IsActive=False)) == "problem"
    assert verdict(_site("wss://ps.example.com", Context="Communities")) == "problem"
    assert verdict(_site("wss://ps.example.com", Context="All")) == "ok"
    assert (
        verdict(
            _site("wss://ps.example.com", IsApplicableToConnectSrc=False, IsApplicableToImgSrc=True)
        )
        == "problem"
    )
    # Salesforce treats a site with no isApplicable* set as applicable to every directive
    assert (
        verdict(
            _site(
                "wss://ps.example.com", IsApplicableToConnectSrc=False, IsApplicableToImgSrc=False
            )
        )
        == "ok"
    )
    assert verdict(_site("ws://127.0.0.1:8000"), server="http://127.0.0.1:8000") == "ok"
    assert verdict() == "problem"


def test_bridge_socket_url() -> None:
    assert bridge_socket_url("https://ps.example.com/") == "wss://ps.example.com"
    assert bridge_socket_url("https://ps.example.com:8443") == "wss://ps.example.com:8443"
    assert bridge_socket_url("http://127.0.0.1:8000") == "ws://127.0.0.1:8000"
    assert bridge_socket_url("ps.example.com") == "wss://ps.example.com"


def test_report_text_and_json() -> None:
    report = Report(
        (
            CheckResult("a", "First", "ok", "fine"),
            CheckResult("b", "Second", "warning", "hmm", "look at it"),
            CheckResult("c", "Third", "problem", "broken", "fix it"),
            CheckResult("d", "Fourth", "skipped", "not run", "ignored"),
        )
    )
    text = report.render_text()
    assert "[ok     ] First: fine" in text
    assert "[PROBLEM] Third: broken\n          -> fix it" in text
    assert "ignored" not in text
    assert text.endswith("1 ok, 1 warning, 1 problem, 1 skipped: fix the problems above.")
    body = report.to_api()
    assert body["ok"] is False and body["problems"] == 1 and body["warnings"] == 1
    assert body["checks"][1] == {
        "id": "b",
        "title": "Second",
        "status": "warning",
        "message": "hmm",
        "fix": "look at it",
        "details": {},
    }


@given(st.lists(st.sampled_from(["ok", "warning", "problem", "skipped"]), max_size=12))
def test_the_exit_code_is_1_exactly_when_a_check_finds_a_problem(verdicts: list[str]) -> None:
    report = Report(tuple(CheckResult(str(i), "t", v, "m") for i, v in enumerate(verdicts)))  # type: ignore[arg-type]
    assert report.exit_code == (1 if "problem" in verdicts else 0)
    assert report.ok is ("problem" not in verdicts)
