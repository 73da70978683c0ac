"""The experiment spec: the YAML contract, defaults, units, short forms, the Python form, JSON round trips."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from helpers import CONTRACT_YAML
import yaml
from pydantic import ValidationError

import tunesmith
from tunesmith.errors import SpaceError, SpecError
from tunesmith.evaluation.loading import resolve_function
from tunesmith.records import Direction, FailureKind, ObjectiveSpec
from tunesmith.space import Categorical, Float, Int
from tunesmith.spec import (
    Budget,
    Executor,
    ExperimentSpec,
    Objective,
    StrategyChoice,
    TrialRef,
    load_spec,
    spec_from_dict,
)
from tunesmith.spec.model import check_new_spec
from tunesmith.spec.units import parse_duration, parse_size



def objective(config: dict[str, Any], trial: Any) -> float:
    """A module-level trial function for the Python form of the spec."""
    return float(config["C"])


def _minimal(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "exp",
        "objective": {"metric": "loss", "direction": "minimize"},
        "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
        "trial": {"function": "objectives:quadratic"},
    }
    spec.update(overrides)
    return spec


def _error(data: dict[str, Any]) -> SpecError:
    with pytest.raises(SpecError) as info:
        spec_from_dict(data)
    return info.value


def _write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


# -- the YAML contract ---------------------------------------------------------------------------------------


def test_the_contract_yaml_loads_with_every_key_interpreted(tmp_path):
    spec = load_spec(_write(tmp_path, CONTRACT_YAML))
    assert spec.name == "svc-wine"
    assert spec.objective == (Objective(metric="accuracy", direction=Direction.MAXIMIZE),)
    assert spec.objectives == (ObjectiveSpec("accuracy", Direction.MAXIMIZE),)
    assert list(spec.space) == ["C", "kernel", "gamma", "layers"]
    assert spec.space["C"] == Float(0.001, 1000.0, log=True)
    assert spec.space["kernel"] == Categorical(["rbf", "linear"])
    assert spec.space["gamma"] == Float(0.0001, 1.0, log=True, when={"kernel": "rbf"})
    assert spec.space["layers"] == Int(1, 4)
    assert spec.strategy == StrategyChoice(name="tpe", options={})
    assert spec.budget == Budget(trials=50, wall_time=600.0)
    assert spec.executor.kind == "process"
    assert spec.executor.workers == 2
    assert spec.executor.trial_timeout == 60.0
    assert spec.executor.memory_limit == 2 * 1024**3
    assert spec.executor.retries == 1
    assert spec.trial == TrialRef(function="mymodule:objective")
    assert spec.seed == 0
    assert spec.base_dir == str(tmp_path.resolve())
    assert spec.search_space.order == ("C", "kernel", "gamma", "layers")
    assert spec.search_space.is_conditional


def test_load_spec_overrides_replace_file_keys_and_none_is_ignored(tmp_path):
    path = _write(tmp_path, CONTRACT_YAML)
    assert load_spec(path, name="other").name == "other"
    assert load_spec(path, name=None).name == "svc-wine"
    assert load_spec(path, storage="sqlite:///x.db").storage == "sqlite:///x.db"


def test_an_override_is_validated_like_the_file(tmp_path):
    with pytest.raises(SpecError) as info:
        load_spec(_write(tmp_path, CONTRACT_YAML), name="has space")
    assert info.value.path == "name"
    assert info.value.message.endswith("got 'has space'")


def test_yaml_exponent_without_a_dot_is_still_a_number(tmp_path):
    # YAML 1.1 (PyYAML) reads `1e-3` as a string; the spec must still take it as 0.001
    spec = load_spec(
        _write(
            tmp_path,
            """\
        name: e
        objective: {metric: m, direction: minimize}
        space: {lr: {type: float, low: 1e-5, high: 1e-1, log: true}}
        trial: objectives:quadratic
        """,
        )
    )
    assert (spec.space["lr"].low, spec.space["lr"].high) == (1e-5, 0.1)


# -- the loader's own errors ---------------------------------------------------------------------------------


def test_yaml_syntax_error_names_file_line_and_column(tmp_path):
    path = _write(tmp_path, "name: e\nobjective: {metric: m, direction: minimize\nspace: {}\n", "broken.yaml")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert info.value.path == ""
    assert (
        str(info.value)
        == "YAML syntax error in broken.yaml at line 3, column 6: expected ',' or '}', but got ':'"
    )


@pytest.mark.parametrize(("opening", "closing"), [("[", "]"), ("{a: ", "}")], ids=["lists", "mappings"])
def test_yaml_nested_too_deeply_is_refused_naming_file_and_line(tmp_path, opening, closing):
    """500 levels ran PyYAML's recursive composer out of Python's stack: a RecursionError traceback."""
    path = _write(tmp_path, "name: e\ntags:\n  x: " + opening * 500 + "1" + closing * 500 + "\n", "deep.yaml")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert info.value.path == ""
    assert str(info.value).startswith("deep.yaml is nested too deeply at line 3, column ")
    assert str(info.value).endswith(": more than 100 lists and mappings inside each other; a spec needs a few levels: "
                                    "flatten it (or quote it, if it is text)")


def _aliases_of_aliases(levels: int) -> str:
    """A YAML list of nine aliases of nine aliases ..., ``levels`` deep: 9**(levels + 1) strings once written out,
    from a few hundred bytes (PyYAML shares each aliased list)."""
    parts = ['&x0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    parts += [f"&x{k} [" + ",".join([f"*x{k - 1}"] * 9) + "]" for k in range(1, levels + 1)]
    return "[" + ", ".join(parts) + "]"


def test_yaml_aliases_that_repeat_too_much_are_refused_naming_file_and_line(tmp_path):
    """A 600-byte spec of aliases of aliases loaded at once (shared lists), then the message quoting the bad tag
    value wrote out 387 million strings: 3.4 GB, 90 s, a MemoryError traceback (tests/test_cli_input.py runs that one
    under a memory cap; this one, 4.8 million strings, is refused as well)."""
    path = _write(tmp_path, "name: e\ntags:\n  a: " + _aliases_of_aliases(6) + "\n", "bomb.yaml")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert info.value.path == ""
    assert str(info.value).startswith("bomb.yaml repeats too much through aliases at line 3, column ")
    assert str(info.value).endswith(": its aliases (*name) repeat more than 1,000,000 values and characters in all "
                                    "(aliases of aliases multiply); a spec repeats a few small parts: write the "
                                    "values out, or alias each part once")


def test_yaml_nested_too_deeply_through_aliases_is_refused(tmp_path):
    """Each alias one list deeper than the last: 1500 levels written two deep were a RecursionError traceback."""
    chain = ", ".join(["&x0 [1]"] + [f"&x{k} [*x{k - 1}]" for k in range(1, 1500)])
    path = _write(tmp_path, f"name: e\ntags:\n  a: [{chain}]\n", "deep.yaml")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value).startswith("deep.yaml is nested too deeply at line 3, column ")


def test_yaml_aliases_a_spec_writes_still_load(tmp_path):
    """A few aliases (a shared domain, merged into another) are no bomb."""
    path = _write(tmp_path, """\
        name: e
        objective: {metric: loss, direction: minimize}
        space:
          x: &d {type: float, low: 0.0, high: 1.0}
          y: *d
          z: {<<: *d, high: 2.0}
        trial: {function: "objectives:quadratic"}
        """)
    spec = load_spec(path)
    assert [spec.space[n].high for n in ("x", "y", "z")] == [1.0, 1.0, 2.0]


def test_an_error_quotes_a_large_value_cut_short():
    """Each message quoted the whole value (a list of 100 000 tags' worth of text: a 0.7 MB message)."""
    big = [f"item{i}" for i in range(100_000)]
    tags = _error(_minimal(tags={"a": big}))
    assert tags.path == "tags.a"
    assert tags.message.startswith("a tag's value is one string; got ['item0', 'item1', ")
    assert "..." in tags.message and len(tags.message) < 400, tags.message
    units = _error(_minimal(budget={"time": big}))
    assert units.path == "budget.time" and len(units.message) < 400, units.message
    from tunesmith.strategy import decide

    with pytest.raises(SpecError) as info:
        decide("tpe", {"n_startup_trials": big}, ExperimentSpec.model_validate(_minimal()).search_space, 10, 1, 1)
    assert info.value.path == "strategy.n_startup_trials"
    assert info.value.message.endswith("got ['item0', 'item1', 'item2', 'item3', 'item4', 'item5', 'item6', "
                                       "'item7', ...]")


def test_an_int_bound_past_64_bits_is_refused_at_the_field():
    """2**63 was an OverflowError traceback counting the grid (len(range(...))) at validate and run; 10**400 one in
    the sampler mid-run."""
    high = _error(_minimal(space={"x": {"type": "int", "low": 0, "high": 2**63}}))
    assert (high.path, high.message) == ("space.x.high", "input should be less than or equal to 9223372036854775807; "
                                                         "got 9223372036854775808")
    low = _error(_minimal(space={"x": {"type": "int", "low": -(10**400), "high": 0}}))
    assert low.path == "space.x.low"
    from tunesmith.space.search_space import values_in_grid

    assert values_in_grid(Int(-(2**63) + 1, 2**63 - 1), 5) == 2**64 - 1


@pytest.mark.parametrize(("tags", "where", "message"), [
    ({"t": "v\x00w"}, "tags.t", "holds the control character '\\x00' at position 1 ('v\\x00w'); a tag is plain "
                               "text: remove it"),
    ({"t": "line\nbreak"}, "tags.t", "holds the control character '\\n' at position 4 ('line\\nbreak'); a tag is "
                                    "plain text: remove it"),
    ({"a\tb": "c"}, "tags", "the key 'a\\tb' holds the control character '\\t' at position 1; a tag is plain text: "
                           "remove it"),
    ({"t": "a\x9b2Jb"}, "tags.t", "holds the control character '\\x9b' at position 1 ('a\\x9b2Jb'); a tag is plain "
                                 "text: remove it"),  # a C1 CSI, which a terminal acts on as ESC [
], ids=["nul-value", "newline-value", "tab-key", "c1-value"])
def test_a_tag_holding_a_control_character_is_refused(tmp_path, tags, where, message):
    """A NUL in a tag passed validate; the tag became a quota key, which PostgreSQL refuses a NUL in: every run and
    resume of the experiment failed with a storage error."""
    path = _write(tmp_path, yaml.safe_dump(_minimal(tags=tags)))
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert (info.value.path, info.value.message) == (where, message)
    assert spec_from_dict(_minimal(tags=tags), recorded=True).tags == tags  # a recorded one stays readable


def test_an_enqueued_float_off_its_grid_is_refused_in_a_new_spec_and_read_in_a_recorded_one(tmp_path):
    """A recorded experiment whose enqueue holds 0.25 for step 0.5 ran it (accepted before the grid check): its
    stored spec failed to load, so resume, show, spec and promote of it all failed."""
    data = _minimal(space={"x": {"type": "float", "low": 0.0, "high": 2.0, "step": 0.5}}, enqueue=[{"x": 0.25}])
    with pytest.raises(SpecError) as info:
        load_spec(_write(tmp_path, yaml.safe_dump(data)))
    assert info.value.path == "enqueue[0].x" and "not on its grid" in info.value.message
    for recorded in (True, False):  # read as shown (recorded) and as resumed (checked in full, not as new)
        assert spec_from_dict(data, recorded=recorded).enqueue == ({"x": 0.25},)
    assert spec_from_dict({**data, "enqueue": [{"x": 1}]}, recorded=True).enqueue == ({"x": 1.0},)  # still read


@pytest.mark.parametrize(("config", "path", "message"), [
    ({"alhpa": 0.5, "n": 2}, "enqueue[0].alhpa",
     "names no parameter of the space; did you mean 'alpha'? parameters: alpha, n"),
    ({"alpha": 0.5, "n": 2, "zzz": 1}, "enqueue[0].zzz", "names no parameter of the space; parameters: alpha, n"),
], ids=["typo", "unlike-any"])
def test_a_misspelt_parameter_in_an_enqueued_configuration_gets_a_did_you_mean(tmp_path, config, path, message):
    """`enqueue: [{alhpa: 0.5}]` said "enqueue[0].alpha: missing a value for this active parameter": it named the
    parameter the writer had meant to give, not the key they wrote, and offered no did-you-mean, as every other
    unknown name of a spec does."""
    data = _minimal(space={"alpha": {"type": "float", "low": 0.0, "high": 1.0},
                           "n": {"type": "int", "low": 1, "high": 5}}, enqueue=[config])
    with pytest.raises(SpaceError) as info:
        load_spec(_write(tmp_path, yaml.safe_dump(data)))
    assert (info.value.path, info.value.message) == (path, message)


@pytest.mark.parametrize(("text", "kind"), [("- a\n- b\n", "list"), ("just text\n", "str")])
def test_a_document_that_is_not_a_mapping_is_rejected(tmp_path, text, kind):
    with pytest.raises(SpecError) as info:
        load_spec(_write(tmp_path, text, "s.yaml"))
    assert str(info.value) == f"s.yaml must hold a mapping of keys (name, objective, space, ...); got {kind}"


def test_a_missing_spec_file_is_named(tmp_path):
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "nope.yaml")
    assert str(info.value) == f"spec file {str(tmp_path / 'nope.yaml')!r} does not exist"


