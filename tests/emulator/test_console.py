"""The console WebSocket (toolkit calls and events) and the console page."""

from __future__ import annotations

import json
from typing import Any

from starlette.testclient import TestClient

from tests.emulator.conftest import login, new_work, omni

EV = "lightning:omniChannel"


def _status_ids(client: TestClient) -> dict[str, str]:
    return {
        s["developer_name"]: s["id"] for s in client.get("/emulator/v1/presence-statuses").json()
    }


def _events_until_result(ws: Any, call_id: str) -> tuple[list[dict], dict]:
    """Events received before the reply to `call_id`, and that reply."""
    events = []
    while True:
        message = ws.receive_json()
        if message["type"] == "event":
            events.append(message)
        elif message.get("id") == call_id:
            return events, message


def _call(ws: Any, call_id: str, method: str, **params: Any) -> tuple[list[dict], dict]:
    ws.send_json({"type": "call", "id": call_id, "method": method, "params": params})
    return _events_until_result(ws, call_id)


def _drain(ws: Any) -> list[dict]:
    """Every event queued so far (a workload query is the barrier)."""
    events, reply = _call(ws, "barrier", "getAgentWorkload")
    assert reply["type"] == "result"
    return events


def test_hello_then_events_of_control_api_changes(client: TestClient, agents: list[str]) -> None:
    a = agents[0]
    with client.websocket_connect(f"/emulator/v1/users/{a}/console") as ws:
        hello = ws.receive_json()
        assert hello == {"type": "hello", "user_id": a, "online": False, "status": None}
        login(client, a, "Available")
        events = _drain(ws)
        assert [e["name"] for e in events] == [EV + "LoginSuccess", EV + "StatusChanged"]
        # Exactly the documented payload: statusId only (no userId).
        assert set(events[0]["params"]) == {"statusId"}
        changed = events[1]["params"]
        assert changed["reason"] == "OmniLoginStatusChange"
        assert changed["statusApiName"] == "Available" and changed["statusName"] == "Available"
        assert changed["statusId"] == events[0]["params"]["statusId"]
        channels = json.loads(changed["channels"])
        assert [c["developerName"] for c in channels] == [
            "sfdc_case",
            "sfdc_liveagent",
            "sfdc_lead",
            "sfdc_livemessage",
            "sfdc_phone",
        ]
        assert all(c["channelId"].startswith("0N9") for c in channels)
        assert events[1]["seq"] > events[0]["seq"]

        client.put(f"/emulator/v1/users/{a}/omni/status", json={"presence_status": "On_Break"})
        client.put(
            f"/emulator/v1/users/{a}/omni/status",
            json={"presence_status": "Available", "reason": "OmniSupervisorStatusChange"},
        )
        reasons = [e["params"]["reason"] for e in _drain(ws)]
        assert reasons == ["OmniManualStatusChange", "OmniSupervisorStatusChange"]

        work = new_work(client, "Case", "from the web")
        assert [e["name"] for e in _drain(ws)] == [EV + "WorkAssigned", EV + "WorkloadChanged"]
        client.post(f"/emulator/v1/work/{work['id']}/accept")
        client.post(f"/emulator/v1/work/{work['id']}/close")
        events = _drain(ws)
        assert [e["name"] for e in events] == [
            EV + "WorkAccepted",
            EV + "WorkClosed",
            EV + "WorkloadChanged",
        ]
        assert events[0]["params"] == {"workItemId": work["work_item_id"], "workId": work["id"]}
        assert events[2]["params"] == {
            "configuredCapacity": 10,
            "previousWorkload": 2,
            "newWorkload": 0,
            # documented since interruptible capacity; no interruptible work here
            "configuredInterruptibleCapacity": 0,
            "previousInterruptibleWorkload": 0,
            "newInterruptibleWorkload": 0,
        }

        client.post(f"/emulator/v1/users/{a}/omni/logout")
        assert [e["name"] for e in _drain(ws)] == [EV + "Logout"]


