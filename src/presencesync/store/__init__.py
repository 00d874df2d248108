"""The store: SQLAlchemy 2 Core tables, engine construction and Alembic migrations."""

from presencesync.store import tables
from presencesync.store.db import WRITE, create_db_engine, is_postgres, normalize_url
from presencesync.store.migrations import upgrade

__all__ = ["WRITE", "create_db_engine", "is_postgres", "normalize_url", "tables", "upgrade"]
