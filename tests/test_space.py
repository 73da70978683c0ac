"""Search spaces: the three domains (log, step, validation messages) and conditions between parameters."""

from __future__ import annotations

import math
from typing import Any

import pytest
from pydantic import ValidationError

from tunesmith.errors import SpaceError, SpecError
from tunesmith.space import Categorical, Float, Int, SearchSpace
from tunesmith.space.grid_index import COUNTED_UP_TO, GridIndex, grid_size
from tunesmith.spec.loader import spec_from_dict


def _domain_error(factory: Any, *args: Any, **kw: Any) -> str:
    """The message a domain constructor of the Python API rejects its arguments with: tunesmith's SpaceError (a
    SpecError, which the CLI prints alone and exits 2 on), never pydantic's ValidationError; its path is the
    domain's class (the field, where one field is at fault)."""
    with pytest.raises(SpaceError) as info:
        factory(*args, **kw)
    assert info.value.path.split(".")[0] == factory.__name__, info.value.path
    assert "pydantic" not in str(info.value) and "Value error" not in str(info.value)
    return info.value.message


def _space_error(domains: dict[str, Any]) -> SpaceError:
    with pytest.raises(SpaceError) as info:
        SearchSpace.from_domains(domains)
    return info.value


def _svc_space() -> SearchSpace:
    """The issue's space: C, kernel, gamma (only for rbf), layers."""
    return SearchSpace.from_domains(
        {
            "C": Float(0.001, 1000, log=True),
            "kernel": Categorical(["rbf", "linear"]),
            "gamma": Float(0.0001, 1.0, log=True, when={"kernel": "rbf"}),
            "layers": Int(1, 4),
        }
    )


def _chain_space() -> SearchSpace:
    """optimizer -> momentum (sgd only) -> nesterov (momentum 0.9 or 0.99 only); declared child-first."""
    return SearchSpace.from_domains(
        {
            "nesterov": Categorical([True, False], when={"momentum": [0.9, 0.99]}),
            "momentum": Categorical([0.0, 0.9, 0.99], when={"optimizer": "sgd"}),
            "optimizer": Categorical(["sgd", "adam"]),
        }
    )


# -- Float ---------------------------------------------------------------------------------------------------


def test_float_positional_and_keyword_forms_are_the_same_domain():
    assert Float(0.001, 1000, log=True) == Float(low=0.001, high=1000.0, log=True)
    d = Float(1, 10)
    assert (d.type, d.low, d.high, d.log, d.step, d.when) == ("float", 1.0, 10.0, False, None, None)
    assert isinstance(d.low, float)


@pytest.mark.parametrize(
    ("args", "kw", "message"),
    [
        ((1.0, 1.0), {}, "low must be < high; got low=1.0, high=1.0"),
        ((2.0, 1.0), {}, "low must be < high; got low=2.0, high=1.0"),
        (
            (0.0, 1.0),
            {"log": True},
            "low must be > 0 when log is true; got low=0.0 (use log: false or a positive low)",
        ),
        (
            (-1.0, 1.0),
            {"log": True},
            "low must be > 0 when log is true; got low=-1.0 (use log: false or a positive low)",
        ),
        ((0.0, math.inf), {}, "low and high must be finite numbers; got low=0.0, high=inf"),
        ((math.nan, 1.0), {}, "low and high must be finite numbers; got low=nan, high=1.0"),
        ((0.1, 1.0), {"log": True, "step": 0.1}, "step and log cannot be combined; drop one of them"),
        ((0.0, 1.0), {"step": 0.0}, "step must be > 0; got 0.0"),
        ((0.0, 1.0), {"step": -0.5}, "step must be > 0; got -0.5"),
        (
            (0.0, 1.0),
            {"step": 0.3},
            "high - low must be a multiple of step; got low=0.0, high=1.0, step=0.3 (try high=0.9)",
        ),
    ],
    ids=[
        "equal",
        "inverted",
        "log-zero",
        "log-negative",
        "inf",
        "nan",
        "step-and-log",
        "step-zero",
        "step-negative",
        "step-not-dividing",
    ],
)
def test_float_rejects_with_a_message_naming_the_values_and_the_fix(args, kw, message):
    assert _domain_error(Float, *args, **kw) == message


