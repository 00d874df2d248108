"""The outbox: Salesforce commands written with the decision that made them, delivered at least
once by `runners.OutboxDispatcher` (the idempotency key is the command id), retried with backoff.
This module is the outbox's SQL, run inside the engine's transactions.

Claiming leases rows (`lease_until`) so that a crashed dispatcher's commands come back after
the lease; on PostgreSQL `FOR UPDATE SKIP LOCKED` lets several dispatchers claim side by side.

With several processes sharing PostgreSQL, an agent's console bridge is connected to one of
them; each dispatcher is given `claimable` (the agents whose console is connected to its
process) and claims only their commands, so a command is claimed by the process that can
deliver it. A command of an agent whose console is connected nowhere is claimed by nobody: it
waits, pending, spending no attempts, until a console connects (the bridge hub then makes it
due at once and wakes the dispatcher).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from presencesync.domain import AgentSnapshot
from presencesync.service.model import OutboxCommand, as_utc, utcnow
from presencesync.store import tables as t

BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 60.0
MAX_ATTEMPTS = 50  # then 'failed': a command nobody could run in hours is not worth running
# Agents per `IN ((account, agent), ...)` list: 2 bind parameters each, far below SQLite's
# (32766) and PostgreSQL's (65535) limits per statement.
AGENT_CHUNK = 500

Agent = tuple[str, str]  # (account_id, agent_id)


def backoff(attempts: int) -> float:
    factor: int = 2 ** max(0, attempts - 1)  # int ** int is Any to mypy (negative exponents)
    return min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * factor)


def claim(
    conn: Connection,
    limit: int,
    lease_seconds: float,
    agents: Collection[Agent] | None = None,
) -> list[OutboxCommand]:
    """Lease up to `limit` due commands (attempts + 1), oldest first, an agent's in the order
    they were decided. `agents`: only commands of these (account_id, agent_id) pairs (None:
    any agent's)."""
    now = utcnow()
    o = t.outbox
    limit = max(1, int(limit))
    query = (
        sa.select(o.c.id, o.c.account_id, o.c.agent_id)
        .where(
            o.c.status == "pending",
            o.c.next_attempt_at <= now,
            sa.or_(o.c.lease_until.is_(None), o.c.lease_until <= now),
        )
        .order_by(o.c.id)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    if agents is None:
        candidates = list(conn.execute(query.limit(limit)).all())
    else:
        # One agent is in one chunk, so each agent's candidates still come oldest first.
        candidates = []
        for chunk in _chunks(sorted(set(agents))):
            found = conn.execute(
                query.where(sa.tuple_(o.c.account_id, o.c.agent_id).in_(chunk)).limit(
                    limit - len(candidates)
                )
            ).all()
            candidates.extend(found)
            if len(candidates) >= limit:
                break
        candidates.sort(key=lambda row: row.id)
    ids = _in_agent_order(conn, candidates)
    if not ids:
        return []
    conn.execute(
        sa.update(o)
        .where(o.c.id.in_(ids))
        .values(lease_until=now + timedelta(seconds=lease_seconds), attempts=o.c.attempts + 1)
    )
    rows = conn.execute(
        sa.select(o, t.agents.c.salesforce_user_id)
        .join(
            t.agents,
            sa.and_(t.agents.c.account_id == o.c.account_id, t.agents.c.agent_id == o.c.agent_id),
        )
        .where(o.c.id.in_(ids))
        .order_by(o.c.id)
    )
    return [
        OutboxCommand(
            id=row.id,
            account_id=row.account_id,
            agent_id=row.agent_id,
            salesforce_user_id=row.salesforce_user_id,
            command_id=row.command_id,
            payload=dict(row.payload),
            attempts=row.attempts,
            created_at=as_utc(row.created_at),
        )
        for row in rows
    ]


def _in_agent_order(conn: Connection, candidates: list[Any]) -> list[int]:
    """Keep only the candidates whose agent has no earlier command still waiting elsewhere
    (backing off, leased by another dispatcher, or locked by one that is claiming it right
    now): one agent's commands must run in the order they were decided, or Salesforce would
    end in an older status."""
    if not candidates:
        return []
    o = t.outbox
    agents = sorted({(row.account_id, row.agent_id) for row in candidates})
    chosen = {row.id for row in candidates}
    earlier = sorted(
        (
            row
            for chunk in _chunks(agents)
            for row in conn.execute(
                sa.select(o.c.id, o.c.account_id, o.c.agent_id).where(
                    o.c.status == "pending",
                    o.c.id <= max(chosen),
                    sa.tuple_(o.c.account_id, o.c.agent_id).in_(chunk),
                )
            )
        ),
        key=lambda row: row.id,
    )
    keep: list[int] = []
    stopped: set[tuple[str, str]] = set()
    for row in earlier:
        agent = (row.account_id, row.agent_id)
        if agent in stopped:
            continue
        if row.id in chosen:
            keep.append(row.id)
        else:
            stopped.add(agent)  # an earlier command is not ours to send now: wait for it
    return keep


def _chunks(agents: Sequence[Agent]) -> Iterator[list[Agent]]:
    for start in range(0, len(agents), AGENT_CHUNK):
        yield list(agents[start : start + AGENT_CHUNK])


def make_due(conn: Connection, account_id: str, agent_id: str) -> int:
    """The agent's pending commands that are backing off become due now (its console just
    connected: what failed for want of one can go at once). Leases are left alone: a leased
    command is in some dispatcher's hands. Returns how many rows changed."""
    o = t.outbox
    now = utcnow()
    result = conn.execute(
        sa.update(o)
        .where(
            o.c.account_id == account_id,
            o.c.agent_id == agent_id,
            o.c.status == "pending",
            o.c.next_attempt_at > now,
        )
        .values(next_attempt_at=now)
    )
    return int(result.rowcount or 0)


def finish(conn: Connection, outbox_ids: list[int], status: str) -> None:
    if not outbox_ids:
        return
    conn.execute(
        sa.update(t.outbox)
        .where(t.outbox.c.id.in_(outbox_ids), t.outbox.c.status == "pending")
        .values(status=status, delivered_at=utcnow(), lease_until=None)
    )


def retry(conn: Connection, outbox_id: int, error: str) -> None:
    row = conn.execute(sa.select(t.outbox.c.attempts).where(t.outbox.c.id == outbox_id)).first()
    if row is None:
        return
    attempts = int(row.attempts)
    values: dict[str, object] = {"lease_until": None, "last_error": str(error)[:2000]}
    if attempts >= MAX_ATTEMPTS:
        values["status"] = "failed"
    else:
        values["next_attempt_at"] = utcnow() + timedelta(seconds=backoff(attempts))
    conn.execute(
        sa.update(t.outbox)
        .where(t.outbox.c.id == outbox_id, t.outbox.c.status == "pending")
        .values(**values)
    )


def current(conn: Connection, commands: list[OutboxCommand]) -> set[int]:
    """The outbox ids among `commands` whose command the agent's snapshot still awaits (a
    command overtaken by later events, e.g. a console reconnect, is not worth running)."""
    wanted: dict[str, set[str]] = {}
    for command in commands:
        wanted.setdefault(command.account_id, set()).add(command.agent_id)
    awaited: set[tuple[str, str]] = set()
    for account_id, agent_ids in wanted.items():
        rows = conn.execute(
            sa.select(t.agents.c.snapshot).where(
                t.agents.c.account_id == account_id, t.agents.c.agent_id.in_(sorted(agent_ids))
            )
        )
        for row in rows:
            snapshot = AgentSnapshot.from_json(row.snapshot)
            awaited.update((account_id, p.command_id) for p in snapshot.pending)
    return {c.id for c in commands if (c.account_id, c.command_id) in awaited}
