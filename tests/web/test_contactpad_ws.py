"""ContactPad's live feed: /api/v1/agents/{agent_id}/stream."""

from __future__ import annotations

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
