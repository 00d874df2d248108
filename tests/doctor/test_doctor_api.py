"""`POST /api/v1/omni/doctor` (admins of accounts with the Omni-Channel feature) and the admin
page's "Preflight check" section, on the real server of the demo stack."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.web.conftest import sign_in_response

from .conftest import Org, by_id

DOCTOR = "/api/v1/omni/doctor"


@pytest.fixture
def api(org: Org) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=org.stack.api_url, timeout=60, trust_env=False) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def admin(org: Org) -> dict[str, str]:
    return bearer(org.stack.info["admin_token"])


def error_code(response: httpx.Response) -> Any:
    body = response.json()
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]["code"]


def test_admin_runs_the_preflight_on_this_server(healthy: Org, api: httpx.Client) -> None:
    response = api.post(DOCTOR, headers=admin(healthy))
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["ok"] is True, report
    assert set(report) == {"ok", "summary", "problems", "warnings", "checks"}
    checks = by_id(report)
    # server_url defaults to the URL the request came in by: this server
    assert checks["bridge"]["title"] == f"Bridge reachable at {healthy.stack.api_url}"
    assert checks["bridge"]["status"] == "ok"
    for check in report["checks"]:
        assert set(check) == {"id", "title", "status", "message", "fix", "details"}


def test_a_problem_is_a_200_with_ok_false(healthy: Org, api: httpx.Client) -> None:
    healthy.emulator.delete(
        "/emulator/v1/permission-sets/PresenceSync_Agent/presence-statuses/Busy"
    ).raise_for_status()
    response = api.post(DOCTOR, headers=admin(healthy), json={})
    assert response.status_code == 200
    report = response.json()
    assert report["ok"] is False and report["problems"] == 1
    assert by_id(report)["status_access"]["message"] == (
        "Busy not granted to agent-1, agent-2, agent-3"
    )


def test_an_explicit_server_url(healthy: Org, api: httpx.Client) -> None:
    response = api.post(DOCTOR, headers=admin(healthy), json={"server_url": "http://127.0.0.1:9"})
    checks = by_id(response.json())
    assert checks["bridge"]["status"] == "problem"
    assert checks["csp_trusted_site"]["status"] == "problem"


def test_roles_and_validation(org: Org, api: httpx.Client) -> None:
    info = org.stack.info
    assert api.post(DOCTOR).status_code == 401
    assert error_code(api.post(DOCTOR, headers=bearer("ps_nope"))) == "INVALID_TOKEN"
    for token in (info["supervisor_token"], info["agents"][0]["token"]):
        response = api.post(DOCTOR, headers=bearer(token))
        assert response.status_code == 403 and error_code(response) == "FORBIDDEN"
    for body in ({"server_url": "ftp://x"}, {"server_url": 5}, {"nope": 1}, [1]):
        response = api.post(DOCTOR, headers=admin(org), json=body)
        assert response.status_code == 422, body
        assert error_code(response) == "INVALID_REQUEST"
    engine = org.stack.engine
    plain = engine.create_account("No Omni", omni_feature=False)
    response = api.post(DOCTOR, headers=bearer(engine.create_token(plain, "admin")))
    assert response.status_code == 403 and error_code(response) == "FEATURE_NOT_ENABLED"


def test_the_doctor_is_in_the_openapi_document(org: Org, api: httpx.Client) -> None:
    operation = api.get("/openapi.json").json()["paths"][DOCTOR]["post"]
    assert operation["security"] == [{"bearerAuth": []}]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert "server_url" in schema["anyOf"][0]["properties"]  # or no body at all (null)


def _page(api: httpx.Client, token: str) -> str:
    api.cookies.clear()
    sign_in_response(api, token)  # type: ignore[arg-type]  # any httpx client
    response = api.get("/admin/omni-channel")
    assert response.status_code == 200
    return response.text


def test_the_admin_page_has_the_preflight_section(org: Org, api: httpx.Client) -> None:
    html = _page(api, org.stack.info["admin_token"])
    assert '<h2 id="preflight-heading">Preflight check</h2>' in html
    assert '<button type="button" id="preflight-button">Run preflight check</button>' in html
    assert '<span role="status" id="preflight-status"' in html
    assert '<div role="alert" id="preflight-problems"' in html
    assert '<script src="/static/preflight.js"></script>' in html
    assert api.get("/static/preflight.js").status_code == 200
    engine = org.stack.engine
    plain = engine.create_account("No Omni either", omni_feature=False)
    assert "preflight-button" not in _page(api, engine.create_token(plain, "admin"))
