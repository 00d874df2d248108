"""Change Data Capture as the core's second channel, by example (domain/channels.py and the
CDC part of decide.py). The properties are in test_two_channels.py."""

from __future__ import annotations

from datetime import timedelta

from presencesync.domain import (
    AgentLoggedIn,
    AgentSnapshot,
    ConsoleDisconnected,
    Decision,
    Event,
    OmniLoggedOut,
    Outcome,
    PresenceChanged,
    SalesforceSnapshot,
    StatusChangeReason,
    SyncSettings,
    decide,
    new_agent,
)
from presencesync.domain.channels import (
    CONFIRM_WINDOW,
    MAX_SIGHTINGS,
    Channel,
    Sighting,
    judge,
    record,
)
from presencesync.domain.events import PresenceCommitted as Committed
from presencesync.domain.events import Side, WorkCommitted
from presencesync.domain.states import BUSY_INBOUND, LOGGED_OUT, READY
from tests.domain.support import at, example_config, s

CONFIG = example_config()
ON = SyncSettings(change_data_capture=True)
BRIDGE, CDC = Channel.BRIDGE, Channel.CHANGE_DATA_CAPTURE


def apply(agent: AgentSnapshot, event: Event, settings: SyncSettings = ON) -> Decision:
    return decide(agent, event, CONFIG, None, settings)


def committed(second: float, presence: str | None, n: int) -> Committed:
    return Committed(at=at(second), commit_ms=n, transaction_key=f"t{n}", presence_status=presence)


def ready_agent(console: bool = True) -> AgentSnapshot:
    """Logged in, Omni Available, our login echoed; the console connected or not."""
    agent = new_agent("a1")
    hello = SalesforceSnapshot(at=at(0), seq=0, presence_status=None, console_connected=True)
    agent = apply(agent, hello).agent
    agent = apply(agent, AgentLoggedIn(at=at(1), state=READY)).agent
    (pending,) = agent.pending
    echo = PresenceChanged(
        at=at(2),
        seq=1,
        presence_status="Available",
        reason=StatusChangeReason.LOGIN,
        command_id=pending.command_id,
    )
    agent = apply(agent, echo).agent
    agent = apply(agent, committed(3, "Available", 1)).agent  # the login, committed
    assert agent.presence == "Available" and not agent.pending and not agent.sightings
    if not console:
        agent = apply(agent, ConsoleDisconnected(at=at(4))).agent
    return agent


def salesforce_side(decision: Decision) -> list[tuple[str, str, str | None]]:
    return [
        (t.from_, t.to, None if t.channel is None else t.channel.value)
        for t in decision.transitions
        if t.side is Side.SALESFORCE
    ]


# --- judging reports ------------------------------------------------------------------------


def test_cdc_confirms_the_bridges_oldest_sighting_only() -> None:
    sightings = (Sighting(BRIDGE, "Busy", at(1)), Sighting(BRIDGE, "Lunch", at(2)))
    verdict = judge(sightings, CDC, "Busy", at(3))
    assert verdict.seen and verdict.sightings == sightings[1:]
    # CDC reports every change in order: a Lunch before the Busy is an older Lunch.
    verdict = judge(sightings, CDC, "Lunch", at(3))
    assert verdict.stale and verdict.sightings == sightings


def test_the_bridge_confirms_any_of_cdcs_sightings_up_to_it() -> None:
    sightings = (Sighting(CDC, "Busy", at(1)), Sighting(CDC, "Lunch", at(2)))
    verdict = judge(sightings, BRIDGE, "Lunch", at(3))
    assert verdict.seen and verdict.sightings == ()  # the bridge skipped Busy


def test_cdc_naming_none_of_the_bridges_sightings_is_older_than_them() -> None:
    sightings = (Sighting(BRIDGE, "Busy", at(1)),)
    verdict = judge(sightings, CDC, "Lunch", at(2))
    assert verdict.stale and not verdict.seen and verdict.sightings == sightings


def test_the_bridge_naming_none_of_cdcs_sightings_is_newer_and_drops_them() -> None:
    sightings = (Sighting(CDC, "Busy", at(1)),)
    verdict = judge(sightings, BRIDGE, "Lunch", at(2))
    assert not verdict.stale and not verdict.seen and verdict.sightings == ()


def test_a_channel_ahead_adds_to_its_own_sightings_and_a_sighting_expires() -> None:
    first = record((), BRIDGE, "Busy", at(1))
    both = record(first, BRIDGE, None, at(2))
    assert [x.presence for x in both] == ["Busy", None]
    assert record(both, CDC, "Lunch", at(3)) == (Sighting(CDC, "Lunch", at(3)),)
    late = at(2) + CONFIRM_WINDOW + timedelta(seconds=1)
    verdict = judge(both, CDC, "Lunch", late)
    assert verdict.expired == both and verdict.sightings == () and not verdict.stale
    many: tuple[Sighting, ...] = ()
    for n in range(MAX_SIGHTINGS + 5):
        many = record(many, BRIDGE, f"S{n}", at(n))
    assert len(many) == MAX_SIGHTINGS and many[-1].presence == f"S{MAX_SIGHTINGS + 4}"


