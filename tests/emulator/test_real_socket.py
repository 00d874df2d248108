"""The emulator over a real socket (uvicorn on a free loopback port): HTTP, HTTPS with the
self-signed certificate, the console WebSocket, simple-salesforce, and restart on a file db."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import requests
from simple_salesforce import Salesforce
from simple_salesforce.login import SalesforceLogin
from websockets.sync.client import connect

from presencesync_emulator.testing import running_emulator, ssl_context, start_emulator


def _token(client: httpx.Client) -> str:
    app = client.get("/emulator/v1/oauth-clients").json()[0]
    r = client.post(
        "/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
        },
    )
    r.raise_for_status()
    return str(r.json()["access_token"])


def test_http_control_api_rest_and_console_socket() -> None:
    with running_emulator() as url, httpx.Client(base_url=url, timeout=5) as client:
        assert url.startswith("http://127.0.0.1:")
        users = client.get("/emulator/v1/users").json()
        agent = users[1]["id"]
        ws_url = "ws" + url[4:] + f"/emulator/v1/users/{agent}/console"
        with connect(ws_url, open_timeout=5) as ws:
            assert json.loads(ws.recv(timeout=5))["type"] == "hello"
            client.post(f"/emulator/v1/users/{agent}/omni/login", json={"presence_status": "Busy"})
            names = [json.loads(ws.recv(timeout=5))["name"] for _ in range(2)]
            assert names == [
                "lightning:omniChannelLoginSuccess",
                "lightning:omniChannelStatusChanged",
            ]
            ws.send(json.dumps({"type": "call", "id": "1", "method": "getServicePresenceStatusId"}))
            reply = json.loads(ws.recv(timeout=5))
            assert reply["result"]["statusApiName"] == "Busy"
        r = client.get(
            "/services/data/v62.0/query",
            params={"q": "SELECT Id FROM UserServicePresence WHERE IsCurrentState = true"},
            headers={"Authorization": f"Bearer {_token(client)}"},
        )
        assert r.json()["totalSize"] == 1
        token = r.json()["records"][0]["attributes"]["url"]
        assert token.startswith("/services/data/v62.0/sobjects/UserServicePresence/0Hn")


def test_https_with_self_signed_certificate(tmp_path: Path) -> None:
    with running_emulator(tls=True, tls_dir=tmp_path) as url:
        assert url.startswith("https://localhost:")
        assert (tmp_path / "cert.pem").exists() and (tmp_path / "key.pem").exists()
        context = ssl_context(tmp_path)
        with httpx.Client(base_url=url, verify=context, timeout=5) as client:
            assert client.get("/services/data/").status_code == 200
            agent = client.get("/emulator/v1/users").json()[1]["id"]
            body = client.post(
                "/services/oauth2/token",
                data={"grant_type": "client_credentials", **_client_pair(client)},
            ).json()
            assert body["instance_url"] == url
        ws_url = "wss" + url[5:] + f"/emulator/v1/users/{agent}/console"
        with connect(ws_url, ssl=context, open_timeout=5) as ws:
            assert json.loads(ws.recv(timeout=5))["user_id"] == agent
        # An unverified client is refused: the certificate is not a public one.
        try:
            httpx.get(url + "/services/data/", timeout=5)
        except httpx.ConnectError:
            pass
        else:  # pragma: no cover
            raise AssertionError("TLS verification should fail without the emulator's cert")
        # simple-salesforce: SOAP login, then a query, over HTTPS.
        app = httpx.get(url + "/emulator/v1/oauth-clients", verify=context).json()[0]
        session = requests.Session()
        session.verify = str(tmp_path / "cert.pem")
        session.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment wins
        session_id, instance = SalesforceLogin(
            username=app["username"],
            password=app["password"],
            security_token=app["security_token"],
            scratch_url=url,
            session=session,
        )
        sf = Salesforce(session_id=session_id, instance=instance, session=session)
        result = sf.query_all("SELECT Id, DeveloperName FROM ServicePresenceStatus")
        assert {r["DeveloperName"] for r in result["records"]} >= {"Available", "Busy"}
        session.close()


def _client_pair(client: httpx.Client) -> dict[str, str]:
    app = client.get("/emulator/v1/oauth-clients").json()[0]
    return {"client_id": app["client_id"], "client_secret": app["client_secret"]}


def test_state_persists_across_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "org.db")
    first = start_emulator(db)
    try:
        client = httpx.Client(base_url=first.url, timeout=5)
        agent = client.get("/emulator/v1/users").json()[1]["id"]
        client.post(f"/emulator/v1/users/{agent}/omni/login", json={"presence_status": "Available"})
        work = client.post("/emulator/v1/work", json={"channel": "Case", "subject": "kept"}).json()
        queued = client.post("/emulator/v1/users", json={"name": "New Person", "username": "np@x"})
        apps = client.get("/emulator/v1/oauth-clients").json()
        token = _token(client)
        client.close()
    finally:
        first.stop()
    second = start_emulator(db)
    try:
        client = httpx.Client(base_url=second.url, timeout=5)
        state = client.get(f"/emulator/v1/users/{agent}/omni").json()
        assert state["online"] is True and state["presence_status"] == "Available"
        assert [w["id"] for w in state["work"] if w["status"] == "Assigned"] == [work["id"]]
        assert client.get("/emulator/v1/oauth-clients").json() == apps
        assert queued.json()["id"] in [u["id"] for u in client.get("/emulator/v1/users").json()]
        # The session survives too (a restart is not a logout), and work flows on.
        r = client.get(
            "/services/data/v62.0/query",
            params={"q": "SELECT Id FROM Case WHERE Subject = 'kept'"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 200 and r.json()["totalSize"] == 1
        assert client.post(f"/emulator/v1/work/{work['id']}/accept").json()["status"] == "Opened"
        client.close()
    finally:
        second.stop()
