"""`tunesmith trials` at scale: --state, --sort and --limit pick what the table, --json and --csv list; the table's
params cell keeps each trial to one line; `earlier_attempts` says why each earlier attempt ended."""

from __future__ import annotations

import csv
import io
import json
import os

import pytest

from tests.helpers import cli_in_process
from tunesmith import api

# Trials 0, 3, 6, ... complete; the others fail (fail fast sees a success first, so the run goes on).
SOME_FAIL = """
def objective(config, trial):
    if trial.number % 3:
        raise ValueError(f"bad x={config['x']}")
    return {"loss": (config["x"] - 0.3) ** 2, "width": config["x"]}
"""


@pytest.fixture
def some_fail(project):
    project.write("some_fail.py", SOME_FAIL)
    api.run(project.spec("mixed", trial={"function": "some_fail:objective"}, executor={"kind": "inline"},
                         budget={"trials": 12}), storage=project.storage)
    return project


def _json(*args: str) -> list[dict]:
    code, out, err = cli_in_process("trials", *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_state_picks_the_trials_in_the_states_given_comma_separated_or_repeated(some_fail):
    assert [t["number"] for t in _json("mixed", "--state", "completed")] == [0, 3, 6, 9]
    assert [t["state"] for t in _json("mixed", "--state", "failed")] == ["failed"] * 8
    assert len(_json("mixed", "--state", "failed,completed")) == 12
    assert len(_json("mixed", "--state", "failed", "--state", "pruned")) == 8


def test_sort_orders_by_an_objective_in_its_direction_and_limit_keeps_the_first(some_fail):
    everything = _json("mixed")
    completed = sorted((t for t in everything if t["state"] == "completed"), key=lambda t: t["values"]["loss"])
    best = _json("mixed", "--sort", "loss", "--limit", "2")
    assert [t["number"] for t in best] == [t["number"] for t in completed[:2]]
    # a trial without the metric (a failed one) sorts last, whatever the direction
    assert [t["state"] for t in _json("mixed", "--sort", "loss")][-8:] == ["failed"] * 8
    # a recorded metric that is no objective: ascending
    widths = [t["metrics"]["width"] for t in _json("mixed", "--sort", "width", "--state", "completed")]
    assert widths == sorted(widths)
    assert [t["number"] for t in _json("mixed", "--limit", "3")] == [0, 1, 2]


def test_sort_by_a_maximised_objective_puts_the_largest_first(project):
    project.write("some_fail.py", SOME_FAIL)
    api.run(project.spec("up", objective={"metric": "width", "direction": "maximize"},
                         trial={"function": "some_fail:objective"}, executor={"kind": "inline"},
                         budget={"trials": 7}), storage=project.storage)
    widths = [t["values"]["width"] for t in _json("up", "--sort", "width", "--state", "completed")]
    assert len(widths) == 3 and widths == sorted(widths, reverse=True)


# A validation score that declines with training: a trial pruned at step 1 reports more than any completed one.
DECLINING = """
def objective(config, trial):
    for step in range(1, 11):
        value = config["x"] - 0.05 * step
        trial.report(step, value)
        if trial.should_prune():
            return value
    return value
"""


def test_sort_by_an_objective_ranks_completed_trials_before_pruned_ones(project):
    """A pruned trial's value is its last intermediate report: `--sort acc --limit 5` ("the 5 best") was headed by
    trials pruned at early steps, above every completed trial (review R1)."""
    project.write("declining.py", DECLINING)
    api.run(project.spec("dec", objective={"metric": "acc", "direction": "maximize"},
                         scheduler={"name": "median", "min_trials": 3}, trial={"function": "declining:objective"},
                         executor={"kind": "inline"}, budget={"trials": 20}, seed=0), storage=project.storage)
    everything = _json("dec")
    states = [t["state"] for t in everything]
    completed = sorted((t for t in everything if t["state"] == "completed"), key=lambda t: -t["values"]["acc"])
    pruned = [t for t in everything if t["state"] == "pruned"]
    assert pruned and max(t["values"]["acc"] for t in pruned) > completed[0]["values"]["acc"], states
    best = _json("dec", "--sort", "acc", "--limit", "3")
    assert [t["number"] for t in best] == [t["number"] for t in completed[:3]]
    ranked = [t["state"] for t in _json("dec", "--sort", "acc")]
    assert ranked == ["completed"] * len(completed) + ["pruned"] * len(pruned)


def test_csv_and_table_list_what_json_lists(some_fail):
    code, out, _ = cli_in_process("trials", "mixed", "--csv", "--state", "completed", "--sort", "loss",
                                  "--limit", "3")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [int(r["number"]) for r in rows] == [t["number"] for t in _json("mixed", "--sort", "loss", "--limit", "3")]
    code, out, _ = cli_in_process("trials", "mixed", "--state", "completed", "--limit", "2")
    assert code == 0 and "2 of 12 trials" in out
    assert len([line for line in out.splitlines() if "│ completed" in line]) == 2


@pytest.mark.parametrize(("args", "said"), [
    (("--state", "completed,faild"), "--state: unknown state 'faild'; did you mean 'failed'? (states: "),
    (("--sort", "los"), "--sort: experiment 'mixed' has no objective or recorded metric 'los'; did you mean "
                        "'loss'? (objectives: loss; recorded metrics: width)"),
])
def test_an_unknown_state_or_metric_is_one_error_naming_the_fix(some_fail, args, said):
    code, out, err = cli_in_process("trials", "mixed", *args)
    assert code == 2 and out == "" and "Traceback" not in err
    [line] = err.splitlines()
    assert line.startswith(f"error: {said}"), line


WIDE = """
def objective(config, trial):
    return sum(config.values())
"""


def test_the_table_keeps_a_trial_with_many_parameters_to_one_line(project, monkeypatch):
    """50 parameters in one JSON cell wrapped each row to about 13 lines on a 100-column terminal."""
    project.write("wide.py", WIDE)
    space = {f"p{i:02d}": {"type": "float", "low": -1.0, "high": 1.0} for i in range(30)}
    api.run(project.spec("wide", space=space, trial={"function": "wide:objective"}, executor={"kind": "inline"},
                         budget={"trials": 3}), storage=project.storage)
    monkeypatch.setenv("COLUMNS", "100")
    code, out, _ = cli_in_process("trials", "wide")
    assert code == 0
    body = [line for line in out.splitlines() if line.startswith("│")]
    params = [line for line in body if '"p' in line]
    assert len(params) == 3 and all("…" in line for line in params), out  # each trial's params: one line, cut
    assert len(body) <= 2 * 3, out  # (its values may take a second line at 100 columns)
    assert all(len(line) <= 100 for line in out.splitlines())
    assert len(_json("wide")[0]["params"]) == 30  # the full params stay in --json


INTERRUPTIBLE = """
import os, time

def objective(config, trial):
    deadline = time.monotonic() + 60
    while not os.path.exists("go") and time.monotonic() < deadline:
        time.sleep(0.02)
    return config["x"]
"""


def test_earlier_attempts_include_one_interrupted_and_re_run_by_resume(project):
    """Ctrl-C with a trial running past the grace period records it interrupted; `resume` re-runs it as attempt 2,
    and `trials --json` said `attempts: 2` with `earlier_attempts: []`."""
    from tunesmith.events import RunListener
    from tunesmith.runner import resume_experiment, run_experiment
    from tunesmith.spec import spec_from_dict
    from tunesmith.storage import SQLStore

    project.write("interruptible.py", INTERRUPTIBLE)
    runners = []

    class StopOnStart(RunListener):
        def trial_started(self, trial):  # type: ignore[no-untyped-def]
            runners[-1].request_stop()

    spec = spec_from_dict(project.spec("cut", trial={"function": "interruptible:objective"}, budget={"trials": 1},
                                       executor={"kind": "process", "workers": 1, "grace_period": 0.2},
                                       base_dir=str(project.root)))
    store = SQLStore(project.storage)
    try:
        run_experiment(spec, store, StopOnStart(), on_runner=runners.append)
        (project.root / "go").touch()
        resume_experiment("cut", store)
    finally:
        store.close()
    [trial] = project.trials("cut")
    assert (trial["state"], trial["attempts"]) == ("completed", 2)
    [earlier] = trial["earlier_attempts"]
    assert earlier["attempt"] == 1
    assert earlier["error"] == "interrupted: still running when the 0.2s grace period ended"


def test_log_prints_a_trials_log_and_the_table_says_how(some_fail):
    """No command showed a trial's log, and the table did not name it: --json or --csv to find the file."""
    code, out, _ = cli_in_process("trials", "mixed", "--state", "failed", "--limit", "1")
    assert code == 0 and "a trial's log: tunesmith trials mixed --log N" in " ".join(out.split())
    (failed,) = _json("mixed", "--state", "failed", "--limit", "1")
    code, out, err = cli_in_process("trials", "mixed", "--log", str(failed["number"]))
    assert code == 0, err
    with open(failed["log_path"], encoding="utf-8") as f:
        assert out == f.read() and "ValueError: bad x=" in out


@pytest.mark.parametrize(("args", "said"), [
    (("--log", "99"), "--log: experiment 'mixed' has no trial 99 (its trials: 0 to 11)"),
    (("--log", "1", "--json"), "--log prints one trial's log: leave out --json, --csv, --state, --sort and --limit"),
])
def test_log_of_no_such_trial_or_with_a_listing_option_is_one_error(some_fail, args, said):
    code, out, err = cli_in_process("trials", "mixed", *args)
    assert code == 2 and out == "" and "Traceback" not in err
    [line] = err.splitlines()
    assert line == f"error: {said}", line


def test_log_of_a_trial_whose_log_is_gone_names_the_file(some_fail):
    (trial,) = _json("mixed", "--limit", "1")
    os.remove(trial["log_path"])
    code, out, err = cli_in_process("trials", "mixed", "--log", "0")
    assert code == 2 and out == ""
    assert f"trial 0's log {trial['log_path']} cannot be read" in err, err


def test_log_of_a_trial_that_printed_nothing_says_so(some_fail):
    """Trial 0 completed and printed nothing: `--log 0` printed nothing at all, read as the command failing."""
    (trial,) = _json("mixed", "--limit", "1")
    with open(trial["log_path"], "w", encoding="utf-8"):
        pass
    code, out, err = cli_in_process("trials", "mixed", "--log", "0")
    assert code == 0 and out == ""
    assert "trial 0's log is empty: the trial printed nothing" in err, err
