"""Change events -> the core's events (service/change_events.py): examples for each reading of
Salesforce's rows, and a property: any Omni history, its change events arriving in stream order
at any pace, gives back exactly that history per agent, and the replay position never passes an
event that is not settled."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from presencesync.domain.events import PresenceCommitted, WorkCommitted
from presencesync.salesforce.pubsub import ChangeEvent
from presencesync.service.change_events import (
    HOLD_SECONDS,
    ChangeAssembler,
    Directory,
    Observation,
    Output,
    Resync,
)
from tests.cdc.changes import (
    STATUS_IDS,
    change,
    row_created,
    row_ended,
    work_created,
    work_status,
)
from tests.domain.strategies import examples

U1, U2 = "005000000000001AAA", "005000000000002AAA"
DIRECTORY = Directory.build(
    {sid: name for name, sid in STATUS_IDS.items()}, {U1[:15]: "ann", U2: "bob"}
)


def presences(outputs: list[Output]) -> list[tuple[str, str | None]]:
    out = []
    for o in outputs:
        assert isinstance(o, Observation)
        assert isinstance(o.event, PresenceCommitted)
        out.append((o.agent_id, o.event.presence_status))
    return out


def test_a_login_is_a_new_current_row() -> None:
    a = ChangeAssembler()
    created = row_created("0Hn1", U1, "Available", tx="t1")
    (obs,) = a.add(created, 0.0, DIRECTORY)
    assert isinstance(obs, Observation) and obs.agent_id == "ann"
    assert isinstance(obs.event, PresenceCommitted)
    assert obs.event.presence_status == "Available"
    assert obs.event.transaction_key == "t1" and obs.event.sequence == 1
    assert obs.source_id.startswith(f"cdc:{created.event_id}")
    assert a.confirmable() is created


def test_a_status_change_is_one_change_not_a_logout_and_a_login() -> None:
    a = ChangeAssembler()
    a.add(row_created("0Hn1", U1, "Available", tx="t1"), 0.0, DIRECTORY)
    ended = row_ended("0Hn1", tx="t2", seq=1, ms=5000)
    assert a.add(ended, 1.0, DIRECTORY) == []
    assert a.holding and a.confirmable() is not ended  # not applied yet: not confirmable
    created = row_created("0Hn2", U1, "Lunch", tx="t2", seq=2, ms=5000)
    assert presences(a.add(created, 1.01, DIRECTORY)) == [("ann", "Lunch")]
    assert not a.holding and a.confirmable() is created
    assert a.due(100.0, DIRECTORY) == []


def test_an_ended_row_alone_is_an_omni_logout_once_the_window_passes() -> None:
    a = ChangeAssembler()
    a.add(row_created("0Hn1", U1, "Available", tx="t1"), 0.0, DIRECTORY)
    ended = row_ended("0Hn1", tx="t2", ms=9000)
    assert a.add(ended, 5.0, DIRECTORY) == []
    assert a.next_deadline() == 5.0 + HOLD_SECONDS
    assert a.due(5.5, DIRECTORY) == []
    assert presences(a.due(6.0, DIRECTORY)) == [("ann", None)]
    assert a.confirmable() is ended


def test_a_logout_then_a_later_login_are_two_changes() -> None:
    a = ChangeAssembler()
    a.add(row_created("0Hn1", U1, "Available", tx="t1"), 0.0, DIRECTORY)
    a.add(row_ended("0Hn1", tx="t2", ms=1000), 1.0, DIRECTORY)
    login = row_created("0Hn2", U1, "Busy", tx="t3", ms=20_000)
    assert presences(a.add(login, 1.1, DIRECTORY)) == [("ann", None), ("ann", "Busy")]


def test_the_create_first_reading_ends_an_old_row_quietly() -> None:
    a = ChangeAssembler()
    a.add(row_created("0Hn1", U1, "Available", tx="t1"), 0.0, DIRECTORY)
    assert presences(a.add(row_created("0Hn2", U1, "Lunch", tx="t2"), 1.0, DIRECTORY)) == [
        ("ann", "Lunch")
    ]
    assert a.add(row_ended("0Hn1", tx="t2", seq=2), 1.0, DIRECTORY) == []
    assert not a.holding


def test_the_create_first_reading_after_a_restart_is_told_by_the_transaction() -> None:
    """No memory of the user's rows (a fresh process): an end in the transaction that just
    created the current row is still the old row's."""
    a = ChangeAssembler()
    a.add(row_created("0Hn2", U1, "Lunch", tx="t2"), 1.0, DIRECTORY)
    a.learn_owner("0Hn1", U1)
    assert a.add(row_ended("0Hn1", tx="t2", seq=2), 1.0, DIRECTORY) == []
    assert not a.holding


