"""A store restored from a backup, or moved with its project, and resumed: via the real CLI, on real SQLite files.

The trial code checkpoints as README *Early stopping* says and records whether the checkpoint it loaded was its
own (``foreign``: saved by a trial with other parameters) and the step it started at.

- A backup taken while a run writes knows fewer trials than the workdir holds folders for: the run went on. Resumed,
  the restored store numbers its next trials as the original run did, and each one's first attempt loaded the
  checkpoint in the same-numbered folder (another configuration's) and recorded it as its own result (walk P #1).
- The store records the spec's folder and the workdir as absolute paths: moved elsewhere, `resume` failed "cannot
  import", and with the code put on PYTHONPATH made the old workdir anew, re-running trials from their start (#2).
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from helpers import one_error_line

TRAINER = '''
import os, signal, sqlite3

def objective(config, trial):
    state = trial.load_checkpoint()
    start, foreign = 0, 0.0
    if state is not None:
        start = state["step"] + 1
        foreign = float(state["x"] != config["x"])  # 1.0: saved by a trial with other parameters
    for step in range(start, 4):
        trial.save_checkpoint({"step": step, "x": config["x"]})
        trial.report(step, config["x"] + step)
        if step == 0 and trial.attempt == 1:
            during_step_0(trial)
    return {"loss": (config["x"] - 1) ** 2, "foreign": foreign, "started_at_step": start}
'''

# Trial 3 takes the nightly backup while the run writes to the store (it is recorded running, its first checkpoint
# saved), with Python's sqlite3 backup API, as README *Storage* says; the run then goes on to trial 7.
BACKUP_DURING_TRIAL_3 = '''
def during_step_0(trial):
    if trial.number == 3:
        with sqlite3.connect({db!r}) as live, sqlite3.connect({backup!r}) as copy:
            live.backup(copy)
'''

# Another run writing to the same workdir (a store restored elsewhere, another store's experiment): trial 0 leaves
# a folder for trial 2, with a checkpoint of other parameters.
FOREIGN_FOLDER_MID_RUN = '''
def during_step_0(trial):
    if trial.number == 0:
        theirs = trial.workdir.parent / "trial-00002" / "checkpoint"
        theirs.mkdir(parents=True)
        (theirs / "state.json").write_text('{"step": 1, "x": 99.0}')
'''

# The coordinator killed while trial 1 runs (inline: the trial runs in it), its first checkpoint saved.
KILLED_DURING_TRIAL_1 = '''
def during_step_0(trial):
    if trial.number == 1:
        os.kill(os.getpid(), signal.SIGKILL)
'''


def _write_project(root: Path, during: str, **spec: Any) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "ck.py").write_text(TRAINER + textwrap.dedent(during))
    fields = {"budget": "{trials: 8}", "executor": "{kind: process, workers: 1}", **spec}
    (root / "ck.yaml").write_text(textwrap.dedent("""\
        name: ck
        objective: {metric: loss, direction: minimize}
        space:
          x: {type: float, low: -5, high: 5}
        strategy: random
        trial: {function: "ck:objective"}
        seed: 3
        """) + "".join(f"{k}: {v}\n" for k, v in fields.items()))


def _cli(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`tunesmith ARGS` in ``cwd``, on the store ``cwd/tunesmith.db``; as the `tunesmith` script runs (``-P``: the
    current folder is not on the Python path, as ``-m`` would put it)."""
    full_env = {**os.environ, "TUNESMITH_STORAGE": f"sqlite:///{cwd / 'tunesmith.db'}", "COLUMNS": "200",
                **(env or {})}
    return subprocess.run([sys.executable, "-P", "-m", "tunesmith.cli", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=300)


def _trials(db: Path) -> dict[int, dict[str, Any]]:
    """Each trial's state, attempts and the metrics the trial code records, read from the store itself."""
    import json

    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT t.number, t.state, t.attempts, t.metrics FROM trials t JOIN experiments e "
                            "ON e.id = t.experiment_id WHERE e.name = 'ck'").fetchall()
    return {n: {"state": s, "attempts": a, **json.loads(m or "{}")} for n, s, a, m in rows}


def _shell(command: str, cwd: Path) -> None:
    subprocess.run(["bash", "-c", command], cwd=cwd, check=True)


