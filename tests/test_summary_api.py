"""`ExperimentResult.summary()` is what `tunesmith show NAME --json` prints (README, Python API), field for field.

`show` added ``stop_reason``, ``data_fingerprints`` (and ``abandoned``, ``quota_wait``, ``reproducibility``, the
scheduler's evidence) after building the summary the API returned; the API lacked them, and
``open_experiment(...).stop_reason`` was None. Both now come from one function (summary.shown_experiment).
"""

from __future__ import annotations

import json

from test_task_runs import _run_on_csv_then_drop_five_rows

import tunesmith
from tunesmith.json_output import strict_json


def _as_show_prints(summary: dict) -> dict:
    """``summary`` through the JSON encoding `show --json` uses (non-finite numbers as strings)."""
    return json.loads(strict_json(summary, indent=2))


def _show_json(project, name: str) -> dict:
    proc = project.cli("show", name, "--json", check=True)
    return json.loads(proc.stdout)


def test_summary_of_a_function_experiment_is_what_show_json_prints(project):
    spec = project.spec("py-demo", executor={"kind": "inline"}, budget={"trials": 3})
    ran = tunesmith.run(project.write_spec(spec), storage=project.storage)
    printed = _show_json(project, "py-demo")
    assert printed["stop_reason"] == "trial budget of 3 reached", printed
    opened = tunesmith.open_experiment("py-demo", storage=project.storage)
    assert opened.stop_reason == "trial budget of 3 reached"
    assert _as_show_prints(opened.summary()) == printed
    assert _as_show_prints(ran.summary()) == printed  # the run's own result too
    opened.summary()["stop_reason"] = "changed by the caller"
    assert opened.summary()["stop_reason"] == "trial budget of 3 reached"  # each call is the caller's own copy


def test_summary_of_a_task_experiment_resumed_on_changed_data_is_what_show_json_prints(project):
    _run_on_csv_then_drop_five_rows(project)
    resumed = tunesmith.resume("csv", storage=project.storage)  # warns that the data changed (said, on stderr)
    printed = _show_json(project, "csv")
    assert [e["fingerprint"]["n_rows"] for e in printed["data_fingerprints"]] == [60, 55], printed
    assert printed["stop_reason"], printed
    opened = tunesmith.open_experiment("csv", storage=project.storage)
    assert opened.stop_reason == printed["stop_reason"]
    assert _as_show_prints(opened.summary()) == printed
    assert _as_show_prints(resumed.summary()) == printed


INFEASIBLE = '''
def objective(config, trial):
    return {"loss": config["x"], "size_kb": 1000.0}
'''


def test_feasible_trials_is_0_not_missing_when_no_trial_satisfies_the_constraints(project):
    """`show --json` (and the Python API's summary, built by the same function) said ``feasible_trials: 17`` when
    17 trials were feasible, and left the field out when none was: a reader had to know that absent meant 0."""
    project.write("infeasible.py", INFEASIBLE)
    spec = project.spec("none-fit", executor={"kind": "inline"}, budget={"trials": 3}, constraints=["size_kb <= 500"],
                        trial={"function": "infeasible:objective"})
    tunesmith.run(project.write_spec(spec), storage=project.storage)
    printed = _show_json(project, "none-fit")
    assert printed["feasible_trials"] == 0 and printed["selected"]["number"] is None, printed
    assert tunesmith.open_experiment("none-fit", storage=project.storage).summary()["feasible_trials"] == 0
    assert "constraints: size_kb <= 500 (0 feasible)" in project.cli("show", "none-fit", check=True).stdout


def test_a_result_shows_itself_in_a_line_and_keeps_every_record(tmp_path, monkeypatch):
    """A notebook cell ending in `tunesmith.run(...)` prints the result's repr: it held every TrialRecord and the
    whole spec (137 KB for 300 trials). It says the name, status, trial counts and best; the fields stay whole."""
    monkeypatch.chdir(tmp_path)

    def objective(config, trial):
        if trial.number % 7 == 3:
            raise ValueError("an unlucky trial")
        return config["x"]

    result = tunesmith.run({"name": "shown", "objective": {"metric": "loss", "direction": "minimize"},
                            "space": {"x": {"type": "float", "low": 0, "high": 1}}, "trial": objective,
                            "budget": {"trials": 30}, "seed": 0}, storage=f"sqlite:///{tmp_path / 'r.db'}")
    best = result.best
    assert best is not None and len(result.trials) == 30 and result.experiment.spec["budget"]["trials"] == 30
    shown = repr(result)
    assert shown == (f"ExperimentResult(name='shown', status='completed', trials={{'completed': 26, 'failed': 4}}, "
                     f"best=#{best.number} {{'loss': {best.values[0]!r}}} at {{'x': {best.params['x']!r}}})"), shown
    assert repr(tunesmith.open_experiment("shown", storage=f"sqlite:///{tmp_path / 'r.db'}")) == shown
