"""Issue 10 end to end, through the bridge against the emulator: each Omni logout reason
(a real second console for a duplicate login), a connection error and its recovery, toolkit
calls that reject or never answer, a push time-out, Messaging and Voice work."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from presencesync_sandbox.headless_console import HeadlessConsole, HeadlessConsoles
from tests.bridge.kit import AgentConsole, Env, wait_for


def second_console(env: Env, agent: AgentConsole, **options: Any) -> HeadlessConsoles:
    """The same agent opens Salesforce again: another console, with our bridge in it."""
    client = HeadlessConsole(
        env.stack.emulator_url, agent.user_id, env.stack.api_url, agent.token, **options
    )
    clients = HeadlessConsoles([client]).start()
    clients.wait_ready()
    return clients


def logout_reasons(console: HeadlessConsole) -> list[str | None]:
    return [
        params.get("reason")
        for name, params in console.toolkit_events
        if name.endswith("omniChannelLogout")
    ]


def rules(agent: AgentConsole) -> list[tuple[str, str, str, str | None]]:
    return [(h["side"], h["to"], h["cause"], h["rule"]) for h in agent.history()]


# --- DuplicateLogin ----------------------------------------------------------------------------


@pytest.mark.parametrize("same_browser", [False, True])
def test_a_second_console_takes_over_and_the_agent_stays_in_the_queue(
    env: Env, agent: AgentConsole, same_browser: bool
) -> None:
    agent.login("Away/Break")
    agent.wait_presence("On_Break")
    agent.wait_quiet()
    browser = agent.client.browser if same_browser else None
    second = second_console(env, agent, browser=browser)
    try:
        reason = "DuplicateLoginInSameBrowser" if same_browser else "DuplicateLogin"
        wait_for(lambda: logout_reasons(agent.client), lambda r: r == [reason])
        # The first console stops: the new one is the agent's console now (4409).
        wait_for(lambda: agent.client.refused, lambda r: r is not None, what="first refused")
        assert agent.client.refused is not None and agent.client.refused.code == "4409"
        time.sleep(0.3)
        view = agent.view()
        assert (view["state"], view["logged_in"], view["console_connected"]) == (
            "Away/Break",
            True,
            True,
        )
        assert agent.omni()["presence_status"] == "On_Break"  # still online, in console two
        # The surviving console drives Omni from now on.
        agent.set_state("Ready")
        agent.wait_presence("Available")
        assert second.clients[0].stats.commands_executed >= 1
        assert ("contact_center", "LoggedOut") not in [(s, t) for s, t, _, _ in rules(agent)]
    finally:
        second.stop()


def test_duplicate_login_before_the_new_bridge_connects_is_ignored(
    env: Env, agent: AgentConsole
) -> None:
    """The old console reports the DuplicateLogin logout before the new console's bridge says
    hello: the decision (rule 3.5a) is in the history, the agent stays logged in, and the old
    console runs no command (that would take Omni back)."""
    agent.login()
    agent.wait_presence("Available")
    agent.wait_quiet()
    emulator_only = second_console_without_bridge(env, agent)
    try:
        wait_for(
            lambda: rules(agent),
            lambda r: ("salesforce", "Available", "salesforce", "3.5a") in r,
            what="the 3.5a decision",
        )
        wait_for(agent.view, lambda v: v["console_degraded"] == "displaced", what="degraded")
        agent.set_state("Away/Break")  # the old console refuses: it would steal Omni back
        wait_for(
            lambda: agent.client.stats.command_failures, lambda n: n >= 1, what="refused command"
        )
        view = agent.view()
        assert view["logged_in"] is True and view["console_connected"] is True
        assert agent.omni()["presence_status"] == "Available"  # untouched in console two
    finally:
        emulator_only.close()
        agent.clients.stop()  # displaced: it can no longer take Omni offline for the cleanup


class _PlainConsole:
    """A console tab without our bridge (the emulator's console socket only)."""

    def __init__(self, env: Env, agent: AgentConsole) -> None:
        import asyncio
        import threading

        from presencesync_emulator.console_client import ConsoleClient

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.client = ConsoleClient(env.stack.emulator_url, agent.user_id, widget=True)
        asyncio.run_coroutine_threadsafe(self.client.connect(), self.loop).result(10)

    def close(self) -> None:
        import asyncio

        asyncio.run_coroutine_threadsafe(self.client.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def second_console_without_bridge(env: Env, agent: AgentConsole) -> _PlainConsole:
    return _PlainConsole(env, agent)


def test_duplicate_login_can_log_out_by_setting(env: Env, agent: AgentConsole) -> None:
    env.admin.put("/api/v1/settings", json={"omni_logout_duplicate_login": "logout"})
    try:
        agent.login()
        agent.wait_presence("Available")
        agent.wait_quiet()
        plain = second_console_without_bridge(env, agent)
        try:
            agent.wait_state("LoggedOut")
            assert rules(agent)[0] == ("contact_center", "LoggedOut", "sync", "3.5a")
            # Omni stays online in the other console: the account chose the contact center
            # to log out all the same.
            assert agent.omni()["presence_status"] == "Available"
        finally:
            plain.close()
            agent.clients.stop()
    finally:
        env.admin.put("/api/v1/settings", json={"omni_logout_duplicate_login": "ignore"})


# --- MaintenanceLogout ---------------------------------------------------------------------------


@pytest.fixture
def maintenance(env: Env) -> Iterator[Any]:
    def set_active(active: bool) -> None:
        url = "/emulator/v1/omni/maintenance"
        env.emulator.put(url, json={"active": active}).raise_for_status()

    try:
        yield set_active
    finally:
        set_active(False)


def test_maintenance_keeps_the_agent_in_the_queue_and_reconciles_after(
    agent: AgentConsole, maintenance: Any
) -> None:
    agent.login("Away/Break")
    agent.wait_presence("On_Break")
    agent.wait_quiet()
    maintenance(True)
    wait_for(agent.view, lambda v: v["omni_unavailable"] == "maintenance", what="maintenance")
    view = agent.view()
    assert (view["state"], view["presence_status"]) == ("Away/Break", None)
    assert rules(agent)[0] == ("salesforce", "Offline", "salesforce", "3.5b")
    agent.set_state("Ready")  # during the maintenance: Omni cannot follow yet
    time.sleep(0.3)
    assert agent.omni()["online"] is False
    maintenance(False)  # Omni is back: the console says hello again, Omni is driven
    agent.wait_presence("Available")
    view = wait_for(agent.view, lambda v: v["omni_unavailable"] is None)
    assert view["state"] == "Ready" and view["logged_in"] is True
    assert any(r == "3.5b" for _, _, _, r in rules(agent)[:3])


# --- OmniSupervisorLogout ------------------------------------------------------------------------


def test_supervisor_logout_logs_out_with_cause_supervisor(agent: AgentConsole) -> None:
    agent.login()
    agent.wait_presence("Available")
    agent.wait_quiet()
    agent.omni_logout("OmniSupervisorLogout")
    agent.wait_state("LoggedOut")
    assert rules(agent)[:2] == [
        ("contact_center", "LoggedOut", "supervisor", "3.5c"),
        ("salesforce", "Offline", "supervisor", "3.5c"),
    ]


def test_own_logout_still_logs_out_by_rule_5(agent: AgentConsole) -> None:
    agent.login()
    agent.wait_presence("Available")
    agent.wait_quiet()
    agent.omni_logout()
    agent.wait_state("LoggedOut")
    assert rules(agent)[0] == ("contact_center", "LoggedOut", "sync", "3.5")


# --- ConnectionError -----------------------------------------------------------------------------


def test_connection_error_marks_the_session_degraded_and_recovery_reconciles(
    env: Env, agent: AgentConsole
) -> None:
    agent.login()
    agent.wait_presence("Available")
    agent.wait_quiet()
    url = f"/emulator/v1/users/{agent.user_id}/omni/connection-error"
    env.emulator.put(url, json={"active": True}).raise_for_status()
    try:
        view = wait_for(agent.view, lambda v: v["console_degraded"] == "connection_error")
        assert view["console_connected"] is True and view["state"] == "Ready"
        agent.set_state("ExtendedAway/Lunch")  # the toolkit rejects: Omni cannot follow yet
        wait_for(lambda: agent.client.stats.command_failures, lambda n: n >= 1)
        assert agent.omni()["presence_status"] == "Available"
    finally:
        env.emulator.put(url, json={"active": False}).raise_for_status()
    agent.wait_presence("Lunch")  # the fresh hello reconciles
    wait_for(agent.view, lambda v: v["console_degraded"] is None, what="recovered")


# --- toolkit calls that reject or never answer ---------------------------------------------------


@pytest.fixture
def quick_agent(env: Env) -> Iterator[AgentConsole]:
    """An agent whose console gives up on a silent toolkit quickly."""
    console = env.take_agent(toolkit_timeout=0.5, probe_interval=0.3)
    try:
        yield console
    finally:
        faults = f"/emulator/v1/users/{console.user_id}/omni/toolkit-faults"
        env.emulator.put(
            faults, json={"getAgentWorks": None, "getServicePresenceStatusId": None}
        ).raise_for_status()
        env.release(console)


def faults(env: Env, agent: AgentConsole, **modes: str | None) -> None:
    url = f"/emulator/v1/users/{agent.user_id}/omni/toolkit-faults"
    env.emulator.put(url, json=modes).raise_for_status()


def accept_a_case(env: Env, agent: AgentConsole) -> str:
    work = env.emulator.post("/emulator/v1/work", json={"channel": "Case", "subject": "x"})
    work.raise_for_status()
    assert work.json()["user_id"] == agent.user_id
    env.emulator.post(f"/emulator/v1/work/{work.json()['id']}/accept").raise_for_status()
    agent.wait_state("Busy/Inbound")
    return str(work.json()["id"])


def test_hello_with_rejecting_get_agent_works_keeps_the_known_work(
    env: Env, quick_agent: AgentConsole
) -> None:
    agent = quick_agent
    agent.login()
    agent.wait_presence("Available")
    work_id = accept_a_case(env, agent)
    faults(env, agent, getAgentWorks="reject")
    connects = agent.client.stats.bridge_connects
    agent.client.kill_sockets()
    wait_for(lambda: agent.client.stats.bridge_connects, lambda n: n > connects, what="hello")
    time.sleep(0.3)
    view = agent.view()
    assert view["state"] == "Busy/Inbound"  # unknown work is not "no work"
    assert [w["id"] for w in view["open_work_items"]] == [work_id]
    faults(env, agent, getAgentWorks=None)
    env.emulator.post(f"/emulator/v1/work/{work_id}/close").raise_for_status()
    agent.wait_state("Ready")


def test_hello_while_offline_when_both_reads_reject(env: Env, quick_agent: AgentConsole) -> None:
    """Offline, getServicePresenceStatusId rejects (documented) and getAgentWorks may too
    (faulted here): the hello still goes out, and says offline."""
    agent = quick_agent
    faults(env, agent, getAgentWorks="reject_when_offline")
    agent.client.kill_sockets()
    wait_for(lambda: agent.client.ready, bool, what="the console back")
    agent.login()  # an offline, logged-out agent logs in: the bridge drives Omni online
    agent.wait_presence("Available")


def test_a_toolkit_that_never_answers_does_not_block_the_hello(
    env: Env, quick_agent: AgentConsole
) -> None:
    agent = quick_agent
    agent.login()
    agent.wait_presence("Available")
    agent.wait_quiet()
    faults(env, agent, getServicePresenceStatusId="hang", getAgentWorks="hang")
    connects = agent.client.stats.bridge_connects
    agent.client.kill_sockets()
    # The hello went out with what was known (status and work unknown) ...
    wait_for(lambda: agent.client.stats.bridge_connects, lambda n: n > connects, what="hello")
    view = wait_for(agent.view, lambda v: v["console_degraded"] == "toolkit_unresponsive")
    assert view["console_connected"] is True
    assert (view["state"], view["presence_status"]) == ("Ready", "Available")  # kept
    # ... and when the toolkit answers again, a fresh hello reconciles.
    faults(env, agent, getServicePresenceStatusId=None, getAgentWorks=None)
    wait_for(agent.view, lambda v: v["console_degraded"] is None, what="recovered", timeout=8)


# --- push time-out -------------------------------------------------------------------------------


@pytest.fixture
def push_timeout(env: Env) -> Iterator[Any]:
    def configure(**settings: Any) -> None:
        env.emulator.put("/emulator/v1/presence-config", json=settings).raise_for_status()

    created: list[str] = []
    try:
        yield configure, created
    finally:
        configure(push_timeout_seconds=0, push_timeout_status=None)
        for item in created:  # nobody gets it later
            env.emulator.post(f"/emulator/v1/work/{item}/cancel")


@pytest.mark.parametrize("status", ["On_Break", None])
def test_push_timeout_frees_the_agent(
    env: Env, agent: AgentConsole, push_timeout: Any, status: str | None
) -> None:
    """With a status on push time-out the agent follows it (OmniPushTimeout); without one
    Salesforce raises no work event at all: the bridge notices the work is gone."""
    configure, created = push_timeout
    configure(push_timeout_seconds=1, push_timeout_status=status)
    agent.login()
    agent.wait_presence("Available")
    work = env.emulator.post("/emulator/v1/work", json={"channel": "Case", "subject": "rings"})
    work.raise_for_status()
    created.append(work.json()["work_item_id"])
    assert work.json()["user_id"] == agent.user_id
    wait_for(agent.view, lambda v: len(v["open_work_items"]) == 1, what="work assigned")
    view = wait_for(agent.view, lambda v: v["open_work_items"] == [], what="work gone", timeout=8)
    record = env.emulator.get(f"/emulator/v1/work/{work.json()['id']}").json()
    assert record["status"] == "DeclinedOnPushTimeout"
    if status is None:
        assert view["state"] == "Ready" and agent.omni()["presence_status"] == "Available"
    else:
        agent.wait_state("Away/Break")  # On_Break -> Away/Break (rule 3.2)
        assert agent.omni()["presence_status"] == "On_Break"


# --- MessagingSession and VoiceCall --------------------------------------------------------------


@pytest.mark.parametrize(("channel", "prefix"), [("Messaging", "0Mw"), ("Voice", "0LQ")])
def test_messaging_and_voice_work_put_the_agent_in_busy_inbound(
    env: Env, agent: AgentConsole, channel: str, prefix: str
) -> None:
    agent.login()
    agent.wait_presence("Available")
    work = env.emulator.post("/emulator/v1/work", json={"channel": channel, "subject": "hi"})
    work.raise_for_status()
    assert work.json()["work_item_id"].startswith(prefix)
    env.emulator.post(f"/emulator/v1/work/{work.json()['id']}/accept").raise_for_status()
    view = agent.wait_state("Busy/Inbound")
    assert view["open_work_items"] == [
        {"id": work.json()["id"], "channel": channel, "status": "Opened"}
    ]
    env.emulator.post(f"/emulator/v1/work/{work.json()['id']}/close").raise_for_status()
    agent.wait_state("Ready")
