"""A validated search space: domains plus the conditions between them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from tunesmith.errors import SpaceError
from tunesmith.records import ParamValue
from tunesmith.space.domains import Categorical, Float, Int, _Domain

AnyDomain = Float | Int | Categorical


def values_in_grid(domain: _Domain, points: int) -> int:
    """How many values ``domain`` takes in the grid (``domain.grid(points)``), counted without listing them: an
    int of 0..10^9 would be a list of 10^9 ints. (Not ``len(range(...))``, which is an OverflowError from 2**63.)"""
    if isinstance(domain, Categorical):
        return len(domain.choices)
    if isinstance(domain, Int):
        return (domain.high - domain.low) // domain.step + 1
    if isinstance(domain, Float) and domain.step is not None:
        return int(round((domain.high - domain.low) / domain.step)) + 1
    return points


def is_one_of(value: ParamValue, allowed: ParamValue | list[ParamValue]) -> bool:
    """Whether ``value`` is what a ``when`` allows (one value, or any of a list): equal and of the same type, so
    ``1`` is not ``True`` nor ``1.0``."""
    return any(value == o and type(value) is type(o) for o in (allowed if isinstance(allowed, list) else [allowed]))


@dataclass(frozen=True)
class SearchSpace:
    """Parameters in an order where every parent comes before the parameters it conditions.

    Build with :meth:`from_domains`, which checks the conditions; code past that trusts the space.
    """

    domains: Mapping[str, AnyDomain]
    order: tuple[str, ...]

    @classmethod
    def from_domains(cls, domains: Mapping[str, AnyDomain], path: str = "space") -> SearchSpace:
        if not domains:
            raise SpaceError(path, "the search space is empty; declare at least one parameter")
        for name, dom in domains.items():
            if not isinstance(dom, _Domain):
                raise SpaceError(f"{path}.{name}", f"expected Float, Int or Categorical; got {dom!r}")
            for parent, allowed in (dom.when or {}).items():
                where = f"{path}.{name}.when.{parent}"
                if parent == name:
                    raise SpaceError(where, "a parameter cannot be conditioned on itself")
                if parent not in domains:
                    known = ", ".join(sorted(domains))
                    raise SpaceError(where, f"names an unknown parameter {parent!r}; known parameters: {known}")
                pdom = domains[parent]
                for v in allowed if isinstance(allowed, list) else [allowed]:
                    if not pdom.contains(v):
                        raise SpaceError(where, f"value {v!r} is not in the domain of {parent!r}; "
                                                f"{_domain_hint(parent, pdom, v)}")
        order = _topological(domains, path)
        return cls(domains=dict(domains), order=order)

    def check_names(self, path: str = "space") -> None:
        """Refuse a parameter name that the results cannot name a column by (an empty one: a column ``param.``).
        Any other text is a name: ``step__param``, ``model.lr``, ``学习率``, TunedSearchCV's ``__grid`` and
        ``C@grid1`` (what a command trial's ``{args}`` cannot pass is its spec's to refuse:
        :func:`tunesmith.spec.model.check_command_parameter_names`). Checked on a spec given anew, not on a stored
        one: a recorded experiment stays readable and resumable.

        Raises:
            SpaceError: at ``space`` for an empty name, naming the fix.
        """
        if "" in self.domains:
            raise SpaceError(path, "a parameter's name is empty (''): name it, such as lr")

    def check_conditions_can_hold(self, path: str = "space") -> None:
        """Refuse a ``when`` that cannot hold, so that the parameter it conditions would never be active. One on a
        float parameter: :meth:`is_active` compares values exactly (and their types), and a float drawn from a range
        equals a given value almost never (a stepped one is ``low + k * step`` in floating point,
        ``0.30000000000000004`` for 0.3). One with an empty list of values (``when: {k: []}``), which no value is
        one of. Checked on a spec given anew, not on a stored one: a recorded experiment stays readable.

        Raises:
            SpaceError: at ``space.<name>.when.<parent>``, naming the fix.
        """
        for name in self.order:
            for parent, allowed in (self.domains[name].when or {}).items():
                if isinstance(self.domains[parent], Float):
                    raise SpaceError(f"{path}.{name}.when.{parent}", (
                        f"{parent!r} is a float parameter, and a condition holds only when the value is exactly the "
                        f"one given, which a float almost never is: {name!r} would never be active; condition on a "
                        f"categorical, int or bool parameter (e.g. {parent}: {{type: categorical, choices: [0.25, "
                        f"0.5, 0.75]}}) or drop the condition"))
                if allowed == []:
                    example = self.domains[parent].grid(1)[0]
                    raise SpaceError(f"{path}.{name}.when.{parent}", (
                        f"an empty list of values, which no value of {parent!r} is one of: {name!r} would never be "
                        f"active; list the values that activate it (e.g. {parent}: [{_yaml_text(example)}]) or drop "
                        "the condition"))

    @property
    def names(self) -> tuple[str, ...]:
        return self.order

    @property
    def is_conditional(self) -> bool:
        return any(d.when for d in self.domains.values())

    def is_active(self, name: str, assigned: Mapping[str, ParamValue]) -> bool:
        """Whether ``name`` is active given the values assigned so far (parents come first in ``order``)."""
        return all(parent in assigned and is_one_of(assigned[parent], allowed)
                   for parent, allowed in (self.domains[name].when or {}).items())

    def sample_active(self, pick: Any) -> dict[str, ParamValue]:
        """Assign values in order, asking ``pick(name, domain)`` for each active parameter only: how every strategy
        turns its proposal into params. A stepped float's pick is put on its grid as declared (``Float.on_grid``:
        Optuna's 0.30000000000000004 is 0.3), the value the trial code gets and the store records."""
        assigned: dict[str, ParamValue] = {}
        for name in self.order:
            if self.is_active(name, assigned):
                domain = self.domains[name]
                value = pick(name, domain)
                assigned[name] = domain.on_grid(value) if isinstance(domain, Float) else value
        return assigned

    def validate_params(self, params: Mapping[str, Any], path: str = "params") -> dict[str, ParamValue]:
        """Check a full configuration: active parameters present and in range, nothing else."""
        out: dict[str, ParamValue] = {}
        for name in self.order:
            if not self.is_active(name, out):
                continue
            if name not in params:
                raise SpaceError(f"{path}.{name}", "missing a value for this active parameter")
            value = params[name]
            dom = self.domains[name]
            if isinstance(dom, Float) and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not dom.contains(value):
                raise SpaceError(f"{path}.{name}", f"value {value!r} is outside the domain {_describe(dom)}")
            out[name] = value
        extra = sorted(set(params) - set(out))
        if extra:
            raise SpaceError(f"{path}.{extra[0]}", "not an active parameter of the space for this configuration")
        return out

    def off_grid(self, config: Mapping[str, ParamValue]) -> tuple[str, str] | None:
        """The first stepped float's value of ``config`` off its grid (which :meth:`validate_params` lets through:
        a recorded trial may hold one): the parameter and why; None where every value is on its grid."""
        for name, value in config.items():
            domain = self.domains.get(name)
            if isinstance(domain, Float) and isinstance(value, float) and not domain.is_on_grid(value):
                return name, f"value {value!r} is not on its grid (low {domain.low:g}, step {domain.step:g})"
        return None

    def iter_grid(self, float_points: int) -> Iterator[dict[str, ParamValue]]:
        """Every configuration of the grid, conditions respected, in a fixed order."""

        def expand(i: int, assigned: dict[str, ParamValue]) -> Iterator[dict[str, ParamValue]]:
            if i == len(self.order):
                yield dict(assigned)
                return
            name = self.order[i]
            if not self.is_active(name, assigned):
                yield from expand(i + 1, assigned)
                return
            for v in self.domains[name].grid(float_points):
                assigned[name] = v
                yield from expand(i + 1, assigned)
                del assigned[name]

        yield from expand(0, {})

    def to_json(self) -> dict[str, Any]:
        return {n: self.domains[n].model_dump(exclude_none=True) for n in self.order}


