"""Crash safety (DESIGN.md 6, "Nothing lost"): the engine runs in a child process and is
killed with SIGKILL at random points while events stream in and commands go out. After a
restart, every acknowledged event is in the log exactly once, every outbox command was
delivered at least once, and replaying the log gives the stored snapshots (effects are
idempotent: an event resent after a crash is recognised by its source id)."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import sqlalchemy as sa

from presencesync.domain import AWAY, READY, AgentLoggedIn, AgentSnapshot, StateChangeRequested
from presencesync.service import event_from_json, event_to_json, open_engine
from presencesync.store import tables

from .engine_kit import now, seed_account, seed_agents

CHILD = Path(__file__).with_name("crash_child.py")
AGENTS = 6
EVENTS_PER_AGENT = 16
KILLS = 3  # plus a final clean run; the next child is started early, idle until used


def _events(agents: list[str]) -> list[dict[str, object]]:
    """Per agent: log in, then flip between Away and Ready; interleaved across agents."""
    out: list[dict[str, object]] = []
    for step in range(EVENTS_PER_AGENT):
        for agent in agents:
            if step == 0:
                event = AgentLoggedIn(at=now())
            else:
                event = StateChangeRequested(at=now(), state=AWAY if step % 2 else READY)
            n = len(out)
            out.append(
                {"n": n, "agent": agent, "event": event_to_json(event), "source_id": f"e{n}"}
            )
    return out


class Child:
    def __init__(self, database_url: str, account: str, delivered: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), database_url, account, str(delivered)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.acked: dict[int, int] = {}
        self.errors: list[str] = []
        self.drained = threading.Event()
        self.ready = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            parts = line.split()
            if parts[:1] == ["ack"]:
                self.acked[int(parts[1])] = int(parts[2])
            elif parts[:1] == ["err"]:
                self.errors.append(line.strip())
            elif parts[:1] == ["ready"]:
                self.ready.set()
            elif parts[:1] == ["drained"]:
                self.drained.set()

    def send(self, line: str) -> bool:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
            return True
        except (BrokenPipeError, OSError):
            return False

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.reader.join(timeout=5)

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.kill()
        self.proc.wait()


def test_sigkill_loses_nothing_acknowledged(database_url: str, tmp_path: Path):
    engine = open_engine(database_url)
    account = seed_account(engine)
    agents = seed_agents(engine, account, AGENTS, prefix="k")
    engine.close()
    events = _events(agents)
    delivered = tmp_path / "delivered.txt"
    delivered.touch()
    rng = random.Random(20261127)
    acked: dict[int, int] = {}
    next_index = 0

    spare = Child(database_url, account, delivered)
    for _round in range(KILLS):
        child, spare = spare, Child(database_url, account, delivered)
        child.send("start")
        assert child.ready.wait(30)
        # Resend what was never acknowledged (it may or may not have committed), then more.
        resend = [e for e in events[:next_index] if e["n"] not in acked]
        stop_at = min(len(events), next_index + rng.randint(20, 35))
        for message in [*resend, *events[next_index:stop_at]]:
            child.send(json.dumps(message))
        next_index = stop_at
        deadline = time.monotonic() + 20
        while not child.acked and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.3))  # the kill lands while work is in flight
        child.kill()
        acked.update(child.acked)
        assert child.errors == []

    child = spare
    try:
        child.send("start")
        for message in [e for e in events if e["n"] not in acked]:
            child.send(json.dumps(message))
        deadline = time.monotonic() + 30
        while len(acked | child.acked) < len(events) and time.monotonic() < deadline:
            time.sleep(0.05)
        acked.update(child.acked)
        assert child.errors == []
        assert len(acked) == len(events)
        child.send("drain")
        assert child.drained.wait(30)
    finally:
        child.stop()

    engine = open_engine(database_url, group_commit=False)
    try:
        with engine.db.connect() as conn:
            log = conn.execute(
                sa.select(tables.event_log)
                .where(tables.event_log.c.account_id == account)
                .order_by(tables.event_log.c.agent_id, tables.event_log.c.seq)
            ).all()
            outbox = conn.execute(
                sa.select(tables.outbox).where(tables.outbox.c.account_id == account)
            ).all()
        # Every acknowledged event is in the log, exactly once, with the id it was acked with.
        by_source = Counter(row.source_id for row in log)
        assert all(count == 1 for count in by_source.values())
        ids = {row.source_id: row.id for row in log}
        for message in events:
            n = int(message["n"])  # type: ignore[call-overload]
            assert ids[f"e{n}"] == acked[n]
        assert len(log) == len(events)
        # Each agent's events applied in order, seqs contiguous, snapshot = replay of the log.
        config = engine.get_omni_config(account).config  # type: ignore[union-attr]
        from presencesync.domain import decide

        for agent in agents:
            rows = [r for r in log if r.agent_id == agent]
            assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
            numbers = [int(r.source_id[1:]) for r in rows]
            assert numbers == sorted(numbers)
            replay = AgentSnapshot(agent_id=agent)
            for row in rows:
                replay = decide(replay, event_from_json(row.event), config).agent
            assert engine.get_agent(account, agent).snapshot == replay
            history = [t.seq for t in engine.history(account, agent, limit=1000)]
            assert sorted(history) == list(range(1, len(history) + 1))
        # Every command was handed over at least once (crashes may repeat some).
        handed_over = Counter(delivered.read_text().split())
        assert outbox and {row.status for row in outbox} == {"done"}
        assert all(handed_over[row.command_id] >= 1 for row in outbox)
        assert len(outbox) == len(events)  # one SetPresence/OmniLogin per event, none twice
    finally:
        engine.close()
