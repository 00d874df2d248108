"""Reads and writes of account configuration and agents on one SQLAlchemy connection.

Functions, not a class: the engine decides the transaction, these only say what to read and
write inside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from presencesync.domain import (
    AgentSnapshot,
    Finding,
    OmniConfig,
    PresenceMapping,
    PresenceStatus,
    StateCatalog,
    StateMapping,
    SyncSettings,
    parse_state_text,
)
from presencesync.service.errors import NotFound
from presencesync.service.model import Account, AgentRecord, ConfigVersion, as_utc
from presencesync.store import tables as t


@dataclass(frozen=True)
class AccountContext:
    """What `decide` needs besides the agent: the account's config, catalog and settings."""

    account: Account
    catalog: StateCatalog
    settings: SyncSettings
    config: OmniConfig | None  # None when the Omni feature is off or nothing was saved yet


def require_account(conn: Connection, account_id: str, *, lock: bool = False) -> Account:
    query = sa.select(t.accounts).where(t.accounts.c.id == account_id)
    if lock and conn.dialect.name == "postgresql":
        # Serializes configuration saves of the account; NO KEY so that the foreign-key checks
        # of concurrent event writes (KEY SHARE) do not wait for it.
        query = query.with_for_update(key_share=True)
    row = conn.execute(query).first()
    if row is None:
        raise NotFound("ACCOUNT_NOT_FOUND", f"no account {account_id!r}")
    return Account(row.id, row.name, bool(row.omni_feature))


def upsert_account_row(
    conn: Connection, table: sa.Table, account_id: str, values: Mapping[str, Any]
) -> None:
    """Write the account's one row of `table` (settings, last fetch, connection). The caller
    holds the account's lock, so update-then-insert cannot race another save."""
    updated = conn.execute(
        sa.update(table).where(table.c.account_id == account_id).values(**values)
    )
    if updated.rowcount == 0:
        conn.execute(sa.insert(table).values(account_id=account_id, **values))


def load_catalog(conn: Connection, account_id: str) -> StateCatalog:
    row = conn.execute(
        sa.select(t.state_catalogs.c.minor_states)
        .where(t.state_catalogs.c.account_id == account_id)
        .order_by(t.state_catalogs.c.version.desc())
        .limit(1)
    ).first()
    if row is None:
        return StateCatalog.default()
    return StateCatalog.from_minor_states(row.minor_states)


def load_settings(conn: Connection, account_id: str) -> SyncSettings:
    row = conn.execute(
        sa.select(t.account_settings.c.settings).where(
            t.account_settings.c.account_id == account_id
        )
    ).first()
    return SyncSettings() if row is None else SyncSettings(**row.settings)


def load_presence_statuses(conn: Connection, account_id: str) -> list[PresenceStatus]:
    row = conn.execute(
        sa.select(t.presence_statuses.c.statuses).where(
            t.presence_statuses.c.account_id == account_id
        )
    ).first()
    return [] if row is None else [PresenceStatus.from_api(s) for s in row.statuses]


def config_to_json(config: OmniConfig) -> dict[str, Any]:
    return {**config.to_api(), "presence_statuses": [s.to_api() for s in config.presence_statuses]}


def config_from_json(data: Mapping[str, Any]) -> OmniConfig:
    """Rebuild a config that was valid when saved (not re-validated: the catalog or the fetch
    may have moved on since, and the saved version is what applies until the next save)."""
    return OmniConfig(
        enabled=bool(data["enabled"]),
        presence_statuses=tuple(PresenceStatus.from_api(s) for s in data["presence_statuses"]),
        presence_mappings=tuple(
            PresenceMapping(
                m["presence_status"],
                bool(m["busy"]),
                parse_state_text(m["maps_to"]) if m.get("maps_to") else None,
            )
            for m in data["presence_mappings"]
        ),
        state_mappings=tuple(
            StateMapping(parse_state_text(m["state"]), m["presence_status"])
            for m in data["state_mappings"]
        ),
    )


def finding_from_json(data: Mapping[str, Any]) -> Finding:
    trip = data.get("round_trip")
    return Finding(
        code=data["code"],
        message=data["message"],
        section=data.get("section"),
        index=data.get("index"),
        key=data.get("key"),
        round_trip=None if trip is None else tuple(trip),
    )


def load_config_version(conn: Connection, account_id: str) -> ConfigVersion | None:
    row = conn.execute(
        sa.select(t.omni_config_versions)
        .where(t.omni_config_versions.c.account_id == account_id)
        .order_by(t.omni_config_versions.c.version.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return ConfigVersion(
        version=row.version,
        config=config_from_json(row.config),
        warnings=tuple(finding_from_json(w) for w in row.warnings),
        saved_by=row.saved_by,
        saved_at=as_utc(row.saved_at),
    )


def bump_config_version(conn: Connection, account_id: str) -> None:
    conn.execute(
        sa.update(t.accounts)
        .where(t.accounts.c.id == account_id)
        .values(config_version=t.accounts.c.config_version + 1)
    )


class ContextCache:
    """Account contexts by (account, config_version): one small query per batch and account
    instead of four, and still right when another process saves a new configuration."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[int, AccountContext]] = {}

    def get(self, conn: Connection, account_id: str) -> AccountContext:
        row = conn.execute(
            sa.select(t.accounts.c.config_version).where(t.accounts.c.id == account_id)
        ).first()
        if row is None:
            raise NotFound("ACCOUNT_NOT_FOUND", f"no account {account_id!r}")
        cached = self._entries.get(account_id)
        if cached is not None and cached[0] == row.config_version:
            return cached[1]
        context = load_context(conn, account_id)
        self._entries[account_id] = (row.config_version, context)
        return context


def load_context(conn: Connection, account_id: str) -> AccountContext:
    account = require_account(conn, account_id)
    version = load_config_version(conn, account_id) if account.omni_feature else None
    return AccountContext(
        account=account,
        catalog=load_catalog(conn, account_id),
        settings=load_settings(conn, account_id),
        config=None if version is None else version.config,
    )


def agent_record(row: Any) -> AgentRecord:
    return AgentRecord(
        agent_id=row.agent_id,
        name=row.name,
        salesforce_user_id=row.salesforce_user_id,
        snapshot=AgentSnapshot.from_json(row.snapshot),
    )


def get_agent_row(conn: Connection, account_id: str, agent_id: str) -> Any:
    row = conn.execute(
        sa.select(t.agents).where(
            t.agents.c.account_id == account_id, t.agents.c.agent_id == agent_id
        )
    ).first()
    if row is None:
        raise NotFound("AGENT_NOT_FOUND", f"no agent {agent_id!r} in this account")
    return row
