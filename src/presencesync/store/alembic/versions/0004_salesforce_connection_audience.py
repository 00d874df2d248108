"""salesforce_connections.audience: the JWT bearer flow's `aud`, separate from the login URL

A My Domain login URL is a valid token endpoint but not a valid audience (Salesforce answers
"invalid_grant" / "audience is invalid"); NULL keeps the derived default (login or
test.salesforce.com), so existing rows need no backfill.

Revision ID: 0004_sf_connection_audience
Revises: 0003_pubsub_replay
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_sf_connection_audience"
down_revision = "0003_pubsub_replay"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("salesforce_connections", schema=None) as batch_op:
        batch_op.add_column(sa.Column("audience", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("salesforce_connections", schema=None) as batch_op:
        batch_op.drop_column("audience")
