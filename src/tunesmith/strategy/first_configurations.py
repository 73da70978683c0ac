"""Configurations handed to a strategy before it proposes its own: a re-tune's re-evaluations
(:mod:`tunesmith.strategy.warm_start`) and the spec's ``enqueue`` (:mod:`tunesmith.strategy.enqueued`).

One queue rule for both: handed out in order, each through :meth:`Strategy.adopt` (so the strategy learns from it
as from any trial), and never handed out again once the history holds it (a resumed run's replay) or it runs
elsewhere (a lost trial's re-run, a joined peer's running trial: both adopted)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence

from tunesmith.records import ParamValue, Report, TrialRecord, TrialState
from tunesmith.strategy.base import Proposal, Strategy


def config_key(params: Mapping[str, ParamValue]) -> str:
    """One configuration as a string, the same for equal parameters whatever their order, and for floats equal to
    12 significant digits: a stepped float recorded by an earlier tunesmith as Optuna summed it (0.30000000000000004)
    is the configuration a re-tune now records on its grid (0.3), or a resumed re-tune would re-evaluate it again."""
    return json.dumps({k: _key_value(v) for k, v in params.items()}, sort_keys=True, default=str)


def _key_value(value: ParamValue) -> ParamValue:
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.12g}")
    return value


class FirstConfigurations:
    """``inner``, with ``first`` handed out before anything it proposes. Subclasses note what was handed out in
    :meth:`_handed_out`."""

    def __init__(self, inner: Strategy, first: Sequence[Mapping[str, ParamValue]]) -> None:
        self.inner = inner
        self._queue = [dict(p) for p in first]   # not handed out yet

    def replay(self, history: Sequence[TrialRecord]) -> None:
        self.inner.replay(history)
        self._forget(t.params for t in history)

    def ask(self) -> Proposal | None:
        if self._queue:
            params = self._queue.pop(0)
            return self._handed_out(self.inner.adopt(params), params)
        return self.inner.ask()

    def adopt(self, params: dict[str, ParamValue]) -> Proposal:
        self._forget([params])
        return self._handed_out(self.inner.adopt(params), params)

    def report(self, token: int, report: Report) -> None:
        self.inner.report(token, report)

    def tell(self, token: int, state: TrialState, values: Sequence[float] | None,
             metrics: Mapping[str, float] | None = None) -> None:
        self.inner.tell(token, state, values, metrics)

    def _forget(self, configs: Iterable[Mapping[str, ParamValue]]) -> None:
        """Take ``configs`` (run already, or running elsewhere) off the queue."""
        taken = {config_key(c) for c in configs}
        self._queue = [p for p in self._queue if config_key(p) not in taken]

    def _handed_out(self, proposal: Proposal, params: Mapping[str, ParamValue]) -> Proposal:
        return proposal