def _events(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]


def test_a_restored_backup_refuses_to_resume_into_folders_of_trials_it_lacks_until_they_are_moved_aside(
        tmp_path: Path) -> None:
    """The run goes on past the nightly backup to trials 4-7; restored and resumed, the store's trials 4-7 would be
    new configurations in the original run's folders 4-7. Before the fix the resume exited 0 and every one of them
    recorded the original trial's checkpoint as its own (foreign 1.0, started at step 4, no training)."""
    root = tmp_path / "proj"
    db, nightly = root / "tunesmith.db", root / "nightly.db"
    _write_project(root, BACKUP_DURING_TRIAL_3.format(db=str(db), backup=str(nightly)))
    ran = _cli(root, "run", "ck.yaml", "-q")
    assert ran.returncode == 0, ran.stderr
    assert sorted(_trials(nightly)) == [0, 1, 2, 3] and _trials(nightly)[3]["state"] == "running"

    db.rename(root / "broken.db")  # the store is lost; last night's backup is restored
    for extra in ("tunesmith.db-wal", "tunesmith.db-shm"):
        (root / extra).unlink(missing_ok=True)
    shutil.copy(nightly, db)
    events = _events(db)

    workdir = root / ".tunesmith" / "ck"
    line = one_error_line(_cli(root, "resume", "ck", "-q"), 2)
    assert line.startswith(f"workdir: {workdir} holds 4 trial folder(s) of trials this store does not have "
                           "(trial-00004, trial-00005, trial-00006, and 1 more; experiment 'ck' has trials 0 to 3 "
                           "here), left by a run it does not know of: "), line
    assert "the next trials would take their checkpoints and logs as their own: move them aside" in line, line
    assert sorted(_trials(db)) == [0, 1, 2, 3] and _events(db) == events, "nothing was recorded"

    _shell(line.split("then resume again: ")[1], root)  # the command the message gives, as it is
    assert sorted(p.name for p in workdir.glob("trial-*")) == [f"trial-{n:05d}" for n in range(4)]
    resumed = _cli(root, "resume", "ck", "-q")
    assert resumed.returncode == 0, resumed.stderr
    trials = _trials(db)
    assert sorted(trials) == list(range(8)) and {t["state"] for t in trials.values()} == {"completed"}
    assert [n for n, t in trials.items() if t["foreign"]] == [], trials
    assert trials[3]["attempts"] == 2 and trials[3]["started_at_step"] == 4, "the lost trial 3: its own checkpoint"
    assert all(trials[n]["started_at_step"] == 0 for n in range(4, 8)), trials


def test_a_first_attempt_does_not_take_a_folder_another_run_made_mid_run(tmp_path: Path) -> None:
    """Checked at the start, a workdir can still take another run's folders while this one runs (the original run
    still writing after its store was restored elsewhere): trial 2's first attempt finds one there. The run stops
    instead of training trial 2 from that checkpoint; moved aside as the message says, trial 2 runs afresh."""
    root = tmp_path / "proj"
    _write_project(root, FOREIGN_FOLDER_MID_RUN, budget="{trials: 4}", executor="{kind: inline}")
    folder = root / ".tunesmith" / "ck" / "trial-00002"
    proc = _cli(root, "run", "ck.yaml", "-q")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    said = proc.stderr
    assert f"storage error: trial 2's folder {folder} is there already, left by a trial this store does not have " in \
        said, said
    assert "the run stopped rather than have trial 2 take its checkpoint and log as its own" in said, said
    trials = _trials(root / "tunesmith.db")
    assert {n: t["state"] for n, t in trials.items()} == {0: "completed", 1: "completed", 2: "interrupted"}

    move = re.search(r"move the folder aside \((mkdir .*?/)\)", said)
    assert move is not None, said
    _shell(move.group(1), root)
    resumed = _cli(root, "resume", "ck", "-q")
    assert resumed.returncode == 0, resumed.stderr
    trials = _trials(root / "tunesmith.db")
    assert sorted(trials) == [0, 1, 2, 3] and [n for n, t in trials.items() if t["foreign"]] == [], trials
    assert trials[2]["started_at_step"] == 0, trials