def test_float_rejects_unknown_keys_with_did_you_mean():
    assert _domain_error(Float, 0.0, 1.0, lg=True) == "unknown key 'lg'; did you mean 'log'?"


def test_float_contains_is_inclusive_and_rejects_non_numbers():
    d = Float(0.5, 2.0)
    assert d.contains(0.5) and d.contains(2.0) and d.contains(1) and d.contains(1.25)
    assert not d.contains(0.4999) and not d.contains(2.0001)
    assert not d.contains(True)  # a bool is an int in Python, but not a number here
    assert not d.contains("1.0") and not d.contains(None)


def test_float_grid_linear_log_step_and_single_point():
    assert Float(0.0, 1.0).grid(5) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert Float(0.0, 1.0).grid(1) == [0.0]
    log = Float(0.001, 1000.0, log=True).grid(3)
    assert log == pytest.approx([0.001, 1.0, 1000.0], rel=1e-12)
    # the step decides the grid; the point count is ignored
    assert Float(0.0, 1.0, step=0.25).grid(2) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert Float(0.1, 0.3, step=0.1).grid(99) == [0.1, 0.2, 0.3]  # rounded, not 0.30000000000000004


@pytest.mark.parametrize(
    ("domain", "points"),
    [
        (Float(0.001, 10.0, log=True), 3),
        (Float(0.01, 100.0, log=True), 5),
        (Float(-2.0, 0.1), 2),
        (Float(-2.0, -0.9), 4),
    ],
    ids=["log-10", "log-100", "linear-0.1", "linear-negative"],
)
def test_float_grid_ends_exactly_on_the_bounds(domain, points):
    # exp(log(10)) is 10.00000000000001 and -2.0 + 2.1 is 0.10000000000000009: a grid computed naively
    # proposes a value outside its own domain, which validate_params then rejects
    grid = domain.grid(points)
    assert (grid[0], grid[-1]) == (domain.low, domain.high)
    assert len(grid) == points and grid == sorted(grid)
    assert all(domain.contains(v) for v in grid)


def test_float_step_accepts_floating_point_noise_in_the_range():
    # 0.3 / 0.1 is 2.9999999999999996 in binary floating point: still a multiple of the step
    assert Float(0.0, 0.3, step=0.1).grid(1) == [0.0, 0.1, 0.2, 0.3]


def test_domains_are_frozen():
    d = Float(0.0, 1.0)
    with pytest.raises(ValidationError):
        d.low = 0.5  # type: ignore[misc]


# -- Int -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kw", "message"),
    [
        ((3, 3), {}, "low must be < high; got low=3, high=3"),
        ((5, 1), {}, "low must be < high; got low=5, high=1"),
        ((0, 8), {"log": True}, "low must be >= 1 when log is true; got low=0 (use log: false or low: 1)"),
        ((1, 8), {"step": 0}, "step must be >= 1; got 0"),
        ((1, 9), {"log": True, "step": 2}, "step and log cannot be combined; drop one of them"),
        (
            (0, 10),
            {"step": 3},
            "high - low must be a multiple of step; got low=0, high=10, step=3 (try high=9)",
        ),
        (  # it said (try high=0): low == high, refused too
            (0, 1),
            {"step": 2},
            "high - low must be a multiple of step; got low=0, high=1, step=2 (step is larger than high - low: try "
            "step=1, or high=2)",
        ),
    ],
    ids=["equal", "inverted", "log-zero", "step-zero", "step-and-log", "step-not-dividing", "step-over-the-range"],
)
def test_int_rejects_with_a_message_naming_the_values_and_the_fix(args, kw, message):
    assert _domain_error(Int, *args, **kw) == message


def test_int_rejects_a_fractional_bound():
    with pytest.raises(SpaceError) as info:
        Int(1.5, 4)
    assert (info.value.path, info.value.message) == ("Int.low", "must be a whole number; got 1.5")


