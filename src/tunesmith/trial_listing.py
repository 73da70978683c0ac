"""Which trials `tunesmith trials` lists and in what order (``--state``, ``--sort``, ``--limit``): one choice for the
table, ``--json`` and ``--csv`` alike, so that "the 10 best" or "the failed ones" need no ``--json | jq``; and one
trial's log (``--log N``), which the table does not name."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from tunesmith.errors import UserInputError
from tunesmith.records import Direction, ExperimentRecord, TrialRecord, TrialState
from tunesmith.storage.base import TrialStore
from tunesmith.suggestions import closest, listed
from tunesmith.summary import objectives_of


def read_listed(store: TrialStore, experiment: ExperimentRecord, states: Sequence[str] = (), sort: str | None = None,
                limit: int | None = None, curves: bool = False) -> tuple[list[TrialRecord], int]:
    """The trials :func:`listed_trials` chooses, read from ``store``, and how many trials the experiment has.

    Chosen from the trials read without their learning curves (the table shows none); with ``curves`` (``--json``
    and ``--csv`` print them) those chosen are read again, with theirs: ``trials --limit 10 --json`` of a long run
    reads ten trials' reports, not every trial's (100 reports a trial are most of what it stores). A trial read again
    is as it is then: one of a live run may have moved on since it was chosen.
    """
    everything = not states and limit is None  # (all of them, in any order: one read, sorted in memory)
    every = store.trials(experiment.id, curves=curves and everything)
    chosen = listed_trials(experiment, every, states, sort, limit)
    if curves and not everything and chosen:
        again = {t.number: t for t in store.trials(experiment.id, [t.number for t in chosen])}
        chosen = [again.get(t.number, t) for t in chosen]
    return chosen, len(every)


def trial_log(store: TrialStore, experiment: ExperimentRecord, number: int) -> str:
    """The text of trial ``number``'s log, every attempt of it (`tunesmith trials NAME --log N`).

    Raises:
        UserInputError: the experiment has no such trial, or its log cannot be read here (removed, or written on
            another machine: a Ray node without a shared filesystem), naming the file.
    """
    found = store.trials(experiment.id, [number], curves=False)
    if not found:
        numbers = [t.number for t in store.trials(experiment.id, curves=False)]
        has = f"its trials: {min(numbers)} to {max(numbers)}" if numbers else "it has no trials yet"
        raise UserInputError(f"--log: experiment {experiment.name!r} has no trial {number} ({has})")
    path = found[0].log_path or ""
    try:
        with open(path, encoding="utf-8", errors="replace") as log:
            return log.read()
    except OSError as e:
        raise UserInputError(f"--log: trial {number}'s log {path} cannot be read ({e.strerror or e}): it was "
                             "removed, or written on another machine (a Ray node without a shared filesystem)"
                             ) from None


def listed_trials(experiment: ExperimentRecord, trials: Sequence[TrialRecord], states: Sequence[str] = (),
                  sort: str | None = None, limit: int | None = None) -> list[TrialRecord]:
    """The trials in ``states`` (each a state or several, comma-separated; none: every state), ordered by the
    metric ``sort`` (an objective, in its direction, completed trials before pruned ones; another recorded metric,
    ascending; trials without it last) or else by number, the first ``limit`` of them (None: all).

    Raises:
        UserInputError: a state that is none, or a metric that is neither an objective nor recorded by a trial.
    """
    wanted = _states(states)
    chosen = [t for t in trials if not wanted or t.state in wanted]
    if sort is not None:
        chosen = sorted(chosen, key=_sort_key(experiment, trials, sort))
    return chosen if limit is None else chosen[:limit]


def _states(words: Sequence[str]) -> set[TrialState]:
    """``--state``'s values, repeated or comma-separated."""
    names = [s.value for s in TrialState]
    wanted = set()
    for word in (w.strip() for given in words for w in given.split(",")):
        if word.lower() not in names:
            raise UserInputError(f"--state: unknown state {word!r}{_meant(word, names)} (states: {', '.join(names)})")
        wanted.add(TrialState(word.lower()))
    return wanted


def _sort_key(experiment: ExperimentRecord, trials: Sequence[TrialRecord],
              metric: str) -> Callable[[TrialRecord], tuple[bool, bool, float]]:
    """The key that orders trials by ``metric``, best first for an objective; a trial without it (failed, running)
    or with NaN there goes last. On an objective, completed trials come before the others (pruned ones): a pruned
    trial's value is its last intermediate report, at an early step, not comparable with a final value, so "the 10
    best" would otherwise be headed by trials stopped early whenever values fall with training (as `show` counts
    completed trials only)."""
    objectives = objectives_of(experiment)
    directions = {o.metric: o.direction for o in objectives}
    recorded = list(dict.fromkeys(m for t in trials for m in t.metrics if m not in directions))
    if metric not in directions and metric not in recorded:
        raise UserInputError(f"--sort: experiment {experiment.name!r} has no objective or recorded metric {metric!r}"
                             f"{_meant(metric, [*directions, *recorded])} (objectives: {', '.join(directions)}; "
                             f"recorded metrics: {listed(recorded) or 'none'})")
    sign = -1.0 if directions.get(metric) is Direction.MAXIMIZE else 1.0

    unfinished_last = metric in directions

    def key(trial: TrialRecord) -> tuple[bool, bool, float]:
        value = (trial.value_map(objectives) or {}).get(metric, trial.metrics.get(metric))
        if value is None or math.isnan(value):
            return True, True, 0.0
        return False, unfinished_last and trial.state is not TrialState.COMPLETED, sign * value

    return key


def _meant(word: str, choices: Sequence[str]) -> str:
    """The did-you-mean both messages end their first clause with (suggestions' rule), or nothing."""
    near = closest(word, choices)
    return f"; did you mean {near!r}?" if near else ""
