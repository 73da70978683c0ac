"""Schedulers in simulated time on tabulated learning curves: ASHA, Hyperband, the median rule; their spec section.

No processes and no sleep: :mod:`tunesmith.testing.scheduler_sim` plays curves through a scheduler on a fake
clock, with workers interleaving reports.
"""

from __future__ import annotations

import dataclasses
import math
import random
import sys
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from pydantic import Field, ValidationError

from tunesmith.errors import SpecError
from tunesmith.records import Direction, Report, TrialRecord, TrialState
from tunesmith.scheduler import (
    ASHAScheduler,
    Decision,
    HyperbandScheduler,
    MedianScheduler,
    NoScheduler,
    Scheduler,
    SchedulerEvidence,
    build_scheduler,
    resource_summary,
    stops,
)
from tunesmith.scheduler.resources import steps_run
from tunesmith.spec.loader import format_validation_error
from tunesmith.spec.scheduler_config import (
    ASHAConfig,
    HyperbandConfig,
    MedianConfig,
    NoSchedulerConfig,
    SchedulerChoice,
    bracket_count,
    rung_steps,
)
from tunesmith.strict_model import StrictModel
from tunesmith.testing.scheduler_sim import Curve, SimulationResult, simulate

MIN, MAX = Direction.MINIMIZE, Direction.MAXIMIZE
C, S = Decision.CONTINUE, Decision.STOP


def record(number: int, state: TrialState, points: Sequence[tuple[int, float]]) -> TrialRecord:
    reports = tuple(Report(s, v) for s, v in points)
    values = (reports[-1].value,) if state is not TrialState.FAILED and reports else None
    return TrialRecord(number=number, state=state, params={}, seed=number, values=values, intermediate=reports)


def signed(direction: Direction, values: Sequence[float]) -> list[float]:
    """Values written as losses, flipped into scores when maximizing: the same ranking either way."""
    return [v if direction is MIN else -v for v in values]


def random_curves(n: int, seed: int, fail: Sequence[int] = ()) -> list[Curve]:
    """Noisy saturating curves with random asymptotes, speeds and report grids (every epoch, or every 2)."""
    rng = random.Random(seed)
    curves = []
    for i in range(n):
        a, tau = rng.uniform(0.5, 1.0), rng.uniform(1.0, 6.0)
        steps = list(range(1, 28)) if rng.random() < 0.7 else list(range(2, 28, 2))
        values = [a * (1 - math.exp(-t / tau)) + rng.gauss(0, 0.01) for t in steps]
        curves.append(Curve.of(values, steps, seconds_per_step=rng.uniform(0.5, 2.0),
                               fail_after=4 if i in fail else None))
    return curves


# -- rung arithmetic ---------------------------------------------------------------------------------------------

def test_rung_steps_are_geometric_and_below_max_resource() -> None:
    assert rung_steps(1, 27, 3) == (1, 3, 9)
    assert rung_steps(1, 27, 3, min_early_stopping_rate=1) == (3, 9)
    assert rung_steps(1, 20, 3) == (1, 3, 9)
    assert rung_steps(2, 100, 2) == (2, 4, 8, 16, 32, 64)
    assert rung_steps(1, 27, 3, min_early_stopping_rate=3) == ()
    assert bracket_count(1, 27, 3) == 4  # floor(log3(27)) + 1, exact despite float logs
    assert bracket_count(1, 20, 3) == 3
    assert bracket_count(1, 243, 3) == 6


# -- ASHA ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("direction", [MIN, MAX])
def test_asha_keeps_the_best_max_1_n_over_eta_at_arrival(direction: Direction) -> None:
    asha = ASHAScheduler(direction, max_resource=27, min_resource=1, reduction_factor=3)
    # Losses at the first rung, in arrival order; expected: in the best max(1, n // 3) of the n so far?
    table = [(5.0, C),    # n=1: alone, goes on at once (never waits for peers)
             (3.0, C),    # n=2, keep 1: best so far
             (4.0, S),    # n=3, keep 1: 3.0 is better
             (1.0, C),    # n=4, keep 1: best
             (2.0, S),    # n=5, keep 1
             (2.5, S),    # n=6, keep 2: {1.0, 2.0}
             (1.5, C),    # n=7, keep 2: {1.0, 1.5}
             (1.5, C),    # n=8, keep 2: ties with the 2nd best go on
             (9.0, S)]    # n=9, keep 3
    values = signed(direction, [v for v, _ in table])
    got = [asha.on_report(i, Report(1, v)) for i, v in enumerate(values)]
    assert got == [d for _, d in table]
    assert [asha.rung_of(i) for i in range(len(table))] == [0] * len(table)


@pytest.mark.parametrize("direction", [MIN, MAX])
def test_asha_promotes_through_rungs_and_stops_the_rest(direction: Direction) -> None:
    # Three trials, run one after another (one worker): the best at every rung is alone or on top; no waiting.
    curves = [Curve.of(signed(direction, [9 - 0.2 * t for t in range(1, 28)])),   # good
              Curve.of(signed(direction, [9.5 - 0.1 * t for t in range(1, 28)])),  # worse at step 1: stopped
              Curve.of(signed(direction, [8.0 - 0.3 * t for t in range(1, 28)]))]  # best everywhere
    result = simulate(ASHAScheduler(direction, 27), curves, workers=1)
    states = {t.number: (t.state, t.intermediate[-1].step) for t in result.trials}
    assert states == {0: (TrialState.COMPLETED, 27), 1: (TrialState.PRUNED, 1), 2: (TrialState.COMPLETED, 27)}
    assert all(d.decision is C for d in result.decisions_of(0))  # first at every rung, decided at once


