"""Whether every point of one search space is a point of another (`tunesmith diff`'s closing line): claimed only
where proved, denied only with a witness that the new space refuses, else undecided."""

from __future__ import annotations

from typing import Any

import pytest

from tunesmith.space.containment import Containment, compare_spaces
from tunesmith.space.search_space import SearchSpace
from tunesmith.spec.model import ExperimentSpec


def _space(**domains: Any) -> SearchSpace:
    spec = ExperimentSpec.model_validate({"name": "s", "objective": {"metric": "m", "direction": "minimize"},
                                          "space": domains, "trial": {"function": "m:f"}})
    return spec.search_space


FLOAT = {"type": "float", "low": 0.0, "high": 1.0}


@pytest.mark.parametrize(("old", "new", "containment", "witness"), [
    ({"x": FLOAT}, {"x": {**FLOAT, "log": False}}, Containment.EQUAL, None),
    ({"x": FLOAT}, {"x": {**FLOAT, "high": 2.0}}, Containment.WITHIN, None),
    ({"x": {**FLOAT, "high": 2.0}}, {"x": FLOAT}, Containment.NOT_WITHIN, {"x": 2.0}),
    # a stepped float's points are its grid: 0.1 is no point of a step of 0.2 from 0, and any value of a
    # continuous range is a point of it only where it lies on the grid
    ({"x": {**FLOAT, "step": 0.2}}, {"x": {**FLOAT, "step": 0.1}}, Containment.WITHIN, None),
    ({"x": {**FLOAT, "step": 0.1}}, {"x": {**FLOAT, "step": 0.2}}, Containment.NOT_WITHIN, {"x": 0.1}),
    ({"x": FLOAT}, {"x": {**FLOAT, "step": 0.5}}, Containment.NOT_WITHIN, {"x": 0.25}),
    ({"n": {"type": "int", "low": 0, "high": 10, "step": 2}}, {"n": {"type": "int", "low": 0, "high": 10}},
     Containment.WITHIN, None),
    ({"n": {"type": "int", "low": 0, "high": 10}}, {"n": {"type": "int", "low": 0, "high": 10, "step": 2}},
     Containment.NOT_WITHIN, {"n": 1}),
    # choices are values of their types: 1 is not true; their order is no point's
    ({"c": {"type": "categorical", "choices": [1, 2]}}, {"c": {"type": "categorical", "choices": [True, 2]}},
     Containment.NOT_WITHIN, {"c": 1}),
    ({"c": {"type": "categorical", "choices": ["a", "b"]}}, {"c": {"type": "categorical", "choices": ["b", "a"]}},
     Containment.EQUAL, None),
    # another kind of domain: an int is a value of a float's range (the space takes it), a float none of an int's
    ({"n": {"type": "int", "low": 0, "high": 1}}, {"n": FLOAT}, Containment.WITHIN, None),
    ({"n": FLOAT}, {"n": {"type": "int", "low": 0, "high": 1}}, Containment.NOT_WITHIN, {"n": 0.0}),
])
def test_one_parameter(old: dict[str, Any], new: dict[str, Any], containment: Containment,
                       witness: dict[str, Any] | None) -> None:
    found = compare_spaces(_space(**old), _space(**new))
    assert (found.containment, found.witness) == (containment, witness), found


KIND = {"type": "categorical", "choices": ["a", "b"]}


def test_a_condition_that_holds_for_more_values_activates_the_parameter_on_old_points_that_lack_it() -> None:
    old = _space(kind=KIND, x={**FLOAT, "when": {"kind": "a"}})
    new = _space(kind=KIND, x={**FLOAT, "when": {"kind": ["a", "b"]}})
    found = compare_spaces(old, new)
    assert found.containment is Containment.NOT_WITHIN and found.witness == {"kind": "b"}
    assert found.refused_because == "x: missing a value for this active parameter"
    # the same value written alone or in a list: the same condition
    same = _space(kind=KIND, x={**FLOAT, "when": {"kind": ["a"]}})
    assert compare_spaces(old, same).containment is Containment.EQUAL


def test_a_new_parameter_is_no_obstacle_where_it_is_never_active_on_old_points() -> None:
    old = _space(kind=KIND)
    grown = _space(kind={"type": "categorical", "choices": ["a", "b", "c"]}, y={**FLOAT, "when": {"kind": "c"}},
                   z={**FLOAT, "when": {"y": 0.5}})  # (recorded specs may condition on a float): under y, never
    assert compare_spaces(old, grown).containment is Containment.WITHIN
    assert compare_spaces(grown, old).containment is Containment.NOT_WITHIN


def test_a_removed_parameter_shows_a_point_where_it_was_active() -> None:
    old = _space(kind=KIND, x={**FLOAT, "when": {"kind": "b"}})
    found = compare_spaces(old, _space(kind=KIND))
    assert (found.containment, found.witness) == (Containment.NOT_WITHIN, {"kind": "b", "x": 0.0})
    assert found.refused_because == "x: not an active parameter of the space for this configuration"


def test_what_is_neither_proved_nor_shown_is_undecided() -> None:
    """``r`` needs kind b and ``q`` active with a, but ``q`` is active only under kind a: ``r`` is never active,
    so every old point is a new one; the sufficient condition does not see it, and no witness exists."""
    q = {"type": "categorical", "choices": ["a", "b"], "when": {"kind": "a"}}
    old = _space(kind=KIND, q=q)
    new = _space(kind=KIND, q=q, r={**FLOAT, "when": {"kind": "b", "q": "a"}})
    assert compare_spaces(old, new).containment is Containment.UNDECIDED
    assert Containment.UNDECIDED.old_points_fit is None
