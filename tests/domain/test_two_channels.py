"""The same Salesforce changes over two channels (the console's bridge and Change Data Capture)
are applied once (domain/channels.py, decide's `_observe_before`/`_observe_after`).

A script of Salesforce-side changes is played on the model Salesforce (`support.Sim.sf`): status
changes by the agent or a supervisor, Omni logins and logouts, work assigned, accepted,
declined, timed out and closed. It yields the bridge's events (numbered, with reasons) and the
committed change events (one per changed row). Then the core, from the same starting agent,
hears them:

- over the bridge alone, in order (today's one channel);
- over CDC alone, in commit order (the console is closed);
- over both, in any interleaving of the two ordered streams, each event possibly delivered
  twice (a replayed bridge event, a change event redelivered after a restart), late by any
  amount.

Both-channel runs must take exactly the decisions of the bridge-alone run: the same history
(side, from, to, rule, caused_by_seq; only `cause` may read `salesforce` where the bridge said
`supervisor`, as CDC cannot tell), the same commands, the same agent. CDC alone must reach the
same agent. With the two CDC topics (UserServicePresence and AgentWork are separate streams)
interleaved independently, the agent still ends the same and no change is applied twice.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from presencesync.domain import (
    AgentSnapshot,
    Decision,
    Event,
    OmniConfig,
    SyncSettings,
    command_payload,
    decide,
)
from presencesync.domain.events import Cause, Side
from tests.domain.strategies import configs, examples
from tests.domain.support import Sim, at, perform

SCRIPT_ACTIONS = (
    "sf_status",
    "sf_supervisor",
    "sf_login",
    "sf_logout",
    "work_assign",
    "work_accept",
    "work_decline",
    "push_timeout",
    "work_close",
)
scripts = st.lists(
    st.tuples(st.sampled_from(SCRIPT_ACTIONS), st.integers(0, 50)), min_size=1, max_size=30
)


@dataclass
class Played:
    start: AgentSnapshot
    bridge: list[Event]
    presence_changes: list[Event]
    work_changes: list[Event]
    commits: list[Event]  # both objects, in commit order


def play_script(
    config: OmniConfig, sync_settings: SyncSettings, script: list[tuple[str, int]]
) -> Played:
    """Both systems in step with the agent logged in, then the script played on Salesforce
    alone: what each channel would carry."""
    sim = Sim(config, sync_settings)
    perform(sim, "cc_login", 0)
    sim.run_until_quiet()
    start = sim.agent
    sf = sim.sf
    sf.cdc_presence.clear()
    sf.cdc_work.clear()
    captured: list[Event] = []
    sim.external_sf = lambda events: captured.extend(events)  # type: ignore[method-assign]
    for action, pick in script:
        perform(sim, action, pick)
    commits = sorted([*sf.cdc_presence, *sf.cdc_work], key=lambda e: e.commit_ms)  # type: ignore[attr-defined]
    return Played(start, captured, list(sf.cdc_presence), list(sf.cdc_work), commits)


def run(
    start: AgentSnapshot,
    deliveries: list[Event],
    config: OmniConfig,
    sync_settings: SyncSettings,
) -> tuple[AgentSnapshot, list[Decision]]:
    agent = start
    decisions = []
    for n, event in enumerate(deliveries, start=1):
        # Arrival times: ten per second, so that nothing waits past the confirm window.
        arrived = replace(event, at=at(1000) + timedelta(seconds=n / 10))
        decision = decide(agent, arrived, config, None, sync_settings)
        agent = decision.agent
        decisions.append(decision)
    return agent, decisions


def history(decisions: list[Decision]) -> list[tuple[object, ...]]:
    return [
        (
            t.side,
            t.from_,
            t.to,
            t.rule,
            t.caused_by_seq,
            Cause.SALESFORCE if t.cause is Cause.SUPERVISOR else t.cause,
        )
        for d in decisions
        for t in d.transitions
    ]


def commands(decisions: list[Decision]) -> list[dict[str, object]]:
    return [command_payload(c) for d in decisions for c in d.commands]


def essence(agent: AgentSnapshot) -> tuple[object, ...]:
    return (
        str(agent.state),
        agent.presence,
        agent.desired_presence,
        tuple(sorted((w.work_id, w.accepted) for w in agent.work)),
        agent.busy_reason,
        agent.hold,
        tuple(p.command_id for p in agent.pending),
    )


@st.composite
def merged(draw: st.DrawFn, streams: list[list[Event]]) -> list[Event]:
    """Any interleaving of ordered streams, each event possibly delivered again later."""
    cursors = [0] * len(streams)
    out: list[Event] = []
    while any(c < len(s) for c, s in zip(cursors, streams, strict=True)):
        live = [i for i, s in enumerate(streams) if cursors[i] < len(s)]
        i = draw(st.sampled_from(live))
        event = streams[i][cursors[i]]
        cursors[i] += 1
        out.append(event)
        if draw(st.integers(0, 9)) == 0:
            out.append(event)  # delivered twice, right away
    if out and draw(st.booleans()):
        out.append(out[draw(st.integers(0, len(out) - 1))])  # a late replay of anything
    return out


cdc_settings = st.builds(
    SyncSettings,
    busy_status_means_busy_inbound=st.booleans(),
    change_data_capture=st.just(True),
)


@settings(
    max_examples=examples(300),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(configs(), cdc_settings, scripts, st.data())
def test_both_channels_take_the_decisions_of_one(
    config: OmniConfig,
    sync_settings: SyncSettings,
    script: list[tuple[str, int]],
    data: st.DataObject,
) -> None:
    played = play_script(config, sync_settings, script)
    one, one_decisions = run(played.start, played.bridge, config, sync_settings)
    deliveries = data.draw(merged([played.bridge, played.commits]))
    both, both_decisions = run(played.start, deliveries, config, sync_settings)
    assert history(both_decisions) == history(one_decisions)
    assert commands(both_decisions) == commands(one_decisions)
    assert essence(both) == essence(one)


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs(), cdc_settings, scripts)
def test_change_data_capture_alone_reaches_the_same_agent(
    config: OmniConfig, sync_settings: SyncSettings, script: list[tuple[str, int]]
) -> None:
    """The console is closed: only committed changes arrive. Same agent, and the Salesforce
    side of the history is the same list of changes."""
    played = play_script(config, sync_settings, script)
    one, one_decisions = run(played.start, played.bridge, config, sync_settings)
    cdc, cdc_decisions = run(played.start, played.commits, config, sync_settings)
    assert essence(cdc) == essence(one)
    assert history(cdc_decisions) == history(one_decisions)
    assert commands(cdc_decisions) == commands(one_decisions)


@settings(
    max_examples=examples(300),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(configs(), cdc_settings, scripts, st.data())
def test_independent_topics_converge_without_applying_a_change_twice(
    config: OmniConfig,
    sync_settings: SyncSettings,
    script: list[tuple[str, int]],
    data: st.DataObject,
) -> None:
    """The two CDC topics are separate streams: work and presence changes may come in another
    order than they were made. The agent still ends where the bridge alone leaves it, and no
    presence change is applied more than once (at most one Salesforce-side transition each)."""
    played = play_script(config, sync_settings, script)
    one, _ = run(played.start, played.bridge, config, sync_settings)
    streams = [played.bridge, played.presence_changes, played.work_changes]
    deliveries = data.draw(merged(streams))
    both, decisions = run(played.start, deliveries, config, sync_settings)
    assert (both.presence, both.logged_in) == (one.presence, one.logged_in)
    assert {w.work_id for w in both.work} == {w.work_id for w in one.work}
    salesforce_side = [t for d in decisions for t in d.transitions if t.side is Side.SALESFORCE]
    assert len(salesforce_side) <= len(played.presence_changes)


def test_the_script_reaches_the_core_at_all() -> None:
    """Guards the properties above against an empty script: a status change by hand yields a
    bridge event and a change event, and each alone moves the agent."""
    from tests.domain.support import example_config

    config = example_config()
    on = SyncSettings(change_data_capture=True)
    played = play_script(config, on, [("sf_status", 1)])
    assert played.bridge and played.commits
    one, _ = run(played.start, played.bridge, config, on)
    cdc, _ = run(played.start, played.commits, config, on)
    assert one.presence == cdc.presence != played.start.presence