def test_the_python_api_domains_raise_spec_errors_naming_the_field_and_the_fix():
    """`tunesmith.Float(1, 0)` raised pydantic's ValidationError (a wall of pydantic text, a link to its docs),
    not the SpecError every other bad input gets."""
    import tunesmith

    cases = [
        (lambda: tunesmith.Float(1, 0), "Float: low must be < high; got low=1.0, high=0.0"),
        (lambda: tunesmith.Float(0, 1, log=True),
         "Float: low must be > 0 when log is true; got low=0.0 (use log: false or a positive low)"),
        (lambda: tunesmith.Float(0, 1, step=0), "Float: step must be > 0; got 0.0"),
        (lambda: tunesmith.Float("a", 1), "Float.low: input should be a valid number, unable to parse string as a "
                                          "number; got 'a'"),
        (lambda: tunesmith.Int(5, 1), "Int: low must be < high; got low=5, high=1"),
        (lambda: tunesmith.Int(0, 8, log=True),
         "Int: low must be >= 1 when log is true; got low=0 (use log: false or low: 1)"),
        (lambda: tunesmith.Int(1, 8, step=-2), "Int: step must be >= 1; got -2"),
        (lambda: tunesmith.Categorical([]), "Categorical: choices must not be empty; list at least one value"),
        (lambda: tunesmith.Float(0, 1, lg=True), "Float.lg: unknown key 'lg'; did you mean 'log'?"),
    ]
    for make, expected in cases:
        with pytest.raises(SpecError) as info:
            make()
        assert str(info.value) == expected


def test_int_contains_respects_step_and_rejects_floats_and_bools():
    d = Int(0, 10, step=5)
    assert [v for v in range(-1, 12) if d.contains(v)] == [0, 5, 10]
    assert not d.contains(5.0)
    assert not Int(0, 1).contains(True)


def test_int_grid_is_every_value_on_the_step():
    assert Int(1, 4).grid(2) == [1, 2, 3, 4]
    assert Int(0, 10, step=5).grid(99) == [0, 5, 10]
    assert Int(1, 8, log=True).grid(2) == list(range(1, 9))


# -- Categorical ---------------------------------------------------------------------------------------------


def test_categorical_validation_messages():
    assert _domain_error(Categorical, []) == "choices must not be empty; list at least one value"
    assert _domain_error(Categorical, ["a", "b", "a"]) == "choices must be unique; 'a' appears twice"
    assert _domain_error(Categorical, []) == _domain_error(Categorical, choices=[])


def test_categorical_values_of_different_types_are_different_choices():
    d = Categorical([1, True, "1", None, 1.5])
    assert d.choices == [1, True, "1", None, 1.5]
    assert d.contains(1) and d.contains(True) and d.contains("1") and d.contains(None)
    assert not d.contains(1.0)  # 1.0 == 1 in Python, but it is not the choice written
    assert not Categorical([0, 1]).contains(False)
    assert d.grid(1) == [1, True, "1", None, 1.5]


# -- SearchSpace: building and checking conditions -----------------------------------------------------------


def test_empty_space_is_rejected():
    e = _space_error({})
    assert (e.path, e.message) == ("space", "the search space is empty; declare at least one parameter")


def test_a_value_that_is_not_a_domain_is_rejected_at_its_path():
    e = _space_error({"x": {"type": "float", "low": 0, "high": 1}})
    assert e.path == "space.x"
    assert e.message.startswith("expected Float, Int or Categorical; got {")


def test_when_naming_an_unknown_parameter_lists_the_known_ones():
    e = _space_error({"kernel": Categorical(["rbf"]), "gamma": Float(0.1, 1.0, when={"kernal": "rbf"})})
    assert e.path == "space.gamma.when.kernal"
    assert e.message == "names an unknown parameter 'kernal'; known parameters: gamma, kernel"


def test_when_value_outside_the_parent_choices_lists_the_choices():
    e = _space_error(
        {"kernel": Categorical(["rbf", "linear"]), "gamma": Float(0.1, 1.0, when={"kernel": "sigmoid"})}
    )
    assert e.path == "space.gamma.when.kernel"
    assert e.message == "value 'sigmoid' is not in the domain of 'kernel'; choices are ['rbf', 'linear']"


def test_every_value_of_a_when_list_is_checked():
    e = _space_error(
        {
            "kernel": Categorical(["rbf", "poly"]),
            "degree": Int(2, 5, when={"kernel": ["poly", "rbf", "sigmoid"]}),
        }
    )
    assert e.path == "space.degree.when.kernel"
    assert e.message.startswith("value 'sigmoid' is not in the domain of 'kernel'")


