"""New rows with a missing value in a feature column: refused up front (file, column, row, fix) by drift, retune and
cycle when the experiment's pipeline cannot take them, accepted when it has an imputer; too few rows to re-tune on
blame --data, not the spec's holdout."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
import yaml

from tunesmith.testing.drift_data import iid_split

from test_cycle import SPEC as CYCLE_SPEC
from _drift_setup import BuiltOnce, build_once
from helpers import cli_in_folder, tune_in_process


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tunesmith.cli", *args], cwd=root, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "TUNESMITH_STORAGE": f"sqlite:///{root / 'tunesmith.db'}",
                                            "COLUMNS": "200"})


def _recorded(root: Path) -> tuple[int, int]:
    with closing(sqlite3.connect(root / "tunesmith.db")) as db:
        return (int(db.execute("select count(*) from experiments").fetchone()[0]),
                int(db.execute("select count(*) from events").fetchone()[0]))


def _run_in_process(root: Path) -> None:
    """`tunesmith run bc.yaml` from ``root``, in this process (the set-up, not what is tested: one CLI start-up
    with scikit-learn fewer per test); the store is closed after."""
    tune_in_process(root / "bc.yaml", root / "tunesmith.db")


def _tuned(root: Path, pipeline: list[str]) -> Path:
    """bc tuned on one i.i.d. half of breast_cancer (2 trials), and the other half with one cell n/a."""
    iid_split(root)
    spec = {**CYCLE_SPEC, "task": {**CYCLE_SPEC["task"], "data": {"path": "iid_reference.csv", "target": "label"},
                                   "pipeline": pipeline}, "budget": {"trials": 2}}
    (root / "bc.yaml").write_text(yaml.safe_dump(spec))
    _run_in_process(root)
    lines = (root / "iid_current.csv").read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[7].split(",")
    cells[header.index("mean_texture")] = "n/a"     # data row 7
    lines[7] = ",".join(cells)
    (root / "one_bad_cell.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def scaled_bc(tmp_path_factory: pytest.TempPathFactory) -> BuiltOnce:
    """bc with a StandardScaler (no imputer), tuned once for the module; laid anew as built for each test."""
    def build(root: Path) -> None:
        _tuned(root, ["sklearn.preprocessing.StandardScaler"])

    return build_once(tmp_path_factory, "drift_missing_scaled", build)


@pytest.mark.slow
def test_a_missing_value_the_pipeline_cannot_take_is_refused_naming_file_column_and_row(scaled_bc: BuiltOnce) -> None:
    root = scaled_bc.fresh()
    before = _recorded(root)
    # drift's refusal as a process of its own; the same refusal by retune and cycle in this process (cli_in_folder:
    # the CLI's own main, exit code and stderr), two start-ups importing scikit-learn fewer
    for command, cli in ((("drift", "bc"), _cli), (("retune", "bc", "--trials", "2"), cli_in_folder),
                         (("cycle", "bc.yaml", "--trials", "2"), cli_in_folder)):
        proc = cli(root, *command, "--data", "one_bad_cell.csv")
        assert proc.returncode == 2, (command, proc.stdout, proc.stderr)
        assert "one_bad_cell.csv" in proc.stderr and "'mean_texture' row 7" in proc.stderr, proc.stderr
        assert "imputer" in proc.stderr and "Input X contains NaN" not in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert _recorded(root) == before   # no re-tune, no cycle step recorded


@pytest.mark.slow
def test_a_pipeline_with_an_imputer_takes_the_missing_value(tmp_path: Path) -> None:
    root = _tuned(tmp_path, ["sklearn.impute.SimpleImputer", "sklearn.preprocessing.StandardScaler"])
    proc = _cli(root, "drift", "bc", "--data", "one_bad_cell.csv", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["champion"] is not None and report["champion_skipped"] is None
    assert "Input X contains NaN" not in proc.stderr


@pytest.mark.slow
def test_a_retune_on_too_few_rows_blames_data_and_says_how_many_are_needed(scaled_bc: BuiltOnce) -> None:
    root = scaled_bc.fresh()
    lines = (root / "iid_current.csv").read_text().splitlines()
    labels = [line.rsplit(",", 1)[1] for line in lines[1:]]
    rows = [lines[1 + labels.index("0")], lines[1 + labels.index("1")]] + lines[1:4]   # both classes, 5 rows
    (root / "five.csv").write_text("\n".join([lines[0], *rows]) + "\n")
    before = _recorded(root)
    proc = _cli(root, "retune", "bc", "--data", "five.csv", "--trials", "2")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("error: --data: five.csv") and "5 rows" in proc.stderr, proc.stderr
    assert "at least" in proc.stderr and "test_size" not in proc.stderr, proc.stderr
    assert _recorded(root) == before


@pytest.mark.slow
def test_a_pipeline_that_encodes_a_missing_category_takes_it_as_validate_does(tmp_path: Path) -> None:
    """A OneHotEncoder makes a missing value a category of its own, so `validate` takes the task's rows with one;
    drift and retune judge new rows the same way (they used to refuse them: the pipeline has no imputer)."""
    import random

    rng = random.Random(0)
    rows = ["color,size,label"]
    for _ in range(120):
        color = rng.choice(["red", "green", "blue"])
        rows.append(f"{color},{rng.randint(0, 3)},{int((color == 'red') != (rng.random() < 0.1))}")
    (tmp_path / "colors.csv").write_text("\n".join(rows) + "\n")
    new = rows[:1] + [rows[1].replace(rows[1].split(",")[0], "NA", 1)] + rows[2:]
    (tmp_path / "new.csv").write_text("\n".join(new) + "\n")
    spec = {**CYCLE_SPEC, "task": {**CYCLE_SPEC["task"], "data": {"path": "colors.csv", "target": "label"},
                                   "pipeline": [{"sklearn.preprocessing.OneHotEncoder": {"handle_unknown": "ignore"}}]},
            "budget": {"trials": 2}}
    (tmp_path / "bc.yaml").write_text(yaml.safe_dump(spec))
    (tmp_path / "with_na.yaml").write_text(yaml.safe_dump({**spec, "name": "with_na", "task": {
        **spec["task"], "data": {"path": "new.csv", "target": "label"}}}))
    assert _cli(tmp_path, "validate", "with_na.yaml").returncode == 0   # the rule drift and retune now share
    _run_in_process(tmp_path)
    proc = _cli(tmp_path, "drift", "bc", "--data", "new.csv", "--json")
    assert proc.returncode in (0, 4), proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["champion"] is not None
    proc = cli_in_folder(tmp_path, "retune", "bc", "--data", "new.csv", "--trials", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