def test_yaml_is_loaded_safely(tmp_path):
    path = _write(tmp_path, "!!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert "YAML syntax error" in str(info.value)


# -- defaults ------------------------------------------------------------------------------------------------


def test_defaults_of_a_minimal_spec():
    spec = spec_from_dict(_minimal())
    assert spec.description is None
    assert spec.strategy == StrategyChoice(name="auto", options={})
    assert spec.budget == Budget(trials=100, wall_time=None, target=None, patience=None)
    ex = spec.executor
    assert (ex.kind, ex.workers, ex.trial_timeout, ex.memory_limit, ex.retries) == (
        "process",
        1,
        None,
        None,
        1,
    )
    assert ex.retry_on == (FailureKind.CRASHED, FailureKind.MEMORY, FailureKind.LOST)
    assert (ex.retry_backoff, ex.grace_period, ex.max_trials_per_worker) == (1.0, 30.0, None)
    assert (spec.seed, spec.storage, spec.workdir, spec.base_dir) == (None, None, None, None)
    assert spec.tags == {}
    assert spec.trial.env == {}


@pytest.mark.parametrize("missing", ["name", "objective", "space"])
def test_required_keys_are_named_with_what_to_write(missing):
    data = _minimal()
    del data[missing]
    e = _error(data)
    assert e.path == missing and e.message.startswith("this field is required: ")
    assert "e.g." in e.message


def _task_spec(metric: str, **task: Any) -> dict[str, Any]:
    return {"name": "t", "objective": {"metric": metric, "direction": "maximize"},
            "task": {"estimator": "sklearn.linear_model.LogisticRegression", "data": {"sklearn": "breast_cancer"},
                     **task},
            "space": {"logisticregression__C": {"type": "float", "low": 0.01, "high": 10, "log": True}},
            "budget": {"trials": 2}}


def test_a_tasks_scoring_defaults_to_the_objectives_metric():
    # The objective must name the task's scoring anyway; a new user writes it once, in the objective.
    spec = spec_from_dict(_task_spec("roc_auc"))
    assert spec.task is not None and spec.task.scoring == "roc_auc"
    assert spec_from_dict(json.loads(spec.model_dump_json())).task.scoring == "roc_auc"  # stored form reloads


def test_an_objective_metric_that_is_a_scorer_typo_is_named_there():
    e = _error(_task_spec("auc"))
    assert e.path == "objective.metric" and "did you mean 'roc_auc'?" in e.message


def test_a_task_without_a_scorer_anywhere_says_what_to_write():
    e = _error(_task_spec("profit_per_customer"))
    assert e.path == "task.scoring" and "e.g. scoring: roc_auc" in e.message


def test_a_spec_needs_trial_code_or_a_task():
    data = _minimal()
    del data["trial"]
    e = _error(data)
    assert e.path == "spec" and e.message.startswith("give exactly one of `trial`")


def test_the_spec_is_frozen():
    spec = spec_from_dict(_minimal())
    with pytest.raises(ValidationError):
        spec.name = "other"  # type: ignore[misc]


# -- durations and sizes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("60s", 60.0),
        ("10m", 600.0),
        ("1h30m", 5400.0),
        ("1h 30m", 5400.0),
        ("500ms", 0.5),
        ("1.5h", 5400.0),
        ("2d", 172800.0),
        ("1m30s", 90.0),
        (90, 90.0),
        (2.5, 2.5),
        ("90", 90.0),  # quoted, a number is seconds as it is unquoted: it said "expected a duration like 90s"
        (" 2.5 ", 2.5),
    ],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds
    spec = spec_from_dict(_minimal(budget={"wall_time": text}, executor={"trial_timeout": text}))
    assert (spec.budget.wall_time, spec.executor.trial_timeout) == (seconds, seconds)