def test_when_on_a_numeric_parent_checks_its_range():
    e = _space_error({"layers": Int(1, 4), "width": Int(8, 64, when={"layers": 7})})
    assert (e.path, e.message) == ("space.width.when.layers",
                                   "value 7 is not in the domain of 'layers'; 'layers' is an int in [1, 4]")
    ok = SearchSpace.from_domains({"layers": Int(1, 4), "width": Int(8, 64, when={"layers": [3, 4]})})
    assert ok.is_active("width", {"layers": 4}) and not ok.is_active("width", {"layers": 2})


def test_a_parameter_conditioned_on_itself_is_rejected():
    e = _space_error({"k": Categorical(["a", "b"], when={"k": "a"})})
    assert (e.path, e.message) == ("space.k.when.k", "a parameter cannot be conditioned on itself")


def test_a_two_parameter_cycle_is_rejected():
    e = _space_error({"a": Categorical([1, 2], when={"b": 1}), "b": Categorical([1, 2], when={"a": 1})})
    assert e.path == "space.a.when"
    assert e.message == "conditions form a cycle (a -> b -> a); remove one of the `when` links"


def test_a_longer_cycle_is_named_in_full():
    e = _space_error(
        {
            "root": Categorical(["x", "y"]),
            "a": Categorical([1, 2], when={"c": 1}),
            "b": Categorical([1, 2], when={"a": 1}),
            "c": Categorical([1, 2], when={"b": 1, "root": "x"}),
        }
    )
    assert e.path == "space.a.when"
    assert "(a -> c -> b -> a)" in e.message


def test_space_errors_are_spec_errors_through_the_spec_loader():
    spec = {
        "name": "e",
        "objective": {"metric": "m", "direction": "minimize"},
        "trial": "objectives:quadratic",
        "space": {
            "kernel": {"type": "categorical", "choices": ["rbf", "linear"]},
            "gamma": {"type": "float", "low": 0.1, "high": 1.0, "when": {"kernel": "sigmoid"}},
        },
    }
    with pytest.raises(SpecError) as info:
        spec_from_dict(spec)
    assert isinstance(info.value, SpaceError)
    assert str(info.value) == (
        "space.gamma.when.kernel: value 'sigmoid' is not in the domain of 'kernel'; "
        "choices are ['rbf', 'linear']"
    )


def test_parents_come_before_children_whatever_the_declaration_order():
    space = _chain_space()
    assert space.order == ("optimizer", "momentum", "nesterov")
    assert space.names == space.order
    assert list(space.to_json()) == ["optimizer", "momentum", "nesterov"]
    assert _svc_space().order == ("C", "kernel", "gamma", "layers")  # unconditioned order is kept


def test_is_conditional():
    assert _svc_space().is_conditional
    assert not SearchSpace.from_domains({"x": Float(0, 1), "k": Categorical(["a"])}).is_conditional


# -- is_active -----------------------------------------------------------------------------------------------


def test_is_active_single_value_condition():
    space = _svc_space()
    assert space.is_active("gamma", {"C": 1.0, "kernel": "rbf"})
    assert not space.is_active("gamma", {"C": 1.0, "kernel": "linear"})
    assert not space.is_active("gamma", {"C": 1.0})  # parent not assigned yet
    assert space.is_active("C", {}) and space.is_active("layers", {})


def test_is_active_list_condition():
    space = SearchSpace.from_domains(
        {
            "kernel": Categorical(["rbf", "poly", "linear"]),
            "gamma": Float(0.001, 1.0, log=True, when={"kernel": ["rbf", "poly"]}),
        }
    )
    assert [k for k in ("rbf", "poly", "linear") if space.is_active("gamma", {"kernel": k})] == [
        "rbf",
        "poly",
    ]


def test_is_active_needs_every_parent_to_match():
    space = SearchSpace.from_domains(
        {
            "model": Categorical(["svm", "tree"]),
            "kernel": Categorical(["rbf", "linear"]),
            "gamma": Float(0.001, 1.0, log=True, when={"model": "svm", "kernel": "rbf"}),
        }
    )
    active = [
        (m, k)
        for m in ("svm", "tree")
        for k in ("rbf", "linear")
        if space.is_active("gamma", {"model": m, "kernel": k})
    ]
    assert active == [("svm", "rbf")]


