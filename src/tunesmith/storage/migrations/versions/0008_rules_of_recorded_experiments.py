"""Experiments recorded before keep their rules: time-ordered cuts at row counts, grouped holdouts drawn at random,
a time column listed in ``features`` fed as text codes of its dates.

Time-ordered folds (and a holdout carved by time) were cut by row count, so rows of one timestamp fell on both sides
of a cut; a spec given anew now cuts between timestamps (``task.cv.cut_at``, unset, is ``timestamps``). A
classifier's holdout of whole groups was drawn at random; it is now stratified by class (``task.holdout.draw``,
unset, is ``stratified``). An experiment recorded before must split as it did whenever it is read again (resume,
its trials, promote, drift), so its stored spec says ``cut_at: rows`` (a task with a time column) and ``draw:
random`` (a task with groups and a holdout, unless ``fraction_of: groups``, which draws scikit-learn's
GroupShuffleSplit groups either way; a regressor's grouped holdout is drawn at random either way).

A time column listed in ``features`` was fed to the model as text codes of its dates; a spec given anew feeds it
as its timestamps (``task.data.time_as``, unset, is ``seconds``). The recorded column types are the same either
way (so is the data fingerprint), so nothing else tells them apart: a stored spec whose ``features`` list its
time column says ``time_as: codes`` (a numeric time column is fed as its numbers either way). No table changes.

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


def _time_feature_data(spec: dict) -> dict | None:  # type: ignore[type-arg]
    """The task's data section where its ``features`` list its time column, else None."""
    task = spec.get("task") if isinstance(spec, dict) else None
    data = task.get("data") if isinstance(task, dict) else None
    if not isinstance(data, dict) or not data.get("time"):
        return None
    features = data.get("features")
    listed = features if isinstance(features, list) else [features]  # (one name may be given bare)
    return data if data["time"] in listed else None


def _rewrite(change: str) -> None:
    conn = op.get_bind()
    for row in conn.execute(sa.select(_EXPERIMENTS.c.id, _EXPERIMENTS.c.spec)).all():
        spec = json.loads(row.spec)
        cv, holdout = _split_sections(spec)
        changed = False
        for section, key, old in ((cv, "cut_at", "rows"), (holdout, "draw", "random"),
                                  (_time_feature_data(spec), "time_as", "codes")):
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
