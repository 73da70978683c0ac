"""Driving a strategy on a closed-form loss, sequentially, for tests and benchmarks of warm starts (a landscape
and its shifted copy stand in for old and new data at microseconds a trial)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from tunesmith.records import ParamValue, TrialRecord, TrialState
from tunesmith.strategy.base import Strategy


def drive(strategy: Strategy, loss: Callable[[Mapping[str, ParamValue]], float], trials: int) -> list[TrialRecord]:
    """Ask, evaluate ``loss`` and tell ``trials`` times, one at a time; the finished trials in order."""
    out = []
    for number in range(trials):
        proposal = strategy.ask()
        if proposal is None:
            break
        value = loss(proposal.params)
        strategy.tell(proposal.token, TrialState.COMPLETED, [value])
        out.append(TrialRecord(number, TrialState.COMPLETED, dict(proposal.params), 0, values=(value,)))
    return out
