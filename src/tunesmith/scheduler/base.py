"""The Scheduler protocol: decide, from intermediate reports, which trials stop early.

Call order, per experiment: ``replay(history)`` once (finished trials of earlier runs, with their reports);
then, for each trial, any number of ``on_report(number, report)`` calls as its reports arrive (from several
trials interleaved: schedulers must be asynchronous and never wait for a rung to fill), then exactly one
``on_finish(trial)`` with its final record (completed, pruned or failed). A ``STOP`` decision makes the runner
ask the trial to stop; the trial ends PRUNED at the step it reached.

A report an attempt restates (``Report.restated``: it continues from the trial's checkpoint, which carries the
curve up to it) was ruled on when first reported, so it is not ruled on again: :func:`stops` hands it to the
optional ``note(number, report)`` hook instead, which records it as ``on_report`` would and never ranks it nor
stops the trial. After a coordinator was killed, the resumed one's scheduler holds only the finished trials
(``replay``): without the restated reports, a resumed trial's first own report was placed at every rung (ASHA),
check (PBT) or best-so-far (median) its earlier steps had filled. A scheduler without the hook ignores them.

The runner asks through :func:`stops`, which stops a trial at once on a report that is not a finite number
(:func:`tunesmith.records.diverged`) under every scheduler but ``none``, whatever its warm-up or rungs say: one
rule, not one per scheduler, in :mod:`tunesmith.stop_reasons` (which the trial's log says too). Schedulers only
never rank such a value.

Schedulers are deterministic given their inputs and take no wall-clock time of their own, so they are tested
in simulated time with tabulated learning curves.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from tunesmith.records import ParamValue, Report, TrialRecord
from tunesmith.stop_reasons import stop_reason


class Decision(enum.StrEnum):
    CONTINUE = "continue"
    STOP = "stop"


@dataclass(frozen=True, slots=True)
class Exploit:
    """A trial a scheduler asks for (PBT): ``params``, continuing from trial ``parent``'s checkpoint at ``step``."""

    parent: int
    step: int
    params: dict[str, ParamValue]


class Scheduler(Protocol):
    def replay(self, history: Sequence[TrialRecord]) -> None:
        """Rebuild state (rungs, medians) from trials recorded before this process started."""
        ...

    def on_report(self, number: int, report: Report) -> Decision:
        """Trial ``number`` reported ``report``; continue or stop it."""
        ...

    def on_finish(self, trial: TrialRecord) -> None:
        """Trial reached a final state."""
        ...


class ProposingScheduler(Scheduler, Protocol):
    """A scheduler that also proposes trials of its own (PBT). Before asking the strategy for a new trial, the
    runner calls ``propose()``, and it calls ``on_start(trial)`` for every attempt it launches; an
    :class:`Exploit` becomes a new trial with those params whose
    ``trial.load_checkpoint()`` returns a copy of the parent's latest checkpoint. The lineage (parent, step,
    params before and after) is recorded as a ``trial_exploited`` event.
    """

    def on_start(self, trial: TrialRecord) -> None:
        """An attempt of ``trial`` was launched (first attempt, retry or re-run), with its params."""
        ...

    def propose(self) -> Exploit | None:
        ...


class NotingScheduler(Scheduler, Protocol):
    """A scheduler that also records restated reports (the optional hook :func:`stops` looks up)."""

    def note(self, number: int, report: Report) -> None:
        """Trial ``number`` restated ``report``, ruled on when first reported: record it as ``on_report`` would,
        without ranking it or stopping the trial. A report the scheduler saw before changes nothing."""
        ...


class NoScheduler:
    """Never stops anything (``scheduler: none``, the default)."""

    def replay(self, history: Sequence[TrialRecord]) -> None:
        pass

    def on_report(self, number: int, report: Report) -> Decision:
        return Decision.CONTINUE

    def on_finish(self, trial: TrialRecord) -> None:
        pass


def stops(scheduler: Scheduler, number: int, report: Report) -> bool:
    """Whether trial ``number`` stops on ``report``: ``scheduler``'s ``STOP`` (it records the report either way), or
    a diverged report (NaN, inf) under any scheduler but ``none``: weights that went NaN do not recover, so a check
    step or a rung ahead would only spend the epochs early stopping is there to save (Optuna's pruners prune a NaN
    too, at their next check). A restated report never stops it: it goes to the scheduler's ``note`` hook, if any."""
    if report.restated:
        note = getattr(scheduler, "note", None)
        if note is not None:
            note(number, report)
        return False
    decision = scheduler.on_report(number, report)
    return not isinstance(scheduler, NoScheduler) and stop_reason(report, decision is Decision.STOP) is not None
