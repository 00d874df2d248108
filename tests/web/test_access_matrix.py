"""Every route of the app x every caller x own/other agent and account: the exact status, and
nothing of anyone else in the answer.

The routes come from the app's router, so a route added without an entry in `MATRIX` fails
`test_every_route_has_a_matrix_entry`. Callers: admin, supervisor, agent (alice, acting on
herself or on bob), no credentials, a bad credential. Targets: the caller's own agent
(alice) or interaction (offered to alice), another one of the same account (bob; an
interaction offered to bob), one of another account (carol; an interaction offered to
carol). API routes are called with `Authorization: Bearer`, pages with the session cookie a
sign-in gives.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.routing import Mount, Route, WebSocketRoute

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

from presencesync.service import Engine
from presencesync.web.app import create_app
from presencesync.web.auth import SESSION_COOKIE

from .conftest import (
    ROOMY_LIMITS,
    Account,
    bearer,
    save_statuses,
    seed,
    sign_in_response,
    valid_config,
)

CALLERS = ("admin", "supervisor", "agent", "none", "bad")
OWN, OTHER, FOREIGN, NO_TARGET = "own", "other", "foreign", "-"
TARGETS = (OWN, OTHER, FOREIGN)
CAROL_SF = "005000000000888AAA"
# What must never show in an answer to Acme's callers (Globex's data).
FOREIGN_MARKERS = ("Carol", CAROL_SF, "Globex")


@dataclass
class World:
    client: TestClient
    acme: Account
    globex: Account
    interactions: dict[str, str] = field(default_factory=dict)  # target -> interaction id

    def agent_for(self, target: str) -> str:
        return {OWN: "alice", OTHER: "bob", FOREIGN: "carol", NO_TARGET: "alice"}[target]

    def token(self, caller: str) -> str | None:
        return {
            "admin": self.acme.admin,
            "supervisor": self.acme.supervisor,
            "agent": self.acme.agents["alice"],
            "none": None,
            "bad": "ps_not-a-real-token-0000000000000000000000",
        }[caller]


# --- expectations -------------------------------------------------------------------------

Expect = Callable[[str, str], int]


def roles(ok: int, *allowed: str) -> Expect:
    """Routes without a target: `ok` for the allowed roles, 403 for the others."""

    def expect(caller: str, target: str) -> int:
        if caller in ("none", "bad"):
            return 401
        return ok if caller in allowed else 403

    return expect


def agent_scoped(caller: str, target: str) -> int:
    if caller in ("none", "bad"):
        return 401
    if caller == "agent":
        return 200 if target == OWN else 403  # an agent token acts on its own agent only
    return 404 if target == FOREIGN else 200


def interaction_read(caller: str, target: str) -> int:
    if caller in ("none", "bad"):
        return 401
    if target == FOREIGN or (caller == "agent" and target == OTHER):
        return 404  # not "forbidden": another's id says nothing about what exists
    return 200


def interaction_action(caller: str, target: str) -> int:
    """Answer, decline, hang up: the offered agent, or staff acting for it."""
    return interaction_read(caller, target)


def public(caller: str, target: str) -> int:
    return 200


def page(ok_roles: tuple[str, ...]) -> Expect:
    def expect(caller: str, target: str) -> int:
        if caller in ("none", "bad"):
            return 303  # to /login
        return 200 if caller in ok_roles else 403

    return expect


def redirect(caller: str, target: str) -> int:
    return 303


def sign_in(caller: str, target: str) -> int:
    return 303 if caller in ("admin", "supervisor", "agent") else 401


@dataclass(frozen=True)
class Entry:
    expect: Expect
    targets: tuple[str, ...] = (NO_TARGET,)
    body: Any = None
    kind: str = "api"  # api | page | public | ws


AGENT_TARGETS = TARGETS
MATRIX: dict[tuple[str, str], Entry] = {
    ("GET", "/api/v1/states"): Entry(roles(200, "admin", "supervisor", "agent")),
    ("PUT", "/api/v1/states"): Entry(
        roles(200, "admin"), body={"minor_states": {"Away": ["Break", "ComfortBreak"]}}
    ),
    # No Salesforce connection in this world: an admin gets the rule's refusal.
    ("POST", "/api/v1/omni/fetch"): Entry(roles(409, "admin")),
    ("GET", "/api/v1/omni/config"): Entry(roles(200, "admin")),
    ("GET", "/api/v1/omni/change-data-capture"): Entry(roles(200, "admin")),
    ("PUT", "/api/v1/omni/config"): Entry(roles(200, "admin"), body="valid_config"),
    ("POST", "/api/v1/omni/reconcile"): Entry(roles(409, "admin")),
    # The preflight answers 200 with its findings (here: no connection to log in with).
    ("POST", "/api/v1/omni/doctor"): Entry(roles(200, "admin")),
    ("POST", "/api/v1/agents"): Entry(
        roles(201, "admin"),
        body={"agent_id": "dave", "name": "Dave", "salesforce_user_id": "005000000000555AAA"},
    ),
    ("GET", "/api/v1/agents"): Entry(roles(200, "admin", "supervisor")),
    ("GET", "/api/v1/agents/{agent_id}"): Entry(agent_scoped, AGENT_TARGETS),
    ("POST", "/api/v1/agents/{agent_id}/login"): Entry(
        agent_scoped, AGENT_TARGETS, body={"state": "Away/Break"}
    ),
    ("POST", "/api/v1/agents/{agent_id}/logout"): Entry(agent_scoped, AGENT_TARGETS),
    ("PUT", "/api/v1/agents/{agent_id}/state"): Entry(
        agent_scoped, AGENT_TARGETS, body={"state": "Away/Break"}
    ),
    ("GET", "/api/v1/agents/{agent_id}/history"): Entry(agent_scoped, AGENT_TARGETS),
    ("POST", "/api/v1/interactions"): Entry(roles(201, "admin", "supervisor"), body={"queue": "q"}),
    ("GET", "/api/v1/interactions/{interaction_id}"): Entry(interaction_read, TARGETS),
    ("POST", "/api/v1/interactions/{interaction_id}/answer"): Entry(interaction_action, TARGETS),
    ("POST", "/api/v1/interactions/{interaction_id}/decline"): Entry(interaction_action, TARGETS),
    ("POST", "/api/v1/interactions/{interaction_id}/hangup"): Entry(interaction_action, TARGETS),
    ("GET", "/api/v1/settings"): Entry(roles(200, "admin", "supervisor")),
    ("PUT", "/api/v1/settings"): Entry(roles(200, "admin"), body={"wrap_seconds": 12}),
    ("WS", "/api/v1/agents/{agent_id}/stream"): Entry(agent_scoped, AGENT_TARGETS, kind="ws"),
    ("WS", "/api/v1/bridge"): Entry(roles(200, "agent"), kind="ws"),
    # Health and metrics: no account data, for probes and scrapers.
    ("GET", "/healthz"): Entry(public, kind="public"),
    ("GET", "/metrics"): Entry(public, kind="public"),
    ("GET", "/api/v1/healthz"): Entry(public, kind="public"),
    ("GET", "/api/v1/metrics"): Entry(public, kind="public"),
    # The API's own description and the static assets are public.
    ("GET", "/openapi.json"): Entry(public, kind="public"),
    ("GET", "/docs"): Entry(public, kind="public"),
    ("GET", "/docs/oauth2-redirect"): Entry(public, kind="public"),
    ("GET", "/static/bridge.js"): Entry(public, kind="public"),
    ("MOUNT", "/static"): Entry(public, kind="public"),
    # Pages: the session cookie; without one, to the sign-in form.
    ("GET", "/"): Entry(redirect, kind="page"),
    ("GET", "/login"): Entry(public, kind="page"),
    ("POST", "/login"): Entry(sign_in, kind="page"),
    ("GET", "/logout"): Entry(redirect, kind="page"),
    ("GET", "/admin/omni-channel"): Entry(page(("admin",)), kind="page"),
    ("GET", "/contactpad"): Entry(page(("agent",)), kind="page"),
    ("GET", "/agents"): Entry(page(("admin", "supervisor")), kind="page"),
}


def _walk(routes: Any, prefix: str = "") -> Any:
    """The app's routes, flattened (FastAPI keeps included routers as nested entries)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _walk(inner.routes, prefix + route.include_context.prefix)
        else:
            yield prefix, route


