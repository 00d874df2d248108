"""The unit of work: apply a batch of events in ONE transaction.

For each event, in submission order: load the agent's snapshot (locked), `decide`, and write the
event log row, the new snapshot, the history entries, the outbox rows (Salesforce commands) and
the timers. A batch holds many agents' events (group commit); an event the rules refuse writes
nothing and leaves the rest of the batch alone, because `decide` is pure and the writes happen
only after every decision of the batch is taken.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from presencesync.domain import (
    READY,
    AgentSnapshot,
    Decision,
    DomainError,
    Event,
    Outcome,
    SalesforceCommand,
    command_payload,
    decide,
    is_routable,
)
from presencesync.service.codec import event_to_json, event_type
from presencesync.service.errors import NotFound
from presencesync.service.model import Applied, as_utc, utcnow
from presencesync.service.repository import AccountContext, ContextCache
from presencesync.service.timers import TimerOp, plan_timers
from presencesync.store import tables as t

# Runs inside the event's transaction after `decide`; raising a DomainError undoes the event.
Hook = Callable[[Connection, Decision, AgentSnapshot], None]


@dataclass
class Item:
    account_id: str
    agent_id: str
    event: Event
    source: str
    source_id: str | None = None
    hook: Hook | None = None
    timer_id: int | None = None  # the timer row this event fires (deleted with it)
    received_at: datetime = field(default_factory=utcnow)
    future: concurrent.futures.Future[Result] = field(default_factory=concurrent.futures.Future)


@dataclass(frozen=True)
class Result:
    applied: Applied
    routable_before: bool
    routable_after: bool
    has_salesforce_commands: bool
    requeued: bool = False  # an offered call went back to the queue (the agent left)
    withdraw: str | None = None  # the ringing call to take back from the agent (now busy)

    @property
    def became_routable(self) -> bool:
        return self.routable_after and not self.routable_before

    @property
    def needs_routing(self) -> bool:
        return self.became_routable or self.requeued


@dataclass
class _AgentState:
    row_id: int
    snapshot: AgentSnapshot
    version: int
    dirty: bool = False


def decision_to_json(decision: Decision) -> dict[str, Any]:
    return {
        "outcome": decision.outcome.value,
        "notes": list(decision.notes),
        "commands": [command_payload(c) for c in decision.commands],
        "transitions": [tr.to_api() for tr in decision.transitions],
    }


def apply_batch(
    conn: Connection, items: list[Item], contexts_cache: ContextCache
) -> list[Result | DomainError]:
    """Decide every item and write the results; the caller owns (and commits) the transaction."""
    now = utcnow()
    contexts: dict[str, AccountContext | DomainError] = {}
    for account_id in dict.fromkeys(i.account_id for i in items):
        try:
            contexts[account_id] = contexts_cache.get(conn, account_id)
        except DomainError as error:
            contexts[account_id] = error
    agents = _lock_agents(conn, items)
    seen = _known_sources(conn, items)

    results: list[Result | DomainError] = []
    event_rows: list[dict[str, Any]] = []
    history_rows: list[list[dict[str, Any]]] = []  # per event row, filled with event_id later
    outbox_rows: list[dict[str, Any]] = []
    timer_ops: list[TimerOp] = []
    timer_owner: dict[str, tuple[str, str]] = {}
    fired_timers: list[int] = []
    settled: list[tuple[str, str, str]] = []  # commands the agent no longer waits for
    pending: list[tuple[int, int, Result]] = []  # result slot, event row, result sans event id
    duplicates_in_batch: list[tuple[int, int]] = []  # result slot -> event row

    for item in items:
        slot = len(results)
        context = contexts[item.account_id]
        if isinstance(context, DomainError):
            results.append(context)
            continue
        state = agents.get((item.account_id, item.agent_id))
        if state is None:
            results.append(
                NotFound("AGENT_NOT_FOUND", f"no agent {item.agent_id!r} in this account")
            )
            continue
        key = (item.account_id, item.source, item.source_id)
        if item.source_id is not None and key in seen:
            earlier = seen[key]
            if isinstance(earlier, int):  # an event row of this batch
                results.append(_duplicate(0, "", state.snapshot))
                duplicates_in_batch.append((slot, earlier))
            else:
                results.append(_duplicate(earlier[0], earlier[1], state.snapshot))
            if item.timer_id is not None:
                fired_timers.append(item.timer_id)
            continue
        before = state.snapshot
        try:
            decision = decide(before, item.event, context.config, context.catalog, context.settings)
            if item.hook is not None:
                item.hook(conn, decision, before)
        except DomainError as error:
            results.append(error)
            continue
        after = decision.agent
        state.snapshot, state.version, state.dirty = after, state.version + 1, True
        row_index = len(event_rows)
        if item.source_id is not None:
            seen[key] = row_index
        event_rows.append(
            {
                "account_id": item.account_id,
                "agent_id": item.agent_id,
                "seq": state.version,
                "source": item.source,
                "source_id": item.source_id,
                "event_type": event_type(item.event),
                "event": event_to_json(item.event),
                "received_at": item.received_at,
                "applied_at": now,
                "outcome": decision.outcome.value,
                "decision": decision_to_json(decision),
            }
        )
        history_rows.append(
            [
                {
                    "account_id": item.account_id,
                    "agent_id": item.agent_id,
                    "seq": tr.seq,
                    "at": as_utc(tr.at),
                    "side": tr.side.value,
                    "from_state": tr.from_,
                    "to_state": tr.to,
                    "cause": tr.cause.value,
                    "rule": tr.rule,
                    "caused_by_seq": tr.caused_by_seq,
                    "latency_ms": tr.latency_ms,
                    "channel": None if tr.channel is None else tr.channel.value,
                    "drift": None if tr.drift is None else tr.drift.to_api(),
                }
                for tr in decision.transitions
            ]
        )
        salesforce = [c for c in decision.commands if isinstance(c, SalesforceCommand)]
        outbox_rows.extend(
            {
                "account_id": item.account_id,
                "agent_id": item.agent_id,
                "command_id": c.command_id,
                "payload": command_payload(c),
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for c in salesforce
        )
        for op in plan_timers(item.account_id, item.event, before, after, context.settings, now):
            timer_ops.append(op)
            timer_owner[op.key] = (item.account_id, item.agent_id)
        if item.timer_id is not None:
            fired_timers.append(item.timer_id)
        requeued, withdraw = _follow_interactions(conn, item, before, after, now)
        dropped = {p.command_id for p in before.pending} - {p.command_id for p in after.pending}
        ran = set(after.recent_command_ids)  # echoed: Salesforce did run them
        settled.extend((item.account_id, c, "done" if c in ran else "superseded") for c in dropped)
        pending.append(
            (
                slot,
                row_index,
                Result(
                    Applied(0, False, decision),
                    is_routable(before),
                    is_routable(after),
                    bool(salesforce),
                    requeued,
                    withdraw,
                ),
            )
        )
        results.append(None)  # type: ignore[arg-type]  # filled once the row id is known

    event_ids = _write(
        conn, agents, event_rows, history_rows, outbox_rows, timer_ops, timer_owner, fired_timers
    )
    _settle_commands(conn, settled, now)
    for slot, row_index, result in pending:
        applied = Applied(event_ids[row_index], False, result.applied.decision)
        results[slot] = replace(result, applied=applied)
    for slot, row_index in duplicates_in_batch:
        first = event_ids[row_index]
        outcome = event_rows[row_index]["outcome"]
        old = results[slot]
        assert isinstance(old, Result)
        results[slot] = _duplicate(first, outcome, old.applied.decision.agent)
    return results


def _free_but_for_the_offer(agent: AgentSnapshot) -> bool:
    return agent.state == READY and not agent.has_open_work and not agent.on_call


def _follow_interactions(
    conn: Connection, item: Item, before: AgentSnapshot, after: AgentSnapshot, now: datetime
) -> tuple[bool, str | None]:
    """Keep the interaction rows in step when the agent leaves a call or an offer by any
    event (logout, Omni logout, session end...). The router's own events move the rows in
    their hooks first, so these guarded updates find nothing to do for them.

    A call still ringing at an agent who stopped being free (Salesforce work arrived, a state
    was picked) goes back to the queue too, and is to be withdrawn from the agent, or answering
    it would route two pieces of work to one person. Returns (requeued, call to withdraw)."""
    i = t.interactions
    requeued = False
    withdraw: str | None = None
    offered = before.offered_interaction_id
    kept = after.offered_interaction_id
    if offered is not None and (kept != offered or not _free_but_for_the_offer(after)):
        moved = conn.execute(
            sa.update(i)
            .where(i.c.id == offered, i.c.status == "offered", i.c.agent_id == item.agent_id)
            .values(status="queued", agent_id=None)
        )
        requeued = moved.rowcount == 1
        if kept == offered:
            withdraw = offered
    call = before.interaction_id
    if call is not None and after.interaction_id != call:
        conn.execute(
            sa.update(i)
            .where(i.c.id == call, i.c.status == "answered", i.c.agent_id == item.agent_id)
            .values(status="ended", ended_at=now)
        )
    return requeued, withdraw


def _settle_commands(conn: Connection, commands: list[tuple[str, str, str]], now: datetime) -> None:
    """Commands the snapshot stopped waiting for are not to be sent (again): echoed ones ran
    ('done'), failed or overtaken ones (a console reconnect, an Omni logout) are 'superseded'.
    Otherwise a stale command backing off would also hold back the agent's newer ones."""
    groups: dict[tuple[str, str], list[str]] = {}
    for account_id, command_id, status in commands:
        groups.setdefault((account_id, status), []).append(command_id)
    o = t.outbox
    for (account_id, status), command_ids in groups.items():
        conn.execute(
            sa.update(o)
            .where(
                o.c.account_id == account_id,
                o.c.command_id.in_(command_ids),
                o.c.status == "pending",
            )
            .values(status=status, lease_until=None, delivered_at=now)
        )


