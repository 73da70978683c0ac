"""Built-in scikit-learn tasks through the real CLI: holdout, fingerprint, selection, and the spec's rules."""

from __future__ import annotations

import json
import re
import sqlite3
import sys

import pytest

TASK = {
    "name": "bc",
    "objective": {"metric": "roc_auc", "direction": "maximize"},
    "task": {
        "estimator": {"sklearn.linear_model.LogisticRegression": {"max_iter": 2000}},
        "pipeline": ["sklearn.preprocessing.StandardScaler"],
        "data": {"sklearn": "breast_cancer"},
        "cv": {"kind": "stratified", "folds": 3},
        "holdout": {"fraction": 0.25},
        "scoring": "roc_auc",
    },
    "space": {"logisticregression__C": {"type": "float", "low": 0.001, "high": 10, "log": True}},
    "budget": {"trials": 3},
    "executor": {"kind": "inline"},  # no worker processes to start (each imports scikit-learn): what runs them
    "seed": 0,                       # is not what these tests are about; those about workers say process
}
PROCESS = {"kind": "process", "workers": 1}  # one worker process imports scikit-learn: a second proves nothing more


def _run(project, spec):
    """Tune ``spec`` in this process, where the run is set-up (what `show`, `resume` then say is what is checked):
    no CLI process to start, scikit-learn imported already."""
    import tunesmith

    result = tunesmith.run(project.write_spec(spec), storage=project.storage)
    assert result.status.value == "completed", result.status


def _shown(project, *args):
    """What `tunesmith show ARGS` prints (exit 0), run in this process at the 200 columns the CLI processes get: a
    read-back of what a run recorded, where what is checked is the recorded run (a CLI start-up fewer)."""
    import os

    from helpers import cli_in_process

    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "200"
    try:
        code, out, err = cli_in_process("show", *args, "--storage", project.storage)
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns
    assert code == 0, f"tunesmith show {' '.join(args)} exited {code}\n{out}\n{err}"
    return out


def test_a_task_runs_and_reports_its_holdout_apart(project):
    proc = project.cli("run", str(project.write_spec(TASK)), "--quiet")
    assert proc.returncode == 0, proc.stderr
    shown = project.show("bc")
    holdout = shown["holdout"]
    assert holdout["trial"] == shown["best"]["number"] and holdout["params"] == shown["best"]["params"]
    assert 0.9 < holdout["holdout_roc_auc"] <= 1.0 and holdout["holdout_rows"] == 143  # 25% of 569, stratified
    assert shown["data_fingerprint"]["n_rows"] == 569 and shown["data_fingerprint"]["content_hash"]
    best_metrics = shown["best"]["metrics"]
    assert {"fold_0", "fold_1", "fold_2", "roc_auc_std", "latency_p50_ms", "model_size_bytes"} <= set(best_metrics)
    for t in project.trials("bc"):  # the holdout is nowhere in what the search saw
        assert not any(k.startswith("holdout") for k in t["metrics"])
    gap = shown["cv_optimism"]  # roc_auc is maximised: CV minus holdout, positive when CV looked better
    assert gap["gap"] == pytest.approx(shown["best"]["values"]["roc_auc"] - holdout["holdout_roc_auc"])
    text = " ".join(_shown(project, "bc").split())
    assert "holdout roc_auc of trial" in text and "over 3 folds" in text
    assert f"gap {gap['gap']:+.4f} (roc_auc, higher is better; positive: CV looked better than the holdout)" in text


def test_run_ends_saying_the_holdout_and_nested_estimate_it_computed_as_show_says_them(project):
    """`run` computed the holdout score and the nested estimate after its bar reached the end, then said neither:
    its closing output was the table of CV means and the stop line; only a separate `show` told them."""
    spec = {**TASK, "name": "said", "task": {**TASK["task"], "nested": {"outer_folds": 2, "trials": 2}}}
    proc = project.cli("run", str(project.write_spec(spec)))
    assert proc.returncode == 0, proc.stderr
    said = " ".join(proc.stdout.split())
    holdout = project.show("said")["holdout"]
    assert (f"holdout roc_auc of trial {holdout['trial']} (the model promote ships, scored on rows the search never "
            f"saw): {holdout['holdout_roc_auc']:.4f} on 143 rows") in said, said
    assert "nested CV estimate of the whole tuning procedure: " in said and "CV looked better than the" in said, said
    assert said.index("holdout roc_auc") < said.index("Stopped: "), "the stop line stays the run's last"
    shown = " ".join(_shown(project, "said").split())  # one function says them: the same words
    assert said[said.index("holdout roc_auc"):said.index("Stopped: ")].strip() in shown, shown


