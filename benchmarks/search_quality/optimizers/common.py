"""Helpers the adapters share: flattening conditional spaces, random sampling, casting values back."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tunesmith.space import Categorical, Float, Int, SearchSpace


def active_only(space: SearchSpace, flat: dict[str, Any]) -> dict[str, Any]:
    """From a full assignment (every parameter, as optimizers without conditions propose it) keep the active ones,
    cast to tunesmith's types and clipped to the domain."""
    return space.sample_active(lambda name, dom: cast(dom, flat[name]))


def cast(dom: Float | Int | Categorical, value: Any) -> Any:
    if isinstance(dom, Categorical):
        for c in dom.choices:  # numpy scalars / strings back to the declared choice object
            if c == value or str(c) == str(value):
                return c
        raise ValueError(f"{value!r} is not one of {dom.choices}")
    if isinstance(dom, Int):
        v = int(round(float(value)))
        v = dom.low + round((v - dom.low) / dom.step) * dom.step
        return min(max(v, dom.low), dom.high)
    v = min(max(float(value), dom.low), dom.high)
    if dom.step is not None:
        v = min(max(dom.low + round((v - dom.low) / dom.step) * dom.step, dom.low), dom.high)
    return v


def sample_random(space: SearchSpace, rng: np.random.Generator) -> dict[str, Any]:
    """Uniform random search: log-uniform where the domain is log-scaled; conditions respected."""

    def pick(name: str, dom: Float | Int | Categorical) -> Any:
        if isinstance(dom, Categorical):
            return dom.choices[int(rng.integers(len(dom.choices)))]
        if isinstance(dom, Int):
            if dom.log:
                v = math.exp(rng.uniform(math.log(dom.low - 0.5), math.log(dom.high + 0.5)))
                return min(max(int(round(v)), dom.low), dom.high)
            return dom.low + dom.step * int(rng.integers((dom.high - dom.low) // dom.step + 1))
        if dom.log:
            return float(math.exp(rng.uniform(math.log(dom.low), math.log(dom.high))))
        if dom.step is not None:
            n = int(round((dom.high - dom.low) / dom.step))
            return cast(dom, dom.low + dom.step * int(rng.integers(n + 1)))
        return float(rng.uniform(dom.low, dom.high))

    return space.sample_active(pick)
