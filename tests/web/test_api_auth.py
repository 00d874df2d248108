"""Authentication, roles and account isolation, endpoint by endpoint."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from presencesync.service import Engine

from .conftest import Account, bearer, error_of, save_statuses, valid_config

# (method, path, json body, roles allowed). {agent} is the agent the caller acts on: its own
# when the caller is an agent.
ENDPOINTS: list[tuple[str, str, Any, set[str]]] = [
    ("GET", "/api/v1/states", None, {"admin", "supervisor", "agent"}),
    ("PUT", "/api/v1/states", {"minor_states": {"Away": ["Break"]}}, {"admin"}),
    ("POST", "/api/v1/omni/fetch", None, {"admin"}),
    ("GET", "/api/v1/omni/config", None, {"admin"}),
    ("PUT", "/api/v1/omni/config", "valid_config", {"admin"}),
    (
        "POST",
        "/api/v1/agents",
        {"agent_id": "carol", "name": "Carol", "salesforce_user_id": "005000000000777AAA"},
        {"admin"},
    ),
    ("GET", "/api/v1/agents", None, {"admin", "supervisor"}),
    ("GET", "/api/v1/agents/{agent}", None, {"admin", "supervisor", "agent"}),
    ("POST", "/api/v1/agents/{agent}/login", None, {"admin", "supervisor", "agent"}),
    ("POST", "/api/v1/agents/{agent}/logout", None, {"admin", "supervisor", "agent"}),
    ("PUT", "/api/v1/agents/{agent}/state", {"state": "Away"}, {"admin", "supervisor", "agent"}),
    ("GET", "/api/v1/agents/{agent}/history", None, {"admin", "supervisor", "agent"}),
    ("POST", "/api/v1/interactions", {"queue": "support"}, {"admin", "supervisor"}),
    ("GET", "/api/v1/settings", None, {"admin", "supervisor"}),
    ("PUT", "/api/v1/settings", {"wrap_seconds": 10}, {"admin"}),
]


def _token(account: Account, role: str) -> str:
    return {"admin": account.admin, "supervisor": account.supervisor}.get(
        role, account.agents["alice"]
    )


def _call(client: TestClient, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    if body == "valid_config":
        body = valid_config()
    return client.request(method, path.format(agent="alice"), json=body, headers=headers)


@pytest.mark.parametrize(("method", "path", "body", "allowed"), ENDPOINTS)
def test_every_endpoint_needs_a_token(
    client: TestClient, acme: Account, method: str, path: str, body: Any, allowed: set[str]
) -> None:
    response = _call(client, method, path, body, {})
    assert response.status_code == 401
    assert error_of(response)["code"] == "UNAUTHENTICATED"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")

    response = _call(client, method, path, body, bearer("ps_not-a-real-token"))
    assert response.status_code == 401
    assert error_of(response)["code"] == "INVALID_TOKEN"

    response = _call(client, method, path, body, {"Authorization": f"Basic {acme.admin}"})
    assert response.status_code == 401


@pytest.mark.parametrize(("method", "path", "body", "allowed"), ENDPOINTS)
@pytest.mark.parametrize("role", ["admin", "supervisor", "agent"])
def test_roles(
    engine: Engine,
    client: TestClient,
    acme: Account,
    role: str,
    method: str,
    path: str,
    body: Any,
    allowed: set[str],
) -> None:
    save_statuses(engine, acme.id)
    events_before = engine.event_count(acme.id)
    response = _call(client, method, path, body, bearer(_token(acme, role)))
    if role in allowed:
        # Allowed: the answer is whatever the endpoint does, never an auth refusal.
        assert response.status_code not in (401, 403), response.text
    else:
        assert response.status_code == 403, response.text
        assert error_of(response)["code"] == "FORBIDDEN"
        assert engine.event_count(acme.id) == events_before


AGENT_SCOPED = [
    ("GET", "/api/v1/agents/bob", None),
    ("POST", "/api/v1/agents/bob/login", None),
    ("POST", "/api/v1/agents/bob/logout", None),
    ("PUT", "/api/v1/agents/bob/state", {"state": "Away"}),
    ("GET", "/api/v1/agents/bob/history", None),
]


@pytest.mark.parametrize(("method", "path", "body"), AGENT_SCOPED)
def test_an_agent_token_acts_only_on_its_own_agent(
    engine: Engine, client: TestClient, acme: Account, method: str, path: str, body: Any
) -> None:
    response = client.request(method, path, json=body, headers=bearer(acme.agents["alice"]))
    assert response.status_code == 403
    assert error_of(response)["code"] == "FORBIDDEN"
    assert "bob" not in response.text.replace("/bob", "")  # no data about bob
    assert engine.event_count(acme.id, "bob") == 0


@pytest.mark.parametrize(("method", "path", "body"), AGENT_SCOPED)
@pytest.mark.parametrize("role", ["admin", "supervisor"])
def test_another_accounts_agent_is_not_found(
    engine: Engine,
    client: TestClient,
    acme: Account,
    globex: Account,
    role: str,
    method: str,
    path: str,
    body: Any,
) -> None:
    engine.create_agent(globex.id, "carol", "Carol", "005000000000888AAA")
    path = path.replace("bob", "carol")
    response = client.request(method, path, json=body, headers=bearer(_token(acme, role)))
    assert response.status_code == 404
    assert error_of(response)["code"] == "AGENT_NOT_FOUND"
    assert "005000000000888AAA" not in response.text
    assert engine.event_count(globex.id) == 0


def test_listing_shows_only_the_callers_account(
    client: TestClient, acme: Account, globex: Account
) -> None:
    seen = client.get("/api/v1/agents", headers=bearer(acme.admin)).json()
    assert [a["agent_id"] for a in seen] == ["alice", "bob"]
    assert {a["salesforce_user_id"] for a in seen} == {"005000000000001AAA", "005000000000002AAA"}


def test_another_accounts_interaction_is_not_found(
    client: TestClient, acme: Account, globex: Account
) -> None:
    created = client.post(
        "/api/v1/interactions", json={"queue": "sales"}, headers=bearer(globex.admin)
    )
    assert created.status_code == 201
    interaction_id = created.json()["id"]
    for method, suffix in (("GET", ""), ("POST", "/answer"), ("POST", "/hangup")):
        response = client.request(
            method, f"/api/v1/interactions/{interaction_id}{suffix}", headers=bearer(acme.admin)
        )
        assert response.status_code == 404, response.text
        assert error_of(response)["code"] == "INTERACTION_NOT_FOUND"
        assert "sales" not in response.text


def test_configuration_is_per_account(
    engine: Engine, client: TestClient, acme: Account, globex: Account
) -> None:
    save_statuses(engine, acme.id)
    saved = client.put("/api/v1/omni/config", json=valid_config(), headers=bearer(acme.admin))
    assert saved.status_code == 200
    other = client.get("/api/v1/omni/config", headers=bearer(globex.admin)).json()
    assert other["enabled"] is False
    assert other["presence_mappings"] == [] and other["presence_statuses"] == []
    settings = client.put("/api/v1/settings", json={"wrap_seconds": 5}, headers=bearer(acme.admin))
    assert settings.json()["wrap_seconds"] == 5
    assert client.get("/api/v1/settings", headers=bearer(globex.admin)).json()["wrap_seconds"] == 30
