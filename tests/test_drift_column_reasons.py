"""What `tunesmith drift` says about a column: a numeric feature whose missing share moved (all of it empty, or
nine in ten) is drift with its own reason, not "no drift" on the few values left; a text column's new levels are
named; a report's reasons shortened for a one-line summary say how many were left out."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tunesmith.drift import check_files
from tunesmith.testing.drift_data import iid_split

from helpers import cli_in_folder, tune_in_process
from test_drift import FALSE_ALARM_SPLITS, task_spec

CLINICS = ("north", "south", "east")


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tunesmith.cli", *args], cwd=root, capture_output=True, text=True,
                          timeout=180, env={**os.environ, "TUNESMITH_STORAGE": f"sqlite:///{root / 'tunesmith.db'}",
                                            "COLUMNS": "200"})


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as f:
        return list(csv.reader(f))


def _write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def _with_clinic(path: Path, clinics: list[str]) -> None:
    """``path`` with a text column ``clinic`` before the label."""
    rows = _rows(path)
    _write(path, [[*r[:-1], c, r[-1]] for r, c in zip(rows, ["clinic", *clinics], strict=True)])


def _emptied(root: Path, name: str, column: str, share: float) -> Path:
    """iid_current.csv with the first ``share`` of ``column``'s cells empty, as ``name``."""
    rows = _rows(root / "iid_current.csv")
    j = rows[0].index(column)
    for r in rows[1:1 + round(share * (len(rows) - 1))]:
        r[j] = ""
    return _write(root / name, rows)


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bc tuned (imputer, 2 trials) on one i.i.d. half of breast_cancer with a text column clinic; the other half
    as iid_current.csv."""
    root = tmp_path_factory.mktemp("drift_reasons")
    iid_split(root, seed=0)
    rng = np.random.default_rng(0)
    for name in ("iid_reference.csv", "iid_current.csv"):
        _with_clinic(root / name, list(rng.choice(CLINICS, len(_rows(root / name)) - 1)))
    spec = task_spec("bc", "iid_reference.csv", trials=2)
    pipeline = ["sklearn.impute.SimpleImputer", "sklearn.preprocessing.StandardScaler"]  # takes the empty cells
    spec["task"] = {**spec["task"], "pipeline": pipeline}  # type: ignore[dict-item]
    (root / "bc.yaml").write_text(yaml.safe_dump(spec))
    tune_in_process(root / "bc.yaml", root / "tunesmith.db")
    return root


def _column(report: dict, name: str) -> dict:  # type: ignore[type-arg]
    return next(c for c in report["columns"] if c["name"] == name)


@pytest.mark.slow
def test_a_numeric_feature_arriving_empty_is_drift_with_its_missing_share(tuned: Path) -> None:
    _emptied(tuned, "empty.csv", "mean_texture", 1.0)
    _emptied(tuned, "nine_tenths.csv", "mean_texture", 0.9)
    proc = _cli(tuned, "drift", "bc", "--data", "empty.csv", "--json")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    texture = _column(report, "mean_texture")
    assert report["drift"] and report["drifted_columns"] == ["mean_texture"], report["reasons"]
    assert texture["p_value"] is None and texture["missing"]["current"] == report["rows"]["current"], texture
    assert f"all {report['rows']['current']} values missing, 0% before" in texture["reason"], texture
    assert any("feature mean_texture: all" in r for r in report["reasons"]), report["reasons"]
    # the same check's table, and the nine-tenths case, in this process (cli_in_folder: the CLI's own main, exit
    # code and output): two start-ups importing scikit-learn for the champion fewer
    table = cli_in_folder(tuned, "drift", "bc", "--data", "empty.csv")
    assert table.returncode == 4 and "1.00e+00" not in table.stdout and "no drift" not in table.stdout, table.stdout

    proc = cli_in_folder(tuned, "drift", "bc", "--data", "nine_tenths.csv", "--json")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    texture = _column(json.loads(proc.stdout), "mean_texture")
    assert texture["drifted"] and "values missing (90%), 0% before" in texture["reason"], texture


def test_iid_splits_with_missing_cells_at_one_rate_raise_no_false_alarm(tmp_path: Path) -> None:
    """A tenth of five columns' cells empty on both sides, over the 20 i.i.d. splits test_drift measures: the
    missing-share test adds no false alarm (measured: 0 of 20, as without missing cells)."""
    rng = np.random.default_rng(0)
    alarms = 0
    for seed in range(FALSE_ALARM_SPLITS):
        files = iid_split(tmp_path, seed=seed)
        for path in files:
            rows = _rows(path)
            _write(path, [rows[0], *([("" if j < 5 and rng.random() < 0.1 else v) for j, v in enumerate(r)]
                                     for r in rows[1:])])
        report = check_files(*files, target="label")
        assert report.columns[0].missing is not None and report.columns[0].missing.current > 0
        alarms += report.drifted
    assert alarms <= 1, f"{alarms} false alarms in {FALSE_ALARM_SPLITS} i.i.d. splits with missing cells"


@pytest.mark.slow
def test_a_text_columns_new_levels_are_named(tuned: Path) -> None:
    rows = _rows(tuned / "iid_current.csv")
    j = rows[0].index("clinic")
    new = ["west", "harbour", "hill", "lake", "valley"]
    for i, r in enumerate(rows[1:]):
        r[j] = new[i % len(new)] if i % 2 else r[j]
    _write(tuned / "new_clinics.csv", rows)
    proc = _cli(tuned, "drift", "bc", "--data", "new_clinics.csv", "--json")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    clinic = _column(json.loads(proc.stdout), "clinic")
    assert clinic["drifted"] and "new level(s) " in clinic["reason"] and "and 2 more" in clinic["reason"], clinic
    assert sorted(clinic["new_levels"]) == sorted(new), clinic


def test_shortened_reasons_say_how_many_were_left_out(tmp_path: Path) -> None:
    """Every column moved: the first reasons, then "and N more", never a silent cut."""
    rng = np.random.default_rng(0)
    names = [f"x{i}" for i in range(8)]
    ref = _write(tmp_path / "ref.csv", [names, *([f"{v:.4f}" for v in rng.normal(size=8)] for _ in range(200))])
    cur = _write(tmp_path / "cur.csv", [names, *([f"{v:.4f}" for v in rng.normal(3, size=8)] for _ in range(200))])
    report = check_files(ref, cur)
    assert len(report.reasons) == 8
    assert report.shortened_reasons(5) == [*report.reasons[:5], "and 3 more"]
    assert report.shortened_reasons(8) == report.reasons
