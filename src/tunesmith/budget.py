"""Budget accounting: when may another trial start, and when is the run over.

Besides the spec's limits, one rule of its own, *fail fast*: when the first FAIL_FAST_TRIALS trials of a run all
fail the same deterministic way, the code cannot work for any configuration, and the run stops as failed instead of
spending its budget on that error. The same way is: the same exception type, raised at (or, raised in a library,
the standard library or tunesmith, called from) the same line of the user's code, with the same message; the same
invalid result; or the same exit code and last stderr line; each with the values it quotes left out (numbers, quoted
text: the configuration's, not what is wrong: ``boom for lr=0.01`` and ``boom for lr=0.3`` are one bug). Not the
innermost place alone: a library's is the same for every failure that passes through it (``subprocess.run``'s, for
a program that exits 3 and one that is SIGKILLed). Five, whatever the number of workers: one or two identical
failures can be bad luck in a space where some configurations fail; five in a row, with the same reason, is the
code. Timeouts, crashes and memory kills do not count: their reason reads the same whatever caused it (a
configuration too big for the limit, the machine), so "the same reason" says nothing. A run that has seen a trial
succeed, before a resume included, never fails fast; later failures are ``budget.max_failure_rate``'s business.

A money budget (``budget.cost``) is judged on the *projected* spend: what finished trials cost, plus what the
trials still running are expected to cost (the median cost of the finished ones, each), plus the same for each
finished trial whose cost is unknown (``cost_unknown``: a measurement never arrived; counting it as free would
let the run overspend). A new trial starts only if the projection with it stays within the cap, so the run ends
within about one trial's cost of it. Until the first trial's cost is known, trials start one at a time.

A trial that *completed* yet is of unknown cost never reported the cost metric (``cost.metric``) and nothing else
prices it: the metric is misnamed, or the trial does not report it. A money budget cannot be kept on such trials
(projecting them at the median of trials that did report a cost is a guess about the very trials that never say),
so, like fail fast, the run stops as failed at the first one of this run, saying which metric it lacks. Trials
start one at a time until a cost is known, so it stops after the first trial, not after spending the budget
many times over. Replayed trials are history, projected at the median as before; this run is judged on its own.

``target`` and ``patience`` judge the best trial selection may pick (``show``'s best: within the constraints, and
stable where the task excludes unstable configurations), kept by :class:`~tunesmith.selection.RunningBest`: an
infeasible trial neither reaches the target nor counts as an improvement.
"""

from __future__ import annotations

import enum
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tunesmith.cost import COST_METRIC, COST_UNKNOWN_METRIC, money
from tunesmith.evaluation.output_tail import STDERR_LABEL, reason_without_output
from tunesmith.records import Direction, FailureKind, ObjectiveSpec, RaisedAt, TrialRecord, TrialState
from tunesmith.selection import RunningBest
from tunesmith.spec.model import Budget, ExperimentSpec
from tunesmith.unreported_metrics import unreported_hint

FAIL_FAST_TRIALS = 5
# Why a run ends whose strategy has nothing left to propose (a grid walked to its end): the audit trail keeps it as the
# run's reason, where `resume --trials` reads it (more trials give such a strategy nothing to run).
EVERY_CONFIGURATION_PROPOSED = "the strategy has proposed every configuration"
DETERMINISTIC_FAILURES = (FailureKind.EXCEPTION, FailureKind.INVALID_RESULT, FailureKind.EXIT_CODE)
# Parts of a reason that differ from trial to trial whatever the configuration: the trial's folder, times,
# memory addresses, process ids.
_VARYING = re.compile(r"trial-\d+|\d{4}-\d\d-\d\d[T ]?|\d\d:\d\d:\d\d(?:[.,]\d+)?|0x[0-9a-fA-F]+|\bpid \d+")
# Values a reason quotes: numbers and quoted text. An invalid result's (`returned tuple (0.31, 0.9)`), a command's
# last stderr line (`ValueError: bad lr 0.01 for 'adam'`), an exception's message (`boom for lr=0.01`), tunesmith's
# own errors in a trial (`got 'x'`): the configuration's values, not what is wrong. A quoted list or tuple is one
# value (`Command '['python', 'fit.py', 'adam']' returned ...`: its quotes, paired, leave every other item out).
_VALUE = re.compile(r"""'\[[^\n]*?\]'|'\([^\n]*?\)'|'[^'\n]*'|"[^"\n]*"|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?""")
# An exception's type and where it was raised, as the reason says them: `exception: KeyError: 'lr' (at train.py:12
# in fit)`, or, raised in code not the user's, with the user's line that called it: `(at subprocess.py:571 in run,
# called from train.py:12 in objective)`. The place is the last such group (the message may hold one of its own).
# Read only for a failure that comes without its RaisedAt (see _raised)
_EXCEPTION_TYPE = re.compile(r"exception: ([\w.]+)")
_RAISED_AT = re.compile(r" \(at ([^()\s]+:\d+) in [^(),]*(?:, called from ([^()\s]+:\d+) in [^()]*)?\)")


