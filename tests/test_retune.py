"""Warm-started re-tunes: the strategy wrapper's order and re-basing, and `tunesmith retune` end to end on a
real shift (lineage on both sides, the prior best first, relative --data from another folder)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
import yaml

from tunesmith.errors import UserInputError
from tunesmith.events import RunListener
from tunesmith.records import Direction, ParamValue, Report, TrialRecord, TrialState
from tunesmith.retune import plan_retune
from tunesmith.runner import run_experiment
from tunesmith.spec.loader import load_spec
from tunesmith.storage.sql import SQLStore
from tunesmith.space import Float, SearchSpace
from tunesmith.strategy import Proposal, StrategyDecision, build_strategy
from tunesmith.strategy.warm_start import PriorTrial, WarmStart, WarmStartedStrategy, warm_started
from tunesmith.testing.drift_data import shifted_split


class Recording:
    """A real random strategy that remembers what it was replayed and told."""

    def __init__(self) -> None:
        space = SearchSpace.from_domains({"x": Float(0.0, 1.0)})
        self.inner = build_strategy(StrategyDecision("random", {}, ""), space, [Direction.MINIMIZE], 0, 1)
        self.replayed: list[TrialRecord] = []

    def replay(self, history: Sequence[TrialRecord]) -> None:
        self.replayed.extend(history)
        self.inner.replay(history)

    def ask(self) -> Proposal | None:
        return self.inner.ask()

    def adopt(self, params: dict[str, ParamValue]) -> Proposal:
        return self.inner.adopt(params)

    def report(self, token: int, report: Report) -> None:
        self.inner.report(token, report)

    def tell(self, token: int, state: TrialState, values: Sequence[float] | None,
             metrics: Mapping[str, float] | None = None) -> None:
        self.inner.tell(token, state, values, metrics)


WARM = WarmStart("old", first=({"x": 0.1}, {"x": 0.2}),
                 prior=(PriorTrial({"x": 0.1}, (1.0,)), PriorTrial({"x": 0.2}, (2.0,)),
                        PriorTrial({"x": 0.9}, (5.0,)), PriorTrial({"x": 0.5}, (3.0,))))


def test_prior_best_first_then_the_rest_replayed_shifted_onto_the_new_level() -> None:
    inner = Recording()
    strategy = WarmStartedStrategy(inner, WARM)
    strategy.replay([])
    a, b = strategy.ask(), strategy.ask()
    assert a is not None and b is not None and (a.params, b.params) == ({"x": 0.1}, {"x": 0.2})
    strategy.tell(a.token, TrialState.COMPLETED, [11.0])
    assert inner.replayed == [] and strategy.shift is None  # waits for every re-evaluation
    strategy.tell(b.token, TrialState.COMPLETED, [14.0])
    assert strategy.shift == (11.0,)  # median of 10 and 12
    replayed = {r.params["x"]: r.values for r in inner.replayed}
    assert replayed == {0.9: (16.0,), 0.5: (14.0,)}  # the re-evaluated ones are not replayed with old values
    c = strategy.ask()
    assert c is not None and c.params["x"] not in (0.1, 0.2)


def test_a_resumed_retune_skips_what_ran_and_rebuilds_the_shift_from_its_record() -> None:
    inner = Recording()
    strategy = warm_started(inner, WARM.to_json())
    assert isinstance(strategy, WarmStartedStrategy)
    done = TrialRecord(0, TrialState.COMPLETED, {"x": 0.1}, 0, values=(3.0,))
    strategy.replay([done])
    nxt = strategy.ask()
    assert nxt is not None and nxt.params == {"x": 0.2}
    strategy.tell(nxt.token, TrialState.FAILED, None)  # a failed re-evaluation ends it too; no pair from it
    assert strategy.shift == (2.0,)
    assert warm_started(inner, None) is inner


def test_a_re_evaluation_a_peer_runs_is_not_handed_out_again() -> None:
    """Under --join a peer's running trial reaches the strategy through adopt: the re-evaluation it runs stayed in
    the queue, and this coordinator ran it again (the fix made for the spec's enqueue had gone into its copy of the
    queue only: one queue now serves both)."""
    strategy = WarmStartedStrategy(Recording(), WARM)
    strategy.replay([])
    peer = strategy.adopt({"x": 0.1})
    mine = strategy.ask()
    assert mine is not None and mine.params == {"x": 0.2}
    strategy.tell(peer.token, TrialState.COMPLETED, [11.0])
    strategy.tell(mine.token, TrialState.COMPLETED, [14.0])
    assert strategy.shift == (11.0,), "the peer's re-evaluation still counts in the shift"


def test_without_a_prior_only_the_top_k_run_first() -> None:
    inner = Recording()
    strategy = WarmStartedStrategy(inner, WarmStart("old", first=({"x": 0.3},), prior=()))
    strategy.replay([])
    first = strategy.ask()
    assert first is not None and first.params == {"x": 0.3}
    strategy.tell(first.token, TrialState.COMPLETED, [1.0])
    assert strategy.shift == () and inner.replayed == []


def test_a_resumed_retune_of_a_parent_recorded_with_optunas_sums_does_not_re_evaluate_again() -> None:
    """A parent recorded by an earlier tunesmith holds a stepped float as Optuna summed it (0.30000000000000004); the
    re-tune now records it on its grid (0.3). On resume the two did not match: the configuration was queued and run
    again, and the shift was computed without it."""
    space = SearchSpace.from_domains({"x": Float(0.1, 1.0, step=0.1)})
    warm = WarmStart("old", first=({"x": 0.1 + 2 * 0.1},), prior=(PriorTrial({"x": 0.1 + 2 * 0.1}, (1.0,)),
                                                                  PriorTrial({"x": 0.9}, (4.0,))))

    def strategy() -> WarmStartedStrategy:
        inner = build_strategy(StrategyDecision("tpe", {}, ""), space, [Direction.MINIMIZE], 0, 1)
        return WarmStartedStrategy(inner, warm)

    first_run = strategy()
    first_run.replay([])
    asked = first_run.ask()
    assert asked is not None and asked.params == {"x": 0.3}, "the premise: the re-evaluation is recorded on the grid"
    resumed = strategy()
    resumed.replay([TrialRecord(0, TrialState.COMPLETED, dict(asked.params), 0, values=(2.0,))])
    assert resumed.shift == (1.0,), "the re-evaluation's new value pairs with its old one"
    nxt = resumed.ask()
    assert nxt is not None and nxt.params != {"x": 0.3} and nxt.params != {"x": 0.1 + 2 * 0.1}


def _cli(cwd: Path, db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tunesmith.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=240, env={**os.environ, "TUNESMITH_STORAGE": f"sqlite:///{db}", "COLUMNS": "200"})


def _show_json(db: Path, name: str) -> dict[str, object]:
    """`tunesmith show NAME --json`, in this process: a read-back of what the re-tune recorded (a CLI start-up
    with scikit-learn fewer)."""
    from helpers import cli_json_in_process

    return cli_json_in_process("show", name, "--storage", f"sqlite:///{db}")  # type: ignore[return-value]


def _show_text(db: Path, name: str) -> str:
    """What `tunesmith show NAME` prints, in this process, at the 200 columns the CLI processes get."""
    from helpers import cli_in_process

    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "200"
    try:
        code, out, err = cli_in_process("show", name, "--storage", f"sqlite:///{db}")
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns
    assert code == 0, err
    return out


def spec(data: str) -> dict[str, object]:
    return {
        "name": "bc",
        "objective": {"metric": "neg_log_loss", "direction": "maximize"},
        "task": {"estimator": {"sklearn.linear_model.LogisticRegression": {"max_iter": 2000}},
                 "pipeline": ["sklearn.preprocessing.StandardScaler"],
                 "data": {"path": data, "target": "label"}, "cv": {"kind": "stratified", "folds": 3},
                 "holdout": {"fraction": 0.2}, "scoring": "neg_log_loss"},
        "space": {"logisticregression__C": {"type": "float", "low": 0.001, "high": 100.0, "log": True}},
        "strategy": "bo", "budget": {"trials": 5}, "executor": {"kind": "inline"}, "seed": 3,
        "drift": {"retune": {"top_k": 2}},
    }


@pytest.mark.slow
def test_retune_from_another_folder_is_linked_and_starts_from_the_prior_best(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI end to end; the old run and the checks of what was stored go through the store in this process
    (each CLI call pays the import of scikit-learn: only what must be the CLI's is)."""
    project, elsewhere, db = tmp_path / "project", tmp_path / "ops", tmp_path / "tunesmith.db"
    shifted_split(project)
    monkeypatch.chdir(project)  # the old run's workdir (.tunesmith/bc) goes here, not into the repository
    (project / "bc.yaml").write_text(yaml.safe_dump(spec(str(project / "reference.csv"))))
    store = SQLStore(f"sqlite:///{db}")
    run_experiment(load_spec(project / "bc.yaml"), store, RunListener())
    elsewhere.mkdir()
    (project / "shifted.csv").rename(elsewhere / "new.csv")

    proc = _cli(elsewhere, db, "retune", "bc", "--data", "new.csv", "--trials", "3", "-q")
    assert proc.returncode == 0, proc.stderr
    old = store.trials(store.experiment("bc").id)
    new = sorted(store.trials(store.experiment("bc-retune-1").id), key=lambda t: t.number)
    best_two = [t.params for t in sorted(old, key=lambda t: -t.values[0])[:2]]
    assert [t.params for t in new[:2]] == best_two
    assert len(new) == 3 and all(t.state is TrialState.COMPLETED for t in new)
    # the same configurations score worse on the shifted rows: the re-tune really ran on the new data
    old_by = {json.dumps(t.params): t.values[0] for t in old}
    assert all(t.values[0] < old_by[json.dumps(t.params)] for t in new[:2])

    shown = _show_json(db, "bc-retune-1")
    assert shown["lineage"]["parent"] == "bc" and shown["lineage"]["data"] == str(elsewhere / "new.csv")
    assert shown["warm_start"]["prior"] == 5 and len(shown["warm_start"]["first"]) == 2
    assert shown["warm_start"]["mode"] == "transfer" and shown["warm_start"]["taken_as"] == "transfer"  # defaults
    assert store.experiment("bc").attributes["retunes"] == ["bc-retune-1"]

    cold = _cli(elsewhere, db, "retune", "bc-retune-1", "--data", "new.csv", "--trials", "1", "--cold")
    assert cold.returncode == 0, cold.stderr
    assert "re-tune of bc-retune-1 (generation 2, root bc)" in _show_text(db, "bc-retune-2")
    assert "warm_start" not in store.experiment("bc-retune-2").attributes

    bad = _cli(elsewhere, db, "retune", "bc", "--data", "missing.csv")
    assert bad.returncode == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
    for kwargs, says in (({"data": "new.csv", "new_name": "bc"}, "already exists"), ({"data": None}, "--data")):
        with pytest.raises(UserInputError, match=says):
            plan_retune(store, "bc", cwd=elsewhere, **kwargs)  # type: ignore[arg-type]


