"""The bridge end to end: API <-> server <-> bridge WebSocket <-> console client <-> emulator's
console WebSocket <-> emulated Omni-Channel, all real, on loopback."""

from __future__ import annotations

import time

from tests.bridge.kit import AgentConsole, Env, wait_for


def test_login_puts_the_agent_online_in_the_mapped_status(agent: AgentConsole) -> None:
    assert agent.omni()["online"] is False
    agent.login()
    omni = agent.wait_presence("Available")  # Ready -> Available (rule 3)
    assert omni["presence_status"] == "Available"
    view = wait_for(agent.view, lambda v: v["presence_status"] == "Available")
    assert view["state"] == "Ready"
    assert view["console_connected"] is True
    # The echo is recognised: one transition on the Salesforce side, caused by the login.
    history = agent.history()
    salesforce = [h for h in history if h["side"] == "salesforce"]
    assert [(h["from"], h["to"], h["cause"], h["rule"]) for h in salesforce] == [
        ("Offline", "Available", "sync", "3.3")
    ]
    assert salesforce[0]["caused_by_seq"] == history[-1]["seq"]
    assert salesforce[0]["latency_ms"] is not None


def test_login_to_a_state_uses_that_states_mapping(agent: AgentConsole) -> None:
    agent.login("ExtendedAway/Lunch")
    agent.wait_presence("Lunch")
    agent.set_state("Away/Break")  # no minor mapping: falls back to Away's status
    agent.wait_presence("On_Break")


def test_widget_status_change_changes_the_agent_state(agent: AgentConsole) -> None:
    agent.login()
    agent.wait_presence("Available")
    agent.set_status("Lunch")
    agent.wait_state("ExtendedAway/Lunch")
    agent.set_status("On_Break")
    agent.wait_state("Away/Break")
    entry = agent.history()[0]
    assert (entry["side"], entry["to"], entry["cause"], entry["rule"]) == (
        "contact_center",
        "Away/Break",
        "sync",
        "3.2",
    )


def test_widget_offline_logs_the_agent_out(agent: AgentConsole) -> None:
    agent.login()
    agent.wait_presence("Available")
    agent.omni_logout()
    view = agent.wait_state("LoggedOut")
    assert view["logged_in"] is False
    entry = agent.history()[0]
    assert (entry["to"], entry["rule"]) == ("LoggedOut", "3.5")
    # Logging out was Salesforce's doing: nothing is sent back to Salesforce.
    time.sleep(0.3)
    assert agent.omni()["online"] is False


def test_contact_center_logout_takes_omni_offline(agent: AgentConsole) -> None:
    agent.login()
    agent.wait_presence("Available")
    agent.logout()
    agent.wait_presence(None)


def test_accepted_case_makes_the_agent_busy_inbound_and_unroutable(
    env: Env, agent: AgentConsole
) -> None:
    agent.login()
    agent.wait_presence("Available")
    created = env.emulator.post("/emulator/v1/work", json={"channel": "Case", "subject": "Printer"})
    work = created.raise_for_status().json()
    assert work["user_id"] == agent.user_id, work  # the only agent online in Omni
    wait_for(agent.view, lambda v: len(v["open_work_items"]) == 1, what="assigned work")
    assert agent.view()["state"] == "Ready"  # assigned is not accepted

    env.emulator.post(f"/emulator/v1/work/{work['id']}/accept").raise_for_status()
    view = agent.wait_state("Busy/Inbound")
    assert view["busy_reason"] == "work"

    offered = env.supervisor.post("/api/v1/interactions", json={"queue": "support"})
    interaction = offered.raise_for_status().json()
    assert interaction["agent_id"] != agent.agent_id
    assert interaction["status"] == "queued"  # nobody else is Ready in this account

    env.emulator.post(f"/emulator/v1/work/{work['id']}/close").raise_for_status()
    agent.wait_state("Ready")  # back to the state mapped from Available (rule 6)
    # Ready again: the queued call goes to the agent now.
    routed = wait_for(
        lambda: env.supervisor.get(f"/api/v1/interactions/{interaction['id']}").json(),
        lambda i: i["agent_id"] == agent.agent_id,
        what="the queued call offered to the agent",
    )
    assert routed["status"] == "offered"
    env.supervisor.post(f"/api/v1/interactions/{interaction['id']}/decline")


