"""Experiments recorded before a time-ordered model to ship was fit as the folds were keep being judged by the model
their holdout figure is of, in a store that passed 0006 before 0006 said so: ``cv.refit: all_rows`` where the
recorded holdout tells.

The release of 0006 fit a time-ordered task's model to ship on the latest ``cv.window`` development rows of a
sliding window and scored it from ``cv.gap`` rows into the holdout; before, on every development row, scored on the
whole holdout. 0006 now writes ``cv.refit: all_rows`` into the experiments recorded before, but as first released it
did not, and a store that passed it then holds experiments of both rules with nothing in their specs to tell them
apart. Their recorded holdout does, where the task has a gap: the old rule scored the whole holdout, ``max(1,
ceil(fraction x rows))`` of the rows the data had (the ``data_fingerprint`` attribute) when cut at row counts
(``cv.cut_at: rows``, which 0008 wrote into every time-ordered experiment recorded before it), the new rule ``gap``
rows fewer. A sliding window without a gap scores the same rows either way: such an experiment keeps the rule of now
(its fit differs, and nothing recorded says which it had; docs/upgrading.md says so). No table changes.

Revision ID: 0009
Revises: 0008
"""

import json
import math

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_EXPERIMENTS = sa.table("experiments", sa.column("id", sa.Integer), sa.column("spec", sa.Text),
                        sa.column("attributes", sa.Text))


def _cv(spec: dict) -> dict | None:  # type: ignore[type-arg]
    task = spec.get("task") if isinstance(spec, dict) else None
    cv = task.get("cv") if isinstance(task, dict) else None
    return cv if isinstance(cv, dict) else None


def _scored_the_whole_holdout(spec: dict, attributes: dict) -> bool:  # type: ignore[type-arg]
    """Whether the experiment's recorded holdout figure is of the old rule's model: scored on every holdout row
    where the rule of now leaves out the gap's."""
    cv = _cv(spec)
    holdout = spec["task"].get("holdout") if cv is not None else None
    if cv is None or not isinstance(holdout, dict) or "refit" in cv or cv.get("cut_at") != "rows":
        return False
    recorded = attributes.get("holdout") if isinstance(attributes, dict) else None
    fingerprint = attributes.get("data_fingerprint") if isinstance(attributes, dict) else None
    gap, fraction = cv.get("gap"), holdout.get("fraction")
    rows = fingerprint.get("n_rows") if isinstance(fingerprint, dict) else None
    scored = recorded.get("holdout_rows") if isinstance(recorded, dict) else None
    if not (isinstance(gap, int) and gap > 0 and isinstance(fraction, int | float) and isinstance(rows, int)
            and isinstance(scored, int | float)):
        return False
    whole = max(1, math.ceil(fraction * rows))  # the holdout cut at row counts, as carve_holdout cuts it
    return gap < whole and scored == whole


def upgrade() -> None:
    conn = op.get_bind()
    query = sa.select(_EXPERIMENTS.c.id, _EXPERIMENTS.c.spec, _EXPERIMENTS.c.attributes)
    for row in conn.execute(query).all():
        spec = json.loads(row.spec)
        if _scored_the_whole_holdout(spec, json.loads(row.attributes or "{}")):
            spec["task"]["cv"]["refit"] = "all_rows"
            conn.execute(sa.update(_EXPERIMENTS).where(_EXPERIMENTS.c.id == row.id).values(spec=json.dumps(spec)))


def downgrade() -> None:
    # the tunesmith of 0008 knows no such key, wherever 0006 or this revision wrote it: it reads every experiment by
    # the rule of now, as it did
    conn = op.get_bind()
    for row in conn.execute(sa.select(_EXPERIMENTS.c.id, _EXPERIMENTS.c.spec)).all():
        spec = json.loads(row.spec)
        cv = _cv(spec)
        if cv is not None and "refit" in cv:
            cv.pop("refit")
            conn.execute(sa.update(_EXPERIMENTS).where(_EXPERIMENTS.c.id == row.id).values(spec=json.dumps(spec)))
