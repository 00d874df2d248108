"""The router: longest idle wins, never a busy agent or one with open work, queue then assign,
decline moves on, concurrent offers never reserve the same agent."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from presencesync.domain import (
    AWAY,
    BUSY_INBOUND,
    READY,
    AgentLoggedIn,
    AgentLoggedOut,
    Rejected,
    StateChangeRequested,
    WorkAssigned,
)
from presencesync.service import Engine, NotFound
from presencesync.store import tables

from .engine_kit import now


def _ready(engine: Engine, account: str, agent: str, *, idle_for: float = 0.0) -> None:
    engine.create_agent(account, agent, agent.title(), None)
    at = now() - timedelta(seconds=idle_for)
    engine.submit(account, agent, AgentLoggedIn(at=at), source="t")


def test_longest_idle_ready_agent_gets_the_call(engine: Engine, account: str):
    _ready(engine, account, "newbie", idle_for=5)
    _ready(engine, account, "veteran", idle_for=500)
    _ready(engine, account, "middle", idle_for=50)
    call = engine.router.offer(account, "sales")
    assert (call.status, call.agent_id) == ("offered", "veteran")
    assert call.to_api() == {
        "id": call.id,
        "queue": "sales",
        "status": "offered",
        "agent_id": "veteran",
        "created_at": call.created_at.isoformat(),
    }
    assert engine.get_agent(account, "veteran").snapshot.offered_interaction_id == call.id
    second = engine.router.offer(account, "sales")
    assert second.agent_id == "middle"
    assert engine.router.get(account, call.id) == call


def test_never_routes_to_busy_inbound_or_open_work(engine: Engine, account: str):
    _ready(engine, account, "oncall", idle_for=900)
    _ready(engine, account, "working", idle_for=800)
    _ready(engine, account, "away", idle_for=700)
    first = engine.router.offer(account, "q")
    engine.router.answer(account, first.id, "oncall")
    assert engine.get_agent(account, "oncall").snapshot.state == BUSY_INBOUND
    engine.submit(account, "working", WorkAssigned(at=now(), work_id="0Bz1"), source="bridge")
    engine.submit(account, "away", StateChangeRequested(at=now(), state=AWAY), source="t")
    queued = engine.router.offer(account, "q")
    assert (queued.status, queued.agent_id) == ("queued", None)


def test_queued_call_goes_to_the_first_agent_who_becomes_ready(engine: Engine, account: str):
    first = engine.router.offer(account, "q")
    second = engine.router.offer(account, "q")
    assert first.status == second.status == "queued"
    _ready(engine, account, "late")  # login makes it routable: the oldest call is offered
    assert engine.router.get(account, first.id).agent_id == "late"
    assert engine.router.get(account, second.id).status == "queued"
    engine.router.decline(account, first.id, "late")
    # Declined: nobody else is routable, so it waits; the decliner gets the other call.
    assert engine.router.get(account, first.id).status == "queued"
    assert engine.router.get(account, second.id).agent_id == "late"


def test_decline_offers_to_the_next_agent(engine: Engine, account: str):
    _ready(engine, account, "one", idle_for=100)
    _ready(engine, account, "two", idle_for=10)
    call = engine.router.offer(account, "q")
    assert call.agent_id == "one"
    moved = engine.router.decline(account, call.id, "one")
    assert (moved.status, moved.agent_id) == ("offered", "two")
    assert engine.get_agent(account, "one").snapshot.offered_interaction_id is None


def test_wrong_agent_or_status_is_refused(engine: Engine, account: str):
    _ready(engine, account, "right", idle_for=10)
    _ready(engine, account, "wrong", idle_for=1)
    call = engine.router.offer(account, "q")
    with pytest.raises(Rejected) as wrong_agent:
        engine.router.answer(account, call.id, "wrong")
    assert wrong_agent.value.code == "NOT_YOUR_INTERACTION"
    with pytest.raises(Rejected) as not_answered:
        engine.router.hangup(account, call.id, "right")
    assert not_answered.value.code == "INTERACTION_NOT_ANSWERED"
    with pytest.raises(NotFound) as missing:
        engine.router.get(account, "nope")
    assert missing.value.code == "INTERACTION_NOT_FOUND"
    other = engine.create_account("Other")
    with pytest.raises(NotFound):
        engine.router.get(other, call.id)


def test_concurrent_offers_never_reserve_the_same_agent(engine: Engine, account: str):
    agents = [f"r{n}" for n in range(6)]
    for n, agent in enumerate(agents):
        _ready(engine, account, agent, idle_for=100 - n)
    calls = []
    lock = threading.Lock()
    barrier = threading.Barrier(10)

    def offer() -> None:
        barrier.wait()
        call = engine.router.offer(account, "rush")
        with lock:
            calls.append(call)

    threads = [threading.Thread(target=offer) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    offered = [c.agent_id for c in calls if c.status == "offered"]
    assert sorted(offered) == sorted(agents)  # each agent once, all of them used
    assert sum(c.status == "queued" for c in calls) == 4
    reserved = {a: engine.get_agent(account, a).snapshot.offered_interaction_id for a in agents}
    assert sorted(reserved.values()) == sorted(c.id for c in calls if c.status == "offered")


def test_wrap_end_makes_the_agent_routable_again(engine: Engine, account: str):
    engine.save_settings(account, {"wrap_seconds": 1}, actor="admin")
    _ready(engine, account, "solo")
    call = engine.router.offer(account, "q")
    engine.router.answer(account, call.id, "solo")
    waiting = engine.router.offer(account, "q")
    assert waiting.status == "queued"
    engine.router.hangup(account, call.id, "solo")
    with engine.db.begin() as conn:  # other tests' timers (PostgreSQL tests share a schema)
        conn.execute(sa.delete(tables.timers).where(tables.timers.c.account_id != account))
    assert engine.run_due_timers(now() + timedelta(seconds=2)) == 1
    assert engine.get_agent(account, "solo").snapshot.offered_interaction_id == waiting.id
    assert engine.router.get(account, waiting.id).status == "offered"
    assert engine.get_agent(account, "solo").snapshot.state == READY


def test_an_offer_left_by_logout_goes_to_the_next_agent(engine: Engine, account: str):
    _ready(engine, account, "leaver", idle_for=100)
    _ready(engine, account, "stayer", idle_for=10)
    call = engine.router.offer(account, "q")
    assert call.agent_id == "leaver"
    engine.submit(account, "leaver", AgentLoggedOut(at=now()), source="t")
    moved = engine.router.get(account, call.id)
    assert (moved.status, moved.agent_id) == ("offered", "stayer")


def test_a_call_ends_when_the_agent_is_logged_out_during_it(engine: Engine, account: str):
    _ready(engine, account, "talker")
    call = engine.router.offer(account, "q")
    engine.router.answer(account, call.id, "talker")
    engine.submit(account, "talker", AgentLoggedOut(at=now()), source="t")
    assert engine.router.get(account, call.id).status == "ended"


def test_a_ringing_call_is_taken_back_when_salesforce_work_arrives(engine: Engine, account: str):
    _ready(engine, account, "juggler", idle_for=100)
    _ready(engine, account, "spare", idle_for=10)
    call = engine.router.offer(account, "q")
    assert call.agent_id == "juggler"
    # Omni pushes work to the agent while our call rings: no double routing.
    engine.submit(account, "juggler", WorkAssigned(at=now(), work_id="0Bz9"), source="bridge")
    assert engine.get_agent(account, "juggler").snapshot.offered_interaction_id is None
    moved = engine.router.get(account, call.id)
    assert (moved.status, moved.agent_id) == ("offered", "spare")
    with pytest.raises(Rejected):
        engine.router.answer(account, call.id, "juggler")
