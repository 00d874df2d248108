"""The store's tables (SQLAlchemy 2 Core). Alembic migrations under `alembic/` create them.

JSON columns hold what the pure core already knows how to (de)serialise (snapshots, events,
decisions, command payloads); the columns beside them are the ones queried or constrained.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# BIGINT on PostgreSQL, INTEGER (the rowid alias, so autoincrement works) on SQLite.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Moment = sa.DateTime(timezone=True)


def _account_fk() -> sa.ForeignKey:
    return sa.ForeignKey("accounts.id", ondelete="CASCADE")


accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("omni_feature", sa.Boolean, nullable=False, default=True),
    # Bumped by every change of what `decide` reads (catalog, settings, config, feature flag),
    # so that engines in every process can cache an account's configuration safely.
    sa.Column("config_version", sa.Integer, nullable=False, default=0),
    sa.Column("created_at", Moment, nullable=False),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("account_id", sa.String(36), _account_fk(), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("agent_id", sa.String(100), nullable=True),
    sa.Column("label", sa.String(200), nullable=False, default=""),
    sa.Column("created_at", Moment, nullable=False),
)

salesforce_connections = sa.Table(
    "salesforce_connections",
    metadata,
    sa.Column("account_id", sa.String(36), _account_fk(), primary_key=True),
    sa.Column("login_url", sa.String(500), nullable=False),
    sa.Column("client_id", sa.String(500), nullable=False),
    sa.Column("username", sa.String(200), nullable=False),
    sa.Column("client_secret", sa.Text, nullable=True),
    sa.Column("private_key_pem", sa.Text, nullable=True),
    sa.Column("verify", sa.JSON, nullable=False),  # true/false or a CA bundle path
    sa.Column("updated_at", Moment, nullable=False),
    # JWT bearer `aud`; NULL = derived from login_url (login or test.salesforce.com)
    sa.Column("audience", sa.String(500), nullable=True),
    # Pub/Sub API (Change Data Capture): host:port (TLS), grpc://host:port (plaintext) or
    # grpcs://host:port; NULL = Salesforce's api.pubsub.salesforce.com:7443
    sa.Column("pubsub_endpoint", sa.String(500), nullable=True),
)

account_settings = sa.Table(
    "account_settings",
    metadata,
    sa.Column("account_id", sa.String(36), _account_fk(), primary_key=True),
    sa.Column("settings", sa.JSON, nullable=False),
    sa.Column("saved_by", sa.String(200), nullable=False),
    sa.Column("saved_at", Moment, nullable=False),
)

state_catalogs = sa.Table(
    "state_catalogs",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.String(36), _account_fk(), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("minor_states", sa.JSON, nullable=False),
    sa.Column("saved_by", sa.String(200), nullable=False),
    sa.Column("saved_at", Moment, nullable=False),
    sa.UniqueConstraint("account_id", "version"),
)

presence_statuses = sa.Table(
    "presence_statuses",
    metadata,
    sa.Column("account_id", sa.String(36), _account_fk(), primary_key=True),
    sa.Column("statuses", sa.JSON, nullable=False),
    sa.Column("fetched_by", sa.String(200), nullable=False),
    sa.Column("fetched_at", Moment, nullable=False),
)

omni_config_versions = sa.Table(
    "omni_config_versions",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.String(36), _account_fk(), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("warnings", sa.JSON, nullable=False),
    sa.Column("saved_by", sa.String(200), nullable=False),
    sa.Column("saved_at", Moment, nullable=False),
    sa.UniqueConstraint("account_id", "version"),
)

agents = sa.Table(
    "agents",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.String(36), _account_fk(), nullable=False),
    sa.Column("agent_id", sa.String(100), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("salesforce_user_id", sa.String(18), nullable=True),
    sa.Column("snapshot", sa.JSON, nullable=False),
    # The number of events applied: the next event_log.seq is version + 1.
    sa.Column("version", sa.Integer, nullable=False, default=0),
    sa.Column("updated_at", Moment, nullable=False),
    # Copied out of the snapshot so the router can find candidates with an index.
    sa.Column("routable", sa.Boolean, nullable=False, default=False),
    sa.Column("state_since", Moment, nullable=True),
    sa.UniqueConstraint("account_id", "agent_id"),
    sa.Index("ix_agents_account_sfuser", "account_id", "salesforce_user_id"),
    sa.Index("ix_agents_account_routable", "account_id", "routable", "state_since"),
)

event_log = sa.Table(
    "event_log",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.String(36), _account_fk(), nullable=False),
    sa.Column("agent_id", sa.String(100), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("source", sa.String(50), nullable=False),
    sa.Column("source_id", sa.String(200), nullable=True),  # NULLs never collide
    sa.Column("event_type", sa.String(50), nullable=False),
    sa.Column("event", sa.JSON, nullable=False),
    sa.Column("received_at", Moment, nullable=False),
    sa.Column("applied_at", Moment, nullable=False),
    sa.Column("outcome", sa.String(30), nullable=False),
    sa.Column("decision", sa.JSON, nullable=False),
    sa.UniqueConstraint("account_id", "source", "source_id"),
    sa.UniqueConstraint("account_id", "agent_id", "seq"),
)

history = sa.Table(
    "history",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.String(36), _account_fk(), nullable=False),
    sa.Column("agent_id", sa.String(100), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("at", Moment, nullable=False),
    sa.Column("side", sa.String(20), nullable=False),
    sa.Column("from_state", sa.String(100), nullable=False),
    sa.Column("to_state", sa.String(100), nullable=False),
    sa.Column("cause", sa.String(20), nullable=False),
    sa.Column("rule", sa.String(10), nullable=True),
    sa.Column("caused_by_seq", sa.Integer, nullable=True),
    sa.Column("latency_ms", sa.Float, nullable=True),
    sa.Column("event_id", BigId, nullable=True),
    sa.UniqueConstraint("account_id", "agent_id", "seq"),
    # Salesforce side: how the change came (bridge | rest | change_data_capture) and, when
    # the two channels disagreed, why ({"code", "message"}).
    sa.Column("channel", sa.String(30), nullable=True),
    sa.Column("drift", sa.JSON, nullable=True),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.String(36), _account_fk(), nullable=False),
    sa.Column("agent_id", sa.String(100), nullable=False),
    # Command ids are "<agent_id>:<n>", unique within an account (agent ids are per account).
    sa.Column("command_id", sa.String(200), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # pending|done|superseded|failed
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", Moment, nullable=False),
    sa.Column("lease_until", Moment, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", Moment, nullable=False),
    sa.Column("delivered_at", Moment, nullable=True),
    sa.UniqueConstraint("account_id", "command_id"),
    sa.Index("ix_outbox_status_next", "status", "next_attempt_at"),
    sa.Index("ix_outbox_agent_pending", "account_id", "agent_id", "status", "id"),
)

timers = sa.Table(
    "timers",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(300), nullable=False, unique=True),
    sa.Column("account_id", sa.String(36), _account_fk(), nullable=False),
    sa.Column("agent_id", sa.String(100), nullable=False),
    sa.Column("due_at", Moment, nullable=False),
    sa.Column("event", sa.JSON, nullable=False),
    sa.Column("created_at", Moment, nullable=False),
    sa.Index("ix_timers_due_at", "due_at"),
)

interactions = sa.Table(
    "interactions",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("account_id", sa.String(36), _account_fk(), nullable=False),
    sa.Column("queue", sa.String(200), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # offered|queued|answered|ended
    sa.Column("agent_id", sa.String(100), nullable=True),
    sa.Column("created_at", Moment, nullable=False),
    sa.Column("answered_at", Moment, nullable=True),
    sa.Column("ended_at", Moment, nullable=True),
    sa.Index("ix_interactions_account_status", "account_id", "status", "created_at"),
)

# Where each account's Pub/Sub API subscription to a topic resumes: the replay id of the last
# change event its consumer confirmed (opaque bytes, Salesforce's ConsumerEvent.replay_id).
pubsub_replay = sa.Table(
    "pubsub_replay",
    metadata,
    sa.Column("account_id", sa.String(36), _account_fk(), primary_key=True),
    sa.Column("topic", sa.String(255), primary_key=True),
    sa.Column("replay_id", sa.LargeBinary, nullable=False),
    sa.Column("updated_at", Moment, nullable=False),
)

# The account's Change Data Capture subscription as its holder last reported it: which process
# runs it (one per account, service/cdc.py), its state and the last error or event.
cdc_subscriptions = sa.Table(
    "cdc_subscriptions",
    metadata,
    sa.Column("account_id", sa.String(36), _account_fk(), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("state", sa.String(30), nullable=False),  # starting|streaming|retrying|failed|stopped
    sa.Column("detail", sa.Text, nullable=True),
    sa.Column("events", sa.BigInteger, nullable=False),
    sa.Column("last_event_at", Moment, nullable=True),
    sa.Column("started_at", Moment, nullable=False),
    sa.Column("updated_at", Moment, nullable=False),
)