def test_run_says_its_holdout_lines_from_the_task_part_of_the_summary_alone(project, monkeypatch):
    """`run`'s display built the whole `show` summary (the Pareto front, cost, the scheduler's resource summary over
    every trial) to say its holdout lines, which need only the task's part
    (summary.task_summary). The lines are those `show` says (review surface, item 5)."""
    import io

    from rich.console import Console

    import tunesmith
    from tunesmith import console, summary
    from tunesmith.console import ProgressDisplay

    result = tunesmith.run(project.write_spec({**TASK, "name": "lines"}), storage=project.storage)
    expected = summary.holdout_lines(summary.experiment_summary(result.experiment, result.trials))

    def whole_summary(*args, **kwargs):
        raise AssertionError("the run's end built the whole experiment summary")

    for module in (summary, console):
        monkeypatch.setattr(module, "experiment_summary", whole_summary, raising=False)
    screen = io.StringIO()
    ProgressDisplay(Console(file=screen, width=400)).run_finished(result.experiment, result.trials, "budget")
    said = screen.getvalue()
    assert expected and expected[0].startswith("holdout roc_auc of trial")
    assert all(line in said for line in expected), said


def test_show_says_when_the_selected_trial_is_itself_flagged_unstable_and_what_a_stable_pick_would_be(project):
    """With unstable_spread 0.006 two of the four trials are flagged, the best among them: `show` counted the
    unstable configurations and selected one of them without a word that it was."""
    spec = {**TASK, "name": "wobbly", "task": {**TASK["task"], "unstable_spread": 0.006}, "budget": {"trials": 4}}
    _run(project, spec)
    shown = project.show("wobbly")
    selected, trials = shown["best"], project.trials("wobbly")
    assert selected["metrics"]["unstable"] == 1.0, "the set-up: the trial selected is flagged unstable"
    stable = max((t for t in trials if not t["metrics"]["unstable"]), key=lambda t: t["values"]["roc_auc"])
    assert shown["task"]["selected_cv"]["stable_pick"] == stable["number"]
    text = " ".join(_shown(project, "wobbly").split())
    assert (f"the selected trial {selected['number']} is flagged unstable: its fold spread "
            f"{selected['metrics']['roc_auc_std']:.4f} is over unstable_spread 0.006; exclude_unstable: true would "
            f"select trial {stable['number']}") in text, text


def _run_on_csv_then_drop_five_rows(project):
    """A task experiment 'csv' run on 60 rows of data.csv, which then loses five rows; its data file and spec."""
    data = project.root / "data.csv"
    rows = ["a,b,label"] + [f"{i % 7},{(i * 3) % 5},{i % 2}" for i in range(60)]
    data.write_text("\n".join(rows) + "\n")
    spec = {**TASK, "name": "csv", "task": {**TASK["task"], "data": {"path": "data.csv", "target": "label"},
                                              "pipeline": [], "holdout": None},
            "space": {"C": {"type": "float", "low": 0.01, "high": 10, "log": True}}, "budget": {"trials": 2}}
    spec["task"] = {k: v for k, v in spec["task"].items() if v is not None}
    _run(project, spec)
    data.write_text("\n".join(rows[:-5]) + "\n")  # five rows fewer
    return data, spec


def test_resume_warns_when_the_data_changed(project):
    data, spec = _run_on_csv_then_drop_five_rows(project)
    proc = project.cli("resume", "csv")
    assert proc.returncode == 0, proc.stderr
    assert "the data changed since this experiment started" in proc.stdout + proc.stderr
    with sqlite3.connect(project.db) as conn:
        [(payload,)] = conn.execute("SELECT payload FROM events WHERE kind = 'data_changed'").fetchall()
    assert json.loads(payload)["changes"], "the change is recorded in the event log, with what changed"


def test_trial_and_task_together_or_neither_is_an_input_error(project):
    both = {**TASK, "name": "both", "trial": {"function": "objectives:quadratic"}}
    proc = project.cli("run", str(project.write_spec(both)))
    assert proc.returncode == 2 and "exactly one of `trial`" in proc.stderr
    neither = {k: v for k, v in TASK.items() if k != "task"}
    from helpers import cli_in_folder  # the second refusal in this process (the CLI's own main): a start-up fewer

    proc = cli_in_folder(project.root, "run", str(project.write_spec({**neither, "name": "neither"})))
    assert proc.returncode == 2 and "exactly one of `trial`" in proc.stderr


def test_trial_and_task_together_is_the_first_error_before_what_the_task_lacks(project):
    """A valid function-trial spec given a task too (without scoring, its objective `loss` no scorer) was told
    "task.scoring: this field is required"; only once scoring was added did it learn to give one of the two."""
    both = project.spec(name="both", task={"estimator": "sklearn.linear_model.LogisticRegression",
                                           "data": {"sklearn": "wine"}})
    proc = project.cli("validate", str(project.write_spec(both)))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    said = " ".join(proc.stderr.split())
    assert "give exactly one of `trial`" in said and "scoring" not in said, said


