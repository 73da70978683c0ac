"""Whether every point of one search space is a point of another (`tunesmith diff`'s closing line): claimed only
where proved, denied only with a witness that the new space refuses, else undecided."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from tunesmith.errors import SpaceError
from tunesmith.space.containment import Containment, compare_spaces
from tunesmith.space.domains import Categorical, Float, Int
from tunesmith.space.search_space import AnyDomain, SearchSpace
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


def test_a_parent_turned_float_is_compared_on_the_float_that_validate_params_gives_its_children() -> None:
    """validate_params makes a float parameter's int a float before it checks a child's condition, which compares
    types: ``when: {n: 2}`` never holds for a float ``n``, ``when: {n: 2.0}`` holds for an old trial's int 2 (a
    recorded spec may condition on a float; one given anew may not)."""
    old = SearchSpace.from_domains({"n": Int(0, 4), "c": Categorical(["a", "b"], when={"n": 2})})
    new = SearchSpace.from_domains({"n": Float(0, 4), "c": Categorical(["a", "b"], when={"n": 2})})
    found = compare_spaces(old, new)
    assert (found.containment, found.witness) == (Containment.NOT_WITHIN, {"n": 2, "c": "a"}), found
    assert found.refused_because == "c: not an active parameter of the space for this configuration"
    activated = SearchSpace.from_domains({"n": Float(0, 4), "c": Categorical(["a", "b"], when={"n": 2.0})})
    assert compare_spaces(old, activated).containment is Containment.WITHIN
    # a parameter only the new space has, under the float 2.0: active on the old point n=2
    grown = SearchSpace.from_domains({"n": Float(0, 4), "d": Categorical(["a"], when={"n": 2.0})})
    found = compare_spaces(SearchSpace.from_domains({"n": Int(0, 4)}), grown)
    assert (found.containment, found.witness) == (Containment.NOT_WITHIN, {"n": 2}), found
    # ... and never active under the int 2, which the float n never equals
    never = SearchSpace.from_domains({"n": Float(0, 4), "d": Categorical(["a"], when={"n": 2})})
    assert compare_spaces(SearchSpace.from_domains({"n": Int(0, 4)}), never).containment is Containment.WITHIN


# A brute-force check of compare_spaces on small random pairs of spaces: every point of the old space (ints,
# choices and stepped floats only, so that its grid is all of its points) is tried against the new one.

_CHOICES: list[Any] = ["a", "b", 1, 2, True, 2.0, None]


def _random_domain(rng: random.Random, when: dict[str, Any] | None) -> AnyDomain:
    kind = rng.choice(["int", "categorical", "float"])
    if kind == "int":
        low, step = rng.choice([0, 1]), rng.choice([1, 1, 2])
        return Int(low, low + step * rng.randint(1, 3), step=step, when=when)
    if kind == "categorical":
        return Categorical(rng.sample(_CHOICES, rng.randint(1, 3)), when=when)
    step = rng.choice([0.5, 1.0])
    return Float(0.0, step * rng.randint(1, 4), step=step, when=when)


def _random_when(rng: random.Random, parents: dict[str, AnyDomain]) -> dict[str, Any] | None:
    if not parents or rng.random() < 0.5:
        return None
    parent = rng.choice(sorted(parents))
    values = parents[parent].grid(2)
    if isinstance(parents[parent], Float):  # an int names a float's value too (a recorded spec may hold either)
        values += [int(v) for v in values if v.is_integer()]
    allowed = rng.sample(values, min(len(values), rng.randint(1, 2)))
    return {parent: allowed if len(allowed) > 1 or rng.random() < 0.5 else allowed[0]}


def _random_old(rng: random.Random) -> dict[str, AnyDomain]:
    domains: dict[str, AnyDomain] = {}
    for i in range(rng.randint(1, 4)):
        domains[f"p{i}"] = _random_domain(rng, _random_when(rng, domains))
    return domains


def _changed(rng: random.Random, domain: AnyDomain, when: dict[str, Any] | None) -> AnyDomain:
    """``domain`` changed a little, or not at all: an int turned float, a range grown or shrunk, a step changed."""
    roll = rng.random()
    if isinstance(domain, Int) and roll < 0.4:
        return Float(float(domain.low), float(domain.high + rng.choice([0, 1])),
                     step=rng.choice([None, 1.0, 0.5]), when=when)
    if isinstance(domain, Int) and roll < 0.6:
        return Int(domain.low, domain.high + rng.choice([-1, 1]) * domain.step, step=domain.step, when=when)
    if isinstance(domain, Float) and domain.step is not None and roll < 0.5:
        return Float(domain.low, domain.high, step=rng.choice([None, 0.5, 1.0, 2.0 if domain.high % 2 == 0 else 1.0]),
                     when=when)
    if isinstance(domain, Categorical) and roll < 0.5:
        return Categorical(rng.sample(_CHOICES, rng.randint(1, 3)), when=when)
    return domain.model_copy(update={"when": when})


def _random_new(rng: random.Random, old: dict[str, AnyDomain]) -> dict[str, AnyDomain]:
    new: dict[str, AnyDomain] = {}
    for name, domain in old.items():
        if rng.random() < 0.1:
            continue  # removed
        when = {p: v for p, v in (domain.when or {}).items() if p in new}
        if rng.random() < 0.3:
            when = _random_when(rng, new) or {}
        for parent, allowed in list(when.items()):
            if isinstance(new[parent], Float) and rng.random() < 0.5:  # a condition on an int now a float's
                values = allowed if isinstance(allowed, list) else [allowed]
                when[parent] = [float(v) if type(v) is int else v for v in values]
        new[name] = _changed(rng, domain, when or None)
    if rng.random() < 0.4:
        new["added"] = _random_domain(rng, _random_when(rng, new))
    return new


def _fits(space: SearchSpace, point: dict[str, Any]) -> bool:
    """Whether ``point`` is a point of ``space``: the space takes it, and a stepped float's value is on its grid."""
    try:
        checked = space.validate_params(point)
    except SpaceError:
        return False
    return all(not isinstance(d := space.domains[k], Float) or math.isclose(d.on_grid(v), v, abs_tol=1e-9)
               for k, v in checked.items() if isinstance(v, float))


