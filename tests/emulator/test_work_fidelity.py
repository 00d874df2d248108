"""AgentWork statuses beyond the happy path (DeclinedOnPushTimeout, Canceled, Transferred),
MessagingSession and VoiceCall work items, UserServicePresence's capacity fields and the REST
calls it supports (delete) and refuses (create, update)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from presencesync_emulator.app import create_app
from tests.emulator.conftest import BASE, login, new_work, omni, token

V = "/services/data/v62.0"
EV = "lightning:omniChannel"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def timed(clock: Clock) -> Iterator[tuple[Starlette, TestClient]]:
    """An org on a clock the test moves (no lifespan: push time-outs run when asked)."""
    app = create_app(":memory:", clock=clock)
    try:
        yield app, TestClient(app, base_url=BASE)
    finally:
        app.state.org.store.close()


def agent_ids(client: TestClient) -> list[str]:
    users = client.get("/emulator/v1/users").json()
    return [u["id"] for u in users if not u["username"].startswith("integration@")]


def query(client: TestClient, soql: str) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token(client)}"}
    response = client.get(f"{V}/query", params={"q": soql}, headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json()["records"])


def drain(ws: Any) -> list[dict[str, Any]]:
    """The events already sent (a ping call marks the end)."""
    ws.send_json({"type": "call", "id": "mark", "method": "getAgentWorkload", "params": {}})
    events = []
    while True:
        message = ws.receive_json()
        if message.get("id") == "mark":
            return events
        if message["type"] == "event":
            events.append(message)


# --- push time-out ---------------------------------------------------------------------------


def test_push_timeout_declines_reroutes_and_moves_the_agent(
    timed: tuple[Starlette, TestClient], clock: Clock
) -> None:
    app, client = timed
    a, b = agent_ids(client)[:2]
    config = {"push_timeout_seconds": 20, "push_timeout_status": "On_Break"}
    saved = client.put("/emulator/v1/presence-config", json=config).json()
    assert saved["push_timeout_seconds"] == 20 and saved["push_timeout_status"] == "On_Break"
    login(client, a)
    with client.websocket_connect(f"/emulator/v1/users/{a}/console") as ws:
        ws.receive_json()
        work = new_work(client, "Case", "ring ring")
        assert work["user_id"] == a and work["status"] == "Assigned"
        drain(ws)
        clock.advance(19)
        app.state.org.publish(app.state.org.omni.expire_push_timeouts())
        assert drain(ws) == []  # not yet
        clock.advance(1)
        app.state.org.publish(app.state.org.omni.expire_push_timeouts())
        events = drain(ws)
    names = [e["name"] for e in events]
    # No WorkDeclined by default: Salesforce does not document one for a push time-out.
    assert names == [EV + "WorkloadChanged", EV + "StatusChanged"]
    assert events[1]["params"]["reason"] == "OmniPushTimeout"
    assert events[1]["params"]["statusApiName"] == "On_Break"
    record = client.get(f"/emulator/v1/work/{work['id']}").json()
    assert record["status"] == "DeclinedOnPushTimeout"
    assert omni(client, a)["presence_status"] == "On_Break"
    # The item went back to the queue, and is routed to the next agent (never back to a).
    assert client.get(f"/emulator/v1/work/{work['work_item_id']}").json()["status"] == "Queued"
    login(client, b)
    rerouted = client.get(f"/emulator/v1/work/{work['work_item_id']}").json()
    assert rerouted["user_id"] == b and rerouted["status"] == "Assigned"
    (row,) = query(
        client, f"SELECT Status, AgentCapacityWhenDeclined FROM AgentWork WHERE Id = '{work['id']}'"
    )
    assert row["Status"] == "DeclinedOnPushTimeout" and row["AgentCapacityWhenDeclined"] == 2


def test_push_timeout_can_raise_work_declined_and_is_forced_by_the_control_api(
    client: TestClient, agents: list[str]
) -> None:
    a = agents[0]
    client.put("/emulator/v1/presence-config", json={"push_timeout_declined_event": True})
    login(client, a)
    with client.websocket_connect(f"/emulator/v1/users/{a}/console") as ws:
        ws.receive_json()
        work = new_work(client, "Case", "x")
        drain(ws)
        assert client.post(f"/emulator/v1/work/{work['id']}/push-timeout").status_code == 200
        names = [e["name"] for e in drain(ws)]
    assert names == [EV + "WorkDeclined", EV + "WorkloadChanged"]  # no status configured
    again = client.post(f"/emulator/v1/work/{work['id']}/push-timeout")
    assert again.status_code == 409 and again.json()["error"]["code"] == "ILLEGAL_TRANSITION"


def test_presence_config_is_validated_all_or_nothing(client: TestClient) -> None:
    before = client.get("/emulator/v1/presence-config").json()
    bad = client.put(
        "/emulator/v1/presence-config",
        json={"push_timeout_seconds": -1, "push_timeout_status": 7, "decline_status": "Busy"},
    )
    assert bad.status_code == 422
    assert client.get("/emulator/v1/presence-config").json() == before
    unknown = client.put("/emulator/v1/presence-config", json={"push_timeout_status": "Nope"})
    assert unknown.status_code == 422
    assert client.put("/emulator/v1/presence-config", json={"colour": "red"}).status_code == 422


# --- cancel, transfer ------------------------------------------------------------------------


def test_cancel_assigned_and_queued_work(client: TestClient, agents: list[str]) -> None:
    a = agents[0]
    queued = new_work(client, "Chat", "nobody online")
    response = client.post(f"/emulator/v1/work/{queued['work_item_id']}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "Canceled"
    login(client, a)
    assert omni(client, a)["capacity"]["used"] == 0  # the canceled chat was not routed
    with client.websocket_connect(f"/emulator/v1/users/{a}/console") as ws:
        ws.receive_json()
        work = new_work(client, "Chat", "visitor leaves")
        drain(ws)
        canceled = client.post(f"/emulator/v1/work/{work['id']}/cancel").json()
        assert canceled["status"] == "Canceled"
        assert [e["name"] for e in drain(ws)] == [EV + "WorkloadChanged"]
    assert omni(client, a)["capacity"]["used"] == 0
    (row,) = query(client, f"SELECT CancelDateTime FROM AgentWork WHERE Id = '{work['id']}'")
    assert row["CancelDateTime"] is not None


def test_transfer_to_an_agent_and_to_the_queue(client: TestClient, agents: list[str]) -> None:
    a, b = agents[:2]
    login(client, a)
    work = new_work(client, "Case", "for b")
    client.post(f"/emulator/v1/work/{work['id']}/accept")
    login(client, b)
    with client.websocket_connect(f"/emulator/v1/users/{b}/console") as ws:
        ws.receive_json()
        moved = client.post(f"/emulator/v1/work/{work['id']}/transfer", json={"user_id": b})
        assert moved.json()["status"] == "Transferred"
        events = drain(ws)
    assert [e["name"] for e in events] == [EV + "WorkAssigned", EV + "WorkloadChanged"]
    assert events[0]["params"]["workItemId"] == work["work_item_id"]
    assert omni(client, a)["capacity"]["used"] == 0
    new = client.get(f"/emulator/v1/work/{work['work_item_id']}").json()
    assert new["user_id"] == b and new["status"] == "Assigned"
    back = client.post(f"/emulator/v1/work/{new['id']}/transfer").json()
    assert back["status"] == "Transferred"
    statuses = [w["status"] for w in omni(client, a)["work"]]
    assert "Transferred" in statuses


# --- MessagingSession, VoiceCall -------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "sobject", "prefix"),
    [("Messaging", "MessagingSession", "0Mw"), ("Voice", "VoiceCall", "0LQ")],
)
def test_messaging_and_voice_work_items_route_like_cases(
    client: TestClient, agents: list[str], channel: str, sobject: str, prefix: str
) -> None:
    a = agents[0]
    login(client, a, f"Available_for_{channel}")
    case = new_work(client, "Case", "not for this status")
    work = new_work(client, channel, "hello there")
    assert case["status"] == "Queued"
    assert work["user_id"] == a and work["work_item_id"].startswith(prefix)
    assert work["channel"] == channel and work["subject"] == "hello there"
    client.post(f"/emulator/v1/work/{work['id']}/accept")
    client.post(f"/emulator/v1/work/{work['id']}/close")
    (row,) = query(
        client,
        "SELECT WorkItemId, WorkItem.Type, WorkItem.Name, ServiceChannel.DeveloperName "
        f"FROM AgentWork WHERE Id = '{work['id']}'",
    )
    assert row["WorkItem"]["Type"] == sobject
    assert row["WorkItem"]["attributes"]["type"] == sobject
    item = query(client, f"SELECT Id, OwnerId FROM {sobject} WHERE Id = '{work['work_item_id']}'")
    assert item[0]["OwnerId"] == a


def test_polymorphic_work_item_names_a_case_by_its_number(
    client: TestClient, agents: list[str]
) -> None:
    login(client, agents[0])
    work = new_work(client, "Case", "numbered")
    (row,) = query(
        client, f"SELECT WorkItem.Name, WorkItem.Type FROM AgentWork WHERE Id = '{work['id']}'"
    )
    (case,) = query(client, f"SELECT CaseNumber FROM Case WHERE Id = '{work['work_item_id']}'")
    assert row["WorkItem"]["Name"] == case["CaseNumber"] and row["WorkItem"]["Type"] == "Case"
    headers = {"Authorization": f"Bearer {token(client)}"}
    bad = client.get(
        f"{V}/query", params={"q": "SELECT WorkItem.Subject FROM AgentWork"}, headers=headers
    )
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALID_FIELD"


# --- UserServicePresence ---------------------------------------------------------------------


def test_presence_capacity_fields_follow_the_workload(
    timed: tuple[Starlette, TestClient], clock: Clock
) -> None:
    _app, client = timed
    a = agent_ids(client)[0]
    login(client, a, "Available_for_Voice")  # capacity 10, a voice call weighs 5
    clock.advance(60)  # idle
    first = new_work(client, "Voice", "one")
    clock.advance(30)  # half loaded
    second = new_work(client, "Voice", "two")
    clock.advance(30)  # at capacity
    for work in (first, second):
        client.post(f"/emulator/v1/work/{work['id']}/accept")
        client.post(f"/emulator/v1/work/{work['id']}/close")
    clock.advance(40)  # idle again
    client.put(f"/emulator/v1/users/{a}/omni/status", json={"presence_status": "Busy"})
    (row,) = query(
        client,
        "SELECT IdleDuration, AtCapacityDuration, AverageCapacity, ConfiguredCapacity, "
        "ConfiguredInterruptCapacity, StatusDuration FROM UserServicePresence "
        f"WHERE UserId = '{a}' AND IsCurrentState = false ORDER BY StatusStartDate DESC LIMIT 1",
    )
    assert row["StatusDuration"] == 160
    assert row["IdleDuration"] == 100
    assert row["AtCapacityDuration"] == 30
    assert row["AverageCapacity"] == round((30 * 5 + 30 * 10) / 160, 2)
    assert row["ConfiguredCapacity"] == 10
    assert row["ConfiguredInterruptCapacity"] is None  # the feature is off


def test_user_service_presence_delete_allowed_create_update_refused(
    client: TestClient, agents: list[str]
) -> None:
    a = agents[0]
    headers = {"Authorization": f"Bearer {token(client)}"}
    created = client.post(f"{V}/sobjects/UserServicePresence/", headers=headers, json={"UserId": a})
    assert created.status_code == 400
    assert created.json() == [
        {
            "message": "entity type cannot be inserted: User Presence",
            "errorCode": "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
        }
    ]
    (old,) = query(client, f"SELECT Id FROM UserServicePresence WHERE UserId = '{a}' LIMIT 1")
    url = f"{V}/sobjects/UserServicePresence/{old['Id']}"
    updated = client.patch(url, headers=headers, json={"IsAway": True})
    assert updated.status_code == 400
    assert updated.json()[0]["message"] == "entity type cannot be updated: User Presence"
    deleted = client.delete(url, headers=headers)
    assert deleted.status_code == 204 and deleted.content == b""
    assert client.get(url, headers=headers).status_code == 404
    assert client.delete(url, headers=headers).status_code == 404
    describe = client.get(f"{V}/sobjects/UserServicePresence/describe", headers=headers).json()
    assert (describe["deletable"], describe["createable"], describe["updateable"]) == (
        True,
        False,
        False,
    )


def test_deleting_the_current_presence_logs_the_agent_out(
    client: TestClient, agents: list[str]
) -> None:
    a = agents[0]
    login(client, a)
    (current,) = query(
        client, f"SELECT Id FROM UserServicePresence WHERE UserId = '{a}' AND IsCurrentState = true"
    )
    headers = {"Authorization": f"Bearer {token(client)}"}
    with client.websocket_connect(f"/emulator/v1/users/{a}/console") as ws:
        ws.receive_json()
        url = f"{V}/sobjects/UserServicePresence/{current['Id']}"
        assert client.delete(url, headers=headers).status_code == 204
        assert [e["name"] for e in drain(ws)] == [EV + "Logout"]
    assert omni(client, a)["online"] is False
