"""The outbox: Salesforce commands written with the decision that made them, delivered at least
once by `OutboxDispatcher` (the idempotency key is the command id), retried with backoff.

Claiming leases rows (`lease_until`) so that a crashed dispatcher's commands come back after
the lease; on PostgreSQL `FOR UPDATE SKIP LOCKED` lets several dispatchers claim side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from presencesync.domain import AgentSnapshot
from presencesync.service.model import OutboxCommand, as_utc, utcnow
from presencesync.store import tables as t

if TYPE_CHECKING:
    from presencesync.service.engine import Engine

log = logging.getLogger(__name__)

BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 60.0
MAX_ATTEMPTS = 50  # then 'failed': a command nobody could run in hours is not worth running


def backoff(attempts: int) -> float:
    return min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1))


def claim(conn: Connection, limit: int, lease_seconds: float) -> list[OutboxCommand]:
    now = utcnow()
    o = t.outbox
    query = (
        sa.select(o.c.id, o.c.account_id, o.c.agent_id)
        .where(
            o.c.status == "pending",
            o.c.next_attempt_at <= now,
            sa.or_(o.c.lease_until.is_(None), o.c.lease_until <= now),
        )
        .order_by(o.c.id)
        .limit(max(1, int(limit)))
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    ids = _in_agent_order(conn, conn.execute(query).all())
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
            created_at=as_utc(row.created_at),  # type: ignore[arg-type]
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
    earlier = conn.execute(
        sa.select(o.c.id, o.c.account_id, o.c.agent_id)
        .where(
            o.c.status == "pending",
            o.c.id <= max(chosen),
            sa.tuple_(o.c.account_id, o.c.agent_id).in_(agents),
        )
        .order_by(o.c.id)
    ).all()
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


Deliver = Callable[[OutboxCommand], Awaitable[bool]]


class OutboxDispatcher:
    """Delivers claimed commands through `deliver` (True: handed over; False: not now)."""

    def __init__(
        self,
        engine: Engine,
        deliver: Deliver,
        *,
        poll_interval: float = 0.2,
        batch_size: int = 100,
        lease_seconds: float = 30.0,
    ) -> None:
        self.engine = engine
        self.deliver = deliver
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._done: asyncio.Event | None = None

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._done = asyncio.Event()
        remove = self.engine.add_waker(self.wake)
        try:
            while not self._stopping:
                try:
                    handled = await self.run_once()
                except Exception:
                    log.exception("outbox dispatch failed; trying again")
                    handled = 0
                if handled >= self.batch_size:
                    continue  # more may be waiting
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)
                self._wake.clear()
        finally:
            remove()
            self._done.set()

    async def run_once(self) -> int:
        """Claim a batch, deliver it in order, record the outcomes (in bulk: one transaction
        per batch, not per command)."""
        engine = self.engine
        commands = await asyncio.to_thread(
            engine.claim_commands, self.batch_size, self.lease_seconds
        )
        if not commands:
            return 0
        live = await asyncio.to_thread(engine.current_command_ids, commands)
        stale = [c.id for c in commands if c.id not in live]
        done: list[int] = []
        held_up: set[tuple[str, str]] = set()  # agents whose earlier command was not delivered
        try:
            for command in commands:
                if self._stopping:
                    break  # the lease runs out and the command is claimed again
                if command.id not in live:
                    continue
                agent = (command.account_id, command.agent_id)
                if agent in held_up:
                    ok, error = False, "an earlier command of this agent was not delivered"
                else:
                    try:
                        ok = await self.deliver(command)
                        error = "not delivered"
                    except Exception as exc:  # the transport's failure is the command's retry
                        ok, error = False, f"{type(exc).__name__}: {exc}"
                if ok:
                    done.append(command.id)
                else:
                    held_up.add(agent)
                    await asyncio.to_thread(engine.retry_command, command.id, error)
        finally:
            await asyncio.to_thread(engine.finish_commands, done, stale)
        return len(commands)

    def wake(self) -> None:
        """Thread-safe: new commands were committed, look now."""
        loop, event = self._loop, self._wake
        if loop is not None and event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(event.set)

    async def stop(self) -> None:
        self._stopping = True
        self.wake()
        if self._done is not None:
            await self._done.wait()