class RunStop(enum.StrEnum):
    """What ended a run, where a later command decides on it: kept in the run's ``run_ended`` event's detail
    (``stop``), as its reason beside it is words for people, which may be reworded."""

    EVERY_CONFIGURATION_PROPOSED = "every_configuration_proposed"  # `resume --trials` gives such a run nothing


def run_stop(reason: str) -> RunStop | None:
    """The kind of stop a run's reason, as this run's loop returned it, is; None for one no command decides on."""
    return RunStop.EVERY_CONFIGURATION_PROPOSED if reason == EVERY_CONFIGURATION_PROPOSED else None


class BudgetTracker:
    """Args:
        budget: the spec's budget.
        direction: the (first) objective's direction, for ``target`` and ``patience``.
        started: monotonic time this run started.
        elapsed_before: seconds spent by earlier runs of this experiment (resume).
        cost_metric: the metric trials report their cost in (``cost.metric``), for the reason a money budget
            stops on a trial that completed without it.
        ranking: the best so far that ``target`` and ``patience`` judge (``of`` gives the spec's selection rule);
            by default every completed trial counts, ranked on ``direction``.
    """

    def __init__(self, budget: Budget, direction: Direction, started: float, elapsed_before: float = 0.0,
                 cost_metric: str | None = None, ranking: RunningBest | None = None) -> None:
        self.budget = budget
        self.cost_metric = cost_metric
        self.direction = direction
        self.started = started
        self.elapsed_before = elapsed_before
        self.ranking = ranking or RunningBest([ObjectiveSpec("value", direction)])
        self.since_improvement = 0
        self.finished = 0
        self.run_finished = 0   # this run only: a resumed run is judged on its own failures, not the ones
        self.run_failed = 0     # that made the user stop and fix the code
        self.last_error: str | None = None
        self.first_failures: list[str] = []   # this run's first finished trials, while every one failed alike
        self.fail_fast_armed = True            # until a trial succeeds or fails differently
        self.spent = 0.0                     # what every trial observed cost (failed and pruned ones included)
        self.costs: list[float] = []
        self.unknown_costs = 0               # finished trials whose cost is unknown: projected at the expected cost
        self.allocated = 0                   # trial numbers taken, as last told by may_start
        self.unpriced: str | None = None     # why this run's money budget cannot be kept (a trial never said its cost)

    @classmethod
    def of(cls, spec: ExperimentSpec, started: float, elapsed_before: float = 0.0) -> BudgetTracker:
        """The tracker of ``spec``'s budget."""
        ranking = RunningBest(spec.objectives, (), spec.constraints, bool(spec.task and spec.task.exclude_unstable))
        return cls(spec.budget, spec.objectives[0].direction, started, elapsed_before,
                   spec.cost.metric if spec.cost is not None else None, ranking)

    @property
    def best_trial(self) -> TrialRecord | None:
        """The best trial selection may pick among those observed (what ``show`` calls best), or None."""
        return self.ranking.best

    def observe(self, trial: TrialRecord, replayed: bool = False, raised_at: RaisedAt | None = None) -> None:
        """Count a trial that reached a final state; ``replayed`` for one finished by an earlier run. ``raised_at``:
        where the exception that failed it was raised (its last attempt's failure's), which fail fast compares."""
        cost = trial.metrics.get(COST_METRIC)
        if cost is not None:
            self.spent += cost
            self.costs.append(cost)
        elif trial.metrics.get(COST_UNKNOWN_METRIC):
            self.unknown_costs += 1
            if trial.state is TrialState.COMPLETED and not replayed and self.budget.cost is not None:
                self.unpriced = self.unpriced or self._unpriced_reason(trial)
        if not trial.state.counts_against_budget():
            return
        self.finished += 1
        self._watch_first_failures(trial, replayed, raised_at)
        if not replayed:
            self.run_finished += 1
            if trial.state is TrialState.FAILED:
                self.run_failed += 1
                self.last_error = trial.error
        before = self.ranking.best
        best = self.ranking.offer(trial)
        if best is not None and best is not before and best.values:
            self.since_improvement = 0
        else:
            self.since_improvement += 1

    def _watch_first_failures(self, trial: TrialRecord, replayed: bool, raised_at: RaisedAt | None) -> None:
        if not self.fail_fast_armed:
            return
        if replayed:
            # an earlier run's trials: one that succeeded proves the code can work; failures are history (the
            # user may have fixed the code since) and this run is judged on its own first trials
            self.fail_fast_armed = trial.state is TrialState.FAILED
            return
        signature = failure_signature(trial, raised_at)
        if signature is None or (self.first_failures and signature != self.first_failures[0]):
            self.fail_fast_armed = False
            self.first_failures.clear()
        elif len(self.first_failures) < FAIL_FAST_TRIALS:
            self.first_failures.append(signature)

    def _unpriced_reason(self, trial: TrialRecord) -> str:
        metric = self.cost_metric or "the cost metric"
        hint = f" ({unreported_hint(metric, trial.metrics)})" if self.cost_metric else ""
        return (f"trial {trial.number} completed without reporting {metric!r} (cost.metric), so its cost is unknown "
                f"and the money budget (budget.cost {self.budget.cost:g}) cannot be kept: have the trial return its "
                f"cost under that name, or name the metric it reports in cost.metric{hint}")

    def may_start(self, allocated: int, now: float) -> bool:
        """Whether a new trial number may be allocated (``allocated`` numbers are taken already)."""
        self.allocated = max(self.allocated, allocated)
        return (self.stop_reason(now) is None and (self.budget.trials is None or allocated < self.budget.trials)
                and self._cost_allows_one_more())

    def expected_cost(self) -> float | None:
        """What the next trial is expected to cost: the median of the trials that have a cost; None before one."""
        return statistics.median(self.costs) if self.costs else None

    def running(self) -> int:
        """Trials allocated that have not reached a final state (running, queued for a retry or a re-run)."""
        return max(0, self.allocated - self.finished)

    def projected_spend(self) -> float:
        """Spent so far plus the expected cost of every trial still running or finished at an unknown cost."""
        expected = self.expected_cost()
        return self.spent + ((self.running() + self.unknown_costs) * expected if expected is not None else 0.0)

    def _cost_allows_one_more(self) -> bool:
        if self.budget.cost is None:
            return True
        expected = self.expected_cost()
        if expected is None:
            return self.running() == 0  # measure the first trial's cost before spending on several at once
        return self.projected_spend() + expected <= self.budget.cost

    def cost_stop(self) -> str | None:
        """Why the money budget allows no further trial, or None."""
        cap, expected = self.budget.cost, self.expected_cost()
        if cap is None:
            return None
        if self.spent >= cap:
            return f"cost budget of {cap:g} reached (spent {money(self.spent)})"
        if expected is not None and self.projected_spend() + expected > cap:
            counted = [f"{self.running()} running trial(s)"] if self.running() else []
            counted += [f"{self.unknown_costs} of unknown cost"] if self.unknown_costs else []
            running = (f", {' and '.join(counted)} expected to bring it to {money(self.projected_spend())}"
                       if counted else "")
            return (f"cost budget of {cap:g} reached: spent {money(self.spent)}{running}; one more trial "
                    f"(about {money(expected)}) would exceed it")
        return None

    def failure_stop(self) -> str | None:
        """Why the run should stop as failed (too many trials failing), or None."""
        b = self.budget
        if self.unpriced is not None:
            return self.unpriced
        if self.fail_fast_armed and len(self.first_failures) >= FAIL_FAST_TRIALS:
            # "the first N to finish": trials still running when it stops may end in the grace period, failed too,
            # and the store counts them (`show`: 6 failed); "every trial so far (5)" was then untrue there
            return (f"the first {len(self.first_failures)} trials to finish in this run failed the same way, so no "
                    f"configuration is likely to work: {self.last_error}")
        if b.max_failure_rate is None or self.run_finished < b.failure_rate_min_trials:
            return None
        rate = self.run_failed / self.run_finished
        if rate <= b.max_failure_rate:
            return None
        return (f"{self.run_failed} of {self.run_finished} finished trials failed ({rate:.0%} > max_failure_rate "
                f"{b.max_failure_rate:.0%}); the last error: {self.last_error}")

    def stop_reason(self, now: float) -> str | None:
        """Why no further trial should start, or None."""
        b = self.budget
        failing = self.failure_stop()
        if failing is not None:
            return failing
        if b.trials is not None and self.finished >= b.trials:
            return f"trial budget of {b.trials} reached"
        if b.wall_time is not None and self.elapsed_before + now - self.started >= b.wall_time:
            return f"wall-time budget of {b.wall_time:g}s reached"
        best = self.ranking.best.values[0] if self.ranking.best and self.ranking.best.values else None
        if b.target is not None and best is not None and not self.direction.better(b.target, best):
            return f"target {b.target:g} reached (best {best:g})"
        if b.patience is not None and self.since_improvement >= b.patience:
            return f"no improvement in {b.patience} trials"
        return self.cost_stop()

    def taken_stop(self, now: float, states: Mapping[TrialState, int], resume: str) -> str:
        """Why a coordinator stops that may start no trial while its peers may still run the last ones (``resume
        --join``): in the words of the run that finishes them, and what is left, as the store counts the experiment's
        trials by state (``states``): those running or queued with other coordinators, and those interrupted or lost
        that nobody runs (the command ``resume``, ``tunesmith resume NAME`` with its ``--storage``, re-runs them)."""
        reason = self.stop_reason(now)
        if reason is not None:
            return reason
        b = self.budget
        if b.trials is not None and sum(states.values()) >= b.trials:
            why = f"trial budget of {b.trials} reached: every trial is taken"
        elif b.cost is not None and self.expected_cost() is None:
            why = f"cost budget of {b.cost:g}: trials start one at a time until one's cost is known"
        else:
            why = "every trial the budget allows is taken"
        elsewhere = states.get(TrialState.RUNNING, 0) + states.get(TrialState.QUEUED, 0)
        left = states.get(TrialState.INTERRUPTED, 0) + states.get(TrialState.LOST, 0)
        told = [f"{elsewhere} still running with other coordinators"] if elsewhere else []
        told += [f"{left} interrupted or lost and run by nobody: `{resume}` runs "
                 f"{'it' if left == 1 else 'them'} again"] if left else []
        return f"{why}, {'; '.join(told)}" if told else why


