"""What finished trials say about the scheduler's settings: said once while the run goes on, and again by `show`.

Two mistakes changed nothing a trial did, so nothing failed, and the run finished without a word:

- a ``max_resource`` that is not the trials' length. ASHA with ``max_resource: 5`` for trials of 20 steps checks
  them only up to step 5; with ``max_resource: 200`` its rungs past step 20 are never reached. A completed trial
  that ran well past it, or completed trials that agree on a length no trial got near
  (:meth:`~tunesmith.scheduler.resources.ResourceTally.mismatch`), say so.
- PBT children that train from scratch. A child starts from a copy of its parent's checkpoint, and trial code that
  never calls ``trial.load_checkpoint()`` (or a parent that never calls ``trial.save_checkpoint()``) starts it at
  step 1 again: PBT then copies parameters and throws the parent's training away. A child whose first report is
  at a step well below the step its parent had reached (:func:`restarted_from_scratch`) says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tunesmith.events import RunListener
from tunesmith.records import ExperimentRecord, Lineage, TrialRecord
from tunesmith.scheduler.resources import ResourceTally, length_mismatch_warning, length_parameters
from tunesmith.spec.model import ExperimentSpec
from tunesmith.storage.base import TrialStore

README_PBT = "the README's Early stopping section, PBT"
# where a command finds its checkpoint: a retry's own first, else a PBT child's copy of its parent's
COMMAND_RESUMES = ("start the step count and the model from what $TUNESMITH_CHECKPOINT_DIR holds, else "
                   "$TUNESMITH_PARENT_CHECKPOINT_DIR (the parent's, copied)")


@dataclass(frozen=True, slots=True)
class RestartedChild:
    """A PBT child that trained from scratch: its first report is at ``first_step``, its parent was at
    ``lineage.step``."""

    trial: int
    lineage: Lineage
    first_step: int

    def to_json(self) -> dict[str, int | bool]:
        return {"trial": self.trial, "parent": self.lineage.parent, "parent_step": self.lineage.step,
                "first_step": self.first_step, "checkpoint_copied": self.lineage.checkpoint_copied}


def restarted_from_scratch(lineage: Lineage, first_step: int) -> bool:
    """Whether a child whose first report is at ``first_step`` started over rather than from its parent's checkpoint
    at ``lineage.step``: a child that resumes reports the step after its checkpoint's, which is the parent's step or
    close below it (a parent may save a checkpoint every few steps); one at half that step or below started over."""
    return first_step <= lineage.step // 2


def restarted_child(trial: TrialRecord, lineage: Lineage | None) -> RestartedChild | None:
    """``trial`` as a child that trained from scratch, or None (not a child, no reports, or it resumed)."""
    if lineage is None or not trial.intermediate:
        return None
    first = trial.intermediate[0].step
    return RestartedChild(trial.number, lineage, first) if restarted_from_scratch(lineage, first) else None


def restarted_warning(children: Sequence[RestartedChild], command: bool = False) -> str:
    """What the run (one child, the first seen) and ``show`` (all of them) say about children that started over; the
    fix in a command's terms where the trials are commands (``command``), which have no ``trial`` object."""
    first = children[0]
    which = (f"trial {first.trial} was started by PBT from trial {first.lineage.parent}'s checkpoint at step "
             f"{first.lineage.step}, but its first report is at step {first.first_step}" if len(children) == 1 else
             f"{len(children)} trials PBT started from another's checkpoint reported first at a step well below their "
             f"parent's (" + "; ".join(f"trial {c.trial}: step {c.first_step}, parent {c.lineage.parent} at step "
                                       f"{c.lineage.step}" for c in children[:5])
             + ("; ..." if len(children) > 5 else "") + ")")
    if command:
        fix = ("the parent saved no checkpoint to copy: write it in $TUNESMITH_CHECKPOINT_DIR before each report line, "
               f"and {COMMAND_RESUMES}" if not first.lineage.checkpoint_copied
               else f"the command does not resume from the checkpoint it is given: {COMMAND_RESUMES}")
    else:
        fix = ("the parent saved no checkpoint to copy: call trial.save_checkpoint(state) before each report, and "
               "start from what trial.load_checkpoint() returns" if not first.lineage.checkpoint_copied
               else "the trial code does not resume from trial.load_checkpoint(): start the step count and the model "
                    "from what it returns")
    did = ("it trained from scratch, so PBT copied the parent's parameters and threw its training away"
           if len(children) == 1 else "they trained from scratch, so PBT copied their parents' parameters and threw "
                                      "their training away")
    return f"{which}: {did}; {fix} (see {README_PBT})"


class SchedulerEvidence(RunListener):
    """Warns, once each, when completed trials end well before or after ``max_resource`` and when a PBT child
    trained from scratch.

    Args:
        scheduler: the scheduler's name (``asha``, ``pbt``, ...; ``none`` makes this listener say nothing).
        max_resource: its declared ``max_resource``; None for one without.
        store: where a resumed run reads the lineage of children PBT started before it was interrupted; None:
            only the children started in this run are known.
        length_parameters: the int parameters that may be a trial's length
            (:func:`~tunesmith.scheduler.resources.length_parameters`).
        command: the trials are commands: a child that trained from scratch is told the fix in a command's terms.
    """

    def __init__(self, scheduler: str, max_resource: int | None, store: TrialStore | None = None,
                 length_parameters: tuple[str, ...] = (), command: bool = False) -> None:
        self.scheduler = scheduler
        self.max_resource = max_resource
        self.store = store
        self.command = command
        self._lengths = ResourceTally(max_resource, length_parameters)
        self._lineage: dict[int, Lineage] = {}
        self._said: set[str] = set()
        self._warn: Callable[[str], None] = lambda message: None

    @classmethod
    def of(cls, spec: ExperimentSpec, store: TrialStore | None = None) -> SchedulerEvidence:
        max_resource = getattr(spec.scheduler, "max_resource", None)
        return cls(spec.scheduler.name, max_resource, store, length_parameters(spec.space, max_resource),
                   command=spec.trial is not None and spec.trial.command is not None)

    def warn_through(self, warn: Callable[[str], None]) -> None:
        self._warn = warn

    def run_started(self, experiment: ExperimentRecord, history: list[TrialRecord], resumed: bool,
                    total_trials: int | None) -> None:
        for trial in history:  # a resumed run whose earlier trials already show it says it once too
            self._lengths.add(trial)
        self._check_length()
        if self.store is not None and self.scheduler == "pbt":
            # a child exploited before an interruption and run again now is warned about when it finishes
            unfinished = {t.number for t in history if not t.state.is_finished()}
            for e in self.store.events(experiment.id):
                if e.kind == "trial_exploited" and e.trial_number in unfinished:
                    self._lineage[e.trial_number] = Lineage.from_json(e.payload)

    def trial_exploited(self, trial: TrialRecord, lineage: Lineage) -> None:
        self._lineage[trial.number] = lineage

    def trial_finished(self, trial: TrialRecord, best: TrialRecord | None) -> None:
        self._lengths.add(trial)
        self._check_length()
        child = restarted_child(trial, self._lineage.pop(trial.number, None))
        if child is not None and "restarted" not in self._said:
            self._said.add("restarted")
            self._warn(restarted_warning([child], self.command))

    def _check_length(self) -> None:
        if self.scheduler == "none" or "length" in self._said:
            return
        mismatch = self._lengths.mismatch()  # running counts: nothing here goes over the trials before
        if mismatch is not None and self.max_resource is not None:
            self._said.add("length")
            self._warn(length_mismatch_warning(self.scheduler, self.max_resource, mismatch))