def test_no_echo_loop_commands_match_contact_center_changes(agent: AgentConsole) -> None:
    stats = agent.client.stats
    agent.login()  # command 1: omni_login Available
    agent.wait_presence("Available")
    agent.set_state("Away/Break")  # command 2: On_Break
    agent.wait_presence("On_Break")
    agent.set_status("Lunch")  # Salesforce side: state follows, no command back
    agent.wait_state("ExtendedAway/Lunch")
    agent.set_state("Ready")  # command 3: Available
    agent.wait_presence("Available")
    agent.set_status("Training")  # Salesforce side again
    agent.wait_state("ExtendedAway/Training")
    agent.wait_quiet()
    assert stats.commands_received == 3
    assert stats.commands_executed == 3
    assert stats.command_failures == 0
    status_events = [n for n, _ in agent.client.toolkit_events if n.endswith("StatusChanged")]
    assert len(status_events) == 5  # login, On_Break, Lunch, Available, Training: no extra
    outcomes = stats.ack_outcomes
    assert outcomes.get("echo", 0) >= 3  # our own changes came back and stopped there
    view = agent.view()
    assert (view["state"], view["presence_status"]) == ("ExtendedAway/Training", "Training")


def test_reconnect_replays_unacknowledged_events_once(agent: AgentConsole) -> None:
    client, stats = agent.client, agent.client.stats
    agent.login()
    agent.wait_presence("Available")
    agent.wait_quiet()

    # The bridge's connection drops; the console (and the agent in it) carry on.
    client.pause_bridge()
    wait_for(agent.view, lambda v: v["console_connected"] is False, what="disconnect seen")
    agent.set_status("On_Break")
    agent.set_status("Lunch")
    wait_for(lambda: client.unacked, lambda n: n == 2, what="two events waiting")
    client.resume_bridge()

    agent.wait_state("ExtendedAway/Lunch")
    agent.wait_quiet()
    assert stats.bridge_connects == 2
    # The hello's snapshot covered both events: they were replayed, acknowledged, and not
    # applied a second time.
    assert stats.ack_outcomes.get("superseded") == 2
    history = agent.history()
    assert [h["to"] for h in history if h["side"] == "contact_center"] == [
        "ExtendedAway/Lunch",
        "Ready",
    ]
    assert agent.view()["console_connected"] is True

    # Now both sockets die abruptly while the agent keeps clicking.
    commands_before = stats.commands_received
    client.kill_sockets()
    agent.set_status("Available")
    agent.wait_state("Ready")
    wait_for(lambda: client.ready, bool, what="the console back")
    agent.wait_quiet()
    assert stats.console_connects == 2
    transitions = [h["to"] for h in agent.history() if h["side"] == "contact_center"]
    assert transitions.count("Ready") == 2  # the login and this one, not a replayed copy
    assert stats.commands_received == commands_before  # nothing to send back: no loop


def test_console_reconnect_reconciles_before_anything_else(agent: AgentConsole) -> None:
    agent.login()
    agent.wait_presence("Available")
    agent.wait_quiet()
    agent.client.pause_bridge()
    wait_for(agent.view, lambda v: v["console_connected"] is False, what="disconnect seen")
    # While the console is unwatched the contact-center state changes: the command waits.
    agent.set_state("Away/Break")
    time.sleep(0.3)
    assert agent.omni()["presence_status"] == "Available"
    agent.client.resume_bridge()
    agent.wait_presence("On_Break")  # reconciled on reconnect (rule 12)
    assert agent.view()["state"] == "Away/Break"


def test_a_console_gone_past_the_grace_period_logs_the_agent_out(
    env: Env, agent: AgentConsole
) -> None:
    env.admin.put("/api/v1/settings", json={"session_grace_seconds": 1}).raise_for_status()
    try:
        agent.login()
        agent.wait_presence("Available")
        agent.wait_quiet()
        agent.client.pause_bridge()
        wait_for(agent.view, lambda v: v["console_connected"] is False, what="disconnect seen")
        view = agent.wait_state("LoggedOut", timeout=6)  # rule 12, policy "logout"
        assert agent.history()[0]["cause"] == "session_end"
        assert view["logged_in"] is False
        # The console was still online in Omni: when it comes back, it is taken offline.
        assert agent.omni()["online"] is True
        agent.client.resume_bridge()
        agent.wait_presence(None)
    finally:
        env.admin.put("/api/v1/settings", json={"session_grace_seconds": 60}).raise_for_status()
