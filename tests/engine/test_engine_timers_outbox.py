"""Durable timers (wrap, console grace) and the outbox (claim, lease, backoff, dispatcher)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from presencesync.domain import (
    AWAY,
    LOGGED_OUT,
    READY,
    WRAP_AUTO,
    AgentLoggedIn,
    CommandResult,
    ConsoleDisconnected,
    SalesforceSnapshot,
    StateChangeRequested,
)
from presencesync.service import Engine, OutboxCommand, OutboxDispatcher, TimerRunner, open_engine
from presencesync.service.outbox import backoff
from presencesync.store import tables

from .engine_kit import now, seed_account, settle_outbox


def _connected_agent(engine: Engine, account: str, agent: str) -> None:
    engine.create_agent(account, agent, agent.title(), None)
    engine.submit(
        account,
        agent,
        SalesforceSnapshot(at=now(), presence_status=None, console_connected=True),
        source="bridge",
    )
    engine.submit(account, agent, AgentLoggedIn(at=now()), source="t")


def _timer_keys(engine: Engine, account: str, agent: str) -> list[str]:
    return [key.split(":")[0] for key, _due in engine.pending_timers(account, agent)]


def _forget_other_tests_timers(engine: Engine, account: str) -> None:
    """PostgreSQL tests share one schema and `run_due_timers` fires every account's due timers:
    drop other tests' leftovers (e.g. calls left ringing) so that the counts below are ours."""
    with engine.db.begin() as conn:
        conn.execute(sa.delete(tables.timers).where(tables.timers.c.account_id != account))


def test_wrap_timer_returns_the_agent_to_ready(engine: Engine, account: str):
    _forget_other_tests_timers(engine, account)
    engine.save_settings(account, {"wrap_seconds": 20}, actor="admin")
    _connected_agent(engine, account, "amy")
    call = engine.router.offer(account, "support")
    assert call.agent_id == "amy"
    engine.router.answer(account, call.id, "amy")
    ended = engine.router.hangup(account, call.id, "amy")
    assert ended.status == "ended"
    assert engine.get_agent(account, "amy").snapshot.state == WRAP_AUTO
    ((key, due),) = engine.pending_timers(account, "amy")
    assert key.startswith("wrap:") and 15 < (due - now()).total_seconds() <= 20
    assert engine.run_due_timers(now()) == 0  # not yet
    assert engine.run_due_timers(now() + timedelta(seconds=21)) == 1
    assert engine.get_agent(account, "amy").snapshot.state == READY
    assert engine.pending_timers(account, "amy") == []
    assert engine.run_due_timers(now() + timedelta(seconds=60)) == 0


def test_a_state_picked_during_wrap_cancels_the_wrap_timer(engine: Engine, account: str):
    _forget_other_tests_timers(engine, account)
    _connected_agent(engine, account, "ben")
    call = engine.router.offer(account, "support")
    engine.router.answer(account, call.id, "ben")
    engine.router.hangup(account, call.id, "ben")
    assert _timer_keys(engine, account, "ben") == ["wrap"]
    engine.submit(account, "ben", StateChangeRequested(at=now(), state=AWAY), source="t")
    assert _timer_keys(engine, account, "ben") == []
    assert engine.run_due_timers(now() + timedelta(hours=1)) == 0
    assert engine.get_agent(account, "ben").snapshot.state == AWAY


def test_console_grace_timer_logs_out_unless_the_console_returns(engine: Engine, account: str):
    _forget_other_tests_timers(engine, account)
    engine.save_settings(
        account, {"session_grace_seconds": 10, "session_end_policy": "logout"}, actor="a"
    )
    _connected_agent(engine, account, "cat")
    engine.submit(account, "cat", ConsoleDisconnected(at=now()), source="bridge")
    assert _timer_keys(engine, account, "cat") == ["grace"]
    engine.submit(
        account,
        "cat",
        SalesforceSnapshot(at=now(), presence_status="Available", console_connected=True),
        source="bridge",
    )
    assert _timer_keys(engine, account, "cat") == []
    engine.submit(account, "cat", ConsoleDisconnected(at=now()), source="bridge")
    assert engine.run_due_timers(now() + timedelta(seconds=11)) == 1
    snapshot = engine.get_agent(account, "cat").snapshot
    assert snapshot.state == LOGGED_OUT
    assert engine.history(account, "cat", limit=1)[0].cause.value == "session_end"


