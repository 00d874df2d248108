"""Several `serve` processes on one PostgreSQL database: exactly one subscribes per account (an
advisory lock), and when it dies another takes over from the stored replay id. Plus the lock
itself, on PostgreSQL and on SQLite."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from presencesync.service import open_engine
from presencesync.store import create_db_engine
from presencesync.store.locks import lock_key, try_lock
from presencesync.store.secrets import SECRET_KEY_ENV, new_key
from presencesync_emulator.testing import start_emulator
from presencesync_sandbox.demo import provision
from tests.bridge.kit import wait_for
from tests.cdc.servers import Server

POSTGRES_ENV = "PRESENCESYNC_TEST_POSTGRES_URL"


def _postgres_base_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if url:
        return url
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {POSTGRES_ENV} is not set: the PostgreSQL tests must run")
    pytest.skip(f"{POSTGRES_ENV} is not set")


@pytest.fixture
def shared_postgres() -> Iterator[str]:
    """A schema of its own (the URL pins search_path to it); dropped afterwards."""
    import psycopg

    base = _postgres_base_url()
    schema = f"ps_cdc_{secrets.token_hex(4)}"
    plain = base.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def test_the_lock_excludes_and_is_released(tmp_path: Path) -> None:
    db = create_db_engine(f"sqlite:///{tmp_path}/locks.db")
    other = create_db_engine(f"sqlite:///{tmp_path}/locks.db")
    try:
        held = try_lock(db, "cdc:a")
        assert held is not None and held.alive()
        assert try_lock(other, "cdc:a") is None  # the same file, another engine: excluded
        again = try_lock(other, "cdc:b")
        assert again is not None
        held.release()
        assert not held.alive()
        taken = try_lock(other, "cdc:a")
        assert taken is not None
        taken.release()
        again.release()
    finally:
        db.dispose()
        other.dispose()
    assert lock_key("cdc:a") != lock_key("cdc:b")
    assert -(2**63) <= lock_key("cdc:a") < 2**63


@pytest.mark.postgres
def test_the_advisory_lock_excludes_other_sessions_and_dies_with_its_holder(
    shared_postgres: str,
) -> None:
    first = create_db_engine(shared_postgres)
    second = create_db_engine(shared_postgres)
    name = f"cdc:{secrets.token_hex(4)}"
    try:
        held = try_lock(first, name)
        assert held is not None and held.alive()
        assert try_lock(second, name) is None
        held.release()
        taken = try_lock(second, name)
        assert taken is not None
        # The holder's session ends without unlocking (a dead process): the lock goes too.
        taken._conn.close()  # type: ignore[attr-defined]
        assert not taken.alive()
        after = try_lock(first, name)
        assert after is not None
        after.release()
    finally:
        first.dispose()
        second.dispose()


@pytest.mark.postgres
def test_one_subscriber_per_account_across_processes_and_a_takeover(
    shared_postgres: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PostgreSQL keeps the Salesforce credentials only encrypted: one key for this process and
    # the servers it starts (they inherit the environment).
    monkeypatch.setenv(SECRET_KEY_ENV, new_key())
    engine = open_engine(shared_postgres)  # migrates the schema before the servers start
    emulator = start_emulator(pubsub=True, pubsub_port=0)
    servers = [Server("A", shared_postgres, tmp_path), Server("B", shared_postgres, tmp_path)]
    try:
        a, _b = (s.wait_up() for s in servers)
        info = provision(engine, a.url, emulator.url, 2, pubsub_target=emulator.pubsub_target)
        admin = engine.resolve_token(info["admin_token"])
        assert admin is not None
        account = admin.account_id
        emu = httpx.Client(base_url=emulator.url, timeout=10, trust_env=False)

        def streams() -> list[dict[str, object]]:
            return list(emu.get("/emulator/v1/pubsub").json()["streams"])

        status = wait_for(
            lambda: engine.get_cdc_status(account),
            lambda s: s is not None and s.state == "streaming",
            20,
            "one process subscribed",
        )
        assert status is not None
        holder = next(s for s in servers if status.holder.endswith(f":{s.pid}"))
        # Two processes, each looking every 0.2 s: still one subscription per topic.
        for _ in range(10):
            assert len(streams()) == 2, streams()
            time.sleep(0.1)
        user = info["agents"][0]["salesforce_user_id"]
        agent = info["agents"][0]["agent_id"]
        emu.post(f"/emulator/v1/users/{user}/omni/login", json={"presence_status": "Lunch"})
        wait_for(
            lambda: engine.get_agent(account, agent).snapshot.presence,
            lambda p: p == "Lunch",
            10,
            "the change applied by the holder",
        )

        holder.kill()  # the holder dies: its session ends, the lock with it
        survivor = next(s for s in servers if s is not holder)
        emu.put(f"/emulator/v1/users/{user}/omni/status", json={"presence_status": "Training"})
        wait_for(
            lambda: engine.get_cdc_status(account),
            lambda s: s is not None and s.holder.endswith(f":{survivor.pid}"),
            20,
            "the other process taking over",
        )
        wait_for(
            lambda: engine.get_agent(account, agent).snapshot.presence,
            lambda p: p == "Training",
            15,
            "the change committed while nobody held the subscription",
        )
        history = [
            (h.from_, h.to)
            for h in reversed(engine.history(account, agent, limit=100))
            if h.side.value == "salesforce"
        ]
        assert history == [("Offline", "Lunch"), ("Lunch", "Training")]
        wait_for(streams, lambda s: len(s) == 2, 10, "two streams again, the survivor's")
    finally:
        for server in servers:
            server.stop()
        emulator.stop()
        engine.close()
