"""What a trial returns or reports, and what tunesmith makes of it."""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tunesmith.errors import TrialError
from tunesmith.evaluation.context import TrialContext
from tunesmith.evaluation.results import normalize_result
from tunesmith.records import Failure, FailureKind, Report


def invalid(message: str) -> Failure:
    return Failure(FailureKind.INVALID_RESULT, message)


# -- normalize_result ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [0.5, 2, np.float64(0.5), np.float32(0.5), np.int64(2), np.array(0.5), Decimal("0.5")])
def test_a_number_is_the_single_objective(raw: Any) -> None:
    values, metrics = normalize_result(raw, ["loss"])  # type: ignore[misc]
    assert values == (float(raw),)
    assert all(type(v) is float for v in values)
    assert metrics == {}


@pytest.mark.parametrize(("raw", "message"), [
    (float("nan"), "returned nan for 'loss'"),
    (float("inf"), "returned inf for 'loss'"),
    (-float("inf"), "returned -inf for 'loss'"),
    (np.float32("nan"), "returned nan for 'loss'"),
    pytest.param(10**400, "returned inf for 'loss'", id="int-beyond-float"),
    (None, "returned None; return a number or a dict of metrics"),
    ("0.5", "returned str '0.5'; return a number or a dict of metrics"),
    (True, "returned bool True; return a number or a dict of metrics"),
    (np.True_, "returned bool np.True_; return a number or a dict of metrics"),
    ([0.5], "returned list [0.5]; return a number or a dict of metrics"),
    (np.array([0.5, 0.6]), "returned ndarray array([0.5, 0.6]); return a number or a dict of metrics"),
    pytest.param("x" * 200, "returned str '" + "x" * 76 + "...; return a number or a dict of metrics",
                 id="long-str"),
])
def test_what_is_not_a_single_value_says_why(raw: Any, message: str) -> None:
    assert normalize_result(raw, ["loss"]) == invalid(message)


def test_a_dict_gives_the_objective_and_numeric_extras() -> None:
    raw = {"loss": np.float32(0.25), "accuracy": 0.9, "epochs": np.int64(3), "model": "resnet", "flag": True,
           "nested": {"a": 1}, "huge": 10**400}
    assert normalize_result(raw, ["loss"]) == ((0.25,), {"accuracy": 0.9, "epochs": 3.0, "huge": float("inf")})


@pytest.mark.parametrize(("raw", "message"), [
    ({"accuracy": 0.9}, "the result has no 'loss' (the objective metric); keys returned: 'accuracy'"),
    ({}, "the result has no 'loss' (the objective metric); keys returned: none"),
    ({"los": 0.1}, "the result has no 'loss' (the objective metric); it returned 'los', a misspelling? return it as "
                   "'loss', or set the objective's metric to 'los'; keys returned: 'los'"),
    ({"loss": None}, "'loss' is None, not a number"),
    ({"loss": "0.1"}, "'loss' is '0.1', not a number"),
    ({"loss": False}, "'loss' is False, not a number"),
    ({"loss": float("nan")}, "'loss' is nan"),
    ({"loss": -float("inf")}, "'loss' is -inf"),
])
def test_a_dict_without_a_usable_objective_says_why(raw: dict[str, Any], message: str) -> None:
    assert normalize_result(raw, ["loss"]) == invalid(message)


def test_several_objectives_come_back_in_objective_order() -> None:
    raw = {"latency": 12, "accuracy": 0.8, "params": 1e6}
    assert normalize_result(raw, ["accuracy", "latency"]) == ((0.8, 12.0), {"params": 1e6})


def test_several_objectives_need_a_dict_holding_each() -> None:
    assert normalize_result(0.8, ["accuracy", "latency"]) == invalid(
        "returned a single number but the experiment has 2 objectives; return a dict with keys accuracy, latency")
    assert normalize_result({"accuracy": 0.8}, ["accuracy", "latency"]) == invalid(
        "the result has no 'latency' (the objective metric); keys returned: 'accuracy'")


# -- TrialContext.report -----------------------------------------------------------------------------------------

def make_trial(sink: list[Report]) -> TrialContext:
    return TrialContext(3, 11, {"x": 1.0}, "/tmp/trial-3", 1, sink.append, lambda: False)


def test_report_records_and_forwards_each_value() -> None:
    sink: list[Report] = []
    trial = make_trial(sink)
    trial.report(0, 1)
    trial.report(1, 0.5)
    trial.report(np.int64(2), np.float32(0.25))  # an epoch from np.arange, a numpy score
    assert sink == [Report(0, 1.0), Report(1, 0.5), Report(2, 0.25)]
    assert trial.reports == tuple(sink)
    assert all(type(r.step) is int and type(r.value) is float for r in sink)  # they go out as JSON