def test_the_objective_must_be_the_tasks_scoring(project):
    wrong = {**TASK, "name": "wrong", "objective": {"metric": "accuracy", "direction": "maximize"}}
    proc = project.cli("run", str(project.write_spec(wrong)))
    assert proc.returncode == 2
    assert "objective: a task optimises its scoring: use {metric: roc_auc, direction: maximize}" in proc.stderr


def test_a_space_key_that_names_no_step_is_caught_before_any_trial(project):
    bad = {**TASK, "name": "typo", "space": {"logisticregresion__C": {"type": "float", "low": 0.1, "high": 1}}}
    proc = project.cli("run", str(project.write_spec(bad)))
    assert proc.returncode == 2 and "space.logisticregresion__C" in proc.stderr and "did you mean" in proc.stderr
    assert not project.db.exists()


def test_unstable_configurations_can_be_excluded_from_selection(project):
    spec = {**TASK, "name": "stable", "budget": {"trials": 3}, "strategy": "random",
            "task": {**TASK["task"], "unstable_spread": 1e-9, "exclude_unstable": True, "holdout": None}}
    spec["task"] = {k: v for k, v in spec["task"].items() if v is not None}
    _run(project, spec)
    shown = project.show("stable")
    assert shown["task"]["unstable_trials"] == 3  # every config spreads more than 1e-9 across folds
    assert shown["best"] is None, "with every trial unstable and excluded, nothing is selectable"
    assert project.trials("stable")[0]["metrics"]["unstable"] == 1


def test_nested_cv_estimate_is_recorded_beside_the_experiment(project):
    spec = {**TASK, "name": "nested", "budget": {"trials": 3}, "executor": {"kind": "inline"},
            "task": {**TASK["task"], "holdout": None, "nested": {"outer_folds": 2, "trials": 2}}}
    spec["task"] = {k: v for k, v in spec["task"].items() if v is not None}
    _run(project, spec)
    nested = project.show("nested")["nested"]
    assert nested["outer_folds"] == 2 and len(nested["outer_scores"]) == 2
    assert 0.9 < nested["nested_roc_auc"] <= 1.0
    assert "nested CV estimate of the whole tuning procedure" in _shown(project, "nested")


def test_the_nested_estimate_s_inner_searches_evaluate_the_spec_s_enqueued_configurations_first(project):
    """The run evaluates the spec's `enqueue` first; the nested estimate's inner searches, which stand for the run's
    procedure, never did: the estimate was of a procedure without the known configurations the run starts from.
    With one inner trial a fold, each inner search evaluates the enqueued configuration, and picks it."""
    known = {"logisticregression__C": 0.123}
    spec = {**TASK, "name": "known", "strategy": "random", "enqueue": [known],
            "task": {**TASK["task"], "holdout": None, "nested": {"outer_folds": 2, "trials": 1, "strategy": "random"}}}
    spec["task"] = {k: v for k, v in spec["task"].items() if v is not None}
    _run(project, spec)
    assert project.trials("known")[0]["params"] == known  # the run's own first trial
    nested = project.show("known")["nested"]
    assert nested["outer_best_params"] == [known, known], nested


TREE = {**TASK, "objective": {"metric": "accuracy", "direction": "maximize"}, "executor": {"kind": "inline"},
        "task": {"estimator": "sklearn.tree.DecisionTreeClassifier", "data": {"sklearn": "breast_cancer"},
                 "cv": {"kind": "stratified", "folds": 3}, "scoring": "accuracy",
                 "nested": {"outer_folds": 2, "trials": 6}},
        "space": {"max_depth": {"type": "int", "low": 1, "high": 8}}, "strategy": "grid", "budget": {"trials": 8}}


def test_the_nested_estimate_picks_its_inner_trials_under_the_runs_constraints(project):
    """The nested estimate's inner searches picked the best accuracy whatever the spec's constraints: it estimated a
    procedure that ships a model the run itself would refuse."""
    spec = {**TREE, "name": "small", "constraints": ["model_size_bytes <= 2000"]}
    _run(project, spec)
    trials = project.trials("small")
    unconstrained = max(trials, key=lambda t: t["values"]["accuracy"])
    assert unconstrained["metrics"]["model_size_bytes"] > 2000, "the premise: the best accuracy breaks the constraint"
    assert project.show("small")["best"]["metrics"]["model_size_bytes"] <= 2000
    nested = project.show("small")["nested"]
    assert len(nested["inner_picks"]) == 2 and len(nested["outer_scores"]) == 2
    for pick, params in zip(nested["inner_picks"], nested["outer_best_params"], strict=True):
        assert pick["metrics"]["model_size_bytes"] <= 2000, pick
        assert "model_size_bytes <= 2000" in pick["reason"]
        assert 1 <= params["max_depth"] <= 8


