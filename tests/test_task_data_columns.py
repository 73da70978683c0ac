"""What `validate` and `run` say of a task's data file's columns before anything is recorded (a new user's walk: a
`patient_id` column became a feature without a word, and `drift` then flagged it on every batch of new ids).

The commands run in this process (tunesmith.cli.main: the command's own code, exit code and output) on a CSV of a
few dozen rows, one trial each: what they say before the search is the point, not the search.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
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


def _spec(project: Any, features: list[str] | None = None, time: str | None = None,
          holdout: float | None = None) -> str:
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
    if holdout is not None:
        spec["task"]["holdout"] = {"fraction": holdout}
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


def test_an_infinite_value_in_the_training_data_is_refused_before_anything_is_recorded(project) -> None:
    """An `inf` in a holdout row: every trial completed (the search never sees the holdout), then the holdout's
    refit crashed with scikit-learn's "Input X contains infinity" traceback, the run recorded as completed. New rows
    for drift, retune and cycle were refused such a value already; the task's own rows were not checked."""
    from tunesmith.spec.loader import load_spec
    from tunesmith.tasks import prepare

    path = _csv(project.root / "d.csv", 40)
    spec = _spec(project, features=["clinic", "x"], holdout=0.25)
    row = int(prepare(load_spec(spec).task, project.root).holdout_idx[0])  # a row only the holdout holds
    lines = path.read_text().splitlines()
    cells = lines[row + 1].split(",")
    lines[row + 1] = ",".join([*cells[:3], "inf", cells[4]])
    path.write_text("\n".join(lines) + "\n")
    _cache.clear()
    for command in (("run", spec, "-q", "--storage", project.storage), ("validate", spec)):
        code, out, err = cli_in_process(*command)
        said = " ".join(err.split())
        assert code == 2, (command, code, out, err)
        assert said == (f"error: task.data.path: d.csv column 'x' holds 1 infinite value(s) (row {row + 1}: 'inf'), "
                        "which no model takes, nor an imputer; replace them with numbers (or empty cells, when the "
                        "pipeline imputes) or drop those rows"), said
    assert not project.db.exists(), "nothing recorded"


def test_missing_values_no_step_fills_before_one_that_refuses_them_are_refused_at_validate(project) -> None:
    """Column 'x' with 7 empty cells and StandardScaler -> LogisticRegression: validate said valid, then every trial
    failed on scikit-learn's "Input X contains NaN" (printed whole, per trial), never naming the column. StandardScaler
    keeps a missing value; an imputer removes it; HistGradientBoosting and (scikit-learn 1.9) forests take it; a step
    of the user's own cannot be judged: none of those is refused."""
    import pytest

    from tunesmith.errors import SpecError
    from tunesmith.spec.loader import load_spec
    from tunesmith.spec.task_config import TaskConfig
    from tunesmith.tasks import prepare

    path = _csv(project.root / "d.csv", 40)
    lines = path.read_text().splitlines()
    lines[1::6] = [",".join([*line.split(",")[:3], "", line.split(",")[4]]) for line in lines[1::6]]
    path.write_text("\n".join(lines) + "\n")
    _cache.clear()
    (project.root / "own_step.py").write_text("from sklearn.base import BaseEstimator, TransformerMixin\n\n\n"
                                          "class Copy(TransformerMixin, BaseEstimator):\n"
                                          "    def fit(self, X, y=None):\n        return self\n\n"
                                          "    def transform(self, X):\n        return X.copy()\n")
    spec = load_spec(_spec(project, features=["clinic", "x"])).task

    def task(estimator: str, pipeline: list[str]) -> Any:
        return TaskConfig.model_validate({**spec.model_dump(), "estimator": estimator, "pipeline": pipeline})

    code, out, err = cli_in_process("run", _spec(project, features=["clinic", "x"]), "-q", "--storage",
                                    project.storage)
    assert code == 2, (code, out, err)
    assert " ".join(err.split()) == (
        "error: task.data: column 'x' has 7 missing values and nothing in task.pipeline fills them before "
        "LogisticRegression (task.estimator), which does not accept them: every trial would fail; add "
        "sklearn.impute.SimpleImputer to task.pipeline (or use an estimator that accepts missing values, e.g. "
        "HistGradientBoostingClassifier)"), err
    assert not project.db.exists(), "nothing recorded"
    lr = "sklearn.linear_model.LogisticRegression"
    with pytest.raises(SpecError, match=r"before PCA \(task.pipeline.1\), which does not accept them: every trial "
                                        r"would fail; add sklearn.impute.SimpleImputer to task.pipeline before PCA$"):
        prepare(task(lr, ["sklearn.preprocessing.StandardScaler", "sklearn.decomposition.PCA"]), project.root,
                new=True)
    for estimator, pipeline in ((lr, ["sklearn.impute.SimpleImputer", "sklearn.preprocessing.StandardScaler"]),
                                ("sklearn.ensemble.HistGradientBoostingClassifier", []),
                                ("sklearn.ensemble.RandomForestClassifier", ["sklearn.preprocessing.StandardScaler"]),
                                (lr, ["own_step.Copy"])):
        prepare(task(estimator, pipeline), project.root, new=True)
    # an experiment recorded before this check resumes, reproduces and promotes as it ran
    prepare(task(lr, ["sklearn.preprocessing.StandardScaler"]), project.root)