def test_asha_decisions_follow_the_rule_under_asynchronous_interleaving() -> None:
    """An independent, obviously-correct oracle re-derives every decision of a 4-worker run with mixed grids."""
    rungs_at, eta = (1, 3, 9), 3
    result = simulate(ASHAScheduler(MAX, 27), random_curves(60, seed=1), workers=4, lag=1)
    assert len({d.time for d in result.decisions}) > 100  # reports really interleave across trials
    seen: dict[int, dict[int, float]] = {r: {} for r in rungs_at}
    stopped: set[int] = set()
    for d in result.decisions:
        value = next(r.value for r in result.by_number()[d.number].intermediate if r.step == d.step)
        expected = S if d.number in stopped else C
        for rung in rungs_at:
            if d.step >= rung and d.number not in seen[rung]:
                seen[rung][d.number] = value
                ranked = sorted(seen[rung].values(), reverse=True)
                if expected is C and value < ranked[max(1, len(ranked) // eta) - 1]:
                    expected = S
        if expected is S:
            stopped.add(d.number)
        assert d.decision is expected, d
    assert 0 < len(stopped) < 60


def test_asha_uses_the_first_report_at_or_past_a_skipped_rung() -> None:
    asha = ASHAScheduler(MIN, 27)  # rungs at 1, 3, 9
    for step in (2, 4, 6, 8, 10):
        asha.on_report(0, Report(step, 10.0 - step))
    asha.on_report(1, Report(0, 5.0))
    asha.on_report(1, Report(5, 4.0))  # skips rungs 1 and 3 at once: recorded in both
    rungs = asha.rungs()
    assert [r.step for r in rungs] == [1, 3, 9]
    assert dict(rungs[0].values) == {0: 8.0, 1: 4.0}
    assert dict(rungs[1].values) == {0: 6.0, 1: 4.0}
    assert dict(rungs[2].values) == {0: 0.0}
    assert asha.rung_of(0) == 2 and asha.rung_of(1) == 1 and asha.rung_of(2) is None


def test_a_stop_is_final_even_if_later_reports_are_good() -> None:
    asha = ASHAScheduler(MIN, 27)
    asha.on_report(0, Report(1, 1.0))
    assert asha.on_report(1, Report(1, 2.0)) is S
    assert asha.on_report(1, Report(2, -100.0)) is S  # reported before it noticed the stop
    assert asha.on_report(1, Report(3, -100.0)) is S   # still recorded: a true measurement at rung 3
    assert dict(asha.rungs()[1].values) == {1: -100.0}


def test_failed_trials_do_not_pollute_rungs() -> None:
    def second_trial_after(first_state: TrialState) -> Decision:
        asha = ASHAScheduler(MIN, 27)
        asha.on_report(0, Report(1, 0.1))  # an excellent value, then the trial fails (or completes)
        asha.on_finish(record(0, first_state, [(1, 0.1)]))
        return asha.on_report(1, Report(1, 0.5))

    assert second_trial_after(TrialState.COMPLETED) is S
    assert second_trial_after(TrialState.FAILED) is C
    asha = ASHAScheduler(MIN, 27)
    asha.replay([record(0, TrialState.FAILED, [(1, 0.1), (3, 0.05)]),
                 record(1, TrialState.PRUNED, [(1, 0.9)]), record(2, TrialState.COMPLETED, [(1, 0.2), (27, 0.0)])])
    assert [dict(r.values) for r in asha.rungs()] == [{1: 0.9, 2: 0.2}, {2: 0.0}, {2: 0.0}]


SCHEDULERS: dict[str, Callable[[], Scheduler]] = {
    "none": NoScheduler,
    "median": lambda: MedianScheduler(MAX, warmup_steps=2, min_trials=3),
    "asha": lambda: ASHAScheduler(MAX, 27),
    "hyperband": lambda: HyperbandScheduler(MAX, 27, seed=7),
}


@pytest.mark.parametrize("tell_after_stop", [True, False], ids=["told-after-stop", "as-runner"])
@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_replay_after_resume_makes_the_decisions_of_an_uninterrupted_run(name: str, tell_after_stop: bool) -> None:
    first, second = random_curves(24, seed=3, fail=(5,)), random_curves(24, seed=4)

    def run(scheduler: Scheduler, curves: list[Curve], first_number: int = 0) -> SimulationResult:
        return simulate(scheduler, curves, workers=3, first_number=first_number, lag=1,
                        tell_after_stop=tell_after_stop)

    # Uninterrupted: one scheduler sees both parts.
    live = SCHEDULERS[name]()
    run(live, first)
    uninterrupted = run(live, second, first_number=24)
    # Interrupted after the first part: a new process replays the recorded trials into a fresh scheduler.
    before = run(SCHEDULERS[name](), first)
    resumed = SCHEDULERS[name]()
    resumed.replay(before.trials)
    after = run(resumed, second, first_number=24)
    assert after.decisions == uninterrupted.decisions
    if name != "none":
        assert any(d.decision is S for d in after.decisions)  # there were decisions to get right
        amnesiac = run(SCHEDULERS[name](), second, first_number=24)
        assert amnesiac.decisions != uninterrupted.decisions  # and replay is what made them right
    if isinstance(live, ASHAScheduler | HyperbandScheduler):
        rebuilt = SCHEDULERS[name]()
        rebuilt.replay(before.trials + after.trials)
        assert _rungs(rebuilt) == _rungs(live)


def _rungs(scheduler: Scheduler) -> Any:
    if isinstance(scheduler, HyperbandScheduler):
        return tuple(b.rungs() for b in scheduler.bracket_schedulers)
    assert isinstance(scheduler, ASHAScheduler)
    return scheduler.rungs()


def test_a_retried_trial_is_settled_from_its_last_attempt() -> None:
    asha = ASHAScheduler(MIN, 27)
    asha.on_report(0, Report(1, 5.0))  # first attempt, then a crash and a retry (no on_finish in between)
    asha.on_report(0, Report(1, 4.0))  # the retry re-covers a rung it already passed: not judged again
    asha.on_finish(record(0, TrialState.COMPLETED, [(1, 4.0), (27, 1.0)]))  # the record keeps the last attempt
    fresh = ASHAScheduler(MIN, 27)
    fresh.replay([record(0, TrialState.COMPLETED, [(1, 4.0), (27, 1.0)])])
    assert asha.rungs() == fresh.rungs() and dict(asha.rungs()[0].values) == {0: 4.0}


@pytest.mark.parametrize("name", ["median", "asha", "hyperband"])
def test_a_trial_continuing_from_its_checkpoint_after_a_coordinator_kill_meets_the_uninterrupted_decisions(
        name: str) -> None:
    """Review B M3: the resumed coordinator's scheduler holds the finished trials only (replay), and the running
    trial's earlier reports, restated by its new attempt, were kept from it: its first own report (step 11) was
    ranked at every ASHA rung below it (1, 3 and 9 at once) and was median's best so far, and stopped it. Restated
    reports are now noted (recorded, never ranked): the rungs and decisions are an uninterrupted run's."""
    finished = simulate(SCHEDULERS[name](), random_curves(24, seed=3), workers=3, lag=1).trials
    number = next(n for n in range(24, 100) if HyperbandScheduler(MAX, 27, seed=7).bracket_of(n) == 0)
    curve = [Report(step, 2.0 if step <= 10 else 0.0) for step in range(1, 28)]  # best early, then falls away
    live = SCHEDULERS[name]()
    live.replay(finished)
    uninterrupted = [stops(live, number, r) for r in curve]
    assert not any(uninterrupted)
    resumed = SCHEDULERS[name]()
    resumed.replay(finished)  # the attempt before the kill reported steps 1-10, then its checkpoint was saved
    for r in curve[:10]:  # restated by the new attempt: the runner's stops() notes them
        resumed.note(number, Report(r.step, r.value, restated=True))
    assert [stops(resumed, number, r) for r in curve[10:]] == uninterrupted[10:]
    if name != "median":
        assert _rungs(resumed) == _rungs(live)
        assert not any(stops(live, number, Report(r.step, r.value, restated=True)) for r in curve[:10])
        assert _rungs(resumed) == _rungs(live), "restated to the scheduler that saw them: nothing changes"


# -- Hyperband -------------------------------------------------------------------------------------------------

def test_hyperband_assigns_brackets_by_budget_deterministically() -> None:
    hb = HyperbandScheduler(MIN, 27, 1, 3, seed=11)
    assert hb.shares == (27, 12, 6, 4)  # ceil(4 * 3**s / (s + 1)) for s = 3, 2, 1, 0
    numbers = range(4900)
    brackets = [hb.bracket_of(n) for n in numbers]
    assert brackets == [HyperbandScheduler(MIN, 27, 1, 3, seed=11).bracket_of(n) for n in numbers]
    for b, share in enumerate(hb.shares):
        assert brackets.count(b) / len(brackets) == pytest.approx(share / 49, abs=0.02)
    other_seed = [HyperbandScheduler(MIN, 27, 1, 3, seed=12).bracket_of(n) for n in numbers]
    assert other_seed != brackets
    assert HyperbandScheduler(MIN, 27, 1, 3, brackets=2).shares == (27, 12)


def test_hyperband_brackets_have_their_own_rungs() -> None:
    hb = HyperbandScheduler(MIN, 27, 1, 3, seed=0)
    assert [b.rung_steps for b in hb.bracket_schedulers] == [(1, 3, 9), (3, 9), (9,), ()]
    in_bracket = {b: [n for n in range(200) if hb.bracket_of(n) == b] for b in range(4)}
    first0, second0 = in_bracket[0][:2]
    # Bracket 1 trials with excellent values at step 3 never compete with bracket 0's.
    for n in in_bracket[1][:5]:
        assert hb.on_report(n, Report(1, 0.0)) is C  # no rung at step 1 in bracket 1
        hb.on_report(n, Report(3, 0.01))
    assert hb.on_report(first0, Report(1, 0.5)) is C
    assert hb.on_report(first0, Report(3, 0.4)) is C  # alone in bracket 0's rung at 3
    assert hb.on_report(second0, Report(1, 0.6)) is S
    assert hb.rung_of(first0) == 1 and hb.rung_of(in_bracket[1][0]) == 0
    last = in_bracket[3][0]
    assert all(hb.on_report(last, Report(t, 99.0)) is C for t in range(1, 28))  # the last bracket never stops


# -- the median rule -------------------------------------------------------------------------------------------

def completed_losses(median: MedianScheduler, count: int, steps: Sequence[int] = range(1, 11),
                     first: int = 100) -> None:
    """Completed trials whose loss at step s is 10 - s (the median at s is 10 - s too)."""
    median.replay([record(first + i, TrialState.COMPLETED, [(s, 10.0 - s) for s in steps]) for i in range(count)])


@pytest.mark.parametrize("direction", [MIN, MAX])
def test_median_stops_a_trial_worse_than_the_median_after_warmup(direction: Direction) -> None:
    median = MedianScheduler(direction, warmup_steps=3, min_trials=5)
    median.replay([record(100 + i, TrialState.COMPLETED, [(s, signed(direction, [10.0 - s])[0])
                                                          for s in range(1, 11)]) for i in range(5)])
    bad = signed(direction, [9.5])[0]
    assert [median.on_report(0, Report(s, bad)) for s in (1, 2)] == [C, C]  # warm-up: never stopped
    assert median.on_report(0, Report(3, bad)) is S  # 9.5 is worse than the median 7
    good = signed(direction, [6.0])[0]
    assert [median.on_report(1, Report(s, good)) for s in (3, 4)] == [C, C]
    assert median.on_report(1, Report(5, signed(direction, [5.5])[0])) is S  # best 5.5 worse than median 5


def test_median_needs_min_trials_completed_at_the_step() -> None:
    median = MedianScheduler(MIN, min_trials=5)
    completed_losses(median, 4)
    median.replay([record(200, TrialState.PRUNED, [(1, 0.0)]), record(201, TrialState.FAILED, [(1, 0.0), (2, 0.0)])])
    assert median.on_report(0, Report(1, 100.0)) is C  # 4 completed: not enough; pruned and failed don't count
    completed_losses(median, 1, steps=(1,), first=104)  # a fifth, which only ran to step 1
    assert median.on_report(0, Report(2, 100.0)) is C  # only 4 reached step 2
    assert median.on_report(1, Report(1, 100.0)) is S  # 5 completed trials reached step 1


def test_median_compares_best_so_far_and_checks_on_the_interval() -> None:
    median = MedianScheduler(MIN, warmup_steps=2, min_trials=3, interval_steps=3)  # checks at 2, 5, 8
    completed_losses(median, 3)
    assert median.on_report(0, Report(1, 1.0)) is C
    assert median.on_report(0, Report(2, 50.0)) is C  # its best so far (1.0) beats the median 8
    assert [median.on_report(1, Report(s, 7.0)) for s in (2, 3, 4)] == [C, C, C]  # 7 > 6 at 4, but no check
    assert median.on_report(1, Report(6, 7.0)) is S  # skipped step 5: checked at the first report past it
    every_step = MedianScheduler(MIN, warmup_steps=2, min_trials=3)
    completed_losses(every_step, 3)
    assert [every_step.on_report(1, Report(s, 7.0)) for s in (2, 3, 4)] == [C, C, S]


def test_median_reads_completed_trials_on_another_grid_of_steps() -> None:
    median = MedianScheduler(MIN, min_trials=3)
    completed_losses(median, 3, steps=range(2, 11, 2))  # reports at even steps only
    assert median.on_report(0, Report(3, 7.5)) is C  # their value at 3 is the one at 2: 8
    assert median.on_report(1, Report(3, 8.5)) is S
    assert median.on_report(2, Report(11, 100.0)) is C  # none of them reached step 11


@pytest.mark.parametrize("warmup,interval", [(0, 1), (1, 1), (3, 1), (2, 3), (4, 2)])
@pytest.mark.parametrize("first_step", [0, 1], ids=["steps-from-0", "steps-from-1"])
def test_median_judges_at_the_steps_optunas_median_pruner_does(warmup: int, interval: int, first_step: int) -> None:
    """The convention, pinned against the installed Optuna: ``warmup_steps: N`` is a step number, as Optuna 5's
    ``n_warmup_steps`` ("the earliest a trial can be pruned is at step == n_warmup_steps"): the first check is the
    first report at or past step N, then every ``interval_steps``. A loop reporting 0, 1, 2, ... is therefore first
    judged at its (N+1)th report, one reporting 1, 2, 3, ... (steps as epochs done, ASHA's rungs) at its Nth."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    rng = random.Random(warmup * 10 + interval + 100 * first_step)
    steps = range(first_step, first_step + 10)
    stops = []
    for case in range(40):
        study = optuna.create_study(pruner=optuna.pruners.MedianPruner(
            n_startup_trials=3, n_warmup_steps=warmup, interval_steps=interval, n_min_trials=3))
        median = MedianScheduler(MIN, warmup_steps=warmup, min_trials=3, interval_steps=interval)
        for number in range(3):
            curve = [(s, rng.random()) for s in steps]
            done = study.ask()
            for s, v in curve:
                done.report(v, s)
            study.tell(done, curve[-1][1])
            median.on_finish(record(number, TrialState.COMPLETED, curve))
        judged = study.ask()
        reported = sorted(rng.sample(list(steps), rng.randint(1, len(steps))))  # some reports skip check steps
        optuna_stop = ours_stop = None
        for s in reported:
            v = rng.random()
            judged.report(v, s)
            if optuna_stop is None and judged.should_prune():
                optuna_stop = s
            if ours_stop is None and median.on_report(99, Report(s, v)) is S:
                ours_stop = s
        assert ours_stop == optuna_stop, (case, reported)
        assert ours_stop is None or ours_stop >= warmup
        stops.append(ours_stop)
    # the cases stop trials, some at the first check itself (where an off-by-one in the warm-up shows; with no
    # warm-up, the first report)
    assert sum(s is not None for s in stops) >= 5 and max(warmup, first_step) in stops, stops


# -- resources -------------------------------------------------------------------------------------------------

def test_resource_summary_counts_steps_against_full_runs() -> None:
    trials = [record(0, TrialState.COMPLETED, [(s, 1.0) for s in range(1, 28)]),
              record(1, TrialState.PRUNED, [(1, 2.0), (2, 2.0), (3, 2.0)]),
              record(2, TrialState.PRUNED, [(1, 3.0)]),
              record(3, TrialState.FAILED, [(1, 0.0), (20, 0.0)]),   # not the scheduler's doing: left out
              record(4, TrialState.RUNNING, [(1, 0.0)]),
              TrialRecord(number=5, state=TrialState.COMPLETED, params={}, seed=5, values=(1.0,))]  # no reports
    summary = resource_summary(trials, max_resource=27)
    # the trial without reports is left out (its steps are unknown), not counted as 27 steps run
    assert (summary.trials, summary.steps_used, summary.steps_full, summary.unreported) == (3, 27 + 3 + 1, 3 * 27, 1)
    assert summary.fraction_used == pytest.approx(31 / 81)
    assert summary.to_json()["fraction_saved"] == round(1 - 31 / 81, 4)
    assert resource_summary(trials).full_length == 27  # observed from the completed trials
    assert resource_summary([]).fraction_used == 1.0


@pytest.mark.parametrize("max_resource", [5, 20, 200, None])
def test_steps_saved_are_counted_against_max_resource_or_the_completed_trials_that_ran_past_it(max_resource) -> None:
    """Trials of 20 steps with max_resource 5 read `145 of 50 steps (-190% saved)`: completed trials that run past
    max_resource are the end. Short of it, max_resource is the end: one completed trial is no evidence of the
    others' length (it may have stopped itself), and it alone is no mismatch."""
    trials = [record(0, TrialState.COMPLETED, [(s, 1.0) for s in range(1, 21)]),
              record(1, TrialState.PRUNED, [(1, 2.0), (2, 2.0), (3, 2.0)]),
              record(2, TrialState.PRUNED, [(s, 2.0) for s in range(1, 25)])]  # ran past the others' end
    summary = resource_summary(trials, max_resource)
    end = max(max_resource or 0, 20)
    assert (summary.steps_used, summary.steps_full, summary.full_length) == (20 + 3 + 24, 2 * end + max(end, 24), end)
    assert 0 <= summary.fraction_saved == pytest.approx(1 - 47 / summary.steps_full)
    assert summary.length_mismatch is (max_resource == 5)
    warning = summary.length_warning("asha")
    assert (warning is None) is (max_resource != 5)
    if warning is not None:
        assert warning.startswith("scheduler.max_resource is 5, but trial 0 completed after 20 steps, well past it")
    # before any trial completed: max_resource, each trial that ran past it counted at its own steps
    running = resource_summary(trials[1:3], max_resource)
    length = max_resource or 24
    assert (running.full_length, running.steps_full) == (length, max(length, 3) + max(length, 24))
    assert running.fraction_saved >= 0 and not running.length_mismatch


def test_a_trial_that_stopped_itself_early_is_not_the_end_of_a_run() -> None:
    """ASHA `max_resource: 40`; trial 0 stopped itself at epoch 12 (Keras EarlyStopping), ASHA pruned the others: the
    run warned `set scheduler.max_resource to the steps a trial runs (12)` and show read `15 of 48 steps`."""
    trials = [record(0, TrialState.COMPLETED, [(s, 1.0) for s in range(1, 13)]),
              record(1, TrialState.PRUNED, [(1, 2.0)]),
              record(2, TrialState.PRUNED, [(1, 2.0)]),
              record(3, TrialState.PRUNED, [(1, 2.0)])]
    summary = resource_summary(trials, 40)
    assert (summary.steps_used, summary.steps_full, summary.full_length) == (15, 160, 40)
    assert summary.length_warning("asha") is None


def test_a_loop_reporting_every_fifth_epoch_from_0_ran_its_epochs() -> None:
    """Reports at epochs 0, 5, 10, 15 of range(20) read 16 steps: against `max_resource: 20`, a false mismatch."""
    trials = [record(n, TrialState.COMPLETED, [(s, 1.0) for s in range(0, 20, 5)]) for n in range(4)]
    summary = resource_summary(trials, 20)
    assert (summary.steps_used, summary.steps_full, summary.length_mismatch) == (80, 80, False)
    assert steps_run(record(0, TrialState.PRUNED, [(0, 1.0)])) == 1
    assert steps_run(record(0, TrialState.PRUNED, [(5, 1.0), (10, 1.0)])) == 10


def test_a_loop_reporting_every_25th_epoch_and_its_last_ran_its_epochs_not_more() -> None:
    """Reports at 0, 25, 50, 75, 99 of range(100) read 123 steps (the last step plus the smallest gap), and the run
    warned `trial 0 completed after 123 steps, well past it`; reports at 0 and 99 read 198."""
    every_25th = [record(n, TrialState.COMPLETED, [(s, 1.0) for s in (0, 25, 50, 75, 99)]) for n in range(3)]
    summary = resource_summary(every_25th, 100)
    assert (summary.steps_used, summary.steps_full, summary.length_warning("asha")) == (300, 300, None)
    assert steps_run(every_25th[0]) == 100
    assert steps_run(record(0, TrialState.COMPLETED, [(0, 1.0), (99, 1.0)])) == 100
    # a pruned trial stopped at its last report: 0, 25 is 26 epochs, whatever max_resource is
    assert steps_run(record(0, TrialState.PRUNED, [(0, 1.0), (25, 1.0)]), 100) == 26
    # every 5th epoch of range(20) against a max_resource of 200: still too large, said at the 16 steps reported
    short = resource_summary([record(n, TrialState.COMPLETED, [(s, 1.0) for s in range(0, 20, 5)])
                              for n in range(3)], 200)
    assert short.mismatch is not None and short.mismatch.observed == 16


def test_a_too_large_max_resource_is_told_when_completed_trials_agree_and_none_got_near_it() -> None:
    def completed(n: int, last: int) -> TrialRecord:
        return record(n, TrialState.COMPLETED, [(s, 1.0) for s in range(1, last + 1)])

    pruned = record(9, TrialState.PRUNED, [(1, 2.0)])
    # three trials of 20 steps under max_resource 200: said, and counted against max_resource
    agreed = resource_summary([completed(4, 20), pruned, completed(5, 20), completed(6, 20)], 200)
    assert agreed.full_length == 200 and agreed.length_mismatch
    assert agreed.length_warning("asha") == (
        "scheduler.max_resource is 200, but 3 completed trials (trial 4 first) ended after 20 steps and no trial got "
        "near it: the asha scheduler lays out its checks for trials of 200 steps, so its checks above step 20 are "
        "never reached; set scheduler.max_resource to the steps a trial runs (20), or, where a trial's length is a "
        "tuned parameter (epochs), to that parameter's high. The steps saved are counted against max_resource (200)")
    # not said where the length is tuned (each agreeing trial ran its own value of an int parameter whose high is
    # max_resource, up to a report stride past its last report), or a completed trial ran well past the agreed
    # length (trials have lengths of their own)
    def tuned(n: int, epochs: int, every: int = 1) -> TrialRecord:
        return dataclasses.replace(record(n, TrialState.COMPLETED, [(s, 1.0) for s in range(0, epochs, every)]),
                                   params={"epochs": epochs, "batch_size": 64})
    assert not resource_summary([tuned(4, 20), tuned(5, 20), tuned(6, 20)], 200, ("epochs",)).length_mismatch
    assert not resource_summary([tuned(4, 23, 5), tuned(5, 23, 5), tuned(6, 23, 5)], 200, ("epochs",)).length_mismatch
    # ...but a parameter of that high is not the length for that alone (review-d 14): batch_size's 64 is not 20
    assert resource_summary([tuned(4, 20), tuned(5, 20), tuned(6, 20)], 200, ("batch_size",)).length_mismatch
    assert not resource_summary([completed(4, 20), completed(5, 20), completed(6, 20), completed(7, 60)],
                                200).length_mismatch
    # two, where they are every completed trial: said (under ASHA only the top rung's survivors complete: trials of
    # 9 steps under max_resource 100 read "98% saved" without a word)
    both = resource_summary([completed(0, 9), pruned, record(10, TrialState.PRUNED, [(1, 2.0), (3, 2.0)]),
                             completed(1, 9)], 100)
    assert both.length_mismatch and both.length_warning("asha").startswith(  # type: ignore[union-attr]
        "scheduler.max_resource is 100, but 2 completed trials (trial 0 first) ended after 9 steps")
    # not said: two agreeing of three completed, trials that each stopped themselves, or one that got near it
    assert not resource_summary([completed(0, 20), completed(1, 20), completed(2, 30)], 200).length_mismatch
    assert not resource_summary([completed(n, 12 + n) for n in range(5)], 200).length_mismatch
    assert not resource_summary([completed(0, 12), completed(1, 12), completed(2, 12), completed(3, 30),
                                 completed(4, 31), completed(5, 32)], 40).length_mismatch  # 3 of 6: no majority
    near = record(8, TrialState.PRUNED, [(s, 2.0) for s in range(1, 191)])
    assert not resource_summary([completed(4, 20), completed(5, 20), completed(6, 20), near], 200).length_mismatch


class _CountingCalls:
    """Counts the Python and builtin calls made while it is on (sys.setprofile): work, not time."""

    def __init__(self) -> None:
        self.calls = 0

    def __enter__(self) -> _CountingCalls:
        sys.setprofile(self._count)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.setprofile(None)

    def _count(self, frame: Any, event: str, arg: Any) -> None:
        if event in ("call", "c_call"):
            self.calls += 1


def test_counting_a_finished_trial_does_not_go_over_the_trials_before_it() -> None:
    """ResourceTally.summary() went over every trial counted, and the run's warning and the live metrics called it
    for each finished trial: 20k trials took 26.8 s per listener. The calls one more trial costs must not grow with
    the trials before it."""
    from tunesmith.monitoring.metrics import TuningMetrics
    from tunesmith.records import ExperimentRecord, RunStatus
    from tunesmith.scheduler.resources import ResourceTally

    spec = {"name": "unit", "objective": {"metric": "loss", "direction": "minimize"},
            "space": {"x": {"type": "float", "low": 0, "high": 1}}, "trial": {"command": "true"},
            "scheduler": {"name": "asha", "max_resource": 27}}
    experiment = ExperimentRecord(id=1, name="unit", spec=spec, strategy="random", strategy_reason="",
                                  status=RunStatus.RUNNING, created_at=0.0, updated_at=0.0)

    def cost(before: int) -> tuple[int, int, int]:
        tally, evidence, metrics = ResourceTally(27), SchedulerEvidence("asha", 27), TuningMetrics()
        metrics.experiment_seen(experiment, True)
        for n in range(before):
            done = (record(n, TrialState.PRUNED, [(s, 1.0) for s in range(1, 2 + n % 3)]) if n % 4
                    else record(n, TrialState.COMPLETED, [(s, 1.0) for s in range(1, 28)]))  # no warning said
            tally.add(done)
            evidence.trial_finished(done, None)
            metrics.trial_finished(done)
        last = record(before, TrialState.PRUNED, [(1, 1.0), (2, 1.0)])
        with _CountingCalls() as summing:
            tally.add(last)
            tally.summary()
        with _CountingCalls() as warning:
            evidence.trial_finished(last, None)
        with _CountingCalls() as gauges:
            metrics.trial_finished(last)
        return summing.calls, warning.calls, gauges.calls

    assert cost(10) == cost(2000)


@pytest.mark.parametrize("observed,mismatch", [(27, False), (26, False), (28, False), (24, True), (30, True)])
def test_a_trial_length_close_to_max_resource_is_no_mismatch(observed, mismatch) -> None:
    from tunesmith.scheduler.resources import length_mismatch

    assert length_mismatch(27, observed) is mismatch
    assert not length_mismatch(None, observed) and not length_mismatch(27, None)


@pytest.mark.parametrize("max_resource", [9, None], ids=["declared", "observed"])
def test_a_loop_reporting_from_step_0_saves_what_one_reporting_from_step_1_saves(max_resource) -> None:
    """A loop over range(n) reporting its epoch (0..n-1) read one step short per trial: a trial stopped after 3
    epochs had used 2, a completed one 8 of 9, so the 0-based run showed more saved than the same 1-based run."""
    def trials(first: int) -> list[TrialRecord]:
        return [record(0, TrialState.COMPLETED, [(first + i, 1.0) for i in range(9)]),
                record(1, TrialState.PRUNED, [(first + i, 2.0) for i in range(3)]),
                record(2, TrialState.PRUNED, [(first, 3.0)])]

    one_based, zero_based = resource_summary(trials(1), max_resource), resource_summary(trials(0), max_resource)
    assert (one_based.steps_used, one_based.steps_full, one_based.full_length) == (9 + 3 + 1, 27, 9)
    assert zero_based == one_based


def test_asha_on_the_issue_setting_uses_at_most_35_percent_of_the_steps() -> None:
    curves = random_curves(81, seed=0)
    result = simulate(ASHAScheduler(MAX, 27, 1, 3), curves, workers=8)
    assert resource_summary(result.trials, 27).fraction_used <= 0.35
    full_best = max(c.reports[-1].value for c in curves)
    best = max(t.values[0] for t in result.trials if t.state is TrialState.COMPLETED and t.values)
    assert best >= 0.95 * full_best


# -- the spec section and build_scheduler ----------------------------------------------------------------------

class _Spec(StrictModel):
    scheduler: SchedulerChoice = Field(default_factory=NoSchedulerConfig)


@pytest.mark.parametrize(("given", "expected"), [
    ({}, NoSchedulerConfig()),
    ({"scheduler": None}, NoSchedulerConfig()),
    ({"scheduler": "none"}, NoSchedulerConfig()),
    ({"scheduler": "median"}, MedianConfig(warmup_steps=0, min_trials=5, interval_steps=1)),
    ({"scheduler": {"name": "asha", "max_resource": 27}},
     ASHAConfig(min_resource=1, max_resource=27, reduction_factor=3, min_early_stopping_rate=0)),
    ({"scheduler": {"name": "hyperband", "min_resource": 2, "max_resource": 54, "brackets": 2}},
     HyperbandConfig(min_resource=2, max_resource=54, reduction_factor=3, brackets=2)),
])
def test_scheduler_section_forms(given: dict[str, Any], expected: StrictModel) -> None:
    got = _Spec.model_validate(given).scheduler
    assert got == expected
    assert _Spec.model_validate({"scheduler": got.model_dump(mode="json", exclude_none=True)}).scheduler == got


def spec_error(section: Any) -> SpecError:
    data = {"scheduler": section}
    with pytest.raises(ValidationError) as info:
        _Spec.model_validate(data)
    return format_validation_error(info.value, data)


ASHA = {"name": "asha", "max_resource": 27}
HB = {"name": "hyperband", "max_resource": 27}


@pytest.mark.parametrize(("section", "field", "message"), [
    ("asha", "", "`scheduler: asha` needs max_resource; write {name: asha, max_resource: 27}"),
    ("hyperband", "", "needs max_resource"),
    ("ashaa", "", "unknown scheduler 'ashaa'; did you mean 'asha'? choose one of none, median, asha, hyperband"),
    ({"max_resource": 27}, "", "missing `name`"),
    (3, "", "must be a scheduler name"),
    ({"name": "asha"}, "max_resource", "this field is required: the step at which a trial is fully trained (its "
                                       "last epoch or iteration), e.g. scheduler: {name: asha, max_resource: 27}"),
    ({**ASHA, "min_resource": 0}, "min_resource", "greater than or equal to 1; got 0"),
    ({**ASHA, "max_resource": True}, "max_resource", "valid integer; got True"),
    ({**ASHA, "min_resource": 27}, "max_resource", "must be > min_resource=27; got 27"),
    ({**ASHA, "reduction_factor": 1}, "reduction_factor", "greater than or equal to 2; got 1"),
    ({**ASHA, "min_early_stopping_rate": -1}, "min_early_stopping_rate", "greater than or equal to 0; got -1"),
    ({**ASHA, "min_early_stopping_rate": 3}, "min_early_stopping_rate",
     "first rung would be at step 27; got 3 (use at most 2)"),
    ({**ASHA, "reduction_factr": 2}, "reduction_factr", "did you mean 'reduction_factor'?"),
    ({**ASHA, "warmup_steps": 2}, "warmup_steps", "unknown key 'warmup_steps'"),
    ({"name": "median", "warmup_steps": -1}, "warmup_steps", "greater than or equal to 0; got -1"),
    ({"name": "median", "min_trials": 0}, "min_trials", "greater than or equal to 1; got 0"),
    ({"name": "median", "interval_steps": 0}, "interval_steps", "greater than or equal to 1; got 0"),
    ({"name": "median", "interval_steps": "2"}, "interval_steps", "valid integer; got '2'"),
    ({"name": "hyperband", "brackets": 2}, "max_resource",
     "e.g. scheduler: {name: hyperband, brackets: 2, max_resource: 27}"),
    ({**HB, "max_resource": 1}, "max_resource", "must be > min_resource=1; got 1"),
    ({**HB, "brackets": 0}, "brackets", "greater than or equal to 1; got 0"),
    ({**HB, "brackets": 5}, "brackets", "must be <= 4"),
    ({**HB, "reduction_factor": 0}, "reduction_factor", "greater than or equal to 2; got 0"),
])
def test_scheduler_section_errors_name_the_field_and_the_fix(section: Any, field: str, message: str) -> None:
    err = spec_error(section)
    name = section.get("name") if isinstance(section, dict) else None
    if field:
        # The union's tag may sit in the path (scheduler.asha.max_resource) until the loader drops it.
        assert err.path in (f"scheduler.{field}", f"scheduler.{name}.{field}")
    else:
        assert err.path == "scheduler"
    assert message in err.message


def test_build_scheduler_follows_the_section() -> None:
    assert isinstance(build_scheduler(NoSchedulerConfig(), MIN, 0), NoScheduler)
    median = build_scheduler(MedianConfig(warmup_steps=3, min_trials=2, interval_steps=4), MAX, 0)
    assert isinstance(median, MedianScheduler)
    assert (median.direction, median.warmup_steps, median.min_trials, median.interval_steps) == (MAX, 3, 2, 4)
    asha = build_scheduler(ASHAConfig(min_resource=2, max_resource=50, reduction_factor=2,
                                      min_early_stopping_rate=1), MIN, 0)
    assert isinstance(asha, ASHAScheduler) and asha.rung_steps == (4, 8, 16, 32)
    hb = build_scheduler(HyperbandConfig(max_resource=27, brackets=3), MAX, 5)
    assert isinstance(hb, HyperbandScheduler) and (len(hb.bracket_schedulers), hb.seed) == (3, 5)
