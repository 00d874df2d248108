"""Agents: provisioning, listing, login/logout/state, history, and bad input."""

from __future__ import annotations

from datetime import datetime

import pytest
from starlette.testclient import TestClient

from presencesync.service import Engine

from .conftest import Account, bearer, error_of, save_statuses, valid_config

AGENT_KEYS = {
    "agent_id",
    "salesforce_user_id",
    "logged_in",
    "state",
    "since",
    "presence_status",
    "open_work_items",
}


def _count_agents(engine: Engine, account: Account) -> int:
    return len(engine.list_agents(account.id, limit=1000))


def test_provision_then_conflict(engine: Engine, client: TestClient, acme: Account) -> None:
    body = {"agent_id": "carol", "name": "Carol", "salesforce_user_id": "005000000000003AAA"}
    created = client.post("/api/v1/agents", json=body, headers=bearer(acme.admin))
    assert created.status_code == 201, created.text
    agent = created.json()
    assert set(agent) >= AGENT_KEYS
    assert agent["agent_id"] == "carol" and agent["name"] == "Carol"
    assert agent["logged_in"] is False and agent["state"] == "LoggedOut"

    again = client.post("/api/v1/agents", json=body, headers=bearer(acme.admin))
    assert again.status_code == 409
    assert error_of(again)["code"] == "AGENT_EXISTS"
    assert _count_agents(engine, acme) == 3


@pytest.mark.parametrize(
    "body",
    [
        {"agent_id": "carol", "name": "Carol"},
        {"agent_id": 7, "name": "Carol", "salesforce_user_id": "005000000000003AAA"},
        {"agent_id": "carol", "name": "", "salesforce_user_id": "005000000000003AAA"},
        {"agent_id": "carol", "name": "Carol", "salesforce_user_id": "not-a-user-id"},
        {"agent_id": "has space", "name": "Carol", "salesforce_user_id": "005000000000003AAA"},
        {"agent_id": "carol", "name": "C", "salesforce_user_id": "005000000000003AAA", "x": 1},
        ["carol"],
        None,
    ],
)
def test_provision_rejects_bad_bodies(
    engine: Engine, client: TestClient, acme: Account, body: object
) -> None:
    before = _count_agents(engine, acme)
    response = client.post("/api/v1/agents", json=body, headers=bearer(acme.admin))
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert error["code"] == "INVALID_REQUEST"
    assert error["details"] and all("field" in d and "message" in d for d in error["details"])
    assert _count_agents(engine, acme) == before


def test_malformed_json_is_invalid_request(
    engine: Engine, client: TestClient, acme: Account
) -> None:
    before = _count_agents(engine, acme)
    response = client.post(
        "/api/v1/agents",
        content=b'{"agent_id": "carol",',
        headers={**bearer(acme.admin), "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "INVALID_REQUEST"
    assert error["message"] == "the request body is not valid JSON"
    assert _count_agents(engine, acme) == before


def test_provision_lists_every_field_problem(client: TestClient, acme: Account) -> None:
    response = client.post(
        "/api/v1/agents", json={"agent_id": 1, "name": 2}, headers=bearer(acme.admin)
    )
    fields = sorted(d["field"] for d in error_of(response)["details"])
    assert fields == ["agent_id", "name", "salesforce_user_id"]


def test_list_is_paged_by_agent_id(engine: Engine, client: TestClient, acme: Account) -> None:
    for n in range(3, 6):
        engine.create_agent(acme.id, f"zed{n}", f"Zed {n}", f"005000000000{n:03d}AAA")
    first = client.get("/api/v1/agents?limit=2", headers=bearer(acme.supervisor))
    assert first.status_code == 200
    assert [a["agent_id"] for a in first.json()] == ["alice", "bob"]
    assert 'rel="next"' in first.headers["Link"]
    rest = client.get("/api/v1/agents?limit=10&after=bob", headers=bearer(acme.supervisor))
    assert [a["agent_id"] for a in rest.json()] == ["zed3", "zed4", "zed5"]
    assert "Link" not in rest.headers
    for agent in rest.json():
        assert set(agent) >= AGENT_KEYS


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "limit=ten", "after=" + "x" * 81])
def test_list_rejects_bad_paging(client: TestClient, acme: Account, query: str) -> None:
    response = client.get(f"/api/v1/agents?{query}", headers=bearer(acme.admin))
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "INVALID_REQUEST"
    assert error["details"][0]["location"] == "query"


