"""Failing examples the property and stateful tests found, kept as plain tests. Each one failed
on the core as first written (commit 77ca85a) and names the fix in decide.py/routing.py."""

from __future__ import annotations

from presencesync.domain import (
    AgentLoggedIn,
    OmniConfig,
    OmniLoggedOut,
    Outcome,
    PresenceStatus,
    StateCatalog,
    StatusOption,
    WorkAssigned,
    decide,
    new_agent,
    validate_config,
)
from presencesync.domain.states import AWAY, READY
from tests.domain.support import Sim, at, perform


def config_of(*statuses: tuple[str, bool]) -> OmniConfig:
    """Every major state mapped to the first status; no presence rows (as Hypothesis drew)."""
    fetched = [
        PresenceStatus(
            f"0N5{i:012d}",
            name,
            name,
            StatusOption.ONLINE if online else StatusOption.BUSY,
            ("Case", "Chat") if online else (),
        )
        for i, (name, online) in enumerate(statuses)
    ]
    raw = {
        "enabled": True,
        "presence_mappings": [],
        "state_mappings": [
            {"state": major, "presence_status": statuses[0][0]}
            for major in ("Ready", "Busy", "Wrap", "Away", "ExtendedAway")
        ],
    }
    result = validate_config(raw, StateCatalog.default(), fetched)
    assert result.config is not None
    return result.config


def play(config: OmniConfig, plan: list[tuple[str, int]]) -> Sim:
    sim = Sim(config)
    for action, pick in plan:
        perform(sim, action, pick)
    sim.quiesce()
    sim.check_converged()
    return sim


def test_late_login_echo_does_not_clear_a_newer_logout_by_status() -> None:
    """Fix: an echo that carries a command id matches only that command. The login echo of
    command 1 matched command 3 (same status) and cleared command 2, an Omni logout, whose
    echo then logged the agent out of the contact center."""
    sim = play(
        config_of(("Available", False)), [("cc_login", 0), ("cc_logout", 0), ("cc_login", 0)]
    )
    assert sim.agent.state == READY and sim.sf.presence == "Available"


def test_assigned_work_is_forgotten_when_omni_goes_offline() -> None:
    """Fix: Salesforce returns assigned work to the queue on an Omni logout without a decline
    event; the core kept it open and the agent was never routable again."""
    sim = play(
        config_of(("Available", True), ("Busy", False)),
        [("cc_login", 0), ("cc_logout", 0), ("deliver_sf", 0), ("work_assign", 0)],
    )
    assert sim.agent.work == ()


def test_an_assignment_older_than_an_applied_omni_logout_is_stale() -> None:
    config = config_of(("Available", True))
    agent = decide(new_agent("a"), AgentLoggedIn(at=at(0)), config).agent
    agent = decide(agent, OmniLoggedOut(at=at(5), seq=5), config).agent
    late = decide(agent, WorkAssigned(at=at(4), seq=4, work_id="w1"), config)
    assert late.outcome is Outcome.STALE and late.agent.work == ()


def test_our_command_that_logs_omni_back_in_after_the_agents_logout_is_undone() -> None:
    """Fix: the toolkit's setServicePresenceStatus logs an offline agent in. Our login ran
    after the agent logged out of Omni (rule 5 logged the contact center out); its echo was
    taken for the agent logging in again and Omni stayed online."""
    sim = play(
        config_of(("Available", False)), [("cc_login", 0), ("sf_login", 0), ("sf_logout", 0)]
    )
    assert not sim.agent.logged_in and sim.sf.presence is None


def test_an_untagged_manual_login_takes_only_the_oldest_pending_command() -> None:
    """Fix: without a command id, only the oldest pending command can be the one that ran.
    A manual Omni login (reason OmniLoginStatusChange, like our login's echo) matched a later
    pending login by status and counted our pending Omni logout as done."""
    sim = play(
        config_of(("Available", False)),
        [
            ("cc_login", 0),
            ("cc_logout", 0),
            ("sf_login", 0),
            ("deliver_sf", 1),
            ("sf_login", 0),
            ("cc_login", 0),
        ],
    )
    assert sim.agent.state == READY and sim.sf.presence == "Available"


