"""A report's step is a 64-bit integer on PostgreSQL, as on SQLite and as ``trial.report`` allows.

``trial.report`` takes steps up to 2**63 - 1 (a count of samples seen may pass 2**31); PostgreSQL kept them in a
32-bit ``integer`` and refused a step of 2**31 ("integer out of range"), which failed the write of every report
held with it. SQLite's INTEGER is 64-bit already: nothing changes there.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("trial_reports", "step", type_=sa.BigInteger(), existing_type=sa.Integer(),
                        existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("trial_reports", "step", type_=sa.Integer(), existing_type=sa.BigInteger(),
                        existing_nullable=False)