def test_an_in_place_status_update_and_a_deleted_row() -> None:
    a = ChangeAssembler()
    a.add(row_created("0Hn1", U1, "Available", tx="t1"), 0.0, DIRECTORY)
    moved = change(
        "UserServicePresence",
        "UPDATE",
        ("0Hn1",),
        {"ServicePresenceStatusId": STATUS_IDS["Busy"]},
        changed=("ServicePresenceStatusId",),
        tx="t2",
    )
    assert presences(a.add(moved, 1.0, DIRECTORY)) == [("ann", "Busy")]
    deleted = change("UserServicePresence", "DELETE", ("0Hn1",), tx="t3", ms=5000)
    assert a.add(deleted, 2.0, DIRECTORY) == []
    assert presences(a.due(10.0, DIRECTORY)) == [("ann", None)]


def test_owners_of_updated_rows_come_from_creates_or_from_the_runner() -> None:
    a = ChangeAssembler()
    ended = row_ended("0Hn000000000009AAA", tx="t2")
    assert a.owners_needed(ended) == ["0Hn000000000009AAA"]  # never saw its create: ask
    a.learn_owner("0Hn000000000009", U2)  # a 15-character id names the same row
    assert a.owners_needed(ended) == []
    a.add(ended, 0.0, DIRECTORY)
    assert presences(a.due(2.0, DIRECTORY)) == [("bob", None)]
    enriched = row_ended("0Hn8", tx="t3", user=U1)  # the org enriches updates with UserId
    assert a.owners_needed(enriched) == []
    capacity = change(
        "UserServicePresence",
        "UPDATE",
        ("0Hn7",),
        {"ConfiguredCapacity": 5},
        changed=("ConfiguredCapacity",),
    )
    assert a.owners_needed(capacity) == []  # means nothing to anyone: no lookup
    assert a.add(capacity, 3.0, DIRECTORY) == []
    # A row created earlier in the same batch needs no lookup either.
    batch = [row_created("0Hn6", U1, "Lunch", tx="t4"), row_ended("0Hn6", tx="t5")]
    assert a.owners_needed_in(batch) == []
    assert a.owners_needed_in([row_ended("0Hn5", tx="t6"), *batch]) == ["0Hn5"]


def test_unknown_statuses_and_unknown_users() -> None:
    a = ChangeAssembler()
    (obs,) = a.add(row_created("0Hn1", U1, "0N5999999999999AAA", tx="t1"), 0.0, DIRECTORY)
    assert isinstance(obs, Observation) and isinstance(obs.event, PresenceCommitted)
    assert obs.event.presence_status == "0N5999999999999AAA"  # the core reports it (rule 9)
    stranger = row_created("0Hn2", "005000000000999AAA", "Available", tx="t2")
    assert a.add(stranger, 1.0, DIRECTORY) == []
    assert a.confirmable() is stranger  # nothing to do is settled too


def test_one_event_ending_the_rows_of_two_users() -> None:
    """Salesforce merges the same change of several records in one transaction into one
    event (recordIds has them all)."""
    a = ChangeAssembler()
    a.add(row_created("0Hn1", U1, "Available", tx="t1"), 0.0, DIRECTORY)
    a.add(row_created("0Hn2", U2, "Available", tx="t1", seq=2), 0.0, DIRECTORY)
    both = change(
        "UserServicePresence",
        "UPDATE",
        ("0Hn1", "0Hn2"),
        {"IsCurrentState": False},
        changed=("IsCurrentState",),
        tx="t2",
        ms=9000,
    )
    a.add(both, 1.0, DIRECTORY)
    back = row_created("0Hn3", U1, "Lunch", tx="t2", seq=2, ms=9000)
    assert presences(a.add(back, 1.1, DIRECTORY)) == [("ann", "Lunch")]
    assert a.confirmable() is not back  # bob's end is still held: the event is not settled
    assert presences(a.due(5.0, DIRECTORY)) == [("bob", None)]
    assert a.confirmable() is back