DURATION_FORMS = "expected a duration like 90s, 10m, 1h30m or 2d (units: ms, s, m, h, d; a bare number is seconds)"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("10 minutes", f"{DURATION_FORMS}; got '10 minutes'"),
        ("2 days", f"{DURATION_FORMS}; got '2 days'"),  # it never said that 2d works
        ("", f"{DURATION_FORMS}; got ''"),
        ("-5s", f"{DURATION_FORMS}; got '-5s'"),
        (True, f"{DURATION_FORMS}; got True"),
        ("0s", "must be a finite positive duration; got '0s'"),
        (-1, "must be a finite positive duration; got -1"),
        # nan passed, and a trial_timeout of nan timed nothing out (a walk through bad input)
        (float("nan"), "must be a finite positive duration; got nan"),
        (float("inf"), "must be a finite positive duration; got inf"),
        (1e999, "must be a finite positive duration; got inf"),
    ],
)
def test_bad_durations_name_the_field(value, message):
    e = _error(_minimal(executor={"trial_timeout": value}))
    assert (e.path, e.message) == ("executor.trial_timeout", message)
    assert _error(_minimal(budget={"wall_time": value})).path == "budget.wall_time"
    assert _error(_minimal(executor={"retry_backoff": value})).path == "executor.retry_backoff"
    assert _error(_minimal(executor={"grace_period": value})).path == "executor.grace_period"


def test_a_budget_a_store_cannot_count_to_or_a_target_that_is_not_a_number_is_refused():
    """budget.trials of 10^23 validated, then the run recorded the experiment and failed on SQLite's 64-bit
    integers with a traceback; a target of nan never stopped anything."""
    e = _error(_minimal(budget={"trials": 10**23}))
    assert (e.path, e.message) == ("budget.trials", f"input should be less than or equal to 1000000000; got {10**23}")
    assert _error(_minimal(budget={"patience": 10**23})).path == "budget.patience"
    e = _error(_minimal(budget={"target": float("nan")}))
    assert e.path == "budget.target" and "finite number" in e.message


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("2GiB", 2 * 1024**3),
        ("512MiB", 512 * 1024**2),
        ("1GB", 10**9),
        ("2gib", 2 * 1024**3),
        ("1.5GiB", 3 * 1024**3 // 2),
        ("2 GiB", 2 * 1024**3),
        ("4096", 4096),
        (4096, 4096),
        ("100KiB", 102400),
    ],
)
def test_sizes(text, size):
    assert parse_size(text) == size
    assert spec_from_dict(_minimal(executor={"memory_limit": text})).executor.memory_limit == size


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2G", "expected a size like 512MiB or 2GiB; got '2G'"),
        ("lots", "expected a size like 512MiB or 2GiB; got 'lots'"),
        (False, "expected a size like 512MiB or 2GiB; got False"),
        (0, "must be a positive size; got 0"),
        ("0MiB", "must be a positive size; got '0MiB'"),
    ],
)
def test_bad_sizes_name_the_field(value, message):
    e = _error(_minimal(executor={"memory_limit": value}))
    assert (e.path, e.message) == ("executor.memory_limit", message)


# -- strategy short forms ------------------------------------------------------------------------------------


def test_strategy_forms_are_equivalent():
    long = spec_from_dict(_minimal(strategy={"name": "tpe", "options": {"n_startup_trials": 5}}))
    flat = spec_from_dict(_minimal(strategy={"name": "tpe", "n_startup_trials": 5}))
    assert flat.strategy == long.strategy == StrategyChoice(name="tpe", options={"n_startup_trials": 5})
    assert flat == long
    assert spec_from_dict(_minimal(strategy="tpe")).strategy == StrategyChoice(name="tpe", options={})
    assert spec_from_dict(_minimal(strategy={"name": "tpe"})).strategy == StrategyChoice(
        name="tpe", options={}
    )


def test_a_strategy_given_as_any_mapping_reads_as_a_dict():
    """walk2's check of the strategy's form accepted a dict only: a MappingProxyType (any Mapping not a dict, as
    config libraries give) was refused as 'must be a strategy name or a mapping'."""
    from types import MappingProxyType

    proxy = MappingProxyType({"name": "tpe", "n_startup_trials": 5})
    assert spec_from_dict(_minimal(strategy=proxy)).strategy == StrategyChoice(name="tpe",
                                                                               options={"n_startup_trials": 5})
    long = MappingProxyType({"name": "tpe", "options": {"n_startup_trials": 5}})
    assert spec_from_dict(_minimal(strategy=long)).strategy.options == {"n_startup_trials": 5}


def test_strategy_options_without_a_name_belong_to_auto():
    assert spec_from_dict(_minimal(strategy={"points": 3})).strategy == StrategyChoice(
        name="auto", options={"points": 3}
    )


@pytest.mark.parametrize(
    ("strategy", "hint"),
    [("tpee", "did you mean 'tpe'? "), ({"name": "randm"}, "did you mean 'random'? "),
     ("bayesian", "did you mean 'bo'? "), ("bayes", "did you mean 'bo'? "), ("gp-bo", "did you mean 'bo'? "),
     ("banana", "")],
)
def test_unknown_strategy_lists_the_known_ones(strategy, hint):
    e = _error(_minimal(strategy=strategy))
    got = strategy if isinstance(strategy, str) else strategy["name"]
    assert e.path == "strategy.name"
    assert e.message == (
        f"unknown strategy {got!r}; {hint}choose one of auto, random, grid, qmc, tpe, cmaes, gp, "
        f"nsga2, bo (got {got!r})"
    )


# -- objectives ----------------------------------------------------------------------------------------------


def test_one_objective_as_a_mapping_or_a_one_item_list_is_the_same():
    as_map = spec_from_dict(_minimal(objective={"metric": "loss", "direction": "minimize"}))
    as_list = spec_from_dict(_minimal(objective=[{"metric": "loss", "direction": "minimize"}]))
    assert as_map == as_list
    assert as_map.objective == (Objective(metric="loss", direction=Direction.MINIMIZE),)


def test_several_objectives_as_a_list_keep_their_order():
    spec = spec_from_dict(
        _minimal(
            objective=[
                {"metric": "acc", "direction": "maximize"},
                {"metric": "latency", "direction": "minimize"},
            ]
        )
    )
    assert spec.objectives == (
        ObjectiveSpec("acc", Direction.MAXIMIZE),
        ObjectiveSpec("latency", Direction.MINIMIZE),
    )


def test_objective_errors_have_paths_with_and_without_a_list():
    e = _error(_minimal(objective={"metric": "loss", "direction": "minimise"}))
    assert (e.path, e.message) == (
        "objective.direction",
        "must be one of 'minimize' or 'maximize'; got 'minimise' (did you mean 'minimize'?)",
    )
    e = _error(
        _minimal(objective=[{"metric": "a", "direction": "maximize"}, {"metric": "b", "direction": "up"}])
    )
    assert (e.path, e.message) == (
        "objective.1.direction",
        "must be one of 'minimize' or 'maximize'; got 'up'",
    )
    e = _error(
        _minimal(
            objective=[{"metric": "a", "direction": "maximize"}, {"metric": "a", "direction": "minimize"}]
        )
    )
    assert (e.path, e.message) == (
        "objective",
        "metric 'a' appears twice; each objective needs its own metric",
    )
    assert _error(_minimal(objective=[])).path == "objective"
    assert _error(_minimal(objective={"metric": "", "direction": "minimize"})).path == "objective.metric"


