"""Pick candidates from finished trials: the best trial, the Pareto front."""

from __future__ import annotations

from collections.abc import Sequence

from tunesmith.records import ObjectiveSpec, TrialRecord, TrialState


def completed(trials: Sequence[TrialRecord]) -> list[TrialRecord]:
    return [t for t in trials if t.state is TrialState.COMPLETED and t.values is not None]


def _key(objectives: Sequence[ObjectiveSpec], t: TrialRecord) -> tuple[float, ...]:
    """Values turned so that smaller is better for every objective."""
    assert t.values is not None
    return tuple(v if o.direction.value == "minimize" else -v for o, v in zip(objectives, t.values, strict=True))


def ranked(trials: Sequence[TrialRecord], objectives: Sequence[ObjectiveSpec]) -> list[TrialRecord]:
    """Completed trials, best first (lexicographic on the objectives; ties by trial number)."""
    return sorted(completed(trials), key=lambda t: (_key(objectives, t), t.number))


def best_trial(trials: Sequence[TrialRecord], objectives: Sequence[ObjectiveSpec]) -> TrialRecord | None:
    """The best completed trial. With several objectives: the Pareto-optimal trial best on the first objective."""
    if len(objectives) > 1:
        front = pareto_front(trials, objectives)
        return front[0] if front else None
    r = ranked(trials, objectives)
    return r[0] if r else None


def pareto_front(trials: Sequence[TrialRecord], objectives: Sequence[ObjectiveSpec]) -> list[TrialRecord]:
    """Completed trials that no other completed trial dominates, sorted by the first objective."""
    # In lexicographic order a trial can only be dominated by one before it, and whatever dominates it is on the
    # front or dominated by a front member: checking the front so far is enough (n x front, not n^2).
    candidates = sorted(((t, _key(objectives, t)) for t in completed(trials)), key=lambda p: (p[1], p[0].number))
    front: list[tuple[TrialRecord, tuple[float, ...]]] = []
    for t, k in candidates:
        dominated = any(all(a <= b for a, b in zip(o, k, strict=True)) and o != k for _, o in front)
        if not dominated:
            front.append((t, k))
    return [t for t, _ in front]


class RunningBest:
    """The best trial so far, updated one finished trial at a time (O(1) per trial for one objective).

    With several objectives the Pareto front is recomputed, since a new trial can change which member is best.
    """

    def __init__(self, objectives: Sequence[ObjectiveSpec], trials: Sequence[TrialRecord] = ()) -> None:
        self.objectives = tuple(objectives)
        self._all: list[TrialRecord] = list(trials)
        self._best = best_trial(self._all, self.objectives)

    def offer(self, trial: TrialRecord) -> TrialRecord | None:
        """Take one more finished trial into account; returns the best so far."""
        self._all.append(trial)
        if len(self.objectives) > 1:
            self._best = best_trial(self._all, self.objectives)
        elif trial.state is TrialState.COMPLETED and trial.values is not None and (
                self._best is None or _key(self.objectives, trial) < _key(self.objectives, self._best)):
            self._best = trial
        return self._best


def eligible(trials: Sequence[TrialRecord], exclude_unstable: bool) -> list[TrialRecord]:
    """Trials selection may pick: all, or those not flagged unstable (fold spread over the task's threshold)."""
    if not exclude_unstable:
        return list(trials)
    return [t for t in trials if not t.metrics.get("unstable")]


def best_eligible(trials: Sequence[TrialRecord], objectives: Sequence[ObjectiveSpec],
                  exclude_unstable: bool = False) -> TrialRecord | None:
    """The best trial that selection may pick (a task may exclude configurations flagged unstable)."""
    return best_trial(eligible(trials, exclude_unstable), objectives)