@pytest.mark.slow
def test_new_rows_must_have_the_experiments_columns_and_extra_ones_are_not_features(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file without a feature column was re-tuned without it, and an extra column (an id, say) became a feature;
    a file without the label was reported as task.data.target, an empty one as task.data.path."""
    monkeypatch.chdir(tmp_path)  # the run's workdir (.tunesmith/bc) goes here, not into the repository
    shifted_split(tmp_path)
    (tmp_path / "bc.yaml").write_text(yaml.safe_dump(spec("reference.csv")))
    store = SQLStore(f"sqlite:///{tmp_path / 'tunesmith.db'}")
    run_experiment(load_spec(tmp_path / "bc.yaml"), store, RunListener())
    header, *rows = [line.split(",") for line in (tmp_path / "shifted.csv").read_text().splitlines()]

    def write(name: str, keep: list[int], extra: bool = False) -> str:
        lines = [[r[i] for i in keep] + ([("row_id" if n == 0 else str(n))] if extra else [])
                 for n, r in enumerate([header, *rows])]
        (tmp_path / name).write_text("\n".join(",".join(line) for line in lines) + "\n")
        return name

    everything = list(range(len(header)))
    without_texture = [i for i in everything if header[i] != "mean_texture"]
    (tmp_path / "empty.csv").write_text("")
    for name, says in ((write("narrow.csv", without_texture), "--data: narrow.csv lacks the experiment's feature "
                                                              "column(s) mean_texture"),
                       (write("unlabelled.csv", everything[:-1]), "--data: unlabelled.csv has no label column 'label'"),
                       ("empty.csv", "--data: empty.csv is empty")):
        with pytest.raises(UserInputError, match=re.escape(says)):
            plan_retune(store, "bc", name, cwd=tmp_path)
    with pytest.raises(UserInputError, match=re.escape("--name: use ASCII letters, digits")):
        plan_retune(store, "bc", "shifted.csv", new_name="bad name!", cwd=tmp_path)  # was reported as 'name:'
    plan = plan_retune(store, "bc", write("wider.csv", everything, extra=True), cwd=tmp_path)
    assert plan.spec.task is not None and plan.spec.task.data.features == header[:-1]
    assert plan.attributes["lineage"]["ignored_columns"] == ["row_id"]
    proc = _cli(tmp_path, tmp_path / "tunesmith.db", "retune", "bc", "--data", "narrow.csv")
    assert proc.returncode == 2 and "mean_texture" in proc.stderr and "Traceback" not in proc.stderr
    assert [e.name for e in store.experiments()] == ["bc"]


def test_a_later_replay_of_other_coordinators_trials_does_not_queue_a_handed_out_reevaluation_again() -> None:
    strategy = WarmStartedStrategy(Recording(), WARM)
    strategy.replay([])
    first = strategy.ask()
    assert first is not None and first.params == {"x": 0.1}
    strategy.replay([TrialRecord(7, TrialState.COMPLETED, {"x": 0.77}, 0, values=(4.0,))])  # another coordinator's
    second = strategy.ask()
    assert second is not None and second.params == {"x": 0.2}
    strategy.replay([TrialRecord(8, TrialState.COMPLETED, {"x": 0.2}, 0, values=(4.0,))])
    third = strategy.ask()
    assert third is not None and third.params not in ({"x": 0.1}, {"x": 0.2})


@pytest.mark.slow
def test_a_retune_name_left_by_a_killed_retune_is_taken_again_and_listed_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A re-tune is named on its parent before it runs; killed before it was recorded, its name stays listed and the
    next re-tune takes it again: it was listed twice (and `delete` asked to delete it twice)."""
    from tunesmith.retune import retune

    shifted_split(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bc.yaml").write_text(yaml.safe_dump(spec(str(tmp_path / "reference.csv"))))
    store = SQLStore(f"sqlite:///{tmp_path / 'tunesmith.db'}")
    run_experiment(load_spec(tmp_path / "bc.yaml"), store, RunListener())
    parent = store.experiment("bc")
    store.set_attributes(parent.id, {"retunes": ["bc-retune-1"]}, parent.updated_at + 1)  # as a SIGKILL leaves it
    result = retune(store, "bc", "shifted.csv", trials=1)
    assert result.experiment.name == "bc-retune-1"
    assert store.experiment("bc").attributes["retunes"] == ["bc-retune-1"]


@pytest.mark.slow
def test_show_says_how_the_retunes_strategy_took_the_prior_trials(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A TPE re-tune replays the parent's trials re-based (drift.retune.prior transfer); `show` said "no other prior
    trial used (strategy tpe takes no prior mean)", true only before TPE took them."""
    from tunesmith.retune import retune

    shifted_split(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bc.yaml").write_text(yaml.safe_dump({**spec(str(tmp_path / "reference.csv")), "strategy": "tpe"}))
    db = tmp_path / "tunesmith.db"
    store = SQLStore(f"sqlite:///{db}")
    run_experiment(load_spec(tmp_path / "bc.yaml"), store, RunListener())
    retune(store, "bc", "shifted.csv", trials=3)
    shown = _show_json(db, "bc-retune-1")
    assert shown["warm_start"]["mode"] == "transfer" and shown["warm_start"]["taken_as"] == "rebased", shown
    text = " ".join(_cli(tmp_path, db, "show", "bc-retune-1").stdout.split())
    assert "prior trials replayed re-based" in text and "takes no prior mean" not in text, text


@pytest.mark.slow
def test_an_nsga2_retune_takes_the_parent_trials_rebased_into_its_first_population(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`drift.retune.prior: transfer` gave an nsga2 re-tune the re-evaluations only; measured
    (benchmarks/retune_samplers.py, nsga2-2), the parent's trials now go, re-based, into NSGA-II's first population
    (tests/test_warm_samplers.py checks that they are its parents)."""
    from tunesmith.retune import retune

    shifted_split(tmp_path)
    monkeypatch.chdir(tmp_path)
    two = {**spec(str(tmp_path / "reference.csv")), "strategy": "nsga2",
           "objective": [{"metric": "neg_log_loss", "direction": "maximize"},
                         {"metric": "fit_time_s", "direction": "minimize"}]}
    (tmp_path / "bc.yaml").write_text(yaml.safe_dump(two))
    store = SQLStore(f"sqlite:///{tmp_path / 'tunesmith.db'}")
    run_experiment(load_spec(tmp_path / "bc.yaml"), store, RunListener())
    retune(store, "bc", "shifted.csv", trials=3)
    warm = store.experiment("bc-retune-1").attributes["warm_start"]
    assert warm["mode"] == "transfer" and warm["taken_as"] == "rebased", {k: warm[k] for k in ("mode", "taken_as")}
    assert all(t.state is TrialState.COMPLETED for t in store.trials(store.experiment("bc-retune-1").id))


def test_a_retune_of_a_retune_defaults_to_half_the_first_tunings_budget(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A re-tune without --trials takes half a budget; halving its parent's, each generation of a `watch` got half
    the last one's (8, then 3 by hand, then 1): the lineage's first tuning's is the one halved."""
    from tunesmith.retune import retune

    monkeypatch.chdir(tmp_path)
    (tmp_path / "obj.py").write_text("def f(config, trial):\n    return (config['x'] - 0.3) ** 2\n")
    (tmp_path / "root.yaml").write_text(yaml.safe_dump({
        "name": "root", "objective": {"metric": "loss", "direction": "minimize"},
        "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}}, "strategy": "random",
        "budget": {"trials": 8}, "executor": {"kind": "inline"}, "trial": {"function": "obj:f"}, "seed": 1}))
    store = SQLStore(f"sqlite:///{tmp_path / 'tunesmith.db'}")
    try:
        run_experiment(load_spec(tmp_path / "root.yaml"), store, RunListener())
        assert plan_retune(store, "root", None).spec.budget.trials == 4
        retune(store, "root", None, trials=3)
        assert plan_retune(store, "root-retune-1", None).spec.budget.trials == 4, "half the first tuning's, not 1"
    finally:
        store.close()
