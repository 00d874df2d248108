"""Rules 3.5a-c and 3.12a: Omni-Channel logouts that say why (lightning:omniChannelLogout
`reason`), each with its per-account policy, and a degraded console."""

from __future__ import annotations

import pytest

from presencesync.domain import (
    ConsoleDegraded,
    DegradedReason,
    DomainError,
    LogoutReason,
    OmniLoggedIn,
    OmniLoggedOut,
    OpenWork,
    Outcome,
    PresenceChanged,
    SalesforceSnapshot,
    StateChangeRequested,
    SyncSettings,
    WorkAssigned,
    decide,
)
from presencesync.domain.states import LOGGED_OUT
from tests.domain.support import Sim, Step, example_config, logged_in_sim, s

CONFIG = example_config()


def logout(sim: Sim, reason: LogoutReason | None) -> Step:
    """Omni logs the agent out with `reason`; everything delivered."""
    step = Step(sim)
    sim.external_sf(sim.sf.agent_logout(sim.now(), reason))
    sim.run_until_quiet()
    return step


def history(step: Step) -> list[tuple[str, str, str, str, str | None]]:
    return [
        (t.side.value, t.from_, t.to, t.cause.value, t.rule)
        for d in step.decisions
        for t in d.transitions
    ]


# --- no reason: the agent's own logout (rule 5, as before) ---------------------------------------


def test_own_logout_without_reason_logs_out_of_the_contact_center() -> None:
    sim = logged_in_sim()
    step = logout(sim, None)
    assert sim.agent.state == LOGGED_OUT
    assert history(step) == [
        ("salesforce", "Available", "Offline", "salesforce", None),
        ("contact_center", "Ready", "LoggedOut", "sync", "3.5"),
    ]
    assert step.commands == ["log_out"]


# --- 3.5a duplicate login ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "reason", [LogoutReason.DUPLICATE_LOGIN, LogoutReason.DUPLICATE_LOGIN_SAME_BROWSER]
)
def test_duplicate_login_is_ignored_by_default(reason: LogoutReason) -> None:
    """The person is still online in the console that took over: nothing changes, and the
    decision is in the history (rule 3.5a)."""
    sim = logged_in_sim(state="Away/Break")
    step = Step(sim)
    sim.external_sf(sim.sf.duplicate_login(sim.now(), reason is not LogoutReason.DUPLICATE_LOGIN))
    sim.run_until_quiet()
    assert sim.agent.state == s("Away/Break")
    assert sim.agent.presence == "On_Break"
    assert step.decisions[-1].outcome is Outcome.IGNORED
    assert history(step) == [("salesforce", "On_Break", "On_Break", "salesforce", "3.5a")]
    assert step.commands == []
    # The surviving console says hello: still nothing to do.
    after = Step(sim)
    sim.connect()
    sim.run_until_quiet()
    assert after.commands == [] and sim.agent.state == s("Away/Break")


def test_duplicate_login_keeps_assigned_work() -> None:
    """The work stays with the user, who is still online in the other console."""
    sim = logged_in_sim()
    sim.external_sf(sim.sf.assign_work(sim.now()))
    sim.run_until_quiet()
    sim.external_sf(sim.sf.duplicate_login(sim.now(), False))
    sim.run_until_quiet()
    assert len(sim.agent.work) == 1


@pytest.mark.parametrize(
    ("setting", "reason"),
    [
        ("omni_logout_duplicate_login", LogoutReason.DUPLICATE_LOGIN),
        ("omni_logout_duplicate_login_same_browser", LogoutReason.DUPLICATE_LOGIN_SAME_BROWSER),
    ],
)
def test_duplicate_login_can_log_out_by_setting(setting: str, reason: LogoutReason) -> None:
    sim = logged_in_sim(settings=SyncSettings(**{setting: "logout"}))
    step = Step(sim)
    same_browser = reason is LogoutReason.DUPLICATE_LOGIN_SAME_BROWSER
    sim.external_sf(sim.sf.duplicate_login(sim.now(), same_browser))
    sim.run_until_quiet()
    assert sim.agent.state == LOGGED_OUT
    assert history(step)[-1] == ("contact_center", "Ready", "LoggedOut", "sync", "3.5a")