def _yaml_text(value: ParamValue) -> str:
    """``value`` as a YAML flow list writes it (``true``, ``null``, ``'yes'``: a string YAML would read otherwise)."""
    return yaml.safe_dump(value, default_flow_style=True).removesuffix("\n...\n").strip()


def _describe(dom: AnyDomain) -> str:
    if isinstance(dom, Categorical):
        return f"choices {dom.choices}"
    return f"[{dom.low}, {dom.high}]" + (f" step {dom.step}" if getattr(dom, "step", None) not in (None, 1) else "")


def _domain_hint(name: str, domain: AnyDomain, value: Any) -> str:
    """What the parent's domain holds, for a `when` value outside it."""
    if not isinstance(domain, Categorical):
        step = f" in steps of {domain.step:g}" if domain.step not in (None, 1) else ""
        kind = "an int" if domain.type == "int" else "a float"
        return f"{name!r} is {kind} in [{domain.low:g}, {domain.high:g}]{step}"
    hint = f"choices are {domain.choices}"
    quoted = [c for c in domain.choices if isinstance(c, str) and c.lower() in ("yes", "no", "on", "off", "true",
                                                                                 "false")]
    if isinstance(value, bool) and quoted:  # the YAML 1.1 trap: `when: {flag: yes}` against choices ['yes', 'no']
        hint += (f" (YAML reads an unquoted yes, no, on, off, true or false as a boolean: quote it, {quoted[0]!r})")
    return hint


def _topological(domains: Mapping[str, AnyDomain], path: str) -> tuple[str, ...]:
    declared = list(domains)
    done: list[str] = []
    visiting: set[str] = set()

    def visit(n: str, chain: tuple[str, ...]) -> None:
        if n in done:
            return
        if n in visiting:
            cycle = " -> ".join((*chain, n))
            raise SpaceError(f"{path}.{n}.when", f"conditions form a cycle ({cycle}); remove one of the `when` links")
        visiting.add(n)
        for parent in domains[n].when or {}:
            visit(parent, (*chain, n))
        visiting.discard(n)
        done.append(n)

    for n in declared:
        visit(n, ())
    return tuple(done)