def test_toolkit_calls(client: TestClient, agents: list[str]) -> None:
    a = agents[0]
    ids = _status_ids(client)
    with client.websocket_connect(f"/emulator/v1/users/{a}/console") as ws:
        ws.receive_json()
        _, reply = _call(ws, "1", "getServicePresenceStatusId")
        assert reply["type"] == "error" and reply["error"]["errorCode"] == "OMNI_OFFLINE"

        events, reply = _call(ws, "2", "login", statusId=ids["Available_for_Cases"])
        assert reply == {"type": "result", "id": "2", "result": True}
        assert [e["params"].get("reason") for e in events] == [None, "OmniLoginStatusChange"]

        events, reply = _call(ws, "3", "setServicePresenceStatus", statusId=ids["Lunch"])
        assert [e["params"]["reason"] for e in events] == ["OmniToolkitStatusChange"]
        result = reply["result"]
        assert result["statusId"] == ids["Lunch"] and result["statusApiName"] == "Lunch"
        assert result["statusName"] == "Lunch" and json.loads(result["channels"]) == []

        # Setting the current status again changes nothing and says so with no event.
        events, reply = _call(ws, "4", "setServicePresenceStatus", statusId=ids["Lunch"])
        assert events == [] and reply["type"] == "result"

        _, reply = _call(ws, "5", "getServicePresenceStatusId")
        assert reply["result"] == {
            "statusId": ids["Lunch"],
            "statusName": "Lunch",
            "statusApiName": "Lunch",
        }
        _, reply = _call(ws, "6", "setServicePresenceStatus", statusId=ids["Available"])
        _, reply = _call(ws, "7", "getServicePresenceStatusChannels")
        assert len(json.loads(reply["result"]["channels"])) == 5

        first = new_work(client, "Case", "one")
        second = new_work(client, "Chat", "two")
        _drain(ws)
        _, reply = _call(ws, "8", "getAgentWorks")
        works = json.loads(reply["result"]["works"])
        assert [w["workId"] for w in works] == [first["id"], second["id"]]
        assert works[0]["workItemId"] == first["work_item_id"] and works[0]["isEngaged"] is False

        events, reply = _call(ws, "9", "acceptAgentWork", workId=first["id"])
        assert reply["result"] is True and events[0]["name"] == EV + "WorkAccepted"
        events, reply = _call(ws, "10", "declineAgentWork", workId=second["id"], declineReason="no")
        assert reply["result"] is True
        assert events[0]["name"] == EV + "WorkDeclined"
        # The documented payload names the work only; the reason is on the AgentWork record.
        assert events[0]["params"] == {"workItemId": second["work_item_id"], "workId": second["id"]}
        assert client.get(f"/emulator/v1/work/{second['id']}").json()["status"] == "Declined"
        _, reply = _call(ws, "11", "acceptAgentWork", workId=second["id"])
        assert reply["error"]["errorCode"] == "ILLEGAL_TRANSITION"
        _, reply = _call(ws, "12", "getAgentWorkload")
        assert reply["result"] == {
            "configuredCapacity": 10,
            "currentWorkload": 2,
            "configuredInterruptibleCapacity": 0,
            "currentInterruptibleWorkload": 0,
        }
        events, reply = _call(ws, "13", "closeAgentWork", workId=first["id"])
        assert [e["name"] for e in events] == [EV + "WorkClosed", EV + "WorkloadChanged"]

        _, reply = _call(ws, "14", "frobnicate")
        assert reply["error"]["errorCode"] == "UNKNOWN_METHOD"
        _, reply = _call(ws, "15", "setServicePresenceStatus", statusId="0N5000000000000AAA")
        assert reply["type"] == "error"
        events, reply = _call(ws, "16", "logout")
        assert reply["result"] is True and [e["name"] for e in events] == [EV + "Logout"]
    assert omni(client, a)["online"] is False


def test_toolkit_cannot_touch_another_agents_work(client: TestClient, agents: list[str]) -> None:
    a, b = agents[:2]
    login(client, a)
    work = new_work(client, "Case", "a's")
    with client.websocket_connect(f"/emulator/v1/users/{b}/console") as ws:
        ws.receive_json()
        _, reply = _call(ws, "1", "acceptAgentWork", workId=work["id"])
        assert reply["error"]["errorCode"] == "NOT_FOUND"
    assert [w["status"] for w in omni(client, a)["work"] if w["id"] == work["id"]] == ["Assigned"]