def test_the_nested_estimate_applies_the_runs_exclude_unstable_and_select_policy(project):
    # every configuration spreads more than 1e-9 over its folds: excluded, the run ships nothing, and neither does
    # the procedure on an outer fold, so there is no estimate to give (it estimated the unstable picks' score)
    unstable = {**TREE, "name": "unstable", "task": {**TREE["task"], "unstable_spread": 1e-9, "exclude_unstable": True}}
    _run(project, unstable)
    nested = project.show("unstable")["nested"]
    assert "nested_accuracy" not in nested and "flagged unstable excluded" in nested["unavailable"]
    shown = " ".join(_shown(project, "unstable").split())
    assert "nested CV estimate of the whole tuning procedure: not available: outer fold 0" in shown
    weighted = {**TREE, "name": "weighted", "objective": [{"metric": "accuracy", "direction": "maximize"},
                                                          {"metric": "model_size_bytes", "direction": "minimize"}],
                "select": {"weights": {"accuracy": 0, "model_size_bytes": 1}}}
    _run(project, weighted)
    nested = project.show("weighted")["nested"]
    assert [p["reason"].split(" (")[0] for p in nested["inner_picks"]] == ["smallest weighted sum"] * 2
    assert "nested_accuracy" in nested


def test_a_nested_strategy_that_cannot_run_the_inner_searches_is_refused_before_the_run(project):
    """task.nested.strategy was first used after every trial had run: a typo, or bo with the two objectives each
    inner search now optimises, failed the run at its very end."""
    two = [{"metric": "accuracy", "direction": "maximize"}, {"metric": "model_size_bytes", "direction": "minimize"}]
    cases = {"tpee": (TREE["objective"], "unknown strategy 'tpee'; did you mean 'tpe'?"),
             "bo": (two, "the bo strategy optimises one objective; use tpe or nsga2 for several")}
    paths = {strategy: str(project.write_spec(
        {**TREE, "name": "ns", "objective": objective,
         "task": {**TREE["task"], "nested": {"outer_folds": 2, "trials": 2, "strategy": strategy}}},
        f"{strategy}.yaml")) for strategy, (objective, _) in cases.items()}
    proc = project.cli("validate", *paths.values())  # each spec checked on its own, one line naming its file
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 2, proc.stderr
    for (strategy, (_, said)), line in zip(cases.items(), lines, strict=True):
        assert line.startswith(f"error: {paths[strategy]}: task.nested.strategy: {said}"), proc.stderr


def test_the_best_trials_shown_live_and_after_the_run_leave_out_unstable_ones(project):
    """show's best left out the trials a task flags unstable (exclude_unstable), but the table of best trials (run,
    show) and the live best so far ranked them: three answers to one question."""
    spec = {**TASK, "name": "unstable", "budget": {"trials": 3}, "strategy": "random",
            "task": {**TASK["task"], "unstable_spread": 1e-9, "exclude_unstable": True, "holdout": None}}
    spec["task"] = {k: v for k, v in spec["task"].items() if v is not None}
    run = project.cli("run", str(project.write_spec(spec)), check=True)
    assert project.show("unstable")["best"] is None
    shown = _shown(project, "unstable")
    for text in (run.stdout, shown):
        assert "No completed trial is stable (the task excludes unstable ones)." in text, text
        assert "Best trials of" not in text, text
    assert "best -" in run.stdout and not re.search(r"best [0-9.]+ \(#\d+\)", run.stdout), "the live best so far"


def _penalty_is_deprecated() -> bool:
    import warnings

    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        LogisticRegression(penalty="l2").fit([[0.0], [1.0]], [0, 1])
    return any(issubclass(w.category, FutureWarning) for w in caught)


@pytest.mark.skipif(not _penalty_is_deprecated(), reason="this scikit-learn does not deprecate penalty (1.8 does)")
def test_the_coordinators_own_refits_say_library_warnings_once_not_raw(project):
    """`run -q` and `promote` printed scikit-learn's FutureWarning raw (file:line, then `warnings.warn(`) from the
    coordinator's own holdout refit and the refit promote ships; a trial's warnings go to its log."""
    spec = {**TASK, "name": "pen", "budget": {"trials": 2}, "executor": PROCESS,  # a trial's warnings: its log
            "task": {**TASK["task"], "estimator": {"sklearn.linear_model.LogisticRegression":
                                                   {"max_iter": 2000, "penalty": "l2"}}}}
    run = project.cli("run", str(project.write_spec(spec)), "-q")
    assert run.returncode == 0, run.stderr
    promote = project.cli("promote", "pen", "-m", "clf", "--dry-run")
    assert promote.returncode == 0, promote.stdout + promote.stderr
    for proc, doing in ((run, "refitting for the holdout / nested estimate"), (promote, "refitting the trial")):
        lines = proc.stderr.splitlines()
        assert "warnings.warn(" not in proc.stderr and "_logistic.py:" not in proc.stderr, proc.stderr
        said = [line for line in lines if "FutureWarning" in line]
        assert len(said) == 1 and said[0].startswith(f"warning: while {doing}: FutureWarning: 'penalty' was "
                                                     "deprecated"), proc.stderr


