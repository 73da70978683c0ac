"""`ExperimentResult.summary()` is what `tunesmith show NAME --json` prints (README, Python API), field for field.

`show` added ``stop_reason``, ``data_fingerprints`` (and ``abandoned``, ``quota_wait``, ``reproducibility``, the
scheduler's evidence) after building the summary the API returned; the API lacked them, and
``open_experiment(...).stop_reason`` was None. Both now come from one function (summary.shown_experiment).
"""

from __future__ import annotations

import json

import pytest
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


def test_to_dataframe_gives_a_row_per_trial_with_optunas_columns(tmp_path, monkeypatch):
    """Optuna's ``study.trials_dataframe()`` had no equivalent: a porter shelled out to ``trials --csv``. One row per
    trial: its values named by objective, ``params_`` (NaN where inactive), ``metrics_``, attempts and times."""
    import math

    import pandas as pd

    monkeypatch.chdir(tmp_path)

    def objective(config, trial):
        if trial.number == 2:
            raise ValueError("an unlucky trial")
        loss = config["x"] + (config["a_val"] if config["kind"] == "a" else 0.0)
        return {"loss": loss, "size": 10 * config["x"], "extra": 1.5}

    storage = f"sqlite:///{tmp_path / 'f.db'}"
    space = {"x": {"type": "float", "low": 0, "high": 1}, "kind": {"type": "categorical", "choices": ["a", "b"]},
             "a_val": {"type": "float", "low": 0, "high": 1, "when": {"kind": "a"}}}
    result = tunesmith.run({"name": "frame", "space": space, "trial": objective, "budget": {"trials": 8},
                            "objective": [{"metric": "loss", "direction": "minimize"},
                                          {"metric": "size", "direction": "minimize"}],
                            "strategy": "random", "seed": 3}, storage=storage)
    df = tunesmith.open_experiment("frame", storage=storage).to_dataframe()
    assert list(df.columns) == ["number", "state", "values_loss", "values_size", "params_x", "params_kind",
                                "params_a_val", "metrics_extra", "attempts",
                                "datetime_start", "datetime_complete", "duration", "seed", "error"], list(df.columns)
    assert list(df.number) == [t.number for t in result.trials] == list(range(8))
    for t, row in zip(result.trials, df.itertuples(index=False), strict=True):
        assert row.state == t.state.value and row.attempts == t.attempts and row.seed == t.seed
        assert row.params_x == t.params["x"] and row.params_kind == t.params["kind"]
        if t.params["kind"] == "a":
            assert row.params_a_val == t.params["a_val"]
        else:
            assert math.isnan(row.params_a_val)  # inactive
        if t.values is None:
            assert math.isnan(row.values_loss) and math.isnan(row.metrics_extra) and "unlucky" in row.error
        else:
            assert (row.values_loss, row.values_size) == t.values and row.metrics_extra == 1.5
        assert row.datetime_start == pd.Timestamp(t.started_at, unit="s", tz="UTC")
        assert row.datetime_complete == pd.Timestamp(t.finished_at, unit="s", tz="UTC")
        assert row.duration.total_seconds() == pytest.approx(t.duration_s, abs=1e-6)
    assert df.loc[2, "state"] == "failed" and {"a", "b"} == set(df.params_kind)
    single = tunesmith.run({"name": "one", "objective": {"metric": "loss", "direction": "minimize"},
                            "space": {"x": {"type": "float", "low": 0, "high": 1}}, "trial": lambda c, t: c["x"],
                            "budget": {"trials": 3}, "seed": 0}, storage=storage).to_dataframe()
    assert list(single.columns[:4]) == ["number", "state", "value", "params_x"] and single.value.notna().all()


def test_to_dataframe_without_pandas_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = tunesmith.run({"name": "nopd", "objective": {"metric": "loss", "direction": "minimize"},
                            "space": {"x": {"type": "float", "low": 0, "high": 1}}, "trial": lambda c, t: c["x"],
                            "budget": {"trials": 1}, "seed": 0}, storage=f"sqlite:///{tmp_path / 'n.db'}")
    monkeypatch.setitem(__import__("sys").modules, "pandas", None)  # as where it is not installed: import fails
    try:
        result.to_dataframe()
    except ImportError as e:
        assert "pip install pandas" in str(e), e
    else:
        raise AssertionError("no ImportError without pandas")
