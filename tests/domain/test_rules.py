"""One test (or a few) per rule of DESIGN.md section 3, with the worked example's settings."""

from __future__ import annotations

from dataclasses import replace

import pytest

from presencesync.domain import (
    AgentLoggedIn,
    AgentLoggedOut,
    AgentSnapshot,
    BusyReason,
    CallAnswered,
    CallEnded,
    CommandResult,
    ConsoleDisconnected,
    InteractionOffered,
    OmniLoggedOut,
    OpenWork,
    Outcome,
    PresenceChanged,
    Rejected,
    SalesforceSnapshot,
    SessionGraceExpired,
    SetPresence,
    StateCatalog,
    StateChangeRequested,
    StatusChangeReason,
    SyncSettings,
    WorkAccepted,
    WorkClosed,
    WrapEnded,
    decide,
    is_routable,
    new_agent,
    validate_config,
)
from presencesync.domain.states import AWAY, BUSY_INBOUND, LOGGED_OUT, READY, WRAP_AUTO
from tests.domain.support import (
    EXAMPLE_RAW,
    Sim,
    Step,
    at,
    example_config,
    example_statuses,
    logged_in_sim,
    s,
)

CONFIG = example_config()


def on_call(sim: Sim, call: str = "c1") -> None:
    assert sim.apply(InteractionOffered(at=sim.now(), interaction_id=call)) is not None
    assert sim.external_cc(CallAnswered(at=sim.now(), interaction_id=call))
    sim.run_until_quiet()


# --- 3.1 / 3.2 ----------------------------------------------------------------------------------


def test_rule_1_state_change_sets_the_mapped_presence_unless_already_there() -> None:
    sim = logged_in_sim()
    step = Step(sim)
    sim.external_cc(StateChangeRequested(at=sim.now(), state=s("Away")))
    sim.run_until_quiet()
    assert step.salesforce_commands == ["set_presence On_Break"]
    step = Step(sim)
    # Away/Break has no row of its own: it falls back to Away's On_Break, already set.
    sim.external_cc(StateChangeRequested(at=sim.now(), state=s("Away/Break")))
    sim.run_until_quiet()
    assert step.salesforce_commands == []
    assert sim.sf.presence == "On_Break"


def test_rule_2_presence_change_sets_the_mapped_state() -> None:
    sim = logged_in_sim(state="Away/Break")
    sim.external_sf(sim.sf.agent_set_status("Busy", sim.now()))
    sim.run_until_quiet()
    assert sim.agent.state == AWAY  # Busy: no Maps to, Busy selected -> Away
    assert sim.sf.presence == "Busy"  # and Omni is not pushed to On_Break (Away's mapping)


def test_rule_2_no_needless_change_when_the_state_already_maps_to_the_status() -> None:
    """ExtendedAway/Meeting maps (through its major) to Busy. Omni moving to Busy must not
    turn it into Away (Busy's own mapping): the current state already maps to Busy."""
    agent = replace(logged_in_sim(state="ExtendedAway/Meeting").agent, presence="Lunch")
    decision = decide(agent, PresenceChanged(at=at(50), seq=50, presence_status="Busy"), CONFIG)
    assert decision.agent.state == s("ExtendedAway/Meeting")
    assert decision.agent.presence == "Busy"
    assert decision.commands == ()
    # From a state that maps elsewhere, Busy is followed as usual.
    moved = decide(
        replace(agent, state=s("ExtendedAway/Lunch")),
        PresenceChanged(at=at(51), seq=51, presence_status="Busy"),
        CONFIG,
    )
    assert moved.agent.state == AWAY


def test_rule_2_keeps_a_minor_state_whose_mapping_is_the_new_status() -> None:
    """Away/ComfortBreak maps (through Away) to On_Break, whose own Maps to is Away/Break: an
    agent in Away/ComfortBreak whom a supervisor puts (back) in On_Break stays in
    Away/ComfortBreak."""
    agent = replace(logged_in_sim(state="Away/ComfortBreak").agent, presence="Busy")
    back = decide(agent, PresenceChanged(at=at(51), seq=51, presence_status="On_Break"), CONFIG)
    assert back.agent.state == s("Away/ComfortBreak")
    assert back.commands == ()


