"""POST /omni/reconcile: drift found over REST (the emulator, in-process) is corrected."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from presencesync.service import Engine
from presencesync_emulator.app import create_app as create_emulator

from .conftest import Account, bearer, error_of, seed
from .test_api_omni import EMULATOR, connect, emulator_factory


@pytest.fixture
def emulator() -> Iterator[Starlette]:
    app = create_emulator(":memory:")
    yield app
    app.state.org.store.close()


@pytest.fixture
def org(emulator: Starlette) -> Iterator[TestClient]:
    with TestClient(emulator, base_url=EMULATOR) as control:
        yield control


@pytest.fixture
def linked(engine: Engine, org: TestClient) -> tuple[Account, str, str]:
    """An account with one agent linked to a real user of the emulated org."""
    account = seed(engine, f"reconcile-{uuid.uuid4().hex[:8]}", sf_prefix="0059x00000")
    user = org.get("/emulator/v1/users").json()[0]
    user_id = user["id"]
    engine.create_agent(account.id, "linked", "Linked Agent", user_id)
    connect(engine, account, org.get("/emulator/v1/oauth-clients").json()[0])
    return account, "linked", user_id


@pytest.fixture
def api(app_factory: Any, emulator: Starlette) -> Iterator[TestClient]:
    with TestClient(app_factory(salesforce_client_factory=emulator_factory(emulator))) as client:
        yield client


def test_reconcile_brings_presence_and_work_known_only_to_salesforce(
    engine: Engine, api: TestClient, org: TestClient, linked: tuple[Account, str, str]
) -> None:
    account, agent_id, user_id = linked
    assert (
        org.post(
            f"/emulator/v1/users/{user_id}/omni/login", json={"presence_status": "Available"}
        ).status_code
        == 200
    )
    work = org.post("/emulator/v1/work", json={"channel": "Case", "subject": "drift"}).json()
    assert work["user_id"] == user_id
    assert org.post(f"/emulator/v1/work/{work['id']}/accept").status_code == 200

    response = api.post("/api/v1/omni/reconcile", headers=bearer(account.admin))
    assert response.status_code == 200, response.text
    body = response.json()
    assert "linked" in body["corrected"]
    snapshot = engine.get_agent(account.id, agent_id).snapshot
    assert snapshot.presence == "Available"
    assert [(w.work_id, w.accepted) for w in snapshot.work] == [(work["id"], True)]
    history = engine.history(account.id, agent_id, limit=5)
    assert history[0].cause.value == "reconcile"

    # Nothing differs any more: a second pass changes nothing.
    again = api.post("/api/v1/omni/reconcile", headers=bearer(account.admin)).json()
    assert again["corrected"] == []
    assert again["checked"] == body["checked"]


def test_reconcile_sees_an_omni_logout_it_missed(
    engine: Engine, api: TestClient, org: TestClient, linked: tuple[Account, str, str]
) -> None:
    account, agent_id, user_id = linked
    org.post(f"/emulator/v1/users/{user_id}/omni/login", json={"presence_status": "Available"})
    api.post("/api/v1/omni/reconcile", headers=bearer(account.admin))
    assert engine.get_agent(account.id, agent_id).snapshot.presence == "Available"
    org.post(f"/emulator/v1/users/{user_id}/omni/logout")
    body = api.post("/api/v1/omni/reconcile", headers=bearer(account.admin)).json()
    assert "linked" in body["corrected"]
    assert engine.get_agent(account.id, agent_id).snapshot.presence is None


def test_reconcile_needs_an_admin_and_a_connection(
    engine: Engine, api: TestClient, linked: tuple[Account, str, str]
) -> None:
    account, _, _ = linked
    denied = api.post("/api/v1/omni/reconcile", headers=bearer(account.supervisor))
    assert denied.status_code == 403
    assert error_of(denied)["code"] == "FORBIDDEN"
    lonely = seed(engine, f"unconnected-{uuid.uuid4().hex[:8]}")
    response = api.post("/api/v1/omni/reconcile", headers=bearer(lonely.admin))
    assert response.status_code == 409
    assert error_of(response)["code"] == "SALESFORCE_NOT_CONNECTED"