HOLDING_STEP = """
import time
from pathlib import Path

from sklearn.base import BaseEstimator, TransformerMixin


class Hold(TransformerMixin, BaseEstimator):
    \"\"\"Passes X through; while the file `hold` exists beside it, a fit writes `held` and waits.\"\"\"

    def fit(self, X, y=None):
        here = Path(__file__).parent
        while (here / "hold").exists():
            (here / "held").touch()
            time.sleep(0.05)
        return self

    def transform(self, X):
        return X
"""


def test_show_says_the_data_changed_mid_experiment_and_which_trials_ran_on_which(project):
    """A resume on changed data warned once; `show` went on printing the first fingerprint only, as if every trial
    had run on it. It lists each fingerprint with the trials that ran on it, in text and in --json."""
    import signal

    from tests.helpers import count_states, start_cli, wait_for

    data = project.root / "data.csv"
    rows = ["a,b,label"] + [f"{i % 7},{(i * 3) % 5},{i % 2}" for i in range(60)]
    data.write_text("\n".join(rows) + "\n")
    project.write("holding.py", HOLDING_STEP)  # a step in the spec's folder, imported as `holding.Hold`
    spec = {**TASK, "name": "csv", "task": {**TASK["task"], "data": {"path": "data.csv", "target": "label"},
                                              "pipeline": ["holding.Hold"]},
            "space": {"C": {"type": "float", "low": 0.01, "high": 10, "log": True}}, "budget": {"trials": 20},
            "executor": {"kind": "process", "workers": 1, "grace_period": "1ms"}}  # Ctrl-C interrupts the running
    spec["task"] = {k: v for k, v in spec["task"].items() if k != "holdout"}
    run = start_cli(project, "run", str(project.write_spec(spec)), "--quiet")
    try:
        wait_for(lambda: count_states(project, "csv").get("completed", 0) >= 2, timeout=120)
        (project.root / "hold").touch()
        # Ctrl-C only once a trial is inside its fit: one seen 'running' could finish before the signal lands
        wait_for(lambda: (project.root / "held").exists(), timeout=120)
    finally:
        run.send_signal(signal.SIGINT)
        run.communicate(timeout=120)
    assert run.returncode == 130
    (project.root / "hold").unlink()
    before = project.trials("csv")
    first_new = len(before)
    interrupted = [t["number"] for t in before if t["state"] == "interrupted"]
    assert first_new < 20, "the run was stopped before its budget"
    assert interrupted, "a trial was running at Ctrl-C: its re-run on the new data is attributed to that data"
    data.write_text("\n".join(rows[:-5]) + "\n")  # five rows fewer
    from helpers import cli_in_process  # the resumes are the set-up of what show says (a resume's own warning as a
    #                                      CLI process: test_resume_warns_when_the_data_changed), in this process
    code, _, err = cli_in_process("resume", "csv", "--quiet", "--storage", project.storage)
    assert code == 0 and "the data changed since this experiment started" in err, err
    code, _, err = cli_in_process("resume", "csv", "--quiet", "--storage", project.storage)
    assert code == 0, err  # the same changed data: no second change

    epochs = project.show("csv")["data_fingerprints"]
    assert [(e["from_trial"], e["fingerprint"]["n_rows"]) for e in epochs] == [(0, 60), (first_new, 55)], epochs
    assert epochs[1]["re_run"] == interrupted and "n_rows 60 -> 55" in epochs[1]["changes"], epochs[1]
    assert epochs[1]["fingerprint"]["content_hash"] != epochs[0]["fingerprint"]["content_hash"]
    text = " ".join(_shown(project, "csv").split())
    assert "the data changed mid-experiment (1 time(s), found on resume)" in text, text
    assert f"data (trials 0 to {first_new - 1}): 60 rows x 2 feature columns" in text, text
    assert f"data (from trial {first_new} on): 55 rows x 2 feature columns" in text, text
    assert f"and trial(s) {', '.join(map(str, interrupted))} re-run on it" in text, text


def test_the_nested_estimate_leaves_out_constraints_its_inner_trials_cannot_have(project):
    """A constraint on a metric only the executor measures (cost) made every inner trial infeasible, since inner
    trials are cross-validated in-process and never priced: the estimate was always 'not available', with advice
    (raise the trials, loosen the constraints) that could not help. Now such a constraint is left out of the inner
    picks and said so; a constraint on a metric the inner trials do have (model_size_bytes) is still applied."""
    spec = {**TREE, "name": "priced", "cost": {"cpu_hour": 0.04},
            "constraints": ["cost <= 1", "model_size_bytes <= 2000"]}
    _run(project, spec)
    shown = project.show("priced")
    assert shown["best"]["metrics"]["cost"] <= 1, "the premise: the run's own trials are priced"
    nested = shown["nested"]
    assert "unavailable" not in nested and "nested_accuracy" in nested, nested
    assert nested["ignored_constraints"] == ["cost <= 1"]
    for pick in nested["inner_picks"]:
        assert pick["metrics"]["model_size_bytes"] <= 2000 and "cost" not in pick["metrics"], pick
        assert "model_size_bytes <= 2000" in pick["reason"] and "cost <= 1" not in pick["reason"], pick
    text = " ".join(_shown(project, "priced").split())
    assert "constraint(s) cost <= 1 not applied to the inner trials" in text, text
    # the inner searches themselves ran unpriced after the budget had ended: what they took is recorded and priced
    assert 0 < nested["cpu_s"] and 0 < nested["duration_s"], nested
    assert nested["cost"] == pytest.approx(0.04 * nested["cpu_s"] / 3600), nested
    assert f"its inner searches took {nested['duration_s']:.1f} s ({nested['cpu_s']:.1f} CPU-s, cost " in text, text