# --- the core ---------------------------------------------------------------------------------


def test_an_omni_logout_seen_only_over_cdc_logs_the_agent_out_with_no_console() -> None:
    agent = ready_agent(console=False)
    decision = apply(agent, committed(10, None, 2))
    assert decision.agent.state == LOGGED_OUT and decision.agent.presence is None
    assert salesforce_side(decision) == [("Available", "Offline", "change_data_capture")]
    cc = [t for t in decision.transitions if t.side is Side.CONTACT_CENTER]
    assert [(t.to, t.rule) for t in cc] == [("LoggedOut", "3.5")]
    assert all(t.drift is None for t in decision.transitions)  # no console: nothing to drift from
    assert decision.commands and not any(hasattr(c, "command_id") for c in decision.commands)


def test_a_status_change_seen_only_over_cdc_moves_the_state_with_no_console() -> None:
    agent = ready_agent(console=False)
    decision = apply(agent, committed(10, "Lunch", 2))
    assert decision.agent.state == s("ExtendedAway/Lunch")
    assert salesforce_side(decision) == [("Available", "Lunch", "change_data_capture")]
    assert decision.agent.sightings == (Sighting(CDC, "Lunch", at(10)),)


def test_the_bridge_first_then_cdc_is_one_transition() -> None:
    agent = ready_agent()
    bridge = apply(agent, PresenceChanged(at=at(10), seq=2, presence_status="Lunch"))
    assert salesforce_side(bridge) == [("Available", "Lunch", "bridge")]
    again = apply(bridge.agent, committed(11, "Lunch", 2))
    assert again.outcome is Outcome.DUPLICATE and not again.transitions and not again.commands
    assert again.agent.state == bridge.agent.state and again.agent.sightings == ()


def test_cdc_first_then_the_bridge_is_one_transition_and_says_the_bridge_was_silent() -> None:
    agent = ready_agent()
    cdc = apply(agent, committed(10, "Lunch", 2))
    (transition,) = [t for t in cdc.transitions if t.side is Side.SALESFORCE]
    assert transition.channel is CDC
    assert transition.drift is not None and transition.drift.code == "BRIDGE_DID_NOT_REPORT"
    assert "Available" in transition.drift.message
    late = apply(cdc.agent, PresenceChanged(at=at(11), seq=2, presence_status="Lunch"))
    assert late.outcome is Outcome.DUPLICATE and not late.transitions and not late.commands
    assert transition.to_api()["drift"]["code"] == "BRIDGE_DID_NOT_REPORT"
    assert transition.to_api()["channel"] == "change_data_capture"


def test_cdc_behind_the_bridge_does_not_rewind_it() -> None:
    """The agent went Busy then Lunch; the bridge reported only Lunch (Busy was lost on the
    way); CDC's Busy arrives afterwards: it is older, nothing moves."""
    agent = ready_agent()
    lunch = apply(agent, PresenceChanged(at=at(10), seq=3, presence_status="Lunch")).agent
    busy = apply(lunch, committed(11, "Busy", 2))
    assert busy.outcome is Outcome.STALE and not busy.transitions
    assert busy.agent.presence == "Lunch"
    done = apply(busy.agent, committed(12, "Lunch", 3))
    assert done.outcome is Outcome.DUPLICATE and done.agent.sightings == ()


def test_a_bridge_report_cdc_never_confirms_gives_way_after_the_window() -> None:
    agent = ready_agent()
    bogus = apply(agent, PresenceChanged(at=at(10), seq=2, presence_status="Lunch")).agent
    within = apply(bogus, committed(11, "Busy", 2))
    assert within.outcome is Outcome.STALE
    later = 10 + CONFIRM_WINDOW.total_seconds() + 1
    after = apply(within.agent, committed(later, "On_Break", 3))
    (transition,) = [t for t in after.transitions if t.side is Side.SALESFORCE]
    assert (transition.from_, transition.to) == ("Lunch", "On_Break")
    assert transition.drift is not None and transition.drift.code == "BRIDGE_REPORT_UNCONFIRMED"
    assert "Lunch" in transition.drift.message


def test_our_commands_change_over_cdc_is_its_echo() -> None:
    """No command id travels over CDC: our set-presence is recognised by its status, as the
    oldest command awaiting its echo (rule 7); nothing goes back, the bridge's echo after it
    changes nothing."""
    from presencesync.domain import StateChangeRequested

    agent = ready_agent()
    away = apply(agent, StateChangeRequested(at=at(10), state=s("Away")))
    (command,) = away.commands
    echo = apply(away.agent, committed(11, "On_Break", 2))
    assert echo.outcome is Outcome.ECHO and not echo.commands and not echo.agent.pending
    assert salesforce_side(echo) == [("Available", "On_Break", "change_data_capture")]
    assert all(t.drift is None for t in echo.transitions)
    bridge_echo = PresenceChanged(
        at=at(12),
        seq=2,
        presence_status="On_Break",
        reason=StatusChangeReason.TOOLKIT,
        command_id=command.command_id,  # type: ignore[attr-defined]
    )
    late = apply(echo.agent, bridge_echo)
    assert not late.transitions and not late.commands and late.agent.state == s("Away")


