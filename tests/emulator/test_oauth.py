"""OAuth 2.0 token endpoint, SOAP login and session handling, as a Salesforce org answers."""

from __future__ import annotations

import base64
import time
from typing import Any

import jwt
from starlette.applications import Starlette
from starlette.testclient import TestClient

from presencesync_emulator.app import create_app
from presencesync_emulator.seed import generate_key_pair
from tests.emulator.conftest import BASE, token

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
QUERY = "/services/data/v62.0/query?q=SELECT+Id+FROM+User"


def _connected_app(client: TestClient) -> dict[str, Any]:
    return client.get("/emulator/v1/oauth-clients").json()[0]


def _assertion(app: dict[str, Any], key: str | None = None, **claims: Any) -> str:
    payload = {
        "iss": app["client_id"],
        "sub": app["username"],
        "aud": "https://login.salesforce.com",
        "exp": int(time.time()) + 180,
    }
    payload.update(claims)
    return jwt.encode(payload, key or app["private_key_pem"], algorithm="RS256")


def _jwt_login(client: TestClient, assertion: str) -> Any:
    return client.post(
        "/services/oauth2/token", data={"grant_type": JWT_BEARER, "assertion": assertion}
    )


def test_jwt_bearer_flow(client: TestClient) -> None:
    app = _connected_app(client)
    r = _jwt_login(client, _assertion(app))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer" and body["instance_url"] == BASE
    assert set(body) >= {"access_token", "instance_url", "id", "issued_at", "signature", "scope"}
    org_id = client.get("/emulator/v1/org").json()["org_id"]
    assert body["id"].startswith(f"{BASE}/id/{org_id}/005")
    assert body["access_token"].startswith(org_id[:15] + "!")
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert client.get(QUERY, headers=headers).status_code == 200
    identity = client.get(body["id"].removeprefix(BASE), headers=headers).json()
    assert identity["username"] == app["username"]


def test_jwt_audiences_and_string_exp(client: TestClient) -> None:
    """A production org accepts its authorization server, login.salesforce.com, as `aud`
    (with or without a trailing slash, as a string or in a list); not the sandbox's
    test.salesforce.com, and never its own My Domain / instance URL, even though the token
    request is sent there."""
    app = _connected_app(client)
    for aud in (
        "https://login.salesforce.com",
        "https://login.salesforce.com/",
        ["https://login.salesforce.com"],
    ):
        assert _jwt_login(client, _assertion(app, aud=aud)).status_code == 200, aud
    for aud in ("https://test.salesforce.com", BASE, BASE + "/", [BASE]):
        r = _jwt_login(client, _assertion(app, aud=aud))
        assert r.status_code == 400, aud
        assert r.json() == {"error": "invalid_grant", "error_description": "audience is invalid"}
    # simple-salesforce sends exp as a string of digits.
    assert _jwt_login(client, _assertion(app, exp=f"{time.time() + 60:.0f}")).status_code == 200


def test_jwt_audiences_are_configurable() -> None:
    """A sandbox plays test.salesforce.com; an Experience Cloud site adds its URL. The org's
    own URL stays refused whatever the configuration says."""
    site = "https://acme.my.site.com/customers"
    emulator = create_app(
        ":memory:", jwt_audiences=["https://test.salesforce.com", site + "/", BASE]
    )
    try:
        with TestClient(emulator, base_url=BASE) as sandbox:
            app = _connected_app(sandbox)
            for aud in ("https://test.salesforce.com", site):
                assert _jwt_login(sandbox, _assertion(app, aud=aud)).status_code == 200, aud
            for aud in ("https://login.salesforce.com", BASE):
                r = _jwt_login(sandbox, _assertion(app, aud=aud))
                assert r.json()["error_description"] == "audience is invalid", aud
    finally:
        emulator.state.org.store.close()


def test_jwt_rejections(client: TestClient) -> None:
    app = _connected_app(client)
    _, other_key = generate_key_pair("someone else")
    cases = {
        "bad signature": _assertion(app, key=other_key),
        "wrong audience": _assertion(app, aud="https://evil.example.com"),
        "expired": _assertion(app, exp=int(time.time()) - 5),
        "unknown user": _assertion(app, sub="nobody@example.com"),
        "garbage": "not.a.jwt",
    }
    for name, assertion in cases.items():
        r = _jwt_login(client, assertion)
        assert r.status_code == 400, name
        assert r.json()["error"] == "invalid_grant", name
        assert r.json()["error_description"], name
    r = _jwt_login(client, _assertion(app, iss="3MVG9unknown"))
    assert r.status_code == 400 and r.json()["error"] == "invalid_client_id"
    hs256 = jwt.encode({"iss": app["client_id"]}, "s" * 32, algorithm="HS256")
    assert _jwt_login(client, hs256).json()["error"] == "invalid_grant"


