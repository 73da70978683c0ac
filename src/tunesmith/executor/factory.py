"""The executor a spec asks for: ``process`` (default), ``inline`` or ``ray``, under the run's quotas.

Each kind's module is imported only when chosen, so a spec without ``kind: ray`` never loads Ray.
"""

from __future__ import annotations

from collections.abc import Callable

from tunesmith.clock import Clock
from tunesmith.executor.base import Executor
from tunesmith.executor.leases import LeasedSlots, QuotaScope
from tunesmith.quotas import run_quota_keys
from tunesmith.records import Report
from tunesmith.spec.model import ExperimentSpec


def build_executor(spec: ExperimentSpec, clock: Clock, report_hook: Callable[[int, Report], None],
                   quota: QuotaScope) -> Executor:
    """The spec's executor, taking a quota slot (a lease in the store) for each trial it starts.

    Args:
        report_hook: called with (trial number, report) as an inline trial reports, so a prune decision reaches
            the trial inside the same call.
        quota: the store and this coordinator; the run's keys are its user's, its tags' and its experiment's
            (``executor.max_concurrent``), counted across every coordinator on the store.
    """
    ex = spec.executor
    executor: Executor
    if ex.kind == "inline":
        from tunesmith.executor.inline import InlineExecutor

        executor = InlineExecutor(report_hook=report_hook)
    elif ex.kind == "ray":
        from tunesmith.executor.ray import RayExecutor

        # PBT's exploit must start the moment it is proposed, from the parent's checkpoint of that moment, not
        # queued behind another trial: no prefetch under PBT.
        executor = RayExecutor.from_spec(ex, clock=clock, prefetch=ex.prefetch is not False
                                         and spec.scheduler.name != "pbt")
    else:
        from tunesmith.executor.process import ProcessExecutor

        preload = spec.trial.function if spec.trial else "tunesmith.tasks:evaluate"
        executor = ProcessExecutor(ex.workers, ex.max_trials_per_worker, preload=preload, base_dir=spec.base_dir,
                                   clock=clock, heartbeat_timeout=ex.heartbeat_timeout, gpus=ex.gpus,
                                   gpu_per_trial=ex.gpu_per_trial)
    keys = run_quota_keys(quota.user, spec.tags, quota.experiment_id, ex.max_concurrent)
    return LeasedSlots(executor, quota, keys, clock, ttl=ex.slot_lease_ttl)


__all__ = ["QuotaScope", "build_executor"]
