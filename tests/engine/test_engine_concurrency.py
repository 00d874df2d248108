"""Two engine processes on the same agents (DESIGN.md 4, scale-out): the agent's row lock
serializes them, so each agent's log has contiguous seqs, each process's events stay in its
own order, and the stored snapshot equals a sequential replay of the log."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from presencesync.domain import AgentLoggedIn, AgentSnapshot, decide
from presencesync.service import event_from_json, open_engine
from presencesync.store import tables

from .engine_kit import now, seed_account, seed_agents

CHILD = Path(__file__).with_name("concurrent_child.py")
AGENTS = 6
PER_PROCESS = 15


@pytest.mark.postgres
def test_two_processes_keep_per_agent_order(postgres_url: str):
    engine = open_engine(postgres_url)
    account = seed_account(engine)
    agents = seed_agents(engine, account, AGENTS, prefix="c")
    for agent in agents:
        engine.submit(account, agent, AgentLoggedIn(at=now()), source="t")

    children = [
        subprocess.Popen(
            [
                sys.executable,
                str(CHILD),
                postgres_url,
                account,
                ",".join(agents),
                tag,
                str(PER_PROCESS),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for tag in ("p1", "p2")
    ]
    try:
        for child in children:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        for child in children:  # both start together
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        for child in children:
            out, _err = child.communicate(timeout=60)
            assert child.returncode == 0 and out.strip() == "done"
    finally:
        for child in children:
            child.kill()

    config = engine.get_omni_config(account).config  # type: ignore[union-attr]
    interleaved = 0
    with engine.db.connect() as conn:
        for agent in agents:
            rows = conn.execute(
                sa.select(tables.event_log)
                .where(tables.event_log.c.account_id == account)
                .where(tables.event_log.c.agent_id == agent)
                .order_by(tables.event_log.c.seq)
            ).all()
            assert [r.seq for r in rows] == list(range(1, 2 * PER_PROCESS + 2))
            tags = [r.source_id.split("-")[0] for r in rows[1:]]
            for tag in ("p1", "p2"):
                mine = [
                    int(r.source_id.rsplit("-", 1)[1])
                    for r in rows[1:]
                    if r.source_id.startswith(tag)
                ]
                assert mine == list(range(PER_PROCESS))
            interleaved += sum(a != b for a, b in itertools.pairwise(tags)) > 1
            replay = AgentSnapshot(agent_id=agent)
            for row in rows:
                replay = decide(replay, event_from_json(row.event), config).agent
            assert engine.get_agent(account, agent).snapshot == replay
            history = [t.seq for t in engine.history(account, agent, limit=1000)]
            assert sorted(history) == list(range(1, len(history) + 1))
    engine.close()
    assert interleaved > 0  # the two processes really did work on the same agents at once
