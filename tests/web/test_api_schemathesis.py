"""Schemathesis against the served `/openapi.json`, in-process on a real SQLite engine with real
tokens of every role: no answer is a 5xx, every status code and content type is documented,
every answer matches its documented schema, and invalid data is refused.

Every API operation is run in positive mode (data valid for the schema) and, when it has
parameters or a body, in negative mode (invalid data), for an admin, a supervisor and an
agent. Path ids are drawn from the account's real agents and interactions as well as from
Schemathesis' own strings, so the operations reach the engine rather than stopping at 404.
Hypothesis runs derandomized: the same examples every run.

A longer run: `PRESENCESYNC_SCHEMATHESIS_EXAMPLES=500 pytest tests/web/test_api_schemathesis.py`
(the figures of the last one are in the README's "Guarantees").
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.applications import Starlette

from presencesync.service import Engine
from presencesync.web.app import create_app
from presencesync_emulator.app import create_app as create_emulator

from .conftest import ROOMY_LIMITS, Account, save_statuses, seed, valid_config
from .test_api_omni import EMULATOR, connect, emulator_factory

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

EXAMPLES = int(os.environ.get("PRESENCESYNC_SCHEMATHESIS_EXAMPLES", "12"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
ROLES = ("admin", "supervisor", "agent")


def _operations() -> list[tuple[str, bool]]:
    """(label, takes input) of every operation in the document, read from an app that is
    never served (building the document needs no store)."""
    document = create_app(None).openapi()  # type: ignore[arg-type]
    found = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            takes_input = bool(operation.get("parameters") or operation.get("requestBody"))
            found.append((f"{method.upper()} {path}", takes_input))
    return sorted(found)


OPERATIONS = _operations()
CASES = [
    pytest.param(label, mode, role, id=f"{label}-{mode.value}-{role}")
    for label, takes_input in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or takes_input
    for role in ROLES
]


@dataclass
class Target:
    app: Any
    schema: Any
    account: Account
    interactions: list[str]

    def token(self, role: str) -> str:
        if role == "agent":
            return self.account.agents["alice"]
        return self.account.admin if role == "admin" else self.account.supervisor


@pytest.fixture(scope="module")
def target(engine: Engine) -> Iterator[Target]:
    emulator: Starlette = create_emulator(":memory:")
    try:
        with TestClient(emulator, base_url=EMULATOR) as control:
            oauth = control.get("/emulator/v1/oauth-clients").json()[0]
        account = seed(engine, "Schemathesis")
        save_statuses(engine, account.id)
        engine.save_omni_config(account.id, valid_config(), "test")
        connect(engine, account, oauth)
        app = create_app(
            engine,
            limits=ROOMY_LIMITS,
            salesforce_client_factory=emulator_factory(emulator),
        )
        with TestClient(app) as client:
            admin = {"Authorization": f"Bearer {account.admin}"}
            client.post(f"/api/v1/agents/{'alice'}/login", headers=admin).raise_for_status()
            interactions = [
                client.post("/api/v1/interactions", json={"queue": "q"}, headers=admin).json()["id"]
                for _ in range(3)
            ]
            schema = schemathesis.openapi.from_asgi("/openapi.json", app)
            yield Target(app, schema, account, interactions)
    finally:
        emulator.state.org.store.close()


def _with_known_ids(case: Any, data: st.DataObject, target: Target) -> None:
    """Half of the time, aim a path id at something that exists in the account."""
    params = case.path_parameters or {}
    if "agent_id" in params and data.draw(st.booleans()):
        params["agent_id"] = data.draw(st.sampled_from(["alice", "bob"]))
    if "interaction_id" in params and data.draw(st.booleans()):
        params["interaction_id"] = data.draw(st.sampled_from(target.interactions))


@pytest.mark.parametrize(("label", "mode", "role"), CASES)
def test_the_api_keeps_its_documented_promises(
    target: Target, label: str, mode: GenerationMode, role: str
) -> None:
    operation = target.schema.find_operation_by_label(label)
    assert operation is not None, f"{label} is not in the served document"
    headers = {"Authorization": f"Bearer {target.token(role)}"}

    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any, data: st.DataObject) -> None:
        if mode is GenerationMode.POSITIVE:
            _with_known_ids(case, data, target)
        # The role's real token, also where negative mode made up a malformed header (a bad
        # token is the access matrix's business): the invalid input goes to the operation.
        case.headers = {**(case.headers or {}), **headers}
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()


def test_every_api_operation_is_covered(target: Target) -> None:
    """(Runs after the generated requests: also reports how many there were, by status.)"""
    counted: dict[str, int] = {}
    for metric in target.app.state.metrics.http_requests.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                status = sample.labels["status"]
                counted[status] = counted.get(status, 0) + int(sample.value)
    print(f"\nschemathesis: {sum(counted.values())} requests, by status class {counted}")
    assert not counted.get("5xx")
    labels = {label for label, _ in OPERATIONS}
    assert {"GET /api/v1/agents/{agent_id}", "PUT /api/v1/omni/config"} <= labels
    assert len([c for c in CASES if "-negative-" in c.id]) > len(ROLES)