def test_client_credentials_flow(client: TestClient) -> None:
    app = _connected_app(client)
    assert token(client)  # client_id/client_secret in the form
    basic = base64.b64encode(f"{app['client_id']}:{app['client_secret']}".encode()).decode()
    r = client.post(
        "/services/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert r.status_code == 200 and r.json()["access_token"]
    bad = client.post(
        "/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": app["client_id"],
            "client_secret": "wrong",
        },
    )
    assert bad.status_code == 401
    assert bad.json() == {
        "error": "invalid_client",
        "error_description": "invalid client credentials",
    }


def test_password_flow_and_unsupported_grant(client: TestClient) -> None:
    app = _connected_app(client)
    form = {
        "grant_type": "password",
        "client_id": app["client_id"],
        "client_secret": app["client_secret"],
        "username": app["username"],
        "password": app["password"],
    }
    assert client.post("/services/oauth2/token", data=form).status_code == 200
    form["password"] = app["password"] + app["security_token"]
    assert client.post("/services/oauth2/token", data=form).status_code == 200
    form["password"] = "wrong"
    r = client.post("/services/oauth2/token", data=form)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = client.post("/services/oauth2/token", data={"grant_type": "authorization_code"})
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"


def test_soap_login(client: TestClient) -> None:
    app = _connected_app(client)

    def envelope(password: str) -> str:
        return (
            '<?xml version="1.0" encoding="utf-8" ?><soapenv:Envelope '
            'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:urn="urn:partner.soap.sforce.com"><soapenv:Body><urn:login>'
            f"<urn:username>{app['username']}</urn:username>"
            f"<urn:password>{password}</urn:password></urn:login></soapenv:Body>"
            "</soapenv:Envelope>"
        )

    headers = {"content-type": "text/xml", "SOAPAction": "login"}
    r = client.post(
        "/services/Soap/u/59.0",
        content=envelope(app["password"] + app["security_token"]),
        headers=headers,
    )
    assert r.status_code == 200, r.text
    assert "<sessionId>" in r.text and f"<serverUrl>{BASE}/services/Soap/u/59.0/00D" in r.text
    session = r.text.split("<sessionId>")[1].split("</sessionId>")[0]
    assert client.get(QUERY, headers={"Authorization": f"Bearer {session}"}).status_code == 200
    bad = client.post("/services/Soap/u/59.0", content=envelope("nope"), headers=headers)
    assert bad.status_code == 500
    assert "<sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>" in bad.text
    assert client.post("/services/Soap/u/59.0", content="<<<", headers=headers).status_code == 500


def _assert_invalid_session(response: Any) -> None:
    assert response.status_code == 401
    assert response.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]


def test_missing_invalid_and_revoked_tokens_get_401(client: TestClient) -> None:
    _assert_invalid_session(client.get(QUERY))
    _assert_invalid_session(client.get(QUERY, headers={"Authorization": "Bearer nope"}))
    _assert_invalid_session(client.get("/services/data/v62.0/sobjects/"))
    good = token(client)
    headers = {"Authorization": f"Bearer {good}"}
    assert client.get(QUERY, headers=headers).status_code == 200
    assert client.post("/emulator/v1/sessions/expire").json()["expired"] >= 1
    _assert_invalid_session(client.get(QUERY, headers=headers))
    assert (
        client.get(QUERY, headers={"Authorization": f"Bearer {token(client)}"}).status_code == 200
    )


def test_tokens_expire_after_their_lifetime() -> None:
    app: Starlette = create_app(":memory:", token_lifetime_s=0.3)
    try:
        with TestClient(app, base_url=BASE) as client:
            headers = {"Authorization": f"Bearer {token(client)}"}
            assert client.get(QUERY, headers=headers).status_code == 200
            time.sleep(0.4)
            _assert_invalid_session(client.get(QUERY, headers=headers))
    finally:
        app.state.org.store.close()
