"""Pick candidates from finished trials: the best trial, the Pareto front, and the one trial a policy selects.

:func:`select_trial` is the one entry point for "which trial do we ship": ``show`` reports it and promotion uses
the same call, so both always agree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tunesmith.constraints import Constraint
from tunesmith.records import ObjectiveSpec, TrialRecord, TrialState
from tunesmith.spec.selection_config import SelectConfig
from tunesmith.suggestions import closest


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
    """The best trial so far that selection may pick (see ``selectable``), updated one finished trial at a time in
    O(1): what ``show`` calls best, as a run goes. The budget's ``target`` and ``patience``, the progress display
    and the Prometheus best series all read it, so none of them counts a trial ``show`` would not call best.

    With several objectives the best is the Pareto-optimal trial best on the first objective (``best_trial``):
    the lexicographic minimum of the selectable trials, which no trial dominates, so one comparison keeps it.
    """

    def __init__(self, objectives: Sequence[ObjectiveSpec], trials: Sequence[TrialRecord] = (),
                 constraints: Sequence[Constraint] = (), exclude_unstable: bool = False) -> None:
        self.objectives = tuple(objectives)
        self.constraints = tuple(constraints)  # a trial selection would not pick is never the best
        self.exclude_unstable = exclude_unstable
        self._best = best_trial(selectable(trials, self.objectives, self.constraints, exclude_unstable),
                                self.objectives)

    @property
    def best(self) -> TrialRecord | None:
        """The best selectable trial offered so far, or None."""
        return self._best

    def offer(self, trial: TrialRecord) -> TrialRecord | None:
        """Take one more finished trial into account; returns the best selectable trial so far."""
        if not selectable([trial], self.objectives, self.constraints, self.exclude_unstable):
            return self._best
        if self._best is None or (_key(self.objectives, trial), trial.number) < (
                _key(self.objectives, self._best), self._best.number):
            self._best = trial
        return self._best


def eligible(trials: Sequence[TrialRecord], exclude_unstable: bool) -> list[TrialRecord]:
    """Trials selection may pick: all, or those not flagged unstable (fold spread over the task's threshold)."""
    if not exclude_unstable:
        return list(trials)
    return [t for t in trials if not t.metrics.get("unstable")]


def best_eligible(trials: Sequence[TrialRecord], objectives: Sequence[ObjectiveSpec],
                  exclude_unstable: bool = False, constraints: Sequence[Constraint] = ()) -> TrialRecord | None:
    """The best trial that selection may pick (a task may exclude configurations flagged unstable; constraints
    exclude trials that violate them or lack their metric)."""
    return best_trial(selectable(trials, objectives, constraints, exclude_unstable), objectives)


def selectable(trials: Sequence[TrialRecord], objectives: Sequence[ObjectiveSpec], constraints: Sequence[Constraint],
               exclude_unstable: bool) -> list[TrialRecord]:
    """The completed trials selection may pick: satisfying the constraints and, when the task excludes them, not
    flagged unstable. What show's best, the best-trials table and the live best all rank."""
    return feasible(eligible(trials, exclude_unstable), objectives, constraints)


def trial_metrics(t: TrialRecord, objectives: Sequence[ObjectiveSpec]) -> dict[str, float]:
    """Everything a constraint may name: the trial's metrics and its objective values."""
    return {**t.metrics, **(t.value_map(tuple(objectives)) or {})}


def feasible(trials: Sequence[TrialRecord], objectives: Sequence[ObjectiveSpec],
             constraints: Sequence[Constraint]) -> list[TrialRecord]:
    """Completed trials that satisfy every constraint (a trial missing a constrained metric does not)."""
    return [t for t in completed(trials)
            if all(c.satisfied(trial_metrics(t, objectives)) for c in constraints)]


@dataclass(frozen=True, slots=True)
class Selection:
    """The trial a policy picked, and why; ``front`` is the feasible Pareto front it was picked from."""

    trial: TrialRecord
    policy: str
    reason: str
    front: tuple[TrialRecord, ...]
    feasible_trials: int

    def to_json(self) -> dict[str, object]:
        return {"number": self.trial.number, "policy": self.policy, "reason": self.reason}


def select_trial(trials: Sequence[TrialRecord], objectives: Sequence[ObjectiveSpec],
                 constraints: Sequence[Constraint] = (), policy: SelectConfig | str = "best",
                 exclude_unstable: bool = False) -> Selection | None:
    """The one trial to ship: ``policy`` applied to the Pareto front of the feasible, eligible trials.

    Policies (see :class:`SelectConfig`): ``best`` (first objective, then the next ones), ``knee`` (two
    objectives: farthest from the line joining the front's extremes; more: nearest the ideal point, objectives
    scaled to the front's range), ``weights`` (smallest weighted sum of the scaled objectives), ``lexicographic``
    (objectives in the given order), ``constraint_first`` (the most slack on the tightest constraint).

    Returns None when no completed trial satisfies the constraints.
    """
    config = SelectConfig(policy=policy) if isinstance(policy, str) else policy
    objectives = tuple(objectives)
    ok = feasible(eligible(trials, exclude_unstable), objectives, constraints)
    front = tuple(pareto_front(ok, objectives))
    if not front:
        return None
    n_done = len(completed(trials))
    where = (f"{len(ok)} of {n_done} completed trials feasible" + (f" ({', '.join(map(str, constraints))})"
             if constraints else "") + f", {len(front)} on their Pareto front")
    chosen, why = _POLICIES[config.policy](front, objectives, constraints, config)
    return Selection(chosen, config.policy, f"{why}; {where}", front, len(ok))


def unrecorded_constraint(done: Sequence[TrialRecord], objectives: Sequence[ObjectiveSpec],
                          constraints: Sequence[Constraint]) -> str:
    """``": none of the N records 'metric' (constraint '...'); did you mean ...?"`` for the first constraint whose
    metric no trial in ``done`` records (a typo in its name makes every trial infeasible), else ``""``."""
    if not done:   # nothing completed: no metric can be said to be missing
        return ""
    recorded = sorted(set().union(*(set(t.metrics) | set(t.value_map(tuple(objectives)) or {}) for t in done)))
    for c in constraints:
        if c.metric not in recorded:
            close = closest(c.metric, recorded)
            hint = f"did you mean {close!r}?" if close else f"they record {', '.join(recorded[:12]) or 'nothing'}"
            return f": none of the {len(done)} records {c.metric!r} (constraint '{c}'); {hint}"
    return ""


def selected_trial(trials: Sequence[TrialRecord], objectives: Sequence[ObjectiveSpec],
                   constraints: Sequence[Constraint] = (), policy: SelectConfig | str = "best",
                   exclude_unstable: bool = False) -> TrialRecord | None:
    """The trial :func:`select_trial` picks, or None."""
    selection = select_trial(trials, objectives, constraints, policy, exclude_unstable)
    return selection.trial if selection else None


_Front = Sequence[TrialRecord]
_Objectives = Sequence[ObjectiveSpec]
_Constraints = Sequence[Constraint]
_Pick = tuple[TrialRecord, str]


def _minimised(front: Sequence[TrialRecord], objectives: Sequence[ObjectiveSpec]) -> list[tuple[float, ...]]:
    """Each member's objectives scaled to [0, 1] over the front, 0 the best (a constant objective scales to 0)."""
    keys = [_key(objectives, t) for t in front]
    lows = [min(k[i] for k in keys) for i in range(len(objectives))]
    spans = [max(k[i] for k in keys) - lows[i] for i in range(len(objectives))]
    return [tuple((k[i] - lows[i]) / spans[i] if spans[i] > 0 else 0.0 for i in range(len(k))) for k in keys]


def _by_best(front: _Front, objectives: _Objectives, constraints: _Constraints, config: SelectConfig) -> _Pick:
    chosen = ranked(front, objectives)[0]
    return chosen, f"best {objectives[0].metric} ({objectives[0].direction.value})"


def _by_lexicographic(front: _Front, objectives: _Objectives, constraints: _Constraints, config: SelectConfig) -> _Pick:
    index = {o.metric: i for i, o in enumerate(objectives)}
    order = [index[m] for m in config.lexicographic] + [i for i in range(len(objectives))
                                                        if objectives[i].metric not in config.lexicographic]
    chosen = min(front, key=lambda t: (tuple(_key(objectives, t)[i] for i in order), t.number))
    return chosen, f"lexicographic on {', '.join(objectives[i].metric for i in order)}"


def _by_weights(front: _Front, objectives: _Objectives, constraints: _Constraints, config: SelectConfig) -> _Pick:
    weights = [config.weights.get(o.metric, 0.0) for o in objectives]
    scaled = _minimised(front, objectives)
    scores = [sum(w * v for w, v in zip(weights, s, strict=True)) for s in scaled]
    i = min(range(len(front)), key=lambda j: (scores[j], front[j].number))
    named = ", ".join(f"{o.metric}={w:g}" for o, w in zip(objectives, weights, strict=True))
    return front[i], (f"smallest weighted sum ({scores[i]:.3g}) of the objectives scaled to the front's range, "
                      f"weights {named}")


def _by_knee(front: _Front, objectives: _Objectives, constraints: _Constraints, config: SelectConfig) -> _Pick:
    if len(front) < 3:
        chosen, _ = _by_best(front, objectives, constraints, config)
        return chosen, f"knee undefined on a front of {len(front)}: best {objectives[0].metric}"
    scaled = _minimised(front, objectives)
    if len(objectives) == 2:
        # The extremes of a 2-D front scale to (0, 1) and (1, 0): the line x + y = 1. The knee is the member
        # farthest below it, where giving up some of one objective buys the most of the other.
        gains = [(1.0 - s[0] - s[1]) / math.sqrt(2) for s in scaled]
        i = max(range(len(front)), key=lambda j: (gains[j], -front[j].number))
        if gains[i] > 0:
            return front[i], f"knee: farthest ({gains[i]:.3g}, scaled) from the line joining the front's two extremes"
    dist = [math.sqrt(sum(v * v for v in s)) for s in scaled]
    i = min(range(len(front)), key=lambda j: (dist[j], front[j].number))
    bend = "no member below the line joining the extremes, so " if len(objectives) == 2 else ""
    return front[i], f"knee: {bend}nearest ({dist[i]:.3g}, scaled) to the ideal point of the front"


def _by_constraint_slack(front: _Front, objectives: _Objectives, constraints: _Constraints,
                         config: SelectConfig) -> _Pick:
    if not constraints:
        chosen, why = _by_best(front, objectives, constraints, config)
        return chosen, f"no constraints to keep a margin on: {why}"

    def slack(t: TrialRecord) -> float:
        m: Mapping[str, float] = trial_metrics(t, objectives)
        return min(-c.violation(m) / max(abs(c.bound), 1e-12) for c in constraints)

    chosen = min(front, key=lambda t: (-slack(t), _key(objectives, t), t.number))
    return chosen, (f"constraint_first: the largest margin on the tightest constraint ({slack(chosen):.3g} of its "
                    "bound)")


_POLICIES = {"best": _by_best, "lexicographic": _by_lexicographic, "weights": _by_weights, "knee": _by_knee,
             "constraint_first": _by_constraint_slack}


@dataclass(frozen=True, slots=True)
class SelectionRule:
    """How a run picks the trial it ships: its objectives, constraints, ``select`` policy and whether trials flagged
    unstable are excluded. A run's final pick and each inner search of its nested estimate apply the same rule, so
    the nested estimate estimates the procedure the run really follows."""

    objectives: tuple[ObjectiveSpec, ...]
    constraints: tuple[Constraint, ...] = ()
    policy: SelectConfig = field(default_factory=SelectConfig)
    exclude_unstable: bool = False

    def pick(self, trials: Sequence[TrialRecord]) -> Selection | None:
        """:func:`select_trial` under this rule; None when no completed trial is selectable."""
        return select_trial(trials, self.objectives, self.constraints, self.policy, self.exclude_unstable)
