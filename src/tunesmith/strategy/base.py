"""The Strategy protocol: propose configurations, learn from their outcomes.

Call order, per experiment: ``replay(history)`` once (may be empty), then any interleaving of ``ask()`` /
``adopt(params)`` and ``report()`` / ``tell()`` for the proposals handed out. Several proposals may be
outstanding at once (parallel workers); a strategy keeps them diverse.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from tunesmith.records import ParamValue, Report, TrialRecord, TrialState


@dataclass(frozen=True, slots=True)
class Proposal:
    """A configuration to run; ``token`` identifies it to the strategy that made it."""

    token: int
    params: dict[str, ParamValue]


@dataclass(frozen=True, slots=True)
class StrategyDecision:
    """What strategy runs and why (recorded with the experiment; `auto` explains its pick), and what the spec's
    check of it warns (said with the spec's other warnings; not recorded)."""

    name: str
    options: dict[str, object]
    reason: str
    warnings: tuple[str, ...] = ()


class Strategy(Protocol):
    def replay(self, history: Sequence[TrialRecord]) -> None:
        """Learn from trials finished before this process started (resume)."""
        ...

    def ask(self) -> Proposal | None:
        """The next configuration, or None when the strategy has nothing left to propose (a finished grid)."""
        ...

    def adopt(self, params: dict[str, ParamValue]) -> Proposal:
        """Register a configuration chosen elsewhere (a re-run of a lost trial) as outstanding."""
        ...

    def report(self, token: int, report: Report) -> None:
        """An intermediate value of an outstanding proposal."""
        ...

    def tell(self, token: int, state: TrialState, values: Sequence[float] | None,
             metrics: Mapping[str, float] | None = None) -> None:
        """The final outcome of an outstanding proposal: completed (with values), pruned or failed; ``metrics``
        (every metric the trial reported, objectives included) for strategies that weigh constraints. Any other
        state (a peer's trial interrupted or lost): the proposal is withdrawn, with no result to learn from."""
        ...