def test_a_recorded_nested_strategy_that_cannot_take_the_objectives_falls_back_on_resume(project):
    """An experiment recorded before task.nested.strategy was checked (bo, with two objectives) resumed, ran its
    trials, then raised 'the bo strategy optimises one objective' out of the run at its very end, losing the
    holdout recorded with the estimate. Its inner searches now run the strategy auto picks, and say so."""
    from tunesmith.runner import prepare
    from tunesmith.spec import spec_from_dict
    from tunesmith.storage import SQLStore

    spec = spec_from_dict({**TREE, "name": "oldbo", "budget": {"trials": 2}, "base_dir": str(project.root),
                           "objective": [{"metric": "accuracy", "direction": "maximize"},
                                         {"metric": "model_size_bytes", "direction": "minimize"}],
                           "task": {**TREE["task"], "holdout": {"fraction": 0.25},
                                    "nested": {"outer_folds": 2, "trials": 2, "strategy": "bo"}}})
    plan = prepare(spec, stored=True)  # as an earlier tunesmith recorded it: spec_from_dict skips the new-spec checks
    SQLStore(project.storage).create_experiment(spec.name, plan.spec.to_json(), plan.decision.name, "", 0.0)
    proc = project.cli("resume", "oldbo")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    shown = project.show("oldbo")
    assert shown["holdout"]["trial"] in {t["number"] for t in project.trials("oldbo")}, shown.get("holdout")
    nested = shown["nested"]
    assert "nested_accuracy" in nested and nested["strategy"] != "bo", nested
    assert "the bo strategy optimises one objective" in nested["strategy_fallback"], nested
    text = " ".join(_shown(project, "oldbo").split())
    assert "task.nested.strategy 'bo' cannot run the inner searches" in text, text