def _dated_csv(path: Path, n: int, dates: list[str] | None = None, income: list[str] | None = None) -> Path:
    """``n`` rows in time order: signup (an ISO date, two rows a day), region (three levels), income (a float
    unless ``income`` gives the cells) and spend (a float, the target)."""
    dates = dates or [f"2024-01-{1 + i // 2:02d}" for i in range(n)]
    income = income or [f"{30 + (i * 7 % n) / 2:.1f}" for i in range(n)]
    lines = ["signup,region,income,spend"]
    lines += [f"{dates[i]},{('north', 'south', 'east')[i % 3]},{income[i]},{10 + i % 7 + (i * 3 % n) / n:.3f}"
              for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    _cache.clear()
    return path


def _regression_spec(project: Any, name: str, data: dict[str, Any], cv: dict[str, Any] | None = None) -> str:
    spec = {"name": name, "objective": {"metric": "neg_root_mean_squared_error", "direction": "maximize"},
            "task": {"estimator": "sklearn.linear_model.Ridge", "data": {"path": "d.csv", "target": "spend", **data},
                     "cv": cv or {"kind": "kfold", "folds": 2}, "scoring": "neg_root_mean_squared_error",
                     "latency": None},
            "space": {"ridge__alpha": {"type": "float", "low": 0.01, "high": 10, "log": True}},
            "budget": {"trials": 1}, "executor": {"kind": "inline"}, "seed": 0}
    return str(project.write_spec(spec))


def test_the_time_column_listed_as_a_feature_is_its_timestamp_in_training_and_in_new_rows(project) -> None:
    """`time: signup` with signup also in `features` (the README allows it): the model was fed the rank of each
    distinct date string, the column recorded as `datetime`, and `drift --data` then refused every file, the
    training file itself, saying its dates were "not a number, as it is in the experiment's data"."""
    import datetime

    from tunesmith.spec.loader import load_spec
    from tunesmith.tasks import prepare, rows_like

    path = _dated_csv(project.root / "d.csv", 40)
    spec = _regression_spec(project, "tfeat", {"time": "signup", "features": ["region", "income", "signup"]},
                            {"kind": "timeseries", "folds": 2})
    code, out, err = cli_in_process("run", spec, "-q", "--storage", project.storage)
    assert code == 0, (code, out, err)
    task = load_spec(spec).task
    ds = prepare(task, project.root).dataset
    assert ds.column_types["signup"] == "datetime"
    first = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC).timestamp()
    assert list(ds.X[:4, 2]) == [first, first, first + 86400, first + 86400]  # POSIX seconds, not ranks 0, 0, 1, 1
    # new rows are encoded the same way: a date the file never had is its timestamp, not a missing value
    later = _dated_csv(project.root / "later.csv", 40, dates=[f"2024-03-{1 + i // 2:02d}" for i in range(40)])
    new = rows_like(task.data, project.root, later)
    assert new.X[0, 2] == datetime.datetime(2024, 3, 1, tzinfo=datetime.UTC).timestamp()
    _dated_csv(path, 40)
    assert (rows_like(task.data, project.root, path).X == ds.X).all()
    code, out, err = cli_in_process("drift", "tfeat", "--data", str(path), "--storage", project.storage)
    assert code == 0, (code, out, err)
    assert "not a number" not in err, err