def test_target_needs_a_single_objective():
    e = _error(
        _minimal(
            objective=[{"metric": "a", "direction": "maximize"}, {"metric": "b", "direction": "minimize"}],
            budget={"trials": 5, "target": 0.9},
        )
    )
    assert e.message == "budget.target applies to one objective; remove it or use a single objective"


# -- budget --------------------------------------------------------------------------------------------------


def test_budget_without_any_limit_is_rejected_unless_the_grid_ends_it():
    e = _error(_minimal(budget={"trials": None}))
    assert (e.path, e.message) == ("budget", "needs a limit that ends the run: trials, wall_time, cost or patience "
                                              "(or strategy: grid, which ends with its last configuration)")
    # a target alone may never be reached: the run would go on for ever (a new spec's check: one recorded so resumes)
    alone = spec_from_dict(_minimal(budget={"trials": None, "target": 0.01}))
    with pytest.raises(SpecError) as info:
        check_new_spec(alone)
    e = info.value
    assert (e.path, e.message) == ("budget.target", "a target may never be reached, so it cannot be the only "
                                                     "limit: add trials, wall_time, cost or patience")
    assert spec_from_dict(_minimal(budget={"trials": None, "target": 0.01}, strategy="grid")).budget.target == 0.01
    assert spec_from_dict(_minimal(budget={"trials": None}, strategy="grid")).budget.trials is None
    assert spec_from_dict(_minimal(budget={"trials": None, "wall_time": "1h"})).budget == Budget(
        trials=None, wall_time=3600.0
    )
    # a time or money limit alone has no trial cap; with neither, the default of 100 stays
    assert spec_from_dict(_minimal(budget={"wall_time": "1h"})).budget.trials is None
    assert spec_from_dict(_minimal(budget={"wall_time": "1h"})).to_json()["budget"]["trials"] is None
    assert spec_from_dict(_minimal(budget={"patience": 5})).budget.trials == 100
    assert spec_from_dict(_minimal(budget={"wall_time": "1h", "trials": 30})).budget.trials == 30


@pytest.mark.parametrize(
    ("budget", "path", "message"),
    [
        ({"trials": -1}, "budget.trials", "input should be greater than 0; got -1"),
        ({"trials": 0}, "budget.trials", "input should be greater than 0; got 0"),
        ({"patience": 0}, "budget.patience", "input should be greater than 0; got 0"),
    ],
)
def test_budget_counts_must_be_positive(budget, path, message):
    e = _error(_minimal(budget=budget))
    assert (e.path, e.message) == (path, message)


# -- unknown keys name themselves ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        (_minimal(budget={"trails": 5}), "budget.trails", "unknown key 'trails'; did you mean 'trials'?"),
        ({**_minimal(), "stratgy": "tpe"}, "stratgy", "unknown key 'stratgy'; did you mean 'strategy'?"),
        (
            _minimal(executor={"worker": 2}),
            "executor.worker",
            "unknown key 'worker'; did you mean 'workers'?",
        ),
        (
            _minimal(space={"x": {"type": "float", "low": 0, "high": 1, "lg": True}}),
            "space.x.lg",
            "unknown key 'lg'; did you mean 'log'?",
        ),
        (
            _minimal(objective={"metirc": "m", "direction": "minimize"}),
            "objective.metirc",
            "unknown key 'metirc'; did you mean 'metric'?",
        ),
        (
            _minimal(trial={"fucntion": "a:b"}),
            "trial.fucntion",
            "unknown key 'fucntion'; did you mean 'function'?",
        ),
        (
            {**_minimal(), "zzz": 1},
            "zzz",
            "unknown key 'zzz'; accepted keys: "  # base_dir is the loader's, never offered
            + ", ".join(sorted(set(tunesmith.ExperimentSpec.model_fields) - {"base_dir"})),
        ),
        (  # it suggested 'scheduler': 'seed' is given, so never suggested, and scheduler is 0.62 like sede
            {**_minimal(), "seed": 0, "sede": 1},
            "sede",
            "unknown key 'sede'; did you mean 'seed'? (written already: keep one)",
        ),
    ],
    ids=["budget", "top-level", "executor", "domain", "objective", "trial", "no-close-match", "beside-its-twin"],
)
def test_unknown_keys_are_named_in_the_path_with_a_suggestion(data, path, message):
    e = _error(data)
    assert (e.path, e.message) == (path, message)


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        (_minimal(trial={"cmd": "echo {x}"}), "trial.cmd", "unknown key 'cmd'; did you mean 'command'?"),
        (_minimal(space={"x": {"type": "float", "low": 0.001, "high": 1, "loq": True}}), "space.x.loq",
         "unknown key 'loq'; did you mean 'log'?"),
        (_minimal(space={"x": {"type": "float", "low": 0.001, "high": 1, "Log": True}}), "space.x.Log",
         "unknown key 'Log'; did you mean 'log'?"),
        ({**_minimal(), "workers": 2}, "workers",
         "unknown key 'workers'; it belongs under executor: write executor: {workers: ...}"),
        ({**_minimal(), "trial_timeout": "1h"}, "trial_timeout",
         "unknown key 'trial_timeout'; it belongs under executor: write executor: {trial_timeout: ...}"),
        ({**_minimal(), "memory_limit": "2GB"}, "memory_limit",
         "unknown key 'memory_limit'; it belongs under executor: write executor: {memory_limit: ...}"),
        ({**_minimal(), "retries": 2}, "retries",
         "unknown key 'retries'; it belongs under executor: write executor: {retries: ...}"),
        ({**_minimal(), "cwd": "trial_dir"}, "cwd", "unknown key 'cwd'; it belongs under trial: write trial: {cwd: ...}"),
        ({**_minimal(), "Workers": 2}, "Workers",
         "unknown key 'Workers'; it belongs under executor: write executor: {workers: ...}"),
        ({**_minimal(), "command": "python train.py {x}"}, "command",
         "unknown key 'command'; it belongs under trial: write trial: {command: ...}"),
        ({**_minimal(), "function": "objectives:quadratic"}, "function",
         "unknown key 'function'; it belongs under trial: write trial: {function: ...}"),
    ],
    ids=["cmd", "loq-not-low-given", "Log-itself-not-given", "workers", "trial_timeout", "memory_limit", "retries", "cwd", "Workers-as-spelt",
         "command", "function"],
)
def test_well_known_mixups_get_the_hint_meant_not_the_nearest_spelling(data, path, message):
    """`cmd` suggested 'cwd', `loq` suggested 'low' (already given), top-level `workers` suggested 'workdir'."""
    e = _error(data)
    assert (e.path, e.message) == (path, message)


