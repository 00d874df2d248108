"""submit: one transaction per event (log + snapshot + history + outbox), duplicates applied
once, refused and malformed events write nothing, group commit keeps order and isolation."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from presencesync.domain import (
    AWAY,
    READY,
    AgentLoggedIn,
    AgentSnapshot,
    DomainError,
    Event,
    OpenWork,
    Outcome,
    PresenceChanged,
    Rejected,
    StateChangeRequested,
    StatusChangeReason,
    decide,
)
from presencesync.service import Engine, NotFound, SalesforceView, event_to_json, open_engine
from presencesync.store import tables

from .engine_kit import count_rows, now, seed_account, seed_agents, settle_outbox


def _log(engine: Engine, account: str, agent: str) -> list[sa.Row]:
    with engine.db.connect() as conn:
        return conn.execute(
            sa.select(tables.event_log)
            .where(tables.event_log.c.account_id == account, tables.event_log.c.agent_id == agent)
            .order_by(tables.event_log.c.seq)
        ).all()


def test_login_writes_log_snapshot_history_and_outbox_together(engine: Engine, account: str):
    settle_outbox(engine)
    engine.create_agent(account, "alice", "Alice", "005000000000001")
    applied = engine.submit(account, "alice", AgentLoggedIn(at=now()), source="contactpad")
    assert not applied.duplicate and applied.decision.outcome is Outcome.APPLIED
    assert engine.get_agent(account, "alice").snapshot == applied.decision.agent
    (row,) = _log(engine, account, "alice")
    assert (row.id, row.seq, row.source, row.event_type, row.outcome) == (
        applied.event_id,
        1,
        "contactpad",
        "AgentLoggedIn",
        "applied",
    )
    assert row.decision["commands"][0]["kind"] == "omni_login"
    assert [t.to_api() for t in engine.history(account, "alice")] == [
        t.to_api() for t in applied.decision.transitions
    ]
    (command,) = engine.claim_commands()
    assert command.command_id == "alice:1"
    assert command.salesforce_user_id == "005000000000001"
    assert command.payload == {
        "kind": "omni_login",
        "command_id": "alice:1",
        "presence_status": "Available",
        "caused_by_seq": 1,
    }


def test_snapshot_equals_a_sequential_replay_of_the_log(engine: Engine, account: str):
    engine.create_agent(account, "bob", "Bob", None)
    config = engine.get_omni_config(account).config  # type: ignore[union-attr]
    events: list[Event] = [
        AgentLoggedIn(at=now()),
        StateChangeRequested(at=now(), state=AWAY),
        PresenceChanged(at=now(), presence_status="Available", seq=1),
        PresenceChanged(at=now(), presence_status="Lunch", seq=2),
        PresenceChanged(at=now(), presence_status="Busy", seq=2),  # a duplicate seq: logged
        StateChangeRequested(at=now(), state=READY),
    ]
    for event in events:
        engine.submit(account, "bob", event, source="test")
    replay = AgentSnapshot(agent_id="bob")
    for event in events:
        replay = decide(replay, event, config).agent
    assert engine.get_agent(account, "bob").snapshot == replay
    log = _log(engine, account, "bob")
    assert [r.seq for r in log] == [1, 2, 3, 4, 5, 6]
    assert log[4].outcome == "duplicate"
    seqs = [t.seq for t in engine.history(account, "bob", limit=1000)]
    assert seqs == sorted(seqs, reverse=True) == list(range(len(seqs), 0, -1))
    assert [t.seq for t in engine.history(account, "bob", limit=2, before=3)] == [2, 1]


def test_duplicate_source_id_is_applied_once(engine: Engine, account: str):
    engine.create_agent(account, "carol", "Carol", None)
    first = engine.submit(
        account, "carol", AgentLoggedIn(at=now()), source="bridge", source_id="m1"
    )
    rows = count_rows(engine)
    again = engine.submit(
        account, "carol", AgentLoggedIn(at=now()), source="bridge", source_id="m1"
    )
    assert again.duplicate and again.event_id == first.event_id
    assert again.decision.outcome is first.decision.outcome
    assert count_rows(engine) == rows
    # Same id from another source is another event (here refused: already logged in).
    with pytest.raises(Rejected):
        engine.submit(account, "carol", AgentLoggedIn(at=now()), source="other", source_id="m1")
    assert count_rows(engine) == rows


def test_bad_input_is_refused_and_writes_nothing(engine: Engine, account: str):
    other = seed_account(engine, "Other")
    engine.create_agent(other, "mallory", "Mallory", None)
    engine.create_agent(account, "dave", "Dave", None)
    before = count_rows(engine)

    with pytest.raises(NotFound) as unknown:
        engine.submit(account, "ghost", AgentLoggedIn(at=now()), source="test")
    assert unknown.value.code == "AGENT_NOT_FOUND"
    with pytest.raises(NotFound) as foreign:
        engine.submit(account, "mallory", AgentLoggedIn(at=now()), source="test")
    assert foreign.value.code == "AGENT_NOT_FOUND"
    with pytest.raises(NotFound) as no_account:
        engine.submit("no-such-account", "dave", AgentLoggedIn(at=now()), source="test")
    assert no_account.value.code == "ACCOUNT_NOT_FOUND"
    with pytest.raises(Rejected) as refused:
        engine.submit(account, "dave", StateChangeRequested(at=now(), state=AWAY), source="t")
    assert refused.value.code == "NOT_LOGGED_IN"
    for malformed in (
        {"type": "StateChangeRequested", "at": now().isoformat(), "state": "Elsewhere"},
        {"type": "StateChangeRequested", "at": "yesterday", "state": "Away"},
        {"type": "Explode", "at": now().isoformat()},
        {"type": "AgentLoggedIn", "at": now().isoformat(), "extra": 1},
        ["not", "an", "object"],
    ):
        with pytest.raises(DomainError) as error:
            engine.submit_json(account, "dave", malformed, source="test")  # type: ignore[arg-type]
        assert error.value.code in ("INVALID_EVENT", "INVALID_STATE"), malformed
    with pytest.raises(DomainError) as not_event:
        engine.submit(account, "dave", "login", source="test")  # type: ignore[arg-type]
    assert not_event.value.code == "INVALID_EVENT"
    # A state that parses but is not in the account's catalog: refused by the core.
    engine.submit(account, "dave", AgentLoggedIn(at=now()), source="test")
    before = count_rows(engine)
    bad_state = {"type": "StateChangeRequested", "at": now().isoformat(), "state": "Away/Nope"}
    with pytest.raises(DomainError):
        engine.submit_json(account, "dave", bad_state, source="test")
    assert count_rows(engine) == before


def test_json_round_trip_through_submit(engine: Engine, account: str):
    engine.create_agent(account, "erin", "Erin", None)
    event = AgentLoggedIn(at=now(), state=AWAY)
    applied = engine.submit_json(account, "erin", event_to_json(event), source="web")
    assert applied.decision.agent.state == AWAY
    (row,) = _log(engine, account, "erin")
    assert row.event == event_to_json(event)


def test_group_commit_batches_without_letting_a_refusal_undo_the_rest(database_url: str):
    engine = open_engine(database_url, group_commit=True)
    try:
        account = seed_account(engine)
        agents = seed_agents(engine, account, 24)
        errors: list[Exception] = []
        barrier = threading.Barrier(len(agents))

        def work(agent_id: str, n: int) -> None:
            barrier.wait()
            try:
                if n % 4 == 0:  # refused: not logged in
                    engine.submit(
                        account, agent_id, StateChangeRequested(at=now(), state=AWAY), source="t"
                    )
                engine.submit(account, agent_id, AgentLoggedIn(at=now()), source="t")
                engine.submit(
                    account, agent_id, StateChangeRequested(at=now(), state=AWAY), source="t"
                )
            except Rejected as error:
                errors.append(error)
                engine.submit(account, agent_id, AgentLoggedIn(at=now()), source="t")
                engine.submit(
                    account, agent_id, StateChangeRequested(at=now(), state=AWAY), source="t"
                )

        threads = [threading.Thread(target=work, args=(a, n)) for n, a in enumerate(agents)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(errors) == 6
        for agent_id in agents:
            assert engine.get_agent(account, agent_id).snapshot.state == AWAY
            assert [r.seq for r in _log(engine, account, agent_id)] == [1, 2]
        with engine.db.connect() as conn:
            commits = conn.execute(
                sa.select(sa.func.count(sa.distinct(tables.event_log.c.applied_at))).where(
                    tables.event_log.c.account_id == account
                )
            ).scalar()
        assert commits < 2 * len(agents)  # several events shared a transaction
    finally:
        engine.close()


def test_events_of_one_agent_keep_submission_order_across_threads(engine: Engine, account: str):
    engine.create_agent(account, "frank", "Frank", None)
    engine.submit(account, "frank", AgentLoggedIn(at=now()), source="t")
    lock = threading.Lock()
    order: list[int] = []

    def flip(n: int) -> None:
        state = AWAY if n % 2 else READY
        with lock:  # submission order = the order this lock is taken
            order.append(n)
            engine.submit(
                account,
                "frank",
                StateChangeRequested(at=now(), state=state),
                source="t",
                source_id=f"flip{n}",
            )

    threads = [threading.Thread(target=flip, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log = _log(engine, account, "frank")[1:]
    assert [r.source_id for r in log] == [f"flip{n}" for n in order]


def test_subscribers_hear_about_commits(engine: Engine, account: str):
    engine.create_agent(account, "gina", "Gina", None)
    heard: list[tuple[str, str, int]] = []
    unsubscribe = engine.subscribe(
        lambda acc, agent, applied: heard.append((acc, agent, applied.event_id))
    )
    applied = engine.submit(account, "gina", AgentLoggedIn(at=now()), source="t")
    assert heard == [(account, "gina", applied.event_id)]
    unsubscribe()
    engine.submit(account, "gina", StateChangeRequested(at=now(), state=AWAY), source="t")
    assert len(heard) == 1


def test_reconcile_submits_corrections_only_for_drift(engine: Engine, account: str):
    engine.create_agent(account, "hank", "Hank", "005000000000008")
    engine.create_agent(account, "ivy", "Ivy", "005000000000009")
    for agent in ("hank", "ivy"):
        engine.submit(account, agent, AgentLoggedIn(at=now()), source="t")
        engine.submit(
            account,
            agent,
            PresenceChanged(
                at=now(),
                presence_status="Available",
                reason=StatusChangeReason.TOOLKIT,
                command_id=f"{agent}:1",
            ),
            source="t",
        )
    views = [
        SalesforceView("005000000000008", "Available"),  # in step
        SalesforceView("005000000000009", "Lunch", (OpenWork("0Bz1", False, "Case"),)),
        SalesforceView("005999999999999", "Busy"),  # nobody of ours
    ]
    applied = engine.reconcile(account, views)
    assert len(applied) == 1
    ivy = engine.get_agent(account, "ivy").snapshot
    assert ivy.presence == "Lunch" and ivy.open_work_ids == ("0Bz1",)
    assert str(ivy.state) == "ExtendedAway/Lunch"
    assert engine.history(account, "ivy", limit=1)[0].cause.value in ("reconcile", "sync")
    assert engine.reconcile(account, views) == []


def test_history_times_are_utc(engine: Engine, account: str):
    engine.create_agent(account, "jo", "Jo", None)
    at = now() - timedelta(seconds=5)
    engine.submit(account, "jo", AgentLoggedIn(at=at), source="t")
    (entry,) = engine.history(account, "jo")
    assert entry.at == at and entry.at.utcoffset() == timedelta(0)


def test_a_subscriber_may_submit_from_the_writer_thread(engine: Engine, account: str):
    engine.create_agent(account, "kim", "Kim", None)
    engine.create_agent(account, "lee", "Lee", None)

    def follow(acc: str, agent: str, _applied: object) -> None:
        if agent == "kim":  # would deadlock if it queued behind the writer it runs on
            engine.submit(acc, "lee", AgentLoggedIn(at=now()), source="follow")

    engine.subscribe(follow)
    engine.submit(account, "kim", AgentLoggedIn(at=now()), source="t")
    assert engine.get_agent(account, "lee").snapshot.state == READY


def test_in_memory_sqlite_is_one_shared_database():
    with open_engine("sqlite://") as engine:
        account = seed_account(engine)
        seed_agents(engine, account, 3)
        threads = [
            threading.Thread(
                target=engine.submit,
                args=(account, agent, AgentLoggedIn(at=now())),
                kwargs={"source": "t"},
            )
            for agent in ("a00000", "a00001", "a00002")
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert all(r.snapshot.state == READY for r in engine.list_agents(account))


def test_the_same_event_submitted_at_once_is_applied_once(engine: Engine, account: str):
    engine.create_agent(account, "max", "Max", None)
    results = []
    barrier = threading.Barrier(8)

    def send() -> None:
        barrier.wait()
        results.append(
            engine.submit(account, "max", AgentLoggedIn(at=now()), source="bridge", source_id="x")
        )

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.duplicate for r in results) == [False] + [True] * 7
    assert len({r.event_id for r in results}) == 1
    assert len(_log(engine, account, "max")) == 1
