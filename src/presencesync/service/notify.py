"""PostgreSQL LISTEN/NOTIFY: wake the outbox dispatchers of every process sharing the store.

A unit of work that writes outbox rows also runs `pg_notify(CHANNEL)` (delivered at commit);
each process with a dispatcher listens on its own connection and wakes it, so a command
decided in one process goes out at once from another instead of at the next poll.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, make_url

from presencesync.store import normalize_url

log = logging.getLogger(__name__)

CHANNEL = "presencesync_outbox"


def notify_outbox(conn: Connection) -> None:
    conn.execute(sa.text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})


def libpq_url(database_url: str) -> str:
    return (
        make_url(normalize_url(database_url))
        .set(drivername="postgresql")
        .render_as_string(hide_password=False)
    )


class OutboxListener:
    """A thread that LISTENs and calls `on_notify` for every notification."""

    def __init__(self, database_url: str, on_notify: Callable[[], None]) -> None:
        self._conninfo = libpq_url(database_url)
        self._on_notify = on_notify
        self._stopped = threading.Event()
        self.listening = threading.Event()
        self._thread = threading.Thread(target=self._run, name="presencesync-listen", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psycopg

        while not self._stopped.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    while not self._stopped.is_set():
                        for _notify in conn.notifies(timeout=0.5):
                            self._on_notify()
            except Exception:
                self.listening.clear()
                log.exception("listening for outbox notifications failed; retrying")
                self._stopped.wait(1.0)

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
