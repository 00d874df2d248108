"""Named, exclusive, process-held locks on the store: one holder at a time per name, released
when the holder lets go, or dies.

PostgreSQL: a session advisory lock (`pg_try_advisory_lock`) held by a connection of its own,
opened outside the pool; when the process dies its connection closes and the server releases
the lock, so another process can take over without any lease or clock. SQLite serves one
process (README: several `serve` processes need PostgreSQL), so there the lock is held in the
process, per database file and name (two engines of one process on one file still exclude
each other).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from typing import Any, Protocol

from sqlalchemy.engine import Engine

from presencesync.store.db import is_postgres

log = logging.getLogger(__name__)


class HeldLock(Protocol):
    name: str

    def alive(self) -> bool:
        """Still ours? (PostgreSQL: the session that holds it still answers.)"""
        ...

    def release(self) -> None: ...


def lock_key(name: str) -> int:
    """A signed 64-bit advisory lock key for `name` (stable across processes)."""
    digest = hashlib.sha256(f"presencesync:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class _PostgresLock:
    def __init__(self, name: str, connection: Any, key: int) -> None:
        self.name = name
        self._conn = connection
        self._key = key
        self._guard = threading.Lock()

    def alive(self) -> bool:
        with self._guard:
            if self._conn is None:
                return False
            try:
                self._conn.execute("SELECT 1").fetchone()
                return True
            except Exception:
                log.warning("lock %s: its session is gone", self.name)
                self._close()
                return False

    def release(self) -> None:
        with self._guard:
            if self._conn is None:
                return
            with contextlib.suppress(Exception):  # the session is gone: so is the lock
                self._conn.execute("SELECT pg_advisory_unlock(%s)", (self._key,))
            self._close()

    def _close(self) -> None:
        try:
            self._conn.close()
        finally:
            self._conn = None


_held_here: set[tuple[str, str]] = set()
_held_guard = threading.Lock()


class _ProcessLock:
    def __init__(self, name: str, key: tuple[str, str]) -> None:
        self.name = name
        self._key = key
        self._held = True

    def alive(self) -> bool:
        return self._held

    def release(self) -> None:
        with _held_guard:
            if self._held:
                _held_here.discard(self._key)
                self._held = False


def try_lock(engine: Engine, name: str) -> HeldLock | None:
    """Take the lock `name` now, or None if someone holds it (blocking I/O: call it off the
    event loop)."""
    if is_postgres(engine):
        import psycopg

        url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        conn = psycopg.connect(url, autocommit=True)
        key = lock_key(name)
        try:
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
        except Exception:
            conn.close()
            raise
        if not row or not row[0]:
            conn.close()
            return None
        return _PostgresLock(name, conn, key)
    where = engine.url.render_as_string(hide_password=True)
    if engine.url.database in (None, "", ":memory:"):
        where += f"#{id(engine)}"  # every in-memory database is a database of its own
    with _held_guard:
        if (where, name) in _held_here:
            return None
        _held_here.add((where, name))
    return _ProcessLock(name, (where, name))


__all__ = ["HeldLock", "lock_key", "try_lock"]
