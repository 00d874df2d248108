"""Fixtures for the org emulator's tests: an in-process app and its control API."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette

with warnings.catch_warnings():
    # Starlette 1.x nudges towards "httpx2"; httpx is what the project ships with.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from presencesync_emulator.app import create_app

BASE = "http://emulator.test"


@pytest.fixture
def app() -> Iterator[Starlette]:
    application = create_app(":memory:")
    yield application
    application.state.org.store.close()


@pytest.fixture
def client(app: Starlette) -> Iterator[TestClient]:
    with TestClient(app, base_url=BASE) as test_client:
        yield test_client


@pytest.fixture
def agents(client: TestClient) -> list[str]:
    """The seeded agents' user ids (the first seeded user is the integration user)."""
    users = client.get("/emulator/v1/users").json()
    return [u["id"] for u in users if not u["username"].startswith("integration@")]


def omni(client: TestClient, user_id: str) -> dict[str, Any]:
    response = client.get(f"/emulator/v1/users/{user_id}/omni")
    assert response.status_code == 200, response.text
    return response.json()


def login(client: TestClient, user_id: str, status: str = "Available") -> dict[str, Any]:
    response = client.post(
        f"/emulator/v1/users/{user_id}/omni/login", json={"presence_status": status}
    )
    assert response.status_code == 200, response.text
    return response.json()


def new_work(client: TestClient, channel: str = "Case", subject: str = "help") -> dict[str, Any]:
    response = client.post("/emulator/v1/work", json={"channel": channel, "subject": subject})
    assert response.status_code == 201, response.text
    return response.json()


def open_work(client: TestClient, user_id: str) -> list[dict[str, Any]]:
    return [w for w in omni(client, user_id)["work"] if w["status"] in ("Assigned", "Opened")]


def token(client: TestClient) -> str:
    app_client = client.get("/emulator/v1/oauth-clients").json()[0]
    response = client.post(
        "/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": app_client["client_id"],
            "client_secret": app_client["client_secret"],
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])