def test_a_nested_estimate_whose_inner_trials_all_fail_keeps_the_holdout(project):
    """Inner trials fit on fewer rows than the run's: with n_neighbors above an inner training part, every inner
    trial failed, and the SpecError that said so left run() after every trial, losing the holdout recorded with the
    estimate. The estimate is now unavailable, saying why, and the holdout kept."""
    spec = {**TREE, "name": "knn", "budget": {"trials": 2}, "strategy": "random",
            "task": {**TREE["task"], "estimator": "sklearn.neighbors.KNeighborsClassifier",
                     "holdout": {"fraction": 0.25}, "nested": {"outer_folds": 2, "trials": 2}},
            "space": {"n_neighbors": {"type": "int", "low": 200, "high": 250}}}
    proc = project.cli("run", str(project.write_spec(spec)), "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "every inner trial of outer fold 0 failed" in " ".join((proc.stdout + proc.stderr).split())
    shown = project.show("knn")
    assert [t["state"] for t in project.trials("knn")] == ["completed", "completed"], "the premise"
    assert shown["holdout"]["trial"] == shown["best"]["number"] and 0 < shown["holdout"]["holdout_accuracy"] <= 1
    assert "every inner trial of outer fold 0 failed" in shown["nested"]["unavailable"], shown["nested"]


def test_old_format_data_changes_recorded_on_every_resume_are_one_change(project):
    """The previous tunesmith recorded a `data_changed` event without the fingerprint on every resume while the data
    differed from what the experiment started on; each was read as a change of its own: two such events and the one
    this tunesmith records on the next resume (same data) gave 4 fingerprints and "the data changed mid-experiment
    (3 time(s))". An old-format event followed by others for the same data is one change."""
    from tunesmith.spec import spec_from_dict
    from tunesmith.storage import SQLStore
    from tunesmith.tasks import fingerprint, fingerprint_changes

    data, spec = _run_on_csv_then_drop_five_rows(project)
    store = SQLStore(project.storage)
    try:
        exp = store.experiment("csv")
        started = exp.attributes["data_fingerprint"]
        task_spec = spec_from_dict(exp.spec)
        changes = fingerprint_changes(started, fingerprint(task_spec.task, task_spec.base_dir))
        for at in (100.0, 200.0):  # two resumes by the previous tunesmith, on the same changed data
            store.record_event(exp.id, "data_changed", exp.created_at + at, detail={"changes": changes})
    finally:
        store.close()
    resumed = project.cli("resume", "csv", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    with sqlite3.connect(project.db) as conn:
        payloads = [json.loads(p) for (p,) in conn.execute("SELECT payload FROM events WHERE kind = 'data_changed'")]
    assert [("fingerprint" in p) for p in payloads] == [False, False, True], payloads
    epochs = project.show("csv")["data_fingerprints"]
    assert len(epochs) == 2 and epochs[1]["fingerprint"]["n_rows"] == 55, epochs
    text = " ".join(_shown(project, "csv").split())
    assert "the data changed mid-experiment (1 time(s), found on resume)" in text, text


def test_a_nested_estimate_that_fails_otherwise_keeps_the_holdout_and_says_why(project):
    """Only a SpecError (every inner trial of a fold failed) was caught: any other failure of the nested estimate (the
    pick's refit on the outer training part, the outer scorer) left run() after every trial had run, recording
    neither the estimate's failure nor the holdout. Here a step cannot fit the outer training part's row count
    (~213 of breast_cancer's 426 development rows), which no trial, inner fit or holdout refit meets."""
    project.write("spec/picky.py", """
        from sklearn.base import BaseEstimator, TransformerMixin


        class NotThatSize(TransformerMixin, BaseEstimator):
            def fit(self, X, y=None):
                if 200 <= len(X) <= 230:
                    raise ValueError(f"cannot fit {len(X)} rows")
                return self

            def transform(self, X):
                return X
        """)
    spec = {**TREE, "name": "picky", "budget": {"trials": 2}, "strategy": "random",
            "task": {**TREE["task"], "pipeline": ["picky.NotThatSize"], "holdout": {"fraction": 0.25},
                     "nested": {"outer_folds": 2, "trials": 2}}}
    proc = project.cli("run", str(project.write_spec(spec, "spec/picky.yaml")), "--quiet")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    said = " ".join((proc.stdout + proc.stderr).split())
    assert "no nested estimate: ValueError: cannot fit" in said, said
    shown = project.show("picky")
    assert shown["status"] == "completed" and [t["state"] for t in project.trials("picky")] == ["completed"] * 2
    assert shown["holdout"]["trial"] == shown["best"]["number"] and 0 < shown["holdout"]["holdout_accuracy"] <= 1
    assert shown["nested"]["unavailable"].startswith("ValueError: cannot fit 2"), shown["nested"]


def test_a_pipeline_step_defined_beside_the_spec_is_imported(project):
    """`task.pipeline: [mysteps.Clip]` with mysteps.py beside the spec failed with "No module named 'mysteps'",
    though `trial.function` finds code there. Now the spec's folder is importable for the pipeline's classes, and a
    misspelt module says where it was looked for."""
    project.write("spec/mysteps.py", """
        import numpy as np
        from sklearn.base import BaseEstimator, TransformerMixin


        class Clip(TransformerMixin, BaseEstimator):
            def __init__(self, limit=3.0):
                self.limit = limit

            def fit(self, X, y=None):
                return self

            def transform(self, X):
                return np.clip(X, -self.limit, self.limit)
        """)
    spec = {**TASK, "name": "clipped", "budget": {"trials": 3}, "executor": PROCESS,  # imported in the workers
            "task": {**TASK["task"], "pipeline": ["sklearn.preprocessing.StandardScaler", "mysteps.Clip"]},
            "space": {**TASK["space"], "clip__limit": {"type": "float", "low": 0.5, "high": 4}}}
    path = project.write_spec(spec, "spec/clipped.yaml")  # run from the project's root, not the spec's folder
    ran = project.cli("run", str(path), "--quiet")
    assert ran.returncode == 0, ran.stderr
    trials = project.trials("clipped")
    assert [t["state"] for t in trials] == ["completed"] * 3, trials
    assert all(0.5 <= t["params"]["clip__limit"] <= 4 for t in trials)

    typo = project.write_spec({**spec, "name": "typo", "task": {**spec["task"], "pipeline": ["mystep.Clip"]}},
                              "spec/typo.yaml")
    from helpers import cli_in_folder  # the refusal, after the run above: in this process, a start-up fewer

    refused = cli_in_folder(project.root, "run", str(typo), "--quiet")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
    assert "task.pipeline.0: cannot import 'mystep'" in refused.stderr, refused.stderr
    assert f"searched the spec's folder {project.root / 'spec'}" in refused.stderr, refused.stderr



STEP_MARKING_ITS_FOLDER = """
import os

from sklearn.base import BaseEstimator, TransformerMixin


class Marked(TransformerMixin, BaseEstimator):  # the same name in both folders: which file's code runs?
    def fit(self, X, y=None):
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "fitted"), "a") as f:
            f.write("{folder}\\n")
        return self

    def transform(self, X):
        return X
"""


def test_two_folders_steps_of_one_name_each_run_their_own_code_in_one_process(project, monkeypatch):
    """A step of the user's own (`mysteps.Marked`, mysteps.py beside the spec) was imported by its module's name:
    one process (a notebook, a test run) running experiments from two folders that each hold a mysteps.py used the
    first one imported for both, silently. It is loaded by its file, as trial code is: each folder's steps are its
    own, here without the test suite's old workaround (forgetting `mysteps` between tests). The recorded spec names
    the step as written (`mysteps.Marked`), and the experiment resumes with its own folder's code, after the other's
    ran in the same process. Another test's `mysteps` is left imported, as one process that ran it would have: a
    trial's folds built their pipeline without the spec's folder and took it by name (the fresh clone's suite)."""
    import types

    import tunesmith

    monkeypatch.setitem(sys.modules, "mysteps", types.ModuleType("mysteps"))
    specs = {}
    for folder in ("a", "b"):
        project.write(f"{folder}/mysteps.py", STEP_MARKING_ITS_FOLDER.format(folder=folder))
        spec = {**TASK, "name": f"steps-{folder}", "budget": {"trials": 2},
                "task": {**TASK["task"], "pipeline": ["mysteps.Marked", "sklearn.preprocessing.StandardScaler"]}}
        specs[folder] = project.write_spec(spec, f"{folder}/spec.yaml")
    for folder in ("a", "b"):   # in this process: the inline executor fits every pipeline here
        assert tunesmith.run(specs[folder], storage=project.storage).status.value == "completed"
    marks = {folder: (project.root / folder / "fitted").read_text().split() for folder in ("a", "b")
             if (project.root / folder / "fitted").exists()}
    assert set(marks) == {"a", "b"} and set(marks["a"]) == {"a"} and set(marks["b"]) == {"b"}, marks
    stored = tunesmith.open_experiment("steps-a", storage=project.storage).experiment.spec
    assert stored["task"]["pipeline"][0]["path"] == "mysteps.Marked", stored["task"]
    for folder in ("a", "b"):
        (project.root / folder / "fitted").unlink()
    resumed = tunesmith.resume("steps-a", storage=project.storage, trials=3)
    assert resumed.status.value == "completed" and len(resumed.trials) == 3
    assert set((project.root / "a" / "fitted").read_text().split()) == {"a"}
    assert not (project.root / "b" / "fitted").exists(), "the resume ran b's step"

def test_promote_judges_the_size_of_the_model_it_ships_not_a_folds(project):
    """A trial measures its latency and size on its last fold's model, fit on (folds - 1) / folds of the development
    rows; k-NN keeps every row it is fit on, so the model promote ships is larger. `max: {model_size_bytes: ...}`
    passed a 58 KB fold model and shipped 115 KB (a walk through task evaluation): the gate judges the shipped one."""
    import pickle

    from tunesmith import api
    from tunesmith.clock import SystemClock
    from tunesmith.promotion.promote import promote
    from tunesmith.spec.loader import spec_from_dict
    from tunesmith.storage import SQLStore
    from tunesmith.tasks import refit

    spec = {"name": "knn", "objective": {"metric": "accuracy", "direction": "maximize"},
            "task": {"estimator": "sklearn.neighbors.KNeighborsClassifier", "data": {"sklearn": "breast_cancer"},
                     "cv": {"kind": "stratified", "folds": 2}, "holdout": {"fraction": 0.2}, "scoring": "accuracy"},
            "space": {"kneighborsclassifier__n_neighbors": {"type": "int", "low": 3, "high": 9}},
            "budget": {"trials": 1}, "executor": {"kind": "inline"}, "seed": 0}
    [trial] = api.run(spec, storage=project.storage).trials
    task = spec_from_dict(spec).task
    assert task is not None
    shipped = len(pickle.dumps(refit(task, trial.params, trial.seed), protocol=pickle.HIGHEST_PROTOCOL))
    fold = trial.metrics["model_size_bytes"]
    assert shipped > 1.5 * fold, (shipped, fold)
    policy = project.write("size.yaml", f"max: {{model_size_bytes: {(fold + shipped) // 2}}}\n")
    store = SQLStore(project.storage)
    try:
        outcome = promote(store, "knn", "knn-model", SystemClock(), policy_file=str(policy), dry_run=True)
    finally:
        store.close()
    [gate] = [g for g in outcome.gates if g.gate == "max.model_size_bytes"]
    assert not gate.passed and gate.evidence["value"] == shipped, gate
    # a spec constraint on the size is judged on what ships too: the run selected the trial by its fold model's
    limit = (fold + shipped) // 2
    api.run({**spec, "name": "knn-bound", "constraints": [f"model_size_bytes <= {limit}"]}, storage=project.storage)
    store = SQLStore(project.storage)
    try:
        outcome = promote(store, "knn-bound", "knn-model", SystemClock(), dry_run=True)
    finally:
        store.close()
    [gate] = [g for g in outcome.gates if g.gate == "constraints"]
    assert not gate.passed and f"model_size_bytes {shipped:g}" in gate.message, gate
