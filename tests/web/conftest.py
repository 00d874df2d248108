"""Fixtures of the web tests: a real engine on a temporary SQLite file, two accounts with
tokens of every role, and the app under a TestClient (which runs the lifespan)."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette nudges towards "httpx2"
    from starlette.testclient import TestClient

from presencesync.bootstrap import build_app, open_engine
from presencesync.service import Engine
from presencesync.web.limits import Limits, Rate

# The shared app makes thousands of requests from one address with a few tokens: the budgets
# stay on (the code path runs) but never bind. test_rate_limits.py checks the real ones.
ROOMY_LIMITS = Limits(api_rate=Rate(1_000_000, 1), login_rate=Rate(1_000_000, 1))

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


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """One store for the run (migrating is the slow part); every test makes its own accounts,
    and accounts share nothing, which is the property under test anyway."""
    path: Path = tmp_path_factory.mktemp("web") / "web.db"
    eng = open_engine(f"sqlite:///{path}")
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
        kwargs.setdefault("background", False)
        kwargs.setdefault("limits", ROOMY_LIMITS)
        return build_app(engine, **kwargs)

    return make


@pytest.fixture(scope="session")
def shared_client(engine: Engine) -> Iterator[TestClient]:
    # Building an app and running its lifespan costs ~0.3 s: share one between tests.
    app = build_app(engine, background=False, limits=ROOMY_LIMITS)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def client(shared_client: TestClient) -> TestClient:
    shared_client.cookies.clear()
    return shared_client


def login_csrf(client: TestClient) -> str:
    """What a browser does first: open the sign-in form (its cookie and its CSRF field)."""
    form = client.get("/login")
    assert form.status_code == 200, form.text
    match = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert match, "the sign-in form has no CSRF field"
    return match.group(1)


def sign_in_response(client: TestClient, token: str, **headers: str) -> Any:
    """Submit the sign-in form as a browser would (after opening it)."""
    return client.post(
        "/login",
        data={"token": token, "csrf_token": login_csrf(client)},
        headers=headers,
        follow_redirects=False,
    )


def page_csrf(client: TestClient, path: str = "/login") -> str:
    """The session's CSRF token, as the pages carry it (`<meta name="csrf-token">`)."""
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', client.get(path).text)
    assert match, f"{path} carries no CSRF token"
    return match.group(1)


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


SEED_STATUSES = (
    ("0N5000000000001AAA", "Available", "Available", ("Case", "Chat")),
    ("0N5000000000002AAA", "Busy", "Busy", ()),
    ("0N5000000000003AAA", "On_Break", "On Break", ()),
    ("0N5000000000004AAA", "Lunch", "Lunch", ()),
)


def save_statuses(engine: Engine, account_id: str) -> None:
    """What a "Fetch Omni-channel configuration" would have stored."""
    from presencesync.domain import PresenceStatus, StatusOption

    engine.save_presence_statuses(
        account_id,
        [
            PresenceStatus(
                id_,
                name,
                label,
                StatusOption.ONLINE if channels else StatusOption.BUSY,
                channels,
            )
            for id_, name, label, channels in SEED_STATUSES
        ],
        "test",
    )


def valid_config() -> dict[str, Any]:
    """A configuration that saves, with one asymmetric map: Lunch -> ExtendedAway/Lunch ->
    On_Break (ExtendedAway/Lunch has no own mapping and falls back to ExtendedAway)."""
    return {
        "enabled": True,
        "presence_mappings": [
            {"presence_status": "Available", "busy": False, "maps_to": None},
            {"presence_status": "Busy", "busy": True, "maps_to": None},
            {"presence_status": "On_Break", "busy": True, "maps_to": "Away/Break"},
            {"presence_status": "Lunch", "busy": True, "maps_to": "ExtendedAway/Lunch"},
        ],
        "state_mappings": [
            {"state": "Ready", "presence_status": "Available"},
            {"state": "Busy", "presence_status": "Busy"},
            {"state": "Wrap", "presence_status": "Busy"},
            {"state": "Away", "presence_status": "On_Break"},
            {"state": "ExtendedAway", "presence_status": "On_Break"},
        ],
    }
