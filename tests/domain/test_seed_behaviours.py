"""One test per behaviour the seed promises (SEED-omni-channel-integration.txt), named after it,
played with the settings of the worked example (tests/domain/WORKED_EXAMPLE.md)."""

from __future__ import annotations

import pytest

from presencesync.domain import (
    AgentLoggedIn,
    AgentLoggedOut,
    BusyReason,
    CallAnswered,
    InteractionOffered,
    Rejected,
    StateCatalog,
    StateChangeRequested,
    StatusChangeReason,
    choose_agent,
    decide,
    is_routable,
    validate_config,
)
from presencesync.domain.states import BUSY_INBOUND, READY
from tests.domain.support import (
    EXAMPLE_RAW,
    Sim,
    Step,
    example_config,
    example_statuses,
    logged_in_sim,
    s,
)


def test_agent_state_change_in_contactpad_updates_presence_in_omni_widget() -> None:
    sim = logged_in_sim()
    step = Step(sim)
    assert sim.external_cc(StateChangeRequested(at=sim.now(), state=s("Away/Break")))
    assert step.salesforce_commands == ["set_presence On_Break"]
    sim.run_until_quiet()
    assert sim.sf.presence == "On_Break"
    assert sim.agent.state == s("Away/Break")  # the echo did not come back as a change


def test_contact_center_changing_the_state_updates_presence_in_omni_widget() -> None:
    """ "When your agent *or ContactWorld* changes ...": a call (a system state) too."""
    sim = logged_in_sim()
    sim.apply(InteractionOffered(at=sim.now(), interaction_id="c1"))
    step = Step(sim)
    assert sim.external_cc(CallAnswered(at=sim.now(), interaction_id="c1"))
    assert step.salesforce_commands == ["set_presence On_a_Call"]
    sim.run_until_quiet()
    assert sim.sf.presence == "On_a_Call"
    assert sim.agent.state == BUSY_INBOUND


def test_presence_change_in_omni_widget_updates_contactpad_state() -> None:
    sim = logged_in_sim()
    step = Step(sim)
    sim.external_sf(sim.sf.agent_set_status("Lunch", sim.now()))
    sim.run_until_quiet()
    assert sim.agent.state == s("ExtendedAway/Lunch")
    assert step.commands == ["set_state ExtendedAway/Lunch"]  # ContactPad is told; no echo
    assert sim.sf.presence == "Lunch"


def test_salesforce_changing_the_presence_updates_contactpad_state() -> None:
    """ "When your agent *or Salesforce* changes ...": a supervisor's change too."""
    sim = logged_in_sim()
    sim.external_sf(sim.sf.agent_set_status("On_Break", sim.now(), StatusChangeReason.SUPERVISOR))
    sim.run_until_quiet()
    assert sim.agent.state == s("Away/Break")


def test_login_to_contactpad_goes_online_in_omni() -> None:
    sim = Sim(example_config())
    step = Step(sim)
    assert sim.external_cc(AgentLoggedIn(at=sim.now()))
    assert step.salesforce_commands == ["omni_login Available"]
    sim.run_until_quiet()
    assert sim.sf.online and sim.sf.presence == "Available"
    assert sim.agent.state == READY and sim.agent.presence == "Available"


def test_logout_of_contactpad_goes_offline_in_omni() -> None:
    sim = logged_in_sim()
    step = Step(sim)
    assert sim.external_cc(AgentLoggedOut(at=sim.now()))
    assert step.salesforce_commands == ["omni_logout"]
    sim.run_until_quiet()
    assert not sim.sf.online
    assert not sim.agent.logged_in


def test_going_offline_in_omni_logs_out_of_contactpad() -> None:
    sim = logged_in_sim()
    step = Step(sim)
    sim.external_sf(sim.sf.agent_logout(sim.now()))
    sim.run_until_quiet()
    assert not sim.agent.logged_in
    assert step.commands == ["log_out"]  # ContactPad is told; nothing sent to Salesforce


def test_accepted_salesforce_work_puts_agent_in_busy_inbound() -> None:
    sim = logged_in_sim()
    sim.external_sf(sim.sf.assign_work(sim.now(), "Chat"))
    sim.run_until_quiet()
    assert sim.agent.state == READY  # assigned, not yet accepted
    assert not is_routable(sim.agent)  # but Omni is pushing it: no call now
    (work_id,) = sim.sf.work
    sim.external_sf(sim.sf.accept_work(work_id, sim.now()))
    sim.run_until_quiet()
    assert sim.agent.state == BUSY_INBOUND
    assert sim.agent.busy_reason is BusyReason.WORK


def test_no_interactions_routed_while_busy_inbound() -> None:
    sim = logged_in_sim()
    sim.external_sf(sim.sf.assign_work(sim.now()))
    sim.run_until_quiet()
    sim.external_sf(sim.sf.accept_work(next(iter(sim.sf.work)), sim.now()))
    sim.run_until_quiet()
    agent = sim.agent
    assert agent.state == BUSY_INBOUND
    assert choose_agent([agent]) is None
    with pytest.raises(Rejected) as raised:
        decide(agent, InteractionOffered(at=sim.now(), interaction_id="c9"), sim.config)
    assert raised.value.code == "NOT_ROUTABLE"


# --- the configuration steps ------------------------------------------------------------------


def test_busy_checkbox_moves_the_agent_to_away_or_to_ready() -> None:
    """Step 5, Busy: selected -> Away, cleared -> Ready (when Maps to is empty)."""
    config = example_config()
    assert config.state_for_presence("Busy") == s("Away")  # Busy selected
    assert config.state_for_presence("Available") == READY  # Busy cleared


def test_maps_to_overrides_the_busy_checkbox() -> None:
    config = example_config()
    assert config.state_for_presence("On_Break") == s("Away/Break")
    assert config.state_for_presence("Lunch") == s("ExtendedAway/Lunch")


def test_busy_selection_must_match_the_status_option_in_salesforce() -> None:
    raw = {
        **EXAMPLE_RAW,
        "presence_mappings": [{"presence_status": "Available", "busy": True, "maps_to": None}],
    }
    result = validate_config(raw, StateCatalog.default(), example_statuses())
    assert [p.code for p in result.problems] == ["BUSY_CONTRADICTS_STATUS_OPTION"]


def test_every_major_state_must_be_mapped() -> None:
    rows = [r for r in EXAMPLE_RAW["state_mappings"] if r["state"] not in ("Wrap", "Away")]
    result = validate_config(
        {**EXAMPLE_RAW, "state_mappings": rows}, StateCatalog.default(), example_statuses()
    )
    assert not result.ok
    assert sorted((p.code, p.key) for p in result.problems) == [
        ("MISSING_MAJOR_MAPPING", "Away"),
        ("MISSING_MAJOR_MAPPING", "Wrap"),
    ]


def test_minor_states_are_optional_and_fall_back_to_their_major() -> None:
    config = example_config()
    assert config.presence_for_state(s("ExtendedAway/Lunch")) == "Lunch"  # mapped minor
    assert config.presence_for_state(s("ExtendedAway/Meeting")) == "Busy"  # falls back
    assert config.presence_for_state(s("Away/ComfortBreak")) == "On_Break"
    assert config.presence_for_state(s("Busy/Inbound")) == "On_a_Call"
    assert config.presence_for_state(s("LoggedOut")) is None  # always offline