def app_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every route the app serves (HEAD aside: it follows GET)."""
    found: set[tuple[str, str]] = set()
    for prefix, route in _walk(app.routes):
        path = prefix + getattr(route, "path", "")
        if isinstance(route, WebSocketRoute):
            found.add(("WS", path))
        elif isinstance(route, Mount):
            found.add(("MOUNT", path))
        elif isinstance(route, Route):
            for method in route.methods or ():
                if method != "HEAD":
                    found.add((method, path))
        else:  # a kind of route this test does not know yet: it needs an entry too
            found.add(("?", f"{type(route).__name__} {path}"))
    return found


def test_every_route_has_a_matrix_entry(engine: Engine) -> None:
    served = app_routes(create_app(engine))
    missing = served - set(MATRIX)
    assert not missing, f"routes without an access-matrix entry: {sorted(missing)}"
    stale = set(MATRIX) - served
    assert not stale, f"matrix entries for routes that no longer exist: {sorted(stale)}"


# --- the world each case runs in ---------------------------------------------------------


@pytest.fixture(scope="module")
def matrix_client(engine: Engine) -> Any:
    app = create_app(engine, limits=ROOMY_LIMITS)
    with TestClient(app) as client:
        yield client


def _world(
    engine: Engine,
    client: TestClient,
    with_interactions: bool,
    logged_in: bool = True,
    answered: bool = False,
) -> World:
    client.cookies.clear()
    acme, globex = seed(engine, "Acme"), seed(engine, "Globex")
    engine.create_agent(globex.id, "carol", "Carol", CAROL_SF)
    save_statuses(engine, acme.id)
    world = World(client, acme, globex)
    admin = bearer(acme.admin)
    if not logged_in:
        return world
    client.post("/api/v1/agents/alice/login", headers=admin).raise_for_status()
    if with_interactions:
        own = client.post("/api/v1/interactions", json={"queue": "q"}, headers=admin).json()
        assert own["status"] == "offered" and own["agent_id"] == "alice", own
        other = client.post("/api/v1/interactions", json={"queue": "q"}, headers=admin).json()
        assert other["status"] == "queued", other
        foreign_admin = bearer(globex.admin)
        engine.create_token(globex.id, "agent", "carol")
        client.post("/api/v1/agents/carol/login", headers=foreign_admin).raise_for_status()
        foreign = client.post(
            "/api/v1/interactions", json={"queue": "q"}, headers=foreign_admin
        ).json()
        assert foreign["agent_id"] == "carol", foreign
        world.interactions = {OWN: own["id"], OTHER: other["id"], FOREIGN: foreign["id"]}
    client.post("/api/v1/agents/bob/login", headers=admin).raise_for_status()
    if with_interactions:  # the queued call went to bob when he became routable
        other = client.get(f"/api/v1/interactions/{world.interactions[OTHER]}", headers=admin)
        assert other.json()["agent_id"] == "bob", other.text
    if answered:  # hanging up needs a call in progress
        for target, admin_token in ((OWN, acme.admin), (OTHER, acme.admin), (FOREIGN, None)):
            headers = bearer(admin_token or globex.admin)
            answer = f"/api/v1/interactions/{world.interactions[target]}/answer"
            client.post(answer, headers=headers).raise_for_status()
    return world


def _path(world: World, path: str, target: str) -> str:
    if "{interaction_id}" in path:
        return path.replace("{interaction_id}", world.interactions[target])
    return path.replace("{agent_id}", world.agent_for(target))


def _body(entry: Entry) -> Any:
    return valid_config() if entry.body == "valid_config" else entry.body


def _call_api(world: World, method: str, path: str, caller: str, entry: Entry) -> Any:
    token = world.token(caller)
    headers = bearer(token) if token else {}
    return world.client.request(method, path, json=_body(entry), headers=headers)


def _call_page(world: World, method: str, path: str, caller: str) -> Any:
    client = world.client
    token = world.token(caller)
    if method == "POST" and path == "/login":
        return sign_in_response(client, token or "")
    if caller == "bad":
        client.cookies.set(SESSION_COOKIE, "gAAAAABforged-session")
    elif token is not None:
        assert sign_in_response(client, token).status_code == 303
    return client.request(method, path, follow_redirects=False)


def _call_ws(world: World, path: str, caller: str) -> int:
    """200 when the socket is accepted and speaks, else the close code's 4xx."""
    token = world.token(caller)
    headers = bearer(token) if token and "bridge" not in path else {}
    url = path + (f"?token={token}" if token and "bridge" in path else "")
    try:
        with world.client.websocket_connect(url, headers=headers) as socket:
            if "bridge" in path:
                socket.send_text(json.dumps({"type": "hello", "session": "m", "seq": 0}))
            message = socket.receive_json()
    except WebSocketDisconnect as closed:
        return closed.code - 4000
    if message.get("type") == "error":
        socket_code = {"UNAUTHORIZED": 401, "FORBIDDEN": 403}.get(message.get("code"), 400)
        return socket_code
    assert message["type"] in ("agent", "welcome"), message
    return 200