def test_duplicate_same_browser_setting_is_its_own() -> None:
    """Each reason has its own policy: logging out on DuplicateLogin does not change what
    DuplicateLoginInSameBrowser does."""
    sim = logged_in_sim(settings=SyncSettings(omni_logout_duplicate_login="logout"))
    sim.external_sf(sim.sf.duplicate_login(sim.now(), True))
    sim.run_until_quiet()
    assert sim.agent.state == s("Ready")


# --- 3.5b maintenance --------------------------------------------------------------------------


def test_maintenance_keeps_the_state_and_drives_omni_back_when_it_returns() -> None:
    sim = logged_in_sim(state="Away/Break")
    step = logout(sim, LogoutReason.MAINTENANCE)
    assert sim.agent.state == s("Away/Break")  # the phone queue is not touched
    assert sim.agent.presence is None
    assert sim.agent.omni_unavailable == "maintenance"
    assert history(step) == [("salesforce", "On_Break", "Offline", "salesforce", "3.5b")]
    assert step.commands == []
    # Omni comes back: the console says hello, offline; Omni is driven to the mapped status.
    back = Step(sim)
    sim.end_maintenance()
    sim.run_until_quiet()
    assert back.salesforce_commands == ["omni_login On_Break"]
    assert sim.sf.presence == "On_Break"
    assert sim.agent.omni_unavailable is None
    assert sim.agent.state == s("Away/Break")
    drive = [t for d in back.decisions for t in d.transitions if t.rule == "3.5b"]
    assert drive, "the re-drive after the maintenance says rule 3.5b"


def test_after_maintenance_omni_is_driven_to_the_mapped_status_not_followed() -> None:
    """The agent logs back in to Omni by hand in another status: presence is driven to the
    status mapped from the kept state (the contact-center state is the truth)."""
    sim = logged_in_sim(state="Away/Break")
    logout(sim, LogoutReason.MAINTENANCE)
    sim.sf.maintenance = False
    step = Step(sim)
    sim.external_sf(sim.sf.agent_login("Available", sim.now()))
    sim.run_until_quiet()
    assert sim.agent.state == s("Away/Break")
    assert step.salesforce_commands == ["set_presence On_Break"]
    assert sim.sf.presence == "On_Break"
    assert sim.agent.omni_unavailable is None


def test_state_changes_during_maintenance_fail_and_the_return_drives_the_latest() -> None:
    sim = logged_in_sim()
    logout(sim, LogoutReason.MAINTENANCE)
    sim.external_cc(StateChangeRequested(at=sim.now(), state=s("ExtendedAway/Lunch")))
    sim.run_until_quiet()  # the login the change sends fails: Omni is down
    assert sim.sf.presence is None
    assert sim.agent.omni_unavailable == "maintenance"
    sim.end_maintenance()
    sim.run_until_quiet()
    assert sim.sf.presence == "Lunch"
    assert sim.agent.state == s("ExtendedAway/Lunch")


def test_maintenance_can_log_out_by_setting() -> None:
    sim = logged_in_sim(settings=SyncSettings(omni_logout_maintenance="logout"))
    step = logout(sim, LogoutReason.MAINTENANCE)
    assert sim.agent.state == LOGGED_OUT
    assert sim.agent.omni_unavailable is None
    assert history(step)[-1] == ("contact_center", "Ready", "LoggedOut", "sync", "3.5b")


def test_maintenance_of_a_logged_out_agent_marks_nothing() -> None:
    sim = Sim(CONFIG)
    sim.external_sf(sim.sf.agent_login("Available", sim.now()))
    sim.run_until_quiet()
    logout(sim, LogoutReason.MAINTENANCE)
    assert sim.agent.omni_unavailable is None


