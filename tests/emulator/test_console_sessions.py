"""The emulated console sessions: a second Omni console logs the first out (DuplicateLogin,
DuplicateLoginInSameBrowser), maintenance and supervisor logouts, connection errors and their
recovery, toolkit calls that reject or never answer."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from tests.emulator.conftest import login, omni

EV = "lightning:omniChannel"


def console_path(user: str, widget: bool = True, browser: str | None = None) -> str:
    path = f"/emulator/v1/users/{user}/console"
    query = []
    if widget:
        query.append("widget=1")
    if browser:
        query.append(f"browser={browser}")
    return path + ("?" + "&".join(query) if query else "")


def call(ws: Any, call_id: str, method: str, **params: Any) -> dict[str, Any]:
    """Send one toolkit call; return its answer (events before it are skipped)."""
    ws.send_json({"type": "call", "id": call_id, "method": method, "params": params})
    while True:
        message = ws.receive_json()
        if message.get("id") == call_id:
            return dict(message)


def next_message(ws: Any, kind: str) -> dict[str, Any]:
    while True:
        message = ws.receive_json()
        if message["type"] == kind:
            return dict(message)


def test_second_console_logs_the_first_out_with_duplicate_login(
    client: TestClient, agents: list[str]
) -> None:
    a = agents[0]
    login(client, a, "Available")
    with client.websocket_connect(console_path(a, browser="firefox")) as first:
        assert first.receive_json()["online"] is True
        with client.websocket_connect(console_path(a, browser="chrome")) as second:
            hello = second.receive_json()
            assert hello["online"] is True  # the new console holds Omni now
            logout = next_message(first, "event")
            assert logout["name"] == EV + "Logout"
            assert logout["params"] == {"reason": "DuplicateLogin"}
            # The person is still online, in the second console.
            assert omni(client, a)["presence_status"] == "Available"
            # The displaced console sees itself offline and gets no more Omni events ...
            reply = call(first, "1", "getServicePresenceStatusId")
            assert reply["error"]["errorCode"] == "OMNI_OFFLINE"
            assert call(second, "2", "getServicePresenceStatusId")["result"]["statusApiName"] == (
                "Available"
            )
            client.put(f"/emulator/v1/users/{a}/omni/status", json={"presence_status": "Busy"})
            changed = next_message(second, "event")
            assert changed["name"] == EV + "StatusChanged"
            # ... until it logs in again: then the other console is the one logged out.
            busy = changed["params"]["statusId"]
            assert call(first, "3", "setServicePresenceStatus", statusId=busy)["type"] == "result"
            assert next_message(second, "event")["params"] == {"reason": "DuplicateLogin"}


def test_same_browser_is_duplicate_login_in_same_browser(
    client: TestClient, agents: list[str]
) -> None:
    a = agents[0]
    login(client, a, "Available")
    with client.websocket_connect(console_path(a, browser="tabs")) as first:
        first.receive_json()
        with client.websocket_connect(console_path(a, browser="tabs")) as second:
            second.receive_json()
            logout = next_message(first, "event")
            assert logout["params"] == {"reason": "DuplicateLoginInSameBrowser"}


def test_observers_and_offline_users_are_not_displaced(
    client: TestClient, agents: list[str]
) -> None:
    a = agents[0]
    with client.websocket_connect(console_path(a)) as first:
        first.receive_json()
        with client.websocket_connect(console_path(a)) as second:  # offline: nothing to take
            second.receive_json()
            login(client, a, "Available")
            assert next_message(first, "event")["name"] == EV + "LoginSuccess"
            assert next_message(second, "event")["name"] == EV + "LoginSuccess"
            with client.websocket_connect(console_path(a, widget=False)) as observer:
                observer.receive_json()
                client.put(f"/emulator/v1/users/{a}/omni/status", json={"presence_status": "Busy"})
                assert next_message(observer, "event")["name"] == EV + "StatusChanged"
                assert next_message(first, "event")["name"] == EV + "StatusChanged"


def test_logout_reasons_in_the_event(client: TestClient, agents: list[str]) -> None:
    a = agents[0]
    with client.websocket_connect(console_path(a)) as ws:
        ws.receive_json()
        for reason in ("OmniSupervisorLogout", None):
            login(client, a, "Available")
            body = {"reason": reason} if reason else None
            response = client.post(f"/emulator/v1/users/{a}/omni/logout", json=body)
            assert response.status_code == 200, response.text
            logout = next(
                e
                for e in (next_message(ws, "event") for _ in range(4))
                if e["name"].endswith("Logout")
            )
            # The agent's own logout carries no reason.
            assert logout["params"] == ({"reason": reason} if reason else {})
        login(client, a, "Available")
        bad = client.post(f"/emulator/v1/users/{a}/omni/logout", json={"reason": "Because"})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "INVALID_REASON"


def test_maintenance_logs_everyone_out_refuses_logins_and_says_hello_after(
    client: TestClient, agents: list[str]
) -> None:
    a, b = agents[0], agents[1]
    login(client, a, "Available")
    with client.websocket_connect(console_path(a)) as ws:
        ws.receive_json()
        response = client.put("/emulator/v1/omni/maintenance", json={"active": True})
        assert response.json() == {"active": True}
        logout = next_message(ws, "event")
        while not logout["name"].endswith("Logout"):
            logout = next_message(ws, "event")
        assert logout["params"] == {"reason": "MaintenanceLogout"}
        assert omni(client, a)["online"] is False
        refused = client.post(
            f"/emulator/v1/users/{b}/omni/login", json={"presence_status": "Available"}
        )
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "OMNI_MAINTENANCE"
        status_id = omni(client, a)  # offline: find the id through the status list
        available = next(
            s["id"]
            for s in client.get("/emulator/v1/presence-statuses").json()
            if s["developer_name"] == "Available"
        )
        assert status_id["online"] is False
        reply = call(ws, "1", "login", statusId=available)
        assert reply["error"]["errorCode"] == "OMNI_MAINTENANCE"
        client.put("/emulator/v1/omni/maintenance", json={"active": False})
        hello = next_message(ws, "hello")  # Omni is back: a fresh hello
        assert hello["online"] is False
        assert call(ws, "2", "login", statusId=available)["result"] is True


def test_connection_error_rejects_calls_until_it_ends(
    client: TestClient, agents: list[str]
) -> None:
    a = agents[0]
    login(client, a, "Available")
    with client.websocket_connect(console_path(a)) as ws:
        ws.receive_json()
        body = {"active": True, "error": {"message": "network down"}}
        client.put(f"/emulator/v1/users/{a}/omni/connection-error", json=body)
        event = next_message(ws, "event")
        assert event["name"] == EV + "ConnectionError"
        assert event["params"] == {"error": {"message": "network down"}}
        reply = call(ws, "1", "getAgentWorks")
        assert reply["error"]["errorCode"] == "CONNECTION_ERROR"
        client.put(f"/emulator/v1/users/{a}/omni/connection-error", json={"active": False})
        assert next_message(ws, "hello")["online"] is True
        assert "result" in call(ws, "2", "getAgentWorks")


def test_toolkit_faults_reject_or_never_answer(client: TestClient, agents: list[str]) -> None:
    a = agents[0]
    url = f"/emulator/v1/users/{a}/omni/toolkit-faults"
    faults = {"getAgentWorks": "reject_when_offline", "getServicePresenceStatusId": "hang"}
    assert client.put(url, json=faults).json() == faults
    bad = client.put(url, json={"getEverything": "reject", "login": "sometimes"})
    assert bad.status_code == 422
    assert "getEverything" in bad.json()["error"]["message"]
    assert "login" in bad.json()["error"]["message"]
    assert client.get(url).json() == faults  # nothing saved from the bad request
    with client.websocket_connect(console_path(a)) as ws:
        ws.receive_json()
        assert call(ws, "1", "getAgentWorks")["error"]["errorCode"] == "TOOLKIT_ERROR"
        ws.send_json(
            {"type": "call", "id": "2", "method": "getServicePresenceStatusId", "params": {}}
        )
        login(client, a, "Available")  # the next message is an event, not an answer to "2"
        assert next_message(ws, "event")["name"] == EV + "LoginSuccess"
        assert "result" in call(ws, "3", "getAgentWorks")  # online: answers again
        client.put(url, json={"getServicePresenceStatusId": None, "getAgentWorks": "reject"})
        assert call(ws, "4", "getAgentWorks")["error"]["errorCode"] == "TOOLKIT_ERROR"
        assert call(ws, "5", "getServicePresenceStatusId")["result"]["statusApiName"] == (
            "Available"
        )
