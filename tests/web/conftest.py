"""Fixtures of the web tests: a real engine on a temporary SQLite file, two accounts with
tokens of every role, and the app under a TestClient (which runs the lifespan)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette nudges towards "httpx2"
    from starlette.testclient import TestClient

from presencesync.service import Engine, open_engine
from presencesync.web.app import create_app

SF_USERS = ("005000000000001AAA", "005000000000002AAA", "005000000000003AAA")


@dataclass
class Account:
    id: str
    admin: str
    supervisor: str
    agents: dict[str, str] = field(default_factory=dict)  # agent_id -> token


def seed(engine: Engine, name: str, sf_prefix: str = "005000000000") -> Account:
    account_id = engine.create_account(name)
    account = Account(
        account_id,
        admin=engine.create_token(account_id, "admin"),
        supervisor=engine.create_token(account_id, "supervisor"),
    )
    for n, agent_id in enumerate(("alice", "bob"), start=1):
        engine.create_agent(account_id, agent_id, agent_id.title(), f"{sf_prefix}{n:03d}AAA")
        account.agents[agent_id] = engine.create_token(account_id, "agent", agent_id)
    return account


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = open_engine(f"sqlite:///{tmp_path / 'web.db'}")
    yield eng
    eng.close()


@pytest.fixture
def acme(engine: Engine) -> Account:
    return seed(engine, "Acme")


@pytest.fixture
def globex(engine: Engine) -> Account:
    return seed(engine, "Globex", sf_prefix="005000000009")


@pytest.fixture
def app_factory(engine: Engine) -> Any:
    def make(**kwargs: Any) -> Any:
        kwargs.setdefault("start_background", False)
        return create_app(engine, **kwargs)

    return make


@pytest.fixture
def client(app_factory: Any) -> Iterator[TestClient]:
    with TestClient(app_factory()) as test_client:
        yield test_client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def error_of(response: Any) -> dict[str, Any]:
    """The error object of an error response, checking the shape on the way."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["code"].isupper()
    assert 400 <= response.status_code < 600
    return body["error"]
