"""Warm starting a strategy from an earlier experiment (a re-tune on new data).

Two things can carry over, and they are treated differently on purpose:

* k earlier good configurations are **re-evaluated**: they are handed out first, as ordinary trials on the new
  data. Their old scores say little about the new data; their new scores are facts, and the strategy learns
  from them like from any trial. Which k (``drift.retune.spread``, :func:`tunesmith.retune.warm_start_from`):
  by default the best and then the old best quarter's farthest apart; else the k best.
* the other earlier trials, by ``drift.retune.prior``:

  - ``transfer`` (the default): they become the **prior mean** of ``bo``'s Gaussian process
    (:mod:`tunesmith.strategy.transfer_prior`): the old landscape, moved, re-scaled and re-levelled to fit the
    new trials, with a GP on the residuals; the new trials decide wherever they are. The strategy says how it
    took them (``transfer_prior``'s answer, ``WarmStartedStrategy.taken_as``): ``cmaes`` starts its first
    generation from their best 10% (Warm Starting CMA-ES); ``tpe`` (one objective, no constraints) asks for
    them re-based, as ``rebased`` below, having no prior to put them into (with several objectives measured and
    not adopted by its declared rule: sooner in 55 seeds, later in 10, but half a trial later in median on the
    strongest move); ``nsga2`` (no constraints) asks for them re-based too, and takes them as its first
    population (generation 0, from which its first parents are selected); the others (random, qmc, grid, gp) get
    the re-evaluations only (for gp, Optuna's GPSampler, the rebased replay
    was measured and rejected: over three moves at 15 seeds never sooner than the re-evaluations alone, later in
    30 of 45, held at the old optimum as bo's GP was). Measured in ``benchmarks/retune_samplers.py``: against the
    re-evaluations alone, over three synthetic moves at 30 seeds, sooner per seed in 35 and later in 15 (cmaes),
    sooner in 38 and later in 11 (tpe), sooner in 22 and later in 14 with two objectives (nsga2, still later in
    median than a cold NSGA-II run on the two larger moves).
  - ``rebased``: once the re-evaluated ones have finished, each old value is shifted by the median of (new -
    old) over the re-evaluated configurations and **replayed** into the strategy as an observation, keeping the
    old ranking on the new data's level.
  - ``none``: the re-evaluations only.

``rebased`` measured worse than re-evaluation alone (``benchmarks/retune.py``): when the optimum moves, thirty
old observations outvote a handful of new ones and hold the Gaussian process near the old optimum; on a
covariate-only shift it never reached 99% of the cold search's final score in 20 trials. ``transfer`` keeps the
old landscape's shape without letting it outvote the new trials. Measured (benchmarks/RESULTS.md, re-tune
summary, medians of trials to 99% of a cold run's final score; 30 seeds; 2026-12-05, the two gradient-boosted
scenarios 2026-12-06), with the ranking-weighted transfer prior and spread re-evaluations (the defaults), warm
needs at most half of cold's trials on 7 of 14 scenarios, mostly those where the old landscape carries over: four
re-tunes over recorded real training results of related datasets (rank-correlated 0.84-0.98 with the old:
0.04-0.29 of cold), the MLP's least related pair (0.49) and two synthetic moved optima (0.05, 0.41). Not on the
strongest synthetic move (0.55), FCNet's least related pair (1.13) or five breast_cancer shifts (0.60-1.00),
where a configuration's CV error is 2-20 times the 1% band and, after a concept shift, the old good region is no
longer good. Spread against the k best, per seed over the twelve at 30 seeds:
sooner in 116, later in 93.

The warm start is recorded with the experiment (attribute ``warm_start``), so a resumed re-tune rebuilds the
same start from its own record.
"""

from __future__ import annotations

import enum
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tunesmith.records import ParamValue, TrialRecord, TrialState
from tunesmith.strategy.base import Proposal, Strategy
from tunesmith.strategy.enqueued import enqueued_first
from tunesmith.strategy.first_configurations import FirstConfigurations, config_key


class PriorMode(enum.Enum):
    """How the earlier trials other than the re-evaluated ones reach the strategy (``drift.retune.prior``)."""

    TRANSFER = "transfer"   # the prior mean of bo's GP, calibrated on the new trials
    REBASED = "rebased"     # replayed as observations, shifted by the median change of the re-evaluated ones
    NONE = "none"           # not at all


@dataclass(frozen=True)
class PriorTrial:
    """A finished trial of the earlier experiment: its configuration and its values on the old data."""

    params: dict[str, ParamValue]
    values: tuple[float, ...]


