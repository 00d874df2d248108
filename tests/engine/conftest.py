"""Engine tests run against SQLite (a temporary file) and, when PRESENCESYNC_TEST_POSTGRES_URL
is set, against PostgreSQL in a schema of their own that is dropped afterwards. With CI=true
and no PostgreSQL URL, the PostgreSQL variants fail instead of skipping."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from presencesync.bootstrap import open_engine
from presencesync.service import Engine
from presencesync.store import upgrade

from .engine_kit import seed_account

POSTGRES_ENV = "PRESENCESYNC_TEST_POSTGRES_URL"


def postgres_base_url() -> str | None:
    url = os.environ.get(POSTGRES_ENV)
    if url:
        return url
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {POSTGRES_ENV} is not set: the PostgreSQL tests must run")
    pytest.skip(f"{POSTGRES_ENV} is not set")
    return None


def _with_search_path(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh schema for the whole run (the URL pins search_path to it); dropped at the end."""
    import psycopg

    base = postgres_base_url()
    assert base is not None
    schema = f"ps_test_{secrets.token_hex(4)}"
    plain = base.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield _with_search_path(base, schema)
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, migrated once and copied per test (migrating takes longer than
    most tests)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "engine.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = open_engine(database_url)
    try:
        yield eng
    finally:
        eng.close()


@pytest.fixture
def account(engine: Engine) -> str:
    """A fresh account (PostgreSQL tests share a schema, so every test makes its own)."""
    return seed_account(engine)