# --- 3.5c supervisor ---------------------------------------------------------------------------


def test_supervisor_logout_logs_out_with_cause_supervisor() -> None:
    sim = logged_in_sim()
    step = logout(sim, LogoutReason.SUPERVISOR)
    assert sim.agent.state == LOGGED_OUT
    assert history(step) == [
        ("salesforce", "Available", "Offline", "supervisor", "3.5c"),
        ("contact_center", "Ready", "LoggedOut", "supervisor", "3.5c"),
    ]
    assert step.commands == ["log_out"]  # ContactPad is told


def test_supervisor_logout_can_keep_the_state_by_setting() -> None:
    sim = logged_in_sim(settings=SyncSettings(omni_logout_supervisor="keep"))
    step = logout(sim, LogoutReason.SUPERVISOR)
    assert sim.agent.state == s("Ready")
    assert sim.agent.presence is None and sim.agent.desired_presence is None
    assert step.commands == []  # the supervisor's logout is not undone
    after = Step(sim)
    sim.external_cc(StateChangeRequested(at=sim.now(), state=s("Away/Break")))
    sim.run_until_quiet()
    assert after.salesforce_commands == ["omni_login On_Break"]


def test_supervisor_logout_during_a_call_waits_for_the_wrap() -> None:
    from presencesync.domain import CallAnswered, CallEnded, InteractionOffered, WrapEnded

    sim = logged_in_sim()
    sim.apply(InteractionOffered(at=sim.now(), interaction_id="c1"))
    sim.external_cc(CallAnswered(at=sim.now(), interaction_id="c1"))
    sim.run_until_quiet()
    step = logout(sim, LogoutReason.SUPERVISOR)
    assert sim.agent.state == s("Busy/Inbound")
    assert step.decisions[-1].outcome is Outcome.HELD
    sim.external_cc(CallEnded(at=sim.now(), interaction_id="c1"))
    sim.external_cc(WrapEnded(at=sim.now(), interaction_id="c1"))
    sim.run_until_quiet()
    assert sim.agent.state == LOGGED_OUT


def test_a_reason_is_never_taken_for_our_own_logout_echo() -> None:
    """Our omni_logout is pending; Omni logs the agent out for maintenance instead: that is
    not the echo (it carries a reason), so the maintenance policy applies."""
    sim = logged_in_sim()
    sim.external_cc(StateChangeRequested(at=sim.now(), state=s("Away/Break")))
    pending = sim.agent.pending[-1].command_id
    event = OmniLoggedOut(at=sim.now(), seq=99, command_id=pending, reason=LogoutReason.MAINTENANCE)
    decision = decide(sim.agent, event, CONFIG)
    assert decision.outcome is not Outcome.ECHO
    assert decision.agent.omni_unavailable == "maintenance"


# --- 3.12a degraded console --------------------------------------------------------------------


def test_degraded_console_is_marked_and_a_hello_clears_it() -> None:
    sim = logged_in_sim()
    step = Step(sim)
    sim.external_sf([ConsoleDegraded(at=sim.now(), reason=DegradedReason.CONNECTION_ERROR)])
    sim.run_until_quiet()
    assert sim.agent.console_degraded == "connection_error"
    assert step.commands == [] and history(step) == []
    sim.connect()
    assert sim.agent.console_degraded is None


def test_degraded_is_ignored_without_a_console_and_cleared_by_a_disconnect() -> None:
    sim = logged_in_sim()
    sim.external_sf([ConsoleDegraded(at=sim.now(), reason=DegradedReason.TOOLKIT_UNRESPONSIVE)])
    sim.run_until_quiet()
    sim.disconnect()
    assert sim.agent.console_degraded is None
    decision = decide(
        sim.agent, ConsoleDegraded(at=sim.now(), reason=DegradedReason.DISPLACED), CONFIG
    )
    assert decision.outcome is Outcome.IGNORED


# --- a hello that could not read everything ---------------------------------------------------