@pytest.mark.parametrize("step", [-1, -1.0, float("inf"), float("nan"), "1", None, True, np.True_, 2 ** 63,
                                  1e19, np.float64(2.0 ** 63)])
def test_report_rejects_a_bad_step(step: Any) -> None:
    sink: list[Report] = []
    with pytest.raises(TrialError) as err:
        make_trial(sink).report(step, 0.5)
    assert str(err.value) == ("trial.report: step must be a whole number from 0 to 9223372036854775807 (an int, or "
                              f"a whole float such as 1.0); got {step!r}")
    assert sink == []


@pytest.mark.parametrize("step", [0.935672514619883, 1.5, np.float32(0.25), -0.5])
def test_a_fractional_step_says_the_step_comes_first_unlike_optunas_report(step: Any) -> None:
    """Optuna's `trial.report(value, step)` kept in a port, `trial.report(acc, epoch)`, failed every trial with
    "step must be a whole number ...; got 0.935672514619883": nothing said the two arguments are the other way round."""
    sink: list[Report] = []
    with pytest.raises(TrialError) as err:
        make_trial(sink).report(step, 3)
    assert str(err.value) == ("trial.report: step must be a whole number from 0 to 9223372036854775807 (an int, or "
                              f"a whole float such as 1.0); got {step!r}. report(step, value): the step comes first "
                              "(Optuna's Trial.report takes value, step)")
    assert sink == []


def test_report_with_the_step_named_after_optunas_value_first_says_the_step_comes_first(project) -> None:
    """`trial.report(acc, step=epoch)`, Optuna's order with the step named, failed every trial with Python's own
    "TrialContext.report() got multiple values for argument 'step'" and no word of the order. The signature stays
    report(step, value); the trial's failure says which comes first and how to write it."""
    import tunesmith

    project.write("named_step.py", """
        def objective(config, trial):
            trial.report(0.9, step=3)
            return config["x"]
    """)
    spec = project.spec(name="named", trial={"function": "named_step:objective"}, budget={"trials": 1},
                        executor={"kind": "inline", "retries": 0})
    tunesmith.run(project.write_spec(spec), storage=project.storage)
    [trial] = project.trials("named")
    assert trial["state"] == "failed"
    assert trial["error"] == (
        "exception: TypeError: TrialContext.report() got multiple values for argument 'step' (at named_step.py:3 in "
        "objective). report(step, value): the step comes first (Optuna's Trial.report takes value, step): write "
        "trial.report(step, value), or name both: trial.report(step=..., value=...)"), trial["error"]


@pytest.mark.parametrize("method", ["suggest_float", "suggest_int", "suggest_categorical", "suggest_loguniform"])
def test_optunas_suggest_methods_say_the_space_is_declared_in_the_spec(method: str) -> None:
    """`trial.suggest_float("x", -1, 1)`, define-by-run kept in a port, failed every trial with "'TrialContext'
    object has no attribute 'suggest_float'" and no word of `space:`."""
    trial = make_trial([])
    with pytest.raises(AttributeError) as err:
        getattr(trial, method)("x", 0.0, 1.0)
    assert str(err.value) == (f"trial.{method}: tunesmith has no define-by-run; the space is declared in the spec "
                              "(space: {x: {type: float, low: 0, high: 1}}) and the trial reads config['x'] "
                              "(see docs/from-optuna.md)")
    with pytest.raises(AttributeError, match="'TrialContext' object has no attribute 'sugest_float'$"):
        trial.sugest_float  # noqa: B018 - any other name: Python's own message


def test_report_takes_a_whole_float_step_as_that_step_as_a_command_trials_report_line_does() -> None:
    """A command's `{"step": 1.0}` was step 1 while `trial.report(1.0, v)` raised TrialError: one rule for both."""
    sink: list[Report] = []
    trial = make_trial(sink)
    trial.report(1.0, 0.5)
    trial.report(np.float64(2.0), 0.25)
    trial.report(np.float32(3.0), 0.125)
    trial.report(2 ** 63 - 1, 0.1)
    assert sink == [Report(1, 0.5), Report(2, 0.25), Report(3, 0.125), Report(2 ** 63 - 1, 0.1)]
    assert all(type(r.step) is int for r in sink)