def _without_objective(**extra: Any) -> dict[str, Any]:
    spec = _minimal(**extra)
    del spec["objective"]
    return spec


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        (_without_objective(direction="maximize"), "direction",
         "unknown key 'direction'; it belongs under objective: write objective: {direction: ...}"),
        (_without_objective(directions=["maximize", "minimize"]), "directions",
         "unknown key 'directions'; it belongs under objective: write objective as a list, one "
         "{metric: ..., direction: ...} an objective"),
        (_without_objective(metric="accuracy"), "metric",
         "unknown key 'metric'; it belongs under objective: write objective: {metric: ...}"),
        ({**_minimal(), "trials": 20}, "trials",
         "unknown key 'trials'; it belongs under budget: write budget: {trials: ...}"),
        ({**_minimal(), "n_trials": 20}, "n_trials",
         "unknown key 'n_trials'; it belongs under budget as trials: write budget: {trials: ...}"),
        ({**_minimal(), "timeout": 60}, "timeout",
         "unknown key 'timeout'; it belongs under budget as wall_time: write budget: {wall_time: ...}"),
        ({**_minimal(), "wall_time": "60s"}, "wall_time",
         "unknown key 'wall_time'; it belongs under budget: write budget: {wall_time: ...}"),
        ({**_minimal(), "n_jobs": 2}, "n_jobs",
         "unknown key 'n_jobs'; it belongs under executor as workers: write executor: {workers: ...}"),
        ({**_minimal(), "study_name": "x"}, "study_name",
         "unknown key 'study_name'; did you mean 'name'? (written already: keep one)"),
        ({**_minimal(), "pruner": "median"}, "pruner", "unknown key 'pruner'; did you mean 'scheduler'?"),
        ({**_minimal(), "sampler": "tpe"}, "sampler", "unknown key 'sampler'; did you mean 'strategy'?"),
        (_minimal(budget={"timeout": 60}), "budget.timeout", "unknown key 'timeout'; did you mean 'wall_time'?"),
        (_minimal(space={"x": {"type": "loguniform", "low": 0.001, "high": 1}}), "space.x",
         "unknown type 'loguniform'; write type: float, with log: true; use one of float, int, categorical"),
        (_minimal(space={"x": {"type": "uniform", "low": 0, "high": 1}}), "space.x",
         "unknown type 'uniform'; write type: float; use one of float, int, categorical"),
        (_minimal(space={"x": {"type": "int_uniform", "low": 0, "high": 9}}), "space.x",
         "unknown type 'int_uniform'; write type: int; use one of float, int, categorical"),
        (_minimal(space={"x": {"type": "discrete_uniform", "low": 0, "high": 1}}), "space.x",
         "unknown type 'discrete_uniform'; write type: float, with step: ...; use one of float, int, categorical"),
        (_minimal(space={"x": {"type": "float", "low": 0, "high": 1, "q": 0.1}}), "space.x.q",
         "unknown key 'q'; did you mean 'step'?"),
        (_minimal(space={"n": {"type": "int", "low": 0, "high": 10, "q": 2}}), "space.n.q",
         "unknown key 'q'; did you mean 'step'?"),
        ({**_minimal(), "user_attrs": {"team": "vision"}}, "user_attrs",
         "unknown key 'user_attrs'; did you mean 'tags'?"),
    ],
    ids=["direction", "directions", "metric", "trials-beside-trial", "n_trials", "timeout", "wall_time", "n_jobs",
         "study_name", "pruner", "sampler", "budget.timeout", "loguniform", "uniform", "int_uniform",
         "discrete_uniform", "float-q", "int-q", "user_attrs"],
)
def test_optunas_words_get_the_tunesmith_place_they_meant(data, path, message):
    """A spec ported from Optuna: top-level `direction` suggested 'description', `trials` beside `trial` said
    "written already: keep one", n_trials, n_jobs, pruner, sampler got only the list of accepted keys."""
    e = _error(data)
    assert (e.path, e.message) == (path, message)


def test_validate_names_every_optuna_word_of_a_spec_at_once(tmp_path):
    """A spec ported from Optuna with n_trials, sampler and a domain's q was refused for n_trials alone: fixed, it
    was refused for sampler, then for q, one validate each. All three are named in one message, each with its
    tunesmith place; a mistake of another kind after them is left for the next validate, as before."""
    data = {**_minimal(space={"x": {"type": "float", "low": 0.0, "high": 1.0, "q": 0.1},
                              "k": {"type": "loguniform", "low": 0.01, "high": 1.0}}),
            "n_trials": 20, "sampler": "tpe", "seed": "zero"}
    with pytest.raises(SpecError) as info:
        load_spec(_write(tmp_path, yaml.safe_dump(data, sort_keys=False)))
    assert info.value.path == "n_trials", info.value
    assert str(info.value) == (
        "n_trials: unknown key 'n_trials'; it belongs under budget as trials: write budget: {trials: ...}; also "
        "sampler: unknown key 'sampler'; did you mean 'strategy'?; also space.x.q: unknown key 'q'; did you mean "
        "'step'?; also space.k: unknown type 'loguniform'; write type: float, with log: true; use one of float, "
        "int, categorical")
    with pytest.raises(SpecError) as info:  # a single Optuna word is said as it was
        load_spec(_write(tmp_path, yaml.safe_dump({**_minimal(), "n_jobs": 2}), "one.yaml"))
    assert str(info.value) == "n_jobs: unknown key 'n_jobs'; it belongs under executor as workers: write executor: " \
                              "{workers: ...}"


@pytest.mark.parametrize(("name", "meant"), [("successive_halving", "asha"), ("percentile", "median")])
def test_optunas_pruner_names_suggest_the_scheduler_meant(name, meant):
    for scheduler in (name, {"name": name}):
        e = _error(_minimal(scheduler=scheduler))
        assert e.message.startswith(f"unknown scheduler {name!r}; did you mean {meant!r}? "), e.message


def test_the_python_api_gives_optunas_words_the_same_hints():
    with pytest.raises(SpecError, match=r"'n_trials'; it belongs under budget as trials"):
        tunesmith.ExperimentSpec(**_minimal(), n_trials=10)
    with pytest.raises(SpecError, match=r"'direction'; it belongs under objective"):
        tunesmith.ExperimentSpec(**_without_objective(direction="maximize"))


@pytest.mark.parametrize("scheduler", ["asha", "pbt", "median", "hyperband", "ASHA"])
def test_a_scheduler_given_as_the_strategy_says_it_is_a_scheduler(scheduler):
    e = _error(_minimal(strategy=scheduler))
    assert e.path == "strategy.name"
    assert e.message.startswith(f"unknown strategy {scheduler!r}; that is a scheduler: write scheduler: "
                                f"{{name: {scheduler.lower()}, ...}} beside a strategy (tpe, random, ...)")


# -- the space through the spec ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("domain", "message"),
    [
        (
            {"type": "flaot", "low": 0, "high": 1},
            "unknown type 'flaot'; did you mean 'float'? use one of float, int, categorical",
        ),
        ({"low": 0, "high": 1}, "missing `type`; use one of float, int, categorical"),
        ({"type": "float", "low": 1, "high": 0}, "low must be < high; got low=1.0, high=0.0"),
        ({"type": "categorical", "choices": []}, "choices must not be empty; list at least one value"),
    ],
)
def test_domain_errors_name_the_parameter(domain, message):
    e = _error(_minimal(space={"x": domain}))
    assert (e.path, e.message) == ("space.x", message)


def test_a_missing_bound_names_the_bound():
    e = _error(_minimal(space={"x": {"type": "int", "low": 1}}))
    assert (e.path, e.message) == ("space.x.high", "this field is required")


def test_condition_errors_come_from_the_space():
    e = _error(_minimal(space={"x": {"type": "float", "low": 0, "high": 1, "when": {"k": "a"}}}))
    assert isinstance(e, SpaceError)
    assert (e.path, e.message) == ("space.x.when.k", "names an unknown parameter 'k'; known parameters: x")
    assert _error(_minimal(space={})).message == "the search space is empty; declare at least one parameter"


# -- trial, name, seed, storage ------------------------------------------------------------------------------


def test_trial_short_forms():
    assert spec_from_dict(_minimal(trial="objectives:quadratic")).trial == TrialRef(
        function="objectives:quadratic"
    )
    assert spec_from_dict(_minimal(trial="python train.py --x {x}")).trial == TrialRef(
        command="python train.py --x {x}"
    )
    assert spec_from_dict(_minimal(trial="train.sh")).trial == TrialRef(command="train.sh")
    assert spec_from_dict(_minimal(trial="scripts/fit.py:main")).trial.function == "scripts/fit.py:main"


@pytest.mark.parametrize(
    ("trial", "path", "message"),
    [
        (
            {"function": "objectives.quadratic"},
            "trial.function",
            "must look like 'module:function' or 'path/to/file.py:function'; got 'objectives.quadratic'",
        ),
        (
            {"function": "a:b", "command": "run"},
            "trial",
            "give exactly one of `function` ('module:function') or `command` ('python train.py ...')",
        ),
        (
            {},
            "trial",
            "give exactly one of `function` ('module:function') or `command` ('python train.py ...')",
        ),
        ({"command": "   "}, "trial", "command must not be empty"),
    ],
)
def test_trial_errors(trial, path, message):
    e = _error(_minimal(trial=trial))
    assert (e.path, e.message) == (path, message)


@pytest.mark.parametrize("name", ["has space", "-dash-first", "", "x" * 129, "exp/1", "实验-α"])
def test_bad_names(name):
    e = _error(_minimal(name=name))
    assert e.path == "name"
    rule = "use ASCII letters, digits, '_', '.' or '-' (starting with a letter or digit, at most 128)"
    assert e.message == f"{rule}; got {name!r}"


@pytest.mark.parametrize("name", ["svc-wine", "a", "v1.2_final", "9lives", "x" * 128])
def test_good_names(name):
    assert spec_from_dict(_minimal(name=name)).name == name


