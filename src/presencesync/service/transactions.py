"""Connections for the service layer's transactions, shared by the engine and the router.

SQLite has one writer at a time anyway: queueing our own threads on a lock is fair and fast,
where SQLite's busy handler would make them sleep and poll. An in-memory SQLite database is one
shared connection, so reads take the same lock there. PostgreSQL needs neither lock (row locks).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from presencesync.store import WRITE, is_postgres


class Transactions:
    def __init__(self, db: sa.Engine) -> None:
        self.db = db
        self._write_lock = None if is_postgres(db) else threading.RLock()
        self._read_lock = self._write_lock if _in_memory(db) else None

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A connection for one write transaction (BEGIN IMMEDIATE on SQLite)."""
        with self._write_lock or nullcontext(), self.db.connect() as conn:
            yield conn.execution_options(**WRITE)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self._read_lock or nullcontext(), self.db.connect() as conn:
            yield conn


def _in_memory(db: sa.Engine) -> bool:
    return db.dialect.name == "sqlite" and db.url.database in (None, "", ":memory:")
