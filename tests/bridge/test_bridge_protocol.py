"""The bridge WebSocket protocol itself (docs/bridge-protocol.md), spoken by hand."""

from __future__ import annotations

import contextlib
import json
import uuid
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from presencesync_sandbox.demo import ws_url
from tests.bridge.kit import AgentConsole, Env, wait_for


def _open(env: Env, token: str | None = None) -> ClientConnection:
    url = ws_url(env.stack.api_url) + "/api/v1/bridge"
    if token is not None:
        url += f"?token={token}"
    return connect(url, proxy=None, open_timeout=5)


def _recv(ws: ClientConnection) -> dict[str, Any]:
    return json.loads(ws.recv(timeout=5))


def _hello(session: str, seq: int = 0, **extra: Any) -> str:
    return json.dumps(
        {"type": "hello", "session": session, "seq": seq, "presence_status": None}
        | {"open_work": []}
        | extra
    )


def _closed_with(ws: ClientConnection) -> int | None:
    with pytest.raises(ConnectionClosed) as info:
        while True:
            ws.recv(timeout=5)
    return info.value.rcvd.code if info.value.rcvd else None


def test_unknown_token_is_refused(env: Env) -> None:
    with _open(env) as ws:
        ws.send(_hello("s", token="nope"))
        assert _recv(ws)["code"] == "UNAUTHORIZED"
        assert _closed_with(ws) == 4401


def test_only_agent_tokens_may_bridge(env: Env) -> None:
    with _open(env, env.info["admin_token"]) as ws:
        ws.send(_hello("s"))
        assert _recv(ws)["code"] == "FORBIDDEN"
        assert _closed_with(ws) == 4403


def test_the_console_must_belong_to_the_tokens_agent(env: Env) -> None:
    me, other = env.info["agents"][-1], env.info["agents"][-2]
    with _open(env, me["token"]) as ws:
        ws.send(_hello("s", salesforce_user_id=other["salesforce_user_id"]))
        assert _recv(ws)["code"] == "WRONG_USER"
        assert _closed_with(ws) == 4403


def test_hello_must_come_first(env: Env) -> None:
    me = env.info["agents"][-1]
    with _open(env, me["token"]) as ws:
        ws.send(json.dumps({"type": "event", "seq": 1, "name": "x", "params": {}}))
        assert _recv(ws)["code"] == "HELLO_FIRST"
        assert _closed_with(ws) == 4400


def test_a_replayed_event_is_applied_once_and_a_new_console_replaces_the_old(
    env: Env,
) -> None:
    with contextlib.ExitStack() as sockets:
        _replay_and_replace(env, sockets)


def _replay_and_replace(env: Env, sockets: contextlib.ExitStack) -> None:
    me = env.info["agents"][-1]
    api = env._api(me["token"])
    session = uuid.uuid4().hex
    work = {"work_id": "0Bz000000000ZZZ", "work_item_id": "500000000000ZZZ", "accepted": False}
    event = {
        "type": "event",
        "seq": 1,
        "name": "lightning:omniChannelWorkAssigned",
        "params": {"workId": work["work_id"], "workItemId": work["work_item_id"]},
    }
    first = sockets.enter_context(_open(env, me["token"]))
    first.send(_hello(session))
    welcome = _recv(first)
    assert welcome["type"] == "welcome"
    assert welcome["agent_id"] == me["agent_id"]
    assert {s["developer_name"] for s in welcome["presence_statuses"]} >= {"Available", "Lunch"}
    first.send(json.dumps(event))
    assert _recv(first) == {"type": "event_ack", "seq": 1, "outcome": "applied"}

    # The same console reconnects (its ack got lost, say) and replays the event.
    second = sockets.enter_context(_open(env, me["token"]))
    second.send(_hello(session, open_work=[work]))
    assert _recv(second)["type"] == "welcome"
    assert _closed_with(first) == 4409  # replaced: the old connection is told so
    second.send(json.dumps(event))
    assert _recv(second)["outcome"] == "duplicate"
    view = api.get(f"/api/v1/agents/{me['agent_id']}").json()
    assert [w["id"] for w in view["open_work_items"]] == [work["work_id"]]
    assert view["open_work_items"][0]["channel"] == "Case"  # from the work item's key prefix
    assert view["console_connected"] is True

    # Events older than the hello's reading of the toolkit are covered by its snapshot.
    third = sockets.enter_context(_open(env, me["token"]))
    third.send(_hello(session, seq=5, open_work=[work]))
    assert _recv(third)["snapshot_seq"] == 5
    third.send(json.dumps(event | {"seq": 4}))
    assert _recv(third)["outcome"] == "superseded"
    third.send(json.dumps({"type": "ping"}))
    assert _recv(third) == {"type": "pong"}
    # Toolkit events the core has no use for are acknowledged and dropped.
    third.send(
        json.dumps(
            {"type": "event", "seq": 6, "name": "lightning:omniChannelWorkloadChanged"}
            | {"params": {"configuredCapacity": 10}}
        )
    )
    assert _recv(third)["outcome"] == "ignored"
    # A malformed event is acknowledged as rejected (a buggy bridge must not replay it forever).
    third.send(json.dumps({"type": "event", "seq": 7, "name": 42, "params": []}))
    rejected = _recv(third)
    assert (rejected["seq"], rejected["outcome"]) == (7, "rejected")
    assert rejected["error"]["code"] == "INVALID_EVENT"
    second.close()
    third.close()
    wait_for(
        lambda: api.get(f"/api/v1/agents/{me['agent_id']}").json(),
        lambda v: v["console_connected"] is False,
        what="the disconnect",
    )
    api.close()


def test_a_browser_console_takes_over_from_a_headless_one(env: Env, agent: AgentConsole) -> None:
    entry = next(a for a in env.info["agents"] if a["agent_id"] == agent.agent_id)
    newer, clients = env.console_for(entry)
    try:
        clients.wait_ready()
        wait_for(lambda: agent.client.refused, lambda r: r is not None, what="the old refused")
        assert agent.client.refused is not None
        assert agent.client.refused.code == "4409"
        agent.login()
        agent.wait_presence("Available")
        assert newer.stats.commands_received == 1
        assert agent.client.stats.commands_received == 0
    finally:
        clients.stop()


def test_bridge_js_is_served(env: Env) -> None:
    response = env.admin.get("/static/bridge.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert "omniToolkitAPI" in response.text