def test_is_active_compares_types_strictly():
    space = SearchSpace.from_domains(
        {"flag": Categorical([True, False, 1, 0]), "x": Float(0, 1, when={"flag": True})}
    )
    assert space.is_active("x", {"flag": True})
    assert not space.is_active("x", {"flag": 1})


def test_is_active_through_a_chain():
    space = _chain_space()
    assert space.is_active("nesterov", {"optimizer": "sgd", "momentum": 0.9})
    assert not space.is_active("nesterov", {"optimizer": "sgd", "momentum": 0.0})
    assert not space.is_active("momentum", {"optimizer": "adam"})
    # the grandparent switched the parent off, so the parent is unassigned and the child inactive
    assert not space.is_active("nesterov", {"optimizer": "adam"})


def test_sample_active_asks_only_for_active_parameters():
    asked: list[str] = []

    def pick(name: str, domain: Any) -> Any:
        asked.append(name)
        return {"optimizer": "adam"}.get(name, domain.grid(1)[0])

    assert _chain_space().sample_active(pick) == {"optimizer": "adam"}
    assert asked == ["optimizer"]


# -- validate_params -----------------------------------------------------------------------------------------


def test_validate_params_accepts_a_full_active_configuration():
    space = _svc_space()
    params = {"C": 10.0, "kernel": "rbf", "gamma": 0.01, "layers": 2}
    assert space.validate_params(params) == params
    assert space.validate_params({"C": 10.0, "kernel": "linear", "layers": 4}) == {
        "C": 10.0,
        "kernel": "linear",
        "layers": 4,
    }


def test_validate_params_turns_an_int_into_a_float_for_a_float_domain():
    out = _svc_space().validate_params({"C": 10, "kernel": "linear", "layers": 1})
    assert out["C"] == 10.0 and type(out["C"]) is float


@pytest.mark.parametrize(
    ("params", "path", "message"),
    [
        (
            {"C": 1.0, "kernel": "rbf", "layers": 1},
            "params.gamma",
            "missing a value for this active parameter",
        ),
        (
            {"C": 1.0, "kernel": "linear", "gamma": 0.1, "layers": 1},
            "params.gamma",
            "not an active parameter of the space for this configuration",
        ),
        (
            {"C": 1.0, "kernel": "rbf", "gamma": 0.1, "layers": 1, "depth": 3},
            "params.depth",
            "not an active parameter of the space for this configuration",
        ),
        (
            {"C": 5000.0, "kernel": "linear", "layers": 1},
            "params.C",
            "value 5000.0 is outside the domain [0.001, 1000.0]",
        ),
        (
            {"C": 1.0, "kernel": "poly", "layers": 1},
            "params.kernel",
            "value 'poly' is outside the domain choices ['rbf', 'linear']",
        ),
        (
            {"C": 1.0, "kernel": "linear", "layers": 2.0},
            "params.layers",
            "value 2.0 is outside the domain [1, 4]",
        ),
        (
            {"C": 1.0, "kernel": "linear", "layers": True},
            "params.layers",
            "value True is outside the domain [1, 4]",
        ),
        ({"kernel": "linear", "layers": 1}, "params.C", "missing a value for this active parameter"),
    ],
    ids=[
        "missing-active",
        "inactive-given",
        "unknown",
        "float-out-of-range",
        "not-a-choice",
        "float-for-int",
        "bool-for-int",
        "missing-unconditional",
    ],
)
def test_validate_params_names_the_parameter_at_fault(params, path, message):
    with pytest.raises(SpaceError) as info:
        _svc_space().validate_params(params)
    assert (info.value.path, info.value.message) == (path, message)


def test_validate_params_describes_a_stepped_domain_and_uses_the_given_path():
    space = SearchSpace.from_domains({"n": Int(0, 10, step=5)})
    with pytest.raises(SpaceError) as info:
        space.validate_params({"n": 3}, path="trial 4")
    assert str(info.value) == "trial 4.n: value 3 is outside the domain [0, 10] step 5"


