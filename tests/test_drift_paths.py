"""The drift report names its two files the same way: absolute, resolved paths, however they were given."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tunesmith.testing.drift_data import shifted_split

from test_cycle import SPEC as CYCLE_SPEC
from helpers import tune_in_process


def _cli(cwd: Path, db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tunesmith.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=180, env={**os.environ, "TUNESMITH_STORAGE": f"sqlite:///{db}", "COLUMNS": "200"})


def _run_in_process(project: Path, db: Path) -> None:
    """`tunesmith run bc.yaml` from ``project``, in this process (the set-up, not what is tested: one CLI start-up
    with scikit-learn fewer)."""
    tune_in_process(project / "bc.yaml", db)


@pytest.mark.slow
def test_data_and_reference_are_absolute_for_a_task_and_for_two_files(tmp_path: Path) -> None:
    """`data` was the path as typed (relative) while `reference` was absolute."""
    project, ops, db = tmp_path / "project", tmp_path / "ops", tmp_path / "tunesmith.db"
    shifted_split(project)
    ops.mkdir()
    (tmp_path / "link").symlink_to(project)
    spec = {**CYCLE_SPEC, "budget": {"trials": 1}}   # a LogisticRegression on breast_cancer rows
    (project / "bc.yaml").write_text(yaml.safe_dump(spec))
    _run_in_process(project, db)
    new_rows, reference = str((project / "shifted.csv").resolve()), str((project / "reference.csv").resolve())

    shown = _cli(ops, db, "drift", "bc", "--data", "../link/shifted.csv", "--json", "--json-out", "drift.json")
    assert shown.returncode == 4, shown.stderr
    report = json.loads(shown.stdout)
    assert (report["data"], report["reference"]) == (new_rows, reference)
    assert json.loads((ops / "drift.json").read_text()) == report

    files = _cli(ops, db, "drift", "bc", "--reference", "../link/reference.csv", "--data", "../project/shifted.csv",
                 "--json")
    assert files.returncode == 4, files.stderr
    report = json.loads(files.stdout)
    assert (report["data"], report["reference"]) == (new_rows, reference)
