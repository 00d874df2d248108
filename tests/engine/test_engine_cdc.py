"""The engine's Change Data Capture additions, on SQLite and PostgreSQL: committed changes as
events (applied once, in order), the history's channel and drift, the connection's Pub/Sub
endpoint, the runner's queries and its state row."""

from __future__ import annotations

from datetime import timedelta

from presencesync.domain import (
    AgentLoggedIn,
    ConsoleDisconnected,
    PresenceChanged,
    SalesforceSnapshot,
)
from presencesync.domain.events import PresenceCommitted, WorkCommitted
from presencesync.service import CdcStatus, Engine, SalesforceConnection
from presencesync.service.model import utcnow
from presencesync.store.secrets import SECRET_KEY_ENV, SecretBox, new_key

from .engine_kit import seed_agents


def committed(n: int, status: str | None) -> PresenceCommitted:
    return PresenceCommitted(
        at=utcnow(), commit_ms=1_000 + n, transaction_key=f"t{n}", presence_status=status
    )


def test_committed_changes_are_applied_once_with_their_channel(engine: Engine, account: str):
    (agent,) = seed_agents(engine, account, 1, prefix="c")
    engine.save_settings(account, {"change_data_capture": True}, "test")
    engine.submit(account, agent, AgentLoggedIn(at=utcnow()), source="api")
    results = engine.submit_many(
        [
            (account, agent, committed(1, "Available"), "cdc", "cdc:e1:u"),
            (account, agent, committed(2, "Lunch"), "cdc", "cdc:e2:u"),
            (account, agent, committed(2, "Lunch"), "cdc", "cdc:e2:u"),  # redelivered
            (account, agent, committed(1, "Available"), "cdc", "cdc:e1-again:u"),  # older
        ]
    )
    outcomes = [r.decision.outcome.value for r in results]  # type: ignore[union-attr]
    assert outcomes[0] == "echo"  # the login's omni_login command, by its status
    assert outcomes[1] == "applied"
    assert results[2].duplicate  # type: ignore[union-attr]
    assert outcomes[3] == "stale"
    record = engine.get_agent(account, agent)
    assert (
        record.snapshot.presence == "Lunch" and str(record.snapshot.state) == "ExtendedAway/Lunch"
    )
    history = engine.history(account, agent)
    salesforce = [h for h in history if h.side.value == "salesforce"]
    assert [(h.to, h.channel.value if h.channel else None) for h in salesforce] == [
        ("Lunch", "change_data_capture"),
        ("Available", "change_data_capture"),
    ]
    api = salesforce[0].to_api()
    assert api["channel"] == "change_data_capture" and api["drift"] is None


def test_drift_is_stored_in_the_history(engine: Engine, account: str):
    (agent,) = seed_agents(engine, account, 1, prefix="d")
    engine.save_settings(account, {"change_data_capture": True}, "test")
    hello = SalesforceSnapshot(
        at=utcnow(), seq=0, presence_status="Available", console_connected=True
    )
    engine.submit(account, agent, hello, source="bridge")
    # CDC confirms the status the console found, then reports a logout the bridge never did.
    engine.submit(account, agent, committed(1, "Available"), source="cdc", source_id="cdc:a")
    engine.submit(account, agent, committed(2, None), source="cdc", source_id="cdc:x")
    (entry,) = [h for h in engine.history(account, agent, limit=1)]
    assert (entry.from_, entry.to) == ("Available", "Offline")
    assert entry.drift is not None and entry.drift.code == "BRIDGE_DID_NOT_REPORT"
    assert entry.to_api()["drift"]["message"].startswith("Salesforce committed Offline")
    assert engine.consoles_connected(account, [agent, "nobody"]) == {agent}
    engine.submit(account, agent, ConsoleDisconnected(at=utcnow()), source="bridge")
    assert engine.consoles_connected(account, [agent]) == set()


def test_work_committed_changes_and_the_bridge_channel(engine: Engine, account: str):
    (agent,) = seed_agents(engine, account, 1, prefix="w")
    engine.submit(
        account, agent, PresenceChanged(at=utcnow(), seq=1, presence_status="Busy"), source="bridge"
    )
    (entry,) = [h for h in engine.history(account, agent) if h.side.value == "salesforce"]
    assert entry.channel is not None and entry.channel.value == "bridge"
    work = WorkCommitted(
        at=utcnow(), commit_ms=5, transaction_key="w", work_id="0Bz1", status="Assigned"
    )
    engine.submit(account, agent, work, source="cdc", source_id="cdc:w1")
    assert engine.get_agent(account, agent).snapshot.open_work_ids == ("0Bz1",)


def test_the_runners_queries_and_state_row(engine: Engine, account: str):
    # The connection's secrets are stored encrypted: give the engine a key (PostgreSQL has none
    # by default; SQLite would make a key file).
    engine.secrets = SecretBox.for_database(engine.database_url, {SECRET_KEY_ENV: new_key()})
    seed_agents(engine, account, 2, prefix="q")
    assert account not in engine.change_data_capture_accounts()
    engine.save_settings(account, {"change_data_capture": True}, "test")
    assert account in engine.change_data_capture_accounts()
    engine.set_omni_feature(account, False)
    assert account not in engine.change_data_capture_accounts()
    engine.set_omni_feature(account, True)
    linked = engine.linked_users(account)
    assert sorted(linked.values()) == ["q00000", "q00001"]
    connection = SalesforceConnection(
        "https://login.salesforce.com", "id", "u@x", client_secret="s", pubsub_endpoint="grpc://h:1"
    )
    engine.set_salesforce_connection(account, connection)
    assert engine.get_salesforce_connection(account) == connection
    assert engine.get_cdc_status(account) is None
    now = utcnow()
    status = CdcStatus(
        account, "host:1", "streaming", None, 3, now, now - timedelta(seconds=5), now
    )
    engine.save_cdc_status(status)
    engine.save_cdc_status(status)  # an update, not a second row
    got = engine.get_cdc_status(account)
    assert got is not None and (got.holder, got.state, got.events) == ("host:1", "streaming", 3)
    assert got.to_api()["state"] == "streaming"
