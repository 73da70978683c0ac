"""What a trial cost: its measured resources times the spec's prices, or the cost it reported itself.

The executor measures (CPU seconds of the trial's process tree, its peak resident memory, the wall time) and calls
:func:`cost_metrics`; the result is stored as ordinary trial metrics (``cpu_s``, ``peak_memory_mb``, ``cost``), so
a budget, a constraint or an objective can use them like any other metric.

A measurement that never arrived (a killed Ray attempt whose actor was ended before it could say what it had used)
is unknown, not zero: its metric is left out, and a cost that depends on it is not made up either: the attempt
gets ``cost_unknown`` (1.0) instead of ``cost``, and a money budget counts it at the expected cost of a trial.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tunesmith.evaluation.job import TrialJob
    from tunesmith.records import Outcome

COST_METRIC = "cost"
COST_UNKNOWN_METRIC = "cost_unknown"  # 1.0 on an attempt whose cost depends on a measurement that never arrived
COST_METRICS_ADDED = frozenset({"cpu_s", "peak_memory_mb", "gpus", COST_METRIC, COST_UNKNOWN_METRIC})
"""Every metric :func:`cost_metrics` adds to an attempt's own."""


def money(amount: float) -> str:
    """An amount of money for a person to read, as every text output writes it (the run's stop line, ``show``, a
    budget's stop reason): four significant digits, so a run that cost 3.1e-08 does not read as 0. Machine output
    (``--json``) carries the amount itself."""
    return f"{amount:.4g}"


def executor_added(metric: str) -> bool:
    """Whether ``metric`` is one tunesmith adds to a trial itself as its executor runs it: measured and priced
    (:func:`cost_metrics`), or the GPUs it ran on (``gpu_device_N``, ``gpu_share``: ``executor.devices.slot_metrics``).
    Never what a trial reported, and absent from anything evaluated outside an executor (a nested estimate's inner
    trials). A hand-written list of names missed the device metrics."""
    from tunesmith.executor.devices import is_slot_metric

    return metric in COST_METRICS_ADDED or is_slot_metric(metric)


@dataclass(frozen=True, slots=True)
class ResourceUsage:
    """What one trial attempt used, as measured by its executor."""

    cpu_s: float | None          # user + system CPU seconds of the trial's whole process tree; None: not measured
    peak_memory_mb: float | None  # highest resident memory seen (MiB); None: not measured
    duration_s: float            # wall time
    gpus: float = 0.0            # GPUs assigned to the trial (0.5: half of one, shared with another trial)


@dataclass(frozen=True, slots=True)
class Prices:
    """The spec's ``cost`` section as it travels with a job (plain JSON, see :meth:`to_json`)."""

    cpu_hour: float = 0.0
    gpu_hour: float = 0.0
    memory_gb_hour: float = 0.0
    gpus: float = 0.0
    metric: str | None = None    # the trial reports its own cost in this metric

    def to_json(self) -> dict[str, Any]:
        return {"cpu_hour": self.cpu_hour, "gpu_hour": self.gpu_hour, "memory_gb_hour": self.memory_gb_hour,
                "gpus": self.gpus, "metric": self.metric}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Prices:
        return cls(float(d.get("cpu_hour", 0.0)), float(d.get("gpu_hour", 0.0)), float(d.get("memory_gb_hour", 0.0)),
                   float(d.get("gpus", 0.0)), d.get("metric"))

    def price(self, usage: ResourceUsage) -> float | None:
        """Dollars (or whatever unit the prices are in) for ``usage``; None when a price applies to a quantity
        that was not measured."""
        if (self.cpu_hour and usage.cpu_s is None) or (self.memory_gb_hour and usage.peak_memory_mb is None):
            return None
        hours = usage.duration_s / 3600.0
        return (self.cpu_hour * (usage.cpu_s or 0.0) / 3600.0 + self.gpu_hour * usage.gpus * hours
                + self.memory_gb_hour * (usage.peak_memory_mb or 0.0) / 1024.0 * hours)


