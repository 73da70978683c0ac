"""A project folder moved or copied with its SQLite store (a CI checkout at another path, a copy to a server): the
commands that re-read an experiment's recorded paths read them in the folder the store is in now, and say so.

Each test tunes in a folder (in this process), moves or copies it, and runs the command under test as a user does,
as a subprocess, from the new folder. Before, a moved folder failed (`reproduce`: the trial's module not found in
the old folder, exit 2), and a copy whose original was still there read the original's code and data without a
word (a reproduction "NOT reproduced", a drift check refusing data that the copy had not changed)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.helpers import completed_in_process
from tunesmith.relocation import STORE_PATH, FolderMove

FUNCTION_SPEC = """\
name: fn
objective: {metric: loss, direction: minimize}
space: {x: {type: float, low: -5, high: 5}}
budget: {trials: 2}
executor: {kind: inline}
trial: {function: "obj:objective"}
seed: 0
"""
TASK_SPEC = """\
name: ts
objective: {metric: neg_mean_absolute_error, direction: maximize}
task:
  estimator: sklearn.linear_model.Ridge
  data: {path: data/rows.csv, target: y}
  cv: {kind: kfold, folds: 3}
  holdout: {fraction: 0.2}
  scoring: neg_mean_absolute_error
space: {ridge__alpha: {type: float, low: 0.01, high: 10, log: true}}
budget: {trials: 2}
executor: {kind: inline}
seed: 0
"""


def _objective(offset: int) -> str:
    return f"def objective(config, trial):\n    return {{'loss': (config['x'] - 1) ** 2 + {offset}}}\n"


def _rows(path: Path, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    lines = ["x1,x2,y", *(f"{a:.6f},{b:.6f},{2 * a - b + 0.1 * rng.normal():.6f}" for a, b in zip(x1, x2, strict=True))]
    path.write_text("\n".join(lines) + "\n")


def _tuned(root: Path, spec: str, name: str) -> Path:
    """A project folder ``root`` with spec ``name``.yaml (and its trial module, its data), tuned into
    ``root``/tunesmith.db in this process."""
    root.mkdir()
    (root / f"{name}.yaml").write_text(spec)
    (root / "obj.py").write_text(_objective(0))
    (root / "data").mkdir()
    _rows(root / "data" / "rows.csv", 80, seed=0)
    _rows(root / "new.csv", 40, seed=1)
    done = completed_in_process(root, "run", f"{name}.yaml", "-q")
    assert done.returncode == 0, done.stderr
    return root


def _tunesmith(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`tunesmith ARGS` from ``cwd`` as the console script runs it: -P keeps ``cwd`` off the import path, where
    ``python -m`` puts it (and would find the trial's module there whatever folder tunesmith looked in)."""
    return subprocess.run([sys.executable, "-P", "-m", "tunesmith.cli", *args], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, "COLUMNS": "200"}, timeout=120)


def test_a_moved_folder_reads_its_trial_code_where_it_is_now(tmp_path: Path) -> None:
    old = _tuned(tmp_path / "old", FUNCTION_SPEC, "fn")
    new = tmp_path / "new"
    shutil.move(old, new)
    proc = _tunesmith(new, "reproduce", "fn", "0")
    assert proc.returncode == 0, proc.stderr  # before: exit 2, "cannot import 'obj' ... searched ... /old"
    assert "reproduced: trial 0" in proc.stdout, proc.stdout
    assert f"the paths recorded under {old} are read under {new}" in proc.stderr, proc.stderr
    assert not old.exists()  # its trial folder went to the new place's workdir, not into a re-made old folder
    listed = completed_in_process(new, "trials", "fn", "--json")
    logs = [t["log_path"] for t in json.loads(listed.stdout)]
    assert logs and all(log.startswith(f"{new}{os.sep}") for log in logs), logs  # (a promotion's model is beside)


def test_a_copy_reads_its_own_code_and_data_not_the_original_folder_still_there(tmp_path: Path) -> None:
    original = _tuned(tmp_path / "original", FUNCTION_SPEC, "fn")
    (original / "ts.yaml").write_text(TASK_SPEC)
    assert completed_in_process(original, "run", "ts.yaml", "-q").returncode == 0
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    (original / "obj.py").write_text(_objective(100))        # the original moves on; the copy is what was tuned
    _rows(original / "data" / "rows.csv", 80, seed=2)
    trial_folders = sorted(p.name for p in (original / ".tunesmith").iterdir())
    proc = _tunesmith(copy, "reproduce", "fn", "0")
    assert proc.returncode == 0, proc.stdout + proc.stderr   # before: 1, "NOT reproduced" (the original's code)
    drift = completed_in_process(copy, "drift", "ts", "--data", "new.csv")
    assert drift.returncode in (0, 4), drift.stderr          # before: 2, the original's rows "no longer the data"
    assert "is no longer the data" not in drift.stderr
    assert sorted(p.name for p in (original / ".tunesmith").iterdir()) == trial_folders


def test_a_moved_data_file_that_changed_is_refused_naming_it(tmp_path: Path) -> None:
    """What is read at the new place is checked as at the old one: `drift` compares the task's data with the
    fingerprint recorded when the experiment started, and refuses rows that are no longer those."""
    old = _tuned(tmp_path / "old", TASK_SPEC, "ts")
    new = tmp_path / "new"
    shutil.move(old, new)
    _rows(new / "data" / "rows.csv", 80, seed=3)
    proc = _tunesmith(new, "drift", "ts", "--data", "new.csv")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith("error: ") and f"{new / 'data' / 'rows.csv'} is no longer the data" in error, error


def test_a_store_recorded_before_its_place_was_kept_is_taken_to_have_been_beside_the_spec(tmp_path: Path) -> None:
    """An experiment recorded by an earlier tunesmith has no ``store_path``: its spec's folder holding a store of
    this name that recorded it too makes this one a copy (and a spec's folder that is gone, a move)."""
    original = _tuned(tmp_path / "original", FUNCTION_SPEC, "fn")
    with sqlite3.connect(original / "tunesmith.db") as db:
        db.execute("UPDATE experiments SET attributes = json_remove(attributes, ?)", (f"$.{STORE_PATH}",))
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    (original / "obj.py").write_text(_objective(100))
    proc = _tunesmith(copy, "reproduce", "fn", "0")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "holds another store of this name (this one is a copy)" in proc.stderr, proc.stderr
    shutil.rmtree(original)
    moved = completed_in_process(copy, "reproduce", "fn", "1")
    assert moved.returncode == 0 and f"the spec's folder {original} recorded with it is gone" in moved.stderr, moved


def test_only_paths_under_the_old_folder_move() -> None:
    move = FolderMove("/work/proj", "/ci/run-7/proj")
    assert move.path("/work/proj") == "/ci/run-7/proj"
    assert move.path("/work/proj/data/rows.csv") == "/ci/run-7/proj/data/rows.csv"
    assert move.path("/work/project-b/rows.csv") == "/work/project-b/rows.csv"   # a sibling, not inside
    assert move.value({"path": "data/rows.csv", "env": {"D": "/work/proj/x.csv"}, "n": [1, "/data/shared.csv"]}) == {
        "path": "data/rows.csv", "env": {"D": "/ci/run-7/proj/x.csv"}, "n": [1, "/data/shared.csv"]}
    into = FolderMove("/work/proj", "/work/proj/backup")   # copied into a folder of its own
    assert into.path("/work/proj/backup/x.csv") == "/work/proj/backup/x.csv"