def test_a_moved_project_is_refused_naming_the_link_that_puts_it_back(tmp_path: Path) -> None:
    """Moved (a restore elsewhere, another machine), the project's store names its old folder. Before the fix:
    'cannot import' with no way out, and with the code on PYTHONPATH the resume made the old workdir anew and re-ran
    the killed trial 1 from step 0. Now both are refused, naming the link; linked, trial 1 goes on from its
    checkpoint."""
    old, new = tmp_path / "projA", tmp_path / "projB"
    _write_project(old, KILLED_DURING_TRIAL_1, budget="{trials: 3}", executor="{kind: inline}")
    killed = _cli(old, "run", "ck.yaml", "-q")
    assert killed.returncode == -9, killed.stderr
    old.rename(new)

    for env in ({}, {"PYTHONPATH": os.pathsep.join([str(new), os.environ.get("PYTHONPATH", "")])}):
        line = one_error_line(_cli(new, "resume", "ck", "-q", env=env), 2)
        assert line == (f"workdir: experiment 'ck' cannot be resumed: its trial folders are in its recorded workdir "
                        f"{old / '.tunesmith' / 'ck'}, in its spec's folder, and the spec's folder {old} no longer "
                        "exists: the project, or its store, was moved or restored elsewhere, and a store keeps an "
                        "experiment's spec folder and workdir as the absolute paths it ran at; put the project back "
                        f"at {old}, or link it there from where it is now: ln -s {new} {old}"), line
        assert not old.exists(), "the old workdir is not made anew"

    _shell(line.rpartition("from where it is now: ")[2], new)
    resumed = _cli(new, "resume", "ck", "-q")
    assert resumed.returncode == 0, resumed.stderr
    trials = _trials(new / "tunesmith.db")
    assert {t["state"] for t in trials.values()} == {"completed"} and len(trials) == 3, trials
    assert trials[1]["attempts"] == 2 and trials[1]["started_at_step"] == 1 and not trials[1]["foreign"], trials


def test_cannot_import_says_the_spec_folder_is_gone(tmp_path: Path) -> None:
    """A workdir outside the project (so the trial folders stayed): the trial code is what is missing, and the
    'cannot import' error says why (before the fix it named the old folder as searched, as if it were there)."""
    old, new, runs = tmp_path / "projA", tmp_path / "projB", tmp_path / "runs"
    _write_project(old, KILLED_DURING_TRIAL_1, budget="{trials: 3}", executor="{kind: inline}", workdir=str(runs))
    assert _cli(old, "run", "ck.yaml", "-q").returncode == -9
    old.rename(new)
    line = one_error_line(_cli(new, "resume", "ck", "-q"), 2)
    assert line.startswith("trial.function: cannot import 'ck': No module named 'ck' (searched the Python path; the "
                           f"spec's folder {old} no longer exists: the project, or its store, was moved or restored "
                           "elsewhere"), line
    assert line.endswith(f"put the project back at {old}, or link it there from where it is now: ln -s {new} {old})"), \
        line


def test_the_folders_a_run_makes_are_those_the_workdir_checks_find(project: Any) -> None:
    """A trial's folder is named once (``TRIAL_FOLDER``): the runner's name for it, the glob that finds trial folders
    in a workdir and the pattern that reads their numbers were three spellings, and a folder one made but the others
    missed would let a resumed or new run take another trial's checkpoint as its own."""
    from tunesmith import api
    from tunesmith.evaluation.context import TRIAL_FOLDER, numbered_trial_folders, trial_folders

    workdir = project.root / "runs"
    result = api.run(project.spec("named", budget={"trials": 3}, executor={"kind": "inline"}, workdir=str(workdir)),
                     storage=project.storage)
    made = {t.number: Path(t.log_path or "").parent for t in result.trials}
    assert {n: folder.parent for n, folder in made.items()} == {n: workdir for n in range(3)}
    assert numbered_trial_folders(str(workdir)) == {n: folder.name for n, folder in made.items()}
    (workdir / TRIAL_FOLDER.format(number=123456)).mkdir()  # past the padding: still found, by its number
    assert numbered_trial_folders(str(workdir))[123456] == "trial-123456"
    assert trial_folders(str(workdir)) == sorted(TRIAL_FOLDER.format(number=n) for n in (0, 1, 2, 123456))