# --- 3.3 / 3.4 / 3.5 ---------------------------------------------------------------------------


def test_rule_3_login_goes_online_in_the_status_of_the_login_state() -> None:
    decision = decide(new_agent("a"), AgentLoggedIn(at=at(0), state=s("Away/Break")), CONFIG)
    assert [(type(c).__name__, c.presence_status) for c in decision.commands] == [  # type: ignore[attr-defined]
        ("OmniLogin", "On_Break")
    ]


def test_rule_3_login_refuses_a_system_state_and_a_second_login() -> None:
    with pytest.raises(Rejected) as raised:
        decide(new_agent("a"), AgentLoggedIn(at=at(0), state=BUSY_INBOUND), CONFIG)
    assert raised.value.code == "STATE_NOT_SELECTABLE"
    agent = decide(new_agent("a"), AgentLoggedIn(at=at(0)), CONFIG).agent
    with pytest.raises(Rejected) as raised:
        decide(agent, AgentLoggedIn(at=at(1)), CONFIG)
    assert raised.value.code == "ALREADY_LOGGED_IN"


def test_rule_4_logout_logs_out_of_omni() -> None:
    sim = logged_in_sim()
    step = Step(sim)
    sim.external_cc(AgentLoggedOut(at=sim.now()))
    sim.run_until_quiet()
    assert step.salesforce_commands == ["omni_logout"]
    assert sim.sf.presence is None and sim.agent.state == LOGGED_OUT


def test_rule_5_omni_offline_logs_out_of_the_contact_center() -> None:
    sim = logged_in_sim()
    step = Step(sim)
    sim.external_sf(sim.sf.agent_logout(sim.now()))
    sim.run_until_quiet()
    assert sim.agent.state == LOGGED_OUT
    assert step.commands == ["log_out"]
    assert step.decisions[0].transitions[-1].rule == "3.5"


# --- 3.6 -----------------------------------------------------------------------------------------


def test_rule_6_busy_inbound_until_the_last_work_item_closes_then_the_mapped_state() -> None:
    sim = logged_in_sim()
    for _ in range(2):
        sim.external_sf(sim.sf.assign_work(sim.now()))
    sim.run_until_quiet()
    first, second = sorted(sim.sf.work)
    sim.external_sf(sim.sf.accept_work(first, sim.now()))
    sim.external_sf(sim.sf.accept_work(second, sim.now()))
    sim.run_until_quiet()
    assert sim.agent.state == BUSY_INBOUND
    # The agent may change Omni status freely while working: nothing is set back.
    step = Step(sim)
    sim.external_sf(sim.sf.agent_set_status("Lunch", sim.now()))
    sim.run_until_quiet()
    assert step.salesforce_commands == []
    assert sim.agent.state == BUSY_INBOUND and sim.sf.presence == "Lunch"
    sim.external_sf(sim.sf.close_work(first, sim.now()))
    sim.run_until_quiet()
    assert sim.agent.state == BUSY_INBOUND  # one item still open
    sim.external_sf(sim.sf.close_work(second, sim.now()))
    sim.run_until_quiet()
    assert sim.agent.state == s("ExtendedAway/Lunch")  # mapped from the latest status
    assert sim.sf.presence == "Lunch"


def test_rule_6_agent_may_leave_busy_inbound_by_hand_but_stays_unroutable() -> None:
    """Reading of rule 6 (DESIGN.md does not say): Busy/Inbound is a system state, but the core
    lets the agent pick another state while Salesforce work is open (rule 1 then applies).
    Section 6 still holds: open work keeps the agent unroutable, and closing it does not move
    the agent again (the return of rule 6 is only from Busy/Inbound)."""
    sim = logged_in_sim()
    sim.external_sf(sim.sf.assign_work(sim.now()))
    sim.run_until_quiet()
    (work_id,) = sim.sf.work
    sim.external_sf(sim.sf.accept_work(work_id, sim.now()))
    sim.run_until_quiet()
    assert sim.external_cc(StateChangeRequested(at=sim.now(), state=READY))
    sim.run_until_quiet()
    assert sim.agent.state == READY and sim.sf.presence == "Available"
    assert not is_routable(sim.agent)
    with pytest.raises(Rejected):
        decide(sim.agent, InteractionOffered(at=sim.now(), interaction_id="c2"), CONFIG)
    sim.external_sf(sim.sf.close_work(work_id, sim.now()))
    sim.run_until_quiet()
    assert sim.agent.state == READY and is_routable(sim.agent)


