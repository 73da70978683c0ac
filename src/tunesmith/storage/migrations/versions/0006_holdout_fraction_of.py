"""A grouped holdout's fraction counts rows: experiments recorded before keep counting groups.

``task.holdout.fraction`` with ``task.data.groups`` was the fraction of the groups (scikit-learn's GroupShuffleSplit):
with groups of unequal sizes, ``fraction: 0.2`` held out 60% of the rows on one seed. A spec given anew now counts
rows (``task.holdout.fraction_of``, unset, is ``rows``). An experiment recorded before must carve the same holdout
whenever it is read again (resume, its trials, promote, drift), so its stored spec says ``fraction_of: groups``.
Only experiments of a task with groups and a holdout change; no table does.

The same release fit a time-ordered task's model to ship as the folds were: on the latest ``cv.window`` development
rows of a sliding window, scored from ``cv.gap`` rows into the holdout. It was fit on every development row and
scored on the whole holdout, and that is the model an experiment recorded before has its holdout figure of (`show`,
the drift baseline), the one it may have promoted: its stored spec says ``cv.refit: all_rows`` (a task with a time
column and a holdout, where the rule changes anything: a sliding window or a gap). Added to this revision after it
was released, so that a store upgraded from below it gets the key in the step that brings the rule; a store that
passed this revision before gets it from 0009 where its recorded holdout tells.

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


def _refit_cv(spec: dict) -> dict | None:  # type: ignore[type-arg]
    """The cv section of a time-ordered task with a holdout whose model to ship the rule of this
    revision fits otherwise (a sliding window, or a gap), else None."""
    task = spec.get("task") if isinstance(spec, dict) else None
    if not isinstance(task, dict) or not isinstance(task.get("holdout"), dict):
        return None
    data = task["data"] if isinstance(task.get("data"), dict) else {}
    generated = data["generate"] if isinstance(data.get("generate"), dict) else {}
    if not (data.get("time") or generated.get("kind") == "random_walk"):  # a column, or a generated walk
        return None
    cv = task.get("cv")  # (none: an expanding window without a gap, which both rules fit alike)
    if not isinstance(cv, dict) or (cv.get("expanding", True) is not False and not cv.get("gap")):
        return None
    return cv


def _rewrite(change: str) -> None:
    conn = op.get_bind()
    for row in conn.execute(sa.select(_EXPERIMENTS.c.id, _EXPERIMENTS.c.spec)).all():
        spec = json.loads(row.spec)
        holdout, cv = _holdout(spec, grouped=change == "upgrade"), _refit_cv(spec)
        changed = False
        if change == "upgrade" and holdout is not None and "fraction_of" not in holdout:
            holdout["fraction_of"], changed = "groups", True
        elif change == "downgrade" and holdout is not None and "fraction_of" in holdout:
            holdout.pop("fraction_of")  # the tunesmith of 0005 knows no such key (it counted groups)
            changed = True
        if change == "upgrade" and cv is not None and "refit" not in cv:
            cv["refit"], changed = "all_rows", True
        elif change == "downgrade" and cv is not None and "refit" in cv:
            cv.pop("refit")  # nor this one (it fit every development row)
            changed = True
        if changed:
            conn.execute(sa.update(_EXPERIMENTS).where(_EXPERIMENTS.c.id == row.id).values(spec=json.dumps(spec)))


def upgrade() -> None:
    _rewrite("upgrade")


def downgrade() -> None:
    _rewrite("downgrade")
