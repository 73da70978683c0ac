"""Frozen records and state enums that cross layer boundaries.

Nothing here does I/O. Layers exchange these, never untyped dicts.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tunesmith.json_output import finite_json

ParamValue = float | int | str | bool | None
Params = Mapping[str, ParamValue]


class Direction(enum.StrEnum):
    MINIMIZE = "minimize"
    MAXIMIZE = "maximize"

    def better(self, a: float, b: float) -> bool:
        """True when ``a`` is strictly better than ``b``."""
        return a < b if self is Direction.MINIMIZE else a > b


class TrialState(enum.StrEnum):
    QUEUED = "queued"          # created, waiting for a worker (e.g. a retry in backoff)
    RUNNING = "running"
    COMPLETED = "completed"
    PRUNED = "pruned"          # stopped early by a scheduler; its last report is its value
    FAILED = "failed"
    LOST = "lost"              # its coordinator or worker vanished; re-run on resume
    INTERRUPTED = "interrupted"  # stopped by the user (Ctrl-C / SIGTERM); re-run on resume

    def is_finished(self) -> bool:
        """A final state: the trial will not run again by itself."""
        return self in (TrialState.COMPLETED, TrialState.PRUNED, TrialState.FAILED)

    def counts_against_budget(self) -> bool:
        return self.is_finished()


class FailureKind(enum.StrEnum):
    """Why a trial attempt failed; decides whether it is retried."""

    EXCEPTION = "exception"            # user code raised
    INVALID_RESULT = "invalid_result"  # NaN, inf, None, a string, a missing metric
    EXIT_CODE = "exit_code"            # command trial exited non-zero
    CRASHED = "crashed"                # killed by a signal (SIGSEGV, SIGKILL)
    TIMEOUT = "timeout"                # exceeded trial_timeout
    MEMORY = "memory"                  # exceeded memory_limit
    LOST = "lost"                      # worker vanished without a word
    INTERRUPTED = "interrupted"        # stopped by the user

    def is_infrastructure(self) -> bool:
        """Faults of the machine rather than of the code: worth retrying by default."""
        return self in (FailureKind.CRASHED, FailureKind.MEMORY, FailureKind.LOST)


class RunStatus(enum.StrEnum):
    CREATED = "created"
    RUNNING = "running"
    COMPLETED = "completed"      # budget spent or strategy exhausted
    INTERRUPTED = "interrupted"  # stopped by signal; resumable
    FAILED = "failed"            # stopped by an error; resumable


@dataclass(frozen=True, slots=True)
class ObjectiveSpec:
    metric: str
    direction: Direction


@dataclass(frozen=True, slots=True)
class RaisedAt:
    """Where an exception a trial raised came from, as fail fast compares it (:mod:`tunesmith.budget`).

    Attributes:
        exception: its type's name (``ValueError``).
        place: where, as the failure's message says it: ``at model.py:42 in fit``, or, raised in code not the
            user's, ``at subprocess.py:571 in run, called from train.py:12 in objective``.
        line: the user's line that raised it, or that called the code that did (``train.py:12``); the innermost
            frame's where no frame is the user's.
    """

    exception: str
    place: str
    line: str


@dataclass(frozen=True, slots=True)
class Failure:
    kind: FailureKind
    message: str
    raised_at: RaisedAt | None = None  # an exception's with a traceback (its message says the place too)

    def __str__(self) -> str:
        return f"{self.kind.value}: {self.message}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one trial attempt produced, as the executor saw it.

    Exactly one of ``values`` (completed) or ``failure`` is set, unless ``pruned``. ``notes``: what the attempt
    has to tell whoever watches the run, beside its trial log (a report line it left out), each said once.
    """

    values: tuple[float, ...] | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    failure: Failure | None = None
    pruned: bool = False
    duration_s: float = 0.0
    notes: tuple[str, ...] = ()

    @property
    def state(self) -> TrialState:
        if self.failure is not None:
            return TrialState.INTERRUPTED if self.failure.kind is FailureKind.INTERRUPTED else TrialState.FAILED
        return TrialState.PRUNED if self.pruned else TrialState.COMPLETED


@dataclass(frozen=True, slots=True)
class SlotGrant:
    """The store's answer to a request for one run slot under quotas.

    Granted: ``lease`` names the slot's leases (release or renew them by it). Refused: ``full_key`` is the quota
    key with no free slot, ``limit`` its limit and ``in_use`` its live leases.
    """

    lease: str | None
    full_key: str | None = None
    limit: int | None = None
    in_use: int = 0

    @property
    def granted(self) -> bool:
        return self.full_key is None


@dataclass(frozen=True, slots=True)
class QuotaUsage:
    """One quota key in the store: its limit (None: no limit), its live leases and its waiting coordinators now."""

    key: str
    limit: int | None
    in_use: int
    waiting: int = 0


