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
