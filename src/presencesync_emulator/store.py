"""The emulated org's persistent state: one SQLite database (a file, or :memory:).

Every emulated sObject has its own table whose columns are the object's fields (see schema.py);
datetimes are stored as Salesforce's JSON text form (`2026-01-31T09:00:00.000+0000`), which
sorts chronologically. Tables prefixed `emu_` hold the emulator's own bookkeeping (OAuth
clients and sessions, API usage, routing exclusions, query cursors, settings).

All access goes through one connection guarded by a re-entrant lock: the emulator is small, and
one writer keeps Omni-Channel's routing decisions serial, as they are in a real org.

Change capture: `add_change_listener(sobjects, fn)` has `fn(RecordChange)` called for every
insert/update/delete of those objects, inside the writing transaction (so what the listener writes
commits or rolls back with the change); `after_commit(fn)` runs `fn` once the current outermost
transaction has committed. `tx_serial` numbers outermost transactions.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from presencesync_emulator.ids import make_id
from presencesync_emulator.schema import OBJECTS, ObjectDef

_SQL_TYPES = {"boolean": "INTEGER", "int": "INTEGER", "double": "REAL"}

_PRIVATE_TABLES = """
CREATE TABLE IF NOT EXISTS emu_counter (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS emu_setting (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS emu_oauth_client (
    client_id TEXT PRIMARY KEY, client_secret TEXT NOT NULL, username TEXT NOT NULL,
    certificate_pem TEXT NOT NULL, private_key_pem TEXT NOT NULL, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS emu_credential (
    username TEXT PRIMARY KEY, password TEXT NOT NULL, security_token TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS emu_session (
    token TEXT PRIMARY KEY, user_id TEXT NOT NULL, client_id TEXT,
    issued_at REAL NOT NULL, expires_at REAL NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS emu_api_usage (day TEXT PRIMARY KEY, count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS emu_channel_routing (
    service_channel_id TEXT PRIMARY KEY, queue_routing_config_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS emu_decline (
    work_item_id TEXT NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (work_item_id, user_id));
CREATE TABLE IF NOT EXISTS emu_query_cursor (
    locator TEXT PRIMARY KEY, records TEXT NOT NULL, total_size INTEGER NOT NULL,
    batch_size INTEGER NOT NULL, created_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS ix_usp_user_current
    ON "UserServicePresence" ("UserId", "IsCurrentState");
CREATE INDEX IF NOT EXISTS ix_usp_current
    ON "UserServicePresence" ("UserId") WHERE "IsCurrentState" = 1;
CREATE INDEX IF NOT EXISTS ix_pucu_user ON "PresenceUserConfigUser" ("UserId");
CREATE INDEX IF NOT EXISTS ix_aw_user_status ON "AgentWork" ("UserId", "Status");
CREATE INDEX IF NOT EXISTS ix_aw_item ON "AgentWork" ("WorkItemId");
CREATE INDEX IF NOT EXISTS ix_aw_user_assigned ON "AgentWork" ("UserId", "AssignedDateTime");
CREATE INDEX IF NOT EXISTS ix_psr_pushed ON "PendingServiceRouting" ("IsPushed", "CreatedDate");
"""


def sf_datetime(moment: datetime) -> str:
    """Salesforce's JSON datetime form: milliseconds and a +0000 offset."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def parse_sf_datetime(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _table_ddl(obj: ObjectDef) -> str:
    cols = []
    for f in obj.fields:
        sql_type = _SQL_TYPES.get(f.type, "TEXT")
        extra = " PRIMARY KEY" if f.name == "Id" else ""
        cols.append(f'"{f.name}" {sql_type}{extra}')
    return f'CREATE TABLE IF NOT EXISTS "{obj.name}" ({", ".join(cols)})'


@dataclass(frozen=True)
class RecordChange:
    """One record written: `op` is "CREATE", "UPDATE" or "DELETE"; `before`/`after` are the
    whole record (None for the side that does not exist)."""

    op: str
    sobject: str
    record_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


ChangeListener = Callable[[RecordChange], None]


class Store:
    """The org database. Use `with store.tx():` around every change."""

    def __init__(self, db: str = ":memory:", clock: Callable[[], datetime] = _utcnow) -> None:
        self.db = db
        self.clock = clock
        self.lock = threading.RLock()
        self._depth = 0
        self.tx_serial = 0
        self._listeners: dict[str, list[ChangeListener]] = {}
        self._after_commit: list[Callable[[], None]] = []
        self.conn = sqlite3.connect(db, check_same_thread=False, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        if db != ":memory:":
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
        with self.lock:
            for obj in OBJECTS.values():
                self.conn.execute(_table_ddl(obj))
                self._add_missing_columns(obj)
            self.conn.executescript(_PRIVATE_TABLES)

    def _add_missing_columns(self, obj: ObjectDef) -> None:
        """A database written by an older emulator gets the fields added since (empty)."""
        have = {row[1] for row in self.conn.execute(f'PRAGMA table_info("{obj.name}")')}
        for f in obj.fields:
            if f.name not in have:
                sql_type = _SQL_TYPES.get(f.type, "TEXT")
                self.conn.execute(f'ALTER TABLE "{obj.name}" ADD COLUMN "{f.name}" {sql_type}')

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    def now(self) -> datetime:
        return self.clock()

    def now_text(self) -> str:
        return sf_datetime(self.clock())

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of work; nested calls join the outer transaction."""
        with self.lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self.conn
                finally:
                    self._depth -= 1
                return
            self.conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            self.tx_serial += 1
            try:
                yield self.conn
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                self._after_commit.clear()
                raise
            else:
                if self.conn.in_transaction:
                    self.conn.execute("COMMIT")
            finally:
                self._depth = 0
            hooks, self._after_commit = self._after_commit, []
        for hook in hooks:
            hook()

    # -- change capture ---------------------------------------------------------------------

    def add_change_listener(self, sobjects: Iterable[str], listener: ChangeListener) -> None:
        for sobject in sobjects:
            self._listeners.setdefault(sobject, []).append(listener)

    def after_commit(self, hook: Callable[[], None]) -> None:
        """Run `hook` after the current transaction commits (dropped if it rolls back)."""
        with self.lock:
            if self._depth:
                if hook not in self._after_commit:
                    self._after_commit.append(hook)
                return
        hook()

    def _emit(self, change: RecordChange) -> None:
        for listener in self._listeners.get(change.sobject, ()):
            listener(change)

    # -- records ---------------------------------------------------------------------------

    def next_serial(self, name: str) -> int:
        with self.tx() as conn:
            row = conn.execute(
                "INSERT INTO emu_counter (name, value) VALUES (?, 1) "
                "ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value",
                (name,),
            ).fetchone()
            return int(row[0])

    def insert(self, sobject: str, values: Mapping[str, Any], actor: str | None = None) -> str:
        obj = OBJECTS[sobject]
        now = self.now_text()
        record: dict[str, Any] = {
            "IsDeleted": False,
            "CreatedDate": now,
            "LastModifiedDate": now,
            "SystemModstamp": now,
            "CreatedById": actor,
            "LastModifiedById": actor,
        }
        record.update(values)
        with self.tx() as conn:
            if "Id" not in record:
                record["Id"] = make_id(sobject, self.next_serial(sobject))
            unknown = set(record) - set(obj.field_map)
            if unknown:
                raise KeyError(f"{sobject} has no fields {sorted(unknown)}")
            cols = ", ".join(f'"{k}"' for k in record)
            marks = ", ".join("?" for _ in record)
            conn.execute(
                f'INSERT INTO "{sobject}" ({cols}) VALUES ({marks})', list(record.values())
            )
            if sobject in self._listeners:
                after = {f.name: None for f in obj.fields} | record
                self._emit(RecordChange("CREATE", sobject, str(record["Id"]), None, after))
        return str(record["Id"])

    def update(self, sobject: str, record_id: str, values: Mapping[str, Any]) -> None:
        obj = OBJECTS[sobject]
        changes = dict(values)
        now = self.now_text()
        changes.setdefault("LastModifiedDate", now)
        changes.setdefault("SystemModstamp", now)
        unknown = set(changes) - set(obj.field_map)
        if unknown:
            raise KeyError(f"{sobject} has no fields {sorted(unknown)}")
        sets = ", ".join(f'"{k}" = ?' for k in changes)
        with self.tx() as conn:
            before = self.get(sobject, record_id) if sobject in self._listeners else None
            conn.execute(
                f'UPDATE "{sobject}" SET {sets} WHERE "Id" = ?', [*changes.values(), record_id]
            )
            if before is not None:
                self._emit(RecordChange("UPDATE", sobject, record_id, before, before | changes))

    def delete(self, sobject: str, record_id: str) -> None:
        with self.tx() as conn:
            before = self.get(sobject, record_id) if sobject in self._listeners else None
            conn.execute(f'DELETE FROM "{sobject}" WHERE "Id" = ?', (record_id,))
            if before is not None:
                self._emit(RecordChange("DELETE", sobject, record_id, before, None))

    def get(self, sobject: str, record_id: str) -> dict[str, Any] | None:
        rows = self.find(sobject, '"Id" = ?', (record_id,))
        return rows[0] if rows else None

    def find(
        self, sobject: str, where: str = "", params: tuple[Any, ...] = (), order: str = ""
    ) -> list[dict[str, Any]]:
        """Records as dicts (booleans as bool), e.g. find("User", '"Username" = ?', (name,))."""
        sql = f'SELECT * FROM "{sobject}"'
        if where:
            sql += f" WHERE {where}"
        if order:
            sql += f" ORDER BY {order}"
        with self.lock:
            rows = self.conn.execute(sql, params).fetchall()
        return [self._from_row(OBJECTS[sobject], r) for r in rows]

    @staticmethod
    def _from_row(obj: ObjectDef, row: sqlite3.Row) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in row.keys():  # noqa: SIM118 - sqlite3.Row is not a mapping
            value = row[key]
            if value is not None and obj.field_map[key].type == "boolean":
                value = bool(value)
            out[key] = value
        return out

    # -- bookkeeping ------------------------------------------------------------------------

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self.tx() as conn:
            return conn.execute(sql, params).fetchall()

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self.lock:
            return self.conn.execute(sql, params).fetchall()

    def setting(self, key: str, default: str | None = None) -> str | None:
        rows = self.query("SELECT value FROM emu_setting WHERE key = ?", (key,))
        return rows[0][0] if rows else default

    def set_setting(self, key: str, value: str) -> None:
        self.execute(
            "INSERT INTO emu_setting (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )
