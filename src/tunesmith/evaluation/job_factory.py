"""The job for one attempt of a recorded trial, built from its experiment's spec (the runner's and `reproduce`'s)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tunesmith.evaluation.command import render_command
from tunesmith.evaluation.job import TrialJob
from tunesmith.records import TrialRecord
from tunesmith.spec.model import ExperimentSpec


def trial_job(spec: ExperimentSpec, parameter_names: Sequence[str], rec: TrialRecord, trial_dir: Path) -> TrialJob:
    """The job that runs attempt ``rec.attempts`` of trial ``rec`` in ``trial_dir``."""
    command = None
    if spec.trial is not None and spec.trial.command is not None:
        command = render_command(spec.trial.command, dict(rec.params), list(parameter_names), str(trial_dir),
                                 spec.base_dir, rec.seed, rec.number)
    return TrialJob(
        experiment=spec.name, number=rec.number, attempt=rec.attempts, params=dict(rec.params),
        seed=rec.seed, workdir=str(trial_dir), log_path=rec.log_path or str(trial_dir / "trial.log"),
        metrics=tuple(o.metric for o in spec.objective), function=spec.trial.function if spec.trial else None,
        command=command, env=spec.trial_env(), base_dir=spec.base_dir,
        timeout=spec.executor.trial_timeout, memory_limit=spec.executor.memory_limit,
        sync_reports=spec.scheduler.name != "none",
        scheduler=spec.scheduler.name, stop_rule=spec.scheduler.stop_rule,
        task=spec.task.model_dump(mode="json") if spec.task else None,
        command_cwd=str(trial_dir) if spec.trial is not None and spec.trial.cwd == "trial_dir" else None,
        cost=prices.to_json() if (prices := spec.prices()) is not None else None,
    )