def test_agent_logs_in_changes_state_and_logs_out(client: TestClient, acme: Account) -> None:
    me = bearer(acme.agents["alice"])
    logged_in = client.post("/api/v1/agents/alice/login", headers=me)
    assert logged_in.status_code == 200, logged_in.text
    agent = logged_in.json()
    assert agent["logged_in"] is True and agent["state"] == "Ready"
    assert datetime.fromisoformat(agent["since"]).tzinfo is not None

    away = client.put("/api/v1/agents/alice/state", json={"state": "Away/Break"}, headers=me)
    assert away.status_code == 200 and away.json()["state"] == "Away/Break"
    assert client.get("/api/v1/agents/alice", headers=me).json()["state"] == "Away/Break"

    out = client.post("/api/v1/agents/alice/logout", headers=me)
    assert out.status_code == 200
    assert out.json()["state"] == "LoggedOut" and out.json()["logged_in"] is False

    history = client.get("/api/v1/agents/alice/history", headers=me).json()
    assert [(h["from"], h["to"]) for h in history] == [
        ("Away/Break", "LoggedOut"),
        ("Ready", "Away/Break"),
        ("LoggedOut", "Ready"),
    ]
    assert [h["seq"] for h in history] == sorted((h["seq"] for h in history), reverse=True)
    for entry in history:
        assert set(entry) == {
            "seq",
            "at",
            "side",
            "from",
            "to",
            "cause",
            "rule",
            "caused_by_seq",
            "latency_ms",
            "channel",  # additions: how a Salesforce-side change came, and its drift
            "drift",
        }
        assert entry["side"] == "contact_center" and entry["cause"] == "agent"
        assert entry["channel"] is None and entry["drift"] is None

    older = client.get(
        f"/api/v1/agents/alice/history?limit=1&before={history[0]['seq']}", headers=me
    ).json()
    assert [h["seq"] for h in older] == [history[1]["seq"]]


def test_login_to_a_state(client: TestClient, acme: Account) -> None:
    response = client.post(
        "/api/v1/agents/bob/login", json={"state": "ExtendedAway/Lunch"}, headers=bearer(acme.admin)
    )
    assert response.status_code == 200
    assert response.json()["state"] == "ExtendedAway/Lunch"
    history = client.get("/api/v1/agents/bob/history", headers=bearer(acme.admin)).json()
    assert history[0]["cause"] == "supervisor"


def test_refused_changes_write_nothing(engine: Engine, client: TestClient, acme: Account) -> None:
    me = bearer(acme.agents["alice"])
    not_logged_in = client.put("/api/v1/agents/alice/state", json={"state": "Away"}, headers=me)
    assert not_logged_in.status_code == 409
    assert error_of(not_logged_in)["code"] == "NOT_LOGGED_IN"
    assert engine.event_count(acme.id, "alice") == 0

    client.post("/api/v1/agents/alice/login", headers=me)
    events = engine.event_count(acme.id, "alice")
    for body, status, code in [
        ({"state": "Busy/Inbound"}, 409, "STATE_NOT_SELECTABLE"),
        ({"state": "Away/Nap"}, 422, "INVALID_STATE"),
        ({"state": "Sleeping"}, 422, "INVALID_STATE"),
        ({"state": 5}, 422, "INVALID_REQUEST"),
        ({}, 422, "INVALID_REQUEST"),
    ]:
        response = client.put("/api/v1/agents/alice/state", json=body, headers=me)
        assert response.status_code == status, (body, response.text)
        assert error_of(response)["code"] == code
    again = client.post("/api/v1/agents/alice/login", headers=me)
    assert again.status_code == 409 and error_of(again)["code"] == "ALREADY_LOGGED_IN"
    bad_login = client.post("/api/v1/agents/alice/login", json={"state": 3}, headers=me)
    assert bad_login.status_code == 422
    assert engine.event_count(acme.id, "alice") == events


def test_idempotency_key_applies_a_retry_once(
    engine: Engine, client: TestClient, acme: Account
) -> None:
    headers = {**bearer(acme.agents["alice"]), "Idempotency-Key": "click-1"}
    first = client.post("/api/v1/agents/alice/login", headers=headers)
    second = client.post("/api/v1/agents/alice/login", headers=headers)
    assert first.status_code == second.status_code == 200
    assert second.json()["state"] == "Ready"
    assert engine.event_count(acme.id, "alice") == 1


def test_unknown_agent_is_not_found(client: TestClient, acme: Account) -> None:
    for method, path in [
        ("GET", "/api/v1/agents/nobody"),
        ("GET", "/api/v1/agents/nobody/history"),
        ("POST", "/api/v1/agents/nobody/login"),
    ]:
        response = client.request(method, path, headers=bearer(acme.admin))
        assert response.status_code == 404
        assert error_of(response)["code"] == "AGENT_NOT_FOUND"


def test_state_change_sends_presence_when_configured(
    engine: Engine, client: TestClient, acme: Account
) -> None:
    save_statuses(engine, acme.id)
    assert (
        client.put(
            "/api/v1/omni/config", json=valid_config(), headers=bearer(acme.admin)
        ).status_code
        == 200
    )
    me = bearer(acme.agents["alice"])
    agent = client.post("/api/v1/agents/alice/login", headers=me).json()
    # Rule 3: the engine now wants Alice online in the status Ready maps to.
    assert agent["desired_presence_status"] == "Available"
    agent = client.put("/api/v1/agents/alice/state", json={"state": "Away"}, headers=me).json()
    assert agent["desired_presence_status"] == "On_Break"
