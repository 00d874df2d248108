"""Omni-Channel presence and routing through the control API (the agent's widget clicks)."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.emulator.conftest import login, new_work, omni, open_work, token


def _presence_rows(client: TestClient, user_id: str) -> list[dict]:
    q = (
        "SELECT Id, ServicePresenceStatus.DeveloperName, IsCurrentState, StatusStartDate, "
        f"StatusEndDate, IsAway, ConfiguredCapacity FROM UserServicePresence "
        f"WHERE UserId = '{user_id}' AND StatusStartDate = TODAY ORDER BY StatusStartDate, Id"
    )
    response = client.get(
        "/services/data/v62.0/query",
        params={"q": q},
        headers={"Authorization": f"Bearer {token(client)}"},
    )
    assert response.status_code == 200, response.text
    return response.json()["records"]


def test_login_status_logout_write_presence_history(client: TestClient, agents: list[str]) -> None:
    a = agents[0]
    snapshot = login(client, a, "Available")
    assert snapshot["online"] is True and snapshot["presence_status"] == "Available"
    r = client.put(f"/emulator/v1/users/{a}/omni/status", json={"presence_status": "Lunch"})
    assert r.status_code == 200 and r.json()["presence_status"] == "Lunch"
    assert client.post(f"/emulator/v1/users/{a}/omni/logout").json()["online"] is False

    rows = _presence_rows(client, a)
    assert [r["ServicePresenceStatus"]["DeveloperName"] for r in rows] == ["Available", "Lunch"]
    assert all(r["IsCurrentState"] is False and r["StatusEndDate"] for r in rows)
    assert [r["IsAway"] for r in rows] == [False, True]
    assert rows[0]["ConfiguredCapacity"] == 10
    # The first row ended when the second began.
    assert rows[0]["StatusEndDate"] == rows[1]["StatusStartDate"]

    login(client, a, "Busy")
    current = [r for r in _presence_rows(client, a) if r["IsCurrentState"]]
    assert len(current) == 1 and current[0]["StatusEndDate"] is None


def test_work_goes_only_to_agents_whose_status_has_the_channel(
    client: TestClient, agents: list[str]
) -> None:
    chat_agent, case_agent, late = agents[:3]
    login(client, chat_agent, "Available_for_Chat")
    login(client, case_agent, "Available_for_Cases")
    case = new_work(client, "Case", "broken printer")
    chat = new_work(client, "Chat", "hello?")
    lead = new_work(client, "Lead", "Acme")
    assert case["status"] == "Assigned" and case["user_id"] == case_agent
    assert chat["status"] == "Assigned" and chat["user_id"] == chat_agent
    assert lead["status"] == "Queued" and lead["id"] is None
    # A busy status has no channels: nothing is routed to it.
    login(client, late, "Busy")
    assert client.get(f"/emulator/v1/work/{lead['work_item_id']}").json()["status"] == "Queued"
    # Coming online in a status with the Lead channel drains the queue.
    client.put(f"/emulator/v1/users/{late}/omni/status", json={"presence_status": "Available"})
    routed = client.get(f"/emulator/v1/work/{lead['work_item_id']}").json()
    assert routed["status"] == "Assigned" and routed["user_id"] == late
    assert routed["id"].startswith("0Bz") and len(routed["id"]) == 18


def test_capacity_limits_routing_and_closing_frees_it(
    client: TestClient, agents: list[str]
) -> None:
    a = agents[0]
    login(client, a, "Available_for_Chat")  # capacity 10, a chat weighs 3
    chats = [new_work(client, "Chat", f"chat {n}") for n in range(4)]
    assert [c["status"] for c in chats] == ["Assigned", "Assigned", "Assigned", "Queued"]
    assert omni(client, a)["capacity"] == {"configured": 10, "used": 9}
    first = chats[0]["id"]
    assert client.post(f"/emulator/v1/work/{first}/accept").json()["status"] == "Opened"
    assert omni(client, a)["capacity"]["used"] == 9  # accepted work still uses capacity
    assert client.post(f"/emulator/v1/work/{first}/close").json()["status"] == "Closed"
    fourth = client.get(f"/emulator/v1/work/{chats[3]['work_item_id']}").json()
    assert fourth["status"] == "Assigned" and fourth["user_id"] == a
    assert omni(client, a)["capacity"]["used"] == 9


def test_least_loaded_agent_gets_the_work(client: TestClient, agents: list[str]) -> None:
    a, b = agents[:2]
    login(client, a)
    login(client, b)
    owners = [new_work(client, "Case", str(n))["user_id"] for n in range(4)]
    assert sorted(owners) == sorted([a, a, b, b])
    assert owners[0] != owners[1]


def test_declined_work_is_rerouted_to_someone_else(client: TestClient, agents: list[str]) -> None:
    a, b = agents[:2]
    login(client, a)
    work = new_work(client, "Case", "decline me")
    assert work["user_id"] == a
    r = client.post(f"/emulator/v1/work/{work['id']}/decline", json={"reason": "busy"})
    assert r.status_code == 200 and r.json()["status"] == "Declined"
    # Nobody else is online: it waits, and never comes back to the decliner.
    assert client.get(f"/emulator/v1/work/{work['work_item_id']}").json()["status"] == "Queued"
    client.put(
        f"/emulator/v1/users/{a}/omni/status", json={"presence_status": "Available_for_Cases"}
    )
    assert open_work(client, a) == []
    login(client, b)
    again = client.get(f"/emulator/v1/work/{work['work_item_id']}").json()
    assert again["status"] == "Assigned" and again["user_id"] == b and again["id"] != work["id"]
    assert [w["status"] for w in omni(client, a)["work"] if w["id"] == work["id"]] == ["Declined"]


def test_logout_returns_assigned_work_to_the_queue(client: TestClient, agents: list[str]) -> None:
    a, b = agents[:2]
    login(client, a)
    kept = new_work(client, "Case", "accepted")
    client.post(f"/emulator/v1/work/{kept['id']}/accept")
    pending = new_work(client, "Case", "not yet accepted")
    assert pending["user_id"] == a
    client.post(f"/emulator/v1/users/{a}/omni/logout")
    state = omni(client, a)
    assert state["online"] is False
    assert [w["status"] for w in open_work(client, a)] == ["Opened"]
    assert client.get(f"/emulator/v1/work/{pending['work_item_id']}").json()["status"] == "Queued"
    login(client, b)
    moved = client.get(f"/emulator/v1/work/{pending['work_item_id']}").json()
    assert moved["user_id"] == b and moved["status"] == "Assigned"


def test_work_can_be_addressed_by_work_item_id(client: TestClient, agents: list[str]) -> None:
    login(client, agents[0])
    work = new_work(client, "Lead", "by item id")
    r = client.post(f"/emulator/v1/work/{work['work_item_id']}/accept")
    assert r.status_code == 200 and r.json()["id"] == work["id"]


def test_create_user(client: TestClient) -> None:
    r = client.post("/emulator/v1/users", json={"name": "Jo Newby", "username": "jo@example.com"})
    assert r.status_code == 201
    user = r.json()
    assert user["id"].startswith("005") and len(user["id"]) == 18
    assert user["name"] == "Jo Newby"
    assert omni(client, user["id"])["capacity"]["configured"] == 10
    again = client.post("/emulator/v1/users", json={"name": "Jo", "username": "jo@example.com"})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "DUPLICATE_USERNAME"


def test_control_api_errors_change_nothing(client: TestClient, agents: list[str]) -> None:
    a = agents[0]
    login(client, a)
    work = new_work(client, "Case", "x")
    client.post(f"/emulator/v1/work/{work['id']}/accept")
    client.post(f"/emulator/v1/work/{work['id']}/close")
    before = omni(client, a)
    users_before = client.get("/emulator/v1/users").json()

    cases = [
        (
            "post",
            "/emulator/v1/users/005000000000000AAA/omni/login",
            {"presence_status": "Busy"},
            404,
        ),
        ("get", "/emulator/v1/users/nope/omni", None, 404),
        ("post", "/emulator/v1/work/0Bz5g00000000ZZAAA/accept", None, 404),
        ("post", f"/emulator/v1/work/{work['id']}/accept", None, 409),
        ("post", f"/emulator/v1/work/{work['id']}/decline", None, 409),
        ("post", f"/emulator/v1/work/{work['id']}/close", None, 409),
        ("put", f"/emulator/v1/users/{a}/omni/status", {"presence_status": "Nope"}, 422),
        ("put", f"/emulator/v1/users/{a}/omni/status", {}, 422),
        (
            "put",
            f"/emulator/v1/users/{a}/omni/status",
            {"presence_status": "Busy", "reason": "x"},
            422,
        ),
        ("post", "/emulator/v1/work", {"channel": "Fax", "subject": "x"}, 422),
        ("post", "/emulator/v1/work", {"subject": "x"}, 422),
        ("post", "/emulator/v1/work", {"channel": "Case", "subject": 5}, 422),
        ("post", "/emulator/v1/users", {"name": "No Username"}, 422),
    ]
    for method, path, body, status in cases:
        r = client.request(method.upper(), path, json=body)
        assert r.status_code == status, (path, body, r.text)
        error = r.json()["error"]
        assert error["code"] and error["message"]
    bad_json = client.put(
        f"/emulator/v1/users/{a}/omni/status",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert bad_json.status_code == 422 and "JSON" in bad_json.json()["error"]["message"]
    assert client.post(f"/emulator/v1/users/{agents[1]}/omni/logout").status_code == 409

    assert omni(client, a) == before
    assert client.get("/emulator/v1/users").json() == users_before


def test_supervisor_reason_is_accepted(client: TestClient, agents: list[str]) -> None:
    a = agents[0]
    login(client, a)
    r = client.put(
        f"/emulator/v1/users/{a}/omni/status",
        json={"presence_status": "Training", "reason": "OmniSupervisorStatusChange"},
    )
    assert r.status_code == 200 and r.json()["presence_status"] == "Training"


def test_presence_statuses_and_channels_listing(client: TestClient) -> None:
    statuses = {s["developer_name"]: s for s in client.get("/emulator/v1/presence-statuses").json()}
    assert statuses["Available"]["channels"] == [
        "sfdc_case",
        "sfdc_liveagent",
        "sfdc_lead",
        "sfdc_livemessage",
        "sfdc_phone",
    ]
    assert statuses["Available"]["status_option"] == "online"
    assert statuses["Busy"]["status_option"] == "busy" and statuses["Busy"]["channels"] == []
    assert {"On_Break", "On_a_Call", "Lunch", "Training", "Available_for_Cases"} <= set(statuses)
    channels = {c["channel"]: c for c in client.get("/emulator/v1/channels").json()}
    assert channels["Case"]["capacity_weight"] == 2 and channels["Chat"]["capacity_weight"] == 3