def test_timer_runner_fires_due_timers(engine: Engine, account: str):
    engine.save_settings(account, {"wrap_seconds": 0}, actor="admin")
    _connected_agent(engine, account, "dan")
    call = engine.router.offer(account, "support")
    engine.router.answer(account, call.id, "dan")
    engine.router.hangup(account, call.id, "dan")

    async def scenario() -> None:
        runner = TimerRunner(engine, poll_interval=0.05)
        task = asyncio.create_task(runner.run())
        for _ in range(100):
            if engine.get_agent(account, "dan").snapshot.state == READY:
                break
            await asyncio.sleep(0.05)
        await runner.stop()
        await task

    asyncio.run(scenario())
    assert engine.get_agent(account, "dan").snapshot.state == READY


def _outbox(engine: Engine) -> list[sa.Row]:
    with engine.db.connect() as conn:
        return conn.execute(sa.select(tables.outbox).order_by(tables.outbox.c.id)).all()


def test_claim_leases_and_retry_backs_off(engine: Engine, account: str):
    settle_outbox(engine)
    engine.create_agent(account, "eve", "Eve", None)
    engine.submit(account, "eve", AgentLoggedIn(at=now()), source="t")
    (command,) = engine.claim_commands(lease_seconds=60)
    assert command.attempts == 1
    assert engine.claim_commands() == []  # leased
    engine.retry_command(command.id, "console offline")
    assert engine.claim_commands() == []  # backing off
    (row,) = [r for r in _outbox(engine) if r.id == command.id]
    assert row.last_error == "console offline" and row.status == "pending"
    assert backoff(1) < backoff(3) < backoff(30) == backoff(100)
    # A lease that ran out (the dispatcher crashed) gives the command back.
    with engine.db.begin() as conn:
        conn.execute(
            sa.update(tables.outbox)
            .where(tables.outbox.c.id == command.id)
            .values(next_attempt_at=now() - timedelta(seconds=1))
        )
    (again,) = engine.claim_commands(lease_seconds=0.0)
    assert again.attempts == 2
    (third,) = engine.claim_commands()  # lease 0: already expired
    engine.complete_command(third.id)
    assert engine.claim_commands() == []
    (done,) = [r for r in _outbox(engine) if r.id == command.id]
    assert done.status == "done" and done.delivered_at is not None


def test_dispatcher_delivers_retries_and_never_sends_void_commands(engine: Engine, account: str):
    settle_outbox(engine)
    engine.create_agent(account, "fay", "Fay", "005000000000006")
    engine.create_agent(account, "gus", "Gus", "005000000000007")
    engine.create_agent(account, "hep", "Hep", "005000000000005")
    engine.submit(account, "fay", AgentLoggedIn(at=now()), source="t")  # fay:1 omni_login
    engine.submit(account, "gus", AgentLoggedIn(at=now()), source="t")  # gus:1
    engine.submit(account, "hep", AgentLoggedIn(at=now()), source="t")  # hep:1
    # Before delivery, fay's command is reported run by the bridge (it is done), and hep's
    # console comes back up, so what was sent to the old one is void (superseded).
    engine.submit(
        account, "fay", CommandResult(at=now(), command_id="fay:1", ok=True), source="bridge"
    )
    engine.submit(
        account,
        "hep",
        SalesforceSnapshot(at=now(), presence_status="Available", console_connected=True),
        source="bridge",
    )
    delivered: list[str] = []
    refusals = {"gus:1": 1}

    async def deliver(command: OutboxCommand) -> bool:
        if refusals.get(command.command_id, 0) > 0:
            refusals[command.command_id] -= 1
            return False
        delivered.append(command.command_id)
        return True

    async def scenario() -> None:
        dispatcher = OutboxDispatcher(engine, deliver, poll_interval=0.05)
        task = asyncio.create_task(dispatcher.run())
        for _ in range(200):
            if delivered:
                break
            dispatcher.wake()
            # the retry waits for its backoff; pull it forward so the test stays fast
            with engine.db.begin() as conn:
                conn.execute(sa.update(tables.outbox).values(next_attempt_at=now()))
            await asyncio.sleep(0.05)
        await dispatcher.stop()
        await task

    asyncio.run(scenario())
    assert delivered == ["gus:1"]
    statuses = {
        r.command_id: (r.status, r.attempts) for r in _outbox(engine) if r.account_id == account
    }
    assert statuses["fay:1"] == ("done", 0)
    assert statuses["hep:1"] == ("superseded", 0)
    assert statuses["gus:1"] == ("done", 2)


