"""Accounts, tokens, configuration and agents: validated, all-or-nothing, versioned."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa

from presencesync.cli import main as cli_main
from presencesync.domain import DomainError, InvalidConfig, InvalidState, Major
from presencesync.service import (
    Conflict,
    Engine,
    NotFound,
    Principal,
    SalesforceConnection,
)
from presencesync.store import tables
from presencesync.store.migrations import current_revision, head_revision
from presencesync.store.secrets import SecretBox, new_key

from .engine_kit import CONFIG, STATUSES, count_rows, seed_account


def test_migrate_command_is_idempotent(database_url: str, capsys: pytest.CaptureFixture[str]):
    assert cli_main(["migrate", "--database-url", database_url]) == 0
    assert cli_main(["migrate", "--database-url", database_url]) == 0
    assert "migrated" in capsys.readouterr().out
    from presencesync.store import create_db_engine

    db = create_db_engine(database_url)
    try:
        assert current_revision(db) == head_revision() is not None
    finally:
        db.dispose()


def test_tokens_are_stored_hashed_and_resolve_to_a_principal(engine: Engine, account: str):
    engine.create_agent(account, "alice", "Alice", "005000000000001")
    admin = engine.create_token(account, "admin", label="ops")
    agent = engine.create_token(account, "agent", agent_id="alice")
    assert engine.resolve_token(admin) == Principal(account, "admin", None)
    assert engine.resolve_token(agent) == Principal(account, "agent", "alice")
    assert engine.resolve_token("ps_nope") is None
    assert engine.resolve_token("") is None
    with engine.db.connect() as conn:
        stored = set(conn.execute(sa.select(tables.api_tokens.c.token_hash)).scalars())
    assert hashlib.sha256(admin.encode()).hexdigest() in stored
    assert admin not in stored
    with pytest.raises(DomainError) as error:
        engine.create_token(account, "root")
    assert error.value.code == "INVALID_ROLE"
    with pytest.raises(NotFound):
        engine.create_token(account, "agent", agent_id="nobody")


def test_account_lookup(engine: Engine):
    account_id = engine.create_account("Globex", omni_feature=False)
    account = engine.get_account(account_id)
    assert (account.name, account.omni_feature) == ("Globex", False)
    with pytest.raises(NotFound) as error:
        engine.get_account("missing")
    assert error.value.code == "ACCOUNT_NOT_FOUND"


def test_minor_states_are_validated_and_versioned(engine: Engine, account: str):
    catalog = engine.set_minor_states(
        account, {"Away": ["Break", "Coffee"], "ExtendedAway": ["Lunch"]}, actor="admin@x"
    )
    assert catalog.minors_of(Major.AWAY) == ("Break", "Coffee")
    assert engine.get_catalog(account).minors_of(Major.AWAY) == ("Break", "Coffee")
    before = count_rows(engine)
    with pytest.raises(InvalidState) as error:
        engine.set_minor_states(account, {"Ready": ["X"], "Away": ["bad name!"]}, actor="a")
    assert len(error.value.details) == 2
    assert count_rows(engine) == before
    assert engine.get_catalog(account).minors_of(Major.AWAY) == ("Break", "Coffee")


def test_settings_are_validated_all_or_nothing(engine: Engine, account: str):
    assert engine.get_settings(account).wrap_seconds == 30
    saved = engine.save_settings(account, {"wrap_seconds": 5}, actor="admin")
    assert saved.wrap_seconds == 5 and saved.session_grace_seconds == 60
    before = count_rows(engine)
    with pytest.raises(DomainError) as error:
        engine.save_settings(
            account, {"wrap_seconds": -1, "session_end_policy": "explode"}, actor="admin"
        )
    assert error.value.code == "INVALID_SETTINGS"
    assert len(error.value.details) == 2
    assert count_rows(engine) == before
    assert engine.get_settings(account).wrap_seconds == 5


def test_omni_config_versions_keep_who_and_when(engine: Engine):
    account = engine.create_account("Initech")
    assert engine.get_omni_config(account) is None
    engine.save_presence_statuses(account, STATUSES, actor="fetcher")
    assert [s.developer_name for s in engine.get_presence_statuses(account)] == [
        "Available",
        "Busy",
        "Lunch",
    ]
    first = engine.save_omni_config(account, CONFIG, actor="ann")
    second = engine.save_omni_config(account, {**CONFIG, "enabled": False}, actor="bob")
    assert (first.version, second.version) == (1, 2)
    current = engine.get_omni_config(account)
    assert current is not None
    assert (current.version, current.saved_by, current.config.enabled) == (2, "bob", False)
    assert current.config.to_api() == second.config.to_api()
    assert {w.code for w in current.warnings} == {w.code for w in second.warnings}

    before = count_rows(engine)
    bad = {**CONFIG, "presence_mappings": [{"presence_status": "Nope", "busy": False}]}
    with pytest.raises(InvalidConfig) as error:
        engine.save_omni_config(account, bad, actor="eve")
    assert error.value.code == "INVALID_CONFIG"
    assert any(p["code"] == "UNKNOWN_PRESENCE_STATUS" for p in error.value.details)
    with pytest.raises(DomainError):
        engine.save_omni_config(account, ["not", "an", "object"], actor="eve")  # type: ignore[arg-type]
    assert count_rows(engine) == before
    assert engine.get_omni_config(account).version == 2  # type: ignore[union-attr]


def test_salesforce_connection_round_trip(engine: Engine, account: str):
    if engine.postgres:  # no key file place there: secrets need PRESENCESYNC_SECRET_KEY
        engine.secrets = SecretBox([new_key()])
    assert engine.get_salesforce_connection(account) is None
    conn = SalesforceConnection("https://login.example", "cid", "u@x", "secret", None, False)
    engine.set_salesforce_connection(account, conn)
    assert engine.get_salesforce_connection(account) == conn
    newer = SalesforceConnection("https://x", "cid2", "u@x", None, "-----PEM-----", "/ca.pem")
    engine.set_salesforce_connection(account, newer)
    assert engine.get_salesforce_connection(account) == newer
    assert newer.audience is None  # derived from the login URL when used
    site = SalesforceConnection(
        "https://acme.my.salesforce.com",
        "cid3",
        "u@x",
        private_key_pem="-----PEM-----",
        audience="https://acme.my.site.com/customers",
    )
    engine.set_salesforce_connection(account, site)
    assert engine.get_salesforce_connection(account) == site


def test_agents_are_unique_per_account_and_paged(engine: Engine, account: str):
    other = seed_account(engine, "Other")
    for n in range(5):
        engine.create_agent(account, f"agent{n}", f"Agent {n}", f"00500000000000{n}")
    engine.create_agent(other, "agent0", "Same id, other account", "005999999999999")
    with pytest.raises(Conflict) as error:
        engine.create_agent(account, "agent0", "Again", None)
    assert error.value.code == "AGENT_EXISTS"
    with pytest.raises(Conflict):
        engine.create_agent(account, "agent9", "Same user", "005000000000001")
    with pytest.raises(DomainError) as invalid:
        engine.create_agent(account, "", "Nobody", None)
    assert invalid.value.code == "INVALID_AGENT"

    page1 = engine.list_agents(account, limit=2)
    page2 = engine.list_agents(account, limit=2, after=page1[-1].agent_id)
    assert [a.agent_id for a in page1 + page2] == ["agent0", "agent1", "agent2", "agent3"]
    record = engine.get_agent(account, "agent3")
    assert (record.name, record.salesforce_user_id) == ("Agent 3", "005000000000003")
    assert not record.snapshot.logged_in
    assert engine.find_agent_by_salesforce_user(account, "005000000000002").agent_id == "agent2"  # type: ignore[union-attr]
    assert engine.find_agent_by_salesforce_user(account, "005999999999999") is None
    with pytest.raises(NotFound) as missing:
        engine.get_agent(other, "agent3")  # exists, but in the other account
    assert missing.value.code == "AGENT_NOT_FOUND"


def test_migrations_build_exactly_the_tables_of_the_code(database_url: str):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from presencesync.store import create_db_engine, upgrade

    upgrade(database_url)
    db = create_db_engine(database_url)
    try:
        with db.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), tables.metadata)
    finally:
        db.dispose()
    assert diff == []
