"""`tunesmith reproduce`: a recorded trial re-run with its params and seed, compared within a tolerance."""

from __future__ import annotations

import pytest

import tunesmith
from tunesmith.clock import SystemClock
from tunesmith.errors import UserInputError
from tunesmith.storage.sql import SQLStore

NOISY = '''
import os

def noisy(config, trial):
    return config["x"] + int.from_bytes(os.urandom(4), "little") / 2**32   # ignores its seed

def seeded(config, trial):
    import random
    return config["x"] + random.Random(trial.seed).random()
'''


def test_a_seeded_trial_reproduces_and_an_unseeded_one_does_not(project):
    from tunesmith.reproduce import reproduce

    project.write("noise.py", NOISY)
    for name, fn in (("seeded", "seeded"), ("noisy", "noisy")):
        tunesmith.run(project.write_spec(project.spec(name, trial={"function": f"noise:{fn}"},
                                                      executor={"kind": "inline"}, budget={"trials": 2})),
                      storage=project.storage)
    store = SQLStore(project.storage, create=False)
    ok = reproduce(store, "seeded", 1, SystemClock())
    assert ok.matched and ok.error is None and ok.index == (1, 1)
    assert ok.reproduced == ok.recorded and ok.differences == ()
    bad = reproduce(store, "noisy", 0, SystemClock())
    assert not bad.matched and bad.reproduced is not None and bad.index == (0, 1)
    assert bad.reproduced["loss"] != bad.recorded["loss"]
    loose = reproduce(store, "noisy", 0, SystemClock(), rtol=10.0)  # within a 1000% tolerance it "matches"
    assert loose.matched and loose.index == (1, 2)
    events = [e for e in store.events(store.experiment("noisy").id) if e.kind == "trial_reproduced"]
    assert [e.payload["matched"] for e in events] == [False, True] and events[0].payload["actor"]["user"]
    # the original trial's record is untouched
    assert store.trials(store.experiment("noisy").id, [0])[0].values[0] == bad.recorded["loss"]
    # a number no store column can hold is no trial, not SQLite's OverflowError as a traceback
    with pytest.raises(UserInputError, match=f"has no trial {10**23}"):
        reproduce(store, "seeded", 10**23, SystemClock())


def test_reproduce_cli_in_worker_processes_names_what_changed(project):
    tunesmith.run(project.write_spec(project.spec("proc", budget={"trials": 2})), storage=project.storage)
    store = SQLStore(project.storage, create=False)
    exp = store.experiment("proc")
    env = dict(exp.attributes["environment"])
    env["packages"] = {**env["packages"], "numpy": "0.0.1"}     # as if recorded with another numpy
    store.set_attributes(exp.id, {"environment": env}, exp.updated_at)
    proc = project.cli("reproduce", "proc", "1")
    assert proc.returncode == 0, proc.stderr
    assert "reproduced: trial 1" in proc.stdout and "1/1 reproduced trials matched" in proc.stdout
    assert "package numpy: 0.0.1 then" in proc.stderr
    shown = project.show("proc")
    assert shown["reproducibility"] == {"matched": 1, "reproduced": 1, "index": 1.0}
    proc = project.cli("reproduce", "proc", "7")
    assert proc.returncode == 2 and "no trial 7" in proc.stderr


