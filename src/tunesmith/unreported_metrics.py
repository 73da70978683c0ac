"""Metrics the spec names that a completed trial did not report: said while the run goes on, not only by `show`.

A misspelt metric changes nothing a trial does, so nothing fails: with ``cost: {metric: dollars}`` and trials that
report ``dollar`` every trial is of unknown cost; with ``constraints: ["latncy <= 18"]`` and trials that report
``latency`` no trial is feasible. The run used to finish without a word (``show`` found the reason afterwards).
The first completed trial that lacks such a metric shows it, so the warning comes once per metric, with the
did-you-mean from what that trial did report. A trial that failed or was pruned may stop before reporting a metric:
only a completed one says the name is wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from tunesmith.constraints import Constraint
from tunesmith.cost import executor_added
from tunesmith.events import RunListener
from tunesmith.records import ObjectiveSpec, TrialRecord, TrialState
from tunesmith.spec.model import ExperimentSpec
from tunesmith.suggestions import closest


def unreported_hint(metric: str, reported: Iterable[str]) -> str:
    """``"did you mean 'dollar'?"`` from the names a trial reported, else ``"it reported 'loss', 'latency'"``."""
    names = sorted(n for n in reported if not executor_added(n))
    close = closest(metric, names)
    if close is not None:
        return f"did you mean {close!r}?"
    return f"it reported {', '.join(map(repr, names[:12]))}" if names else "it reported no other metric"


class UnreportedMetrics(RunListener):
    """Warns, once per metric, when a completed trial lacks the cost metric or a constraint's metric.

    Args:
        cost_metric: ``cost.metric``, the metric the trials report their cost in; None without one.
        constraints: the spec's constraints.
        objectives: the spec's objectives (a constraint or the cost may name one).
    """

    def __init__(self, cost_metric: str | None, constraints: Sequence[Constraint],
                 objectives: Sequence[ObjectiveSpec], priced: bool = False) -> None:
        self.cost_metric = cost_metric
        self.priced = priced  # the cost section prices resources too: a trial without the metric is priced by them
        self.constraints = constraints
        self.objectives = objectives
        self._said: set[str] = set()
        self._warn: Callable[[str], None] = lambda message: None

    @classmethod
    def of(cls, spec: ExperimentSpec) -> UnreportedMetrics:
        cost = spec.cost
        return cls(cost.metric if cost is not None else None, spec.constraints, spec.objectives,
                   priced=cost is not None and bool(cost.cpu_hour or cost.gpu_hour or cost.memory_gb_hour))

    def warn_through(self, warn: Callable[[str], None]) -> None:
        self._warn = warn

    def trial_finished(self, trial: TrialRecord, best: TrialRecord | None) -> None:
        if trial.state is not TrialState.COMPLETED:
            return
        reported: Mapping[str, float] = {**trial.metrics, **(trial.value_map(tuple(self.objectives)) or {})}
        priced = ("priced from its measured resources instead (unknown where one was not measured)" if self.priced
                  else "unknown")
        named = [(self.cost_metric, f"the cost metric (cost.metric): its cost is {priced}")] if self.cost_metric else []
        named += [(c.metric, f"the metric of constraint '{c}': no trial lacking it is feasible")
                  for c in self.constraints]
        for metric, what in named:
            if metric is None or metric in reported or metric in self._said:
                continue
            self._said.add(metric)
            self._warn(f"trial {trial.number} completed without reporting {metric!r}, {what}; "
                       f"{unreported_hint(metric, reported)}")
