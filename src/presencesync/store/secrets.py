"""Secrets at rest: the Salesforce connection's client secret and private key are stored
encrypted (Fernet: AES-128-CBC + HMAC-SHA256, with a timestamp) under a key from the environment.

Where the key comes from, first match wins:

1. `PRESENCESYNC_SECRET_KEY`: one Fernet key, or several separated by commas. The first
   encrypts; every one of them decrypts, so a key is rotated by putting the new key first,
   keeping the old one after it until `presencesync rotate-secrets` has re-encrypted the rows.
2. A SQLite database file: a key file next to it (`<database>.secret-key`, mode 0600), made on
   the first secret stored. It keeps a copy of the database alone (a backup, a file sent with a
   bug report) from revealing the secrets; keep the key file out of such copies.
3. An in-memory SQLite database: a key that lives as long as the process (so does the data).
4. Otherwise (PostgreSQL without `PRESENCESYNC_SECRET_KEY`) nothing is stored in plaintext:
   storing or reading a secret raises `SecretKeyMissing`.

Stored values carry the prefix `fernet:`; a value without it was stored before encryption
existed and is read as it is (`rotate-secrets` encrypts it).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy.engine import make_url

from presencesync.store import tables

SECRET_KEY_ENV = "PRESENCESYNC_SECRET_KEY"
PREFIX = "fernet:"
KEY_FILE_SUFFIX = ".secret-key"


class SecretKeyError(RuntimeError):
    """The secrets at rest cannot be sealed or opened: a configuration problem, not bad input."""

    code = "SECRET_KEY_ERROR"


class SecretKeyMissing(SecretKeyError):
    code = "SECRET_KEY_MISSING"


class SecretKeyMismatch(SecretKeyError):
    code = "SECRET_KEY_MISMATCH"


class InvalidSecretKey(SecretKeyError):
    code = "INVALID_SECRET_KEY"


def new_key() -> str:
    """A fresh key for `PRESENCESYNC_SECRET_KEY`."""
    return Fernet.generate_key().decode()


def _parse_keys(value: str, source: str) -> list[Fernet]:
    keys = [part.strip() for part in value.split(",") if part.strip()]
    if not keys:
        raise InvalidSecretKey(f"{source} holds no key")
    fernets: list[Fernet] = []
    for index, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key.encode()))
        except (ValueError, TypeError) as error:
            raise InvalidSecretKey(
                f"key {index} of {source} is not a Fernet key (32 url-safe base64-encoded bytes; "
                'make one with: python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())")'
            ) from error
    return fernets


class SecretBox:
    """Seals and opens the secrets of the store. Thread-safe."""

    def __init__(
        self,
        keys: Sequence[str] | None = None,
        *,
        key_file: Path | None = None,
        source: str = SECRET_KEY_ENV,
    ) -> None:
        """`keys`: the keys, newest first. Without keys, `key_file` is read (and made on the
        first seal); without either, sealing and opening raise `SecretKeyMissing`."""
        self._fernet: MultiFernet | None = None
        self._key_file = key_file
        self._source = source
        self._lock = threading.Lock()
        if keys:
            self._fernet = MultiFernet(_parse_keys(",".join(keys), source))

    @classmethod
    def for_database(cls, database_url: str, environ: Mapping[str, str] | None = None) -> SecretBox:
        """The box for a store, following the order in this module's docstring."""
        env = os.environ if environ is None else environ
        configured = env.get(SECRET_KEY_ENV, "").strip()
        if configured:
            return cls([configured])
        url = make_url(database_url)
        if url.get_backend_name() == "sqlite":
            database = url.database
            if database in (None, "", ":memory:") or str(database).startswith("file::memory:"):
                return cls([new_key()], source="a key for this process")
            path = Path(str(database))
            return cls(key_file=path.with_name(path.name + KEY_FILE_SUFFIX))
        return cls()

    @property
    def configured(self) -> bool:
        return self._fernet is not None or (self._key_file is not None and self._key_file.exists())

    def seal(self, plaintext: str | None) -> str | None:
        """The value to store for `plaintext` (None stays None)."""
        if plaintext is None:
            return None
        fernet = self._keys(create=True)
        return PREFIX + fernet.encrypt(plaintext.encode()).decode()

    def open(self, stored: str | None) -> str | None:
        """The plaintext of a stored value (None stays None; an unsealed value is returned as
        it was stored)."""
        if stored is None or not stored.startswith(PREFIX):
            return stored
        fernet = self._keys(create=False)
        try:
            return fernet.decrypt(stored[len(PREFIX) :].encode()).decode()
        except InvalidToken as error:
            raise SecretKeyMismatch(
                f"a stored secret was encrypted with a key that {self._source} does not hold "
                f"(to rotate keys, list the new key first and the old one after it)"
            ) from error

    def reseal(self, stored: str | None) -> str | None:
        """`stored` encrypted again with the newest key (an unsealed value gets sealed)."""
        if stored is None:
            return None
        return self.seal(self.open(stored))

    def _keys(self, *, create: bool) -> MultiFernet:
        if self._fernet is not None:
            return self._fernet
        with self._lock:
            if self._fernet is None and self._key_file is not None:
                if self._key_file.exists():
                    self._fernet = MultiFernet(
                        _parse_keys(self._key_file.read_text(), str(self._key_file))
                    )
                elif create:
                    self._fernet = MultiFernet([Fernet(_write_key_file(self._key_file))])
        if self._fernet is None:
            where = f" or keep {self._key_file}" if self._key_file is not None else ""
            raise SecretKeyMissing(
                f"no key to encrypt or decrypt the Salesforce credentials: set {SECRET_KEY_ENV}"
                f"{where} (secrets are never stored in plaintext)"
            )
        return self._fernet


def _write_key_file(path: Path) -> bytes:
    key = Fernet.generate_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written aside, then linked into place: another process starting at the same moment
    # either wins (and we read its complete file) or loses, never sees half a key.
    spare = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}")
    fd = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key.decode() + "\n")
    try:
        os.link(spare, path)
    except FileExistsError:
        key = path.read_text().strip().split(",")[0].encode()
    finally:
        spare.unlink()
    return key


def reseal_all(db: sa.Engine, box: SecretBox) -> int:
    """Encrypt every stored secret again with the newest key (and seal values stored before
    encryption existed). Returns how many rows changed. One transaction."""
    table = tables.salesforce_connections
    changed = 0
    with db.begin() as conn:
        rows = conn.execute(
            sa.select(table.c.account_id, table.c.client_secret, table.c.private_key_pem)
        ).all()
        for row in rows:
            values = {
                "client_secret": box.reseal(row.client_secret),
                "private_key_pem": box.reseal(row.private_key_pem),
            }
            if values != {
                "client_secret": row.client_secret,
                "private_key_pem": row.private_key_pem,
            }:
                conn.execute(
                    sa.update(table).where(table.c.account_id == row.account_id).values(**values)
                )
                changed += 1
    return changed
