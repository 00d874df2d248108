"""outbox: index to find an agent's earlier pending commands (in-order delivery)

Also adds accounts.config_version where it is missing: it joined revision 0001 an hour after
0001 was first committed, so a development database made in between lacks it.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("accounts")}
    if "config_version" not in columns:
        with op.batch_alter_table("accounts", schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("config_version", sa.Integer(), nullable=False, server_default="0")
            )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_agent_pending", ["account_id", "agent_id", "status", "id"])


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_agent_pending")
