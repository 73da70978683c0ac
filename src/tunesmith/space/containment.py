"""Whether every point of one search space is a point of another: whether an experiment's trials can be read as
configurations of another experiment's space (`tunesmith diff`'s closing line).

Only what is shown is said. Containment is claimed where a sufficient condition proves it (each parameter's domain
within its new one, each condition unchanged on the values the old space gives, each new parameter never active on
them); its absence only with a witness, a point of the old space built here and checked against the new one by the
space's own rules. Where neither is found the answer is :attr:`Containment.UNDECIDED`, never a guess.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from tunesmith.errors import SpaceError
from tunesmith.records import ParamValue
from tunesmith.space.domains import Categorical, Float, Int
from tunesmith.space.search_space import AnyDomain, SearchSpace

_PROBES_PER_RANGE = 64   # grid points of a stepped range tried as witnesses (a step mismatch shows within a period)
_SEARCH_BUDGET = 20_000  # partial points tried in all, while looking for a witness: the answer stays instant


class Containment(enum.Enum):
    """How the points of an old space lie against a new one."""

    EQUAL = "equal"              # the same points, each way (the declarations may still differ: choice order, log)
    WITHIN = "within"            # every old point is a new point; the new space has more
    NOT_WITHIN = "not_within"    # a point of the old space is not one of the new (a witness was found)
    UNDECIDED = "undecided"      # neither shown: the conditions combine in ways these checks do not follow

    @property
    def old_points_fit(self) -> bool | None:
        """Whether every point of the old space is a point of the new one; None where that was not decided."""
        return {Containment.EQUAL: True, Containment.WITHIN: True, Containment.NOT_WITHIN: False}.get(self)


@dataclass(frozen=True)
class SpaceContainment:
    """The answer of :func:`compare_spaces`: with ``NOT_WITHIN``, the point of the old space that shows it, and why
    the new space refuses that point (``C: value 1000.0 is outside the domain [0.001, 100.0]``)."""

    containment: Containment
    witness: Mapping[str, ParamValue] | None = None
    refused_because: str | None = None


def compare_spaces(old: SearchSpace, new: SearchSpace) -> SpaceContainment:
    """How the points of ``old`` lie against ``new``: every trial of an experiment on ``old`` is a configuration of
    ``new`` exactly when every point of ``old`` is a point of ``new`` (conditions included: a point is the active
    parameters and their values, as a trial records them)."""
    if _proved_within(old, new):
        return SpaceContainment(Containment.EQUAL if _proved_within(new, old) else Containment.WITHIN)
    found = _witness(old, new)
    if found is not None:
        return SpaceContainment(Containment.NOT_WITHIN, found[0], found[1])
    return SpaceContainment(Containment.UNDECIDED)


def _refusal(space: SearchSpace, point: Mapping[str, ParamValue]) -> tuple[str, str] | None:
    """Why ``point`` is not a point of ``space``: the parameter and the reason (``not an active parameter ...``);
    None where it is one. The space's own check (:meth:`SearchSpace.validate_params`), and a stepped float's value
    on its grid as well: a trial of a step of 0.1 at 0.3 is no configuration of a step of 0.2 from 0."""
    try:
        checked = space.validate_params(point)
    except SpaceError as e:
        return e.path.removeprefix("params."), e.message
    return space.off_grid(checked)


def _proved_within(old: SearchSpace, new: SearchSpace) -> bool:
    """A sufficient condition for every point of ``old`` to be a point of ``new``, by induction over ``new``'s
    order (parents first): a shared parameter keeps its parents, its condition holds for the same values of theirs
    that ``old`` can give, and its domain grows or stays; a parameter only ``new`` has is never active on a point of
    ``old`` (a parent of it takes none of the values it needs there, or is such a parameter itself). A parameter
    only ``old`` has is active on some of its points (it was declared to be), which no point of ``new`` holds."""
    if set(old.domains) - set(new.domains):
        return False
    never_active: set[str] = set()
    for name in new.order:
        domain = new.domains[name]
        if name not in old.domains:
            if not any(parent in never_active or not _activating(old, new, parent, allowed)
                       for parent, allowed in (domain.when or {}).items()):
                return False
            never_active.add(name)
            continue
        before = old.domains[name]
        if not _domain_within(before, domain) or not _same_condition(before.when or {}, domain.when or {}, old, new):
            return False
    return True


def _same_condition(old_when: Mapping[str, object], new_when: Mapping[str, object], old: SearchSpace,
                    new: SearchSpace) -> bool:
    """Whether two conditions hold for the same values of their parents, among the values ``old`` gives them."""
    if set(old_when) != set(new_when):
        return False
    return all(_activating(old, old, parent, old_when[parent]) == _activating(old, new, parent, allowed)
               for parent, allowed in new_when.items())


def _activating(old: SearchSpace, new: SearchSpace, parent: str, allowed: object) -> set[str]:
    """The values ``old`` gives ``parent`` on which ``new``'s condition ``allowed`` (one value, or a list) on it
    holds, as keys that tell 1, 1.0 and true apart (a condition compares values and their types:
    :meth:`SearchSpace.is_active`). The condition sees the value as ``new`` takes it: a float parameter's int is
    made a float before its children are checked (:meth:`SearchSpace.validate_params`), so ``when: {n: 2}`` never
    holds on a float ``n``, and ``when: {n: 2.0}`` holds on an old int 2."""
    before, after = old.domains[parent], new.domains[parent]
    values = allowed if isinstance(allowed, list) else [allowed]
    wanted = {_key(v) for v in values}
    candidates = [*values, *(int(v) for v in values if isinstance(v, float) and v.is_integer())]
    return {_key(v) for v in candidates if _holds(before, v) and _key(_as_taken(after, v)) in wanted}


def _as_taken(domain: AnyDomain, value: ParamValue) -> ParamValue:
    """``value`` as :meth:`SearchSpace.validate_params` passes it on for a parameter of ``domain``."""
    if isinstance(domain, Float) and type(value) is int:
        return float(value)
    return value


def _domain_within(old: AnyDomain, new: AnyDomain) -> bool:
    """Whether every value of ``old`` is a value of ``new`` (same kind of domain; ranges and grids)."""
    if isinstance(old, Categorical) and isinstance(new, Categorical):
        return all(new.contains(c) for c in old.choices)
    if isinstance(old, Int) and isinstance(new, Int):
        return (new.low <= old.low and old.high <= new.high
                and (old.low - new.low) % new.step == 0 and old.step % new.step == 0)
    if isinstance(old, Float | Int) and isinstance(new, Float):  # an int is a float's value (validate_params)
        if not (new.low <= old.low and old.high <= new.high):
            return False
        if new.step is None:
            return True
        return old.step is not None and _whole(old.step / new.step) and _whole((old.low - new.low) / new.step)
    return False  # another kind of domain: a float's values are no int's, and neither's are choices


def _witness(old: SearchSpace, new: SearchSpace) -> tuple[dict[str, ParamValue], str] | None:
    """A point of ``old`` that ``new`` refuses, shown by the values that matter (the parameter refused and those
    its activity depends on, in either space), and why; None where none was found. For each parameter of ``old``
    and each value worth trying (those ``new`` lacks first), a point of ``old`` where it is active with that value:
    its ancestors take the values that activate it, the others a value ``new`` holds (so that the refusal names the
    parameter tried, where it can)."""
    probes = {name: _probes(name, old, new) for name in old.order}
    plain = {name: next((v for v in values if name in new.domains and _holds(new.domains[name], v)), values[0])
             for name, values in probes.items()}
    budget = [_SEARCH_BUDGET]
    for target in old.order:
        for value in probes[target]:
            point = _point_with(old, target, value, probes, plain, budget)
            if point is None:
                continue
            refused = _refusal(new, point)
            if refused is not None and _refusal(old, point) is None:
                name, why = refused
                shown = {name}.union(*(_ancestors(space, name) for space in (old, new) if name in space.domains))
                return {k: v for k, v in point.items() if k in shown}, f"{name}: {why}"
            if budget[0] <= 0:
                return None
    return None


def _point_with(old: SearchSpace, target: str, value: ParamValue, probes: Mapping[str, list[ParamValue]],
                plain: Mapping[str, ParamValue], budget: list[int]) -> dict[str, ParamValue] | None:
    """A point of ``old`` where ``target`` is active with ``value``: a search over the values of its ancestors
    (``budget``: partial points left to try, shared by every call)."""
    ancestors = _ancestors(old, target)
    order = old.order

    def fill(i: int, assigned: dict[str, ParamValue]) -> dict[str, ParamValue] | None:
        budget[0] -= 1
        if budget[0] <= 0:
            return None
        if i == len(order):
            return dict(assigned)
        name = order[i]
        if not old.is_active(name, assigned):
            return None if name == target else fill(i + 1, assigned)
        tried = [value] if name == target else probes[name] if name in ancestors else [plain[name]]
        for v in tried:
            assigned[name] = v
            found = fill(i + 1, assigned)
            del assigned[name]
            if found is not None:
                return found
        return None

    return fill(0, {})


def _ancestors(space: SearchSpace, name: str) -> set[str]:
    seen: set[str] = set()
    todo = list(space.domains[name].when or {})
    while todo:
        parent = todo.pop()
        if parent not in seen:
            seen.add(parent)
            todo.extend(space.domains[parent].when or {})
    return seen


def _probes(name: str, old: SearchSpace, new: SearchSpace) -> list[ParamValue]:
    """Values of ``old``'s domain of ``name`` worth trying in a witness: those ``new``'s domain lacks first, then the
    values either space's conditions name, then its ends (or choices)."""
    domain = old.domains[name]
    named = [v for space in (old, new) for d in space.domains.values()
             for allowed in [(d.when or {}).get(name)] if allowed is not None
             for v in (allowed if isinstance(allowed, list) else [allowed])]
    values: dict[str, ParamValue] = {}
    for v in [*_domain_probes(domain, new.domains.get(name)), *named]:
        if _holds(domain, v):
            values.setdefault(_key(v), v)
    held = new.domains.get(name)
    return sorted(values.values(), key=lambda v: held is not None and _holds(held, v))


