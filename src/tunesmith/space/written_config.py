"""A configuration as a spec writes it (``enqueue:``): its values read as the spec's own number fields read theirs.

:meth:`SearchSpace.validate_params` checks a configuration a strategy or a record gives, where a value of the wrong
type is a defect. Written in YAML, it is a slip to say as one: ``1e-3`` (YAML 1.1 reads it as text) is the float a
``low: 1e-4`` is taken as, ``3.0`` for an int is 3 (pydantic's int fields take it), an int for a float choice is
that float; a bool, a quoted number or a fractional int is refused saying what was expected, not "outside the
domain"; a stepped float's value off its grid is refused in a spec given anew (:func:`check_on_grid`), as an
int's is.
"""

from __future__ import annotations

import math

from collections.abc import Mapping
from typing import Any

from tunesmith.errors import SpaceError
from tunesmith.records import ParamValue
from tunesmith.space.domains import Categorical, Float, Int
from tunesmith.space.search_space import SearchSpace
from tunesmith.strict_model import exponent_text_as_float
from tunesmith.suggestions import closest

_YAML_BOOLEAN = " (YAML reads an unquoted yes, no, on, off, true or false as a boolean: quote it)"


def read_written_config(space: SearchSpace, config: Mapping[str, Any], path: str) -> dict[str, ParamValue]:
    """``config`` with each value of a parameter of ``space`` read for its domain, then checked as
    :meth:`SearchSpace.validate_params` checks it (the same path, ``path.name``).

    Raises:
        SpaceError: at ``path.name``: a name no parameter of ``space`` has (the one it likely meant), a value of the
            wrong type (what was expected, the value, the fix), or what ``validate_params`` refuses.
    """
    names = list(space.domains)  # as the spec lists them
    for name in config:
        if name not in space.domains:  # else validate_params names the parameter meant as missing, not this key
            close = closest(str(name), names, given=[n for n in config if n in space.domains])
            hint = f"did you mean {close!r}? " if close else ""
            raise SpaceError(f"{path}.{name}", f"names no parameter of the space; {hint}parameters: "
                                               f"{', '.join(names)}")
    read = {name: _read(space.domains[name], value, f"{path}.{name}") if name in space.domains else value
            for name, value in config.items()}
    return space.validate_params(read, path)


def check_on_grid(space: SearchSpace, config: Mapping[str, ParamValue], path: str) -> None:
    """Refuse a stepped float's value of ``config`` (as :func:`read_written_config` read it) off its grid, as an
    int's is refused. A check of a spec given anew: an experiment recorded before it (0.25 for step 0.5 ran) stays
    readable and resumable.

    Raises:
        SpaceError: at ``path.name``: the value and the nearest grid points.
    """
    found = space.off_grid(config)  # an int's step is its domain's (Int.contains); a float's, checked here
    if found is None:
        return
    name, why = found
    domain, value = space.domains[name], config[name]
    assert isinstance(domain, Float) and domain.step is not None and isinstance(value, float)  # what off_grid found
    below = domain.on_grid(domain.low + math.floor((value - domain.low) / domain.step) * domain.step)
    above = domain.on_grid(below + domain.step)
    raise SpaceError(f"{path}.{name}", f"{why}: the nearest points are {below!r} and {above!r}")


def _read(domain: Float | Int | Categorical, value: Any, where: str) -> Any:
    text = " (text: write it unquoted)" if isinstance(value, str) else ""
    if isinstance(domain, Float):
        value = exponent_text_as_float(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SpaceError(where, f"must be a number; got {value!r}{text}")
        return float(value)
    if isinstance(domain, Int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpaceError(where, f"must be a whole number; got {value!r}{text}")
        return value
    if domain.contains(value):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and domain.contains(float(value)):
        return float(value)  # `f: 1` for choices [0.5, 1.0]
    if isinstance(value, bool) and not any(isinstance(c, bool) for c in domain.choices):
        raise SpaceError(where, f"must be one of the choices {list(domain.choices)}; got {value!r}{_YAML_BOOLEAN}")
    if isinstance(value, str) and any(isinstance(c, int | float) and not isinstance(c, bool) for c in domain.choices):
        raise SpaceError(where, f"must be one of the choices {list(domain.choices)}; got {value!r}{text}")
    return value  # refused by validate_params as outside the domain
