"""The router API: offer, answer, decline, hang up."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from starlette.testclient import TestClient

from presencesync.service import Engine

from .conftest import Account, bearer, error_of

INTERACTION_KEYS = {"id", "queue", "status", "agent_id", "created_at"}


def _login(client: TestClient, account: Account, agent_id: str) -> None:
    response = client.post(
        f"/api/v1/agents/{agent_id}/login", headers=bearer(account.agents[agent_id])
    )
    assert response.status_code == 200, response.text


def _agent(client: TestClient, account: Account, agent_id: str) -> dict:
    return client.get(f"/api/v1/agents/{agent_id}", headers=bearer(account.admin)).json()


def test_call_is_offered_answered_and_hung_up(client: TestClient, acme: Account) -> None:
    _login(client, acme, "alice")
    offered = client.post(
        "/api/v1/interactions", json={"queue": "support"}, headers=bearer(acme.supervisor)
    )
    assert offered.status_code == 201, offered.text
    call = offered.json()
    assert set(call) == INTERACTION_KEYS
    assert call["status"] == "offered" and call["agent_id"] == "alice"
    assert _agent(client, acme, "alice")["offered_interaction_id"] == call["id"]

    alice = bearer(acme.agents["alice"])
    seen = client.get(f"/api/v1/interactions/{call['id']}", headers=alice)
    assert seen.status_code == 200 and seen.json()["queue"] == "support"

    answered = client.post(f"/api/v1/interactions/{call['id']}/answer", headers=alice)
    assert answered.status_code == 200 and answered.json()["status"] == "answered"
    assert _agent(client, acme, "alice")["state"] == "Busy/Inbound"

    # Alice is on the call: a second call is not offered to her.
    second = client.post(
        "/api/v1/interactions", json={"queue": "support"}, headers=bearer(acme.admin)
    )
    assert second.json()["status"] == "queued" and second.json()["agent_id"] is None

    ended = client.post(f"/api/v1/interactions/{call['id']}/hangup", headers=alice)
    assert ended.status_code == 200 and ended.json()["status"] == "ended"
    assert _agent(client, acme, "alice")["state"] == "Wrap/Auto"


def test_decline_offers_the_call_to_the_next_agent(client: TestClient, acme: Account) -> None:
    _login(client, acme, "alice")
    _login(client, acme, "bob")
    call = client.post(
        "/api/v1/interactions", json={"queue": "sales"}, headers=bearer(acme.admin)
    ).json()
    first = call["agent_id"]
    other = "bob" if first == "alice" else "alice"

    # The other agent may not see, answer or decline it.
    for suffix, method in (("", "GET"), ("/answer", "POST"), ("/decline", "POST")):
        response = client.request(
            method, f"/api/v1/interactions/{call['id']}{suffix}", headers=bearer(acme.agents[other])
        )
        assert response.status_code == 404
        assert error_of(response)["code"] == "INTERACTION_NOT_FOUND"

    declined = client.post(
        f"/api/v1/interactions/{call['id']}/decline", headers=bearer(acme.agents[first])
    )
    assert declined.status_code == 200, declined.text
    assert declined.json()["agent_id"] == other and declined.json()["status"] == "offered"


def test_supervisor_acts_for_the_offered_agent(client: TestClient, acme: Account) -> None:
    _login(client, acme, "bob")
    call = client.post(
        "/api/v1/interactions", json={"queue": "q"}, headers=bearer(acme.admin)
    ).json()
    answered = client.post(
        f"/api/v1/interactions/{call['id']}/answer", headers=bearer(acme.supervisor)
    )
    assert answered.status_code == 200 and answered.json()["agent_id"] == "bob"
    assert _agent(client, acme, "bob")["state"] == "Busy/Inbound"


def test_queued_call_cannot_be_answered(client: TestClient, acme: Account) -> None:
    call = client.post(
        "/api/v1/interactions", json={"queue": "q"}, headers=bearer(acme.admin)
    ).json()
    assert call["status"] == "queued"
    response = client.post(f"/api/v1/interactions/{call['id']}/answer", headers=bearer(acme.admin))
    assert response.status_code == 409
    assert error_of(response)["code"] == "NOT_OFFERED"


def test_hangup_before_answer_is_refused(engine: Engine, client: TestClient, acme: Account) -> None:
    _login(client, acme, "alice")
    call = client.post(
        "/api/v1/interactions", json={"queue": "q"}, headers=bearer(acme.admin)
    ).json()
    events = engine.event_count(acme.id, "alice")
    response = client.post(
        f"/api/v1/interactions/{call['id']}/hangup", headers=bearer(acme.agents["alice"])
    )
    assert response.status_code == 409
    assert engine.event_count(acme.id, "alice") == events


def test_bad_offers(client: TestClient, acme: Account) -> None:
    for body in ({}, {"queue": ""}, {"queue": 5}, {"queue": "x" * 101}):
        response = client.post("/api/v1/interactions", json=body, headers=bearer(acme.admin))
        assert response.status_code == 422
        assert error_of(response)["code"] == "INVALID_REQUEST"
    missing = client.get("/api/v1/interactions/nope", headers=bearer(acme.admin))
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "INTERACTION_NOT_FOUND"


def test_simultaneous_offers_never_pick_the_same_agent(
    engine: Engine, app_factory: Any, acme: Account
) -> None:
    """Requests served side by side (the API's handlers run in a thread pool)."""
    engine.create_agent(acme.id, "carol", "Carol", "005000000000003AAA")
    carol = engine.create_token(acme.id, "agent", "carol")
    app = app_factory()

    async def scenario() -> list[dict[str, Any]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://web.test") as http:
            for agent_id, token in (*acme.agents.items(), ("carol", carol)):
                response = await http.post(
                    f"/api/v1/agents/{agent_id}/login", headers=bearer(token)
                )
                assert response.status_code == 200
            offers = [
                http.post(
                    "/api/v1/interactions", json={"queue": "rush"}, headers=bearer(acme.admin)
                )
                for _ in range(8)
            ]
            return [r.json() for r in await asyncio.gather(*offers)]

    calls = asyncio.run(scenario())
    offered = [c["agent_id"] for c in calls if c["status"] == "offered"]
    assert sorted(offered) == ["alice", "bob", "carol"]
    assert [c["status"] for c in calls].count("queued") == 5


def test_a_salesforce_change_during_a_call_is_shown_as_pending(
    engine: Engine, client: TestClient, acme: Account
) -> None:
    from datetime import UTC, datetime

    from presencesync.domain import PresenceChanged, StatusChangeReason

    from .conftest import save_statuses, valid_config

    save_statuses(engine, acme.id)
    engine.save_omni_config(acme.id, valid_config(), "test")
    _login(client, acme, "alice")
    call = client.post(
        "/api/v1/interactions", json={"queue": "q"}, headers=bearer(acme.admin)
    ).json()
    client.post(f"/api/v1/interactions/{call['id']}/answer", headers=bearer(acme.agents["alice"]))
    engine.submit(
        acme.id,
        "alice",
        PresenceChanged(
            at=datetime.now(UTC),
            presence_status="Lunch",
            reason=StatusChangeReason.MANUAL,
        ),
        source="test",
    )
    alice = _agent(client, acme, "alice")
    assert alice["state"] == "Busy/Inbound"
    assert alice["pending_state"] == "ExtendedAway/Lunch"  # rule 11: after the wrap