@pytest.mark.parametrize("value", [None, "0.5", True, [0.5]])
def test_report_rejects_a_value_that_is_no_number(value: Any) -> None:
    sink: list[Report] = []
    with pytest.raises(TrialError) as err:
        make_trial(sink).report(1, value)
    assert str(err.value) == f"trial.report: value must be a number; got {value!r}"
    assert sink == []


@pytest.mark.parametrize("value,recorded", [
    (float("nan"), math.nan), (np.float64("nan"), math.nan), (float("inf"), math.inf), (-float("inf"), -math.inf),
    pytest.param(10**400, math.inf, id="int-beyond-float")])
def test_report_takes_a_diverged_value_as_a_report(value: Any, recorded: float) -> None:
    """A diverged training's NaN or inf is a result (a scheduler stops the trial), not an error that fails it."""
    sink: list[Report] = []
    make_trial(sink).report(1, value)
    assert len(sink) == 1 and sink[0].step == 1
    assert (math.isnan(sink[0].value) if math.isnan(recorded) else sink[0].value == recorded)


class _Unconvertible:
    """A tensor-like scalar whose conversion fails (a device error, say)."""

    shape = ()

    def __float__(self) -> float:
        raise ValueError("cannot convert")

    def __repr__(self) -> str:
        return "Unconvertible()"


def test_a_scalar_that_fails_to_convert_is_an_invalid_result_not_a_crash() -> None:
    assert normalize_result(_Unconvertible(), ["loss"]) == invalid(
        "returned Unconvertible(), which does not convert to a float")
    assert normalize_result({"loss": _Unconvertible()}, ["loss"]) == invalid("'loss' is Unconvertible(), not a number")
    assert normalize_result({"loss": 1, "other": _Unconvertible()}, ["loss"]) == ((1.0,), {})


# -- non-finite metrics in --json output ---------------------------------------------------------------------------

def _strict_json(text: str) -> Any:
    import json

    def refuse(constant: str) -> Any:
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_every_json_output_is_strict_json_when_a_metric_is_inf_or_nan(project: Any) -> None:
    """`show --json` printed bare Infinity and NaN (no JSON parser but Python's reads them), while `trials --json`
    wrote "inf" and "nan": every --json output is strict JSON, with the strings of trials --json."""
    project.write("odd_metrics.py", """
        def objective(config, trial):
            return {"loss": 0.5, "aux": float("inf"), "aux2": float("nan")}
    """)
    spec = project.write_spec(project.spec(name="odd", trial={"function": "odd_metrics:objective"},
                                           budget={"trials": 1}, executor={"kind": "inline"}))
    project.cli("run", str(spec), "--quiet", check=True)
    shown = _strict_json(project.cli("show", "odd", "--json", check=True).stdout)
    assert shown["best"]["metrics"] == {"aux": "inf", "aux2": "nan"}
    (trial,) = _strict_json(project.cli("trials", "odd", "--json", check=True).stdout)
    assert trial["metrics"] == {"aux": "inf", "aux2": "nan"}
    _strict_json(project.cli("ls", "--json", check=True).stdout)


UNKEPT_NOTE = ("its result's 'model_path', 'converged', 'classes' are not numbers, so they are not kept (a returned "
               "dict's other keys are kept as metrics only where numeric: a string, a bool or a list is not)")


@pytest.mark.parametrize("trial", [{"function": "attrs:objective"}, {"command": "python {spec_dir}/attrs.py"}],
                         ids=["function", "command"])
def test_non_numeric_extras_are_named_once_per_run_not_dropped_silently(project: Any, trial: Any) -> None:
    """Optuna's user_attrs ported as extra keys (a model path, a flag, a list) vanished without a word: only
    `n_iter` was kept. Said once per run in its warnings (every trial returns the same keys), and in each log."""
    project.write("attrs.py", """
        import json
        RESULT = {"loss": 0.5, "n_iter": 12, "model_path": "/tmp/m.pkl", "converged": True, "classes": [0, 1]}
        def objective(config, trial):
            return RESULT
        if __name__ == "__main__":
            print(json.dumps(RESULT))
    """)
    spec = project.write_spec(project.spec(name="attrs", trial=trial, budget={"trials": 3},
                                           executor={"kind": "process", "workers": 2}))
    run = project.cli("run", str(spec), "--quiet", check=True)
    said = [line for line in run.stderr.splitlines() if "not numbers" in line]
    assert len(said) == 1 and said[0].endswith(f": {UNKEPT_NOTE}"), run.stderr
    for t in project.trials("attrs"):
        assert t["state"] == "completed" and t["metrics"] == {"n_iter": 12.0}, t
        assert f"tunesmith: {UNKEPT_NOTE}" in Path(t["log_path"]).read_text()
