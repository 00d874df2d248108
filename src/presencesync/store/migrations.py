"""Schema migrations with Alembic, configured in code so that they run from an installed package
(no alembic.ini on disk needed): `upgrade(url)` is what `presencesync migrate` and
`open_engine` call."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from presencesync.store.db import create_db_engine, normalize_url

SCRIPT_LOCATION = str(Path(__file__).with_name("alembic"))


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    # '%' would be read as interpolation by ConfigParser.
    config.set_main_option("sqlalchemy.url", normalize_url(database_url).replace("%", "%%"))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(database_url: str, engine: Engine | None = None) -> None:
    """Bring the database to the newest schema (a no-op when it is already there)."""
    own = engine is None
    db = engine or create_db_engine(database_url)
    try:
        if current_revision(db) == head_revision():
            return
        config = alembic_config(database_url)
        with db.connect() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            conn.commit()
    finally:
        if own:
            db.dispose()
