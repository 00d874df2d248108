"""Helpers shared by the engine tests, the crash-test child process and the benchmark."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from presencesync.domain import PresenceStatus, StatusOption
from presencesync.service import Engine

STATUSES = [
    PresenceStatus("0N5000000000001", "Available", "Available", StatusOption.ONLINE, ("Case",)),
    PresenceStatus("0N5000000000002", "Busy", "Busy", StatusOption.BUSY),
    PresenceStatus("0N5000000000003", "Lunch", "Lunch", StatusOption.BUSY),
]

CONFIG: dict[str, Any] = {
    "enabled": True,
    "presence_mappings": [
        {"presence_status": "Available", "busy": False, "maps_to": None},
        {"presence_status": "Busy", "busy": True, "maps_to": "Away"},
        {"presence_status": "Lunch", "busy": True, "maps_to": "ExtendedAway/Lunch"},
    ],
    "state_mappings": [
        {"state": "Ready", "presence_status": "Available"},
        {"state": "Busy", "presence_status": "Busy"},
        {"state": "Wrap", "presence_status": "Busy"},
        {"state": "Away", "presence_status": "Busy"},
        {"state": "ExtendedAway", "presence_status": "Busy"},
        {"state": "ExtendedAway/Lunch", "presence_status": "Lunch"},
    ],
}


def now() -> datetime:
    return datetime.now(UTC)


def seed_account(engine: Engine, name: str = "Acme", *, omni: bool = True) -> str:
    account_id = engine.create_account(name, omni_feature=omni)
    engine.save_presence_statuses(account_id, STATUSES, actor="test")
    engine.save_omni_config(account_id, CONFIG, actor="test")
    return account_id


def seed_agents(engine: Engine, account_id: str, count: int, prefix: str = "a") -> list[str]:
    ids = [f"{prefix}{n:05d}" for n in range(count)]
    for n, agent_id in enumerate(ids):
        engine.create_agent(account_id, agent_id, f"Agent {n}", f"005{prefix}{n:012d}"[:18])
    return ids


def count_rows(engine: Engine) -> dict[str, int]:
    """Rows of every table: 'nothing written' means this does not change."""
    import sqlalchemy as sa

    from presencesync.store import tables

    with engine.db.connect() as conn:
        return {
            name: int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() or 0)
            for name, table in tables.metadata.tables.items()
        }


def settle_outbox(engine: Engine) -> None:
    """PostgreSQL tests share one schema: mark other tests' commands done so that a test that
    claims commands sees only its own."""
    import sqlalchemy as sa

    from presencesync.store import tables

    with engine.db.begin() as conn:
        conn.execute(
            sa.update(tables.outbox)
            .where(tables.outbox.c.status == "pending")
            .values(status="done")
        )
