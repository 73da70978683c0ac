"""What the store keeps of a deleted experiment: one row per `tunesmith delete`.

Deleting an experiment removed its events with it, promotions and rollbacks included, and recorded no deletion: a
registered model's champion could come from an experiment the audit trail no longer explained. Each deletion now
writes, in its own transaction, who deleted which experiment (name and id), when, how many trials it had, and the
promotion and rollback events it held. Existing stores gain one empty table: no data moves.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deleted_experiments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("experiment_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("deleted_at", sa.Float, nullable=False),
        sa.Column("trials", sa.Integer, nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default="{}"),
        sa.Column("kept_events", sa.Text, nullable=False, server_default="[]"),
    )
    op.create_index("ix_deleted_experiments_name", "deleted_experiments", ["name"])


def downgrade() -> None:
    op.drop_index("ix_deleted_experiments_name", "deleted_experiments")
    op.drop_table("deleted_experiments")
