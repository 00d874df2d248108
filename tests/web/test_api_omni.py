"""Omni-Channel: fetch from the org (the emulator, in-process), read and save the mappings."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from presencesync.salesforce import AsyncSalesforceClient, SalesforceCredentials
from presencesync.service import Engine, SalesforceConnection
from presencesync_emulator.app import create_app as create_emulator

from .conftest import Account, bearer, error_of, save_statuses, valid_config

EMULATOR = "http://emulator.test"


@pytest.fixture(scope="module")
def emulator() -> Iterator[Starlette]:
    app = create_emulator(":memory:")
    yield app
    app.state.org.store.close()


@pytest.fixture(scope="module")
def connected_app(emulator: Starlette) -> dict[str, Any]:
    with TestClient(emulator, base_url=EMULATOR) as control:
        return control.get("/emulator/v1/oauth-clients").json()[0]


def emulator_factory(emulator: Starlette) -> Any:
    """Clients that reach the emulator app in-process instead of over a socket."""

    def factory(connection: SalesforceConnection) -> AsyncSalesforceClient:
        credentials = SalesforceCredentials(
            connection.login_url,
            connection.client_id,
            connection.username,
            private_key_pem=connection.private_key_pem,
            client_secret=connection.client_secret,
        )
        return AsyncSalesforceClient(credentials, transport=httpx.ASGITransport(app=emulator))

    return factory


@pytest.fixture
def fetch_client(app_factory: Any, emulator: Starlette) -> Iterator[TestClient]:
    app = app_factory(salesforce_client_factory=emulator_factory(emulator))
    with TestClient(app) as client:
        yield client


def connect(engine: Engine, account: Account, app: dict[str, Any], **changes: Any) -> None:
    fields = {
        "login_url": EMULATOR,
        "client_id": app["client_id"],
        "username": app["username"],
        "private_key_pem": app["private_key_pem"],
        **changes,
    }
    engine.set_salesforce_connection(account.id, SalesforceConnection(**fields))


def test_fetch_reads_the_orgs_statuses_and_stores_them(
    engine: Engine, fetch_client: TestClient, acme: Account, connected_app: dict[str, Any]
) -> None:
    connect(engine, acme, connected_app)
    response = fetch_client.post("/api/v1/omni/fetch", headers=bearer(acme.admin))
    assert response.status_code == 200, response.text
    statuses = {s["developer_name"]: s for s in response.json()["presence_statuses"]}
    assert statuses["Available"]["status_option"] == "online"
    assert statuses["Available"]["channels"] == ["Case", "Chat", "Lead", "Messaging", "Voice"]
    assert statuses["Lunch"]["status_option"] == "busy"
    assert statuses["Lunch"]["id"].startswith("0N5")
    for status in statuses.values():
        assert set(status) == {"id", "developer_name", "label", "status_option", "channels"}
    stored = fetch_client.get("/api/v1/omni/config", headers=bearer(acme.admin)).json()
    assert {s["developer_name"] for s in stored["presence_statuses"]} == set(statuses)


def test_fetch_with_bad_credentials_is_a_502_and_keeps_the_last_fetch(
    engine: Engine, fetch_client: TestClient, acme: Account, connected_app: dict[str, Any]
) -> None:
    save_statuses(engine, acme.id)
    connect(engine, acme, connected_app, private_key_pem=None, client_secret="wrong")
    response = fetch_client.post("/api/v1/omni/fetch", headers=bearer(acme.admin))
    assert response.status_code == 502
    error = error_of(response)
    assert error["code"] == "SALESFORCE_AUTH_FAILED"
    assert error["details"]["error"]
    assert len(engine.get_presence_statuses(acme.id)) == 4


def test_fetch_when_salesforce_is_down_is_a_502(
    engine: Engine, app_factory: Any, acme: Account, connected_app: dict[str, Any]
) -> None:
    def unreachable(connection: SalesforceConnection) -> AsyncSalesforceClient:
        def refuse(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("connection refused", request=request)

        credentials = SalesforceCredentials(
            connection.login_url, connection.client_id, client_secret="x"
        )
        return AsyncSalesforceClient(
            credentials, transport=httpx.MockTransport(refuse), sleep=_no_sleep
        )

    connect(engine, acme, connected_app)
    with TestClient(app_factory(salesforce_client_factory=unreachable)) as client:
        response = client.post("/api/v1/omni/fetch", headers=bearer(acme.admin))
    assert response.status_code == 502
    assert error_of(response)["code"] == "SALESFORCE_UNAVAILABLE"
    assert engine.get_presence_statuses(acme.id) == []


async def _no_sleep(seconds: float) -> None:
    return None


def test_fetch_without_a_connection_is_a_conflict(fetch_client: TestClient, acme: Account) -> None:
    response = fetch_client.post("/api/v1/omni/fetch", headers=bearer(acme.admin))
    assert response.status_code == 409
    assert error_of(response)["code"] == "SALESFORCE_NOT_CONNECTED"


def test_save_returns_config_with_round_trip_warnings(
    engine: Engine, client: TestClient, acme: Account
) -> None:
    save_statuses(engine, acme.id)
    response = client.put("/api/v1/omni/config", json=valid_config(), headers=bearer(acme.admin))
    assert response.status_code == 200, response.text
    saved = response.json()
    assert saved["enabled"] is True
    assert saved["presence_mappings"] == valid_config()["presence_mappings"]
    assert saved["state_mappings"] == valid_config()["state_mappings"]
    trips = {tuple(w["round_trip"]) for w in saved["warnings"] if w.get("round_trip")}
    assert ("Lunch", "ExtendedAway/Lunch", "On_Break") in trips
    assert saved["version"] == 1
    again = client.get("/api/v1/omni/config", headers=bearer(acme.admin)).json()
    assert again["presence_mappings"] == saved["presence_mappings"]
    assert again["warnings"] == saved["warnings"]


def test_invalid_config_lists_every_problem_with_its_row_and_saves_nothing(
    engine: Engine, client: TestClient, acme: Account
) -> None:
    save_statuses(engine, acme.id)
    config = valid_config()
    config["presence_mappings"][0]["busy"] = True  # Available is an online status
    config["presence_mappings"][3]["maps_to"] = "Busy/Inbound"  # a system state
    config["state_mappings"] = [m for m in config["state_mappings"] if m["state"] != "Away"]
    config["state_mappings"].append({"state": "Ready/Outbound", "presence_status": "Nope"})
    response = client.put("/api/v1/omni/config", json=config, headers=bearer(acme.admin))
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "INVALID_CONFIG"
    found = {(p["code"], p["section"], p["index"], p.get("key")) for p in error["details"]}
    assert found == {
        ("BUSY_CONTRADICTS_STATUS_OPTION", "presence_mappings", 0, "Available"),
        ("MAPS_TO_SYSTEM_STATE", "presence_mappings", 3, "Lunch"),
        ("MISSING_MAJOR_MAPPING", "state_mappings", None, "Away"),
        ("UNKNOWN_PRESENCE_STATUS", "state_mappings", 4, "Ready/Outbound"),
    }
    assert engine.get_omni_config(acme.id) is None


@pytest.mark.parametrize(
    "body",
    [
        [],
        "enabled",
        {"enabled": "yes", "presence_mappings": {}, "state_mappings": 3},
        {"presence_mappings": [1, None], "state_mappings": [{"state": 4}]},
    ],
)
def test_malformed_config_is_422_and_saves_nothing(
    engine: Engine, client: TestClient, acme: Account, body: Any
) -> None:
    save_statuses(engine, acme.id)
    response = client.put("/api/v1/omni/config", json=body, headers=bearer(acme.admin))
    assert response.status_code == 422
    assert error_of(response)["code"] in {"INVALID_REQUEST", "INVALID_CONFIG"}
    assert engine.get_omni_config(acme.id) is None


def test_a_failed_save_keeps_the_previous_version(
    engine: Engine, client: TestClient, acme: Account
) -> None:
    save_statuses(engine, acme.id)
    client.put("/api/v1/omni/config", json=valid_config(), headers=bearer(acme.admin))
    broken = valid_config()
    broken["enabled"] = False
    broken["state_mappings"] = []
    response = client.put("/api/v1/omni/config", json=broken, headers=bearer(acme.admin))
    assert response.status_code == 422
    current = client.get("/api/v1/omni/config", headers=bearer(acme.admin)).json()
    assert current["version"] == 1 and current["enabled"] is True


def test_accounts_without_the_feature_cannot_configure(
    engine: Engine, client: TestClient, acme: Account
) -> None:
    engine.set_omni_feature(acme.id, False)
    for method, path in [
        ("GET", "/api/v1/omni/config"),
        ("PUT", "/api/v1/omni/config"),
        ("POST", "/api/v1/omni/fetch"),
    ]:
        response = client.request(method, path, json=valid_config(), headers=bearer(acme.admin))
        assert response.status_code == 403
        assert error_of(response)["code"] == "FEATURE_NOT_ENABLED"
    assert engine.get_omni_config(acme.id) is None
