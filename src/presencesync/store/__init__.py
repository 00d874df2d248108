"""The store: SQLAlchemy 2 Core tables, engine construction and Alembic migrations."""

from sqlalchemy.engine import Engine

from presencesync.store import tables
from presencesync.store.db import WRITE, create_db_engine, is_postgres, normalize_url


def upgrade(database_url: str, engine: Engine | None = None) -> None:
    """Migrate to the newest schema (Alembic is imported only when this runs)."""
    from presencesync.store.migrations import upgrade as run

    run(database_url, engine)


__all__ = ["WRITE", "create_db_engine", "is_postgres", "normalize_url", "tables", "upgrade"]
