"""Ring timeout (redirect on no answer): an offer nobody answers moves on to the next routable
agent after the account's `offer_timeout_seconds`, or back to the queue; answering, declining or
leaving first makes the timer a no-op.

`run_due_timers` fires every due timer of the store (PostgreSQL tests share one schema), so these
tests look at their own account's agents and calls, never at the number of timers fired."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from presencesync.domain import (
    BUSY_INBOUND,
    READY,
    AgentLoggedIn,
    AgentLoggedOut,
    Rejected,
    WorkAssigned,
    is_routable,
)
from presencesync.service import Engine
from presencesync.store import tables

from .engine_kit import now

RING = 20  # the default offer_timeout_seconds


def _ready(engine: Engine, account: str, agent: str, *, idle_for: float = 0.0) -> None:
    engine.create_agent(account, agent, agent.title(), None)
    at = now() - timedelta(seconds=idle_for)
    engine.submit(account, agent, AgentLoggedIn(at=at), source="t")


def _ring_timers(engine: Engine, account: str, agent: str) -> list[float]:
    """Seconds from now until each of the agent's ring timers is due."""
    return [
        (due - now()).total_seconds()
        for key, due in engine.pending_timers(account, agent)
        if key.startswith("offer:")
    ]


def _offer(engine: Engine, account: str, agent: str) -> str | None:
    return engine.get_agent(account, agent).snapshot.offered_interaction_id


def _after_the_ring(seconds: float = RING + 1) -> object:
    return now() + timedelta(seconds=seconds)


def test_the_default_ring_time_is_twenty_seconds(engine: Engine, account: str):
    assert engine.get_settings(account).offer_timeout_seconds == RING
    _ready(engine, account, "amy")
    call = engine.router.offer(account, "q")
    assert call.agent_id == "amy"
    (due_in,) = _ring_timers(engine, account, "amy")
    assert RING - 5 < due_in <= RING


def test_an_unanswered_call_moves_to_the_next_agent(engine: Engine, account: str):
    _ready(engine, account, "slow", idle_for=300)
    _ready(engine, account, "next", idle_for=200)
    _ready(engine, account, "last", idle_for=100)
    call = engine.router.offer(account, "q")
    assert call.agent_id == "slow"
    engine.run_due_timers(now() + timedelta(seconds=RING - 5))  # still ringing
    assert engine.router.get(account, call.id).agent_id == "slow"

    engine.run_due_timers(_after_the_ring())  # type: ignore[arg-type]

    moved = engine.router.get(account, call.id)
    assert (moved.status, moved.agent_id) == ("offered", "next")  # not back to "slow"
    assert _offer(engine, account, "next") == call.id
    slow = engine.get_agent(account, "slow").snapshot
    assert slow.offered_interaction_id is None and slow.state == READY and is_routable(slow)
    assert _ring_timers(engine, account, "slow") == []
    assert len(_ring_timers(engine, account, "next")) == 1  # the next agent's ring starts
    with pytest.raises(Rejected):
        engine.router.answer(account, call.id, "slow")  # too late
    # The agent who let it ring is routable again: the next call goes to it (longest idle).
    another = engine.router.offer(account, "q")
    assert another.agent_id == "slow"
    assert engine.router.answer(account, another.id, "slow").status == "answered"
    assert engine.router.answer(account, call.id, "next").status == "answered"


def test_a_call_that_rings_out_twice_moves_on_each_time(
    engine: Engine, account: str, database_url: str, request: pytest.FixtureRequest
):
    for n, agent in enumerate(("first", "second", "third")):
        _ready(engine, account, agent, idle_for=300 - 100 * n)
    call = engine.router.offer(account, "q")
    engine.run_due_timers(_after_the_ring())  # type: ignore[arg-type]
    assert engine.router.get(account, call.id).agent_id == "second"
    # "first" is free but has just let this call ring out: the call goes to "third".
    engine.run_due_timers(_after_the_ring(2 * RING + 2))  # type: ignore[arg-type]
    moved = engine.router.get(account, call.id)
    assert (moved.status, moved.agent_id) == ("offered", "third")
    assert is_routable(engine.get_agent(account, "second").snapshot)


def test_an_unanswered_call_with_nobody_else_goes_back_to_the_queue(engine: Engine, account: str):
    _ready(engine, account, "alone", idle_for=100)
    call = engine.router.offer(account, "q")
    assert call.agent_id == "alone"

    engine.run_due_timers(_after_the_ring())  # type: ignore[arg-type]

    queued = engine.router.get(account, call.id)
    assert (queued.status, queued.agent_id) == ("queued", None)
    alone = engine.get_agent(account, "alone").snapshot
    assert alone.offered_interaction_id is None and is_routable(alone)
    assert _ring_timers(engine, account, "alone") == []
    # Someone who becomes Ready takes the waiting call; a new call still goes to "alone".
    _ready(engine, account, "helper")
    assert engine.router.get(account, call.id).agent_id == "helper"
    assert engine.router.offer(account, "q").agent_id == "alone"


