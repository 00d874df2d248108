"""A server killed (SIGKILL) in the middle of a stream of change events resumes, once started
again, after the replay id it stored: every change Salesforce committed, also those committed
while it was down, is applied exactly once, in order."""

from __future__ import annotations

import itertools
import random
import time
from pathlib import Path
from typing import Any

import httpx

from presencesync.service import open_engine
from presencesync_emulator.testing import start_emulator
from presencesync_sandbox.demo import provision
from tests.bridge.kit import wait_for
from tests.cdc.servers import Server, cdc_rows

AGENTS = 3
STATUSES = ("Available", "Lunch", "On_Break", "Training")


def test_a_restart_mid_stream_resumes_from_the_stored_replay_id(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path}/presencesync.db"
    engine = open_engine(database_url)
    emulator = start_emulator(pubsub=True, pubsub_port=0)
    first = Server("first", database_url, tmp_path).wait_up()
    second: Server | None = None
    try:
        info = provision(
            engine, first.url, emulator.url, AGENTS, pubsub_target=emulator.pubsub_target
        )
        admin = engine.resolve_token(info["admin_token"])
        assert admin is not None
        account = admin.account_id
        wait_for(
            lambda: engine.get_cdc_status(account),
            lambda s: s is not None and s.state == "streaming",
            20,
            "the first server subscribed",
        )
        emu = httpx.Client(base_url=emulator.url + "/emulator/v1", timeout=10, trust_env=False)
        users = {a["agent_id"]: a["salesforce_user_id"] for a in info["agents"]}
        done: dict[str, list[str | None]] = {agent: [None] for agent in users}  # presences
        rng = random.Random(7)

        def change(agent: str) -> None:
            user, now = users[agent], done[agent][-1]
            if now is None:
                status = rng.choice(STATUSES)
                emu.post(f"/users/{user}/omni/login", json={"presence_status": status})
            else:
                status = rng.choice([s for s in STATUSES if s != now])
                emu.put(f"/users/{user}/omni/status", json={"presence_status": status})
            done[agent].append(status)

        def burst(count: int, agents: list[str] | None = None) -> None:
            for _ in range(count):
                for agent in agents or list(users):
                    change(agent)
                time.sleep(0.01)

        burst(12)
        # An Omni logout is held a moment (it may be the first half of a status change), and
        # the replay position cannot pass it: what comes after it is applied but not confirmed.
        held, *others = list(users)
        emu.post(f"/users/{users[held]}/omni/logout")
        logged_out = time.monotonic()
        done[held].append(None)
        burst(4, others)
        wait_for(
            lambda: len(cdc_rows(engine.db, account)),
            lambda n: n >= 12 * AGENTS + 4 * len(others),
            5,
            "the changes after the logout applied",
        )
        first.kill()  # mid-stream: applied, not confirmed; the logout not even applied
        killed_at = len(cdc_rows(engine.db, account))
        # A logout and a login of one user committed within a second are one status change
        # (service/change_events.py, MERGE_MS): people are slower than that.
        time.sleep(max(0.0, logged_out + 1.2 - time.monotonic()))
        burst(6)  # committed while no server runs
        second = Server("second", database_url, tmp_path).wait_up()
        burst(6)
        for agent, user in users.items():  # and a logout each, the held kind of change
            emu.post(f"/users/{user}/omni/logout")
            done[agent].append(None)

        def presences() -> dict[str, Any]:
            return {a: engine.get_agent(account, a).snapshot.presence for a in users}

        wait_for(presences, lambda p: all(v is None for v in p.values()), 30, "the logouts")
        rows = cdc_rows(engine.db, account)
        assert 0 < killed_at < len(rows)  # the kill did land mid-stream
        assert not any(r.event.get("presence_status") is None for r in rows[:killed_at])
        for agent in users:
            history = [
                (h.from_, h.to, h.channel.value if h.channel else None)
                for h in reversed(engine.history(account, agent, limit=1000))
                if h.side.value == "salesforce"
            ]
            labels = ["Offline" if p is None else p for p in done[agent]]
            expected = [(a, b, "change_data_capture") for a, b in itertools.pairwise(labels)]
            assert history == expected, agent
        # Exactly once: one log row per change (a redelivered event is not logged again),
        # each applied (not a duplicate or stale of something applied before).
        changes = sum(len(p) - 1 for p in done.values())
        assert len(rows) == changes
        assert len({r.source_id for r in rows}) == changes
        assert {r.outcome for r in rows} <= {"applied", "echo"}
    finally:
        first.stop()
        if second is not None:
            second.stop()
        emulator.stop()
        engine.close()