@pytest.mark.parametrize(("seed", "ok"), [(0, True), (2**32 - 1, True), (2**32, False), (-1, False)])
def test_seed_range(seed, ok):
    if ok:
        assert spec_from_dict(_minimal(seed=seed)).seed == seed
    else:
        assert _error(_minimal(seed=seed)).path == "seed"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///tunesmith.db",
        "sqlite:////abs/path.db",
        "sqlite://",
        "postgresql://user@localhost/tunesmith",
        "postgresql+psycopg://u:p@h:5432/db",
    ],
)
def test_good_storage_urls(url):
    assert spec_from_dict(_minimal(storage=url)).storage == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "notaurl",
            "not a database URL; got 'notaurl' (try sqlite:///tunesmith.db or postgresql://user@host/dbname)",
        ),
        ("", "not a database URL; got '' (try sqlite:///tunesmith.db or postgresql://user@host/dbname)"),
        (
            "foo://bar/db",
            (
                "no database dialect 'foo'; got 'foo://bar/db' "
                "(try sqlite:///tunesmith.db or postgresql://user@host/dbname)"
            ),
        ),
    ],
)
def test_bad_storage_urls_are_spec_errors(url, message):
    e = _error(_minimal(storage=url))
    assert (e.path, e.message) == ("storage", message)


def test_executor_errors_name_the_field():
    e = _error(_minimal(executor={"kind": "thread"}))
    assert (e.path, e.message) == ("executor.kind", "must be one of 'process', 'inline' or 'ray'; got 'thread'")
    e = _error(_minimal(executor={"workers": 0}))
    assert (e.path, e.message) == ("executor.workers", "input should be greater than or equal to 1; got 0")
    e = _error(_minimal(executor={"retry_on": ["crashd"]}))
    assert e.path == "executor.retry_on.0"
    assert e.message.endswith("got 'crashd' (did you mean 'crashed'?)")


def test_a_space_that_is_not_a_mapping():
    e = _error(_minimal(space=["x"]))
    assert (e.path, e.message) == ("space", "must be a mapping, e.g. space: {lr: {type: float, low: 0.0001, high: 0.1, "
                                            "log: true}}; got ['x']")


# -- the Python form -----------------------------------------------------------------------------------------


def _python_form() -> ExperimentSpec:
    return tunesmith.ExperimentSpec(
        name="svc-wine",
        objective={"metric": "accuracy", "direction": "maximize"},
        space={
            "C": tunesmith.Float(1e-3, 1e3, log=True),
            "kernel": tunesmith.Categorical(["rbf", "linear"]),
            "gamma": tunesmith.Float(1e-4, 1.0, log=True, when={"kernel": "rbf"}),
            "layers": tunesmith.Int(1, 4),
        },
        strategy="tpe",
        budget={"trials": 50, "wall_time": "10m"},
        executor={
            "kind": "process",
            "workers": 2,
            "trial_timeout": "60s",
            "memory_limit": "2GiB",
            "retries": 1,
        },
        trial=objective,
        seed=0,
    )


def test_the_python_form_equals_the_yaml_form(tmp_path):
    ref = f"{objective.__module__}:objective"
    loaded = load_spec(_write(tmp_path, CONTRACT_YAML.replace("mymodule:objective", ref)))
    api = _python_form()
    # the same reference, and the function itself kept beside it (an inline run calls it as it is)
    assert api.trial is not None and api.trial.function == ref and api.trial.given_function("e") is objective
    assert api.model_copy(update={"trial": TrialRef(function=ref)}) == loaded.model_copy(update={"base_dir": None})
    assert api.to_json() == {k: v for k, v in loaded.to_json().items() if k != "base_dir"}


def test_the_python_form_stores_an_importable_reference_to_the_same_function():
    assert resolve_function(_python_form().trial.function, None) is objective


def test_the_python_form_accepts_model_instances():
    spec = tunesmith.ExperimentSpec(
        name="e",
        objective=tunesmith.Objective(metric="m", direction="minimize"),
        space={"x": tunesmith.Float(0, 1)},
        trial=objective,
        budget=tunesmith.Budget(trials=3),
        executor=tunesmith.Executor(kind="inline"),
    )
    assert spec.objectives == (ObjectiveSpec("m", Direction.MINIMIZE),)
    assert (spec.budget.trials, spec.executor.kind) == (3, "inline")


def test_the_python_form_runs_a_lambda_or_a_nested_function_inline_and_refuses_it_worker_processes():
    """No process can import them: they were refused outright, even with kind inline; now they run in this
    process (stored as <interactive>:name), unless the spec asks for worker processes."""
    def nested(config: Any, trial: Any) -> float:
        return 0.0

    def spec(fn: Any, executor: Any = None) -> tunesmith.ExperimentSpec:
        return tunesmith.ExperimentSpec(name="e", objective={"metric": "m", "direction": "minimize"},
                                        space={"x": tunesmith.Float(0, 1)}, trial=fn,
                                        **({"executor": executor} if executor is not None else {}))

    for fn, name in ((lambda config, trial: 0.0, "<lambda>"), (nested, "nested")):
        for executor in (None, tunesmith.Executor(retries=0), {"grace_period": 5}, {"kind": "inline"}):
            made = spec(fn, executor)
            assert made.executor.kind == "inline" and made.to_json()["trial"]["function"] == f"<interactive>:{name}"
            assert made.trial is not None and made.trial.given_function("e") is fn
        for executor in (tunesmith.Executor(kind="process"), {"workers": 3}, {"memory_limit": "1GiB"}):
            with pytest.raises(tunesmith.SpecError) as info:
                spec(fn, executor)
            assert info.value.path == "trial" and f"the trial function {name!r} is defined interactively" in str(info.value)
            assert "executor: {kind: inline}" in str(info.value) and "move it into a .py file" in str(info.value)


def test_a_function_is_handed_over_again_only_to_an_interactive_trial_of_its_name():
    from tunesmith.spec.model import TrialRef

    stored = TrialRef(function="<interactive>:objective")
    with pytest.raises(tunesmith.SpecError, match="hand it over from Python, where it is defined: "
                                                  r"tunesmith.resume\('e', trial=objective\)"):
        stored.given_function("e")
    assert stored.with_function(objective).given_function("e") is objective
    with pytest.raises(tunesmith.SpecError):   # handed to a copy: the stored reference is left as it was
        stored.given_function("e")
    with pytest.raises(tunesmith.SpecError, match="the experiment ran the function 'objective'; got '<lambda>'"):
        stored.with_function(lambda config, trial: 0.0)
    # an importable one: handed over again under its own reference only, which an inline resume calls as it is
    with pytest.raises(tunesmith.SpecError, match=r"the experiment runs 'objectives:loss'; got '[\w.]+:objective' "
                                                  r"\(pass that function, or leave out trial="):
        TrialRef(function="objectives:loss").with_function(objective)
    from tunesmith.spec.model import function_reference

    assert TrialRef(function=function_reference(objective)).with_function(objective).given_function("e") is objective
    with pytest.raises(tunesmith.SpecError, match="'python train.py', a command; leave out trial="):
        TrialRef(command="python train.py").with_function(objective)


# -- JSON round trips ----------------------------------------------------------------------------------------


ROUND_TRIPS = {
    "contract": yaml.safe_load(CONTRACT_YAML),
    "minimal": _minimal(),
    "multi-objective": _minimal(
        objective=[{"metric": "a", "direction": "maximize"}, {"metric": "b", "direction": "minimize"}],
        strategy="nsga2",
    ),
    "command": _minimal(
        trial={"command": "python train.py {args}", "env": {"A": "1"}},
        tags={"team": "ml"},
        description="a command trial",
    ),
    "conditions": _minimal(
        space={
            "k": {"type": "categorical", "choices": ["a", "b", None, True, 3, 1.5]},
            "x": {"type": "float", "low": 0, "high": 1, "step": 0.25, "when": {"k": ["a", None]}},
            "n": {"type": "int", "low": 1, "high": 64, "log": True, "when": {"k": True}},
        }
    ),
    "no-trial-limit": _minimal(budget={"trials": None, "wall_time": "1h30m", "patience": 10, "target": 0.01}),
    "grid-without-limit": _minimal(budget={"trials": None}, strategy={"name": "grid", "points": 3}),
    "executor": _minimal(
        executor={
            "kind": "inline",
            "retry_on": ["timeout", "exception"],
            "retry_backoff": "500ms",
            "grace_period": "2m",
            "max_trials_per_worker": 10,
            "memory_limit": "512MiB",
        },
        storage="sqlite:///elsewhere.db",
        workdir="/tmp/w",
        seed=7,
    ),
}


