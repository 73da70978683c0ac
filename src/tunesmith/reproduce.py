"""``tunesmith reproduce NAME TRIAL``: run one recorded trial again and say whether it gives the same result.

The trial runs with its recorded parameters and seed, in the spec's executor kind, in a fresh folder
(``<workdir>/reproduce/trial-NNNNN-<time>``: the original trial's files stay as they were). Each objective is
compared with the recorded value within ``rtol`` (relative), except a built-in task's timings (prediction latency,
fit time: ``TASK_TIMINGS``): measured wall-clock times differ from run to run, so they are shown and not compared
(``not_compared``); a timing objective always failed the comparison and took the index to 0%. What differs from when
the experiment first ran (the git commit of the spec's folder or its dirty flag, an interactive trial function's
source, package versions, the data fingerprint) is named, since it is the usual reason a trial does not reproduce.
The outcome is a ``trial_reproduced`` event; the reproducibility index is the share of reproduced trials that
matched.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunesmith import audit
from tunesmith.clock import Clock
from tunesmith.digests import source_digest
from tunesmith.errors import UserInputError
from tunesmith.records import ExperimentRecord, TrialState
from tunesmith.spec.model import SKLEARN_SEARCH_TRIAL, TASK_TIMINGS, ExperimentSpec

if TYPE_CHECKING:
    from tunesmith.storage.base import Event, TrialStore

EVENT = audit.AuditKind.TRIAL_REPRODUCED
TRIAL_SOURCE = "trial_source"  # attribute: the digest of an interactive trial function's source, as it first ran


def stored_spec(experiment: ExperimentRecord, trial_function: Callable[..., Any] | None,
                action: str) -> ExperimentSpec:
    """``experiment``'s recorded spec, with its trial function handed over again where one is given (to resume or
    reproduce it). Refused up front, before anything runs or is recorded, where its trial can only run in the
    process that recorded it: a TunedSearchCV search, whose estimator and data were objects in the process that
    ran fit() (checked after the handed-over function is applied, which is where the spec's trial is final); and
    where its recorded workdir (absolute, whatever the current folder) takes no new folder: the trial folders, and
    a reproduction's, go there; and where that workdir lay in its spec's folder, which is gone: the project moved
    (``moved_project``).

    Raises:
        UserInputError: a TunedSearchCV experiment with no function handed over; a SpecError from
            ``with_trial_function``, or at ``workdir``.
    """
    from tunesmith.errors import SpecError
    from tunesmith.evaluation.context import workdir_unwritable
    from tunesmith.moved_project import workdir_left_behind
    from tunesmith.spec.loader import spec_from_dict

    name = experiment.name
    spec = spec_from_dict(experiment.spec)
    spec = spec.with_trial_function(trial_function) if trial_function is not None else spec
    searched = spec.trial is not None and spec.trial.function == SKLEARN_SEARCH_TRIAL
    if searched and spec.trial is not None and spec.trial.given_function(name) is None:
        raise UserInputError(f"experiment {name!r} is a TunedSearchCV search: its estimator and data were objects in "
                             "the Python process that ran fit(), and are not in the store, so its trials cannot be "
                             f"{action} from here; fit the same TunedSearchCV on the same data again from Python "
                             "(with the same random_state) instead, or hand over a function that does a trial's "
                             "work (trial=)")
    # (a TunedSearchCV search's folder is a temporary one, gone once fit() returned: no project moved)
    moved = None if searched else workdir_left_behind(spec.base_dir, spec.workdir)
    if moved is not None:
        raise SpecError("workdir", f"experiment {name!r} cannot be {action}: {moved}")
    why = workdir_unwritable(spec.workdir) if spec.workdir is not None else None
    if why is not None:
        raise SpecError("workdir", f"experiment {name!r} cannot be {action}: its trial folders go in its recorded "
                                   f"workdir {spec.workdir}, where none can be made: {why}; make it writable, then try "
                                   "again")
    return spec


@dataclass(frozen=True)
class ReproduceOutcome:
    trial: int
    matched: bool
    recorded: dict[str, float]
    reproduced: dict[str, float] | None
    rtol: float
    not_compared: tuple[str, ...]     # objectives that are measured times: shown, not compared
    differences: tuple[str, ...]      # what changed since the experiment ran (code, packages, data)
    error: str | None                 # the rerun failed
    index: tuple[int, int]            # (matched, reproduced) over every reproduction of the experiment


def reproduce(store: TrialStore, name: str, number: int, clock: Clock, rtol: float = 1e-6,
              timeout: float = 3600.0, trial_function: Callable[..., Any] | None = None) -> ReproduceOutcome:
    """Re-run trial ``number`` of experiment ``name`` and compare its objectives with the record;
    ``trial_function``: its interactive trial function, handed over again (no process can import it).

    Raises:
        UserInputError: ``rtol`` negative or not finite, no such experiment or trial, or the trial did not
            complete.
    """
    from tunesmith.executor.base import AttemptEnded
    from tunesmith.evaluation.job_factory import trial_job
    from tunesmith.runner import prepare
    from tunesmith.strategy import StrategyDecision

    if not (math.isfinite(rtol) and rtol >= 0):  # inf "matched" every result into the reproducibility index
        raise UserInputError(f"--rtol must be a finite number >= 0 (a relative tolerance, such as 1e-6); got {rtol}")
    experiment = store.experiment(name)
    spec = stored_spec(experiment, trial_function, "re-run")
    trial = next((t for t in store.trials(experiment.id, [number])), None)
    if trial is None:
        raise UserInputError(f"experiment {name!r} has no trial {number}")
    if trial.state is not TrialState.COMPLETED or trial.values is None:
        raise UserInputError(f"trial {number} is {trial.state.value}; only a completed trial can be reproduced")
    plan = prepare(spec, decision=StrategyDecision(experiment.strategy or "random", {}, ""), stored=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(clock.now()))
    folder = Path(spec.workdir or ".") / "reproduce" / f"trial-{number:05d}-{stamp}"
    folder.mkdir(parents=True, exist_ok=True)
    rerun = replace(trial, attempts=1, log_path=str(folder / "trial.log"))
    executor = _executor(spec, clock)
    executor.start()
    outcome = None
    try:
        executor.submit(trial_job(plan.spec, plan.space.names, rerun, folder))
        deadline = clock.monotonic() + timeout
        while outcome is None and clock.monotonic() < deadline:
            for ev in executor.poll(0.2):
                if isinstance(ev, AttemptEnded):
                    outcome = ev.outcome
    finally:
        executor.close(0.0)
    recorded = trial.value_map(spec.objectives) or {}
    reproduced = None
    error = None
    if outcome is None:
        error = f"the rerun did not finish within {timeout:g}s"
    elif outcome.values is None:
        error = str(outcome.failure) if outcome.failure else f"the rerun ended {outcome.state.value}"
    else:
        reproduced = {o.metric: v for o, v in zip(spec.objectives, outcome.values, strict=True)}
    not_compared = tuple(k for k in recorded if spec.task is not None and k in TASK_TIMINGS)
    matched = reproduced is not None and all(_close(reproduced[k], v, rtol) for k, v in recorded.items()
                                             if k not in not_compared)
    differences = tuple(environment_differences(experiment.attributes, spec))
    audit.record(store, experiment.id, EVENT, clock, number, {
        "matched": matched, "recorded": recorded, "reproduced": reproduced, "rtol": rtol, "error": error,
        "not_compared": list(not_compared), "differences": list(differences), "folder": str(folder)})
    index = reproducibility_index(store.events(experiment.id))
    return ReproduceOutcome(number, matched, recorded, reproduced, rtol, not_compared, differences, error, index)


def reproducibility_index(events: Sequence[Event]) -> tuple[int, int]:
    """(matched, reproduced) over the ``trial_reproduced`` events: the index is their ratio."""
    outcomes = [bool(e.payload.get("matched")) for e in events if e.kind == EVENT]
    return sum(outcomes), len(outcomes)


def trial_source_recorded(spec: ExperimentSpec) -> dict[str, str]:
    """What a new experiment records of its interactive trial function's source (``TRIAL_SOURCE``): its record
    names the function only, and a notebook's cell edited and run again hands over other code under that name."""
    if spec.trial is None or not spec.trial.interactive:
        return {}
    given = spec.trial.given_function(spec.name)
    digest = source_digest(given) if given is not None else None
    return {} if digest is None else {TRIAL_SOURCE: digest}


def trial_function_changed(attributes: Any, fn: Callable[..., Any] | None) -> str | None:
    """``the trial function 'objective' has changed since ...`` where ``fn``'s source is not the one recorded (None
    where it is, or where nothing was recorded or can be read)."""
    recorded, now = attributes.get(TRIAL_SOURCE), source_digest(fn) if fn is not None else None
    if recorded is None or now is None or recorded == now:
        return None
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return (f"the trial function {name!r} has changed since the experiment ran (its source differs from the one "
            "recorded)")


def environment_differences(attributes: Any, spec: Any) -> list[str]:
    """What differs now from the environment, trial function and data recorded when the experiment first ran."""
    from tunesmith.environment import capture

    out: list[str] = []
    if spec.trial is not None and spec.trial.interactive:
        changed = trial_function_changed(attributes, spec.trial.given_function(spec.name))
        out += [f"code: {changed}"] if changed else []
    then = attributes.get("environment") or {}
    now = capture(spec.base_dir)
    if then:
        old_git, new_git = then.get("git") or {}, now.get("git") or {}
        if old_git.get("commit") != new_git.get("commit"):
            out.append(f"code: git commit {str(old_git.get('commit'))[:12]} then, "
                       f"{str(new_git.get('commit'))[:12]} now")
        elif new_git.get("dirty") and not old_git.get("dirty"):
            out.append("code: the work tree has uncommitted changes now")
        old_pk, new_pk = then.get("packages") or {}, now.get("packages") or {}
        for pkg in sorted(set(old_pk) | set(new_pk)):
            if old_pk.get(pkg) != new_pk.get(pkg):
                out.append(f"package {pkg}: {old_pk.get(pkg, 'absent')} then, {new_pk.get(pkg, 'absent')} now")
        if then.get("python") != now.get("python"):
            out.append(f"python: {then.get('python')} then, {now.get('python')} now")
    if spec.task is not None and attributes.get("data_fingerprint"):
        from tunesmith.tasks import fingerprint, fingerprint_changes

        out += [f"data: {c}" for c in fingerprint_changes(attributes["data_fingerprint"],
                                                          fingerprint(spec.task, spec.base_dir))]
    return out


def _close(a: float, b: float, rtol: float) -> bool:
    return a == b or (math.isfinite(a) and math.isfinite(b) and abs(a - b) <= rtol * max(abs(a), abs(b)))


def _executor(spec: Any, clock: Clock) -> Any:
    if spec.executor.kind == "inline":
        from tunesmith.executor.inline import InlineExecutor

        return InlineExecutor(function=spec.trial.given_function(spec.name) if spec.trial else None)
    from tunesmith.executor.process import ProcessExecutor

    preload = spec.trial.function if spec.trial else "tunesmith.tasks:evaluate"
    return ProcessExecutor(1, None, preload=preload, base_dir=spec.base_dir, clock=clock,
                           heartbeat_timeout=spec.executor.heartbeat_timeout,
                           threads_shared_among=spec.executor.workers)  # as many BLAS threads as the trial had