def test_the_agent_who_let_a_call_ring_out_takes_other_queued_calls(engine: Engine, account: str):
    _ready(engine, account, "solo", idle_for=100)
    first = engine.router.offer(account, "q")
    waiting = engine.router.offer(account, "q")
    assert (first.agent_id, waiting.status) == ("solo", "queued")

    engine.run_due_timers(_after_the_ring())  # type: ignore[arg-type]

    # The rung-out call waits; the one behind it is offered to "solo" instead.
    assert engine.router.get(account, first.id).status == "queued"
    assert engine.router.get(account, waiting.id).agent_id == "solo"
    assert _offer(engine, account, "solo") == waiting.id


def test_answering_before_the_timeout_cancels_the_ring_timer(engine: Engine, account: str):
    _ready(engine, account, "quick", idle_for=100)
    _ready(engine, account, "other", idle_for=10)
    call = engine.router.offer(account, "q")
    assert len(_ring_timers(engine, account, "quick")) == 1
    with engine.db.connect() as conn:
        ring_event = conn.execute(
            sa.select(tables.timers.c.event).where(
                tables.timers.c.key.like("offer:%"),
                tables.timers.c.account_id == account,
                tables.timers.c.agent_id == "quick",
            )
        ).scalar_one()
    engine.router.answer(account, call.id, "quick")
    assert _ring_timers(engine, account, "quick") == []
    events = engine.event_count(account, "quick")

    engine.run_due_timers(_after_the_ring())  # type: ignore[arg-type]

    assert engine.event_count(account, "quick") == events  # nothing fired for "quick"
    answered = engine.router.get(account, call.id)
    assert (answered.status, answered.agent_id) == ("answered", "quick")
    assert engine.get_agent(account, "quick").snapshot.state == BUSY_INBOUND
    assert _offer(engine, account, "other") is None
    # A timer that fires anyway (read as due just before the answer committed) is a no-op.
    applied = engine.submit_json(
        account, "quick", ring_event, source="timer", source_id=f"late-{call.id}"
    )
    assert applied.decision.outcome.value == "ignored"
    answered = engine.router.get(account, call.id)
    assert (answered.status, answered.agent_id) == ("answered", "quick")
    assert engine.get_agent(account, "quick").snapshot.interaction_id == call.id


def test_decline_and_logout_cancel_the_ring_timer(engine: Engine, account: str):
    _ready(engine, account, "decliner", idle_for=300)
    _ready(engine, account, "keeper", idle_for=200)
    call = engine.router.offer(account, "q")
    engine.router.decline(account, call.id, "decliner")
    assert _ring_timers(engine, account, "decliner") == []
    assert engine.router.get(account, call.id).agent_id == "keeper"
    engine.router.answer(account, call.id, "keeper")
    assert _ring_timers(engine, account, "keeper") == []
    _ready(engine, account, "leaver", idle_for=100)
    other = engine.router.offer(account, "q")
    assert other.agent_id == "decliner"
    engine.router.decline(account, other.id, "decliner")
    assert engine.router.get(account, other.id).agent_id == "leaver"
    assert len(_ring_timers(engine, account, "leaver")) == 1
    engine.submit(account, "leaver", AgentLoggedOut(at=now()), source="t")
    assert _ring_timers(engine, account, "leaver") == []
    assert engine.router.get(account, other.id).agent_id == "decliner"  # back in the queue
    engine.router.answer(account, other.id, "decliner")

    engine.run_due_timers(_after_the_ring())  # type: ignore[arg-type]

    for call_id, agent in ((call.id, "keeper"), (other.id, "decliner")):
        answered = engine.router.get(account, call_id)
        assert (answered.status, answered.agent_id) == ("answered", agent)


def test_salesforce_work_during_the_ring_still_takes_the_call_back(engine: Engine, account: str):
    _ready(engine, account, "juggler", idle_for=100)
    _ready(engine, account, "spare", idle_for=10)
    call = engine.router.offer(account, "q")
    engine.submit(account, "juggler", WorkAssigned(at=now(), work_id="0Bz9"), source="bridge")
    assert _offer(engine, account, "juggler") is None
    assert _ring_timers(engine, account, "juggler") == []
    assert engine.router.get(account, call.id).agent_id == "spare"
    assert len(_ring_timers(engine, account, "spare")) == 1


def test_zero_disables_the_ring_timeout(engine: Engine, account: str):
    engine.save_settings(account, {"offer_timeout_seconds": 0}, actor="admin")
    _ready(engine, account, "patient", idle_for=100)
    _ready(engine, account, "other", idle_for=10)
    call = engine.router.offer(account, "q")
    assert call.agent_id == "patient"
    assert _ring_timers(engine, account, "patient") == []

    engine.run_due_timers(now() + timedelta(seconds=700))

    ringing = engine.router.get(account, call.id)
    assert (ringing.status, ringing.agent_id) == ("offered", "patient")
    assert _offer(engine, account, "other") is None


def test_the_ring_time_is_the_accounts_setting(engine: Engine, account: str):
    engine.save_settings(account, {"offer_timeout_seconds": 5}, actor="admin")
    _ready(engine, account, "first", idle_for=100)
    _ready(engine, account, "second", idle_for=10)
    call = engine.router.offer(account, "q")
    (due_in,) = _ring_timers(engine, account, "first")
    assert 0 < due_in <= 5
    engine.run_due_timers(now() + timedelta(seconds=6))
    assert engine.router.get(account, call.id).agent_id == "second"