def test_reconnect_after_our_login_ran_and_our_logout_was_lost_keeps_omni_offline() -> None:
    """Fix: the reconnect snapshot found a logged-out agent Omni-online and took it for the
    agent's choice, though it was our own login command, overtaken by our lost logout."""
    sim = play(
        config_of(("Available", False)),
        [("cc_login", 0), ("cc_logout", 0), ("deliver_sf", 0), ("disconnect", 0)],
    )
    assert sim.sf.presence is None


def test_reconnect_with_our_logout_still_in_flight_keeps_omni_offline() -> None:
    """Fix (found by the stateful test): the agent changed Omni status while the console was
    away and then logged out of ContactPad; our Omni logout died with the old console. The new
    console's snapshot showed the changed status, which the core took for the agent's choice.
    Our logout never ran, so it stands (a status-change event while it is pending does not
    override it either)."""
    fetched = [
        PresenceStatus("0N5000000000000", "Available", "Available", StatusOption.BUSY),
        PresenceStatus("0N5000000000001", "Busy", "Busy", StatusOption.BUSY),
    ]
    raw = {
        "enabled": True,
        "presence_mappings": [],
        "state_mappings": [
            {"state": "Ready", "presence_status": "Available"},
            {"state": "Busy", "presence_status": "Available"},
            {"state": "Wrap", "presence_status": "Available"},
            {"state": "Away", "presence_status": "Available"},
            {"state": "ExtendedAway", "presence_status": "Busy"},
        ],
    }
    config = validate_config(raw, StateCatalog.default(), fetched).config
    assert config is not None
    sim = play(
        config,
        [
            ("sf_login", 1),  # the agent logs in to Omni by hand, in Busy
            ("disconnect", 0),
            ("cc_login", 6),  # ExtendedAway -> Busy
            ("deliver_cc", 0),
            ("sf_status", 0),  # Available, while nobody forwards it
            ("cc_logout", 0),
        ],
    )
    assert not sim.agent.logged_in and sim.sf.presence is None


def test_a_result_older_than_an_applied_event_does_not_rewind_presence() -> None:
    """Fix (found by the property test): our login and logout ran in the wrong order (an
    outbox retry), so Salesforce ended online; the logout's result (numbered before the
    login's echo) arrived after the echo and set the presence back to offline, and nothing
    repaired it. A stale result or echo now completes its command without rewinding the
    presence, and the latest decision (offline) is asserted again."""
    sim = play(
        config_of(("Available", False)),
        [
            ("cc_login", 0),
            ("cc_logout", 0),
            ("deliver_sf", 1),  # the logout runs first (Omni already offline: ok)
            ("deliver_sf", 0),  # then the login
            ("deliver_cc", 2),  # the login's status echo overtakes the logout's result
        ],
    )
    assert not sim.agent.logged_in and sim.sf.presence is None


def test_reconnect_finding_omni_offline_and_the_work_closed_brings_omni_back() -> None:
    """Fix (found by the stateful test): while the console was away the agent accepted work
    (seen by a REST reconcile), then logged out of Omni and closed it. The reconnect put Omni
    back online for the logged-in agent, but the return from Busy/Inbound (rule 6) then set
    the desired presence to offline, so the login's echo was answered with an Omni logout:
    logged in to the contact center, offline in Omni."""
    sim = play(
        config_of(("Available", True)),
        [
            ("disconnect", 0),
            ("cc_login", 0),
            ("sf_login", 0),
            ("work_assign", 0),
            ("work_accept", 0),
            ("rest_reconcile", 0),
            ("sf_logout", 0),
            ("work_close", 0),
        ],
    )
    assert sim.agent.state == AWAY and sim.sf.presence == "Available"


def test_omni_logout_forgets_assigned_work_even_when_offline_was_already_known() -> None:
    """Fix (found by the stateful test): a REST reconcile had already shown Omni offline when
    an assignment made before the agent's Omni logout arrived; the logout event then changed
    no presence, and the requeued item stayed open in the core (the agent unroutable)."""
    sim = play(
        config_of(("Available", False), ("On_a_Call", True)),
        [
            ("cc_login", 0),
            ("cc_logout", 0),
            ("deliver_sf", 0),
            ("sf_status", 1),  # On_a_Call (online) while our logout is in flight
            ("reconnect", 0),
            ("work_assign", 0),
            ("sf_logout", 0),
            ("rest_reconcile", 0),
        ],
    )
    assert sim.agent.work == () and sim.sf.work == {}
