"""A holdout score that is undefined (NaN): every place that reads it says so, and none takes it for a number.

A real run leaves it undefined here: R^2 on a holdout of one row (20 rows, ``fraction: 0.05``), which scikit-learn
answers with NaN and an UndefinedMetricWarning. Every comparison with NaN is false, so `show` and the report called
the NaN gap "CV and holdout agree", a ``min:`` gate on it said the metric "was not recorded", and the drift check
compared the champion with a NaN baseline ("change +nan%") and found no drop.
"""

from __future__ import annotations

import json
import math

import pytest
from helpers import cli_in_process

# what the library warns as it scores the holdout, caught and said by tunesmith (not an error in these tests)
pytestmark = pytest.mark.filterwarnings("always::sklearn.exceptions.UndefinedMetricWarning")
WHY = "UndefinedMetricWarning: R^2 score is not well-defined with less than two samples."


def _run_with_a_one_row_holdout(project) -> None:
    """Tune experiment 'r2' in this process (set-up: what is read back is what is checked)."""
    import tunesmith

    rows = ["a,b,y"] + [f"{i},{(i * 7) % 5},{2 * i + (i * 3) % 4 / 10}" for i in range(20)]
    (project.root / "data.csv").write_text("\n".join(rows) + "\n")
    spec = {"name": "r2", "objective": {"metric": "r2", "direction": "maximize"},
            "task": {"estimator": {"sklearn.linear_model.Ridge": {}}, "data": {"path": "data.csv", "target": "y"},
                     "cv": {"kind": "kfold", "folds": 3}, "holdout": {"fraction": 0.05}, "scoring": "r2"},
            "space": {"alpha": {"type": "float", "low": 0.01, "high": 10, "log": True}},
            "budget": {"trials": 2}, "executor": {"kind": "inline"}, "seed": 0}
    assert tunesmith.run(project.write_spec(spec), storage=project.storage).status.value == "completed"


def test_show_says_an_undefined_holdout_score_is_undefined_and_gives_no_gap_verdict(project):
    _run_with_a_one_row_holdout(project)
    shown = project.show("r2")
    holdout, optimism = shown["holdout"], shown["cv_optimism"]
    assert holdout["holdout_r2"] == "nan" and holdout["holdout_rows"] == 1  # show --json's way with non-finite
    assert holdout["why_undefined"] == [WHY], holdout
    assert optimism["holdout"] == "nan" and optimism["gap"] is None, optimism
    assert optimism["why_no_gap"] == f"the holdout r2 is undefined (nan): {WHY}", optimism
    text = " ".join(project.cli("show", "r2", check=True).stdout.split())
    assert f"holdout r2 of trial {holdout['trial']}" in text and f"undefined (nan) on 1 row: {WHY}" in text, text
    assert f"no CV/holdout gap: the holdout r2 is undefined (nan): {WHY}" in text, text
    assert "agree" not in text and "+nan" not in text and "optimistic" not in text, text


def test_the_report_says_an_undefined_holdout_score_is_undefined(project):
    pytest.importorskip("plotly", reason="the report needs plotly: pip install 'tunesmith[report]'")
    from tunesmith.monitoring.report import build_report
    from tunesmith.storage import SQLStore

    _run_with_a_one_row_holdout(project)
    store = SQLStore(project.storage)
    try:
        exp = store.experiment("r2")
        document = build_report(exp, store.trials(exp.id))
    finally:
        store.close()
    gap = document.split("Holdout / CV gap", 1)[1]
    assert f"no CV/holdout gap: the holdout r2 is undefined (nan): {WHY}" in gap, gap[:2000]
    assert "agree" not in gap and "+nan" not in gap


def test_a_min_gate_on_an_undefined_holdout_score_fails_saying_it_is_undefined(project):
    _run_with_a_one_row_holdout(project)
    project.write("policy.yaml", "min: {holdout_r2: 0.5}\n")
    code, out, err = cli_in_process("promote", "r2", "--model-name", "m", "--dry-run", "--policy", "policy.yaml",
                                    "--storage", project.storage)
    text = " ".join(out.split())
    assert code == 3, out + err
    assert "FAIL min.holdout_r2: holdout_r2 is undefined (nan) for this trial" in text, text
    assert "not recorded" not in text


def test_drift_compares_with_the_cv_score_when_the_holdout_score_is_undefined(project):
    _run_with_a_one_row_holdout(project)
    code, out, err = cli_in_process("drift", "r2", "--data", "data.csv", "--json", "--storage", project.storage)
    assert code == 0, out + err
    report = json.loads(out)
    champion = report["champion"]
    assert champion["baseline_source"] == "cv" and math.isfinite(champion["baseline"]), champion
    assert isinstance(champion["relative_drop"], float) and math.isfinite(champion["relative_drop"]), champion
    assert any("holdout r2 recorded for trial" in n and "undefined (nan)" in n for n in report["notes"]), report