def _random_pair(seed: int) -> tuple[SearchSpace, SearchSpace]:
    rng = random.Random(seed)
    while True:
        try:
            old = _random_old(rng)
            return SearchSpace.from_domains(old), SearchSpace.from_domains(_random_new(rng, old))
        except SpaceError:
            continue  # a condition on a value the changed domain lacks: draw again


@pytest.mark.parametrize("seed", range(300))
def test_what_is_claimed_holds_on_every_point_of_small_random_spaces(seed: int) -> None:
    old, new = _random_pair(seed)
    old_points = list(old.iter_grid(2))
    found = compare_spaces(old, new)
    if found.containment.old_points_fit:
        assert [p for p in old_points if not _fits(new, p)] == [], found
    if found.containment is Containment.EQUAL and not any(
            isinstance(d, Float) and d.step is None for d in new.domains.values()):
        assert [p for p in new.iter_grid(2) if not _fits(old, p)] == [], found
    if found.containment is Containment.NOT_WITHIN:
        assert found.witness is not None
        shown = [p for p in old_points if all(k in p and p[k] == v and type(p[k]) is type(v)
                                              for k, v in found.witness.items())]
        assert shown and not any(_fits(new, p) for p in shown), found


def test_the_random_spaces_above_are_mostly_decided_so_their_checks_check_something() -> None:
    """Each check above runs only where compare_spaces decided: a compare_spaces that said 'undecided' to every pair
    would pass all 300. Over the same pairs, each decided kind occurs and 'undecided' stays rare (5 of 300 now)."""
    from collections import Counter

    kinds = Counter(compare_spaces(*_random_pair(seed)).containment for seed in range(300))
    assert kinds[Containment.UNDECIDED] <= 15, kinds
    assert all(kinds[k] >= 20 for k in (Containment.EQUAL, Containment.WITHIN, Containment.NOT_WITHIN)), kinds