@pytest.mark.parametrize("data", list(ROUND_TRIPS.values()), ids=list(ROUND_TRIPS))
def test_to_json_round_trips_through_spec_from_dict(data):
    spec = spec_from_dict(data)
    stored = json.loads(json.dumps(spec.to_json()))  # as the store keeps it
    again = spec_from_dict(stored)
    assert again == spec
    assert again.to_json() == spec.to_json()


def test_no_trial_limit_survives_the_round_trip():
    spec = spec_from_dict(_minimal(budget={"trials": None, "wall_time": "10m"}))
    stored = spec.to_json()["budget"]
    assert (stored["trials"], stored["wall_time"]) == (None, 600.0)
    assert spec_from_dict(spec.to_json()).budget.trials is None  # not the default of 100


def test_to_json_drops_unset_optional_fields_and_uses_plain_values(tmp_path):
    data = load_spec(_write(tmp_path, CONTRACT_YAML)).to_json()
    assert data["executor"]["retry_on"] == ["crashed", "memory", "lost"]
    assert data["objective"] == [{"metric": "accuracy", "direction": "maximize"}]
    assert data["strategy"] == {"name": "tpe", "options": {}}
    assert data["space"]["gamma"] == {
        "when": {"kernel": "rbf"},
        "type": "float",
        "low": 0.0001,
        "high": 1.0,
        "log": True,
    }
    assert "storage" not in data and "description" not in data


def test_spec_classes_are_exported():
    assert tunesmith.ExperimentSpec is ExperimentSpec
    assert tunesmith.Executor is Executor
    assert tunesmith.Float is Float


def test_an_objective_without_direction_says_what_to_write():
    data = _minimal()
    data["objective"] = {"metric": "loss"}
    e = _error(data)
    assert (e.path, e.message) == ("objective.direction", "this field is required: minimize or maximize, e.g. "
                                   "{metric: loss, direction: minimize}")
    data["objective"] = [{"metric": "loss"}]
    assert _error(data).path == "objective.0.direction" and "e.g." in _error(data).message


def test_a_scorer_named_alone_as_the_objective_is_told_its_direction():
    e = _error(_task_spec("roc_auc") | {"objective": "roc_auc"})
    assert e.message == "give the metric and its direction: {metric: roc_auc, direction: maximize}; got 'roc_auc'"
    e = _error(_task_spec("log_loss") | {"objective": {"metric": "log_loss", "direction": "minimize"}})
    assert "{metric: neg_log_loss, direction: maximize}" in e.message


@pytest.mark.parametrize(("metric", "meant"), [
    ("f1_score", "f1"), ("r2_score", "r2"), ("roc_auc_score", "roc_auc"), ("log_loss", "neg_log_loss"),
    ("mean_squared_error", "neg_mean_squared_error"), ("accuracy_scor", "accuracy")])
def test_a_metric_function_named_as_the_objective_points_at_its_scorer(metric, meant):
    e = _error(_task_spec(metric))
    assert e.path == "objective.metric" and f"did you mean {meant!r}?" in e.message


def test_a_business_metric_named_as_the_objective_is_shown_the_scoring_mapping():
    e = _error(_task_spec("precision_at_recall"))
    assert e.path == "task.scoring" and "scoring: {precision_at_recall: 0.8}" in e.message


def test_the_scoring_default_reads_a_tuple_of_objectives_and_objective_objects():
    data = _task_spec("roc_auc")
    for objective in (({"metric": "roc_auc", "direction": "maximize"},),
                      [Objective(metric="roc_auc", direction=Direction.MAXIMIZE)]):
        spec = ExperimentSpec(**{**data, "objective": objective})
        assert spec.task is not None and spec.task.scoring == "roc_auc"


def test_a_safe_range_naming_no_parameter_is_refused_before_the_run(tmp_path):
    data = _minimal(space={"C": {"type": "float", "low": 0.001, "high": 100, "log": True}})
    data["promotion"] = {"safe_ranges": {"c": [0.01, 10]}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError) as e:
        load_spec(tmp_path / "s.yaml")
    assert e.value.path == "promotion.safe_ranges.c" and "did you mean 'C'?" in e.value.message
    assert spec_from_dict(data).promotion is not None, "a stored spec with it still loads (its promote gate fails)"


def _fenced(project, safe_ranges: dict[str, Any]) -> dict[str, Any]:
    return project.spec(space={"C": {"type": "float", "low": 0.001, "high": 100, "log": True}},
                        executor={"kind": "inline"}, budget={"trials": 1}, promotion={"safe_ranges": safe_ranges})


@pytest.mark.parametrize("safe_ranges, path, says", [
    ({"c": [0.01, 10]}, "promotion.safe_ranges.c", "names no parameter of the space; did you mean 'C'? parameters: C"),
    ({"C": [10, 0.01]}, "promotion.safe_ranges.C", "low must be <= high; got [10.0, 0.01]"),
])
def test_a_bad_safe_range_is_the_same_error_from_a_file_a_mapping_and_a_spec_object(project, safe_ranges, path, says):
    """A mapping given to tunesmith.run (and an ExperimentSpec built in Python) ran with a safe range naming no
    parameter, which only a YAML file's loader refused: the gate it was meant to be fenced nothing."""
    data = _fenced(project, safe_ranges)
    errors = []
    for give in (lambda: load_spec(project.write_spec(data)), lambda: tunesmith.run(data),
                 lambda: tunesmith.run(spec_from_dict(data))):
        with pytest.raises(SpecError) as e:
            give()
        errors.append((e.value.path, e.value.message))
    assert errors == [(path, errors[0][1])] * 3 and says in errors[0][1]
    from tunesmith.storage.sql import SQLStore

    store = SQLStore(project.storage)
    try:
        assert store.experiments() == [], "nothing was recorded"
    finally:
        store.close()


def test_a_condition_on_a_float_parameter_is_refused_where_a_spec_is_given_anew(project) -> None:
    """The walkthrough: `d: {..., when: {x: 0.5}}` with x a float in [0, 1] was accepted and d was never active (a
    condition holds on exact equality, which a drawn float never meets). A stored spec still loads."""
    spec = project.spec(name="floatwhen", space={"x": {"type": "float", "low": 0.0, "high": 1.0},
                                                 "d": {"type": "int", "low": 1, "high": 3, "when": {"x": 0.5}}})
    checked = project.cli("validate", str(project.write_spec(spec)))
    said = " ".join(checked.stderr.split())
    assert checked.returncode == 2 and "Traceback" not in checked.stderr, checked.stderr
    assert "space.d.when.x" in said and "'x' is a float parameter" in said and "categorical, int or bool" in said
    with pytest.raises(SpaceError, match=r"space\.d\.when\.x"):
        tunesmith.run(spec, storage=project.storage)
    assert not project.db.exists() or "floatwhen" not in project.cli("list").stdout
    assert spec_from_dict(spec).search_space.domains["d"].when == {"x": 0.5}, "a recorded experiment stays readable"
    stepped = {"x": {"type": "categorical", "choices": [0.25, 0.5]}, "d": spec["space"]["d"]}
    assert project.cli("validate", str(project.write_spec({**spec, "space": stepped}))).returncode == 0


