"""Secrets at rest: the Salesforce client secret and private key never reach the store in
plaintext; a wrong or missing key is a clear error; keys rotate."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from presencesync.service import Engine, SalesforceConnection, open_engine
from presencesync.store import tables
from presencesync.store.secrets import (
    SECRET_KEY_ENV,
    InvalidSecretKey,
    SecretBox,
    SecretKeyMismatch,
    SecretKeyMissing,
    new_key,
    reseal_all,
)

SECRET = "client-secret-0123456789"
PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"
CONNECTION = SalesforceConnection("https://login.example", "cid", "u@example.com", SECRET, PEM)


def _raw_rows(engine: Engine) -> list[str]:
    """Every stored connection row as text, all columns."""
    with engine.db.connect() as conn:
        rows = conn.execute(sa.select(tables.salesforce_connections)).all()
    return [repr(tuple(row)) for row in rows]


def _database_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    wal = path.with_name(path.name + "-wal")
    return data + (wal.read_bytes() if wal.exists() else b"")


@pytest.fixture
def no_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SECRET_KEY_ENV, raising=False)


def test_the_store_never_holds_the_plaintext(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_KEY_ENV, new_key())
    path = tmp_path / "store.db"
    with open_engine(f"sqlite:///{path}") as engine:
        account = engine.create_account("Acme")
        engine.set_salesforce_connection(account, CONNECTION)
        rows = _raw_rows(engine)
        assert engine.get_salesforce_connection(account) == CONNECTION
    assert len(rows) == 1
    assert SECRET not in rows[0] and "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" not in rows[0]
    assert rows[0].count("fernet:") == 2
    # Not in the database file nor its write-ahead log either, byte for byte.
    raw = _database_bytes(path)
    assert SECRET.encode() not in raw and b"MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" not in raw


def test_a_wrong_key_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv(SECRET_KEY_ENV, new_key())
    with open_engine(url) as engine:
        account = engine.create_account("Acme")
        engine.set_salesforce_connection(account, CONNECTION)
    monkeypatch.setenv(SECRET_KEY_ENV, new_key())
    with open_engine(url) as engine, pytest.raises(SecretKeyMismatch) as error:
        engine.get_salesforce_connection(account)
    assert SECRET_KEY_ENV in str(error.value) and "old one after it" in str(error.value)


def test_an_invalid_key_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_KEY_ENV, "not-a-fernet-key")
    with pytest.raises(InvalidSecretKey) as error:
        Engine("sqlite://")
    assert "key 1 of PRESENCESYNC_SECRET_KEY" in str(error.value)


def test_rotation_with_the_old_key_kept_then_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    old, new = new_key(), new_key()
    monkeypatch.setenv(SECRET_KEY_ENV, old)
    with open_engine(url) as engine:
        account = engine.create_account("Acme")
        engine.set_salesforce_connection(account, CONNECTION)
    # New key first, old one kept: the old rows still read, new writes use the new key.
    monkeypatch.setenv(SECRET_KEY_ENV, f"{new},{old}")
    with open_engine(url) as engine:
        assert engine.get_salesforce_connection(account) == CONNECTION
        assert reseal_all(engine.db, engine.secrets) == 1
    # After re-encrypting, the old key can go.
    monkeypatch.setenv(SECRET_KEY_ENV, new)
    with open_engine(url) as engine:
        assert engine.get_salesforce_connection(account) == CONNECTION
    monkeypatch.setenv(SECRET_KEY_ENV, old)
    with open_engine(url) as engine, pytest.raises(SecretKeyMismatch):
        engine.get_salesforce_connection(account)


def test_rotate_secrets_command(tmp_path: Path, no_key_in_env: None) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    old, new = new_key(), new_key()
    with open_engine(url) as engine:
        engine.secrets = SecretBox([old])
        account = engine.create_account("Acme")
        engine.set_salesforce_connection(account, CONNECTION)
    env = {**os.environ, SECRET_KEY_ENV: f"{new},{old}", "PRESENCESYNC_DATABASE_URL": url}
    done = subprocess.run(
        [sys.executable, "-m", "presencesync", "rotate-secrets"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "1 Salesforce connection" in done.stdout
    with open_engine(url) as engine:
        engine.secrets = SecretBox([new])
        assert engine.get_salesforce_connection(account) == CONNECTION


def test_values_stored_before_encryption_still_read_and_get_sealed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_KEY_ENV, new_key())
    with open_engine(f"sqlite:///{tmp_path / 'store.db'}") as engine:
        account = engine.create_account("Acme")
        engine.set_salesforce_connection(account, CONNECTION)
        with engine.db.begin() as conn:  # what an older version wrote
            conn.execute(
                sa.update(tables.salesforce_connections).values(
                    client_secret=SECRET, private_key_pem=PEM
                )
            )
        assert engine.get_salesforce_connection(account) == CONNECTION
        reseal_all(engine.db, engine.secrets)
        assert SECRET not in _raw_rows(engine)[0]
        assert engine.get_salesforce_connection(account) == CONNECTION


def test_sqlite_without_a_key_keeps_a_key_file_next_to_the_database(
    tmp_path: Path, no_key_in_env: None
) -> None:
    path = tmp_path / "demo.db"
    key_file = tmp_path / "demo.db.secret-key"
    with open_engine(f"sqlite:///{path}") as engine:
        account = engine.create_account("Acme")
        assert not key_file.exists()  # made only when a secret is stored
        engine.set_salesforce_connection(account, CONNECTION)
        assert SECRET not in _raw_rows(engine)[0]
    assert key_file.exists()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    with open_engine(f"sqlite:///{path}") as engine:  # a restart reads the same key
        assert engine.get_salesforce_connection(account) == CONNECTION
    key_file.unlink()
    with open_engine(f"sqlite:///{path}") as engine, pytest.raises(SecretKeyMissing) as error:
        engine.get_salesforce_connection(account)
    assert str(key_file) in str(error.value)


def test_without_a_key_nothing_is_stored_in_plaintext(no_key_in_env: None) -> None:
    """PostgreSQL without PRESENCESYNC_SECRET_KEY: no key file place, so refuse."""
    box = SecretBox.for_database("postgresql://postgres@127.0.0.1:5432/test")
    with pytest.raises(SecretKeyMissing) as error:
        box.seal(SECRET)
    assert SECRET_KEY_ENV in str(error.value)
    assert box.seal(None) is None  # no secret, nothing to protect
    assert box.open("plain-from-before") == "plain-from-before"
    with pytest.raises(SecretKeyMissing):
        box.open("fernet:gAAAA")


def test_postgres_stores_ciphertext_too(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_KEY_ENV, new_key())
    with open_engine(postgres_url) as engine:
        account = engine.create_account("Acme")
        engine.set_salesforce_connection(account, CONNECTION)
        with engine.db.connect() as conn:
            raw = conn.execute(
                sa.select(tables.salesforce_connections).where(
                    tables.salesforce_connections.c.account_id == account
                )
            ).one()
        assert SECRET not in repr(tuple(raw))
        assert engine.get_salesforce_connection(account) == CONNECTION
