"""The shortest path a user takes: write a spec, run it, read the results."""

from __future__ import annotations

import json

from helpers import tune_in_process


def _fine_and_doomed(project, fine_trials, doomed_trials):
    """Set-up for the listing tests (what they are about is `ls`/`show`): `fine` (every trial completed) and
    `doomed` (every trial raised) recorded and run in this process, inline (the `run` subprocess and its exit 1 for
    such a run are test_run_show_trials' and test_every_trial_failing_exits_1_with_a_pointer_to_the_reasons')."""
    inline = {"kind": "inline"}
    tune_in_process(project.write_spec(project.spec(name="fine", executor=inline, budget={"trials": fine_trials})),
                    project.db)
    doomed = project.spec(name="doomed", trial={"function": "objectives:raises"}, executor=inline,
                          budget={"trials": doomed_trials})
    tune_in_process(project.write_spec(doomed, "doomed.yaml"), project.db)


def test_run_show_trials(project):
    spec = project.write_spec(project.spec())
    proc = project.cli("run", str(spec))
    assert proc.returncode == 0, proc.stderr
    shown = project.show("exp")
    assert shown["status"] == "completed"
    assert shown["trials"]["completed"] == 6
    trials = project.trials("exp")
    assert [t["number"] for t in trials] == list(range(6))
    best = min(trials, key=lambda t: t["values"]["loss"])
    assert shown["best"]["number"] == best["number"]
    assert abs(best["values"]["loss"] - (best["params"]["x"] - 0.3) ** 2) < 1e-12


def test_every_trial_failing_exits_1_with_a_pointer_to_the_reasons(project):
    spec = project.write_spec(project.spec(name="doomed", trial={"function": "objectives:raises"},
                                           budget={"trials": 3}))
    proc = project.cli("run", str(spec), "--quiet")
    assert proc.returncode == 1
    assert "Every trial failed (3)" in proc.stderr and "tunesmith trials doomed" in proc.stderr
    assert "the last: exception: ValueError: bad config" in proc.stderr, "--quiet: this line is the only why"
    assert "Traceback" not in proc.stdout + proc.stderr
    assert project.show("doomed")["trials"]["failed"] == 3


def test_exported_names_are_the_documented_api():
    import tunesmith

    for name in tunesmith.__all__:
        assert getattr(tunesmith, name) is not None, name
    assert {"ExperimentSpec", "Float", "Int", "Categorical", "run", "resume", "reproduce_trial", "open_experiment",
            "TrialContext", "TrialPruned", "SpecError", "TunesmithError"} <= set(tunesmith.__all__)


def test_ls_counts_every_experiments_trials_by_state(project):
    _fine_and_doomed(project, 4, 3)
    listed = {r["name"]: r for r in json.loads(project.cli("ls", "--json", check=True).stdout)}
    assert {n: (r["status"], r["trials"], r["completed"], r["failed"]) for n, r in listed.items()} == {
        "fine": ("completed", 4, 4, 0), "doomed": ("completed", 3, 0, 3)}  # the run ended: its budget was spent
    table = project.cli("ls", check=True).stdout
    assert "fine" in table and "doomed" in table


def test_ls_and_show_say_every_trial_failed_in_the_state(project):
    """`ls` listed a run whose trials all failed as a plain `completed` (4 trials, 0 completed, 4 failed); the
    runner records it completed (it ran to its budget) and `run` exits 1: both listings now say it, in one word."""
    _fine_and_doomed(project, 2, 2)
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip()
            for line in project.cli("ls", check=True).stdout.splitlines() if "│" in line}
    assert rows == {"fine": "completed", "doomed": "completed (every trial failed)"}, rows
    listed = {r["name"]: r for r in json.loads(project.cli("ls", "--json", check=True).stdout)}
    assert listed["doomed"]["status"] == "completed", "the recorded status stays"
    assert listed["doomed"]["status_said"] == "completed (every trial failed)" and "status_said" not in listed["fine"]
    assert project.show("doomed")["status_said"] == "completed (every trial failed)"
    shown = project.cli("show", "doomed", check=True).stdout
    assert shown.startswith("doomed: completed (every trial failed); strategy"), shown