@dataclass(frozen=True)
class WarmStart:
    """What a re-tune starts from: configurations to re-evaluate first, and earlier trials to re-base."""

    source: str
    first: tuple[dict[str, ParamValue], ...]
    prior: tuple[PriorTrial, ...]
    mode: PriorMode = PriorMode.REBASED   # what ``prior`` is for (records written before modes existed: rebased)

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "first": [dict(p) for p in self.first], "mode": self.mode.value,
                "prior": [{"params": dict(p.params), "values": list(p.values)} for p in self.prior]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WarmStart:
        return cls(str(data.get("source", "")), tuple(dict(p) for p in data.get("first", ())),
                   tuple(PriorTrial(dict(p["params"]), tuple(float(v) for v in p["values"]))
                         for p in data.get("prior", ())), legacy_mode(data))


def legacy_mode(data: Mapping[str, Any]) -> PriorMode:
    """A recorded warm start's mode; records from before modes replayed their prior re-based (or had none)."""
    return PriorMode(data.get("mode") or ("rebased" if data.get("prior") else "none"))


class WarmStartedStrategy(FirstConfigurations):
    """A strategy that hands out the warm start's configurations first (:class:`FirstConfigurations`' queue), then
    replays the re-based prior."""

    def __init__(self, inner: Strategy, warm: WarmStart) -> None:
        super().__init__(inner, warm.first)          # re-evaluations not handed out yet
        self.warm = warm
        self._first = {config_key(p) for p in warm.first}
        self._outstanding: dict[int, str] = {}       # token -> key of a re-evaluated configuration
        self._new_values: dict[str, tuple[float, ...]] = {}
        self._released = False
        self.shift: tuple[float, ...] | None = None  # what was added to the old values (None: not replayed yet)
        self.taken_as = warm.mode   # how the inner strategy takes the prior (transfer: its answer, below)
        self._offered = False

    def replay(self, history: Sequence[TrialRecord]) -> None:
        transfer = getattr(self.inner, "transfer_prior", None)
        if self.warm.mode is PriorMode.TRANSFER and not self._offered:   # once: replay also brings other
            self._offered = True                                          # coordinators' trials later
            self.taken_as = (transfer(self.old_records()) if self.warm.prior and transfer is not None
                             else PriorMode.NONE)
        # replayed up to the last re-evaluation, then the rest: on a resume the prior goes in between, where the
        # first run put it (nsga2 counts the trials after it in the generations that followed the parent's)
        cut = max((i + 1 for i, t in enumerate(history) if config_key(t.params) in self._first), default=0)
        for part in [p for p in (history[:cut], history[cut:]) if p] or [history]:
            self.inner.replay(part)
            for t in part:
                if t.state is TrialState.COMPLETED and t.values and config_key(t.params) in self._first:
                    self._new_values[config_key(t.params)] = tuple(t.values)
            self._forget(t.params for t in part)
            self._release_when_ready()

    def _handed_out(self, proposal: Proposal, params: Mapping[str, ParamValue]) -> Proposal:
        if config_key(params) in self._first:
            self._outstanding[proposal.token] = config_key(params)
        return proposal

    def tell(self, token: int, state: TrialState, values: Sequence[float] | None,
             metrics: Mapping[str, float] | None = None) -> None:
        super().tell(token, state, values, metrics)
        key = self._outstanding.pop(token, None)
        if key is not None and state is TrialState.COMPLETED and values:
            self._new_values[key] = tuple(values)
        self._release_when_ready()

    def _release_when_ready(self) -> None:
        """Replay the prior once every re-evaluation has ended (its shift needs their new values)."""
        if self._released or self._queue or self._outstanding:
            return
        self._released = True
        if self.taken_as is not PriorMode.REBASED:
            return
        old = {config_key(p.params): p.values for p in self.warm.prior}
        pairs = [(self._new_values[k], old[k]) for k in self._new_values if k in old]
        width = len(self.warm.prior[0].values) if self.warm.prior else 0
        self.shift = tuple(statistics.median(new[i] - was[i] for new, was in pairs) if pairs else 0.0
                           for i in range(width))
        records = [TrialRecord(number=-(i + 1), state=TrialState.COMPLETED, params=dict(p.params), seed=0,
                               values=tuple(v + s for v, s in zip(p.values, self.shift, strict=True)))
                   for i, p in enumerate(self.warm.prior) if config_key(p.params) not in self._first]
        if records:
            self.inner.replay(records)

    def old_records(self) -> list[TrialRecord]:
        """The earlier trials as records of their old values (numbered below zero: they are not this run's)."""
        return [TrialRecord(number=-(i + 1), state=TrialState.COMPLETED, params=dict(p.params), seed=0,
                            values=tuple(p.values)) for i, p in enumerate(self.warm.prior)]


def warm_started(strategy: Strategy, recorded: Mapping[str, Any] | None,
                 enqueued: Sequence[Mapping[str, ParamValue]] = ()) -> Strategy:
    """``strategy`` wrapped with the warm start recorded with an experiment (attribute ``warm_start``), if any, and
    with the spec's ``enqueue`` configurations first (after a re-tune's re-evaluations)."""
    strategy = enqueued_first(strategy, enqueued)
    return strategy if not recorded else WarmStartedStrategy(strategy, WarmStart.from_json(recorded))