def test_an_experiment_recorded_before_dates_were_timestamps_is_still_fed_their_text_codes(project) -> None:
    """Before the time column listed in `features` was fed as its timestamps, it was fed as text codes of its dates,
    with the same recorded column types (so the same data fingerprint): a recorded experiment resumed, promoted or
    scored for drift ran on other features than its trials, without a word. The store's migration 0008 writes
    `time_as: codes` into the stored specs of those experiments; a spec given anew is fed seconds."""
    import datetime

    import yaml
    from helpers import specs_migrated_from

    from tunesmith.errors import SpecError
    from tunesmith.spec.diff import filled_like, spec_differences
    from tunesmith.spec.loader import spec_from_dict
    from tunesmith.tasks import prepare, rows_like

    path = _dated_csv(project.root / "d.csv", 40)
    spec = yaml.safe_load(Path(_regression_spec(project, "tfeat", {"time": "signup",
                                                                    "features": ["region", "income", "signup"]},
                                                {"kind": "timeseries", "folds": 2})).read_text())
    spec["task"]["data"]["path"] = str(path)
    unlisted = {**spec, "name": "untimed", "task": {**spec["task"], "data": {**spec["task"]["data"],
                                                                             "features": ["region", "income"]}}}
    url = f"sqlite:///{project.root / 'old.db'}"
    stored = {n: s["task"] for n, s in specs_migrated_from("0007", url, [spec, unlisted]).items()}
    assert stored["tfeat"]["data"]["time_as"] == "codes"
    assert "time_as" not in stored["untimed"]["data"], "no time column among its features: nothing to keep"
    recorded = spec_from_dict({**spec, "task": stored["tfeat"]}, recorded=True)
    assert recorded.task is not None
    old = prepare(recorded.task, project.root).dataset
    assert old.column_types["signup"] == "datetime"
    assert list(old.X[:4, 2]) == [0, 0, 1, 1], "the recorded experiment is not fed the text codes it ran on"
    assert (rows_like(recorded.task.data, project.root, path).X == old.X).all()
    later = _dated_csv(project.root / "later.csv", 40, dates=[f"2024-03-{1 + i // 2:02d}" for i in range(40)])
    assert np.isnan(rows_like(recorded.task.data, project.root, later).X[:, 2]).all()  # codes know no later date
    _dated_csv(path, 40)
    # the file it was recorded from, unchanged, is no edit (`cycle SPEC`, `run`)
    assert spec_differences(recorded, filled_like(spec_from_dict(spec), recorded)) == ()
    new = prepare(spec_from_dict(spec).task, project.root).dataset  # type: ignore[arg-type]
    first = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC).timestamp()
    assert list(new.X[:2, 2]) == [first, first]
    with pytest.raises(SpecError, match="time_as"):
        spec_from_dict({**unlisted, "task": {**unlisted["task"], "data": {**unlisted["task"]["data"],
                                                                          "time_as": "codes"}}})


