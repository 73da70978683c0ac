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

from tunesmith.spec.loader import spec_from_dict
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
    from helpers import specs_migrated_from

    url = f"sqlite:///{tmp_path / 'old.db'}"
    grouped = grouped_spec(tmp_path, {"fraction": 0.2, "seed": 2})
    generated = {**grouped, "name": "gen", "task": {**grouped["task"], "cv": {"kind": "group", "folds": 3},
                                                     "data": {"generate": {"kind": "groups", "n_rows": 200}}}}
    plain = {**grouped, "name": "plain", "task": {**grouped["task"], "cv": {"folds": 3},
                                                  "data": {"sklearn": "breast_cancer"}}}
    migrated = specs_migrated_from("0005", url, [grouped, generated, plain])
    holdouts = {n: s["task"]["holdout"] for n, s in migrated.items()}
    assert holdouts == {"skew": {"fraction": 0.2, "seed": 2, "fraction_of": "groups"},
                        "gen": {"fraction": 0.2, "seed": 2, "fraction_of": "groups"},
                        "plain": {"fraction": 0.2, "seed": 2}}
    with sqlite3.connect(tmp_path / "old.db") as conn:
        [stored] = conn.execute("SELECT spec FROM experiments WHERE name = 'skew'").fetchone()
    recorded = spec_from_dict(json.loads(stored), recorded=True)
    assert recorded.task is not None
    assert len(prepare(recorded.task).holdout_idx) == 180, "the holdout it was recorded with (seed 2: 60% of rows)"


def churn_csv(path: Path) -> Path:
    """The walk's shape: 1000 rows of about 200 customers (1 to 12 rows each), about 8% churned, a churner's rows
    mostly not churned (a customer churns once)."""
    rng = np.random.default_rng(3)
    sizes = rng.integers(1, 10, size=200)
    lines = ["a,cust,y"]
    for c, size in enumerate(sizes):
        churns = rng.random() < 0.35
        for _ in range(size):
            lines.append(f"{rng.normal():.4f},c{c:03d},{int(churns and rng.random() < 0.25)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_classifiers_grouped_holdout_keeps_each_class_share(tmp_path):
    """Whole groups drawn at random: an 8% class held 3 to 12 of a 100-row holdout by seed (the walk's
    stratified_group spec). Drawn to keep each class's share: every seed's holdout is within 1.5 points of the
    overall rate and within 10% of its row fraction, whole customers only; a new seed draws other customers."""
    spec = grouped_spec(tmp_path, {"fraction": 0.1})
    spec["task"]["data"]["path"] = str(churn_csv(tmp_path / "churn.csv"))
    spec["task"]["cv"] = {"kind": "stratified_group", "folds": 3}
    held = []
    for seed in range(8):
        spec["task"]["holdout"]["seed"] = seed
        task = spec_from_dict(spec).task
        assert task is not None
        prep = prepare(task, new=True)
        y, groups = prep.dataset.y.astype(int), prep.dataset.groups
        hold = prep.holdout_idx
        assert not set(groups[hold]) & set(groups[prep.dev_idx]), "a customer on both sides"
        assert abs(len(hold) - 0.1 * len(y)) <= 0.01 * len(y), (seed, len(hold), len(y))
        assert abs(y[hold].mean() - y.mean()) <= 0.015, (seed, y[hold].sum(), len(hold), y.mean())
        held.append(tuple(hold))
    assert len(set(held)) == 8, "holdout.seed does not change the customers held out"


def test_a_grouped_experiment_recorded_before_stratified_holdouts_keeps_its_random_groups_and_row_cuts(tmp_path):
    """A store at revision 0007 holding a grouped classifier's experiment and a time-ordered one: opened now, their
    specs say ``draw: random`` and ``cut_at: rows`` and split as they did; a spec given anew splits the new way."""
    from helpers import specs_migrated_from

    url = f"sqlite:///{tmp_path / 'old.db'}"
    grouped = grouped_spec(tmp_path, {"fraction": 0.1, "seed": 2})
    grouped["task"]["data"]["path"] = str(churn_csv(tmp_path / "churn.csv"))
    dated = tmp_path / "dated.csv"
    dated.write_text("a,day,y\n" + "".join(f"{i % 7 / 7:.3f},{i // 5},{i % 3 % 2}\n" for i in range(100)))
    timed = {**grouped, "name": "timed", "task": {**grouped["task"], "cv": {"kind": "timeseries", "folds": 3},
                                                   "holdout": {"fraction": 0.23},
                                                   "data": {"path": str(dated), "target": "y", "time": "day"}}}
    stored = {n: s["task"] for n, s in specs_migrated_from("0007", url, [grouped, timed]).items()}
    assert stored["skew"]["holdout"] == {"fraction": 0.1, "seed": 2, "draw": "random"}
    assert stored["timed"]["cv"] == {"kind": "timeseries", "folds": 3, "cut_at": "rows"}
    from tunesmith.spec.diff import filled_like, spec_differences

    for spec in (grouped, timed):  # the file it was recorded from, unchanged, is no edit (`cycle SPEC`, `run`)
        recorded = spec_from_dict({**spec, "task": stored[spec["name"]]}, recorded=True)
        assert spec_differences(recorded, filled_like(spec_from_dict(spec), recorded)) == ()

    from sklearn.model_selection import TimeSeriesSplit

    from tunesmith.tasks.splits import _whole_groups_of_about

    old = prepare(spec_from_dict({**grouped, "task": stored["skew"]}, recorded=True).task)
    _, then = _whole_groups_of_about(0.1, old.dataset.groups, 2)
    assert list(old.holdout_idx) == list(then), "the recorded experiment's holdout is not the one it was recorded with"
    assert list(prepare(spec_from_dict(grouped).task).holdout_idx) != list(then)
    old = prepare(spec_from_dict({**timed, "task": stored["timed"]}, recorded=True).task)
    assert len(old.holdout_idx) == 23, "ceil(0.23 * 100) rows: cut inside day 15, as recorded"
    assert [list(te) for _, te in old.splits] == [list(te) for _, te in TimeSeriesSplit(3).split(np.zeros((77, 1)))]
    new = prepare(spec_from_dict(timed).task)
    assert len(new.holdout_idx) == 25 and [te[0] for _, te in new.splits] == [20, 40, 55]
