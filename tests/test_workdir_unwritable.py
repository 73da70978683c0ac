"""A workdir where trial folders cannot be made: refused before anything is recorded (`run`, `resume`), and a
workdir that fails mid-run stops the run with its reason, every trial recorded in one state; via the real CLI.

"Cannot be made" is made for real: a folder with mode 0555 where the tests do not run as root; as root, whom
permissions do not bind (and who may not mount a read-only filesystem in every sandbox), a regular FILE where a
folder must be, so that mkdir fails with ENOTDIR. Either is what a read-only filesystem does to a run: the first
mkdir under it fails.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from helpers import one_error_line

AS_ROOT = os.geteuid() == 0


def make_unwritable(folder: Path) -> None:
    """No folder can be made in ``folder`` from now on (see the module's docstring); ``restore`` undoes it."""
    if AS_ROOT:
        folder.rename(folder.with_name(folder.name + ".away"))
        folder.write_text("a file where a folder must be\n")
    else:
        folder.chmod(0o555)


def restore(folder: Path) -> None:
    if AS_ROOT:
        folder.unlink()
        folder.with_name(folder.name + ".away").rename(folder)
    else:
        folder.chmod(0o755)


def _recorded(project: Any) -> tuple[list[str], int]:
    """The experiments' names and the number of events in the store (nothing at all where it was never created)."""
    if not project.db.exists():
        return [], 0
    with sqlite3.connect(project.db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "experiments" not in tables:
            return [], 0
        names = [r[0] for r in conn.execute("SELECT name FROM experiments")]
        return names, conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]


def test_run_refuses_a_workdir_it_cannot_write_before_recording_anything(project: Any) -> None:
    """`run` printed "Running ...", then a traceback (OSError from the first trial's mkdir), exit 1, and left the
    experiment failed with trial 0 running for ever."""
    ro = project.root / "ro"
    ro.mkdir()
    make_unwritable(ro)
    spec = project.write_spec(project.spec("ro-exp", workdir=str(ro / "runs")))
    line = one_error_line(project.cli("run", str(spec)), 2)
    assert line.startswith(f"workdir: trial folders cannot be made in {ro / 'runs'}: "), line
    assert line.endswith("set workdir: in the spec to a folder you can write"), line
    assert _recorded(project)[0] == [], "nothing is recorded"


def test_the_default_workdir_under_a_folder_that_cannot_be_written_says_run_from_another(project: Any) -> None:
    """The default workdir is .tunesmith/NAME under the current folder: run from a writable one, or set workdir:."""
    (project.root / ".tunesmith").write_text("not a folder\n")  # for root and others alike: ENOTDIR
    spec = project.write_spec(project.spec("ro-exp"))
    line = one_error_line(project.cli("run", str(spec)), 2)
    where = project.root / ".tunesmith" / "ro-exp"
    assert line.startswith(f"workdir: trial folders cannot be made in {where} (the default, .tunesmith/ro-exp under "
                           f"the current folder): {project.root / '.tunesmith'}: Not a directory; run from a folder "
                           "you can write, or set workdir: in the spec"), line
    assert _recorded(project)[0] == []


# trial 0 takes the workdir away from the trials after it (as a full disk or a changed permission would)
SABOTAGE = '''
import os, time
from pathlib import Path

def objective(config, trial):
    if trial.number == 0:
        workdir = Path(trial.workdir).parent
        if os.geteuid() == 0:
            workdir.rename(workdir.with_name(workdir.name + ".away"))
            workdir.write_text("a file where a folder must be")
        else:
            workdir.chmod(0o555)
    return config["x"]
'''


def test_a_workdir_that_fails_mid_run_stops_the_run_with_its_reason_and_leaves_no_trial_running(project: Any) -> None:
    """Trial 1's folder could not be made: a traceback, exit 1, trial 1 `running` for ever, and `show` with no
    stop_reason though the audit trail had one. Now the run stops as a store failure does: one line, exit 1; the
    trial recorded interrupted, which `resume` re-runs once the workdir takes folders again."""
    project.write("sabotage.py", SABOTAGE)
    spec = project.write_spec(project.spec("mid", budget={"trials": 3}, trial={"function": "sabotage:objective"},
                                           executor={"kind": "process", "workers": 1}))
    proc = project.cli("run", str(spec))
    workdir = project.root / ".tunesmith" / "mid"
    try:
        assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
        said = " ".join(proc.stderr.split())
        assert f"storage error: trial 1's folder could not be made in workdir {workdir}: " in said, said
        assert "the run stopped; its running trials are recorded interrupted: make the workdir take folders again " \
               "(free space, or fix its permissions), then resume the experiment" in said, said
        trials = {t["number"]: t for t in project.trials("mid")}
        assert [trials[n]["state"] for n in sorted(trials)] == ["completed", "interrupted"], trials
        assert trials[1]["error"] == "interrupted: its run stopped on an error before it finished"
        shown = project.show("mid")
        assert shown["status"] == "failed"
        assert shown["stop_reason"].startswith("stopped by an error: WorkdirError: trial 1's folder could not be made"
                                               ), shown
        # resume (from any folder: the workdir is recorded, absolute) met the same traceback
        before = _recorded(project)
        line = one_error_line(project.cli("resume", "mid"), 2)
        assert line.startswith(f"workdir: experiment 'mid' cannot be resumed: its trial folders go in its recorded "
                               f"workdir {workdir}, where none can be made: "), line
        assert line.endswith("make it writable, then try again"), line
        assert _recorded(project) == before, "nothing is recorded"
    finally:
        restore(workdir)
    project.cli("resume", "mid", "--quiet", check=True)
    states = sorted((t["number"], t["state"]) for t in project.trials("mid"))
    assert states == [(0, "completed"), (1, "completed"), (2, "completed")], states