def test_rule_6_work_events_apply_in_any_order() -> None:
    agent = logged_in_sim().agent
    closed = decide(agent, WorkClosed(at=at(50), work_id="w1"), CONFIG).agent
    late = decide(closed, WorkAccepted(at=at(51), work_id="w1"), CONFIG)
    assert late.outcome is Outcome.IGNORED
    assert late.agent.state == READY and is_routable(late.agent)


# --- 3.7 ------------------------------------------------------------------------------------------


def asymmetric_agent() -> tuple[AgentSnapshot, str]:
    """An agent in Wrap/Auto (-> Busy) with a set_presence Busy in flight; Busy maps back to
    Away, so following the echo would be wrong."""
    sim = logged_in_sim()
    on_call(sim)
    sim.external_cc(CallEnded(at=sim.now(), interaction_id="c1"))
    (pending,) = sim.agent.pending
    assert pending.presence_status == "Busy" and sim.agent.state == WRAP_AUTO
    return sim.agent, pending.command_id


def test_rule_7_echo_is_recognised_by_its_command_id() -> None:
    agent, command_id = asymmetric_agent()
    decision = decide(
        agent,
        PresenceChanged(
            at=at(500),
            seq=500,
            presence_status="Busy",
            reason=StatusChangeReason.TOOLKIT,
            command_id=command_id,
        ),
        CONFIG,
    )
    assert decision.outcome is Outcome.ECHO
    assert decision.agent.state == WRAP_AUTO and decision.agent.presence == "Busy"
    assert decision.commands == () and decision.agent.pending == ()
    (entry,) = decision.transitions
    assert (entry.cause.value, entry.rule, entry.to) == ("sync", "3.1", "Busy")


def test_rule_7_echo_is_recognised_by_its_reason_when_the_bridge_gives_no_id() -> None:
    agent, _ = asymmetric_agent()
    toolkit = decide(
        agent,
        PresenceChanged(
            at=at(500), seq=500, presence_status="Busy", reason=StatusChangeReason.TOOLKIT
        ),
        CONFIG,
    )
    assert toolkit.outcome is Outcome.ECHO and toolkit.agent.state == WRAP_AUTO
    # The same status set by hand is the agent's change, not our echo: rule 11 holds it.
    manual = decide(
        agent,
        PresenceChanged(at=at(500), seq=500, presence_status="Busy"),
        CONFIG,
    )
    assert manual.outcome is Outcome.HELD


def test_rule_7_a_late_echo_of_an_old_command_does_not_clear_newer_ones() -> None:
    """Regression: the login echo of command 1 carries id 1; it once matched command 3 by
    status and cleared commands 2 (an Omni logout) and 3, so their echoes looked external and
    the agent was logged out of the contact center."""
    sim = Sim(CONFIG)
    sim.external_cc(AgentLoggedIn(at=sim.now()))
    sim.external_cc(AgentLoggedOut(at=sim.now()))
    sim.external_cc(AgentLoggedIn(at=sim.now()))
    sim.quiesce()
    assert sim.agent.state == READY and sim.sf.presence == "Available"
    sim.check_converged()


