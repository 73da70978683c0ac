"""What a trial cost: its measured resources times the spec's prices, or the cost it reported itself.

The executor measures (CPU seconds of the trial's process tree, its peak resident memory, the wall time) and calls
:func:`cost_metrics`; the result is stored as ordinary trial metrics (``cpu_s``, ``peak_memory_mb``, ``cost``), so
a budget, a constraint or an objective can use them like any other metric.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tunesmith.evaluation.job import TrialJob
    from tunesmith.records import Outcome

COST_METRIC = "cost"


@dataclass(frozen=True, slots=True)
class ResourceUsage:
    """What one trial attempt used, as measured by its executor."""

    cpu_s: float                 # user + system CPU seconds of the trial's whole process tree
    peak_memory_mb: float        # highest resident memory seen (MiB)
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

    def price(self, usage: ResourceUsage) -> float:
        """Dollars (or whatever unit the prices are in) for ``usage``."""
        hours = usage.duration_s / 3600.0
        return (self.cpu_hour * usage.cpu_s / 3600.0 + self.gpu_hour * usage.gpus * hours
                + self.memory_gb_hour * usage.peak_memory_mb / 1024.0 * hours)


def cost_metrics(prices: Prices, usage: ResourceUsage, reported: Mapping[str, float]) -> dict[str, float]:
    """The metrics to add to an attempt's own: its measured resources and its cost.

    With ``metric`` set, the cost is the trial's reported value; a trial that failed before reporting it costs
    what its measured resources cost at the prices given (nothing, when no price is given).
    """
    out = {"cpu_s": round(usage.cpu_s, 4), "peak_memory_mb": round(usage.peak_memory_mb, 2)}
    if usage.gpus:
        out["gpus"] = float(usage.gpus)
    if prices.metric is not None and prices.metric in reported:
        out[COST_METRIC] = float(reported[prices.metric])
    else:
        out[COST_METRIC] = prices.price(usage)
    return out


def priced(job: TrialJob, outcome: Outcome, cpu_s: float, peak_rss: int) -> Outcome:
    """The outcome with the attempt's measured resources (CPU seconds, peak resident bytes) and its cost added to
    its metrics; the outcome as it is for a job without prices. Every executor prices its attempts through this."""
    if job.cost is None:
        return outcome
    from dataclasses import replace

    prices = Prices.from_json(job.cost)
    usage = ResourceUsage(max(0.0, cpu_s), peak_rss / 2**20, outcome.duration_s, prices.gpus)
    return replace(outcome, metrics={**outcome.metrics, **cost_metrics(prices, usage, job_metrics(job, outcome))})


def job_metrics(job: TrialJob, outcome: Outcome) -> dict[str, float]:
    """Every metric an attempt reported, its objectives' values included (a reported cost may be an objective)."""
    reported = dict(outcome.metrics)
    if outcome.values is not None:
        reported.update(zip(job.metrics, outcome.values, strict=False))
    return reported
