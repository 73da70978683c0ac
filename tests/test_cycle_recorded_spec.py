"""`tunesmith cycle spec.yaml` on an experiment already recorded with that very spec loads it as a recorded spec is
loaded (as `show` and `resume` do): the checks meant for a spec given anew (an unquoted ${x} in a command, added
after the experiment was recorded) refused it, so it could be cycled only by name. A spec file naming no recorded
experiment is still checked as a new one."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tunesmith.runner import run_experiment
from tunesmith.spec.loader import spec_from_dict
from tunesmith.storage.sql import SQLStore
from tunesmith.testing.drift_data import shifted_split

# `${x}` renders `$0.3...`, which the shell expands: refused in a spec given anew, recorded by an earlier tunesmith
SPEC = {"name": "cmd", "objective": {"metric": "loss", "direction": "minimize"},
        "trial": {"command": "echo ${x}; echo '{\"loss\": 0.5}'"},
        "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
        "budget": {"trials": 1}, "executor": {"kind": "process", "workers": 1}, "seed": 0}


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tunesmith.cli", *args], cwd=cwd, capture_output=True, text=True,
                          check=False, timeout=240, env={**os.environ, "TUNESMITH_STORAGE": f"sqlite:///{cwd / 'tunesmith.db'}"})


def _in_process(*args: str) -> subprocess.CompletedProcess[str]:
    from tests.helpers import completed_in_process

    return completed_in_process(Path.cwd(), *args)


@pytest.mark.slow
def test_a_spec_file_of_a_recorded_experiment_is_cycled_as_recorded(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shifted_split(tmp_path)
    (tmp_path / "cmd.yaml").write_text(yaml.safe_dump(SPEC))
    store = SQLStore(f"sqlite:///{tmp_path / 'tunesmith.db'}")
    run_experiment(spec_from_dict({**SPEC, "base_dir": str(tmp_path)}), store)   # as an earlier tunesmith did

    by_file = _cli(tmp_path, "cycle", "cmd.yaml", "--data", "reference.csv", "--reference", "reference.csv",
                   "--json")
    assert by_file.returncode == 0, by_file.stderr
    report = json.loads(by_file.stdout)
    assert report["outcome"] == "no_drift" and report["steps"][0]["status"] == "skipped", report

    (tmp_path / "cmd.yaml").write_text(yaml.safe_dump({**SPEC, "budget": {"trials": 2}}))
    # the refusals in this process (the CLI's own main; the cycle above was the real CLI): two start-ups fewer
    monkeypatch.setenv("TUNESMITH_STORAGE", f"sqlite:///{tmp_path / 'tunesmith.db'}")
    edited = _in_process("cycle", "cmd.yaml", "--data", "reference.csv", "--reference", "reference.csv")
    assert edited.returncode == 2 and "budget.trials differs from the recorded experiment" in edited.stderr, \
        edited.stderr

    (tmp_path / "new.yaml").write_text(yaml.safe_dump({**SPEC, "name": "cmd-new"}))
    new = _in_process("cycle", "new.yaml", "--data", "reference.csv", "--reference", "reference.csv")
    assert new.returncode == 2 and "trial.command" in new.stderr and "${x}" in new.stderr, new.stderr
    assert "Traceback" not in new.stderr + edited.stderr
    assert [e.name for e in store.experiments()] == ["cmd"]


@pytest.mark.slow
def test_a_recorded_when_on_a_float_does_not_stop_a_cycle_on_its_spec_file(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from tunesmith.cycle import CycleOutcome, run_cycle
    from tunesmith.errors import SpaceError

    monkeypatch.chdir(tmp_path)
    shifted_split(tmp_path)
    (tmp_path / "w_objective.py").write_text("def f(config, trial):\n    return {'loss': config['x']}\n")
    spec = {"name": "w", "objective": {"metric": "loss", "direction": "minimize"},
            "trial": {"function": "w_objective:f"},
            "space": {"x": {"type": "float", "low": 0.0, "high": 1.0},
                      "y": {"type": "int", "low": 1, "high": 3, "when": {"x": 0.5}}},
            "budget": {"trials": 1}, "executor": {"kind": "inline"}, "seed": 0}
    (tmp_path / "w.yaml").write_text(yaml.safe_dump(spec))
    store = SQLStore(f"sqlite:///{tmp_path / 'tunesmith.db'}")
    run_experiment(spec_from_dict({**spec, "base_dir": str(tmp_path)}), store)
    report = run_cycle(store, "w.yaml", "reference.csv", reference="reference.csv")
    assert report.outcome is CycleOutcome.NO_DRIFT, report.to_json()
    (tmp_path / "w2.yaml").write_text(yaml.safe_dump({**spec, "name": "w2"}))
    with pytest.raises(SpaceError, match=r"space\.y\.when\.x"):
        run_cycle(store, "w2.yaml", "reference.csv", reference="reference.csv")


def test_a_new_spec_refused_by_a_first_cycle_leaves_no_store_behind(tmp_path: Path) -> None:
    """The new-spec checks moved after the store was opened (to excuse a recorded experiment's spec), so a first
    `cycle new.yaml` with an unquoted ${x} created tunesmith.db, empty of experiments, before refusing the spec."""
    shifted_split(tmp_path)
    (tmp_path / "new.yaml").write_text(yaml.safe_dump({**SPEC, "name": "cmd-new"}))
    new = _cli(tmp_path, "cycle", "new.yaml", "--data", "reference.csv", "--reference", "reference.csv")
    assert new.returncode == 2 and "trial.command" in new.stderr and "${x}" in new.stderr, new.stderr
    assert not (tmp_path / "tunesmith.db").exists()


def test_a_new_spec_refused_with_an_unreachable_store_names_the_spec_not_the_store(tmp_path: Path) -> None:
    """A bad new spec looked for its experiment in the store (which would excuse it) and let any error opening the
    store other than "no store" replace the spec's: the unreachable server was reported, not the `${x}` to fix."""
    shifted_split(tmp_path)
    (tmp_path / "new.yaml").write_text(yaml.safe_dump({**SPEC, "name": "cmd-new"}))
    new = _cli(tmp_path, "cycle", "new.yaml", "--data", "reference.csv", "--reference", "reference.csv",
               "--storage", "postgresql+psycopg://postgres@127.0.0.1:1/tunesmith")   # nothing listens on port 1
    assert new.returncode == 2 and "trial.command" in new.stderr and "${x}" in new.stderr, new.stderr
    assert "Traceback" not in new.stderr and "127.0.0.1" not in new.stderr, new.stderr


def _open_files_named(path: Path) -> list[str]:
    """This process's descriptors open on ``path`` (Linux: /proc/self/fd)."""
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                out.append(fd)
        except OSError:
            pass   # closed since listed (listdir's own descriptor)
    return out


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads /proc/self/fd")
def test_a_new_spec_refused_by_a_cycle_leaves_the_store_it_looked_in_closed(tmp_path: Path) -> None:
    """The store opened to look for the refused spec's experiment was never closed: its SQLite file stayed open in
    the process (a connection in a pool nobody disposed) after the error."""
    from tunesmith.cycle import cycle_command
    from tunesmith.errors import SpecError

    shifted_split(tmp_path)
    db = tmp_path / "tunesmith.db"
    made = SQLStore(f"sqlite:///{db}")
    assert not made.experiment_names()   # a store recording no experiment: the new spec's checks apply
    made.close()
    (tmp_path / "new.yaml").write_text(yaml.safe_dump({**SPEC, "name": "cmd-new"}))
    assert _open_files_named(db) == []
    gc.collect()
    gc.disable()   # an engine left open is in a reference cycle: closed at the next collection, whenever that runs
    try:
        with pytest.raises(SpecError, match=r"\$\{x\}"):
            cycle_command(f"sqlite:///{db}", str(tmp_path / "new.yaml"), str(tmp_path / "reference.csv"),
                          reference=str(tmp_path / "reference.csv"))
        assert _open_files_named(db) == []
    finally:
        gc.enable()


_CYCLE = ("--data", "reference.csv", "--reference", "reference.csv")


def _budgets_recorded_and_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  budgets: list[tuple[str, dict, dict]]) -> SQLStore:
    """In ``tmp_path`` (the current folder, its store the default): for each (name, recorded, written), experiment
    NAME run with the ``recorded`` budget and NAME.yaml holding the ``written`` one; the store, open."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TUNESMITH_STORAGE", f"sqlite:///{tmp_path / 'tunesmith.db'}")
    shifted_split(tmp_path)
    spec = {**SPEC, "trial": {"command": "echo '{\"loss\": 0.5}'"}}
    store = SQLStore(f"sqlite:///{tmp_path / 'tunesmith.db'}")
    for name, recorded, written in budgets:
        run_experiment(spec_from_dict({**spec, "name": name, "budget": recorded, "base_dir": str(tmp_path)}), store)
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump({**spec, "name": name, "budget": written}))
    return store


@pytest.mark.slow
def test_a_cycle_takes_its_spec_file_after_resume_raised_the_budget_or_an_upgrade_left_trials_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After `resume cmd --trials 2`, `cycle cmd.yaml` (and `watch`) refused the very file it was started with:
    budget.trials 2 -> 1 (review D, item 5); the file is no edit where its budget is below one raised by resume.
    A file with `budget: {wall_time: ...}` alone, recorded when that meant 100 trials, read `trials: null` after
    the upgrade and was refused as well (item 6): a file that leaves the trials out takes the recorded ones. A
    budget written lower than a recorded one never raised is still an edit."""
    from tunesmith.clock import SystemClock
    from tunesmith.raised_budget import raise_budget_to_resume

    store = _budgets_recorded_and_written(tmp_path, monkeypatch, [
        ("raised", {"trials": 1}, {"trials": 1}),
        ("timed", {"wall_time": "1h", "trials": 100}, {"wall_time": "1h"}),
        ("lowered", {"trials": 2}, {"trials": 1})])
    try:
        raise_budget_to_resume(store, store.url, "raised", 2, SystemClock())
        for name in ("timed", "raised"):
            taken = _in_process("cycle", f"{name}.yaml", *_CYCLE)
            assert taken.returncode == 0, taken.stderr
        assert _in_process("diff", "timed", "timed.yaml").stdout.startswith("no differences")
        lowered = _in_process("cycle", "lowered.yaml", *_CYCLE)
        assert lowered.returncode == 2 and "budget.trials differs from the recorded experiment" in lowered.stderr, \
            lowered.stderr
    finally:
        store.close()