def test_hello_without_work_keeps_the_known_work() -> None:
    sim = logged_in_sim()
    sim.external_sf(sim.sf.assign_work(sim.now()))
    sim.external_sf(sim.sf.accept_work(next(iter(sim.sf.work)), sim.now()))
    sim.run_until_quiet()
    hello = SalesforceSnapshot(
        at=sim.now(), seq=0, presence_status="Available", open_work=None, console_connected=True
    )
    decision = decide(sim.agent, hello, CONFIG)
    assert decision.agent.work == sim.agent.work
    assert decision.agent.state == s("Busy/Inbound")


def test_hello_with_an_unknown_status_keeps_the_known_presence() -> None:
    sim = logged_in_sim()
    hello = SalesforceSnapshot(
        at=sim.now(),
        seq=0,
        presence_status=None,
        open_work=(),
        console_connected=True,
        presence_known=False,
    )
    decision = decide(sim.agent, hello, CONFIG)
    assert decision.agent.presence == "Available"
    assert decision.commands == ()


def test_hello_after_an_unreadable_one_still_reconciles_work() -> None:
    sim = logged_in_sim()
    hello = SalesforceSnapshot(
        at=sim.now(),
        seq=0,
        presence_status="Available",
        open_work=(OpenWork("0Bz1", True, "Case"),),
        console_connected=True,
    )
    assert decide(sim.agent, hello, CONFIG).agent.state == s("Busy/Inbound")


# --- settings ------------------------------------------------------------------------------------


def test_logout_settings_defaults_and_validation() -> None:
    defaults = SyncSettings()
    assert defaults.omni_logout_policy(LogoutReason.DUPLICATE_LOGIN) == "ignore"
    assert defaults.omni_logout_policy(LogoutReason.DUPLICATE_LOGIN_SAME_BROWSER) == "ignore"
    assert defaults.omni_logout_policy(LogoutReason.MAINTENANCE) == "keep"
    assert defaults.omni_logout_policy(LogoutReason.SUPERVISOR) == "logout"
    saved = SyncSettings.from_api({"omni_logout_maintenance": "logout"})
    assert saved.omni_logout_maintenance == "logout"
    with pytest.raises(DomainError) as error:
        SyncSettings.from_api(
            {"omni_logout_duplicate_login": "keep", "omni_logout_supervisor": "ignore"}
        )
    fields = {p["field"] for p in error.value.details}
    assert fields == {"omni_logout_duplicate_login", "omni_logout_supervisor"}


def test_a_status_change_after_maintenance_is_not_followed_either() -> None:
    """Omni returns through a status change (no login event seen): same rule 3.5b."""
    sim = logged_in_sim(state="Away/Break")
    logout(sim, LogoutReason.MAINTENANCE)
    event = PresenceChanged(at=sim.now(), seq=50, presence_status="Available")
    decision = decide(sim.agent, event, CONFIG)
    assert decision.agent.state == s("Away/Break")
    assert [c.presence_status for c in decision.commands if hasattr(c, "presence_status")] == [
        "On_Break"
    ]
    login = OmniLoggedIn(at=sim.now(), seq=51, presence_status="Available")
    assert decide(sim.agent, login, CONFIG).agent.state == s("Away/Break")


def test_work_assigned_while_displaced_is_still_tracked() -> None:
    sim = logged_in_sim()
    sim.external_sf(sim.sf.duplicate_login(sim.now(), False))
    sim.run_until_quiet()
    decision = decide(sim.agent, WorkAssigned(at=sim.now(), work_id="0Bz9"), CONFIG)
    assert decision.agent.open_work_ids == ("0Bz9",)


def test_a_rest_read_during_maintenance_drives_nothing() -> None:
    sim = logged_in_sim(state="Away/Break")
    logout(sim, LogoutReason.MAINTENANCE)
    read = decide(sim.agent, sim.sf.snapshot(sim.now(), console=False), CONFIG)
    assert read.commands == ()
    assert read.agent.omni_unavailable == "maintenance"
    assert read.agent.state == s("Away/Break")