def test_agent_work() -> None:
    a = ChangeAssembler()
    outputs = a.add(work_created("0Bz1", U1, tx="w1"), 0.0, DIRECTORY)
    outputs += a.add(work_status("0Bz1", "Opened", tx="w2"), 0.1, DIRECTORY)
    outputs += a.add(work_status("0Bz1", "Closed", tx="w3"), 0.2, DIRECTORY)
    unrelated = change("AgentWork", "UPDATE", ("0Bz1",), {"ActiveTime": 3}, changed=("ActiveTime",))
    outputs += a.add(unrelated, 0.3, DIRECTORY)
    events = [o.event for o in outputs if isinstance(o, Observation)]
    assert all(isinstance(e, WorkCommitted) for e in events)
    assert [(e.work_id, e.status, e.channel) for e in events] == [  # type: ignore[union-attr]
        ("0Bz1", "Assigned", "Case"),
        ("0Bz1", "Opened", None),
        ("0Bz1", "Closed", None),
    ]
    assert a.owners_needed(work_status("0Bz2", "Opened", tx="w4")) == ["0Bz2"]


def test_a_gap_event_asks_for_a_reconcile() -> None:
    a = ChangeAssembler()
    gap = change("UserServicePresence", "GAP_UPDATE", ("0Hn1",))
    (resync,) = a.add(gap, 0.0, DIRECTORY)
    assert isinstance(resync, Resync) and "GAP_UPDATE" in resync.reason
    assert a.confirmable() is gap


# --- the property -------------------------------------------------------------------------------


@dataclass
class Step:
    user: str
    status: str | None  # None: logout


@st.composite
def histories(draw: st.DrawFn) -> list[Step]:
    """An Omni history of two users: logins, status changes, logouts, in any order."""
    steps: list[Step] = []
    online: dict[str, str | None] = {U1: None, U2: None}
    for _ in range(draw(st.integers(1, 25))):
        user = draw(st.sampled_from([U1, U2]))
        if online[user] is None:
            status: str | None = draw(st.sampled_from(sorted(STATUS_IDS)))
        else:
            choices = [s for s in sorted(STATUS_IDS) if s != online[user]] + [None]
            status = draw(st.sampled_from(choices))
        online[user] = status
        steps.append(Step(user, status))
    return steps


def events_of(history: list[Step]) -> list[list[ChangeEvent]]:
    """The change events of each step's transaction, as the emulator commits them: a status
    change ends the current row then creates the new one; a logout only ends it. Steps are
    seconds apart in commit time (people do not log out and in again within a second)."""
    rows: dict[str, str] = {}
    transactions = []
    for n, step in enumerate(history):
        tx, ms = f"t{n}", n * 5000
        events = []
        if step.user in rows:
            events.append(row_ended(rows.pop(step.user), tx=tx, ms=ms))
        if step.status is not None:
            rows[step.user] = f"0Hn{n:012d}"
            seq = len(events) + 1
            events.append(
                row_created(rows[step.user], step.user, step.status, tx=tx, seq=seq, ms=ms)
            )
        transactions.append(events)
    return transactions


@settings(max_examples=examples(300), deadline=None)
@given(histories(), st.data())
def test_any_history_comes_back_exactly_and_replay_never_skips_an_unsettled_event(
    history: list[Step], data: st.DataObject
) -> None:
    assembler = ChangeAssembler()
    now = 0.0
    got: list[Output] = []
    transactions = events_of(history)
    stream = [e for tx in transactions for e in tx]
    settled_upto = -1
    for tx_events in transactions:
        for event in tx_events:
            # Within a transaction, events come a moment apart (maybe split across fetches).
            now += data.draw(st.floats(0, HOLD_SECONDS / 2))
            got += assembler.add(event, now, DIRECTORY)
            got += assembler.due(now, DIRECTORY)
            mark = assembler.confirmable()
            if mark is not None:
                position = stream.index(mark)
                assert position >= settled_upto  # never moves back
                settled_upto = position
                # Everything up to the mark produced its observation already.
        # Between transactions: any pause, shorter or longer than the window.
        now += data.draw(st.sampled_from([0.0, 0.2, HOLD_SECONDS, 30.0]))
        got += assembler.due(now, DIRECTORY)
    got += assembler.due(now + 10 * HOLD_SECONDS, DIRECTORY)
    agent_of = {U1: "ann", U2: "bob"}
    for user in (U1, U2):
        expected = [s.status for s in history if s.user == user]
        seen = [status for agent, status in presences(got) if agent == agent_of[user]]
        assert seen == expected
    assert assembler.confirmable() is stream[-1]
    assert not assembler.holding