# -- iter_grid -----------------------------------------------------------------------------------------------


def test_grid_of_the_svc_space_skips_gamma_for_the_linear_kernel():
    space = _svc_space()
    configs = list(space.iter_grid(3))
    # C: 3 points x (rbf: 3 gammas + linear: no gamma) x layers: 4 values
    assert len(configs) == 3 * (3 + 1) * 4 == 48
    assert grid_size(space, 3) == 48
    assert sum("gamma" in c for c in configs) == 36
    assert all(("gamma" in c) == (c["kernel"] == "rbf") for c in configs)
    assert len({tuple(sorted(c.items())) for c in configs}) == 48  # no duplicates
    for c in configs:
        assert space.validate_params(c) == c
    assert configs[0] == {"C": 0.001, "kernel": "rbf", "gamma": 0.0001, "layers": 1}
    assert configs[4] == {"C": 0.001, "kernel": "rbf", "gamma": pytest.approx(0.01), "layers": 1}
    assert configs[12] == {"C": 0.001, "kernel": "linear", "layers": 1}
    assert configs[-1] == {"C": 1000.0, "kernel": "linear", "layers": 4}


def test_grid_with_a_list_condition():
    space = SearchSpace.from_domains(
        {
            "kernel": Categorical(["rbf", "poly", "linear", "sigmoid"]),
            "gamma": Float(0.01, 1.0, log=True, when={"kernel": ["rbf", "poly", "sigmoid"]}),
            "degree": Int(2, 4, when={"kernel": "poly"}),
        }
    )
    configs = list(space.iter_grid(2))
    # rbf: 2 gammas; poly: 2 gammas x 3 degrees; linear: 1; sigmoid: 2 gammas
    assert len(configs) == 2 + 6 + 1 + 2 == 11
    assert [c for c in configs if c["kernel"] == "linear"] == [{"kernel": "linear"}]
    assert sum("degree" in c for c in configs) == 6


def test_grid_through_a_chain_of_conditions():
    space = _chain_space()
    configs = list(space.iter_grid(5))
    # adam: 1; sgd: momentum 0.0 -> 1, momentum 0.9 -> 2 (nesterov), momentum 0.99 -> 2
    assert configs == [
        {"optimizer": "sgd", "momentum": 0.0},
        {"optimizer": "sgd", "momentum": 0.9, "nesterov": True},
        {"optimizer": "sgd", "momentum": 0.9, "nesterov": False},
        {"optimizer": "sgd", "momentum": 0.99, "nesterov": True},
        {"optimizer": "sgd", "momentum": 0.99, "nesterov": False},
        {"optimizer": "adam"},
    ]
    assert grid_size(space, 5) == 6


def test_grid_is_the_product_without_conditions_and_is_repeatable():
    space = SearchSpace.from_domains(
        {"a": Int(1, 3), "b": Categorical(["x", "y"]), "c": Float(0, 1, step=0.5)}
    )
    first = list(space.iter_grid(7))
    assert len(first) == 3 * 2 * 3
    assert first == list(space.iter_grid(7))
    assert first[-1] == {"a": 3, "b": "y", "c": 1.0}


def test_grid_float_points_decide_the_size_for_unstepped_floats():
    space = SearchSpace.from_domains({"x": Float(0, 1), "y": Float(1, 100, log=True)})
    assert [grid_size(space, n) for n in (1, 2, 5)] == [1, 4, 25]


