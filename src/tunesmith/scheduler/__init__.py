"""Schedulers: decide from intermediate reports which trials stop early.

``build_scheduler`` turns the spec's ``scheduler:`` section into one. See :mod:`tunesmith.scheduler.base` for
the protocol and its call order.
"""

from __future__ import annotations

from tunesmith.records import Direction
from tunesmith.scheduler.asha import ASHAScheduler, Rung
from tunesmith.scheduler.base import Decision, NoScheduler, Scheduler
from tunesmith.scheduler.hyperband import HyperbandScheduler
from tunesmith.scheduler.median import MedianScheduler
from tunesmith.scheduler.resources import ResourceSummary, resource_summary
from tunesmith.spec.scheduler_config import (
    ASHAConfig,
    HyperbandConfig,
    MedianConfig,
    NoSchedulerConfig,
    SchedulerConfig,
)


def build_scheduler(choice: SchedulerConfig, direction: Direction, seed: int) -> Scheduler:
    """The scheduler a validated ``scheduler:`` section declares.

    Args:
        choice: the spec's scheduler section.
        direction: the first objective's direction; intermediate values are that objective's metric.
        seed: the experiment seed (Hyperband derives trial brackets from it).

    Returns:
        A fresh scheduler; call ``replay`` with the finished trials before the first report.
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
    raise TypeError(f"not a scheduler section: {choice!r}")  # unreachable for a validated spec


__all__ = [
    "ASHAScheduler",
    "Decision",
    "HyperbandScheduler",
    "MedianScheduler",
    "NoScheduler",
    "ResourceSummary",
    "Rung",
    "Scheduler",
    "build_scheduler",
    "resource_summary",
]