def test_a_redelivered_or_older_change_event_is_not_applied_again() -> None:
    agent = ready_agent(console=False)
    lunch = apply(agent, committed(10, "Lunch", 5)).agent
    again = apply(lunch, committed(11, "Lunch", 5))
    assert again.outcome is Outcome.DUPLICATE
    older = apply(lunch, committed(12, "Busy", 4))
    assert older.outcome is Outcome.STALE and older.agent.presence == "Lunch"
    # The same millisecond, another transaction: the stream's order decides.
    other = Committed(at=at(13), commit_ms=5, transaction_key="t-other", presence_status="Busy")
    assert apply(lunch, other).agent.presence == "Busy"


def test_work_over_cdc_is_the_work_rules() -> None:
    agent = ready_agent(console=False)

    def work(second: float, n: int, status: str) -> WorkCommitted:
        return WorkCommitted(
            at=at(second), commit_ms=n, transaction_key=f"w{n}", work_id="0Bz1", status=status
        )

    assigned = apply(agent, work(10, 1, "Assigned")).agent
    assert [(w.work_id, w.accepted) for w in assigned.work] == [("0Bz1", False)]
    opened = apply(assigned, work(11, 2, "Opened")).agent
    assert opened.state == BUSY_INBOUND
    closed = apply(opened, work(12, 3, "Closed")).agent
    assert closed.state == READY and not closed.work
    odd = apply(closed, work(13, 4, "Something"))
    assert odd.outcome is Outcome.IGNORED


def test_the_toolkits_repeated_report_is_no_change() -> None:
    """After an Omni login the toolkit reports the status twice (login, then status changed):
    the repeat is no change, even when CDC has moved presence on meanwhile."""
    agent = ready_agent()  # the bridge's last report: Available
    lunch = apply(agent, committed(10, "Lunch", 2)).agent
    repeat = PresenceChanged(
        at=at(11), seq=2, presence_status="Available", reason=StatusChangeReason.LOGIN
    )
    first = apply(lunch, repeat)
    assert first.outcome is Outcome.IGNORED and first.agent.presence == "Lunch"
    # A new bridge report naming none of CDC's sightings is newer: it applies.
    busy = apply(first.agent, PresenceChanged(at=at(12), seq=3, presence_status="Busy"))
    assert salesforce_side(busy) == [("Lunch", "Busy", "bridge")]
    assert busy.agent.sightings == (Sighting(BRIDGE, "Busy", at(12)),)


def test_turning_cdc_off_forgets_the_bookkeeping() -> None:
    agent = ready_agent()
    lunch = apply(agent, PresenceChanged(at=at(10), seq=2, presence_status="Lunch")).agent
    assert lunch.sightings and lunch.reported and lunch.cdc_marks
    off = apply(lunch, PresenceChanged(at=at(11), seq=3, presence_status="Busy"), SyncSettings())
    assert not off.agent.sightings and not off.agent.reported and not off.agent.cdc_marks
    assert salesforce_side(off) == [("Lunch", "Busy", "bridge")]


def test_a_console_that_finds_a_change_nobody_reported_keeps_older_cdc_reports_out() -> None:
    agent = ready_agent(console=False)
    hello = SalesforceSnapshot(at=at(10), seq=0, presence_status="Lunch", console_connected=True)
    found = apply(agent, hello)
    assert salesforce_side(found) == [("Available", "Lunch", "bridge")]
    older = apply(found.agent, committed(11, "Busy", 2))
    assert older.outcome is Outcome.STALE and older.agent.presence == "Lunch"
    confirmed = apply(older.agent, committed(12, "Lunch", 3))
    assert confirmed.outcome is Outcome.DUPLICATE and confirmed.agent.sightings == ()


def test_a_rest_reconcile_is_labelled_rest() -> None:
    agent = ready_agent()
    rest = apply(agent, SalesforceSnapshot(at=at(10), presence_status="Lunch"))
    assert salesforce_side(rest) == [("Available", "Lunch", "rest")]


def test_the_new_snapshot_fields_survive_json() -> None:
    agent = ready_agent()
    lunch = apply(agent, PresenceChanged(at=at(10), seq=2, presence_status="Lunch")).agent
    logout = apply(lunch, OmniLoggedOut(at=at(11), seq=3)).agent
    back = AgentSnapshot.from_json(logout.to_json())
    assert back == logout
    assert back.sightings and back.cdc_marks and back.reported
