"""Quotas: store-wide limits per key and the slot leases that count against them.

``quota_limits`` holds the limits an operator sets (``tunesmith quota set user:alice 8``); ``slot_leases`` one row
per (running trial, quota key), renewed by the trial's coordinator until it expires; ``quota_waiters`` the queue
of coordinators waiting for a slot. Existing stores gain three empty tables: no data moves.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quota_limits",
        sa.Column("quota_key", sa.String(255), primary_key=True),
        sa.Column("max_running", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "slot_leases",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("lease", sa.String(64), nullable=False),
        sa.Column("quota_key", sa.String(255), nullable=False),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("experiment_id", sa.Integer),
        sa.Column("acquired_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_slot_leases_key", "slot_leases", ["quota_key", "expires_at"])
    op.create_index("ix_slot_leases_holder", "slot_leases", ["holder", "lease"])
    op.create_table(
        "quota_waiters",
        sa.Column("quota_key", sa.String(255), primary_key=True),
        sa.Column("holder", sa.String(255), primary_key=True),
        sa.Column("since", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("quota_waiters")
    op.drop_index("ix_slot_leases_holder", "slot_leases")
    op.drop_index("ix_slot_leases_key", "slot_leases")
    op.drop_table("slot_leases")
    op.drop_table("quota_limits")
