"""A grouped holdout's fraction counts rows: experiments recorded before keep counting groups.

``task.holdout.fraction`` with ``task.data.groups`` was the fraction of the groups (scikit-learn's GroupShuffleSplit):
with groups of unequal sizes, ``fraction: 0.2`` held out 60% of the rows on one seed. A spec given anew now counts
rows (``task.holdout.fraction_of``, unset, is ``rows``). An experiment recorded before must carve the same holdout
whenever it is read again (resume, its trials, promote, drift), so its stored spec says ``fraction_of: groups``.
Only experiments of a task with groups and a holdout change; no table does.

Revision ID: 0006
Revises: 0005
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_EXPERIMENTS = sa.table("experiments", sa.column("id", sa.Integer), sa.column("spec", sa.Text))


def _holdout(spec: dict, grouped: bool) -> dict | None:  # type: ignore[type-arg]
    """The holdout section of a spec's task (only of a task with groups if ``grouped``), else None."""
    task = spec.get("task") if isinstance(spec, dict) else None
    if not isinstance(task, dict) or not isinstance(task.get("holdout"), dict):
        return None
    data = task["data"] if isinstance(task.get("data"), dict) else {}
    generated = data["generate"] if isinstance(data.get("generate"), dict) else {}
    has_groups = bool(data.get("groups")) or generated.get("kind") == "groups"  # a column, or generated groups
    return task["holdout"] if not grouped or has_groups else None


def _rewrite(change: str) -> None:
    conn = op.get_bind()
    for row in conn.execute(sa.select(_EXPERIMENTS.c.id, _EXPERIMENTS.c.spec)).all():
        spec = json.loads(row.spec)
        holdout = _holdout(spec, grouped=change == "upgrade")
        if change == "upgrade" and holdout is not None and "fraction_of" not in holdout:
            holdout["fraction_of"] = "groups"
        elif change == "downgrade" and holdout is not None and "fraction_of" in holdout:
            holdout.pop("fraction_of")  # the tunesmith of 0005 knows no such key (it counted groups)
        else:
            continue
        conn.execute(sa.update(_EXPERIMENTS).where(_EXPERIMENTS.c.id == row.id).values(spec=json.dumps(spec)))


def upgrade() -> None:
    _rewrite("upgrade")


def downgrade() -> None:
    _rewrite("downgrade")
