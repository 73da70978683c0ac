"""Coordinators beat for themselves: one row per (experiment, coordinator) with its last beat.

A joiner with no trial running wrote nothing to the store, so a coordinator's liveness was read from its trials'
beats, its ``run_running`` event and, for a lead, its lease: a lead SIGKILLed on another machine stayed at work
until its lease lapsed (two minutes). Each coordinator's heartbeat thread now stamps its row every few seconds, so
it counts as gone ``STALE_AFTER`` after its last beat. Existing stores gain one empty table: no data moves.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "coordinator_beats",
        sa.Column("experiment_id", sa.Integer, sa.ForeignKey("experiments.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("owner", sa.String(255), primary_key=True),
        sa.Column("beat_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("coordinator_beats")
