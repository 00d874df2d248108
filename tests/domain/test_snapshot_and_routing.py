"""The agent snapshot's JSON form, and the router's choice (DESIGN.md 3.6 and 6)."""

from __future__ import annotations

import json
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from presencesync.domain import (
    AgentSnapshot,
    BusyReason,
    Hold,
    OpenWork,
    PendingCommand,
    choose_agent,
    is_routable,
    new_agent,
)
from presencesync.domain.events import Side
from presencesync.domain.states import BUSY_INBOUND, READY
from tests.domain.strategies import configs, examples, settings_strategy
from tests.domain.support import ALL_ACTIONS, Sim, at, perform, s


def full_snapshot() -> AgentSnapshot:
    return AgentSnapshot(
        agent_id="a7",
        state=s("Wrap/Auto"),
        since=at(3),
        presence="On_a_Call",
        desired_presence="Busy",
        work=(OpenWork("0Bz1", True, "Chat"), OpenWork("0Bz2", False, None)),
        busy_reason=BusyReason.CALL,
        interaction_id="call-9",
        offered_interaction_id=None,
        hold=Hold("Lunch", s("ExtendedAway/Lunch"), 12),
        last_seq=((Side.CONTACT_CENTER, 4), (Side.SALESFORCE, 41)),
        pending=(PendingCommand("a7:5", "set_presence", "Busy", at(4), 13, "3.1"),),
        recent_command_ids=("a7:3", "a7:4"),
        closed_work_ids=("0Bz0",),
        console_connected=True,
        console_disconnected_at=at(1),
        next_command_no=6,
        history_seq=13,
    )


def test_snapshot_json_round_trip() -> None:
    snapshot = full_snapshot()
    data = json.loads(json.dumps(snapshot.to_json()))  # plain JSON all the way
    assert AgentSnapshot.from_json(data) == snapshot
    assert data["state"] == "Wrap/Auto" and data["last_seq"] == {
        "contact_center": 4,
        "salesforce": 41,
    }
    # A hold that is an Omni logout (no status, no state) survives too.
    logout_hold = replace(snapshot, hold=Hold(None, None, None), busy_reason=None)
    assert AgentSnapshot.from_json(logout_hold.to_json()) == logout_hold
    assert AgentSnapshot.from_json(new_agent("x").to_json()) == new_agent("x")


@settings(max_examples=examples(60), deadline=None)
@given(
    configs(),
    settings_strategy,
    st.lists(st.tuples(st.sampled_from(ALL_ACTIONS), st.integers(0, 50)), max_size=30),
)
def test_every_snapshot_the_core_produces_round_trips(config, sync_settings, plan) -> None:  # type: ignore[no-untyped-def]
    sim = Sim(config, sync_settings)
    for action, pick in plan:
        perform(sim, action, pick)
    for _, decision in sim.decisions:
        agent = decision.agent
        assert AgentSnapshot.from_json(json.loads(json.dumps(agent.to_json()))) == agent


def ready(agent_id: str, since: int) -> AgentSnapshot:
    return AgentSnapshot(agent_id=agent_id, state=READY, since=at(since), presence="Available")


def test_routing_picks_the_longest_idle_ready_agent() -> None:
    agents = [ready("b", 30), ready("a", 20), ready("c", 25)]
    chosen = choose_agent(agents)
    assert chosen is not None and chosen.agent_id == "a"


def test_routing_breaks_ties_by_agent_id() -> None:
    chosen = choose_agent([ready("m", 5), ready("k", 5), ready("z", 5)])
    assert chosen is not None and chosen.agent_id == "k"


def test_routing_never_picks_busy_inbound_or_open_work() -> None:
    longest = 0
    candidates = [
        replace(ready("busy", longest), state=BUSY_INBOUND, busy_reason=BusyReason.WORK),
        replace(ready("accepted", longest), work=(OpenWork("w1", True),)),
        replace(ready("assigned", longest), work=(OpenWork("w2", False),)),  # being pushed
        replace(ready("on-call", longest), interaction_id="i1"),
        replace(ready("offered", longest), offered_interaction_id="i2"),
        replace(ready("outbound", longest), state=s("Ready/Outbound")),
        replace(ready("away", longest), state=s("Away/Break")),
        AgentSnapshot(agent_id="out"),  # logged out
    ]
    for agent in candidates:
        assert not is_routable(agent), agent.agent_id
    assert choose_agent(candidates) is None
    chosen = choose_agent([*candidates, ready("free", 99)])
    assert chosen is not None and chosen.agent_id == "free"


def test_routing_an_agent_without_since_counts_as_idle_longest() -> None:
    chosen = choose_agent([ready("a", 1), replace(ready("b", 0), since=None)])
    assert chosen is not None and chosen.agent_id == "b"
