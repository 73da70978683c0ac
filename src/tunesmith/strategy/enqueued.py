"""Known configurations evaluated first (the spec's ``enqueue``, Optuna's ``study.enqueue_trial``): production
defaults, last quarter's best. Handed to the strategy through :meth:`Strategy.adopt`, as a re-tune's re-evaluations
are, so the strategy learns from them as from any trial; each counts in the trial budget."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tunesmith.records import ParamValue, Report, TrialRecord, TrialState
from tunesmith.strategy.base import Proposal, Strategy
from tunesmith.strategy.warm_start import config_key


def enqueue_warnings(configs: Sequence[Mapping[str, ParamValue]], trials: int | None) -> list[str]:
    """What more configurations under ``enqueue`` than ``budget.trials`` warns: the last ones never run (the run
    stops at the budget), unless the budget is raised (``resume NAME --trials N``)."""
    if trials is None or len(configs) <= trials:
        return []
    extra = len(configs) - trials
    return [f"enqueue holds {len(configs)} configurations, more than budget.trials ({trials}): the last {extra} will "
            f"not run; raise budget.trials to {len(configs)} (or later: tunesmith resume NAME --trials N), or drop "
            f"{'it' if extra == 1 else 'them'}"]


class EnqueuedFirst:
    """``inner``, with ``configs`` handed out first, in order; a configuration the history already holds (a resumed
    run's, replayed) or that runs elsewhere (a lost trial's re-run, a joined peer's trial: adopted) is not handed
    out again."""

    def __init__(self, inner: Strategy, configs: Sequence[Mapping[str, ParamValue]]) -> None:
        self.inner = inner
        self._queue = [dict(c) for c in configs]

    def __getattr__(self, name: str) -> Any:  # the inner strategy's optional hooks (transfer_prior, taken_as, ...)
        return getattr(self.inner, name)

    def replay(self, history: Sequence[TrialRecord]) -> None:
        self.inner.replay(history)
        seen = {config_key(t.params) for t in history}
        self._queue = [c for c in self._queue if config_key(c) not in seen]

    def ask(self) -> Proposal | None:
        if self._queue:
            return self.inner.adopt(self._queue.pop(0))
        return self.inner.ask()

    def adopt(self, params: dict[str, ParamValue]) -> Proposal:
        key = config_key(params)
        self._queue = [c for c in self._queue if config_key(c) != key]
        return self.inner.adopt(params)

    def report(self, token: int, report: Report) -> None:
        self.inner.report(token, report)

    def tell(self, token: int, state: TrialState, values: Sequence[float] | None,
             metrics: Mapping[str, float] | None = None) -> None:
        self.inner.tell(token, state, values, metrics)


def enqueued_first(strategy: Strategy, configs: Sequence[Mapping[str, ParamValue]]) -> Strategy:
    """``strategy`` with ``configs`` evaluated first, or ``strategy`` itself where there are none."""
    return EnqueuedFirst(strategy, configs) if configs else strategy
