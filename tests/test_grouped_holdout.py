"""A grouped holdout's ``fraction`` counts rows: whole groups are drawn until they hold about that share of the rows.
It counted groups (scikit-learn's GroupShuffleSplit): with one large customer among small ones, ``fraction: 0.2``
held out 60% of the rows on some seeds, and the search saw 40% (a new user's walk through task evaluation). An
experiment recorded before keeps its holdout: the store's migration 0006 writes ``fraction_of: groups`` into its
spec, and the same rows are held out as before."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import create_engine, text

from tunesmith.spec.loader import spec_from_dict
from tunesmith.storage import SQLStore
from tunesmith.tasks import prepare


def skewed_csv(path: Path) -> Path:
    """300 rows: one customer of 150 rows, 15 of 10 each."""
    rng = np.random.default_rng(0)
    sizes = [150] + [10] * 15
    customers = np.repeat([f"c{i:02d}" for i in range(16)], sizes)
    x = rng.normal(size=(300, 2))
    y = (x[:, 0] + rng.normal(size=300) > 0).astype(int)
    lines = ["a,b,cust,y", *(f"{a:.4f},{b:.4f},{c},{t}" for (a, b), c, t in zip(x, customers, y, strict=True))]
    path.write_text("\n".join(lines) + "\n")
    return path


def grouped_spec(folder: Path, holdout: dict[str, Any]) -> dict[str, Any]:
    return {"name": "skew", "objective": {"metric": "accuracy", "direction": "maximize"},
            "task": {"estimator": "sklearn.linear_model.LogisticRegression",
                     "data": {"path": str(skewed_csv(folder / "skew.csv")), "target": "y", "groups": "cust"},
                     "cv": {"kind": "group", "folds": 3}, "holdout": holdout, "scoring": "accuracy",
                     "latency": None},
            "space": {"logisticregression__C": {"type": "float", "low": 0.1, "high": 10, "log": True}},
            "budget": {"trials": 2}, "executor": {"kind": "inline"}, "seed": 0}


@pytest.mark.parametrize("seed", range(5))
def test_a_grouped_holdout_holds_about_its_fraction_of_the_rows(tmp_path, seed):
    spec = spec_from_dict(grouped_spec(tmp_path, {"fraction": 0.2, "seed": seed}))
    assert spec.task is not None
    prep = prepare(spec.task, new=True)
    groups = prep.dataset.groups
    assert len(prep.holdout_idx) == 60, "12 of the 10-row customers: 20% of 300 rows (GroupShuffleSplit: 180 or 40)"
    assert not set(groups[prep.holdout_idx]) & set(groups[prep.dev_idx]), "a customer on both sides"


def test_fraction_of_groups_draws_the_groups_scikit_learn_drew(tmp_path):
    from sklearn.model_selection import GroupShuffleSplit

    spec = spec_from_dict(grouped_spec(tmp_path, {"fraction": 0.2, "seed": 2, "fraction_of": "groups"}))
    assert spec.task is not None
    prep = prepare(spec.task, new=True)
    ds = prep.dataset
    _, expected = next(GroupShuffleSplit(n_splits=1, test_size=0.2, random_state=2).split(ds.X, ds.y, ds.groups))
    assert list(prep.holdout_idx) == sorted(expected) and len(expected) == 180


def test_fraction_of_without_groups_is_refused(tmp_path):
    from tunesmith.errors import SpecError

    data = grouped_spec(tmp_path, {"fraction": 0.2, "fraction_of": "rows"})
    del data["task"]["data"]["groups"], data["task"]["cv"]
    with pytest.raises(SpecError, match="holdout.fraction_of .*the data has no groups: remove it"):
        spec_from_dict(data)


def test_a_grouped_experiment_recorded_before_keeps_its_holdout_of_groups(tmp_path):
    """A store at revision 0005 holding a grouped task's experiment, one of generated groups and one without groups:
    opened now, the grouped ones say ``fraction_of: groups`` and carve the holdout they carved then; the other is
    left as it was."""
    from helpers import migrate_to

    url = f"sqlite:///{tmp_path / 'old.db'}"
    grouped = grouped_spec(tmp_path, {"fraction": 0.2, "seed": 2})
    generated = {**grouped, "name": "gen", "task": {**grouped["task"], "cv": {"kind": "group", "folds": 3},
                                                     "data": {"generate": {"kind": "groups", "n_rows": 200}}}}
    plain = {**grouped, "name": "plain", "task": {**grouped["task"], "cv": {"folds": 3},
                                                  "data": {"sklearn": "breast_cancer"}}}
    engine = create_engine(url)
    with engine.begin() as conn:
        migrate_to(conn, "0005")
        for spec in (grouped, generated, plain):
            conn.execute(text("INSERT INTO experiments (name, spec, status, created_at, updated_at, next_number) "
                              "VALUES (:n, :s, 'completed', 1.0, 2.0, 0)"), {"n": spec["name"], "s": json.dumps(spec)})
    engine.dispose()

    store = SQLStore(url)
    try:
        holdouts = {n: store.experiment(n).spec["task"]["holdout"] for n in ("skew", "gen", "plain")}
    finally:
        store.close()
    assert holdouts == {"skew": {"fraction": 0.2, "seed": 2, "fraction_of": "groups"},
                        "gen": {"fraction": 0.2, "seed": 2, "fraction_of": "groups"},
                        "plain": {"fraction": 0.2, "seed": 2}}
    with sqlite3.connect(tmp_path / "old.db") as conn:
        [stored] = conn.execute("SELECT spec FROM experiments WHERE name = 'skew'").fetchone()
    recorded = spec_from_dict(json.loads(stored), recorded=True)
    assert recorded.task is not None
    assert len(prepare(recorded.task).holdout_idx) == 180, "the holdout it was recorded with (seed 2: 60% of rows)"
