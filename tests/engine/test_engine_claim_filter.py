"""Claiming only the commands of given agents (those whose console is connected to this
process), on SQLite and PostgreSQL; `make_due`; the dispatcher's `claimable`."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from presencesync.domain import AWAY, AgentLoggedIn, StateChangeRequested
from presencesync.service import Engine, OutboxCommand, OutboxDispatcher
from presencesync.service import outbox as outbox_ops
from presencesync.service.model import as_utc
from presencesync.store import tables

from .engine_kit import now, settle_outbox


def _rows(engine: Engine, account: str) -> dict[str, sa.Row]:
    with engine.db.connect() as conn:
        rows = conn.execute(
            sa.select(tables.outbox).where(tables.outbox.c.account_id == account)
        ).all()
    return {row.command_id: row for row in rows}


def _agents_with_commands(engine: Engine, account: str, *names: str) -> None:
    for name in names:
        engine.create_agent(account, name, name.title(), None)
        engine.submit(account, name, AgentLoggedIn(at=now()), source="t")  # <name>:1


def test_claim_takes_only_the_given_agents_commands(engine: Engine, account: str):
    settle_outbox(engine)
    _agents_with_commands(engine, account, "ann", "bob", "cal")
    engine.submit(account, "ann", StateChangeRequested(at=now(), state=AWAY), source="t")  # ann:2
    assert engine.claim_commands(agents=set()) == []  # nobody connected: nothing claimed
    assert engine.claim_commands(agents=[("another-account", "ann")]) == []
    claimed = engine.claim_commands(agents={(account, "ann"), (account, "cal")})
    # Oldest first (ann's two in the order they were decided); bob's is not ours to take.
    assert [c.command_id for c in claimed] == ["ann:1", "cal:1", "ann:2"]
    rows = _rows(engine, account)
    assert rows["bob:1"].attempts == 0 and rows["bob:1"].lease_until is None
    assert all(rows[c].attempts == 1 for c in ("ann:1", "ann:2", "cal:1"))
    # The old call, no filter, still takes any agent's (bob's is all that is left).
    assert [c.command_id for c in engine.claim_commands()] == ["bob:1"]


def test_claim_filter_keeps_agent_order_and_lease(engine: Engine, account: str):
    settle_outbox(engine)
    _agents_with_commands(engine, account, "dee")
    engine.submit(account, "dee", StateChangeRequested(at=now(), state=AWAY), source="t")  # dee:2
    dee = {(account, "dee")}
    (first,) = engine.claim_commands(limit=1, lease_seconds=60, agents=dee)
    assert first.command_id == "dee:1"
    # dee:1 is leased (in flight): dee:2 must not overtake it.
    assert engine.claim_commands(agents=dee) == []
    engine.retry_command(first.id, "console gone")
    assert engine.claim_commands(agents=dee) == []  # dee:1 backs off, dee:2 waits behind it
    # The console connects again: what was backing off is due at once, in order.
    assert engine.make_due(account, "dee") == 1  # dee:2 was due already
    assert engine.make_due(account, "dee") == 0
    claimed = engine.claim_commands(agents=dee)
    assert [(c.command_id, c.attempts) for c in claimed] == [("dee:1", 2), ("dee:2", 1)]


def test_make_due_leaves_leases_and_other_agents_alone(engine: Engine, account: str):
    settle_outbox(engine)
    _agents_with_commands(engine, account, "eli", "fox")
    (eli,) = engine.claim_commands(lease_seconds=60, agents={(account, "eli")})
    (fox,) = engine.claim_commands(lease_seconds=60, agents={(account, "fox")})
    engine.retry_command(fox.id, "console gone")
    assert engine.make_due(account, "eli") == 0  # leased, not backing off: untouched
    assert engine.claim_commands(agents={(account, "eli"), (account, "fox")}) == []
    assert engine.make_due(account, "fox") == 1
    (again,) = engine.claim_commands(agents={(account, "eli"), (account, "fox")})
    assert again.command_id == "fox:1" and eli.command_id == "eli:1"


def test_claim_filter_chunks_long_agent_lists(
    engine: Engine, account: str, monkeypatch: pytest.MonkeyPatch
):
    """Many connected agents: the IN list goes in chunks (small ones here, so that the real
    agents fall in different chunks), and the limit holds across chunks."""
    settle_outbox(engine)
    names = ["gia", "hal", "ivy", "jon", "kai"]
    _agents_with_commands(engine, account, *names)
    monkeypatch.setattr(outbox_ops, "AGENT_CHUNK", 2)
    ghosts = {(account, f"ghost{n}") for n in range(7)}
    agents = ghosts | {(account, name) for name in names}
    first = engine.claim_commands(limit=3, agents=agents)
    assert len(first) == 3
    rest = engine.claim_commands(limit=10, agents=agents)
    assert sorted(c.command_id for c in first + rest) == [f"{name}:1" for name in names]
    assert engine.claim_commands(agents=agents) == []


def test_claim_filter_with_more_agents_than_one_statement_takes(engine: Engine, account: str):
    """40 000 pairs are 80 000 bind parameters: more than PostgreSQL takes in one statement
    (65 535), so this works only in chunks."""
    settle_outbox(engine)
    _agents_with_commands(engine, account, "lia")
    agents = [(account, f"nobody{n:05d}") for n in range(40_000)] + [(account, "lia")]
    (claimed,) = engine.claim_commands(agents=agents)
    assert claimed.command_id == "lia:1"


def test_commands_of_unconnected_agents_spend_no_attempts(engine: Engine, account: str):
    """A dispatcher claiming for nobody leaves every command pending, attempts 0: it can wait
    as long as it takes for a console, never reaching the failed-after-MAX_ATTEMPTS limit."""
    settle_outbox(engine)
    _agents_with_commands(engine, account, "max")
    delivered: list[str] = []
    rounds = wakes = 0

    async def deliver(command: OutboxCommand) -> bool:
        delivered.append(command.command_id)
        return True

    def claimable() -> set[tuple[str, str]]:
        nonlocal rounds
        rounds += 1
        return set()

    async def scenario() -> None:
        dispatcher = OutboxDispatcher(engine, deliver, poll_interval=0.01, claimable=claimable)
        wake = dispatcher.wake

        def counting_wake() -> None:  # other tests' commits on a shared PostgreSQL wake it too
            nonlocal wakes
            wakes += 1
            wake()

        dispatcher.wake = counting_wake  # type: ignore[method-assign]
        task = asyncio.create_task(dispatcher.run())
        await asyncio.sleep(0.3)
        await dispatcher.stop()
        await task

    asyncio.run(scenario())
    assert delivered == []
    # Idle with nobody connected: it slept until woken instead of polling every 10 ms (~30).
    assert 1 <= rounds <= 1 + wakes
    row = _rows(engine, account)["max:1"]
    assert (row.status, row.attempts, row.last_error) == ("pending", 0, None)


def test_dispatcher_claims_for_claimable_agents_and_wakes_when_one_connects(
    engine: Engine, account: str
):
    settle_outbox(engine)
    _agents_with_commands(engine, account, "ned", "ola")
    connected: set[tuple[str, str]] = set()
    delivered: list[str] = []

    async def deliver(command: OutboxCommand) -> bool:
        delivered.append(command.command_id)
        return (command.account_id, command.agent_id) in connected

    async def scenario() -> float:
        # Polls every 30 s: only a wake-up can make it send within the test.
        dispatcher = OutboxDispatcher(
            engine, deliver, poll_interval=30, claimable=lambda: set(connected)
        )
        task = asyncio.create_task(dispatcher.run())
        await asyncio.sleep(0.2)  # first round: nobody connected, asleep until woken
        assert delivered == []
        connected.add((account, "ned"))  # ned's console connects here (what the hub does)
        started = time.monotonic()
        await asyncio.to_thread(engine.make_due, account, "ned")
        engine.wake_dispatchers()
        while not delivered and time.monotonic() - started < 5:
            await asyncio.sleep(0.01)
        elapsed = time.monotonic() - started
        await asyncio.sleep(0.1)
        await dispatcher.stop()
        await task
        return elapsed

    elapsed = asyncio.run(scenario())
    assert delivered == ["ned:1"] and elapsed < 2
    rows = _rows(engine, account)
    assert (rows["ned:1"].status, rows["ned:1"].attempts) == ("done", 1)
    assert (rows["ola:1"].status, rows["ola:1"].attempts) == ("pending", 0)


def test_a_command_whose_socket_just_closed_goes_back_for_retry(engine: Engine, account: str):
    """Claimed while the console was connected, not delivered because it closed meanwhile:
    retried with backoff as before; not claimed again while the agent is away; due at once
    when a console connects (make_due)."""
    settle_outbox(engine)
    _agents_with_commands(engine, account, "pam")
    pam = (account, "pam")
    connected = {pam}
    attempts: list[str] = []

    async def deliver(command: OutboxCommand) -> bool:
        attempts.append(command.command_id)
        connected.discard(pam)  # the socket closes as the command is sent
        return False

    async def once() -> None:
        dispatcher = OutboxDispatcher(engine, deliver, claimable=lambda: set(connected))
        await dispatcher.run_once()
        assert await dispatcher.run_once() == 0  # pam is not connected: not claimed

    asyncio.run(once())
    assert attempts == ["pam:1"]
    row = _rows(engine, account)["pam:1"]
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "not delivered")
    assert row.lease_until is None
    assert as_utc(row.next_attempt_at) > now() + timedelta(seconds=0.2)  # backoff(1)
    assert engine.claim_commands(agents={pam}) == []  # backing off
    assert engine.make_due(account, "pam") == 1
    (again,) = engine.claim_commands(agents={pam})
    assert (again.command_id, again.attempts) == ("pam:1", 2)
