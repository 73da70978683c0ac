"""Drift checks on a real shift (breast_cancer ordered by tumour size, labels flipped in the second half) and on
i.i.d. splits of the same size; the `tunesmith drift` command end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tunesmith.drift import check_files, population_stability_index
from tunesmith.drift.statistics import ColumnRole, categorical_drift, numeric_drift
from tunesmith.testing.drift_data import iid_split, shifted_split
from helpers import cli_in_folder, tune_in_process

FALSE_ALARM_SPLITS = 20


def test_psi_is_zero_for_the_same_sample_and_large_for_a_moved_one() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=2000)
    assert population_stability_index(a, a) == pytest.approx(0.0, abs=1e-9)
    assert population_stability_index(a, rng.normal(size=2000)) < 0.05
    assert population_stability_index(a, rng.normal(loc=1.0, size=2000)) > 0.25


def test_numeric_and_categorical_tests_flag_a_shift_and_pass_a_resample() -> None:
    rng = np.random.default_rng(1)
    same = numeric_drift("x", ColumnRole.FEATURE, rng.normal(size=500), rng.normal(size=500), bins=10, psi=0.1,
                         alpha=0.01)
    moved = numeric_drift("x", ColumnRole.FEATURE, rng.normal(size=500), rng.normal(0.5, size=500), bins=10,
                          psi=0.1, alpha=0.01)
    assert not same.drifted and moved.drifted and moved.p_value < 1e-6
    ref = list(rng.choice(["a", "b", "c"], size=400, p=[0.5, 0.3, 0.2]))
    cur_same = list(rng.choice(["a", "b", "c"], size=400, p=[0.5, 0.3, 0.2]))
    cur_moved = list(rng.choice(["a", "b", "c"], size=400, p=[0.2, 0.3, 0.5]))
    assert not categorical_drift("c", ColumnRole.TARGET, ref, cur_same, psi=0.1, alpha=0.01).drifted
    assert categorical_drift("c", ColumnRole.TARGET, ref, cur_moved, psi=0.1, alpha=0.01).drifted
    # a tiny shift in a large sample is significant but not large: not drift
    tiny = numeric_drift("x", ColumnRole.FEATURE, rng.normal(size=100_000), rng.normal(0.03, size=100_000), bins=10,
                         psi=0.1, alpha=0.01)
    assert tiny.p_value < 1e-6 and tiny.psi < 0.01 and not tiny.drifted and tiny.reason == ""
    # 1.0 (Parquet) and "1" (CSV) are one category, not two
    assert not categorical_drift("f", ColumnRole.FEATURE, [1.0, 0.0] * 50, ["1", "0"] * 50, psi=0.1,
                                 alpha=0.01).drifted


def test_shift_is_detected_and_iid_splits_raise_no_false_alarm(tmp_path: Path) -> None:
    ref, shifted = shifted_split(tmp_path)
    report = check_files(ref, shifted, target="label")
    assert report.drifted and report.target_drifted
    assert {"mean_radius", "worst_area"} <= set(report.drifted_columns)
    alarms = 0
    for seed in range(FALSE_ALARM_SPLITS):
        a, b = iid_split(tmp_path / "iid", seed=seed)
        alarms += check_files(a, b, target="label").drifted
    # measured: 0 of 20 (README "Drift checks"); one would still be a 5% false-alarm rate
    assert alarms <= 1, f"{alarms} false alarms in {FALSE_ALARM_SPLITS} i.i.d. splits"


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tunesmith.cli", *args], cwd=root, capture_output=True, text=True,
                          timeout=180, env={**os.environ, "TUNESMITH_STORAGE": f"sqlite:///{root / 'tunesmith.db'}",
                                            "COLUMNS": "200"})


def task_spec(name: str, data: str, trials: int = 4) -> dict[str, object]:
    return {
        "name": name,
        "objective": {"metric": "roc_auc", "direction": "maximize"},
        "task": {"estimator": {"sklearn.linear_model.LogisticRegression": {"max_iter": 2000}},
                 "pipeline": ["sklearn.preprocessing.StandardScaler"],
                 "data": {"path": data, "target": "label"}, "cv": {"kind": "stratified", "folds": 3},
                 "holdout": {"fraction": 0.2}, "scoring": "roc_auc"},
        "space": {"logisticregression__C": {"type": "float", "low": 0.001, "high": 100.0, "log": True}},
        "strategy": "random", "budget": {"trials": trials}, "executor": {"kind": "inline"}, "seed": 0,
    }


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An experiment tuned on one i.i.d. half of breast_cancer (4 trials), tuned in this process."""
    root = tmp_path_factory.mktemp("drift")
    iid_split(root, seed=0)
    shifted_split(root)
    (root / "bc.yaml").write_text(yaml.safe_dump(task_spec("bc", "iid_reference.csv")))
    tune_in_process(root / "bc.yaml", root / "tunesmith.db")  # the set-up in this process: one CLI start-up fewer
    return root


@pytest.mark.slow
def test_drift_command_exits_0_on_an_iid_half_and_4_on_the_shifted_half(tuned: Path) -> None:
    # exit 0 in this process (cli_in_folder: the CLI's own main, exit code and output; a drift process exits 0 in
    # test_drift_missing_values), exit 4, the table and --json-out from a process of its own
    same = cli_in_folder(tuned, "drift", "bc", "--data", "iid_current.csv", "--json")
    assert same.returncode == 0, same.stdout + same.stderr
    report = json.loads(same.stdout)
    assert report["drift"] is False and report["champion"]["baseline_source"] == "holdout"
    assert report["champion"]["degraded"] is False and report["rows"] == {"reference": 284, "current": 285}

    moved = _cli(tuned, "drift", "bc", "--data", "shifted.csv", "--json-out", "drift.json")
    assert moved.returncode == 4, moved.stdout + moved.stderr
    assert "mean_radius" in moved.stdout and "drift" in moved.stdout
    report = json.loads((tuned / "drift.json").read_text())
    assert report["drift"] and report["target_drift"]
    champion = report["champion"]
    assert champion["degraded"] and champion["current"] < champion["baseline"]