def with_unrun(stop: str, unrun: int) -> str:
    """A stop's reason, naming the lost or interrupted trials it leaves: they re-run only while nothing says stop,
    so a resume whose wall time was spent (or whose target was reached) ends with them still lost."""
    if not unrun:
        return stop
    trials = "trial was" if unrun == 1 else "trials were"
    return f"{stop}, so {unrun} lost or interrupted {trials} not re-run"


@dataclass(frozen=True, slots=True)
class SpendSummary:
    """Money so far and where it is heading (``tunesmith show``)."""

    spent: float
    trials_priced: int
    burn_per_hour: float | None        # spent / hours between the first trial's start and the last event
    projected_total: float | None      # at the current rate, to the end of the budget (trials, wall time, cost cap)
    budget: float | None
    trials_cost_unknown: int = 0       # trials whose cost is unknown (a measurement never arrived): not in spent

    def to_json(self) -> dict[str, float | int | None]:
        # Not rounded: six decimals made a run that cost 3.5e-07 "spent": 0.0 beside a non-zero burn rate.
        return {"spent": self.spent, "trials_priced": self.trials_priced,
                "trials_cost_unknown": self.trials_cost_unknown, "burn_per_hour": self.burn_per_hour,
                "projected_total": self.projected_total, "budget": self.budget}