def test_a_task_timing_objective_is_shown_not_compared(project):
    """A task tuned for roc_auc and latency_p95_ms never reproduced: the latency, a measured time, is another number
    on every run (29.8 ms then, 11.3 now), so `reproduce` failed with roc_auc identical and `show` then gave an
    index of 0%. The deterministic objective is still compared exactly; the timing is shown and named as not
    compared."""
    spec = project.spec("timed", objective=[{"metric": "roc_auc", "direction": "maximize"},
                                            {"metric": "latency_p95_ms", "direction": "minimize"}],
                        task={"estimator": "sklearn.linear_model.LogisticRegression", "data": {"sklearn": "breast_cancer"},
                              "pipeline": ["sklearn.preprocessing.StandardScaler"], "cv": {"kind": "stratified", "folds": 2},
                              "scoring": "roc_auc", "holdout": None},
                        space={"logisticregression__C": {"type": "float", "low": 0.01, "high": 10, "log": True}},
                        budget={"trials": 1}, executor={"kind": "inline"})  # no worker to import scikit-learn
    spec.pop("trial", None)
    tunesmith.run(project.write_spec(spec), storage=project.storage)
    proc = project.cli("reproduce", "timed", "0")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = " ".join(proc.stdout.split())
    assert "reproduced: trial 0" in text and "latency_p95_ms not compared: measured times vary from run to run" in text
    store = SQLStore(project.storage, create=False)
    event = next(e for e in store.events(store.experiment("timed").id) if e.kind == "trial_reproduced")
    recorded, reproduced = event.payload["recorded"], event.payload["reproduced"]
    assert reproduced["roc_auc"] == recorded["roc_auc"]          # compared, exactly as before
    assert reproduced["latency_p95_ms"] != recorded["latency_p95_ms"]  # the timing moved, and did not matter
    assert event.payload["matched"] is True and event.payload["not_compared"] == ["latency_p95_ms"]
    assert project.show("timed")["reproducibility"]["index"] == 1.0


def test_a_tolerance_that_is_no_finite_number_is_refused_and_nothing_recorded(project):
    """`--rtol inf` (or 1e999) made every result "match", and `nan` was taken too: each went into the stored
    reproducibility index as a match."""
    from helpers import cli_in_process

    tunesmith.run(project.write_spec(project.spec("inf", executor={"kind": "inline"}, budget={"trials": 1})),
                  storage=project.storage)
    for rtol, said in (("inf", "inf"), ("1e999", "inf"), ("nan", "nan")):
        code, out, err = cli_in_process("reproduce", "inf", "0", "--rtol", rtol, "--storage", project.storage)
        assert (code, out, err.splitlines()) == (2, "", [
            f"error: --rtol must be a finite number >= 0 (a relative tolerance, such as 1e-6); got {said}"])
    store = SQLStore(project.storage, create=False)
    assert not [e for e in store.events(store.experiment("inf").id) if e.kind == "trial_reproduced"]


def test_an_edited_interactive_function_is_said_on_resume_and_listed_by_reproduce_trial(tmp_path, monkeypatch,
                                                                                        capsys):
    """A notebook's objective edited and the cell run again: the 'already exists' hint's resume(trial=objective)
    mixed two objectives in one experiment, silently, and reproduce_trial said matched=False with no difference
    listed. The record keeps a digest of the function's source; a resume with other code warns, and
    reproduce_trial lists it."""
    import tunesmith

    monkeypatch.chdir(tmp_path)

    def objective(config, trial):
        return (config["x"] - 0.3) ** 2

    def spec(n):
        return {"name": "rerun", "objective": {"metric": "loss", "direction": "minimize"},
                "space": {"x": {"type": "float", "low": 0, "high": 1}}, "trial": objective, "budget": {"trials": n},
                "seed": 0}

    tunesmith.run(spec(2))
    tunesmith.resume("rerun", trial=objective, trials=3)  # the same code: nothing said
    assert "changed" not in capsys.readouterr().err
    assert tunesmith.reproduce_trial("rerun", 0, trial=objective).differences == ()

    def objective(config, trial):  # noqa: F811  (the user edits the cell and runs it again)
        return (config["x"] - 0.7) ** 2

    with pytest.raises(tunesmith.ExperimentExists) as exists:  # the cell run again: its hint says so too
        tunesmith.run(spec(3))
    assert ("the spec another name (its `name`). The trial function 'objective' has changed since the experiment ran (its source differs "
            "from the one recorded): a resume scores its new trials with this code") in str(exists.value), exists.value
    tunesmith.resume("rerun", trial=objective, trials=4)
    said = " ".join(capsys.readouterr().err.split())
    assert "the trial function 'objective' has changed since the experiment ran" in said, said
    outcome = tunesmith.reproduce_trial("rerun", 0, trial=objective)
    assert not outcome.matched
    assert [d for d in outcome.differences if d.startswith("code:")] == [
        "code: the trial function 'objective' has changed since the experiment ran (its source differs from the "
        "one recorded)"], outcome.differences