def test_rule_7_stale_and_duplicate_presence_events_are_dropped() -> None:
    agent = logged_in_sim().agent
    first = decide(agent, PresenceChanged(at=at(60), seq=60, presence_status="Lunch"), CONFIG)
    assert first.agent.state == s("ExtendedAway/Lunch")
    again = decide(first.agent, PresenceChanged(at=at(60), seq=60, presence_status="Lunch"), CONFIG)
    assert again.outcome is Outcome.DUPLICATE
    older = decide(
        first.agent, PresenceChanged(at=at(59), seq=59, presence_status="Available"), CONFIG
    )
    assert older.outcome is Outcome.STALE
    # Nothing changed but bookkeeping (a snapshot version, if the store keeps one).
    kept = ("state", "presence", "desired_presence", "pending", "last_seq", "history_seq")
    assert [getattr(older.agent, f) for f in kept] == [getattr(first.agent, f) for f in kept]
    assert older.transitions == () and older.commands == ()
    logout = decide(first.agent, OmniLoggedOut(at=at(58), seq=58), CONFIG)
    assert logout.outcome is Outcome.STALE and logout.agent.logged_in


def test_rule_7_command_result_completes_a_command_without_an_echo() -> None:
    """Salesforce already in the target status sends no status event; the bridge's result
    clears the pending command."""
    agent, command_id = asymmetric_agent()
    done = decide(
        agent,
        CommandResult(at=at(500), command_id=command_id, ok=True),
        CONFIG,
    )
    assert done.outcome is Outcome.ECHO and done.agent.pending == ()
    failed = decide(
        agent,
        CommandResult(at=at(500), command_id=command_id, ok=False, error="NO_ACCESS"),
        CONFIG,
    )
    assert failed.outcome is Outcome.FAILED and failed.agent.pending == ()


# --- 3.8 / 3.9 / 3.10 ----------------------------------------------------------------------------


def test_rule_8_option_busy_status_means_busy_inbound() -> None:
    option = SyncSettings(busy_status_means_busy_inbound=True)
    sim = logged_in_sim(settings=option)
    sim.external_sf(sim.sf.agent_set_status("Lunch", sim.now()))
    sim.run_until_quiet()
    assert sim.agent.state == BUSY_INBOUND and sim.agent.busy_reason is BusyReason.PRESENCE
    assert not is_routable(sim.agent)
    sim.external_sf(sim.sf.agent_set_status("Available", sim.now()))
    sim.run_until_quiet()
    assert sim.agent.state == READY
    # Off (the default): the mapped state.
    default = logged_in_sim()
    default.external_sf(default.sf.agent_set_status("Lunch", default.now()))
    default.run_until_quiet()
    assert default.agent.state == s("ExtendedAway/Lunch")


def test_rule_9_unknown_status_keeps_the_state_and_is_reported() -> None:
    agent = logged_in_sim().agent
    decision = decide(
        agent, PresenceChanged(at=at(70), seq=70, presence_status="Training_New"), CONFIG
    )
    assert decision.outcome is Outcome.UNKNOWN_STATUS
    assert decision.agent.state == READY
    assert decision.agent.presence == "Training_New"  # what Salesforce says, remembered
    assert any("3.9" in note for note in decision.notes)
    assert decision.commands == ()


def test_rule_10_asymmetric_mapping_is_a_warning_with_its_round_trip() -> None:
    result = validate_config(EXAMPLE_RAW, StateCatalog.default(), example_statuses())
    assert result.ok
    asymmetric = {w.key: w.round_trip for w in result.warnings if w.code == "ASYMMETRIC_MAPPING"}
    assert asymmetric == {
        "Busy": ("Busy", "Away", "On_Break"),
        "On_a_Call": ("On_a_Call", "Away", "On_Break"),
    }
    message = next(w.message for w in result.warnings if w.key == "Busy")
    assert "Busy maps to Away" in message and "On_Break" in message
    # ... and the round trip happens as the warning says.
    sim = logged_in_sim()
    sim.external_sf(sim.sf.agent_set_status("Busy", sim.now()))
    sim.run_until_quiet()
    assert (sim.agent.state, sim.sf.presence) == (AWAY, "Busy")
    sim.external_cc(StateChangeRequested(at=sim.now(), state=s("Away/Break")))
    sim.run_until_quiet()
    assert (sim.agent.state, sim.sf.presence) == (s("Away/Break"), "On_Break")


