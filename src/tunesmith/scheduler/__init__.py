"""Schedulers: decide from intermediate reports which trials stop early.

``build_scheduler`` turns the spec's ``scheduler:`` section into one. See :mod:`tunesmith.scheduler.base` for
the protocol and its call order.
"""

from __future__ import annotations

from tunesmith.errors import SpecError
from tunesmith.records import Direction
from tunesmith.scheduler.asha import ASHAScheduler, Rung
from tunesmith.scheduler.base import (Decision, Exploit, NoScheduler, NotingScheduler, ProposingScheduler, Scheduler,
                                      stops)
from tunesmith.scheduler.evidence import SchedulerEvidence
from tunesmith.scheduler.hyperband import HyperbandScheduler
from tunesmith.scheduler.median import MedianScheduler
from tunesmith.scheduler.pbt import PBTScheduler, check_mutations
from tunesmith.scheduler.resources import ResourceSummary, resource_summary
from tunesmith.space import SearchSpace
from tunesmith.spec.scheduler_config import (
    ASHAConfig,
    HyperbandConfig,
    MedianConfig,
    NoSchedulerConfig,
    PBTConfig,
    SchedulerConfig,
)


def build_scheduler(choice: SchedulerConfig, direction: Direction, seed: int,
                    space: SearchSpace | None = None) -> Scheduler:
    """The scheduler a validated ``scheduler:`` section declares.

    Args:
        choice: the spec's scheduler section.
        direction: the first objective's direction; intermediate values are that objective's metric.
        seed: the scheduler's seed (Hyperband derives trial brackets from it, PBT its draws).
        space: the search space; PBT needs it to perturb parameters within their domains.

    Returns:
        A fresh scheduler; call ``replay`` with the finished trials before the first report.

    Raises:
        SpecError: PBT without a space, or PBT ``mutations`` that do not fit the space (the path names the
            parameter). Build the scheduler before recording anything, so such a spec records nothing.
    """
    match choice:
        case NoSchedulerConfig():
            return NoScheduler()
        case MedianConfig():
            return MedianScheduler(direction, choice.warmup_steps, choice.min_trials, choice.interval_steps)
        case ASHAConfig():
            return ASHAScheduler(direction, choice.max_resource, choice.min_resource, choice.reduction_factor,
                                 choice.min_early_stopping_rate)
        case HyperbandConfig():
            return HyperbandScheduler(direction, choice.max_resource, choice.min_resource, choice.reduction_factor,
                                      choice.brackets, seed)
        case PBTConfig():
            if space is None:
                raise SpecError("scheduler", "pbt needs the search space to perturb parameters within it; pass "
                                             "space= to build_scheduler")
            check_mutations(choice, space)
            return PBTScheduler(choice, direction, seed, space)
    raise TypeError(f"not a scheduler section: {choice!r}")  # unreachable for a validated spec


__all__ = [
    "ASHAScheduler",
    "Decision",
    "Exploit",
    "HyperbandScheduler",
    "MedianScheduler",
    "NoScheduler",
    "NotingScheduler",
    "PBTScheduler",
    "ProposingScheduler",
    "ResourceSummary",
    "Rung",
    "Scheduler",
    "SchedulerEvidence",
    "build_scheduler",
    "resource_summary",
    "stops",
]
