"""Durable timers: the wrap timer (CallEnded -> WrapEnded), the console grace timer
(ConsoleDisconnected -> SessionGraceExpired) and the ring timer (InteractionOffered ->
InteractionOfferWithdrawn after the account's `offer_timeout_seconds`: redirect on no answer),
planned from a decision as `TimerOp`s (pure: no I/O here) that the unit of work writes in the
same transaction as the event that caused them; `runners.TimerRunner` fires them when due.

The ring timer is cancelled by whatever ends the offer first (answer, decline, logout, the
engine's withdrawal when the agent got busy); fired late anyway, its withdrawal names the call it
was set for, which the core ignores unless that very call still rings at the agent. Once the
withdrawal is applied the call is back in the queue and the engine drains it; the router does not
offer it straight back to the agent who let it ring out (see `router.rang_out`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from presencesync.domain import (
    AgentSnapshot,
    CallEnded,
    ConsoleDisconnected,
    Event,
    InteractionOffered,
    InteractionOfferWithdrawn,
    Major,
    SessionGraceExpired,
    SyncSettings,
    WrapEnded,
)
from presencesync.service.codec import event_to_json


@dataclass(frozen=True)
class TimerOp:
    key: str
    due_at: datetime | None  # None: cancel
    event: dict[str, Any] | None = None


def timer_key(kind: str, account_id: str, agent_id: str) -> str:
    return f"{kind}:{account_id}:{agent_id}"


def _wrapping(agent: AgentSnapshot) -> bool:
    return agent.on_call and agent.state.major is Major.WRAP


def plan_timers(
    account_id: str,
    event: Event,
    before: AgentSnapshot,
    after: AgentSnapshot,
    settings: SyncSettings,
    now: datetime,
) -> list[TimerOp]:
    agent_id = after.agent_id
    ops: list[TimerOp] = []
    wrap = timer_key("wrap", account_id, agent_id)
    if isinstance(event, CallEnded) and _wrapping(after):
        due = now + timedelta(seconds=settings.wrap_seconds)
        fire = WrapEnded(at=due, interaction_id=after.interaction_id)
        ops.append(TimerOp(wrap, due, event_to_json(fire)))
    elif _wrapping(before) and not _wrapping(after):
        ops.append(TimerOp(wrap, None))  # the agent picked a state, or logged out
    grace = timer_key("grace", account_id, agent_id)
    if isinstance(event, ConsoleDisconnected) and before.console_connected:
        due = now + timedelta(seconds=settings.session_grace_seconds)
        fire_grace = SessionGraceExpired(at=due, policy=settings.session_end_policy)
        ops.append(TimerOp(grace, due, event_to_json(fire_grace)))
    elif after.console_connected and not before.console_connected:
        ops.append(TimerOp(grace, None))
    ring = timer_key("offer", account_id, agent_id)
    offered = after.offered_interaction_id
    if (
        isinstance(event, InteractionOffered)
        and offered == event.interaction_id
        and before.offered_interaction_id != offered
    ):
        if settings.offer_timeout_seconds > 0:
            due = now + timedelta(seconds=settings.offer_timeout_seconds)
            fire_ring = InteractionOfferWithdrawn(at=due, interaction_id=offered)
            ops.append(TimerOp(ring, due, event_to_json(fire_ring)))
    elif before.offered_interaction_id is not None and offered != before.offered_interaction_id:
        ops.append(TimerOp(ring, None))  # answered, declined, withdrawn, logged out
    return ops