def test_a_recorded_specs_reader_does_not_import_scikit_learn_and_a_new_spec_is_still_checked() -> None:
    """`show`, `ls`, `drift`'s thresholds read stored specs: validating one looked its scorer up and built its
    pipeline, importing scikit-learn (a second of every such command's start-up). A spec to run is still checked."""
    import subprocess
    import sys

    task = {"estimator": {"sklearn.linear_model.LogisticRegression": {}}, "data": {"sklearn": "iris"},
            "scoring": "accuracy"}
    stored = {"name": "s", "objective": {"metric": "accuracy", "direction": "maximize"}, "task": task,
              "space": {"C": {"type": "float", "low": 0.1, "high": 1.0}}}
    code = ("import json, sys; from tunesmith.spec.loader import spec_from_dict; "
            f"s = spec_from_dict(json.loads({json.dumps(json.dumps(stored))}), recorded=True); "
            "print(s.task.scoring, 'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["accuracy", "False"], out.stderr
    with pytest.raises(SpecError, match="unknown scorer 'acuracy'"):
        spec_from_dict({**stored, "task": {**task, "scoring": "acuracy"}})
    with pytest.raises(SpecError, match="space.nope"):
        spec_from_dict({**stored, "space": {"nope": {"type": "float", "low": 0.1, "high": 1.0}}})


def test_a_scheduler_with_several_objectives_is_refused_anew_and_its_stored_spec_still_loads() -> None:
    """A scheduler stopped trials of the Pareto front on the first objective alone (no values recorded for them).
    A spec given anew is refused at `scheduler`; an experiment recorded with one still resumes as it ran: resume
    reads the stored spec with spec_from_dict, which must accept it."""
    from tunesmith.spec.model import check_new_spec

    data = _minimal(objective=[{"metric": "loss", "direction": "minimize"}, {"metric": "size", "direction": "minimize"}],
                    scheduler={"name": "median"}, budget={"trials": 4})
    stored = spec_from_dict(data)  # as resume reads it
    with pytest.raises(SpecError) as info:
        check_new_spec(stored)
    assert info.value.path == "scheduler" and "early stopping ranks trials on one objective" in info.value.message
    check_new_spec(spec_from_dict({**data, "scheduler": {"name": "none"}}))  # without one: fine
    check_new_spec(spec_from_dict({**data, "objective": data["objective"][:1]}))  # one objective: fine


# -- numbers are numbers -------------------------------------------------------------------------------------------


def _lax_numbers(tp: Any, where: str, seen: set[type]) -> list[str]:
    """The places under the type ``tp`` where pydantic's lax int or float would take True or "5": a bare int or
    float, outside an Annotated that refuses them (StrictInt, StrictFloat, Field(strict=True), a unit parser)."""
    import typing

    from pydantic import BaseModel, BeforeValidator
    from pydantic.fields import FieldInfo

    from tunesmith.spec.units import parse_duration, parse_size
    from tunesmith.strict_model import StrictFloat, StrictInt

    refusing = {typing.get_args(StrictInt)[1].func, typing.get_args(StrictFloat)[1].func, parse_duration, parse_size}

    def strict(meta: Any) -> bool:
        if isinstance(meta, FieldInfo):  # Annotated[int, Field(strict=True)]: its constraints, Strict() among them
            return any(strict(m) for m in meta.metadata)
        return (isinstance(meta, BeforeValidator) and meta.func in refusing) or getattr(meta, "strict", None) is True

    if tp in (int, float):
        return [where]
    if str in typing.get_args(tp):  # a parameter's value (ParamValue), a pos_label: text or a number, as written
        return []
    if typing.get_origin(tp) is typing.Annotated:
        base, *meta = typing.get_args(tp)
        return [] if base in (int, float) and any(strict(m) for m in meta) else _lax_numbers(base, where, seen)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        if tp in seen:
            return []
        seen.add(tp)
        found = []
        for name, field in tp.model_fields.items():
            annotation = field.annotation
            if annotation in (int, float) and any(strict(m) for m in field.metadata):
                continue
            if (tp.__name__, name) == ("Executor", "gpus"):  # its own validator takes ints alone: type(g) is int
                continue
            found += _lax_numbers(annotation, f"{tp.__name__}.{name}", seen)
        return found
    return [w for arg in typing.get_args(tp) for w in _lax_numbers(arg, where, seen)]


def test_no_number_field_of_the_spec_takes_a_boolean_or_text():
    """Every int and float of the spec model, found by walking it (a field added later is found too), refuses
    True and "5": pydantic's lax int read `trials: true` as 1 and `low: false, high: true` as [0, 1]."""
    from tunesmith.space.domains import Categorical

    assert _lax_numbers(ExperimentSpec, "spec", set()) == []
    assert _lax_numbers(Categorical, "Categorical", set()) == []  # its choices are values, not numbers: none here


@pytest.mark.parametrize(("section", "path", "got"), [
    ({"budget": {"trials": True}}, "budget.trials", "True"),
    ({"budget": {"patience": "5"}}, "budget.patience", "'5'"),
    ({"budget": {"failure_rate_min_trials": True}}, "budget.failure_rate_min_trials", "True"),
    ({"budget": {"target": "0.5"}}, "budget.target", "'0.5'"),
    ({"executor": {"workers": True}}, "executor.workers", "True"),
    ({"executor": {"retries": "2"}}, "executor.retries", "'2'"),
    ({"seed": True}, "seed", "True"),
    ({"space": {"x": {"type": "float", "low": False, "high": True}}}, "space.x.low", "False"),
    ({"space": {"x": {"type": "int", "low": 0, "high": "9"}}}, "space.x.high", "'9'"),
    ({"space": {"x": {"type": "float", "low": 0, "high": 1, "step": True}}}, "space.x.step", "True"),
])
def test_a_boolean_or_a_quoted_number_is_refused_where_a_number_is_expected(section, path, got):
    err = _error(_minimal(**section))
    assert err.path == path
    assert err.message.startswith("input should be a valid ") and f"; got {got}" in err.message


def test_a_float_field_still_takes_an_int_and_an_exponent_yaml_reads_as_text(tmp_path):
    spec = spec_from_dict(_minimal(space={"x": {"type": "float", "low": 0, "high": "1e1"}},
                                   budget={"trials": 5.0, "target": 0}))
    assert (spec.space["x"].low, spec.space["x"].high, spec.budget.trials, spec.budget.target) == (0.0, 10.0, 5, 0.0)
    assert Float(1, 10).high == 10.0
    assert _error(_minimal(space={"x": {"type": "float", "low": "a", "high": 1}})).message.endswith("got 'a'")


# -- one name where a list of them is expected ----------------------------------------------------------------------


def test_one_failure_kind_alone_is_a_list_of_one(tmp_path):
    spec = load_spec(_write(tmp_path, """\
        name: e
        objective: {metric: m, direction: minimize}
        space: {x: {type: float, low: 0, high: 1}}
        trial: objectives:quadratic
        executor: {retry_on: crashed}
        """))
    assert spec.executor.retry_on == (FailureKind.CRASHED,)
    assert spec.to_json()["executor"]["retry_on"] == ["crashed"]
    assert spec_from_dict(_minimal(select={"lexicographic": "loss"})).select.lexicographic == ("loss",)


@pytest.mark.parametrize("given", [5, {"crashed": 1}, 1.5])
def test_a_list_field_given_no_list_says_list_never_tuple(given):
    err = _error(_minimal(executor={"retry_on": given}))
    assert (err.path, err.message) == ("executor.retry_on", f"must be a list, written [a, b]; got {given!r}")


@pytest.mark.parametrize(("uri", "says"), [
    ("./mlruns", "a folder is MLflow's file store, which MLflow 3 refuses"),
    ("file:///srv/mlruns", "a folder is MLflow's file store, which MLflow 3 refuses"),
    ("htp://mlflow.internal", "no MLflow store has the scheme htp://; did you mean http://?"),
    ("sqlte:///mlflow.db", "no MLflow store has the scheme sqlte://; did you mean sqlite://?"),
])
def test_a_tracking_uri_mlflow_would_refuse_after_every_trial_is_refused_at_its_field(uri, says, monkeypatch):
    """`validate` passed them; `run` ran every trial, then MLflow refused the URI in a warning (a walk)."""
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    error = _error(_minimal(tracking={"mlflow": {"uri": uri}}))
    assert error.path == "tracking.mlflow.uri" and says in str(error), str(error)


@pytest.mark.parametrize("uri", ["sqlite:///mlflow.db", "https://mlflow.example", "postgresql+psycopg://u@h/mlflow",
                                 "databricks", "azureml://a-plugin's/scheme"])
def test_tracking_uris_mlflow_takes_or_a_plugin_may_take_are_valid(uri, monkeypatch):
    assert spec_from_dict(_minimal(tracking={"mlflow": {"uri": uri}})).tracking.mlflow.uri == uri
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow's own opt-in to its file store
    assert spec_from_dict(_minimal(tracking={"mlflow": {"uri": "./mlruns"}})).tracking.mlflow.uri == "./mlruns"
