"""Change Data Capture in the engine: the history says how a Salesforce change came and why the
channels disagreed; a connection names its Pub/Sub API endpoint; each account's subscription
reports its state (which process holds it, how it goes)

- history.channel (bridge | rest | change_data_capture), history.drift ({code, message}):
  NULL for the rows before (they all came over the bridge or REST, unlabelled);
- salesforce_connections.pubsub_endpoint: NULL = Salesforce's api.pubsub.salesforce.com:7443;
- cdc_subscriptions: one row per account whose subscription ran at least once.

Revision ID: 0005_change_data_capture
Revises: 0004_sf_connection_audience
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_change_data_capture"
down_revision = "0004_sf_connection_audience"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("history", schema=None) as batch_op:
        batch_op.add_column(sa.Column("channel", sa.String(length=30), nullable=True))
        batch_op.add_column(sa.Column("drift", sa.JSON(), nullable=True))
    with op.batch_alter_table("salesforce_connections", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pubsub_endpoint", sa.String(length=500), nullable=True))
    op.create_table(
        "cdc_subscriptions",
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=30), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_cdc_subscriptions_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_cdc_subscriptions")),
    )


def downgrade() -> None:
    op.drop_table("cdc_subscriptions")
    with op.batch_alter_table("salesforce_connections", schema=None) as batch_op:
        batch_op.drop_column("pubsub_endpoint")
    with op.batch_alter_table("history", schema=None) as batch_op:
        batch_op.drop_column("drift")
        batch_op.drop_column("channel")
