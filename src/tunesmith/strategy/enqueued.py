"""Known configurations evaluated first (the spec's ``enqueue``, Optuna's ``study.enqueue_trial``): production
defaults, last quarter's best. Handed to the strategy through :meth:`Strategy.adopt`, as a re-tune's re-evaluations
are, so the strategy learns from them as from any trial; each counts in the trial budget."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tunesmith.records import ParamValue
from tunesmith.strategy.base import Strategy
from tunesmith.strategy.first_configurations import FirstConfigurations


def enqueue_warnings(configs: Sequence[Mapping[str, ParamValue]], trials: int | None) -> list[str]:
    """What more configurations under ``enqueue`` than ``budget.trials`` warns: the last ones never run (the run
    stops at the budget), unless the budget is raised (``resume NAME --trials N``)."""
    if trials is None or len(configs) <= trials:
        return []
    extra = len(configs) - trials
    return [f"enqueue holds {len(configs)} configurations, more than budget.trials ({trials}): the last {extra} will "
            f"not run; raise budget.trials to {len(configs)} (or later: tunesmith resume NAME --trials N), or drop "
            f"{'it' if extra == 1 else 'them'}"]


class EnqueuedFirst(FirstConfigurations):
    """``inner``, with ``configs`` handed out first, in order (:class:`FirstConfigurations`' queue rule)."""

    def __getattr__(self, name: str) -> Any:  # the inner strategy's optional hooks (transfer_prior, taken_as, ...)
        return getattr(self.inner, name)


def enqueued_first(strategy: Strategy, configs: Sequence[Mapping[str, ParamValue]]) -> Strategy:
    """``strategy`` with ``configs`` evaluated first, or ``strategy`` itself where there are none."""
    return EnqueuedFirst(strategy, configs) if configs else strategy
