"""scikit-optimize's ``gp_minimize`` configuration (GP with gaussian noise, gp_hedge, 10 random initial points)
through its ``Optimizer`` ask/tell, with the acquisition optimizer chosen automatically (``acq_optimizer="auto"``:
``lbfgs`` is unusable on categorical dimensions, which crashed an earlier adapter on all-categorical spaces).

The batch regime asks for 8 points at once (``ask(n_points=8)``, constant liar ``cl_min``) and tells them
together. No conditional parameters: every parameter is proposed, the inactive ones are dropped.
"""

from __future__ import annotations

import warnings
from typing import Any

from skopt import Optimizer
from skopt.space import Categorical as SCategorical
from skopt.space import Integer, Real, Space
from skopt.utils import cook_estimator

from benchmarks.search_quality.optimizers.common import active_only
from tunesmith.space import Categorical, Float, Int, SearchSpace


def _dim(name: str, dom: Float | Int | Categorical) -> Any:
    if isinstance(dom, Categorical):
        return SCategorical([str(c) for c in dom.choices], name=name)
    prior = "log-uniform" if dom.log else "uniform"
    if isinstance(dom, Int):
        return Integer(dom.low, dom.high, prior=prior, name=name)
    return Real(dom.low, dom.high, prior=prior, name=name)


class SkoptSession:
    def __init__(self, space: SearchSpace, seed: int, batch: int) -> None:
        self.space = space
        self.names = list(space.order)
        dims = [_dim(n, space.domains[n]) for n in self.names]
        estimator = cook_estimator("GP", space=Space(dims), random_state=seed, noise="gaussian")
        self.opt = Optimizer(dims, estimator, n_initial_points=10, acq_func="gp_hedge", acq_optimizer="auto",
                             random_state=seed)
        self.batch = batch
        self.pending: list[list[Any]] = []
        self.asked = 0  # proposals handed out since the last tell to skopt
        self.told_x: list[list[Any]] = []
        self.told_y: list[float] = []

    def ask(self) -> tuple[Any, dict[str, Any]]:
        if not self.pending:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.pending = self.opt.ask(n_points=self.batch) if self.batch > 1 else [self.opt.ask()]
        x = self.pending.pop(0)
        self.asked += 1
        return x, active_only(self.space, dict(zip(self.names, x, strict=True)))

    def tell(self, handle: Any, loss: float) -> None:
        self.told_x.append(handle)
        self.told_y.append(float(loss))
        if not self.pending and len(self.told_x) == self.asked:
            # the whole batch at once (one model fit), as skopt's own batch loop does
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.opt.tell(self.told_x, self.told_y)
            self.told_x, self.told_y, self.asked = [], [], 0


def make(space: SearchSpace, seed: int, budget: int, batch: int) -> SkoptSession:
    return SkoptSession(space, seed, batch)
