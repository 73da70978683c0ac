"""The executor a spec asks for: ``process`` (default), ``inline`` or ``ray``, capped by ``max_concurrent``.

Each kind's module is imported only when chosen, so a spec without ``kind: ray`` never loads Ray.
"""

from __future__ import annotations

from collections.abc import Callable

from tunesmith.clock import Clock
from tunesmith.executor.base import Executor
from tunesmith.records import Report
from tunesmith.spec.model import ExperimentSpec


def build_executor(spec: ExperimentSpec, clock: Clock, report_hook: Callable[[int, Report], None],
                   running_in_store: Callable[[], int]) -> Executor:
    """The spec's executor.

    Args:
        report_hook: called with (trial number, report) as an inline trial reports, so a prune decision reaches
            the trial inside the same call.
        running_in_store: how many of the experiment's trials the store shows running, every coordinator's
            (read by the ``max_concurrent`` cap).
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
    if ex.max_concurrent is not None:
        from tunesmith.executor.quota import ConcurrencyCap

        executor = ConcurrencyCap(executor, ex.max_concurrent, running_in_store, clock)
    return executor