def test_an_agents_commands_go_out_in_order(engine: Engine, account: str):
    settle_outbox(engine)
    engine.create_agent(account, "hal", "Hal", None)
    engine.create_agent(account, "ida", "Ida", None)
    engine.submit(account, "hal", AgentLoggedIn(at=now()), source="t")  # hal:1
    engine.submit(account, "hal", StateChangeRequested(at=now(), state=AWAY), source="t")  # hal:2
    engine.submit(account, "ida", AgentLoggedIn(at=now()), source="t")  # ida:1
    first = engine.claim_commands(limit=1)
    assert [c.command_id for c in first] == ["hal:1"]
    # hal:1 is leased (in flight elsewhere): hal:2 must wait for it, ida is free to go.
    assert [c.command_id for c in engine.claim_commands()] == ["ida:1"]
    engine.retry_command(first[0].id, "console busy")
    assert engine.claim_commands() == []  # hal:1 backs off, so hal:2 waits too

    attempts: list[str] = []

    async def deliver(command: OutboxCommand) -> bool:
        attempts.append(command.command_id)
        return False  # the console is gone

    with engine.db.begin() as conn:
        conn.execute(sa.update(tables.outbox).values(next_attempt_at=now(), lease_until=None))

    async def once() -> None:
        await OutboxDispatcher(engine, deliver).run_once()

    asyncio.run(once())
    assert "hal:2" not in attempts  # never tried ahead of hal:1
    assert attempts.count("hal:1") == 1


@pytest.mark.postgres
def test_a_commit_in_another_process_wakes_the_dispatcher_at_once(postgres_url: str):
    """LISTEN/NOTIFY: a second engine (as another process would) decides a command; this
    engine's dispatcher, polling only every 30 s, sends it right away."""
    here = open_engine(postgres_url)
    there = Engine(postgres_url)
    try:
        settle_outbox(here)
        account = seed_account(there)
        there.create_agent(account, "nia", "Nia", None)
        delivered: list[str] = []

        async def deliver(command: OutboxCommand) -> bool:
            delivered.append(command.command_id)
            return True

        async def scenario() -> float:
            dispatcher = OutboxDispatcher(here, deliver, poll_interval=30)
            task = asyncio.create_task(dispatcher.run())
            await asyncio.sleep(0.3)  # first (empty) claim done, now waiting up to 30 s
            assert here._listener is not None
            assert await asyncio.to_thread(here._listener.listening.wait, 10)
            started = time.monotonic()
            await asyncio.to_thread(
                there.submit, account, "nia", AgentLoggedIn(at=now()), source="t"
            )
            while not delivered and time.monotonic() - started < 10:
                await asyncio.sleep(0.02)
            elapsed = time.monotonic() - started
            await dispatcher.stop()
            await task
            return elapsed

        elapsed = asyncio.run(scenario())
        assert delivered == ["nia:1"]
        assert elapsed < 5  # not the 30 s poll
    finally:
        here.close()
        there.close()
