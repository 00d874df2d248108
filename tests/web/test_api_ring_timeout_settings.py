"""The ring timeout setting (`offer_timeout_seconds`): GET/PUT /api/v1/settings and the admin
page's Settings section."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from presencesync.service import Engine

from .conftest import Account, bearer, error_of
from .test_pages import Page, assert_every_control_has_a_visible_label, sign_in


def test_the_ring_timeout_defaults_to_twenty_seconds_and_round_trips(
    engine: Engine, client: TestClient, acme: Account
) -> None:
    admin = bearer(acme.admin)
    assert client.get("/api/v1/settings", headers=admin).json()["offer_timeout_seconds"] == 20
    for value in (0, 1, 45, 600):
        saved = client.put("/api/v1/settings", json={"offer_timeout_seconds": value}, headers=admin)
        assert saved.status_code == 200
        assert saved.json()["offer_timeout_seconds"] == value
        assert saved.json()["wrap_seconds"] == 30  # fields left out keep their value
        got = client.get("/api/v1/settings", headers=bearer(acme.supervisor)).json()
        assert got["offer_timeout_seconds"] == value
        assert engine.get_settings(acme.id).offer_timeout_seconds == value


@pytest.mark.parametrize("bad", [-1, 601, 20.5, "20", True, None, [20]])
def test_a_bad_ring_timeout_is_refused_and_nothing_is_written(
    engine: Engine, client: TestClient, acme: Account, bad: Any
) -> None:
    admin = bearer(acme.admin)
    client.put("/api/v1/settings", json={"offer_timeout_seconds": 30}, headers=admin)
    response = client.put(
        "/api/v1/settings",
        json={"offer_timeout_seconds": bad, "wrap_seconds": 5},
        headers=admin,
    )
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "INVALID_SETTINGS"
    assert [d["field"] for d in error["details"]] == ["offer_timeout_seconds"]
    settings = engine.get_settings(acme.id)
    assert (settings.offer_timeout_seconds, settings.wrap_seconds) == (30, 30)


def test_every_problem_is_reported_at_once(
    engine: Engine, client: TestClient, acme: Account
) -> None:
    body = {"offer_timeout_seconds": 9999, "wrap_seconds": -1, "session_end_policy": "x"}
    response = client.put("/api/v1/settings", json=body, headers=bearer(acme.admin))
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "INVALID_SETTINGS"
    by_field = {d["field"]: d["message"] for d in error["details"]}
    assert set(by_field) == set(body)
    assert "600" in by_field["offer_timeout_seconds"]
    assert engine.get_settings(acme.id).offer_timeout_seconds == 20


def test_only_an_admin_changes_the_ring_timeout(
    engine: Engine, client: TestClient, acme: Account
) -> None:
    response = client.put(
        "/api/v1/settings", json={"offer_timeout_seconds": 5}, headers=bearer(acme.supervisor)
    )
    assert response.status_code == 403
    assert engine.get_settings(acme.id).offer_timeout_seconds == 20


def test_the_openapi_schema_documents_the_ring_timeout(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/api/v1/settings"]["put"]["requestBody"]["content"]["application/json"]
    field = body["schema"]["properties"]["offer_timeout_seconds"]
    assert (field["type"], field["minimum"], field["maximum"]) == ("integer", 0, 600)


def test_the_settings_section_has_a_labelled_ring_time_field(
    engine: Engine, client: TestClient, acme: Account
) -> None:
    engine.save_settings(acme.id, {"offer_timeout_seconds": 35}, actor="test")
    sign_in(client, acme.admin)
    response = client.get("/admin/omni-channel")
    assert response.status_code == 200
    page = Page(response.text)
    (control,) = [c for c in page.controls if c.get("id") == "offer_timeout_seconds"]
    assert control["type"] == "number" and control["value"] == "35"
    assert (control["min"], control["max"]) == ("0", "600")
    assert page.label_of("offer_timeout_seconds") == "Ring time before the call moves on (seconds)"
    assert_every_control_has_a_visible_label(page)
    script = client.get("/static/admin.js").text
    assert 'offer_timeout_seconds: numberOrNull("offer_timeout_seconds")' in script