def test_grid_size_is_exact_without_walking_the_grid(monkeypatch):
    """`auto` and the grid warning ask whether the grid fits in the trial budget: four ints of 0-50 (6.8 million
    configurations, about a minute to enumerate) are a product; a conditional grid is counted by GridIndex, exact
    whatever its size (it was walked up to the budget plus one: 10^7 configurations for a budget of 10^7), and an int
    of 0..10^9 is never a list. Nothing here walks iter_grid."""
    monkeypatch.setattr(SearchSpace, "iter_grid", _not_walked)
    space = SearchSpace.from_domains({f"n{i}": Int(0, 50) for i in range(4)})
    assert grid_size(space, 5) == 51 ** 4
    small = SearchSpace.from_domains({"a": Int(1, 3), "b": Categorical(["x", "y"])})
    assert grid_size(small, 5) == 6
    conditional = SearchSpace.from_domains({"k": Categorical(["a", "b"]), "n": Int(0, 50, when={"k": "a"}),
                                            "m": Int(0, 50, when={"k": "a"})})
    assert grid_size(conditional, 5) == 51 * 51 + 1
    huge = SearchSpace.from_domains({"k": Categorical(["a", "b"]), "n": Int(0, 10**9, when={"k": "a"}),
                                     "m": Int(0, 10**9, when={"k": "a"})})
    assert grid_size(huge, 5) == (10**9 + 1) ** 2 + 1
    from tunesmith.strategy import decide

    assert decide("auto", {}, space, 40, 1, 1).name == "bo"
    assert decide("auto", {}, small, 6, 1, 1).name == "grid"
    assert decide("auto", {}, conditional, 51 * 51 + 1, 1, 1).name == "grid"
    assert decide("auto", {}, conditional, 51 * 51, 1, 1).name == "bo"


def _not_walked(self, float_points):  # type: ignore[no-untyped-def]
    raise AssertionError("the grid was walked to count it")


def _one_child_of_flags(flags: int) -> SearchSpace:
    """A parameter conditioned on ``flags`` flags declared before it: GridIndex keeps a count per combination of the
    flags given so far (2^(flags + 1) of them), and the grid holds 2^flags + 2 configurations."""
    return SearchSpace.from_domains({**{f"f{i}": Categorical([True, False]) for i in range(flags)},
                                     "c": Int(0, 2, when={f"f{i}": True for i in range(flags)})})


def test_grid_size_bounds_its_cost_where_conditions_on_many_parents_make_an_exact_count_costly(monkeypatch):
    """One child of 20 flags: GridIndex would keep 2 million counts (10 s, hundreds of MB). grid_size sees it from
    ``counts_bound`` before counting and walks the grid instead, no further than COUNTED_UP_TO configurations: exact
    below, None (more than that) above. (Here COUNTED_UP_TO is 1,000, to walk little.)"""
    from tunesmith.space import grid_index

    assert GridIndex(_one_child_of_flags(20), 5).counts_bound == 2**21 - 1 > COUNTED_UP_TO  # known, not counted
    from tests.test_strategy_checks import _walked

    monkeypatch.setattr(grid_index, "COUNTED_UP_TO", 1000)
    walked = _walked(monkeypatch)
    eight, nine, ten, twenty = (_one_child_of_flags(n) for n in (8, 9, 10, 20))
    assert (GridIndex(eight, 5).counts_bound, GridIndex(nine, 5).counts_bound) == (2**9 - 1, 2**10 - 1)
    assert grid_size(eight, 5) == 2**8 + 2 and walked == [0]  # counted by GridIndex
    assert grid_size(nine, 5) == 2**9 + 2 and walked == [2**9 + 2]  # walked to its end
    for space in (ten, twenty):
        walked[0] = 0
        assert grid_size(space, 5) is None and walked == [1001]
    # a costly count of a parameter with more values than COUNTED_UP_TO: not walked (iter_grid would list them)
    many = SearchSpace.from_domains({**twenty.domains, "n": Int(0, 10**9, when={"f0": True})})
    walked[0] = 0
    assert grid_size(many, 5) is None and walked == [0]
    # GridIndex keeps no more counts than it said
    grid = GridIndex(ten, 5)
    assert grid.size == 2**10 + 2 and len(grid._memo) <= grid.counts_bound


def test_a_value_is_on_a_stepped_floats_grid_up_to_the_error_of_a_sum() -> None:
    """What containment asks of a stepped float (space/containment.py): the grid point on_grid gives, allowing the
    sum's error (0.1 + 0.2 is 0.30000000000000004), never a point half a step off or outside the range."""
    stepped = Float(0.0, 1.0, step=0.1)
    assert stepped.is_on_grid(0.1 + 0.2) and stepped.is_on_grid(0.3) and stepped.is_on_grid(1.0)
    assert not stepped.is_on_grid(0.35) and not stepped.is_on_grid(1.1)
    assert Float(0.0, 1.0).is_on_grid(0.123456)
