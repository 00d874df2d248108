"""States, settings, the error shape everywhere, health, metrics, OpenAPI, request ids."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
import structlog
from starlette.testclient import TestClient

from presencesync.domain import PresenceChanged, StatusChangeReason
from presencesync.service import Engine, open_engine
from presencesync.web.logging import configure_logging

from .conftest import Account, bearer, error_of, save_statuses, seed, valid_config


def test_states_list_the_accounts_states(client: TestClient, acme: Account) -> None:
    states = client.get("/api/v1/states", headers=bearer(acme.agents["alice"])).json()
    by_name = {s["state"]: s for s in states}
    lunch = by_name["ExtendedAway/Lunch"]
    assert lunch == {
        "state": "ExtendedAway/Lunch",
        "major": "ExtendedAway",
        "minor": "Lunch",
        "agent_selectable": True,
        "system": False,
        "routable": False,
    }
    assert by_name["Ready"]["routable"] is True
    assert by_name["Busy/Inbound"]["system"] is True
    assert by_name["Busy/Inbound"]["agent_selectable"] is False


def test_put_states_defines_minor_states(client: TestClient, acme: Account) -> None:
    body = {
        "minor_states": {
            "Away": ["Break", "Coaching"],
            "Wrap": ["Auto", "Manual", "Transferred"],
        }
    }
    response = client.put("/api/v1/states", json=body, headers=bearer(acme.admin))
    assert response.status_code == 200, response.text
    assert response.json()["minor_states"]["Away"] == ["Break", "Coaching"]
    names = {s["state"] for s in client.get("/api/v1/states", headers=bearer(acme.admin)).json()}
    assert "Away/Coaching" in names and "Away/ComfortBreak" not in names


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"minor_states": {"Ready": ["Fast"]}}, "INVALID_STATE"),
        ({"minor_states": {"Wrap": ["Auto"]}}, "INVALID_STATE"),
        ({"minor_states": {"Away": ["no spaces allowed", "Break", "Break"]}}, "INVALID_STATE"),
        ({"minor_states": {"Away": [1]}}, "INVALID_REQUEST"),
        ({"minor_states": "Away"}, "INVALID_REQUEST"),
        ({}, "INVALID_REQUEST"),
    ],
)
def test_bad_minor_states_change_nothing(
    engine: Engine, client: TestClient, acme: Account, body: Any, code: str
) -> None:
    before = engine.get_catalog(acme.id)
    response = client.put("/api/v1/states", json=body, headers=bearer(acme.admin))
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == code
    assert error["details"]
    assert engine.get_catalog(acme.id) == before


def test_settings_round_trip(client: TestClient, acme: Account) -> None:
    admin = bearer(acme.admin)
    assert client.get("/api/v1/settings", headers=admin).json() == {
        "wrap_seconds": 30,
        "session_grace_seconds": 60,
        "session_end_policy": "logout",
        "busy_status_means_busy_inbound": False,
        "offer_timeout_seconds": 20,
        "omni_logout_duplicate_login": "ignore",
        "omni_logout_duplicate_login_same_browser": "ignore",
        "omni_logout_maintenance": "keep",
        "omni_logout_supervisor": "logout",
        "change_data_capture": False,
    }
    new = {
        "wrap_seconds": 5,
        "session_grace_seconds": 10,
        "session_end_policy": "away",
        "busy_status_means_busy_inbound": True,
        "offer_timeout_seconds": 15,
        "omni_logout_duplicate_login": "logout",
        "omni_logout_duplicate_login_same_browser": "logout",
        "omni_logout_maintenance": "logout",
        "omni_logout_supervisor": "keep",
        "change_data_capture": True,
    }
    assert client.put("/api/v1/settings", json=new, headers=admin).json() == new
    assert client.get("/api/v1/settings", headers=bearer(acme.supervisor)).json() == new


def test_bad_settings_list_every_field_and_change_nothing(
    engine: Engine, client: TestClient, acme: Account
) -> None:
    body = {
        "wrap_seconds": -1,
        "session_grace_seconds": "60",
        "session_end_policy": "explode",
        "busy_status_means_busy_inbound": "no",
        "color": "red",
    }
    response = client.put("/api/v1/settings", json=body, headers=bearer(acme.admin))
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "INVALID_SETTINGS"
    assert {d["field"] for d in error["details"]} == set(body)
    assert engine.get_settings(acme.id).wrap_seconds == 30
    for bad in (b"[1, 2]", b"{nope"):
        response = client.put(
            "/api/v1/settings",
            content=bad,
            headers={**bearer(acme.admin), "Content-Type": "application/json"},
        )
        assert response.status_code == 422
        assert error_of(response)["code"] == "INVALID_REQUEST"


def test_unknown_routes_and_methods_use_the_error_shape(client: TestClient, acme: Account) -> None:
    missing = client.get("/api/v1/nothing-here", headers=bearer(acme.admin))
    assert missing.status_code == 404 and error_of(missing)["code"] == "NOT_FOUND"
    wrong = client.delete("/api/v1/states", headers=bearer(acme.admin))
    assert wrong.status_code == 405 and error_of(wrong)["code"] == "METHOD_NOT_ALLOWED"


def test_healthz(client: TestClient) -> None:
    for path in ("/healthz", "/api/v1/healthz"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.json()["status"] == "ok"


def test_openapi_lists_the_contract(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    expected = {
        "/api/v1/states": {"get", "put"},
        "/api/v1/omni/fetch": {"post"},
        "/api/v1/omni/config": {"get", "put"},
        "/api/v1/agents": {"get", "post"},
        "/api/v1/agents/{agent_id}": {"get"},
        "/api/v1/agents/{agent_id}/login": {"post"},
        "/api/v1/agents/{agent_id}/logout": {"post"},
        "/api/v1/agents/{agent_id}/state": {"put"},
        "/api/v1/agents/{agent_id}/history": {"get"},
        "/api/v1/interactions": {"post"},
        "/api/v1/interactions/{interaction_id}": {"get"},
        "/api/v1/interactions/{interaction_id}/answer": {"post"},
        "/api/v1/interactions/{interaction_id}/decline": {"post"},
        "/api/v1/interactions/{interaction_id}/hangup": {"post"},
        "/api/v1/settings": {"get", "put"},
        "/healthz": {"get"},
        "/metrics": {"get"},
    }
    for path, methods in expected.items():
        assert path in paths, path
        assert methods <= set(paths[path]), (path, set(paths[path]))
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    put_config = paths["/api/v1/omni/config"]["put"]
    assert put_config["security"] == [{"bearerAuth": []}]
    error_ref = put_config["responses"]["422"]["content"]["application/json"]["schema"]
    assert error_ref == {"$ref": "#/components/schemas/Error"}
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    body = put_config["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {"enabled", "presence_mappings", "state_mappings"}


def _sample(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if labels else "") + r" (\S+)"
    match = re.search(r"^" + pattern + r"$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_metrics_count_events_latency_and_agents(
    engine: Engine, client: TestClient, acme: Account
) -> None:
    save_statuses(engine, acme.id)
    client.put("/api/v1/omni/config", json=valid_config(), headers=bearer(acme.admin))
    before = client.get("/metrics").text
    alice = client.post("/api/v1/agents/alice/login", headers=bearer(acme.agents["alice"])).json()
    # The console confirms our command: the echo carries the latency of the round trip.
    pending = engine.get_agent(acme.id, "alice").snapshot.pending
    assert pending, alice
    engine.submit(
        acme.id,
        "alice",
        PresenceChanged(
            at=pending[0].issued_at,
            presence_status="Available",
            reason=StatusChangeReason.TOOLKIT,
            command_id=pending[0].command_id,
        ),
        source="test",
    )
    after = client.get("/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text
    assert (
        _sample(text, "presencesync_events_total", outcome="applied")
        >= _sample(before, "presencesync_events_total", outcome="applied") + 1
    )
    assert _sample(text, "presencesync_events_total", outcome="echo") >= 1
    assert _sample(text, "presencesync_sync_latency_seconds_count") >= 1
    assert _sample(text, "presencesync_agents", state="Ready") >= 1
    assert "presencesync_commands_sent_total" in text
    assert "presencesync_http_requests_total" in text


def test_request_id_is_echoed_and_logged(
    client: TestClient, acme: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure_logging("INFO")
    try:
        response = client.get("/api/v1/states", headers={"X-Request-ID": "abc-123"})
        assert response.headers["x-request-id"] == "abc-123"
        generated = client.get("/healthz").headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", generated)
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
        request_lines = [line for line in lines if line.get("event") == "request"]
        assert any(
            line["request_id"] == "abc-123" and line["status"] == 401 for line in request_lines
        )
        client.get("/api/v1/states", headers={**bearer(acme.admin), "X-Request-ID": "who-1"})
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
        mine = [line for line in lines if line.get("request_id") == "who-1"]
        assert mine and mine[0]["account_id"] == acme.id and mine[0]["role"] == "admin"
        assert all({"timestamp", "level", "method", "path"} <= set(line) for line in request_lines)
    finally:
        structlog.reset_defaults()
        root.handlers[:], root.level = saved[0], saved[1]
        logging.getLogger("uvicorn.access").disabled = False


def test_agents_gauge_counts_stored_agents_at_start(tmp_path: Path) -> None:
    from presencesync.web.metrics import Metrics, seed_agent_gauge

    with open_engine(f"sqlite:///{tmp_path / 'gauge.db'}") as engine:
        first, second = seed(engine, "One"), seed(engine, "Two")
        metrics = Metrics()
        metrics.track_agent(first.id, "alice", "Ready")  # a commit seen before the count
        assert seed_agent_gauge(engine, metrics, page=1) == 4
    text = metrics.render().decode()
    assert _sample(text, "presencesync_agents", state="Ready") == 1
    assert _sample(text, "presencesync_agents", state="LoggedOut") == 3
    assert second.id != first.id


def test_oversized_bodies_are_refused(engine: Engine, client: TestClient, acme: Account) -> None:
    save_statuses(engine, acme.id)
    big = valid_config()
    big["padding"] = "x" * 1_100_000
    response = client.put("/api/v1/omni/config", json=big, headers=bearer(acme.admin))
    assert response.status_code == 413
    assert error_of(response)["code"] == "PAYLOAD_TOO_LARGE"
    assert engine.get_omni_config(acme.id) is None


def test_oversized_streamed_bodies_are_refused(client: TestClient, acme: Account) -> None:
    def chunks() -> Any:
        yield b'{"padding": "'
        for _ in range(12):
            yield b"x" * 100_000
        yield b'"}'

    response = client.put(
        "/api/v1/settings",
        content=chunks(),
        headers={**bearer(acme.admin), "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert error_of(response)["code"] == "PAYLOAD_TOO_LARGE"


def test_a_query_parameter_given_twice_is_refused(client: TestClient, acme: Account) -> None:
    """Found by schemathesis: FastAPI kept the last of two values and answered 200."""
    response = client.get("/api/v1/agents?limit=1&limit=500", headers=bearer(acme.admin))
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "INVALID_REQUEST"
    assert error["details"][0]["field"] == "limit"
    assert error["details"][0]["type"] == "repeated_parameter"
    assert client.get("/api/v1/agents?limit=1", headers=bearer(acme.admin)).status_code == 200


def test_an_unknown_query_parameter_is_refused(client: TestClient, acme: Account) -> None:
    """Found by schemathesis: `?limt=5` was ignored and the full list answered."""
    response = client.get("/api/v1/agents?limt=5&after=", headers=bearer(acme.admin))
    assert response.status_code == 422
    details = error_of(response)["details"]
    assert [(d["field"], d["type"]) for d in details] == [("limt", "unknown_parameter")]
    history = client.get("/api/v1/agents/alice/history?limit=2", headers=bearer(acme.admin))
    assert history.status_code == 200


def test_a_body_that_is_not_utf8_is_a_documented_400(client: TestClient, acme: Account) -> None:
    """Found by schemathesis: the 400 FastAPI gives a body it cannot decode was not in the
    OpenAPI document, nor in the error shape's codes."""
    response = client.put(
        "/api/v1/settings",
        content=b'{"wrap_seconds": "\xff\xfe"}',
        headers={**bearer(acme.admin), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert error_of(response)["code"] == "MALFORMED_BODY"
    document = client.get("/openapi.json").json()
    put_settings = document["paths"]["/api/v1/settings"]["put"]["responses"]
    assert "400" in put_settings and "429" in put_settings and "413" in put_settings
    assert put_settings["429"]["headers"]["Retry-After"]["schema"]["type"] == "integer"