def cost_metrics(prices: Prices, usage: ResourceUsage, reported: Mapping[str, float],
                 failed: bool = True) -> dict[str, float]:
    """The metrics to add to an attempt's own: its measured resources and its cost.

    With ``metric`` set, the cost is the trial's reported value; a trial that failed before reporting it costs
    what its measured resources cost at the prices given (nothing, when no price is given). One that did not fail
    (``failed`` false) yet never reported it, with no price given, is of unknown cost: a trial that misnames the
    metric must not look free. A quantity not measured is left out; a cost that needs it is unknown
    (``cost_unknown`` 1.0, no ``cost``).
    """
    out: dict[str, float] = {}
    if usage.cpu_s is not None:
        out["cpu_s"] = round(usage.cpu_s, 4)
    if usage.peak_memory_mb is not None:
        out["peak_memory_mb"] = round(usage.peak_memory_mb, 2)
    if usage.gpus:
        out["gpus"] = float(usage.gpus)
    cost: float | None
    if prices.metric is not None and prices.metric in reported:
        cost = float(reported[prices.metric])
    elif prices.metric is not None and not failed and not (prices.cpu_hour or prices.gpu_hour or prices.memory_gb_hour):
        cost = None  # it never reported its cost, and nothing else prices it
    else:
        cost = prices.price(usage)
    if cost is None:
        out[COST_UNKNOWN_METRIC] = 1.0
    else:
        out[COST_METRIC] = cost
    return out


def measured_objectives(job: TrialJob) -> frozenset[str]:
    """The job's objectives its executor measures and prices (``cost``, ``cpu_s``, ...), so that its trial need not
    return them: none without prices."""
    return frozenset(m for m in job.metrics if m in COST_METRICS_ADDED) if job.cost is not None else frozenset()


def priced(job: TrialJob, outcome: Outcome, cpu_s: float | None, peak_rss: int | None) -> Outcome:
    """The outcome with the attempt's measured resources (CPU seconds, peak resident bytes; None for one not
    measured) and its cost added to its metrics; the outcome as it is for a job without prices. Every executor
    prices its attempts through this. An objective the trial left to the measure (``cost`` as an objective) takes
    its measured value; one that could not be measured fails the attempt, saying so."""
    if job.cost is None:
        return outcome
    from dataclasses import replace

    prices = Prices.from_json(job.cost)
    usage = ResourceUsage(None if cpu_s is None else max(0.0, cpu_s), None if peak_rss is None else peak_rss / 2**20,
                          outcome.duration_s, prices.gpus)
    added = cost_metrics(prices, usage, job_metrics(job, outcome), failed=outcome.failure is not None)
    metrics = {**outcome.metrics, **added}
    left = [] if outcome.values is None or outcome.pruned else [
        m for m, v in zip(job.metrics, outcome.values, strict=True) if math.isnan(v)]  # (results.MEASURED_LATER)
    if not left:
        return replace(outcome, metrics=metrics)
    assert outcome.values is not None
    values = tuple(metrics.get(m, v) if m in left else v for m, v in zip(job.metrics, outcome.values, strict=True))
    missing = [m for m in left if m not in metrics]
    if missing:
        from tunesmith.records import Failure, FailureKind

        why = ("its cost depends on a measure that never arrived" if COST_UNKNOWN_METRIC in added
               else "the executor did not measure it")
        return replace(outcome, values=None, metrics=metrics, failure=Failure(
            FailureKind.INVALID_RESULT, f"the objective {missing[0]!r} was left to the executor's measure, and "
                                        f"{why}; return it from the trial to score the trial by it"))
    return replace(outcome, values=values, metrics=metrics)


def job_metrics(job: TrialJob, outcome: Outcome) -> dict[str, float]:
    """Every metric an attempt reported, its objectives' values included (a reported cost may be an objective)."""
    reported = dict(outcome.metrics)
    if outcome.values is not None:
        # (NaN: an objective left to the measure)
        reported.update((m, v) for m, v in zip(job.metrics, outcome.values, strict=False) if not math.isnan(v))
    return reported
