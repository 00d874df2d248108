"""Where each Pub/Sub API subscription of an account resumes: one row per (account, topic) in
`pubsub_replay`, SQLite or PostgreSQL (an implementation of the connector's `ReplayStore`).
Replay ids are opaque bytes: stored as they came."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from presencesync.store import tables as t
from presencesync.store.db import WRITE


class SqlReplayStore:
    """Replay ids of one account, one row per topic (upserted)."""

    def __init__(self, engine: Engine, account_id: str) -> None:
        self.engine = engine
        self.account_id = account_id

    def load_sync(self, topic: str) -> bytes | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.pubsub_replay.c.replay_id).where(
                    t.pubsub_replay.c.account_id == self.account_id,
                    t.pubsub_replay.c.topic == topic,
                )
            ).first()
        return bytes(row.replay_id) if row is not None else None

    def save_sync(self, topic: str, replay_id: bytes) -> None:
        if not replay_id:
            raise ValueError("an empty replay id cannot be a resume point")
        values = {
            "account_id": self.account_id,
            "topic": topic,
            "replay_id": bytes(replay_id),
            "updated_at": datetime.now(UTC),
        }
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(t.pubsub_replay).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=[t.pubsub_replay.c.account_id, t.pubsub_replay.c.topic],
            set_={"replay_id": values["replay_id"], "updated_at": values["updated_at"]},
        )
        with self.engine.connect() as conn:
            writer = conn.execution_options(**WRITE)
            with writer.begin():
                writer.execute(statement)

    async def load(self, topic: str) -> bytes | None:
        return await asyncio.to_thread(self.load_sync, topic)

    async def save(self, topic: str, replay_id: bytes) -> None:
        await asyncio.to_thread(self.save_sync, topic, replay_id)