@pytest.mark.slow
def test_a_cycle_takes_its_spec_file_after_resume_raised_the_wall_time_and_refuses_another_lower_budget(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After `resume NAME --wall-time 2h`, `cycle NAME.yaml` refused the file it was started with (budget.wall_time
    differs), as `run` of it said (review E, item 4); and once any raise was recorded, any lower budget.trials
    passed unseen: only the value before the first raise is the file's own (item 5)."""
    from tunesmith.clock import SystemClock
    from tunesmith.raised_budget import raise_budget_to_resume, raise_recorded_budget

    store = _budgets_recorded_and_written(tmp_path, monkeypatch, [
        ("walled", {"wall_time": "1h", "trials": 1}, {"wall_time": "1h", "trials": 1}),
        ("edited", {"trials": 2}, {"trials": 1})])
    try:
        # the raise as `resume walled --wall-time 2h` records it (the resume itself refuses more time alone for
        # an experiment its trial budget stopped, as this one is: the record, not that refusal, is the subject)
        raise_recorded_budget(store, store.experiment("walled"), None, 7200.0, SystemClock())
        raise_budget_to_resume(store, store.url, "edited", 4, SystemClock())
        edited = _in_process("cycle", "edited.yaml", *_CYCLE)
        assert edited.returncode == 2 and "budget.trials differs from the recorded experiment" in edited.stderr, \
            edited.stderr
        again = _in_process("run", "walled.yaml")  # the experiment exists; its file's wall_time is no difference
        assert again.returncode != 0 and "budget.wall_time" not in again.stderr, again.stderr
        taken = _in_process("cycle", "walled.yaml", *_CYCLE)
        assert taken.returncode == 0, taken.stderr
    finally:
        store.close()


def test_the_edits_of_a_recorded_spec_leave_out_only_its_own_raised_budgets(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """`cycle SPEC` and `run SPEC` each put the raised budgets and the differences together the same way (review
    engine, item 2): one helper gives the edits, from the experiment's own ``budget_raised`` events only; another
    experiment's raise from the same value leaves the file's budget an edit."""
    from tunesmith.clock import SystemClock
    from tunesmith.raised_budget import edits_of_recorded_spec, raise_budget_to_resume
    from tunesmith.spec.loader import read_spec_file

    store = _budgets_recorded_and_written(tmp_path, monkeypatch, [
        ("raised", {"trials": 1}, {"trials": 1}), ("kept", {"trials": 2}, {"trials": 1})])
    try:
        raise_budget_to_resume(store, store.url, "raised", 3, SystemClock())
        raise_budget_to_resume(store, store.url, "kept", 4, SystemClock())  # from 2: the file's 1 is still an edit
        for name, edits in (("raised", []), ("kept", ["budget.trials"])):
            experiment = store.experiment(name)
            recorded = spec_from_dict(experiment.spec)
            written = read_spec_file(str(tmp_path / f"{name}.yaml"))
            found = edits_of_recorded_spec(store, experiment, recorded, written)
            assert [d.path for d in found] == edits, (name, found)
    finally:
        store.close()
