"""Trials record the coordinator that runs them; experiments gain a JSON attributes document.

``trials.owner`` lets `resume` tell a trial whose coordinator died (re-run it) from one that a live
cooperating coordinator is running (leave it). ``experiments.attributes`` holds experiment-level facts
recorded after creation: data fingerprints, holdout scores.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trials") as batch:
        batch.add_column(sa.Column("owner", sa.String(255)))
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(sa.Column("attributes", sa.Text, nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("attributes")
    with op.batch_alter_table("trials") as batch:
        batch.drop_column("owner")
