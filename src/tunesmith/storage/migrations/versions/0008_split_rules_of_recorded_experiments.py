"""Experiments recorded before keep their splits: time-ordered cuts at row counts, grouped holdouts drawn at random.

Time-ordered folds (and a holdout carved by time) were cut by row count, so rows of one timestamp fell on both sides
of a cut; a spec given anew now cuts between timestamps (``task.cv.cut_at``, unset, is ``timestamps``). A
classifier's holdout of whole groups was drawn at random; it is now stratified by class (``task.holdout.draw``,
unset, is ``stratified``). An experiment recorded before must split as it did whenever it is read again (resume,
its trials, promote, drift), so its stored spec says ``cut_at: rows`` (a task with a time column) and ``draw:
random`` (a task with groups and a holdout, unless ``fraction_of: groups``, which draws scikit-learn's
GroupShuffleSplit groups either way; a regressor's grouped holdout is drawn at random either way). No table changes.

Revision ID: 0008
Revises: 0007
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_EXPERIMENTS = sa.table("experiments", sa.column("id", sa.Integer), sa.column("spec", sa.Text))


def _split_sections(spec: dict) -> tuple[dict | None, dict | None]:  # type: ignore[type-arg]
    """(the task's cv section, made if absent, where the data has a time column; the task's holdout section where
    the data has groups and the holdout draws groups by row count), each None where that does not hold."""
    task = spec.get("task") if isinstance(spec, dict) else None
    if not isinstance(task, dict):
        return None, None
    data = task["data"] if isinstance(task.get("data"), dict) else {}
    generated = data["generate"] if isinstance(data.get("generate"), dict) else {}
    has_time = bool(data.get("time")) or generated.get("kind") == "random_walk"  # a column, or a generated walk
    has_groups = bool(data.get("groups")) or generated.get("kind") == "groups"
    cv = None
    if has_time:
        cv = task["cv"] if isinstance(task.get("cv"), dict) else task.setdefault("cv", {})
    holdout = task.get("holdout")
    drawn = has_groups and isinstance(holdout, dict) and holdout.get("fraction_of") != "groups"
    return cv, holdout if drawn else None


def _rewrite(change: str) -> None:
    conn = op.get_bind()
    for row in conn.execute(sa.select(_EXPERIMENTS.c.id, _EXPERIMENTS.c.spec)).all():
        spec = json.loads(row.spec)
        cv, holdout = _split_sections(spec)
        changed = False
        for section, key, old in ((cv, "cut_at", "rows"), (holdout, "draw", "random")):
            if section is None:
                continue
            if change == "upgrade" and key not in section:
                section[key], changed = old, True
            elif change == "downgrade" and key in section:
                section.pop(key)  # the tunesmith of 0007 knows no such key (it split this way)
                changed = True
        if changed:
            conn.execute(sa.update(_EXPERIMENTS).where(_EXPERIMENTS.c.id == row.id).values(spec=json.dumps(spec)))


def upgrade() -> None:
    _rewrite("upgrade")


def downgrade() -> None:
    _rewrite("downgrade")