def test_every_console_of_the_user_gets_the_events(client: TestClient, agents: list[str]) -> None:
    a = agents[0]
    ids = _status_ids(client)
    url = f"/emulator/v1/users/{a}/console"
    with client.websocket_connect(url) as first, client.websocket_connect(url) as second:
        first.receive_json()
        second.receive_json()
        events, _ = _call(first, "x", "setServicePresenceStatus", statusId=ids["Busy"])
        assert [e["name"] for e in events] == [EV + "LoginSuccess", EV + "StatusChanged"]
        assert [e["name"] for e in _drain(second)] == [EV + "LoginSuccess", EV + "StatusChanged"]
    with client.websocket_connect(url) as late:
        hello = late.receive_json()
        assert hello["online"] is True and hello["status"]["statusApiName"] == "Busy"


def test_console_for_unknown_user_is_refused(client: TestClient) -> None:
    with client.websocket_connect("/emulator/v1/users/005nobody/console") as ws:
        message = ws.receive_json()
        assert message["type"] == "error" and message["error"]["errorCode"] == "NOT_FOUND"


def test_bad_messages_get_errors_not_disconnects(client: TestClient, agents: list[str]) -> None:
    with client.websocket_connect(f"/emulator/v1/users/{agents[0]}/console") as ws:
        ws.receive_json()
        ws.send_text("not json")
        assert ws.receive_json()["error"]["errorCode"] == "INVALID_MESSAGE"
        ws.send_json({"type": "hello"})
        assert ws.receive_json()["error"]["errorCode"] == "INVALID_MESSAGE"
        _, reply = _call(ws, "ok", "getAgentWorkload")
        assert reply["type"] == "result"


def test_console_page(client: TestClient, agents: list[str]) -> None:
    a = agents[0]
    page = client.get(f"/console/{a}?bridge=http://127.0.0.1:9/bridge.js&server=ws://127.0.0.1:9/x")
    assert page.status_code == 200
    html = page.text
    assert "Service Console" in html and "Omni-Channel" in html
    assert 'aria-label="Omni-Channel status"' in html and 'role="status"' in html
    assert "/emulator/static/omni-toolkit.js" in html
    config = json.loads(html.split("window.OMNI_CONSOLE_CONFIG = ", 1)[1].split(";</script>")[0])
    assert config["userId"] == a
    assert config["bridgeUrl"] == "http://127.0.0.1:9/bridge.js"
    assert config["bridgeServer"] == "ws://127.0.0.1:9/x"
    assert config["consoleSocketUrl"].endswith(f"/emulator/v1/users/{a}/console")
    assert config["consoleSocketUrl"].startswith("ws://")
    assert {s["statusApiName"] for s in config["statuses"]} >= {"Available", "Busy"}
    toolkit = client.get("/emulator/static/omni-toolkit.js")
    assert toolkit.status_code == 200
    for name in ("setServicePresenceStatus", "getAgentWorks", "omniEvents", "getParam"):
        assert name in toolkit.text
    assert client.get("/console/005nobody").status_code == 404


def test_decline_status_change_has_reason_decline_work(
    client: TestClient, agents: list[str]
) -> None:
    a = agents[0]
    r = client.put("/emulator/v1/presence-config", json={"decline_status": "Busy"})
    assert r.status_code == 200 and r.json()["decline_status"] == "Busy"
    assert r.json()["capacity"] == 10
    assert (
        client.put("/emulator/v1/presence-config", json={"decline_status": "X"}).status_code == 422
    )
    login(client, a)
    work = new_work(client, "Case", "no thanks")
    with client.websocket_connect(f"/emulator/v1/users/{a}/console") as ws:
        ws.receive_json()
        events, reply = _call(ws, "1", "declineAgentWork", workId=work["id"])
        assert reply["result"] is True
        assert [e["name"] for e in events] == [
            EV + "WorkDeclined",
            EV + "WorkloadChanged",
            EV + "StatusChanged",
        ]
        assert events[2]["params"]["reason"] == "OmniDeclineWork"
        assert events[2]["params"]["statusApiName"] == "Busy"
    assert omni(client, a)["presence_status"] == "Busy"
    client.put("/emulator/v1/presence-config", json={"decline_status": None})
    assert client.get("/emulator/v1/presence-config").json()["decline_status"] is None