@pytest.mark.slow
@pytest.mark.parametrize("args, says", [
    (("--data", "nowhere.csv"), "does not exist"),
    (("--data", "bc.yaml"), "must name a .csv or .parquet file"),
])
def test_bad_input_exits_2_with_one_message(tuned: Path, args: tuple[str, ...], says: str) -> None:
    proc = _cli(tuned, "drift", "bc", *args)
    assert proc.returncode == 2 and says in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_missing_feature_columns_and_too_few_rows_are_bad_input_an_extra_column_is_noted(tuned: Path) -> None:
    lines = (tuned / "iid_current.csv").read_text().splitlines()
    header = lines[0].split(",")
    keep = [i for i, h in enumerate(header) if h != "mean_area"]
    (tuned / "narrow.csv").write_text("\n".join(",".join(r.split(",")[i] for i in keep) for r in lines) + "\n")
    proc = _cli(tuned, "drift", "bc", "--data", "narrow.csv")
    assert proc.returncode == 2 and "mean_area" in proc.stderr
    # the other two cases in this process (cli_in_folder: the CLI's own main, exit code and output), the first
    # refusal being a process of its own: two start-ups fewer, one of them importing scikit-learn for the champion
    (tuned / "wide.csv").write_text("\n".join(f"{r},{'row_id' if i == 0 else i}" for i, r in enumerate(lines)) + "\n")
    proc = cli_in_folder(tuned, "drift", "bc", "--data", "wide.csv", "--json")
    assert proc.returncode == 0 and any("row_id are not among the experiment's features: not tested" in n
                                        for n in json.loads(proc.stdout)["notes"]), proc.stdout  # not silently
    (tuned / "few.csv").write_text("\n".join(lines[:6]) + "\n")
    proc = cli_in_folder(tuned, "drift", "bc", "--data", "few.csv")
    assert proc.returncode == 2 and "drift.min_rows" in proc.stderr


def _relabelled(tuned: Path, name: str, label: object) -> str:
    """iid_current.csv with its label column replaced by ``label(old_label)``."""
    lines = (tuned / "iid_current.csv").read_text().splitlines()
    rows = [lines[0]] + [r.rsplit(",", 1)[0] + "," + str(label(r.rsplit(",", 1)[1])) for r in lines[1:]]
    (tuned / name).write_text("\n".join(rows) + "\n")
    return name


@pytest.mark.slow
@pytest.mark.parametrize("label, says", [
    (lambda y: 1, "roc_auc is undefined on one.csv (one.csv holds 1 class)"),
    (lambda y: 2 if y == "0" else y, "value(s) 2 the experiment's data never had"),
])
def test_a_champion_the_new_labels_cannot_score_is_skipped_saying_why(tuned: Path, label: object, says: str) -> None:
    """One class only (ROC AUC undefined) printed 'nan' and wrote NaN, which is not JSON; a label value the model
    never saw ended in scikit-learn's traceback (exit 1). The column tests still run."""
    data = _relabelled(tuned, "one.csv" if "one.csv" in says else "new.csv", label)
    proc = _cli(tuned, "drift", "bc", "--data", data, "--json")
    assert proc.returncode == 4 and "Traceback" not in proc.stderr, proc.stderr
    report = json.loads(proc.stdout, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
    assert report["champion"] is None and says in report["champion_skipped"], report["champion_skipped"]
    assert report["target_drift"] is True


@pytest.mark.slow
def test_trial_code_experiment_compares_two_files(project) -> None:  # type: ignore[no-untyped-def]
    spec = project.write_spec(project.spec("fn", executor={"kind": "inline"}, budget={"trials": 2}))
    tune_in_process(spec, project.db)  # the set-up (`run fn.yaml`) in this process: the drift commands are the test
    shifted_split(project.root)
    iid_split(project.root)
    proc = project.cli("drift", "fn", "--data", "shifted.csv")
    assert proc.returncode == 2 and "--reference" in proc.stderr
    proc = project.cli("drift", "fn", "--reference", "reference.csv", "--data", "shifted.csv", "--json")
    assert proc.returncode == 4 and json.loads(proc.stdout)["champion_skipped"] is None
    # no drift between two i.i.d. halves: exit 0, in this process (cli_in_folder), a start-up fewer
    proc = cli_in_folder(project.root, "drift", "fn", "--reference", "iid_reference.csv", "--data", "iid_current.csv")
    assert proc.returncode == 0, proc.stdout


def test_import_tunesmith_and_a_spec_with_drift_load_no_drift_code_nor_scipy() -> None:
    code = ("import sys, tunesmith\n"
            "from tunesmith.spec.loader import spec_from_dict\n"
            "spec_from_dict({'name': 'x', 'objective': {'metric': 'loss', 'direction': 'minimize'},\n"
            "    'space': {'x': {'type': 'float', 'low': 0, 'high': 1}}, 'trial': 'm:f', 'drift': {'psi': 0.2}})\n"
            "print(sorted(m for m in sys.modules if m == 'scipy' or m.startswith(('tunesmith.drift',\n"
            "    'tunesmith.retune', 'tunesmith.cycle', 'tunesmith.strategy.warm_start'))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr
