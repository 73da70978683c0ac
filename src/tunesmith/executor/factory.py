"""The executor a spec asks for: ``process`` (default), ``inline`` or ``ray``, under the run's quotas.

Each kind's module is imported only when chosen, so a spec without ``kind: ray`` never loads Ray.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from tunesmith.clock import Clock
from tunesmith.executor.base import Executor
from tunesmith.executor.leases import LeasedSlots, QuotaScope
from tunesmith.quotas import run_quota_keys
from tunesmith.records import Report
from tunesmith.spec.model import DEVICES_VARIABLE, MIN_MEMORY_LIMIT, ExperimentSpec
from tunesmith.spec.model import Executor as ExecutorSpec


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

        executor = InlineExecutor(report_hook=report_hook,
                                  function=spec.trial.given_function(spec.name) if spec.trial else None)
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


def trials_run_here(ex: ExecutorSpec) -> bool:
    """Whether the trials run on this machine: not on a Ray cluster the run joins (``address`` other than
    ``local``: ``auto``, ``host:port``, ``ray://``), whose nodes have their own PATH and programs."""
    return ex.kind != "ray" or (ex.address or "local") == "local"


def executor_warnings(spec: ExperimentSpec) -> list[str]:
    """What the spec asks of its executor that this one, or this machine, will not do (the run goes on)."""
    ex, warnings = spec.executor, []
    if ex.kind == "inline":
        # (grace_period has a default: said only when the spec sets another; the trial runs on after Ctrl-C anyway)
        ignored = _not_default(ex, ("trial_timeout", "memory_limit", "grace_period"))
        if ignored:
            after = ("; after Ctrl-C the running trial finishes however long it takes, and a second Ctrl-C stops it "
                     "at once" if "grace_period" in ignored else "")
            warnings.append(f"executor.kind is inline: {', '.join(ignored)} cannot be enforced in the coordinator's "
                            f"own process (use kind: process){after}")
        if ex.workers > 1:
            warnings.append("executor.kind is inline: trials run one at a time, workers is ignored")
    ignored = _not_default(ex, ("heartbeat_timeout", "max_trials_per_worker")) if ex.kind == "ray" else []
    if ignored:
        warnings.append(f"executor.kind is ray: {', '.join(ignored)} {'does' if len(ignored) == 1 else 'do'} not "
                        "apply there (Ray detects a dead worker itself, and an actor runs trials until it dies or is "
                        "killed): a hung trial is caught only by trial_timeout")
    if ex.kind == "process" and ex.memory_limit is not None and ex.memory_limit < MIN_MEMORY_LIMIT:
        # a new spec is refused this (check_memory_limit); one recorded before that check still resumes
        warnings.append(f"executor.memory_limit is {_size(ex.memory_limit)}, less than a worker process takes by "
                        "itself: each trial still running at a memory check (4 a second) is killed for it")
    at_once = 1 if ex.kind == "inline" else min(ex.workers, ex.max_concurrent or ex.workers)
    if spec.scheduler.name == "pbt" and at_once < 2:
        why = "kind: inline" if ex.kind == "inline" else (f"max_concurrent: {at_once}" if ex.workers > at_once
                                                          else f"workers: {ex.workers}")
        warnings.append(f"scheduler is pbt, but executor {why} runs one trial at a time: PBT replaces a trial only "
                        "with a copy of one still running beside it, so it would never act; set executor.workers "
                        f"close to scheduler.population_size ({spec.scheduler.population_size})")
    if ex.kind == "process" and ex.gpus is None and ex.gpu_per_trial != 1.0:
        warnings.append(f"executor.gpu_per_trial is {ex.gpu_per_trial:g}, but executor.gpus is not set, so no GPU is "
                        "assigned; add gpus: all or gpus: [0, 1]")
    if ex.kind == "process" and ex.gpus is not None and not _refused_at_start(ex):
        from tunesmith.executor.devices import allotted_gpus, machine_gpus

        # handed out as given where no GPU shows: a list, or `all` of an inherited CUDA_VISIBLE_DEVICES
        if not machine_gpus():
            what = f"lists GPU(s) {ex.gpus}" if isinstance(ex.gpus, list) else f"is all, here GPU(s) {allotted_gpus()}"
            charged = " (cost.gpu_hour still charges them)" if spec.cost is not None and spec.cost.gpu_hour else ""
            warnings.append(f"executor.gpus {what}, but this machine shows no NVIDIA GPU: each trial gets its "
                            f"devices in CUDA_VISIBLE_DEVICES and finds none there{charged}")
    warnings += _private_cluster_warnings(ex) + _trial_env_warnings(spec)
    return warnings


# `$NAME` or `${NAME}` in a value: a shell's expansion, which trial.env does not do
_VARIABLE = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*|\{[A-Za-z_][A-Za-z0-9_]*\})")


def _trial_env_warnings(spec: ExperimentSpec) -> list[str]:
    """What trial.env sets in the environment of each trial the executor starts, said where it is not what it reads
    as: a value naming a variable (``PATH: "/venv/bin:$PATH"`` is that text, and the command found no ``date``),
    and CUDA_VISIBLE_DEVICES (:func:`_ignored_devices_warnings`). A value is never quoted: it may be a secret's."""
    if spec.trial is None:
        return []
    warnings = []
    for name, value in spec.trial.env.items():
        if m := _VARIABLE.search(value):
            warnings.append(f"trial.env.{name} holds {m.group(0)}, which is not expanded: the variable is set to the "
                            f"text as written; write the value in full, or set it in trial.command, where the shell "
                            f"expands it ({name}=\"...{m.group(0)}\" python train.py)")
    return warnings + _ignored_devices_warnings(spec)


def _ignored_devices_warnings(spec: ExperimentSpec) -> list[str]:
    """trial.env's CUDA_VISIBLE_DEVICES where a trial never sees it: the executor assigns each trial its devices
    (:meth:`~tunesmith.spec.model.ExperimentSpec.trial_env`), or a function trial's are its worker's for life."""
    if spec.trial is None or DEVICES_VARIABLE not in spec.trial.env:
        return []
    ignored = f"trial.env sets {DEVICES_VARIABLE}, which is ignored"
    if spec.executor.gpus_per_trial():
        which = "executor.gpus" if spec.executor.kind == "process" else "executor.resources_per_trial.gpu"
        return [f"{ignored}: each trial's devices are those {which} assigns it (and records as gpu_device_0, ...); "
                f"remove it from trial.env, or choose the devices in {which}"]
    if spec.trial.function is not None:
        return [f"{ignored}: a function trial's devices are its worker's, for life (a library reads the variable "
                "once); choose them with executor.gpus (kind: process)"]
    return []


def _private_cluster_warnings(ex: ExecutorSpec) -> list[str]:
    """A private Ray cluster (address: local) is this machine, with what Ray detects on it: validate says what it
    will likely lack. (Only `run` knows for sure, as Ray counts it, and refuses then, exit 2, before any trial: Ray
    may find devices this check does not, AMD GPUs, TPUs.)"""
    res = ex.resources_per_trial
    if ex.kind != "ray" or (ex.address or "local") != "local" or res is None:
        return []
    from tunesmith.errors import UserInputError
    from tunesmith.executor.devices import allotted_gpus, machine_gpus

    warnings = []
    if res.gpu > 0:
        try:
            allotted = allotted_gpus()
        except UserInputError:  # devices named by UUID: Ray counts them itself
            allotted = [0]
        if not (allotted if allotted is not None else machine_gpus()):
            warnings.append(f"executor.resources_per_trial.gpu is {res.gpu:g}, but this machine shows no NVIDIA GPU "
                            "(or CUDA_VISIBLE_DEVICES hides them): the private Ray cluster (address: local) will "
                            "likely have none, and `run` then refuses to start (no trial could)")
    if res.custom:
        warnings.append(f"executor.resources_per_trial.custom asks for {', '.join(sorted(res.custom))}: a private Ray "
                        "cluster (address: local) has only what Ray detects on this machine (CPU, GPU, memory, "
                        "accelerators such as TPU), and `run` refuses to start if it lacks them; declare them on a "
                        "cluster you start (`ray start --resources=...`) and join it (address: auto or host:port)")
    return warnings


def _not_default(ex: ExecutorSpec, names: tuple[str, ...]) -> list[str]:
    """Those of the settings ``names`` the spec sets to other than their defaults (a stored spec holds every default,
    so a setting merely present says nothing)."""
    return [name for name in names if getattr(ex, name) != type(ex).model_fields[name].default]


def _size(n: int) -> str:
    return f"{n} bytes" if n < 2**20 else f"{n / 2**20:g} MiB"


def _refused_at_start(ex: ExecutorSpec) -> bool:
    """The executor will refuse these devices as it starts (saying why): no warning about them beside that."""
    from tunesmith.errors import UserInputError
    from tunesmith.executor.devices import worker_slots

    try:
        worker_slots(ex.gpus, ex.gpu_per_trial, ex.workers)
    except UserInputError:
        return True
    return False


__all__ = ["QuotaScope", "build_executor", "executor_warnings", "trials_run_here"]