def spend_summary(trials: Sequence[TrialRecord], budget: Budget, hours: float, finished: bool) -> SpendSummary:
    """Spent, burn rate and projected total of a run whose trials are ``trials`` and that has run ``hours``.

    The projection extends the mean cost per trial over the trials the budget still allows and the burn rate
    over the wall time it still allows, takes the smaller, and never goes past the cost cap. A run that has
    finished projects what it spent.
    """
    costs = [t.metrics[COST_METRIC] for t in trials if COST_METRIC in t.metrics]
    spent = sum(costs)
    rate = spent / hours if hours > 0 and costs else None
    unknown = sum(1 for t in trials if t.metrics.get(COST_UNKNOWN_METRIC))
    # trials of unknown cost are projected at the median cost, as the run's own budget counts them
    counted = spent + unknown * statistics.median(costs) if costs else 0.0
    if finished or not costs:
        projected: float | None = counted if costs else None
    else:
        candidates = []
        done = sum(1 for t in trials if t.state.counts_against_budget())
        if budget.trials is not None:
            candidates.append(counted + spent / len(costs) * max(0, budget.trials - done))
        if budget.wall_time is not None and rate is not None:
            candidates.append(counted + rate * max(0.0, budget.wall_time / 3600 - hours))
        projected = min(candidates) if candidates else None
        if budget.cost is not None:
            projected = budget.cost if projected is None else min(projected, budget.cost)
    return SpendSummary(spent, len(costs), rate, projected, budget.cost, unknown)