def _duplicate(event_id: int, outcome: str, snapshot: AgentSnapshot) -> Result:
    decision = Decision(agent=snapshot, outcome=Outcome(outcome) if outcome else Outcome.APPLIED)
    routable = is_routable(snapshot)
    return Result(Applied(event_id, True, decision), routable, routable, False)


def _lock_agents(conn: Connection, items: list[Item]) -> dict[tuple[str, str], _AgentState]:
    """Load (and on PostgreSQL lock, in id order so that two batches never deadlock) every
    agent of the batch: the row lock is what serializes one agent across processes."""
    wanted: dict[str, set[str]] = {}
    for item in items:
        wanted.setdefault(item.account_id, set()).add(item.agent_id)
    conditions = [
        sa.and_(t.agents.c.account_id == account, t.agents.c.agent_id.in_(sorted(ids)))
        for account, ids in wanted.items()
    ]
    query = (
        sa.select(t.agents.c.id, t.agents.c.account_id, t.agents.c.agent_id)
        .add_columns(t.agents.c.snapshot, t.agents.c.version)
        .where(sa.or_(*conditions))
        .order_by(t.agents.c.id)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return {
        (row.account_id, row.agent_id): _AgentState(
            row.id, AgentSnapshot.from_json(row.snapshot), row.version
        )
        for row in conn.execute(query)
    }


def _known_sources(
    conn: Connection, items: list[Item]
) -> dict[tuple[str, str, str | None], tuple[int, str] | int]:
    """Events already in the log under the same (source, source_id) -> (event id, outcome).
    Read after the agent locks, so a concurrent writer of the same event has committed."""
    by_account: dict[str, set[str]] = {}
    for item in items:
        if item.source_id is not None:
            by_account.setdefault(item.account_id, set()).add(item.source_id)
    found: dict[tuple[str, str, str | None], tuple[int, str] | int] = {}
    for account_id, source_ids in by_account.items():
        rows = conn.execute(
            sa.select(
                t.event_log.c.id,
                t.event_log.c.source,
                t.event_log.c.source_id,
                t.event_log.c.outcome,
            ).where(
                t.event_log.c.account_id == account_id,
                t.event_log.c.source_id.in_(sorted(source_ids)),
            )
        )
        for row in rows:
            found[(account_id, row.source, row.source_id)] = (row.id, row.outcome)
    return found


def _write(
    conn: Connection,
    agents: dict[tuple[str, str], _AgentState],
    event_rows: list[dict[str, Any]],
    history_rows: list[list[dict[str, Any]]],
    outbox_rows: list[dict[str, Any]],
    timer_ops: list[TimerOp],
    timer_owner: dict[str, tuple[str, str]],
    fired_timers: list[int],
) -> list[int]:
    now = utcnow()
    event_ids: list[int] = []
    if event_rows:
        inserted = conn.execute(
            sa.insert(t.event_log).returning(t.event_log.c.id, sort_by_parameter_order=True),
            event_rows,
        )
        event_ids = [row.id for row in inserted]
    flat_history = [
        {**row, "event_id": event_ids[i]} for i, rows in enumerate(history_rows) for row in rows
    ]
    if flat_history:
        conn.execute(sa.insert(t.history), flat_history)
    if outbox_rows:
        conn.execute(sa.insert(t.outbox), outbox_rows)
    dirty = [s for s in agents.values() if s.dirty]
    if dirty:
        conn.execute(
            sa.update(t.agents)
            .where(t.agents.c.id == sa.bindparam("row_id"))
            .values(
                snapshot=sa.bindparam("b_snapshot"),
                version=sa.bindparam("b_version"),
                updated_at=sa.bindparam("b_updated_at"),
                routable=sa.bindparam("b_routable"),
                state_since=sa.bindparam("b_state_since"),
            ),
            [
                {
                    "row_id": s.row_id,
                    "b_snapshot": s.snapshot.to_json(),
                    "b_version": s.version,
                    "b_updated_at": now,
                    "b_routable": is_routable(s.snapshot),
                    "b_state_since": as_utc(s.snapshot.since),
                }
                for s in dirty
            ],
        )
    if fired_timers:
        conn.execute(sa.delete(t.timers).where(t.timers.c.id.in_(fired_timers)))
    final: dict[str, TimerOp] = {}
    for op in timer_ops:
        final[op.key] = op  # the last plan of a batch for one timer wins
    if final:
        conn.execute(sa.delete(t.timers).where(t.timers.c.key.in_(list(final))))
        new = [
            {
                "key": op.key,
                "account_id": timer_owner[op.key][0],
                "agent_id": timer_owner[op.key][1],
                "due_at": op.due_at,
                "event": op.event,
                "created_at": now,
            }
            for op in final.values()
            if op.due_at is not None
        ]
        if new:
            conn.execute(sa.insert(t.timers), new)
    return event_ids
