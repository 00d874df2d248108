"""The emulated org's access control: permission sets, assignments, object permissions,
presence-status grants, trusted URLs; what the REST API refuses without them; and the control
API calls that break an org on purpose (for `presencesync doctor`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from presencesync_emulator import permissions
from presencesync_emulator.app import create_app
from presencesync_emulator.seed import PRESENCE_STATUSES, seed_if_empty
from presencesync_emulator.store import Store
from tests.emulator.conftest import BASE, token

V = "/services/data/v62.0"


def _q(client: TestClient, soql: str, bearer: str) -> Any:
    return client.get(
        f"{V}/query", params={"q": soql}, headers={"Authorization": f"Bearer {bearer}"}
    )


def _sets(client: TestClient) -> dict[str, dict[str, Any]]:
    return {ps["label"]: ps for ps in client.get("/emulator/v1/permission-sets").json()}


def _integration_user(client: TestClient) -> str:
    users = client.get("/emulator/v1/users").json()
    return next(u["id"] for u in users if u["username"].startswith("integration@"))


def test_seeded_permission_model(client: TestClient, agents: list[str]) -> None:
    sets = _sets(client)
    integration = sets["presencesync Integration"]
    assert integration["name"] == permissions.INTEGRATION_PERMISSION_SET
    assert integration["api_enabled"] and integration["view_setup"]
    assert integration["object_read"] == ["AgentWork", "UserServicePresence"]
    assert integration["assignees"] == [_integration_user(client)]
    agent = sets["presencesync Agent"]
    assert agent["presence_statuses"] == sorted(dev for dev, _, _ in PRESENCE_STATUSES)
    assert agent["assignees"] == sorted(agents)
    assert sets["Standard User"]["owned_by_profile"] is True
    assert sets["Minimum Access - API Only Integrations"]["api_only"] is True
    # a user added later is an agent like the seeded ones
    new = client.post(
        "/emulator/v1/users", json={"name": "Frankie Lee", "username": "frankie@x.example"}
    ).json()
    assert new["id"] in _sets(client)["presencesync Agent"]["assignees"]


def test_the_integration_user_reads_assignments_and_grants_over_soql(
    client: TestClient, agents: list[str]
) -> None:
    bearer = token(client)
    soql = (
        "SELECT AssigneeId, PermissionSetId, PermissionSet.Name, PermissionSet.IsOwnedByProfile,"
        " PermissionSet.PermissionsApiEnabled, PermissionSet.PermissionsViewSetup"
        f" FROM PermissionSetAssignment WHERE AssigneeId = '{agents[0]}'"
    )
    r = _q(client, soql, bearer)
    assert r.status_code == 200, r.text
    names = {rec["PermissionSet"]["Name"] for rec in r.json()["records"]}
    assert permissions.AGENT_PERMISSION_SET in names
    ps_id = next(
        rec["PermissionSetId"]
        for rec in r.json()["records"]
        if rec["PermissionSet"]["Name"] == permissions.AGENT_PERMISSION_SET
    )
    grants = _q(
        client,
        "SELECT ParentId, SetupEntityId, SetupEntityType FROM SetupEntityAccess"
        f" WHERE ParentId = '{ps_id}' AND SetupEntityType = 'ServicePresenceStatus'",
        bearer,
    ).json()["records"]
    assert len(grants) == len(PRESENCE_STATUSES)
    assert all(g["SetupEntityId"].startswith("0N5") for g in grants)
    reads = _q(
        client,
        "SELECT SobjectType, PermissionsRead FROM ObjectPermissions"
        " WHERE Parent.Name = 'PresenceSync_Integration'",
        bearer,
    ).json()["records"]
    assert {(o["SobjectType"], o["PermissionsRead"]) for o in reads} == {
        ("AgentWork", True),
        ("UserServicePresence", True),
    }


def test_without_view_setup_setup_objects_and_developer_names_are_hidden(
    client: TestClient,
) -> None:
    bearer = token(client)
    r = client.patch(
        "/emulator/v1/permission-sets/PresenceSync_Integration", json={"view_setup": False}
    )
    assert r.status_code == 200 and r.json()["view_setup"] is False
    denied = _q(client, "SELECT Id FROM PermissionSetAssignment", bearer)
    assert denied.status_code == 400
    assert denied.json()[0]["errorCode"] == "INVALID_TYPE"
    assert "sObject type 'PermissionSetAssignment' is not supported" in denied.json()[0]["message"]
    field = _q(client, "SELECT Id, DeveloperName FROM ServicePresenceStatus", bearer)
    assert field.status_code == 400 and field.json()[0]["errorCode"] == "INVALID_FIELD"
    assert (
        _q(client, "SELECT Id, MasterLabel FROM ServicePresenceStatus", bearer).status_code == 200
    )
    headers = {"Authorization": f"Bearer {bearer}"}
    describe = client.get(f"{V}/sobjects/ServicePresenceStatus/describe", headers=headers).json()
    assert "DeveloperName" not in {f["name"] for f in describe["fields"]}
    assert (
        client.get(f"{V}/sobjects/SetupEntityAccess/describe", headers=headers).status_code == 404
    )


def test_without_read_on_agent_work_the_object_does_not_exist_for_the_user(
    client: TestClient,
) -> None:
    bearer = token(client)
    client.patch(
        "/emulator/v1/permission-sets/PresenceSync_Integration",
        json={"object_read": {"AgentWork": False}},
    )
    r = _q(client, "SELECT Id FROM AgentWork", bearer)
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "INVALID_TYPE"
    headers = {"Authorization": f"Bearer {bearer}"}
    listing = client.get(f"{V}/sobjects/", headers=headers).json()["sobjects"]
    assert "AgentWork" not in {o["name"] for o in listing}
    assert _q(client, "SELECT Id FROM UserServicePresence", bearer).status_code == 200
    client.patch(
        "/emulator/v1/permission-sets/PresenceSync_Integration",
        json={"object_read": {"AgentWork": True}},
    )
    assert _q(client, "SELECT Id FROM AgentWork", bearer).status_code == 200


def test_without_api_enabled_every_rest_call_is_refused(client: TestClient) -> None:
    bearer = token(client)
    for name in ("PresenceSync_Integration", "Minimum Access - API Only Integrations"):
        r = client.patch(f"/emulator/v1/permission-sets/{name}", json={"api_enabled": False})
        assert r.status_code == 200, r.text
    r = _q(client, "SELECT Id FROM User", bearer)
    assert r.status_code == 403
    assert r.json() == [
        {
            "message": "The REST API is not enabled for this Organization.",
            "errorCode": "API_DISABLED_FOR_ORG",
        }
    ]


def test_revoking_an_assignment_and_a_status_grant(client: TestClient, agents: list[str]) -> None:
    r = client.delete("/emulator/v1/permission-sets/PresenceSync_Agent/presence-statuses/Lunch")
    assert "Lunch" not in r.json()["presence_statuses"]
    r = client.delete(f"/emulator/v1/permission-sets/PresenceSync_Agent/assignments/{agents[1]}")
    assert agents[1] not in r.json()["assignees"]
    r = client.put(f"/emulator/v1/permission-sets/PresenceSync_Agent/assignments/{agents[1]}")
    assert agents[1] in r.json()["assignees"]
    assert (
        client.put("/emulator/v1/permission-sets/Nope/assignments/" + agents[0]).status_code == 404
    )
    bad = client.put("/emulator/v1/permission-sets/PresenceSync_Agent/presence-statuses/Nope")
    assert bad.status_code == 422
    assert (
        client.patch(
            "/emulator/v1/permission-sets/PresenceSync_Agent", json={"object_read": {"Nope": True}}
        ).status_code
        == 422
    )


def test_deactivating_a_user_ends_their_sessions_and_logins(client: TestClient) -> None:
    bearer = token(client)
    integration = _integration_user(client)
    r = client.patch(f"/emulator/v1/users/{integration}", json={"is_active": False})
    assert r.status_code == 200 and r.json()["is_active"] is False
    assert _q(client, "SELECT Id FROM User", bearer).status_code == 401
    app = client.get("/emulator/v1/oauth-clients").json()[0]
    refused = client.post(
        "/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
        },
    )
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    client.patch(f"/emulator/v1/users/{integration}", json={"is_active": True})
    assert token(client)
    assert (
        client.patch(f"/emulator/v1/users/{integration}", json={"is_active": 1}).status_code == 422
    )


def test_exhausting_the_api_budget(client: TestClient) -> None:
    bearer = token(client)
    r = client.put("/emulator/v1/limits", json={"daily_api_requests": 1000, "used": 950})
    assert r.json() == {"daily_api_requests": 1000, "used": 950}
    ok = _q(client, "SELECT Id FROM User", bearer)
    assert ok.headers["Sforce-Limit-Info"] == "api-usage=951/1000"
    client.put("/emulator/v1/limits", json={"used": 1000})
    r = _q(client, "SELECT Id FROM User", bearer)
    assert r.status_code == 403 and r.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert client.put("/emulator/v1/limits", json={}).status_code == 422


def test_trusted_urls(client: TestClient) -> None:
    bearer = token(client)
    r = client.put(
        "/emulator/v1/csp-trusted-sites/PresenceSyncServer",
        json={"endpoint_url": "wss://presencesync.example.com"},
    )
    assert r.status_code == 200 and r.json()["context"] == "LEX" and r.json()["connect_src"]
    rows = _q(
        client,
        "SELECT DeveloperName, EndpointUrl, IsActive, Context, IsApplicableToConnectSrc"
        " FROM CspTrustedSite",
        bearer,
    ).json()["records"]
    assert [(s["DeveloperName"], s["EndpointUrl"], s["IsActive"]) for s in rows] == [
        ("PresenceSyncServer", "wss://presencesync.example.com", True)
    ]
    client.put(
        "/emulator/v1/csp-trusted-sites/PresenceSyncServer",
        json={"endpoint_url": "wss://other.example.com", "is_active": False},
    )
    assert client.get("/emulator/v1/csp-trusted-sites").json()[0]["is_active"] is False
    assert client.delete("/emulator/v1/csp-trusted-sites/PresenceSyncServer").status_code == 200
    assert client.get("/emulator/v1/csp-trusted-sites").json() == []
    bad = client.put("/emulator/v1/csp-trusted-sites/X", json={"endpoint_url": "x", "context": "Y"})
    assert bad.status_code == 422


def test_an_org_seeded_before_permissions_existed_gets_them(tmp_path: Path) -> None:
    path = str(tmp_path / "old.db")
    old = Store(path)
    seed_if_empty(old)
    old.close()
    app = create_app(path)
    try:
        with TestClient(app, base_url=BASE) as client:
            assert _q(client, "SELECT Id FROM AgentWork", token(client)).status_code == 200
            assert len(_sets(client)) == 4
        assert permissions.seed_permissions(app.state.org.store) is False  # once only
    finally:
        app.state.org.store.close()
