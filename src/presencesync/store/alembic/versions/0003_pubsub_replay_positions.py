"""pubsub_replay: where each account's Pub/Sub API subscription resumes (replay id per topic)

Revision ID: 0003_pubsub_replay
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_pubsub_replay"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pubsub_replay",
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("topic", sa.String(length=255), nullable=False),
        sa.Column("replay_id", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_pubsub_replay_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "topic", name=op.f("pk_pubsub_replay")),
    )


def downgrade() -> None:
    op.drop_table("pubsub_replay")