def test_a_numeric_column_read_as_text_for_a_few_stray_cells_and_a_date_feature_are_warned_about(project) -> None:
    """One '?' among numbers made the column text (codes of its values sorted as text, 9.5 after 10.2), and an ISO
    date column among the features became a category of as many levels as dates: `validate` said valid, no word."""
    incomes = [f"{30 + i / 2:.1f}" for i in range(40)]
    incomes[5], incomes[17], incomes[30] = "?", "-", "?"
    _dated_csv(project.root / "d.csv", 40, income=incomes)
    spec = _regression_spec(project, "stray", {"features": ["region", "income", "signup"]})
    said = _warnings("validate", spec)
    assert said == [
        "task.data.features: column 'income' of d.csv is read as text because of 3 value(s) that are not numbers: "
        "'?' (row 6), '-' (row 18): its numbers are encoded as text levels (sorted as text, 9.5 after 10.2), and "
        "a number new rows bring that the file lacks is a missing value for the model; correct those cells, or "
        "empty them (a missing value)",
        "task.data.features: column 'signup' of d.csv holds dates; as a feature it is encoded as text levels, which "
        "the dates of new rows never match (each a missing value for the model): name it task.data.time (the rows "
        "are then time-ordered, and a time column listed in task.data.features is fed as its timestamp), derive "
        "numeric features from it, or leave it out of task.data.features"], said
    assert _warnings("run", spec, "-q", "--storage", project.storage) == said
    # mostly text (a real category), or the dates declared as the time column: nothing to say
    _dated_csv(project.root / "d.csv", 40, income=["low", "mid", "high", "7"] * 10)
    assert _warnings("validate", _regression_spec(project, "fine", {"time": "signup",
                                                                     "features": ["region", "income", "signup"]},
                                                  {"kind": "timeseries", "folds": 2})) == []


def test_a_text_columns_warnings_parse_each_distinct_value_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every load (the coordinator's, each worker's) looks for a few stray cells among numbers and for dates: that
    parsed every cell, a fromisoformat and a raised ValueError per cell (300k rows loaded in 2.5 s, not 1.4 s). It
    parses each distinct value once, and counts a value's rows as it did."""
    from tunesmith.tasks import data

    parsed: list[Any] = []
    for name in ("_number", "date_seconds"):
        real = getattr(data, name)
        monkeypatch.setattr(data, name, lambda v, real=real: parsed.append(v) or real(v))
    cells = ["1.5", "2.5", "NA", "3", "10", "12", "7", "8", "9", "11"] * 300 + ["?", "-", "?"]
    dates = ["2024-01-01", "2024-01-02"] * 100 + ["x"]
    said = data.text_column_warnings({"x": cells, "d": dates}, ["x", "d"], {"x": "string", "d": "string"}, "f.csv")
    assert len(parsed) <= 2 * (11 + 3), f"{len(parsed)} parses of 14 distinct values"
    assert [" ".join(w.split()) for w in said] == [
        "task.data.features: column 'x' of f.csv is read as text because of 3 value(s) that are not numbers: "
        "'?' (row 3001), '-' (row 3002): its numbers are encoded as text levels (sorted as text, 9.5 after 10.2), "
        "and a number new rows bring that the file lacks is a missing value for the model; correct those cells, or "
        "empty them (a missing value)",
        "task.data.features: column 'd' of f.csv holds dates; as a feature it is encoded as text levels, which the "
        "dates of new rows never match (each a missing value for the model): name it task.data.time (the rows are "
        "then time-ordered, and a time column listed in task.data.features is fed as its timestamp), derive numeric "
        "features from it, or leave it out of task.data.features"], said


@pytest.mark.parametrize(("edit", "field", "message"), [
    (lambda lines: lines.__setitem__(8, "," + lines[8].split(",", 1)[1]), "task.data.time",
     "column 'signup' row 8 is empty (a missing value); the time column orders the rows, so no cell of it may be "
     "missing: fill in its date or drop the row"),
    (lambda lines: [lines.__setitem__(i, lines[i].rsplit(",", 1)[0] + ",") for i in (4, 9, 10, 11, 30)],
     "task.data.target", "column 'spend' has 5 empty value(s) (rows 4, 9, 10 and 2 more); drop those rows or fill "
                         "them (a label cannot be imputed)"),
])
def test_an_empty_time_or_target_cell_is_said_to_be_empty_and_named_by_its_row(
        project: Any, edit: Callable[[list[str]], Any], field: str, message: str) -> None:
    """An empty date was "neither a number nor an ISO date"; an empty label named no row to look at."""
    path = _dated_csv(project.root / "d.csv", 40)
    lines = path.read_text().splitlines()
    edit(lines)
    path.write_text("\n".join(lines) + "\n")
    _cache.clear()
    code, out, err = cli_in_process("validate", _regression_spec(project, "empty", {"time": "signup"},
                                                                  {"kind": "timeseries", "folds": 2}))
    assert code == 2, (code, out, err)
    assert " ".join(err.split()) == f"error: {field}: {message}", err
