"""Engine construction: SQLite (WAL, busy timeout, foreign keys) or PostgreSQL via psycopg.

On SQLite the pysqlite driver's own transaction handling is switched off so that we emit BEGIN
ourselves: `BEGIN IMMEDIATE` for a unit of work (takes the write lock up front, so two writers
never deadlock on a lock upgrade), a plain deferred BEGIN for reads.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.pool import StaticPool

from presencesync import fastjson

WRITE = {"presencesync_write": True}


def normalize_url(database_url: str) -> str:
    """Accept plain `postgresql://` (and `postgres://`) URLs: we always talk through psycopg 3."""
    url = make_url(database_url)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def create_db_engine(database_url: str, **kwargs: Any) -> Engine:
    url = make_url(normalize_url(database_url))
    # Every unit of work writes four JSON columns: the standard encoder was ~10% of it.
    kwargs.setdefault("json_serializer", fastjson.dumps)
    kwargs.setdefault("json_deserializer", fastjson.loads)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, **kwargs)
    if url.get_backend_name() == "postgresql":
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 10)
        kwargs.setdefault("pool_pre_ping", True)
        return sa.create_engine(url, **kwargs)
    raise ValueError(f"unsupported database {url.get_backend_name()!r}: use sqlite or postgresql")


def _sqlite_engine(url: sa.URL, **kwargs: Any) -> Engine:
    memory = url.database in (None, "", ":memory:")
    if memory:
        # One shared connection, or each connection would see its own empty database.
        kwargs.setdefault("poolclass", StaticPool)
    connect_args = dict(kwargs.pop("connect_args", {}))
    connect_args.setdefault("check_same_thread", False)
    connect_args.setdefault("timeout", 30)
    engine = sa.create_engine(url, connect_args=connect_args, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see module doc)
        cursor = dbapi_connection.cursor()
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        # FULL: an acknowledged commit survives power loss too; group commit pays for it.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get("presencesync_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    return engine