CASES = [
    pytest.param(method, path, caller, target, id=f"{method} {path} {caller} {target}")
    for (method, path), entry in MATRIX.items()
    for caller in CALLERS
    for target in entry.targets
    if entry.kind != "public" or caller in ("none", "bad")
]


@pytest.mark.parametrize(("method", "path", "caller", "target"), CASES)
def test_access(
    engine: Engine, matrix_client: TestClient, method: str, path: str, caller: str, target: str
) -> None:
    entry = MATRIX[(method, path)]
    world = _world(
        engine,
        matrix_client,
        with_interactions="{interaction_id}" in path,
        logged_in=not path.endswith("/login"),  # logging in needs someone logged out
        answered=path.endswith("/hangup"),
    )
    watched = [(world.acme.id, "bob"), (world.globex.id, "carol")]
    events_before = [engine.event_count(a, agent) for a, agent in watched]
    expected = entry.expect(caller, target)
    url = _path(world, path, target)
    if entry.kind == "ws":
        assert _call_ws(world, url, caller) == expected
        return
    if method == "MOUNT":
        response = world.client.get(url + "/api.js")
    elif entry.kind in ("page",):
        response = _call_page(world, method, url, caller)
    else:
        response = _call_api(world, method, url, caller, entry)
    assert response.status_code == expected, response.text[:500]
    text = response.text
    for marker in FOREIGN_MARKERS:
        assert marker not in text, f"{marker!r} of another account leaked"
    if response.status_code >= 400 and entry.kind == "api":
        # A refusal says nothing about the target beyond the id the caller sent.
        body = response.json()
        assert set(body) == {"error"}, body
        assert "salesforce_user_id" not in text and "005000000000" not in text
    if expected in (401, 403, 404) or target in (OWN, NO_TARGET):
        # Refused, or acting on alice: nothing happened to bob nor to the other account.
        assert [engine.event_count(a, agent) for a, agent in watched] == events_before
