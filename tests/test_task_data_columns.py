"""What `validate` and `run` say of a task's data file's columns before anything is recorded (a new user's walk: a
`patient_id` column became a feature without a word, and `drift` then flagged it on every batch of new ids).

The commands run in this process (tunesmith.cli.main: the command's own code, exit code and output) on a CSV of a
few dozen rows, one trial each: what they say before the search is the point, not the search.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from helpers import cli_in_process

from tunesmith.tasks.data import _cache


def _csv(path: Path, n: int) -> Path:
    """``n`` rows: patient_id (a whole number per row), visit (a text code per row), clinic (three levels), x (a
    float) and label (0/1)."""
    lines = ["patient_id,visit,clinic,x,label"]
    clinics = ("north", "south", "east")
    lines += [f"{1000 + i},V{i:04d},{clinics[i % 3]},{(i * 7 % n) / n:.3f},{i % 2}" for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    _cache.clear()  # (a file rewritten within the clock's tick keeps its mtime; its size may be the same)
    return path


def _spec(project: Any, features: list[str] | None = None, time: str | None = None) -> str:
    data: dict[str, Any] = {"path": "d.csv", "target": "label"}
    if features is not None:
        data["features"] = features
    if time is not None:
        data["time"] = time
    spec = {"name": "ids", "objective": {"metric": "accuracy", "direction": "maximize"},
            "task": {"estimator": "sklearn.linear_model.LogisticRegression", "data": data,
                     "cv": {"kind": "timeseries" if time else "stratified", "folds": 2}, "scoring": "accuracy",
                     "latency": None},
            "space": {"logisticregression__C": {"type": "float", "low": 0.01, "high": 10, "log": True}},
            "budget": {"trials": 1}, "executor": {"kind": "inline"}, "seed": 0}
    return str(project.write_spec(spec))


def _warnings(*args: str) -> list[str]:
    code, out, err = cli_in_process(*args)
    assert code == 0, (code, out, err)
    return [" ".join(w.split()) for w in err.split("warning: ")[1:]]


def test_an_identifier_like_feature_column_is_warned_about_until_the_features_are_listed(project) -> None:
    _csv(project.root / "d.csv", 40)
    said = _warnings("validate", _spec(project))
    assert len(said) == 2, said  # patient_id and visit; not clinic (3 levels), not x (a float), not the label
    ids, visits = said
    assert ids.startswith("task.data.features: column 'patient_id' of d.csv looks like an identifier (40 distinct "
                          "whole numbers over 40 rows)"), ids
    assert visits.startswith("task.data.features: column 'visit' of d.csv looks like an identifier (40 distinct "
                             "text values over 40 rows)"), visits
    assert "list the feature columns in task.data.features, or drop the column from d.csv" in ids, ids
    # `run` says it too, before its search (the same plan)
    run_said = _warnings("run", _spec(project), "-q", "--storage", project.storage)
    assert run_said == said, run_said
    # a time column is not a feature (and its rows, sorted by it, keep what loading noticed)
    assert _warnings("validate", _spec(project, time="patient_id")) == [visits]
    # listed features: the user chose them, whatever they look like
    project.db.unlink()
    assert _warnings("validate", _spec(project, features=["patient_id", "clinic", "x"])) == []
    # a tiny file: a distinct value per row says nothing
    _csv(project.root / "d.csv", 12)
    assert _warnings("validate", _spec(project)) == []

