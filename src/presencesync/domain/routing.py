"""The router's choice: the longest-idle routable agent (DESIGN.md 3.6 and 6)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from presencesync.domain.agent import AgentSnapshot
from presencesync.domain.states import READY


def is_routable(agent: AgentSnapshot) -> bool:
    """May be offered a new inbound interaction: Ready, nothing open on either side, and not
    already holding an offer. Busy/Inbound and open Salesforce work (even merely assigned,
    i.e. Omni is pushing it to the agent right now) rule an agent out."""
    return (
        agent.state == READY
        and not agent.has_open_work
        and not agent.on_call
        and agent.offered_interaction_id is None
    )


def choose_agent(agents: Iterable[AgentSnapshot]) -> AgentSnapshot | None:
    """The routable agent idle longest (Ready since the earliest time; ties by agent id)."""
    best: AgentSnapshot | None = None
    best_key: tuple[bool, datetime | None, str] | None = None
    for agent in agents:
        if not is_routable(agent):
            continue
        # An unknown `since` counts as idle longest; `datetime.min` would be naive and not
        # comparable with the timezone-aware times of the other agents.
        key = (agent.since is not None, agent.since, agent.agent_id)
        if best_key is None or key < best_key:
            best, best_key = agent, key
    return best
