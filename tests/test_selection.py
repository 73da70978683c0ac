"""Selection: best trial, running best, Pareto front."""

from __future__ import annotations

import random

import pytest

from tunesmith.records import Direction, ObjectiveSpec, TrialRecord, TrialState
from tunesmith.selection import RunningBest, best_trial, pareto_front, ranked

MIN = ObjectiveSpec("loss", Direction.MINIMIZE)
MAX = ObjectiveSpec("acc", Direction.MAXIMIZE)


def trial(number: int, *values: float, state: TrialState = TrialState.COMPLETED) -> TrialRecord:
    return TrialRecord(number=number, state=state, params={}, seed=0,
                       values=tuple(values) if state is TrialState.COMPLETED else None)


@pytest.mark.parametrize("objectives", [[MIN], [MAX], [MIN, MAX]], ids=["min", "max", "min-max"])
def test_running_best_agrees_with_best_trial_on_every_prefix(objectives):
    # several objectives: one comparison per trial keeps the Pareto member best on the first (no front recomputed)
    rng = random.Random(7)
    trials = [trial(i, *(round(rng.random(), 1) for _ in objectives),
                    state=rng.choice([TrialState.COMPLETED] * 3 + [TrialState.FAILED])) for i in range(300)]
    running = RunningBest(objectives)
    for i, t in enumerate(trials):
        assert running.offer(t) == best_trial(trials[: i + 1], objectives)


def test_ties_go_to_the_earlier_trial():
    assert best_trial([trial(3, 0.5), trial(1, 0.5), trial(2, 0.7)], [MIN]).number == 1
    running = RunningBest([MIN], [trial(0, 0.5)])
    assert running.offer(trial(1, 0.5)).number == 0


def test_ranked_respects_directions():
    ts = [trial(0, 0.2), trial(1, 0.9), trial(2, 0.5), trial(3, 0.1, state=TrialState.FAILED)]
    assert [t.number for t in ranked(ts, [MAX])] == [1, 2, 0]
    assert [t.number for t in ranked(ts, [MIN])] == [0, 2, 1]


def test_pareto_front_with_mixed_directions():
    # minimize loss, maximize accuracy
    ts = [trial(0, 0.1, 0.5), trial(1, 0.2, 0.9), trial(2, 0.3, 0.8), trial(3, 0.1, 0.4), trial(4, 0.05, 0.3),
          trial(5, 0.2, 0.9)]
    front = pareto_front(ts, [MIN, MAX])
    assert [t.number for t in front] == [4, 0, 1, 5]  # 2 is dominated by 1; 3 by 0; 1 and 5 tie
    assert best_trial(ts, [MIN, MAX]).number == 4
    running = RunningBest([MIN, MAX])
    for t in ts:
        running.offer(t)
    assert running.offer(trial(6, 1.0, 0.0)).number == 4


def test_running_best_leaves_out_unstable_trials_when_the_task_excludes_them():
    """The live best ranked a trial flagged unstable that show's best (best_eligible) leaves out."""
    unstable = TrialRecord(number=0, state=TrialState.COMPLETED, params={}, seed=0, values=(0.1,),
                           metrics={"unstable": 1.0})
    stable = trial(1, 0.5)
    running = RunningBest([MIN], exclude_unstable=True)
    assert running.offer(unstable) is None and running.offer(stable) == stable
    assert RunningBest([MIN], [unstable, stable], exclude_unstable=False).offer(trial(2, 0.9)) == unstable