@dataclass(frozen=True, slots=True)
class Report:
    """An intermediate value reported by a trial at a step (an epoch, an iteration).

    ``restated``: an earlier attempt's report, which an attempt that continued from the trial's checkpoint sends
    again (the checkpoint carries the curve up to it: a coordinator killed while holding reports lost them). It is
    recorded for the attempt, and never judged by the scheduler again: it ruled on it as first reported (under a
    scheduler a trial waits for the ruling on each report), and a stop now would land at a step long trained past.
    The scheduler only notes it (``scheduler.base.stops``): one rebuilt by a resumed coordinator has not seen it.
    """

    step: int
    value: float
    restated: bool = field(default=False, compare=False)  # how it travels, not what it is


def diverged(report: Report) -> bool:
    """True for a report whose value is NaN or infinite: the training diverged (a loss multiplied each epoch).

    Such a value is a result, not an error: it is recorded like any other. It cannot be ranked, and a network whose
    weights went NaN does not recover, so waiting for a check step or a rung would spend the very epochs early
    stopping is there to save: every scheduler stops the trial on that report (Optuna's pruners prune a NaN too, at
    their next check step), and none ranks the value.
    """
    return not math.isfinite(report.value)


def continued_curve(earlier: Sequence[Report], latest: Sequence[Report]) -> tuple[Report, ...]:
    """A trial's learning curve across two attempts: the latest attempt's reports, after the earlier curve's at
    the steps before the latest's first. A retry that starts over (step 1 again) keeps only its own; one that
    continued from a checkpoint keeps the steps the trial really took, not just those since the crash. One rule
    for the store's curve and the live coordinator's final record, so schedulers rebuilding rungs from a record
    (ASHA, PBT) decide alike live and on replay."""
    return tuple(r for r in earlier if not latest or r.step < latest[0].step) + tuple(latest)


@dataclass(frozen=True, slots=True)
class TrialRecord:
    """A trial as the store keeps it."""

    number: int
    state: TrialState
    params: Mapping[str, ParamValue]
    seed: int
    values: tuple[float, ...] | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    intermediate: tuple[Report, ...] = ()
    attempts: int = 0
    error: str | None = None
    failure_kind: FailureKind | None = None
    log_path: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    duration_s: float | None = None
    owner: str | None = None           # the coordinator running it (host:pid:token)
    heartbeat_at: float | None = None  # last time that coordinator said it was alive

    def value_map(self, objectives: tuple[ObjectiveSpec, ...]) -> dict[str, float] | None:
        if self.values is None:
            return None
        return {o.metric: v for o, v in zip(objectives, self.values, strict=True)}

    def to_json(self, objectives: tuple[ObjectiveSpec, ...]) -> dict[str, Any]:
        """The public JSON shape of a trial (`tunesmith trials --json`)."""
        return {
            "number": self.number,
            "state": self.state.value,
            "params": dict(self.params),
            "values": self.value_map(objectives),
            "metrics": {k: finite_json(v) for k, v in self.metrics.items()},
            "intermediate": [[r.step, finite_json(r.value)] for r in self.intermediate],
            "steps": self.intermediate[-1].step if self.intermediate else None,  # the resource reached
            "error": self.error,
            "failure_kind": self.failure_kind.value if self.failure_kind else None,
            "attempts": self.attempts,
            "duration_s": None if self.duration_s is None else round(self.duration_s, 6),
            "seed": self.seed,
            "log_path": self.log_path,
        }


@dataclass(frozen=True, slots=True)
class Lineage:
    """How a trial a scheduler started from another began (PBT): the ``trial_exploited`` event's payload.

    Attributes:
        parent: the trial whose checkpoint it continues from.
        step: the parent's last reported step when the child was started (its checkpoint is at least that new).
        params_before: the parent's params; None when this coordinator did not know them.
        params_after: the child's, perturbed.
        checkpoint_copied: whether the parent had a checkpoint to copy (it called ``trial.save_checkpoint()``).
    """

    parent: int
    step: int
    params_before: Mapping[str, ParamValue] | None
    params_after: Mapping[str, ParamValue]
    checkpoint_copied: bool

    def to_json(self) -> dict[str, Any]:
        return {"parent": self.parent, "step": self.step,
                "params_before": None if self.params_before is None else dict(self.params_before),
                "params_after": dict(self.params_after), "checkpoint_copied": self.checkpoint_copied}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Lineage:
        """From a recorded event's payload; one without ``checkpoint_copied`` is read as copied."""
        return cls(d["parent"], d["step"], d.get("params_before"), d.get("params_after") or {},
                   bool(d.get("checkpoint_copied", True)))


@dataclass(frozen=True, slots=True)
class ExperimentRecord:
    """An experiment as the store keeps it: its full spec and where it stands."""

    id: int
    name: str
    spec: Mapping[str, Any]
    status: RunStatus
    created_at: float
    updated_at: float
    strategy: str | None = None          # what `auto` (or the user) resolved to
    strategy_reason: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)  # facts recorded later: data fingerprint, holdout