def _text_level_only_the_holdout_has(project) -> dict:
    """A spec whose holdout (the latest rows, by the time column) holds a text level no development row has, with a
    one-hot step of the user's own that refuses a level it was not fit on (scikit-learn's default)."""
    project.write("spec/mysteps.py", """
        import numpy as np
        from sklearn.base import BaseEstimator, TransformerMixin
        from sklearn.preprocessing import OneHotEncoder


        class OneHotFirst(TransformerMixin, BaseEstimator):
            def __init__(self, handle_unknown="error"):
                self.handle_unknown = handle_unknown

            def fit(self, X, y=None):
                self.enc_ = OneHotEncoder(handle_unknown=self.handle_unknown, sparse_output=False).fit(X[:, :1])
                return self

            def transform(self, X):
                return np.hstack([self.enc_.transform(X[:, :1]), X[:, 1:]])
        """)
    regions = ["north", "south", "east", "west"]
    rows = ["t,region,x,y"] + [f"{i},{'central' if i >= 76 else regions[i % 4]},{(i * 7) % 11},{(i * 5) % 3 % 2}"
                               for i in range(80)]
    project.write("spec/data.csv", "\n".join(rows) + "\n")
    return {"name": "newlevel", "objective": {"metric": "accuracy", "direction": "maximize"},
            "task": {"estimator": {"sklearn.linear_model.LogisticRegression": {"max_iter": 500}},
                     "pipeline": ["mysteps.OneHotFirst"],
                     "data": {"path": "data.csv", "target": "y", "time": "t", "features": ["region", "x"]},
                     "cv": {"kind": "timeseries", "folds": 2}, "holdout": {"fraction": 0.05}, "scoring": "accuracy",
                     "nested": {"outer_folds": 2, "trials": 2}},
            "space": {"logisticregression__C": {"type": "float", "low": 0.1, "high": 10, "log": True}},
            "budget": {"trials": 2}, "executor": {"kind": "inline"}, "seed": 0}


def test_a_holdout_the_refit_model_cannot_score_is_recorded_undefined_with_why_and_the_run_completes(project):
    """A level of a text column only the holdout holds (a rare region's one customer) makes a one-hot step that
    refuses unknown levels raise as the refit model scores the holdout: `run` ended in a raw traceback (exit 1)
    after every trial, the experiment recorded `completed` with no holdout, no word of why, and no nested estimate
    (which comes after). The holdout is now recorded undefined, the library's error its reason; the nested estimate
    is still made, and the run exits 0 as for any undefined holdout score."""
    spec = _text_level_only_the_holdout_has(project)
    proc = project.cli("run", str(project.write_spec(spec, "spec/newlevel.yaml")), "--quiet")
    said = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 0 and "Traceback" not in said, said
    assert "could not be refit on the development rows and scored on the holdout" in said, said
    assert "Found unknown categories" in said, said
    shown = project.show("newlevel")
    assert shown["status"] == "completed", shown["status"]
    holdout = shown["holdout"]
    assert holdout["holdout_accuracy"] == "nan" and holdout["holdout_rows"] == 4, holdout
    why = " ".join(holdout["why_undefined"])
    assert why.startswith("the model to ship could not be refit on the development rows and scored on the "
                           "holdout: ValueError: Found unknown categories"), why
    assert "tunesmith.tasks.steps.OneHotText (handle_unknown: ignore)" in why, why
    assert shown["cv_optimism"]["gap"] is None, shown["cv_optimism"]
    assert "nested_accuracy" in shown["nested"], shown["nested"]  # made after the holdout, as without the failure
    text = " ".join(project.cli("show", "newlevel", check=True).stdout.split())
    assert "undefined (nan) on 4 rows: the model to ship could not be refit" in text, text


def test_only_a_library_refusal_of_the_holdout_is_recorded_undefined_and_any_other_error_is_raised(project,
                                                                                                   monkeypatch):
    """Any exception as the model to ship was refit and scored (a SpecError from prepare, a scorer's TypeError) was
    recorded as an undefined holdout and blamed on the data; scikit-learn's refusals (ValueError) only are."""
    import importlib

    from tunesmith.spec.loader import spec_from_dict

    evaluate = importlib.import_module("tunesmith.tasks.evaluate")  # (tunesmith.tasks.evaluate is also a function)
    spec = spec_from_dict({**_text_level_only_the_holdout_has(project), "base_dir": str(project.root / "spec")})

    def raising(error: Exception):
        def report(*args, **kwargs):
            raise error
        return report

    from tunesmith.errors import SpaceError, SpecError

    # a SpaceError is also a ValueError, and was recorded as the library's refusal
    for error in (TypeError("a defect"), SpecError("task.cv.folds", "too few rows"),
                  SpaceError("space.logisticregression__C", "not in the space")):
        monkeypatch.setattr(evaluate, "holdout_report", raising(error))
        with pytest.raises(type(error)) as raised:
            evaluate._holdout_or_why(spec.task, {"logisticregression__C": 1.0}, 0, spec.base_dir, [])
        assert raised.value is error
    monkeypatch.setattr(evaluate, "holdout_report", raising(ValueError("Input contains NaN")))
    why: list[str] = []
    recorded = evaluate._holdout_or_why(spec.task, {"logisticregression__C": 1.0}, 0, spec.base_dir, why)
    assert math.isnan(recorded["holdout_accuracy"]) and recorded["holdout_rows"] == 4, recorded
    assert why == ["the model to ship could not be refit on the development rows and scored on the holdout: "
                   "ValueError: Input contains NaN"], why
