"""The router: offers a call to the longest-idle routable agent (domain.choose_agent) or queues
it, and drains the queue when agents become routable.

Reserving an agent is an event of that agent (`InteractionOffered`), applied under the agent's
lock like any other: two concurrent offers can pick the same candidate, but the second one is
refused by the core (NOT_ROUTABLE) and moves on to the next candidate. The interaction row is
updated by a hook inside the same transaction, guarded by its expected status, so an offer and
the interaction's status never disagree.

Ring timeout (redirect on no answer): an offer starts the agent's ring timer (`timers`, the
account's `offer_timeout_seconds`). When it fires, the engine applies the withdrawal to the agent
who did not answer, the call goes back to the queue and the engine drains it, as after a decline.
The router then passes over that agent for that call (`rang_out`: the agent's last event is that
very call ringing out) and offers it to the next routable agent, or leaves it queued; the agent is
free for any other call at once, and for this one again as soon as anything else happens to it.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from presencesync.domain import (
    AgentSnapshot,
    CallAnswered,
    CallEnded,
    Decision,
    DomainError,
    Event,
    InteractionOffered,
    InteractionOfferWithdrawn,
    Outcome,
    Rejected,
    choose_agent,
)
from presencesync.service import repository as repo
from presencesync.service.errors import NotFound
from presencesync.service.model import Interaction, as_utc, utcnow
from presencesync.service.ports import SubmitHooked
from presencesync.service.transactions import Transactions
from presencesync.service.uow import Hook
from presencesync.store import tables as t

CANDIDATES = 20  # routable agents looked at per attempt, longest idle first
MAX_ATTEMPTS = 50


def _row_to_interaction(row: Any) -> Interaction:
    return Interaction(
        id=row.id,
        account_id=row.account_id,
        queue=row.queue,
        status=row.status,
        agent_id=row.agent_id,
        created_at=as_utc(row.created_at),
    )


def _move(
    interaction_id: str,
    expect_status: str,
    expect_agent: str | None,
    code: str,
    values: dict[str, Any],
) -> Hook:
    """A hook that moves the interaction row, or refuses the event if someone else moved it."""

    def hook(conn: Connection, _decision: Decision, _before: AgentSnapshot) -> None:
        i = t.interactions
        query = sa.update(i).where(i.c.id == interaction_id, i.c.status == expect_status)
        if expect_agent is not None:
            query = query.where(i.c.agent_id == expect_agent)
        if conn.execute(query.values(**values)).rowcount != 1:
            raise Rejected(code, f"interaction {interaction_id} is no longer {expect_status}")

    return hook


class Router:
    """Works in the engine's transactions and applies agents' events through the engine's
    submission path (`submit`: ordered per agent, group-committed, followed up), without
    knowing the engine."""

    def __init__(self, transactions: Transactions, submit: SubmitHooked) -> None:
        self._tx = transactions
        self._submit = submit

    def offer(self, account_id: str, queue: str) -> Interaction:
        if not isinstance(queue, str) or not queue.strip() or len(queue) > 200:
            raise DomainError("INVALID_QUEUE", "queue must be a non-empty string (<= 200 chars)")
        interaction_id = str(uuid.uuid4())
        with self._tx.write() as conn, conn.begin():
            repo.require_account(conn, account_id)
            conn.execute(
                sa.insert(t.interactions).values(
                    id=interaction_id,
                    account_id=account_id,
                    queue=queue,
                    status="queued",
                    agent_id=None,
                    created_at=utcnow(),
                )
            )
        placed, _passed_over = self._place(account_id, interaction_id, exclude=set(), fresh=True)
        return placed

    def get(self, account_id: str, interaction_id: str) -> Interaction:
        with self._tx.read() as conn:
            row = conn.execute(
                sa.select(t.interactions).where(
                    t.interactions.c.id == interaction_id,
                    t.interactions.c.account_id == account_id,
                )
            ).first()
        if row is None:
            raise NotFound("INTERACTION_NOT_FOUND", f"no interaction {interaction_id!r}")
        return _row_to_interaction(row)

    def answer(self, account_id: str, interaction_id: str, agent_id: str) -> Interaction:
        event = CallAnswered(at=utcnow(), interaction_id=interaction_id)
        moved = {"status": "answered", "answered_at": utcnow()}
        self._act(account_id, interaction_id, agent_id, "offered", event, moved)
        return self.get(account_id, interaction_id)

    def rang_out(self, account_id: str, agent_id: str, interaction_id: str) -> bool:
        """Is the agent's last event its ring timer taking this call back (no answer)?"""
        e = t.event_log
        with self._tx.read() as conn:
            row = conn.execute(
                sa.select(e.c.source, e.c.event_type, e.c.event, e.c.outcome)
                .where(e.c.account_id == account_id, e.c.agent_id == agent_id)
                .order_by(e.c.seq.desc())
                .limit(1)
            ).first()
        return (
            row is not None
            and row.source == "timer"
            and row.event_type == InteractionOfferWithdrawn.__name__
            and row.outcome == Outcome.APPLIED.value
            and isinstance(row.event, dict)
            and row.event.get("interaction_id") == interaction_id
        )

    def decline(self, account_id: str, interaction_id: str, agent_id: str) -> Interaction:
        event = InteractionOfferWithdrawn(at=utcnow(), interaction_id=interaction_id)
        moved = {"status": "queued", "agent_id": None}
        self._act(account_id, interaction_id, agent_id, "offered", event, moved)
        placed, _passed_over = self._place(account_id, interaction_id, exclude={agent_id})
        # The decliner is free again: it may take other queued calls, never this one.
        self.drain(account_id, skip={(interaction_id, agent_id)})
        return self.get(account_id, placed.id)

    def hangup(self, account_id: str, interaction_id: str, agent_id: str) -> Interaction:
        event = CallEnded(at=utcnow(), interaction_id=interaction_id)
        moved = {"status": "ended", "ended_at": utcnow()}
        self._act(account_id, interaction_id, agent_id, "answered", event, moved)
        return self.get(account_id, interaction_id)

    def drain(self, account_id: str, skip: set[tuple[str, str]] | None = None) -> list[Interaction]:
        """Offer queued interactions, oldest first, while there are routable agents."""
        offered: list[Interaction] = []
        skip = skip or set()
        while True:
            with self._tx.read() as conn:
                queued = conn.execute(
                    sa.select(t.interactions.c.id)
                    .where(
                        t.interactions.c.account_id == account_id,
                        t.interactions.c.status == "queued",
                    )
                    .order_by(t.interactions.c.created_at, t.interactions.c.id)
                    .limit(50)
                ).all()
            progress = False
            for row in queued:
                exclude = {agent for (iid, agent) in skip if iid == row.id}
                placed, passed_over = self._place(account_id, row.id, exclude=exclude)
                if placed.status == "offered" and placed.agent_id not in exclude:
                    offered.append(placed)
                    progress = True
                elif not exclude and not passed_over:
                    return offered  # nobody routable left
            if not progress:
                return offered

    # --- internals -----------------------------------------------------------------------------

    def _act(
        self,
        account_id: str,
        interaction_id: str,
        agent_id: str,
        expect: str,
        event: Event,
        values: dict[str, Any],
    ) -> None:
        """The agent acts on its interaction: the agent's event and the interaction row's move
        commit together, or neither does (the row moved meanwhile)."""
        self._expect(account_id, interaction_id, agent_id, expect)
        code = f"INTERACTION_NOT_{expect.upper()}"
        hook = _move(interaction_id, expect, agent_id, code, values)
        self._submit(account_id, agent_id, event, hook)

    def _expect(self, account_id: str, interaction_id: str, agent_id: str, status: str) -> None:
        current = self.get(account_id, interaction_id)
        if current.agent_id != agent_id:
            raise Rejected(
                "NOT_YOUR_INTERACTION",
                f"interaction {interaction_id} is not offered to or answered by {agent_id}",
            )
        if current.status != status:
            raise Rejected(
                f"INTERACTION_NOT_{status.upper()}",
                f"interaction {interaction_id} is {current.status}, not {status}",
            )

    def _place(
        self, account_id: str, interaction_id: str, exclude: set[str], *, fresh: bool = False
    ) -> tuple[Interaction, bool]:
        """Offer a queued interaction to the best routable agent; leave it queued if none.
        Returns the interaction and whether a routable agent was passed over because the call
        had just rung out at it (`fresh`: a new call, which rang nowhere yet)."""
        refused = set(exclude)
        passed_over = False
        for _ in range(MAX_ATTEMPTS):
            candidate = self._choose(account_id, refused)
            if candidate is None:
                break
            if not fresh and self.rang_out(account_id, candidate, interaction_id):
                refused.add(candidate)
                passed_over = True
                continue
            offered = {"status": "offered", "agent_id": candidate}
            hook = _move(interaction_id, "queued", None, "INTERACTION_TAKEN", offered)
            event = InteractionOffered(at=utcnow(), interaction_id=interaction_id)
            try:
                self._submit(account_id, candidate, event, hook)
            except Rejected as refusal:
                if refusal.code == "INTERACTION_TAKEN":
                    break  # another router got there first
                refused.add(candidate)  # the agent stopped being routable: next one
                continue
            break
        return self.get(account_id, interaction_id), passed_over

    def _choose(self, account_id: str, refused: set[str]) -> str | None:
        query = (
            sa.select(t.agents.c.agent_id, t.agents.c.snapshot)
            .where(t.agents.c.account_id == account_id, t.agents.c.routable.is_(True))
            .order_by(t.agents.c.state_since, t.agents.c.agent_id)
            .limit(CANDIDATES + len(refused))
        )
        with self._tx.read() as conn:
            rows = conn.execute(query).all()
        snapshots = [
            AgentSnapshot.from_json(row.snapshot) for row in rows if row.agent_id not in refused
        ]
        chosen = choose_agent(snapshots)
        return None if chosen is None else chosen.agent_id