# --- 3.11 ---------------------------------------------------------------------------------------


def test_rule_11_presence_change_during_a_call_is_held_and_set_back() -> None:
    sim = logged_in_sim()
    on_call(sim)
    assert sim.sf.presence == "On_a_Call"
    step = Step(sim)
    sim.external_sf(sim.sf.agent_set_status("Lunch", sim.now(), StatusChangeReason.SUPERVISOR))
    sim.external_sf(sim.sf.agent_set_status("On_Break", sim.now()))
    sim.run_until_quiet()
    assert sim.agent.state == BUSY_INBOUND  # the call is not cut
    assert sim.agent.hold is not None
    assert (sim.agent.hold.presence_status, sim.agent.hold.state) == ("On_Break", s("Away/Break"))
    assert sim.sf.presence == "On_a_Call"  # set back: Omni routes nothing into the call
    assert step.salesforce_commands[-1] == "set_presence On_a_Call"
    sim.external_cc(CallEnded(at=sim.now(), interaction_id="c1"))
    sim.run_until_quiet()
    assert sim.agent.state == WRAP_AUTO and sim.sf.presence == "Busy"
    step = Step(sim)
    sim.external_cc(WrapEnded(at=sim.now(), interaction_id="c1"))
    sim.run_until_quiet()
    assert sim.agent.state == s("Away/Break")  # the latest held change wins
    assert sim.sf.presence == "On_Break"
    assert step.decisions[0].transitions[0].rule == "3.11"


def test_rule_11_the_agent_picking_a_state_during_wrap_beats_the_held_change() -> None:
    sim = logged_in_sim()
    on_call(sim)
    sim.external_sf(sim.sf.agent_set_status("Lunch", sim.now()))
    sim.external_cc(CallEnded(at=sim.now(), interaction_id="c1"))
    sim.run_until_quiet()
    sim.external_cc(StateChangeRequested(at=sim.now(), state=READY))
    sim.run_until_quiet()
    assert sim.agent.state == READY and sim.agent.hold is None and not sim.agent.on_call
    assert sim.sf.presence == "Available"


def test_rule_11_the_agent_cannot_leave_a_call_by_picking_a_state() -> None:
    sim = logged_in_sim()
    on_call(sim)
    with pytest.raises(Rejected) as raised:
        decide(sim.agent, StateChangeRequested(at=sim.now(), state=READY), CONFIG)
    assert raised.value.code == "ON_CALL"


def test_rule_11_omni_logout_during_a_call_is_held_and_not_undone() -> None:
    sim = logged_in_sim()
    on_call(sim)
    step = Step(sim)
    sim.external_sf(sim.sf.agent_logout(sim.now()))
    sim.run_until_quiet()
    assert sim.agent.state == BUSY_INBOUND and sim.sf.presence is None
    assert step.salesforce_commands == []  # an Omni logout is not undone
    sim.external_cc(CallEnded(at=sim.now(), interaction_id="c1"))
    sim.run_until_quiet()
    assert sim.sf.presence is None  # still not logged back in by the wrap
    sim.external_cc(WrapEnded(at=sim.now(), interaction_id="c1"))
    sim.run_until_quiet()
    assert sim.agent.state == LOGGED_OUT and sim.sf.presence is None
    assert step.salesforce_commands == []


# --- 3.12 ---------------------------------------------------------------------------------------


def grace_expiry(policy: str, during_call: bool = False) -> Sim:
    sim = logged_in_sim(settings=SyncSettings(session_end_policy=policy))
    if during_call:
        on_call(sim)
    sim.disconnect()
    sim.external_cc(SessionGraceExpired(at=sim.now(), policy=policy))
    return sim


def test_rule_12_session_end_policy_logout() -> None:
    sim = grace_expiry("logout")
    assert sim.agent.state == LOGGED_OUT
    assert sim.decisions[-1][1].transitions[0].cause.value == "session_end"
    assert any(p.kind == "omni_logout" for p in sim.agent.pending)  # waits for a console


