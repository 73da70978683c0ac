"""Nevergrad's NGOpt (its recommended default), told the budget and the number of workers (the batch size).

Nevergrad has no conditional parameters: every parameter is proposed, the inactive ones are dropped before the
objective sees the configuration.
"""

from __future__ import annotations

import warnings
from typing import Any

import nevergrad as ng
import numpy as np

from benchmarks.search_quality.optimizers.common import active_only
from tunesmith.space import Categorical, Float, Int, SearchSpace


def _scalar_float(x: Any) -> float:
    return float(np.asarray(x, dtype=float).reshape(-1)[0])


# Nevergrad 1.0.12's MetaModel calls float() on a 1-element array, which numpy >= 2.4 refuses ("only
# 0-dimensional arrays can be converted to Python scalars"); NGOpt reaches it in the batch regime. The module looks
# `float` up in its globals before the builtins, so this shim fixes only that module.
import nevergrad.optimization.metamodel as _metamodel  # noqa: E402

_metamodel.float = _scalar_float  # type: ignore[attr-defined]


def _param(dom: Float | Int | Categorical) -> Any:
    if isinstance(dom, Categorical):
        return ng.p.Choice(list(dom.choices))
    if isinstance(dom, Int):
        p = ng.p.Log(lower=dom.low, upper=dom.high) if dom.log else ng.p.Scalar(lower=dom.low, upper=dom.high)
        return p.set_integer_casting()
    return ng.p.Log(lower=dom.low, upper=dom.high) if dom.log else ng.p.Scalar(lower=dom.low, upper=dom.high)


class NevergradSession:
    def __init__(self, space: SearchSpace, seed: int, budget: int, batch: int) -> None:
        self.space = space
        param = ng.p.Dict(**{n: _param(space.domains[n]) for n in space.order})
        param.random_state = np.random.RandomState(seed)
        self.opt = ng.optimizers.NGOpt(parametrization=param, budget=budget, num_workers=batch)

    def ask(self) -> tuple[Any, dict[str, Any]]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cand = self.opt.ask()
        return cand, active_only(self.space, dict(cand.value))

    def tell(self, handle: Any, loss: float) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.opt.tell(handle, loss)


def make(space: SearchSpace, seed: int, budget: int, batch: int) -> NevergradSession:
    return NevergradSession(space, seed, budget, batch)
