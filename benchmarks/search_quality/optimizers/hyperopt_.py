"""Hyperopt's TPE (defaults: 20 random start-up trials, 24 EI candidates), driven through its Trials object.

Conditional parameters become hyperopt's nested ``hp.choice`` (a parameter conditioned on one categorical parent
lives inside that parent's branches, with a label per branch since hyperopt labels must be unique); a parameter
with several parents is flattened (proposed always, dropped when inactive).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from hyperopt import STATUS_OK, Domain, Trials, hp, tpe
from hyperopt.base import JOB_STATE_DONE

from benchmarks.search_quality.optimizers.common import active_only
from tunesmith.space import Categorical, Float, Int, SearchSpace

_VALUE = "__value__"


def _leaf(label: str, dom: Float | Int | Categorical) -> Any:
    if isinstance(dom, Categorical):
        return hp.choice(label, list(dom.choices))
    if isinstance(dom, Int):
        if dom.log:
            return hp.qloguniform(label, math.log(dom.low), math.log(dom.high), 1)
        return hp.quniform(label, dom.low, dom.high, dom.step)
    if dom.log:
        return hp.loguniform(label, math.log(dom.low), math.log(dom.high))
    if dom.step is not None:
        return hp.quniform(label, dom.low, dom.high, dom.step)
    return hp.uniform(label, dom.low, dom.high)


def _nested_space(space: SearchSpace) -> dict[str, Any]:
    def single_parent(name: str) -> tuple[str, list[Any]] | None:
        when = space.domains[name].when or {}
        if len(when) != 1:
            return None
        parent, allowed = next(iter(when.items()))
        if not isinstance(space.domains[parent], Categorical):
            return None
        return parent, allowed if isinstance(allowed, list) else [allowed]

    nested = {n for n in space.order if single_parent(n) is not None}

    def node(name: str, label: str) -> Any:
        dom = space.domains[name]
        children = [c for c in space.order if c in nested and single_parent(c)[0] == name]  # type: ignore[index]
        if not children:
            return _leaf(label, dom)
        assert isinstance(dom, Categorical)
        branches = []
        for v in dom.choices:
            branch: dict[str, Any] = {_VALUE: v}
            for c in children:
                if v in single_parent(c)[1]:  # type: ignore[index]
                    branch[c] = node(c, f"{c}@{name}={v}")
            branches.append(branch)
        return hp.choice(label, branches)

    return {n: node(n, n) for n in space.order if n not in nested}


def _flatten(sample: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
    for k, v in sample.items():
        if k == _VALUE:
            continue
        if isinstance(v, dict):
            out[k] = v[_VALUE]
            _flatten(v, out)
        else:
            out[k] = v
    return out


class HyperoptSession:
    def __init__(self, space: SearchSpace, seed: int) -> None:
        self.space = space
        self.hspace = _nested_space(space)
        self.domain = Domain(lambda _: 0.0, self.hspace)
        self.trials = Trials()
        self.rng = np.random.default_rng(seed)

    def ask(self) -> tuple[Any, dict[str, Any]]:
        from hyperopt import space_eval

        tid = self.trials.new_trial_ids(1)
        docs = tpe.suggest(tid, self.domain, self.trials, int(self.rng.integers(2**31 - 1)))
        self.trials.insert_trial_docs(docs)
        self.trials.refresh()
        doc = next(d for d in self.trials._dynamic_trials if d["tid"] == tid[0])
        vals = {k: v[0] for k, v in doc["misc"]["vals"].items() if len(v)}
        flat = _flatten(space_eval(self.hspace, vals), {})
        for name in self.space.order:  # a flattened (multi-parent) parameter may be missing: fill it
            flat.setdefault(name, None)
        params = active_only(self.space, flat)
        return doc, params

    def tell(self, handle: Any, loss: float) -> None:
        handle["state"] = JOB_STATE_DONE
        handle["result"] = {"loss": float(loss), "status": STATUS_OK}
        handle["refresh_time"] = time.time()
        self.trials.refresh()


def make(space: SearchSpace, seed: int, budget: int, batch: int) -> HyperoptSession:
    return HyperoptSession(space, seed)