def test_rule_12_session_end_policy_away() -> None:
    sim = grace_expiry("away")
    assert sim.agent.state == AWAY
    assert sim.agent.pending[-1].presence_status == "On_Break"


def test_rule_12_session_end_policy_none() -> None:
    sim = grace_expiry("none")
    assert sim.agent.state == READY
    assert sim.decisions[-1][1].outcome is Outcome.IGNORED


def test_rule_12_session_end_is_deferred_by_a_call() -> None:
    sim = grace_expiry("logout", during_call=True)
    assert sim.agent.state == BUSY_INBOUND and sim.decisions[-1][1].outcome is Outcome.HELD
    sim.external_cc(CallEnded(at=sim.now(), interaction_id="c1"))
    sim.external_cc(WrapEnded(at=sim.now(), interaction_id="c1"))
    assert sim.agent.state == LOGGED_OUT


def test_rule_12_no_session_end_while_the_console_is_connected() -> None:
    sim = logged_in_sim()
    sim.external_cc(SessionGraceExpired(at=sim.now(), policy="logout"))
    assert sim.agent.state == READY


def test_rule_12_reconnect_reconciles_before_anything_else() -> None:
    sim = logged_in_sim()
    sim.disconnect()
    # While the console was away: the agent went to Lunch and accepted a chat in Salesforce.
    sim.sf.assign_work(sim.now(), "Chat")
    (work_id,) = sim.sf.work
    sim.sf.accept_work(work_id, sim.now())
    sim.sf.agent_set_status("Lunch", sim.now())
    sim.connect()
    sim.run_until_quiet()
    assert sim.agent.console_connected
    assert sim.agent.presence == "Lunch"
    assert sim.agent.work == (OpenWork(work_id, True, "Chat"),)
    assert sim.agent.state == BUSY_INBOUND
    sim.external_sf(sim.sf.close_work(work_id, sim.now()))
    sim.run_until_quiet()
    assert sim.agent.state == s("ExtendedAway/Lunch")


def test_rule_12_reconnect_puts_an_offline_console_back_online() -> None:
    sim = logged_in_sim(state="Away/Break")
    sim.disconnect()
    sim.sf.agent_logout(sim.now())  # the new console tab starts Omni-offline
    step = Step(sim)
    sim.connect()
    assert step.salesforce_commands == ["omni_login On_Break"]
    sim.run_until_quiet()
    assert sim.sf.presence == "On_Break" and sim.agent.state == s("Away/Break")


def test_rule_12_reconnect_forgets_commands_sent_to_the_old_console() -> None:
    sim = logged_in_sim()
    sim.disconnect()
    sim.external_cc(StateChangeRequested(at=sim.now(), state=s("Away")))
    assert sim.agent.pending  # waits in the outbox
    decision = decide(
        sim.agent,
        SalesforceSnapshot(
            at=sim.now(), seq=1, presence_status="Available", console_connected=True
        ),
        CONFIG,
    )
    assert [type(c) for c in decision.commands] == [SetPresence]  # sent again, fresh id
    assert [p.command_id for p in decision.agent.pending] == [decision.commands[0].command_id]  # type: ignore[attr-defined]


def test_rule_12_reconnect_after_a_logout_keeps_omni_offline() -> None:
    """Regression: logged in, logged out, the login command ran but the logout never reached
    the old console. The new console finds Omni online; that is our overtaken command, not the
    agent's choice, so Omni is logged out again (DESIGN.md 6: logged-out agents are offline)."""
    sim = Sim(CONFIG)
    sim.external_cc(AgentLoggedIn(at=sim.now()))
    sim.external_cc(AgentLoggedOut(at=sim.now()))
    sim.deliver_to_sf(0)  # the login runs ...
    sim.disconnect()  # ... and the console goes away with the logout
    sim.quiesce()
    assert sim.sf.presence is None
    sim.check_converged()


def test_console_disconnect_is_recorded() -> None:
    agent = logged_in_sim().agent
    decision = decide(agent, ConsoleDisconnected(at=at(80)), CONFIG)
    assert not decision.agent.console_connected
    assert decision.agent.console_disconnected_at == at(80)