def _domain_probes(domain: AnyDomain, new: AnyDomain | None) -> Iterator[ParamValue]:
    if isinstance(domain, Categorical):
        yield from domain.choices
        return
    yield domain.low
    yield domain.high
    if isinstance(domain, Int):
        yield from range(domain.low, domain.high + 1, domain.step)[:_PROBES_PER_RANGE]
        return
    if domain.step is not None:
        yield from (domain.on_grid(domain.low + k * domain.step) for k in range(_PROBES_PER_RANGE))
    else:
        yield domain.low + (domain.high - domain.low) / 2
        if isinstance(new, Float) and new.step is not None:  # off the new grid, within the old range
            yield from (new.low + (k + 0.5) * new.step for k in range(_PROBES_PER_RANGE))


def _holds(domain: AnyDomain, value: object) -> bool:
    """``value`` is a value ``domain`` gives: of its type (a float parameter's trial records a float, which a
    condition compares with its type) and, for a stepped float, on its grid."""
    if isinstance(domain, Float):
        return type(value) is float and domain.contains(value) and domain.is_on_grid(value)
    return domain.contains(value)


def _whole(x: float) -> bool:
    return math.isclose(x, round(x), rel_tol=0, abs_tol=1e-8 * max(1.0, abs(x)))


def _key(value: object) -> str:
    """A key that tells values of different types apart (1, 1.0, true): JSON's text of the value and its type."""
    return f"{type(value).__name__}:{json.dumps(value)}"