def failure_signature(trial: TrialRecord, raised_at: RaisedAt | None = None) -> str | None:
    """What a failed trial's reason says about the code, or None for one that says nothing (or succeeded): two
    trials with one signature failed the same way (fail fast's rule; the run's display groups failures by it).
    ``raised_at``: the failure's own, where the caller has it; else the place is read from the reason's words."""
    if trial.state is not TrialState.FAILED or trial.failure_kind not in DETERMINISTIC_FAILURES:
        return None
    reason = reason_without_output(trial.error or "")
    raised = _raised(reason, raised_at) if trial.failure_kind is FailureKind.EXCEPTION else None
    if raised is not None:
        # the user's line (where the code called a library that raised it), and what the message says of the code
        exception, line, said = raised
        return f"exception: {exception} at {line}: {_VALUE.sub('#', _VARYING.sub('#', said))}"
    reason = _VARYING.sub("#", reason)
    if trial.failure_kind is FailureKind.EXIT_CODE:  # its code is what happened, not a value; its stderr quotes values
        what, label, stderr = reason.partition(STDERR_LABEL)
        return what + label + _VALUE.sub("#", stderr)
    return _VALUE.sub("#", reason)


def failure_way(trial: TrialRecord) -> str:
    """The way a failed trial failed, for telling failures apart (the run's display groups them by it): its
    :func:`failure_signature`, else (a timeout, a crash, a memory failure) its reason without the output it ends
    with and the values it quotes (the memory it used)."""
    return failure_signature(trial) or _VALUE.sub("#", _VARYING.sub("#", reason_without_output(trial.error or "")))


def _raised(reason: str, raised_at: RaisedAt | None) -> tuple[str, str, str] | None:
    """An exception's type, the user's line it was raised at (or called the code that raised it from), and its
    reason without the place; None where the reason names no place.

    From ``raised_at``, the failure's own. A failure that comes without one (a record on its own, whose reason is
    all there is; a worker of a tunesmith from before it) is judged as before it: by the place read back out of
    the reason's words, which a file's name with brackets in it, or a message cut at its length, hides.
    """
    if raised_at is not None:
        before, said_there, after = reason.rpartition(f" ({raised_at.place})")
        return raised_at.exception, raised_at.line, (before + after) if said_there else reason
    exception, places = _EXCEPTION_TYPE.match(reason), list(_RAISED_AT.finditer(reason))
    if exception is None or not places:
        return None
    place = places[-1]
    return exception.group(1), place.group(2) or place.group(1), reason[:place.start()] + reason[place.end():]
