"""How many steps a scheduler saved: the steps trials ran against running each of them to the end.

"The end" is the declared ``max_resource``, unless completed trials ran past it (then the longest completed
trial's last step); without a ``max_resource`` (median), the longest completed trial's, or while none has completed
the longest trial's. A trial that stops itself (Keras ``EarlyStopping``, XGBoost ``early_stopping_rounds``)
completes short of ``max_resource`` and says nothing about the end of the others: taking the longest completed
trial as the end read ``15 of 48 steps`` for ASHA trials of 40 steps whose only completed trial stopped itself at
12. A trial without a single report is left out (its steps are unknown).

The tally keeps running sums: the live metrics and the run's warning read it after every finished trial, and a
summary that went over every trial counted so far made 20k trials cost 26.8 s per listener.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from tunesmith.records import TrialRecord, TrialState
from tunesmith.space.domains import Domain, Int

# How far the completed trials' length may stray from the declared max_resource before a run and `show` say so: an
# off-by-one loop (steps 0..n-1 are n steps, see steps_run) is not "well before or after" it.
LENGTH_TOLERANCE = 0.1
# How many completed trials must end at one step (and more than half of the completed ones) before a max_resource
# that no trial got near is said to be too large: one trial that stopped itself early is no evidence about the
# others' length. Two suffice where they are every completed trial: under ASHA only the one or two survivors of
# the top rung complete (trials of 9 steps under max_resource 100 read "98% saved" without a word).
AGREEING_TRIALS = 3
AGREEING_WHEN_ALL = 2


@dataclass(frozen=True, slots=True)
class LengthMismatch:
    """Completed trials that end well before or after ``max_resource``: ``trials`` of them (``trial`` the first)
    ended after ``observed`` steps."""

    observed: int
    trial: int
    trials: int = 1


@dataclass(frozen=True, slots=True)
class ResourceSummary:
    """Steps used by the completed and pruned trials that reported, against each of them run to the end.

    Attributes:
        trials: completed and pruned trials with reports, counted.
        steps_used: the steps they ran, summed (:func:`steps_run`).
        steps_full: what running each of them to the end would have cost: ``full_length`` steps each, or its own
            steps where it ran longer (so nothing is ever saved below zero).
        full_length: a run to the end: ``max_resource``, or the longest completed trial's steps where that is
            more; without ``max_resource``, the longest completed trial's (the longest trial's while none completed).
        max_resource: the scheduler's declared ``max_resource``; None for one without (median).
        observed_length: the longest completed trial's steps; None while no completed trial reported.
        unreported: completed and pruned trials without a report, left out (their steps are unknown).
        mismatch: completed trials that end well before or after ``max_resource`` (see :meth:`ResourceTally.mismatch`).
    """

    trials: int
    steps_used: int
    steps_full: int
    full_length: int
    max_resource: int | None
    observed_length: int | None
    unreported: int = 0
    mismatch: LengthMismatch | None = None

    @property
    def fraction_used(self) -> float:
        return self.steps_used / self.steps_full if self.steps_full else 1.0

    @property
    def fraction_saved(self) -> float:
        return 1.0 - self.fraction_used

    @property
    def length_mismatch(self) -> bool:
        """Whether completed trials end well before or after the declared ``max_resource``."""
        return self.mismatch is not None

    def length_warning(self, scheduler: str) -> str | None:
        """What to say when completed trials end well before or after ``max_resource``; None when they do not."""
        if self.mismatch is None:
            return None
        assert self.max_resource is not None
        return length_mismatch_warning(scheduler, self.max_resource, self.mismatch)

    def to_json(self) -> dict[str, float | int | bool | str | None]:
        past = self.max_resource is not None and self.full_length > self.max_resource
        return {"trials": self.trials, "steps_used": self.steps_used, "steps_full": self.steps_full,
                "full_length": self.full_length,
                "length_from": ("completed trials" if past or (self.max_resource is None and self.observed_length)
                                else "max_resource" if self.max_resource is not None else "no trial completed yet"),
                "max_resource": self.max_resource, "observed_length": self.observed_length,
                "length_mismatch": self.length_mismatch, "unreported": self.unreported,
                "fraction_used": round(self.fraction_used, 4), "fraction_saved": round(self.fraction_saved, 4)}


@dataclass(slots=True)
class ResourceTally:
    """The counts behind a :class:`ResourceSummary`, fed one finished trial at a time: the live metrics add each
    trial as it finishes, ``show`` all of them at once, and both read the same figures. Running sums only:
    :meth:`add`, :meth:`summary` and :meth:`mismatch` never go over the trials counted before.

    Attributes:
        max_resource: the scheduler's declared ``max_resource``; None for one without.
        length_parameters: the int parameters that may be a trial's length (:func:`length_parameters`): completed
            trials that end together before ``max_resource`` after as many steps as their own value of one of them
            are short configurations, not a ``max_resource`` too large.
    """

    max_resource: int | None = None
    length_parameters: tuple[str, ...] = ()
    trials: int = 0
    steps_used: int = 0
    longest: int = 0                        # of any counted trial
    longest_completed: int | None = None
    longest_completed_number: int | None = None
    unreported: int = 0
    completed: int = 0
    # completed trials per last step, and the step most of them ended at (with how many, and the first such trial)
    _ends: dict[int, int] = field(default_factory=dict)
    _first_at: dict[int, int] = field(default_factory=dict)
    _common_end: int | None = None
    # completed trials per (last step, length parameter) that ran their own value of that parameter
    _ran_own_length: dict[tuple[int, str], int] = field(default_factory=dict)
    # the steps of trials longer than the current end (normally none), and their sum: what they ran past it
    _past_end: list[int] = field(default_factory=list)
    _past_end_sum: int = 0

    def add(self, trial: TrialRecord) -> None:
        """Count ``trial`` if it completed or was pruned (failed, running and interrupted ones say nothing about
        what the scheduler saved)."""
        if trial.state not in (TrialState.COMPLETED, TrialState.PRUNED):
            return
        if not trial.intermediate:
            self.unreported += 1
            return
        steps = steps_run(trial, self.max_resource)
        self.trials += 1
        self.steps_used += steps
        self.longest = max(self.longest, steps)
        if steps > self._end():
            heapq.heappush(self._past_end, steps)
            self._past_end_sum += steps
        if trial.state is not TrialState.COMPLETED:
            return
        self.completed += 1
        self._ends[steps] = self._ends.get(steps, 0) + 1
        self._first_at.setdefault(steps, trial.number)
        for name in self.length_parameters:
            if ran_its_value(trial, steps, trial.params.get(name)):
                self._ran_own_length[steps, name] = self._ran_own_length.get((steps, name), 0) + 1
        if self._common_end is None or self._ends[steps] > self._ends[self._common_end]:
            self._common_end = steps
        if self.longest_completed is None or steps > self.longest_completed:
            self.longest_completed, self.longest_completed_number = steps, trial.number
            end = self._end()
            while self._past_end and self._past_end[0] <= end:  # each trial leaves this heap once at most
                self._past_end_sum -= heapq.heappop(self._past_end)

    def _end(self) -> int:
        """The end of a run, 0 while neither ``max_resource`` nor a completed trial says it (it only grows)."""
        return max(self.max_resource or 0, self.longest_completed or 0)

    def mismatch(self) -> LengthMismatch | None:
        """Completed trials that end well before or after ``max_resource``, or None.

        After: the longest completed trial ran past it. Before: no trial, completed or pruned, got near it, and at
        least :data:`AGREEING_TRIALS` completed trials, more than half of them, ended at one step, or every completed
        trial did, at least :data:`AGREEING_WHEN_ALL` (trials that stop themselves early end where they each stop,
        not together); and neither did each of them run its own value of a length parameter, nor did a completed
        trial run well past that step (both say trials have lengths of their own: `epochs: {type: int, high: 30}`
        under max_resource 30 ran 10-step configurations first, and the advice to set max_resource to 10 was wrong
        for the 30-step ones). A parameter's high alone is not enough: `batch_size: {type: int, high: 64}` under
        max_resource 64 turned the warning off for good, for trials that all ran 10 steps."""
        if self.max_resource is None or self.longest_completed is None:
            return None
        if self.longest_completed > self.max_resource:
            if not length_mismatch(self.max_resource, self.longest_completed):
                return None
            assert self.longest_completed_number is not None
            return LengthMismatch(self.longest_completed, self.longest_completed_number)
        common = self._common_end
        assert common is not None
        agreeing = self._ends[common]
        together = agreeing >= AGREEING_TRIALS and 2 * agreeing > self.completed
        every = AGREEING_WHEN_ALL <= agreeing == self.completed
        if not (together or every) or self.longest >= self.max_resource \
                or not length_mismatch(self.max_resource, self.longest):
            return None
        if length_mismatch(common, self.longest_completed) or any(
                self._ran_own_length.get((common, name)) == agreeing for name in self.length_parameters):
            return None
        return LengthMismatch(common, self._first_at[common], agreeing)

    def summary(self) -> ResourceSummary:
        end = self._end()
        if end == 0:  # no max_resource, no completed trial: the longest trial is the end
            length, full = self.longest, self.trials * self.longest
        else:
            length = end
            full = self.trials * end + self._past_end_sum - len(self._past_end) * end
        return ResourceSummary(self.trials, self.steps_used, full, length, self.max_resource,
                               self.longest_completed, self.unreported, self.mismatch())


def resource_summary(trials: Iterable[TrialRecord], max_resource: int | None = None,
                     length_parameters: tuple[str, ...] = ()) -> ResourceSummary:
    """Total steps executed over finished trials against running each to the end.

    Args:
        trials: an experiment's trials, in any state.
        max_resource: the scheduler's declared full length (ASHA, Hyperband, PBT); None for the median rule.
        length_parameters: see :attr:`ResourceTally.length_parameters`.

    Returns:
        The summary; with nothing counted, zeros and ``fraction_used == 1.0``.
    """
    tally = ResourceTally(max_resource, length_parameters)
    for trial in trials:
        tally.add(trial)
    return tally.summary()


def length_parameters(space: Mapping[str, Domain], max_resource: int | None) -> tuple[str, ...]:
    """The int parameters of ``space`` that reach ``max_resource`` at their high: each may be the trial's length
    (epochs, n_estimators), tuned, as Optuna's ``suggest_int("epochs", 5, 30)`` under a Hyperband pruner. Whether
    one is, the trials say (:meth:`ResourceTally.mismatch`): a ``batch_size`` with high 64 may sit beside a
    ``max_resource`` of 64."""
    if max_resource is None:
        return ()
    return tuple(name for name, d in space.items() if isinstance(d, Int) and d.high == max_resource)


def ran_its_value(trial: TrialRecord, steps: int, value: object) -> bool:
    """Whether a completed trial of ``steps`` steps ran ``value`` of them: exactly, or up to one report stride
    past its last report (a loop over ``range(epochs)`` reporting every 5th epoch, as in :func:`steps_run`)."""
    if not isinstance(value, int) or isinstance(value, bool):
        return False
    reported = sorted({r.step for r in trial.intermediate})
    stride = min((b - a for a, b in zip(reported, reported[1:], strict=False)), default=1)
    return steps <= value <= steps + stride - 1


def length_mismatch(max_resource: int | None, observed: int | None) -> bool:
    """Whether a length of ``observed`` steps is well before or after ``max_resource``."""
    if max_resource is None or observed is None:
        return False
    return abs(observed - max_resource) > max(1.0, LENGTH_TOLERANCE * max_resource)


def length_mismatch_warning(scheduler: str, max_resource: int, mismatch: LengthMismatch) -> str:
    """What the run and ``show`` say when completed trials end well before or after ``max_resource``."""
    observed, short = mismatch.observed, mismatch.observed < max_resource
    who = (f"trial {mismatch.trial} completed after {observed} steps, well past it" if not short else
           f"{mismatch.trials} completed trials (trial {mismatch.trial} first) ended after {observed} steps and no "
           f"trial got near it")
    effect = (f"its checks above step {observed} are never reached" if short
              else f"a trial runs on unchecked from step {max_resource} to its end")
    counted = (f"against max_resource ({max_resource})" if short
               else f"against the {observed} steps trials really run")
    return (f"scheduler.max_resource is {max_resource}, but {who}: the {scheduler} scheduler lays out its checks "
            f"for trials of {max_resource} steps, so {effect}; set scheduler.max_resource to the steps a trial runs "
            f"({observed}), or, where a trial's length is a tuned parameter (epochs), to that parameter's high. The "
            f"steps saved are counted {counted}")


def steps_run(trial: TrialRecord, max_resource: int | None = None) -> int:
    """The steps a trial with reports ran, by the last step it reached (a step is the resource reached, as for
    rungs), not by how many reports it made. A loop over ``range(n)`` reporting its epoch reports 0..n-1 and has
    run n epochs, as one reporting ``epoch + 1`` (1..n) has: both cost n against ``max_resource``.

    A completed trial that reports every k steps may run up to k - 1 steps past its last report without another:
    a loop over ``range(20)`` reporting every 5th epoch (0, 5, 10, 15) ran 20, not 16. So a completed trial whose
    last step is within one report stride short of ``max_resource`` ran to it. Adding the stride to every trial
    instead read 0, 25, 50, 75, 99 of ``range(100)`` as 123 steps, well past a ``max_resource`` of 100. A pruned
    trial stopped at its last report."""
    steps = sorted({r.step for r in trial.intermediate})
    ran = steps[-1] + 1 if steps[0] == 0 else steps[-1]
    if max_resource is None or trial.state is not TrialState.COMPLETED:
        return ran
    stride = min((b - a for a, b in zip(steps, steps[1:], strict=False)), default=1)
    return max_resource if ran < max_resource <= ran + stride - 1 else ran
