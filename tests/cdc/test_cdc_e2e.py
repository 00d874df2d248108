"""Change Data Capture end to end: the server's runner subscribes over the emulator's Pub/Sub API
(gRPC) and the engine applies what Salesforce committed, with or without a console."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from presencesync.store import tables
from presencesync_sandbox.demo import DemoStack
from presencesync_sandbox.headless_console import HeadlessConsole, HeadlessConsoles
from tests.bridge.kit import wait_for


class Agent:
    def __init__(self, stack: DemoStack, entry: dict[str, Any]) -> None:
        self.stack = stack
        self.agent_id = entry["agent_id"]
        self.user = entry["salesforce_user_id"]
        self.token = entry["token"]
        headers = {"Authorization": f"Bearer {stack.info['admin_token']}"}
        self.api = httpx.Client(
            base_url=stack.api_url + "/api/v1", headers=headers, timeout=10, trust_env=False
        )
        self.emu = httpx.Client(
            base_url=stack.emulator_url + "/emulator/v1", timeout=10, trust_env=False
        )

    def view(self) -> dict[str, Any]:
        return self.api.get(f"/agents/{self.agent_id}").raise_for_status().json()

    def history(self) -> list[dict[str, Any]]:
        url = f"/agents/{self.agent_id}/history"
        return list(reversed(self.api.get(url, params={"limit": 500}).raise_for_status().json()))

    def omni(self, action: str, status: str | None = None) -> None:
        base = f"/users/{self.user}/omni"
        if action == "status":
            self.emu.put(f"{base}/status", json={"presence_status": status}).raise_for_status()
        elif action == "login":
            self.emu.post(f"{base}/login", json={"presence_status": status}).raise_for_status()
        else:
            self.emu.post(f"{base}/logout").raise_for_status()

    def wait_view(self, check: Any, what: str, timeout: float = 10.0) -> dict[str, Any]:
        return wait_for(self.view, check, timeout, what)

    def cdc_events(self) -> list[Any]:
        log = tables.event_log
        with self.stack.engine.db.connect() as conn:
            return conn.execute(
                sa.select(log.c.event, log.c.outcome)
                .where(log.c.agent_id == self.agent_id, log.c.source == "cdc")
                .order_by(log.c.id)
            ).all()

    def close(self) -> None:
        self.api.close()
        self.emu.close()


@pytest.fixture
def agents(cdc_stack: DemoStack) -> Iterator[list[Agent]]:
    taken = getattr(cdc_stack, "_taken", 0)
    entries = cdc_stack.info["agents"][taken : taken + 2]
    assert len(entries) == 2, "the module's stack has too few agents left"
    cdc_stack._taken = taken + 2  # type: ignore[attr-defined]
    made = [Agent(cdc_stack, entry) for entry in entries]
    yield made
    for agent in made:
        agent.close()


def _subscribed(stack: DemoStack) -> None:
    """Both topics subscribed (the runner polls for the account, then opens two streams), and
    the first read over REST done: the subscription says it is streaming."""
    with httpx.Client(base_url=stack.emulator_url, trust_env=False, timeout=5) as emu:
        wait_for(
            lambda: {s["topic"] for s in emu.get("/emulator/v1/pubsub").json()["streams"]},
            lambda topics: len(topics) == 2,
            15,
            "both change event topics subscribed",
        )
    wait_for(
        lambda: stack.engine.get_cdc_status(_account(stack)),
        lambda status: status is not None and status.state == "streaming",
        15,
        "the subscription streaming",
    )


def _salesforce_side(history: list[dict[str, Any]]) -> list[tuple[str, str, str | None]]:
    return [(h["from"], h["to"], h["channel"]) for h in history if h["side"] == "salesforce"]


def test_a_status_change_and_a_logout_reach_the_contact_center_with_no_console(
    cdc_stack: DemoStack, agents: list[Agent]
) -> None:
    _subscribed(cdc_stack)
    agent = agents[0]
    agent.api.post(f"/agents/{agent.agent_id}/login").raise_for_status()
    view = agent.view()
    assert view["console_connected"] is False and view["state"] == "Ready"
    # The Omni login presencesync asked for cannot reach a console; the agent logs in to
    # Omni-Channel elsewhere, and CDC sees it (the same status: taken as our command's echo).
    agent.omni("login", "Available")
    agent.wait_view(lambda v: v["presence_status"] == "Available", "Omni login over CDC")

    agent.omni("status", "Lunch")
    view = agent.wait_view(lambda v: v["state"] == "ExtendedAway/Lunch", "rule 2 over CDC")
    assert view["presence_status"] == "Lunch"
    assert view["salesforce_observed_via"] == "change_data_capture"

    agent.omni("logout")  # rule 5, with the tab closed
    view = agent.wait_view(lambda v: not v["logged_in"], "rule 5 over CDC")
    assert view["presence_status"] is None
    history = agent.history()
    assert _salesforce_side(history) == [
        ("Offline", "Available", "change_data_capture"),
        ("Available", "Lunch", "change_data_capture"),
        ("Lunch", "Offline", "change_data_capture"),
    ]
    logout = [h for h in history if h["side"] == "contact_center"][-1]
    assert (logout["to"], logout["rule"], logout["cause"]) == ("LoggedOut", "3.5", "sync")
    assert all(h["drift"] is None for h in history)  # no console: no channel to disagree with


def _console(stack: DemoStack, agent: Agent) -> tuple[HeadlessConsole, HeadlessConsoles]:
    client = HeadlessConsole(
        stack.emulator_url, agent.user, stack.api_url, agent.token, name=agent.agent_id
    )
    clients = HeadlessConsoles([client]).start()
    clients.wait_ready(15)
    return client, clients


def test_a_change_seen_by_the_bridge_and_over_cdc_is_one_transition(
    cdc_stack: DemoStack, agents: list[Agent]
) -> None:
    _subscribed(cdc_stack)
    agent = agents[0]
    _client, clients = _console(cdc_stack, agent)
    try:
        agent.api.post(f"/agents/{agent.agent_id}/login").raise_for_status()
        agent.wait_view(lambda v: v["presence_status"] == "Available", "Omni login (bridge)")
        agent.omni("status", "Lunch")
        agent.wait_view(lambda v: v["state"] == "ExtendedAway/Lunch", "rule 2")
        # Both channels have reported the change once CDC's event is in the log.
        wait_for(
            agent.cdc_events,
            lambda rows: any(r.event.get("presence_status") == "Lunch" for r in rows),
            10,
            "CDC's report of Lunch",
        )
        assert agent.view()["salesforce_observed_via"] == "console"
        history = agent.history()
        sides = _salesforce_side(history)
        # One transition per change. The bridge normally reports first (CDC waits a moment
        # for it while a console is connected) and CDC's report is a duplicate.
        assert [(f, t) for f, t, _ in sides] == [("Offline", "Available"), ("Available", "Lunch")]
        assert sides == [("Offline", "Available", "bridge"), ("Available", "Lunch", "bridge")]
        outcomes = {r.event.get("presence_status"): r.outcome for r in agent.cdc_events()}
        assert outcomes == {"Available": "duplicate", "Lunch": "duplicate"}
        cc = [h for h in history if h["side"] == "contact_center"]
        assert [h["to"] for h in cc] == ["Ready", "ExtendedAway/Lunch"]
        assert all(h["drift"] is None for h in history)
    finally:
        clients.stop()


def test_a_change_the_connected_bridge_missed_is_applied_from_cdc_as_drift(
    cdc_stack: DemoStack, agents: list[Agent]
) -> None:
    _subscribed(cdc_stack)
    agent = agents[0]
    client, clients = _console(cdc_stack, agent)
    original = client._on_toolkit_event
    dropped: list[str] = []

    def forgetful(name: str, params: dict[str, Any]) -> None:
        # A console that misses one status event (a bug in a toolkit, a frozen tab).
        if name.endswith("StatusChanged") and params.get("statusApiName") == "On_Break":
            dropped.append(name)
            return
        original(name, params)

    try:
        agent.api.post(f"/agents/{agent.agent_id}/login").raise_for_status()
        agent.wait_view(lambda v: v["presence_status"] == "Available", "Omni login (bridge)")
        client._on_toolkit_event = forgetful  # type: ignore[method-assign]
        agent.omni("status", "On_Break")
        view = agent.wait_view(lambda v: v["state"] == "Away/Break", "the change, from CDC")
        assert dropped and view["console_connected"] is True
        (entry,) = [h for h in agent.history() if h["to"] == "On_Break"]
        assert entry["channel"] == "change_data_capture"
        assert entry["drift"]["code"] == "BRIDGE_DID_NOT_REPORT"
        assert "Available" in entry["drift"]["message"]
    finally:
        clients.stop()


def test_a_broken_grpc_stream_reconnects(cdc_stack: DemoStack, agents: list[Agent]) -> None:
    _subscribed(cdc_stack)
    agent = agents[0]
    with httpx.Client(base_url=cdc_stack.emulator_url, trust_env=False, timeout=5) as emu:
        before = emu.get("/emulator/v1/pubsub").json()["subscriptions_opened"]
        broken = emu.post(
            "/emulator/v1/pubsub/faults", json={"abort_streams": True, "refuse_next": 2}
        ).json()
        assert broken["aborted"] >= 2
        # Changes committed while the streams are down are delivered after the reconnect.
        agent.omni("login", "Available")
        agent.omni("status", "Training")
        wait_for(
            lambda: emu.get("/emulator/v1/pubsub").json(),
            lambda s: s["subscriptions_opened"] >= before + 2 and len(s["streams"]) == 2,
            30,
            "the subscriber back on both topics",
        )
    view = agent.wait_view(lambda v: v["presence_status"] == "Training", "changes after reconnect")
    assert view["logged_in"] is False  # Omni login by hand does not log in the contact center
    sides = _salesforce_side(agent.history())
    assert sides == [
        ("Offline", "Available", "change_data_capture"),
        ("Available", "Training", "change_data_capture"),
    ]
    status = cdc_stack.engine.get_cdc_status(_account(cdc_stack))
    assert status is not None
    wait_for(
        lambda: cdc_stack.engine.get_cdc_status(_account(cdc_stack)),
        lambda s: s is not None and s.state == "streaming",
        10,
        "the subscription reported streaming again",
    )


def test_agent_work_over_cdc_with_no_console(cdc_stack: DemoStack, agents: list[Agent]) -> None:
    _subscribed(cdc_stack)
    agent, _other = agents
    agent.api.post(f"/agents/{agent.agent_id}/login").raise_for_status()
    agent.omni("login", "Available")
    agent.wait_view(lambda v: v["presence_status"] == "Available", "Omni login over CDC")
    # Omni routes the case to a free agent: make ours the only one online.
    with httpx.Client(base_url=cdc_stack.emulator_url, trust_env=False, timeout=5) as emu:
        for entry in cdc_stack.info["agents"]:
            if entry["agent_id"] != agent.agent_id:
                emu.post(f"/emulator/v1/users/{entry['salesforce_user_id']}/omni/logout")
        work = emu.post("/emulator/v1/work", json={"channel": "Case", "subject": "CDC"}).json()
        assert work["status"] == "Assigned", work
        agent.wait_view(lambda v: len(v["open_work_items"]) == 1, "work assigned over CDC")
        emu.post(f"/emulator/v1/work/{work['id']}/accept").raise_for_status()
        view = agent.wait_view(lambda v: v["state"] == "Busy/Inbound", "rule 6 over CDC")
        assert view["open_work_items"][0]["status"] == "Opened"
        emu.post(f"/emulator/v1/work/{work['id']}/close").raise_for_status()
        agent.wait_view(lambda v: v["state"] == "Ready" and not v["open_work_items"], "closed")


def test_the_admin_page_and_settings_say_how_omni_is_observed(cdc_stack: DemoStack) -> None:
    headers = {"Authorization": f"Bearer {cdc_stack.info['admin_token']}"}
    with httpx.Client(base_url=cdc_stack.api_url, headers=headers, trust_env=False) as api:
        settings = api.get("/api/v1/settings").json()
        assert settings["change_data_capture"] is True
        status = wait_for(
            lambda: api.get("/api/v1/omni/change-data-capture").json(),
            lambda s: s["subscription"] is not None and s["subscription"]["state"] == "streaming",
            15,
            "the subscription's state",
        )
        assert status["enabled"] is True
        assert status["pubsub_endpoint"].startswith("grpc://127.0.0.1:")
        assert status["topics"] == [
            "/data/UserServicePresenceChangeEvent",
            "/data/AgentWorkChangeEvent",
        ]


def _account(stack: DemoStack) -> str:
    principal = stack.engine.resolve_token(stack.info["admin_token"])
    assert principal is not None
    return principal.account_id


def test_a_replay_id_past_retention_is_a_gap_read_over_rest(
    cdc_stack: DemoStack, agents: list[Agent]
) -> None:
    """Off long enough for the stored replay id to leave the retention window: Salesforce
    refuses it, and what happened meanwhile is read over REST, then the stream goes on."""
    _subscribed(cdc_stack)
    agent = agents[0]
    headers = {"Authorization": f"Bearer {cdc_stack.info['admin_token']}"}
    with (
        httpx.Client(base_url=cdc_stack.api_url, headers=headers, trust_env=False) as api,
        httpx.Client(base_url=cdc_stack.emulator_url, trust_env=False) as emu,
    ):
        api.put("/api/v1/settings", json={"change_data_capture": False}).raise_for_status()
        wait_for(
            lambda: emu.get("/emulator/v1/pubsub").json()["streams"],
            lambda streams: streams == [],
            15,
            "the streams closed",
        )
        agent.omni("login", "Lunch")  # nobody listening
        emu.put("/emulator/v1/pubsub/settings", json={"retention_seconds": 1}).raise_for_status()
        time.sleep(1.5)
        try:
            api.put("/api/v1/settings", json={"change_data_capture": True}).raise_for_status()
            view = agent.wait_view(lambda v: v["presence_status"] == "Lunch", "read over REST", 20)
        finally:
            emu.put("/emulator/v1/pubsub/settings", json={"retention_seconds": 259200})
        assert _salesforce_side(agent.history()) == [("Offline", "Lunch", "rest")]
        _subscribed(cdc_stack)
        agent.omni("status", "Available")  # and the stream goes on, from LATEST
        view = agent.wait_view(lambda v: v["presence_status"] == "Available", "after the gap")
        assert view["salesforce_observed_via"] == "change_data_capture"


def test_turning_it_off_stops_the_subscription(cdc_stack: DemoStack) -> None:
    """Last in the module: the streams close when the setting goes off, and come back."""
    _subscribed(cdc_stack)
    headers = {"Authorization": f"Bearer {cdc_stack.info['admin_token']}"}
    with (
        httpx.Client(base_url=cdc_stack.api_url, headers=headers, trust_env=False) as api,
        httpx.Client(base_url=cdc_stack.emulator_url, trust_env=False) as emu,
    ):
        api.put("/api/v1/settings", json={"change_data_capture": False}).raise_for_status()
        wait_for(
            lambda: emu.get("/emulator/v1/pubsub").json()["streams"],
            lambda streams: streams == [],
            15,
            "the streams closed",
        )
        state = cdc_stack.engine.get_cdc_status(_account(cdc_stack))
        assert state is not None and state.state == "stopped"
        api.put("/api/v1/settings", json={"change_data_capture": True}).raise_for_status()
        _subscribed(cdc_stack)
