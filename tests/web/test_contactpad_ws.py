"""ContactPad's live feed: /api/v1/agents/{agent_id}/stream."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from presencesync.domain import SalesforceSnapshot
from presencesync.service import Engine

from .conftest import Account, bearer, sign_in_response


def _next_agent(ws) -> dict:
    message = ws.receive_json()
    assert message["type"] == "agent", message
    return message["agent"]


def test_stream_sends_the_agent_now_and_after_every_change(
    engine: Engine, client: TestClient, acme: Account
) -> None:
    me = bearer(acme.agents["alice"])
    with client.websocket_connect("/api/v1/agents/alice/stream", headers=me) as ws:
        first = _next_agent(ws)
        assert first["agent_id"] == "alice" and first["state"] == "LoggedOut"
        assert {"logged_in", "since", "presence_status", "open_work_items"} <= set(first)

        client.post("/api/v1/agents/alice/login", headers=me)
        assert _next_agent(ws)["state"] == "Ready"

        client.put("/api/v1/agents/alice/state", json={"state": "Away/Break"}, headers=me)
        assert _next_agent(ws)["state"] == "Away/Break"

        # A change from the Salesforce side reaches ContactPad the same way.
        engine.submit(
            acme.id,
            "alice",
            SalesforceSnapshot(
                at=engine.get_agent(acme.id, "alice").snapshot.since,
                presence_status=None,
                console_connected=True,
            ),
            source="test",
        )
        pushed = _next_agent(ws)
        assert pushed["console_connected"] is True

        ws.send_json({"type": "ping"})
        assert ws.receive_json() == {"type": "pong"}


def test_stream_with_the_session_cookie(client: TestClient, acme: Account) -> None:
    sign_in_response(client, acme.agents["bob"])
    with client.websocket_connect("/api/v1/agents/bob/stream") as ws:
        assert _next_agent(ws)["agent_id"] == "bob"


def test_a_supervisor_may_watch_any_agent_of_the_account(client: TestClient, acme: Account) -> None:
    with client.websocket_connect(
        "/api/v1/agents/bob/stream", headers=bearer(acme.supervisor)
    ) as ws:
        assert _next_agent(ws)["agent_id"] == "bob"


@pytest.mark.parametrize(
    ("path", "who", "code"),
    [
        ("/api/v1/agents/alice/stream", None, 4401),
        ("/api/v1/agents/alice/stream", "ps_wrong", 4401),
        ("/api/v1/agents/bob/stream", "alice", 4403),
        ("/api/v1/agents/carol/stream", "admin", 4404),
    ],
)
def test_stream_refusals(
    engine: Engine,
    client: TestClient,
    acme: Account,
    globex: Account,
    path: str,
    who: str | None,
    code: int,
) -> None:
    engine.create_agent(globex.id, "carol", "Carol", "005000000000888AAA")
    token = {"alice": acme.agents["alice"], "admin": acme.admin}.get(who or "", who)
    headers = bearer(token) if token else {}
    with (
        pytest.raises(WebSocketDisconnect) as info,
        client.websocket_connect(path, headers=headers) as ws,
    ):
        ws.receive_json()
    assert info.value.code == code


def test_other_sites_pages_cannot_open_the_stream(client: TestClient, acme: Account) -> None:
    sign_in_response(client, acme.agents["alice"])
    with (
        pytest.raises(WebSocketDisconnect) as info,
        client.websocket_connect(
            "/api/v1/agents/alice/stream", headers={"Origin": "https://evil.example"}
        ) as ws,
    ):
        ws.receive_json()
    assert info.value.code == 4401


def test_changes_committed_elsewhere_reach_the_feed_by_polling(
    app_factory: Any, acme: Account
) -> None:
    """Another process sharing the store: its commits never reach this app's callback."""
    from presencesync.domain import AgentLoggedIn
    from presencesync.service import open_engine

    store = app_factory().state.engine
    url = str(store.db.url)
    with (
        open_engine(url) as other_process,
        TestClient(app_factory(stream_poll_seconds=0.1)) as client,
        client.websocket_connect(
            "/api/v1/agents/alice/stream", headers=bearer(acme.agents["alice"])
        ) as ws,
    ):
        assert _next_agent(ws)["state"] == "LoggedOut"
        other_process.submit(
            acme.id,
            "alice",
            AgentLoggedIn(at=datetime.now(UTC)),
            source="other",
        )
        assert _next_agent(ws)["state"] == "Ready"


@pytest.fixture
def postgres_schema_url() -> Any:
    """A throw-away PostgreSQL schema (skips without PostgreSQL, fails in CI without it)."""
    import secrets

    import psycopg

    from tests.engine.conftest import postgres_base_url

    base = postgres_base_url()
    assert base is not None
    schema = f"ps_test_{secrets.token_hex(4)}"
    plain = base.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        separator = "&" if "?" in base else "?"
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.mark.postgres
@pytest.mark.timeout(60)
def test_changes_committed_in_another_process_are_pushed_through_postgresql(
    postgres_schema_url: str,
) -> None:
    """Two servers on one PostgreSQL store: a change made through A reaches a ContactPad open
    on B by LISTEN/NOTIFY, long before B's periodic re-read (an hour here) would find it."""
    from presencesync.service import open_engine
    from presencesync.web.app import create_app

    from .conftest import seed

    with open_engine(postgres_schema_url) as engine_a, open_engine(postgres_schema_url) as engine_b:
        acme = seed(engine_a, "Acme")
        me = bearer(acme.agents["alice"])
        app_b = create_app(engine_b, stream_poll_seconds=3600)
        with (
            TestClient(create_app(engine_a)) as server_a,
            TestClient(app_b) as server_b,
            server_b.websocket_connect("/api/v1/agents/alice/stream", headers=me) as ws,
        ):
            assert app_b.state.agent_notifier.listening.wait(10)
            assert _next_agent(ws)["state"] == "LoggedOut"
            server_a.post("/api/v1/agents/alice/login", headers=me).raise_for_status()
            assert _next_agent(ws)["state"] == "Ready"
            server_a.put(
                "/api/v1/agents/alice/state", json={"state": "Away/Break"}, headers=me
            ).raise_for_status()
            assert _next_agent(ws)["state"] == "Away/Break"


def test_the_feed_coalesces_a_burst_and_keeps_the_newest_snapshot() -> None:
    """Many commits of one agent between two turns of the loop: one wake-up, newest state."""
    import asyncio

    from presencesync.domain import new_agent
    from presencesync.web.contactpad_ws import AgentFeed

    async def scenario() -> tuple[int, int | None, bool]:
        feed = AgentFeed()
        feed.bind(asyncio.get_running_loop())
        watch = feed.watch("acc", "alice")
        base = new_agent("alice")
        for version in (3, 5, 4):  # commits can be reported out of order across threads
            feed.notify("acc", "alice", replace(base, version=version))
        feed.notify("acc", "bob", replace(base, version=9))  # nobody watches bob here
        await asyncio.sleep(0)
        version = None if watch.snapshot is None else watch.snapshot.version
        refresh_before = watch.refresh
        feed.notify("acc", "alice", None)  # changed in another process
        await asyncio.sleep(0)
        return int(watch.changed.is_set()), version, watch.refresh and not refresh_before

    woken, version, refresh = asyncio.run(scenario())
    assert woken == 1 and version == 5 and refresh
