"""Alembic environment: runs on the connection `presencesync.store.migrations` hands over (or
on the URL of the config), online only. On PostgreSQL an advisory lock keeps two processes that
start at once from migrating together."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from presencesync.store.db import create_db_engine
from presencesync.store.tables import metadata

MIGRATION_LOCK = 7_031_977  # any constant; the advisory lock id of schema migrations


def _run(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_db_engine(context.config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


run_migrations_online()
