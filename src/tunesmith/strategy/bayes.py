"""``bo``: tunesmith's own Bayesian optimisation, a Gaussian process in numpy/scipy (no torch).

One proposal:
1. the first few configurations come from a scrambled Sobol design (nothing to model yet);
2. outputs are standardised (on a log scale when positive and spanning three orders of magnitude); a failed
   trial counts as the worst value seen (ranks through the normal quantile function were tried and lost on the
   smooth synthetic problems of the search-quality suite);
3. a Matérn-5/2 GP is fitted (``gaussian_process``); proposals still outstanding with other workers are added
   as if they had scored the mean of the results so far (a constant liar), so parallel proposals spread out.
   On the suite's batch regime the kriging believer (the GP's own prediction) exploited slightly better but
   put eight proposals within 1e-4 of each other; the pessimistic liar (the worst value) spread them too far;
   the mean lies between;
4. log expected improvement is maximised over random configurations and ever-finer perturbations of the best
   ones found so far (each candidate snapped to a real configuration: ints rounded, one choice per categorical).

Its cost serves the user's budget: a proposal may always cost ``overhead_floor`` (50 ms), and above that it is
kept in proportion to the trials it serves. It times each trial (ask to tell, on an injectable clock) and itself
(in CPU seconds of this process by default, an injectable ``cost_clock``: on a machine shared with other work a
proposal's wall time grows with the load, its CPU time does not, and a loaded machine should not cheapen the
proposals).
Each proposal earns the larger of ``overhead_floor`` and ``overhead`` (10%) of the median trial's duration as credit and
spends what it costs. A full model-based proposal (the steps above) is made only when the credit covers the last one's
cost; between them, a *quick* proposal conditions the GP on every result so far under its last fitted hyperparameters
and scores a few hundred candidates, with no refinement (its candidate count adapts so that it costs about half an
allowance, and it is made only when it costs at most two, so savings go to the next full proposal); only when even that
is not paid for is the proposal a random perturbation of the best configuration (*cheap*). So over a run the mean cost
stays within the allowance, give or take one full proposal's overshoot. While full proposals cost many allowances, it
also refits the GP's hyperparameters less often and scores fewer candidates. With trials much longer than a proposal
(the usual case), or full proposals under the floor (at tens of trials they cost 10-40 ms here), none of this acts:
every proposal is a full one.

Why a floor: with the allowance a pure ratio, a function or a recorded table timed for real (microseconds a trial)
left almost every proposal a perturbation of the best, and on the search-quality suite's real-clock regime (40
sequential trials) ``bo`` then scored below Optuna's TPE (issue #19). A user who spends 40 trials wants the best 40
proposals the machine can make in reasonable time; 50 ms a proposal is 2 s over such a run, and 50 s over 1,000
trials, where the credit acts again (a hyperparameter fit on the GP's 300 points costs about 0.8 s of CPU, so
quick proposals fill the gaps between full ones). Measured in CPU time, the floor also keeps the sequence of
proposals independent of machine load while proposals stay under it. On the suite's real-clock regime (fresh
seeds 40-49) ``auto`` then led Optuna's TPE by about 22 points on the synthetic and 13 on the tabular problems.

On the search-quality suite's scikit-learn tasks (fits of 3-40 ms), quick proposals in place of perturbations
raised ``bo``'s sequential score from 49 to 75 (seeds 0-4; with no cost limit at all: 68). The GP
sees at most ``MAX_MODEL_POINTS`` trials (the best third and the most recent), which bounds its cubic cost on
budgets of thousands of trials.

In a re-tune (``transfer_prior``, called by the warm start before the first proposal), the earlier experiment's
trials become the GP's prior mean (``transfer_prior`` module): the start-up design is skipped, and every model
proposal uses that prior, weighted by how much better the old landscape orders the new trials than a GP of the
new trials alone does (RGPE's ranking weight: at 0, the plain GP on the new trials). The transfer model takes logs
by the same rule as step 2 (applied to the old and new losses together: the two must be in the same units).

With ``cost_aware`` (issue #16), the acquisition is cost-cooled expected improvement (Lee et al. 2020, "Cost-aware
Bayesian optimization"): EI / cost^alpha, here log EI - alpha * log(predicted cost), where a second GP models the
log cost of finished trials (the trial metric ``cost`` when the trial reports one, else its duration on the
clock) and alpha falls from 1 to 0 as the budget is spent (``cost_budget`` in the cost's own units, else
``cooling_trials`` finished trials). Early proposals prefer cheap configurations; late ones are plain EI. It is
off by default and ``auto`` does not turn it on: see benchmarks/RESULTS.md, "Cost-aware search", for the
measurement.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from statistics import median

import numpy as np
from scipy.stats import qmc
from threadpoolctl import ThreadpoolController

from tunesmith.cost import COST_METRIC, COST_UNKNOWN_METRIC
from tunesmith.records import Direction, ParamValue, Report, TrialRecord, TrialState
from tunesmith.space import SearchSpace
from tunesmith.strategy.base import Proposal
from tunesmith.strategy.gaussian_process import (
    Hyperparameters,
    Posterior,
    fit_hyperparameters,
    log_expected_improvement,
    spans_orders_of_magnitude,
)
from tunesmith.strategy.transfer_prior import (
    Calibration,
    OldSurrogate,
    ShiftedPosterior,
    transfer_model,
)
from tunesmith.strategy.unit_cube import UnitCube
from tunesmith.strategy.warm_start import PriorMode

DEFAULT_OVERHEAD = 0.10
DEFAULT_OVERHEAD_FLOOR = 0.05   # seconds a proposal may always cost, however short the trials
_CANDIDATES = 2048        # at full effort: half random, half around the best configurations
_REFINE_ROUNDS = 3
_REFINE_KEEP = 8
_LOCAL_SCALE = 0.1        # perturbation sd, in unit-cube widths, before shrinking with each round
_MIN_EFFORT = 1 / 32
# how far the old landscape steers a re-tune is logged here at DEBUG, once per fit: a wrong weight shows in a run
_log = logging.getLogger(__name__)
MAX_MODEL_POINTS = 300
_LOCAL_FRACTION = 0.5
_POLISH_STARTS = 5
_POLISH_STEPS = 30
_FD_STEP = 1e-5
_QUICK_CANDIDATES = (16, 256, 1024)   # a quick proposal's candidate count: least, first, most
# A quick proposal may cost at most this many allowances. Savings are for the next full proposal: quick ones
# that spent them (on 2.7 ms trials at 200 trials, where a quick one costs ~2 ms) pushed the mean cost over 20
# proposals to 12-13% of a trial; capped at one allowance, they were too rare on the 3-40 ms scikit-learn fits.
_QUICK_MAX_ALLOWANCES = 2.0
DEFAULT_COOLING_TRIALS = 50   # cost_aware without a budget to cool over: alpha reaches 0 after this many trials


@dataclass(frozen=True, slots=True)
class _TransferFit:
    """The last transfer fit: asks between two finished trials (parallel workers, the quick mode) reuse it rather
    than repeat the shift search and the refit."""

    trials: int                  # finished trials it was fitted on
    refitted: bool               # the residual GP's hyperparameters were refitted (not the old GP's)
    residual: np.ndarray         # the new trials' residual from the re-scaled old landscape
    calibration: Calibration


def startup_trials(dims: int) -> int:
    """Sobol configurations before the first model: one more than the inputs, between 5 and 10."""
    return max(5, min(10, dims + 1))


def cost_signal(metrics: Mapping[str, float], duration: float | None) -> float | None:
    """What a finished trial cost, for ``cost_aware``: its ``cost`` metric, else its duration where it was not
    priced; None where it was priced but its cost is unknown (a measurement never arrived), which must not enter a
    signal in dollars as seconds."""
    if COST_METRIC in metrics:
        return metrics[COST_METRIC]
    return None if metrics.get(COST_UNKNOWN_METRIC) else duration


class BayesStrategy:
    """Args:
        space: the search space.
        direction: the single objective's direction.
        seed: seeds the Sobol design and the candidate sampling.
        overhead: the fraction of the median trial's duration that proposals may cost, on average, above
            ``overhead_floor``.
        overhead_floor: seconds a proposal may always cost (0: the ratio alone, as before issue #19).
        clock: seconds, monotonic, for the trials' durations; injectable for tests.
        cost_clock: seconds, for the proposals' own cost: CPU time of this process unless given.
        cost_aware: score candidates by EI / predicted cost^alpha (cost-cooled EI) instead of EI.
        cost_budget: the total cost (in the cost signal's units) over which alpha cools from 1 to 0.
        cooling_trials: without ``cost_budget``, the finished trials over which alpha cools from 1 to 0.
        design_seed: seeds the Sobol design instead of ``seed``: the first run's on a resume (``seeding.design_seed``).
        say: told once, the first time the proposals' measured cost changes what the untimed rule would do (a
            quick or cheap proposal, fewer candidates, a later refit): from then on the sequence depends on the
            machine's timing, not on the seed alone.
        trials_recorded: trial numbers taken before this strategy (on a resume, every trial on record: lost and
            running ones too). Trial ``n`` took at most the design's point ``n`` (not only the start-up's: while
            fewer than two results are finite the design goes on), so the design starts past all of them; a lost
            trial is re-run with its own configuration, and its point must not go to a new trial as well.
    """

    def __init__(self, space: SearchSpace, direction: Direction, seed: int, overhead: float = DEFAULT_OVERHEAD,
                 clock: Callable[[], float] = time.perf_counter,
                 overhead_floor: float = DEFAULT_OVERHEAD_FLOOR,
                 cost_clock: Callable[[], float] = time.process_time, cost_aware: bool = False,
                 cost_budget: float | None = None, cooling_trials: int = DEFAULT_COOLING_TRIALS,
                 design_seed: int | None = None, trials_recorded: int = 0,
                 say: Callable[[str], None] = lambda _said: None) -> None:
        self.space = space
        self._say, self._said_timed = say, False
        self.direction = direction
        self.overhead = overhead
        self.overhead_floor = overhead_floor
        self.cube = UnitCube(space)
        self._clock = clock
        self._cost_clock = cost_clock
        self._rng = np.random.default_rng(seed)
        self._sobol = qmc.Sobol(self.cube.dims, scramble=True, seed=seed if design_seed is None else design_seed)
        if self.cube.dims and trials_recorded:
            self._sobol.fast_forward(trials_recorded)
        self._startup = startup_trials(self.cube.dims)
        self._x: list[np.ndarray] = []       # finished trials, encoded
        self._y: list[float] = []            # their losses (minimisation; nan = failed)
        self._pending: dict[int, np.ndarray] = {}
        self._asked_at: dict[int, float] = {}
        self._durations: list[float] = []
        self._next_token = 0
        self._hyper: Hyperparameters | None = None
        self._fitted_at = 0                  # observations at the last hyperparameter fit
        self._fit_cost = 0.0                 # seconds the last fit took
        self._effort = 1.0                  # fraction of the full candidate count scored
        self._credit = 0.0                  # seconds of proposal time earned and not yet spent
        self._model_cost = 0.0              # seconds the last full proposal took
        self._quick_cost = 0.0              # seconds the last quick proposal took
        self._quick_count = _QUICK_CANDIDATES[1]
        self.last_mode = ""                  # how the last proposal was made: sobol | model | quick | cheap
        self.cost_aware = cost_aware
        self.cost_budget = cost_budget
        self.cooling_trials = cooling_trials
        self._cost_x: list[np.ndarray] = []  # trials with a cost signal, encoded, and their costs
        self._costs: list[float] = []
        self._spent_at_start = 0.0           # cost of the start-up design (cooling starts after it)
        self._cost_hyper: Hyperparameters | None = None
        self._cost_model: tuple[Posterior, float, float] | None = None   # (GP on standardised log cost, mean, sd)
        self.last_alpha = 0.0                # the cost exponent of the last model-based proposal
        self._transfer: OldSurrogate | None = None   # a re-tune's old landscape, the GP's prior mean
        self._transfer_hyper: Hyperparameters | None = None   # the residual GP's (self._hyper: the plain GP's)
        self._transfer_fit: _TransferFit | None = None

    # -- the protocol --------------------------------------------------------------------------------------
    def replay(self, history: Sequence[TrialRecord]) -> None:
        for t in history:
            if t.state is TrialState.COMPLETED and t.values:
                self._observe(self.cube.encode(t.params), float(t.values[0]))
            elif t.state in (TrialState.FAILED, TrialState.PRUNED):
                self._observe(self.cube.encode(t.params), math.nan)
            else:
                continue
            self._observe_cost(self._x[-1], cost_signal(t.metrics, t.duration_s))

    def transfer_prior(self, history: Sequence[TrialRecord]) -> PriorMode:
        """An earlier experiment's finished trials (a re-tune's parent, on its old data) become the prior mean
        of the GP, re-scaled to the new trials as they finish (:mod:`tunesmith.strategy.transfer_prior`). Called
        once, before the first proposal; the start-up design is then skipped (the prior says where to look).
        TRANSFER: taken; NONE: too few finished trials (or no numeric parameter) to model."""
        xs, ys = [], []
        for t in history:
            if t.state is TrialState.COMPLETED and t.values and math.isfinite(t.values[0]):
                xs.append(self.cube.encode(t.params))
                ys.append(-float(t.values[0]) if self.direction is Direction.MAXIMIZE else float(t.values[0]))
        if len(ys) >= 2 and self.cube.dims:
            self._transfer = OldSurrogate(np.vstack(xs), np.asarray(ys), self.cube.numeric_columns)
            self._hyper = self._hyper or self._transfer.hyper
            self._transfer_hyper = self._transfer.hyper
            return PriorMode.TRANSFER
        return PriorMode.NONE

    def ask(self) -> Proposal | None:
        allowed = self._allowed()
        limited = math.isfinite(allowed)
        if limited:
            self._credit = min(self._credit + allowed, 1.5 * max(allowed, self._model_cost))
        if not limited or self._model_cost <= self._credit:
            mode = "model"
        elif self._hyper is not None and self._quick_cost <= min(self._credit, _QUICK_MAX_ALLOWANCES * allowed):
            mode = "quick"
        else:
            mode = "cheap"
        if mode != "model":
            self._timed(f"a {mode} proposal instead of a full one", allowed)
        started = self._cost_clock()
        with _blas_controller().limit(limits=1, user_api="blas"):
            x = self._propose(mode)
        cost = self._cost_clock() - started
        if limited:
            self._credit -= cost
        if self.last_mode == "model":
            self._model_cost = cost
            self._effort = _resized(self._effort, cost, 4 * allowed, allowed, _MIN_EFFORT, 1.0)
            if self._effort < 1.0:
                self._timed("fewer candidates scored", allowed)
        elif self.last_mode == "quick":
            self._quick_cost = cost
            least, _, most = _QUICK_CANDIDATES
            self._quick_count = int(_resized(self._quick_count, cost, 0.5 * allowed, 0.25 * allowed, least, most))
        return self._hand_out(x)

    def adopt(self, params: dict[str, ParamValue]) -> Proposal:
        return self._hand_out(self.cube.encode(params))

    def report(self, token: int, report: Report) -> None:
        pass  # intermediate values are the scheduler's business; the model learns from final values

    def tell(self, token: int, state: TrialState, values: Sequence[float] | None,
             metrics: Mapping[str, float] | None = None) -> None:
        x = self._pending.pop(token, None)
        asked = self._asked_at.pop(token, None)
        if x is None or not state.is_finished():  # interrupted, lost: withdrawn, no result to learn from
            return
        duration = None if asked is None else self._clock() - asked
        if duration is not None and state is TrialState.COMPLETED:
            self._durations.append(duration)
        self._observe_cost(x, cost_signal(metrics or {}, duration))
        loss = math.nan
        if state is TrialState.COMPLETED and values:
            loss = float(values[0])
        self._observe(x, loss)

    # -- bookkeeping ---------------------------------------------------------------------------------------
    def _observe(self, x: np.ndarray, value: float) -> None:
        if not math.isnan(value) and self.direction is Direction.MAXIMIZE:
            value = -value
        self._x.append(x)
        self._y.append(value if math.isfinite(value) else math.nan)

    def _observe_cost(self, x: np.ndarray, cost: float | None) -> None:
        """The cost signal of a finished trial (its ``cost`` metric, else its duration), for ``cost_aware``."""
        if cost is not None and math.isfinite(cost) and cost >= 0:
            self._cost_x.append(x)
            self._costs.append(float(cost))

    def _hand_out(self, x: np.ndarray) -> Proposal:
        token = self._next_token
        self._next_token += 1
        self._pending[token] = x
        self._asked_at[token] = self._clock()
        return Proposal(token, self.cube.decode(x))

    def _allowed(self) -> float:
        """Seconds a proposal may cost: ``overhead`` of the median of recent trial durations, and never less than
        ``overhead_floor`` (inf before any trial has finished)."""
        if not self._durations:
            return math.inf
        return max(self.overhead_floor, self.overhead * median(self._durations[-25:]))

    # -- proposing -----------------------------------------------------------------------------------------
    def _propose(self, mode: str) -> np.ndarray:
        """A configuration made in ``mode`` (model | quick | cheap), or from the start-up design while the
        history is too short to model."""
        known = len(self._y) + len(self._pending)
        finite = [v for v in self._y if not math.isnan(v)]
        transfer = self._transfer
        if ((transfer is None and known < self._startup) or len(finite) < (1 if transfer is not None else 2)
                or not self.cube.dims):
            self.last_mode = "sobol"
            return self.cube.snap(self._sobol.random(1))[0] if self.cube.dims else np.zeros(0)
        self.last_mode = mode
        if mode == "cheap":
            return self._perturb_best()
        x = everything = np.vstack(self._x)
        y = np.asarray(self._y)
        filled = np.where(np.isnan(y), np.nanmax(y), y)   # a failed trial counts as the worst value seen
        z = _standardised(y)
        if len(z) > MAX_MODEL_POINTS:
            best = np.argsort(z)[:MAX_MODEL_POINTS // 3]
            recent = np.setdiff1d(np.arange(len(z)), best)[-(MAX_MODEL_POINTS - len(best)):]
            keep = np.sort(np.concatenate([best, recent]))
            x, z, filled = x[keep], z[keep], filled[keep]
        order = np.argsort(z)
        scale = 1.0
        if transfer is not None:
            # z becomes the residual from the re-scaled old landscape; g's hyperparameters are the old GP's
            # until the new trials are as many as a start-up design
            refit = mode == "model" and len(z) >= self._startup
            fit = self._transfer_fit
            if fit is None or fit.trials != len(self._y) or (refit and not fit.refitted):
                # the old landscape steers by its ranking weight: a plain GP where it orders the new trials no
                # better than they order themselves (transfer_prior.old_landscape_weight)
                residual, calibration, self._transfer_hyper = transfer_model(
                    transfer, x, filled, self._transfer_hyper, refit=refit, target_hyper=self._hyper)
                fit = self._transfer_fit = _TransferFit(len(self._y), refit, residual, calibration)
                if _log.isEnabledFor(logging.DEBUG):  # the shift's rounding is paid only when it is read
                    _log.debug("transfer prior at %d new trials: old landscape weight %.3f, slope %.3g, level %.3g, "
                               "shift %s, %s units", fit.trials, calibration.weight, calibration.a, calibration.b,
                               np.round(calibration.shift, 3).tolist(), "log" if calibration.log else "raw")
            z, calibration = fit.residual, fit.calibration
            scale = calibration.scale
        if transfer is None and mode == "model":
            self._maybe_refit(x, z, len(self._y))
        self._cost_model = self._fit_cost_model(mode == "model") if self.cost_aware else None
        assert self._hyper is not None
        incumbent = float(calibration.units(filled).min() / scale) if transfer is not None else float(z.min())
        if self._pending:
            pending = np.vstack(list(self._pending.values()))
            lie = np.full(len(pending), float(z.mean()))
            xs, zs = np.vstack([x, pending]), np.concatenate([z, lie])
        else:
            xs, zs = x, z
        posterior = (ShiftedPosterior(xs, zs, self._transfer_hyper or self._hyper, transfer, calibration)
                     if transfer is not None else Posterior(xs, zs, self._hyper))
        taken = np.vstack([everything, *self._pending.values()]) if self._pending else everything
        best = x[order[:_REFINE_KEEP]]
        if mode == "quick":
            return self._maximise_quickly(posterior, incumbent, best, taken)
        return self._maximise(posterior, incumbent, best, taken)

    def _maybe_refit(self, x: np.ndarray, z: np.ndarray, n: int) -> None:
        # Successive fits differ by a point or two: refit every time while the history is small, then every
        # ~5% more points; and no more often than the time allowance pays for (a fit's cost spread over the
        # proposals until the next one).
        interval = max(1, n // 20)
        allowed = self._allowed()
        if math.isfinite(allowed) and allowed > 0 and math.ceil(self._fit_cost / allowed) > interval:
            interval = math.ceil(self._fit_cost / allowed)
            self._timed("its hyperparameters refitted less often", allowed)
        if self._hyper is not None and n - self._fitted_at < interval:
            return
        started = self._cost_clock()
        self._hyper = fit_hyperparameters(x, z, self._hyper)
        self._fit_cost = self._cost_clock() - started
        self._fitted_at = n

    def _timed(self, what: str, allowed: float) -> None:
        """Say, once, that the proposals' measured cost changed what the untimed rule would do (``what``)."""
        if not self._said_timed:
            self._said_timed = True
            self._say(f"bo's cost guard acted after {self._next_token} proposals ({what}: the model costs more than "
                      f"the {allowed:.3g} s of CPU a proposal may): the sequence now depends on this machine's timing, "
                      "not on the seed alone; raise strategy.overhead_floor (strategy: {name: bo, overhead_floor: 5}) "
                      "or choose strategy: tpe to keep the run reproducible from the seed")

    def _maximise(self, posterior: Posterior, incumbent: float, best: np.ndarray, taken: np.ndarray) -> np.ndarray:
        """The candidate with the highest log EI that is not a configuration already run or outstanding."""
        count = max(32, int(_CANDIDATES * self._effort))
        scale = _local_scale(posterior.hyper)
        local = int(count * _LOCAL_FRACTION)
        pool = [self.cube.random(self._rng, count - local), self._around(best, local, scale)]
        cand = np.vstack(pool)
        score = self._acquisition(posterior, incumbent, cand)
        for _ in range(_REFINE_ROUNDS):
            scale = scale / 3.0
            top = cand[np.argsort(-score)[:_REFINE_KEEP]]
            more = self._around(top, max(16, count // 8), scale)
            cand = np.vstack([cand, more])
            score = np.concatenate([score, self._acquisition(posterior, incumbent, more)])
        order = np.argsort(-score)
        polished = self._polish(posterior, incumbent, cand[order[:_POLISH_STARTS]])
        cand = np.vstack([polished, cand[order]])
        score = np.concatenate([self._acquisition(posterior, incumbent, polished), score[order]])
        return _best_unseen(cand, score, taken)

    def _maximise_quickly(self, posterior: Posterior, incumbent: float, best: np.ndarray,
                          taken: np.ndarray) -> np.ndarray:
        """One round of ``_maximise`` at a fraction of the candidates: random ones, perturbations of the best
        configurations, and closer ones around the very best; no refinement, no polish."""
        count = self._quick_count
        scale = _local_scale(posterior.hyper)
        cand = np.vstack([self.cube.random(self._rng, count // 2), self._around(best, count // 2, scale),
                          self._around(best[:1], count // 4, scale / 3.0)])
        return _best_unseen(cand, self._acquisition(posterior, incumbent, cand), taken)

    def _acquisition(self, posterior: Posterior, incumbent: float, cand: np.ndarray) -> np.ndarray:
        """log EI at rows of ``cand``; cost-aware: minus alpha times the log of the predicted cost."""
        score = log_expected_improvement(*posterior.predict(cand), incumbent)
        if self._cost_model is None or self.last_alpha <= 0:
            return score
        cost_posterior, mean, sd = self._cost_model
        return score - self.last_alpha * (cost_posterior.predict(cand)[0] * sd + mean)

    def _cooling(self) -> float:
        """alpha: 1 when the start-up design is done, falling linearly to 0 as the budget is spent (Lee et al.
        2020); with no budget in cost, over ``cooling_trials`` finished trials."""
        if self.cost_budget is not None:
            spent, total = sum(self._costs), self.cost_budget
        else:
            spent, total = float(len(self._y)), float(max(self.cooling_trials, 1))
        start = min(self._spent_at_start, 0.5 * total)
        return float(np.clip((total - spent) / (total - start), 0.0, 1.0))

    def _fit_cost_model(self, refit: bool) -> tuple[Posterior, float, float] | None:
        """A GP on the log cost of the trials that have one (floored at a millionth of the median, so a free
        trial does not dominate), or None while there are fewer than two or cooling is over."""
        if len(self._costs) < 2:
            return None
        if not self._spent_at_start:
            self._spent_at_start = sum(self._costs) if self.cost_budget is not None else float(len(self._y))
        self.last_alpha = self._cooling()
        if self.last_alpha <= 0:
            return None
        costs = np.asarray(self._costs)
        logs = np.log(np.maximum(costs, 1e-6 * max(float(np.median(costs)), 1e-12)))
        mean, sd = float(logs.mean()), float(logs.std()) or 1.0
        x, z = np.vstack(self._cost_x), (logs - mean) / sd
        if len(z) > MAX_MODEL_POINTS:
            x, z = x[-MAX_MODEL_POINTS:], z[-MAX_MODEL_POINTS:]
        if refit or self._cost_hyper is None:
            self._cost_hyper = fit_hyperparameters(x, z, self._cost_hyper)
        return Posterior(x, z, self._cost_hyper), mean, sd

    def _polish(self, posterior: Posterior, incumbent: float, starts: np.ndarray) -> np.ndarray:
        """Projected gradient ascent of log EI over the numeric columns from each start (finite differences,
        all starts in one vectorised model call per step), then snapped to real configurations."""
        columns = self.cube.numeric_columns
        if not columns or not len(starts):
            return starts
        x = starts.copy()
        k, m = len(x), len(columns)

        def acquisition(points: np.ndarray) -> np.ndarray:
            return self._acquisition(posterior, incumbent, points)

        value = acquisition(x)
        step = np.full(k, 0.05)
        eye = np.zeros((m, x.shape[1]))
        eye[np.arange(m), columns] = _FD_STEP
        for _ in range(_POLISH_STEPS):
            probes = (x[None, :, :] + eye[:, None, :]).reshape(m * k, -1)
            grad = (acquisition(probes).reshape(m, k) - value[None, :]) / _FD_STEP       # (m, k)
            norm = np.linalg.norm(grad, axis=0)
            direction = np.zeros_like(x)
            direction[:, columns] = (grad / np.maximum(norm, 1e-12)).T
            trial = np.clip(x + step[:, None] * direction, 0.0, 1.0)
            trial_value = acquisition(trial)
            better = trial_value > value
            x[better], value[better] = trial[better], trial_value[better]
            step = np.where(better, step * 1.5, step * 0.5)
            if np.all(step < 1e-4):
                break
        return self.cube.snap(x)

    def _around(self, centres: np.ndarray, count: int, scale: np.ndarray) -> np.ndarray:
        """``count`` perturbations of rows of ``centres``: Gaussian steps per column, occasional choice flips."""
        base = centres[self._rng.integers(len(centres), size=count)]
        out = base + self._rng.normal(size=base.shape) * scale
        blocks = self.cube.categorical_blocks
        if blocks:
            flip = 1.0 / max(1, len(blocks) + len(self.cube.numeric_columns))
            for first, width in blocks:
                change = self._rng.random(count) < max(flip, 0.1)
                rows = np.nonzero(change)[0]
                out[rows, first:first + width] = 0.0
                out[rows, first + self._rng.integers(width, size=len(rows))] = 1.0
                keep = ~change
                out[keep, first:first + width] = base[keep, first:first + width]
        return self.cube.snap(out)

    def _perturb_best(self) -> np.ndarray:
        finite = [(v, i) for i, v in enumerate(self._y) if not math.isnan(v)]
        best = self._x[min(finite)[1]]
        return self._around(best[None, :], 1, np.full(self.cube.dims, _LOCAL_SCALE))[0]


@cache
def _blas_controller() -> ThreadpoolController:
    """One BLAS thread while proposing: the GP's matrices (at most 300 x 300) gain nothing from more, and with
    OpenBLAS's default threads on a busy 2-core machine a full proposal took 1.3 s of wall time and 0.3 s of
    CPU instead of 0.19 s and 0.04 s (issue #19). (A controller made once: a fresh ``threadpool_limits`` costs
    milliseconds a call.)"""
    return ThreadpoolController()


def _standardised(y: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance; failed trials (nan) take the worst finished value.

    Positive losses spanning ``gaussian_process.LOG_SPAN`` (1000) or more (a regression error falling from 1 to
    1e-4, a diverged fit beside good ones) are modelled on a log scale: otherwise a few huge values set the scale
    and every good configuration looks the same to the GP. On the search-quality suite this took HPOLib's naval
    propulsion (mean squared error) from 58-93 to 98-99 over 15 seeds, and helped the scikit-learn log-loss tasks;
    it cost up to a point on the synthetic functions (most on Rosenbrock, whose minimum is 0). A general power
    transform (Yeo-Johnson, as in HEBO) helped naval as much but lost on the scikit-learn tasks."""
    filled = np.where(np.isnan(y), np.nanmax(y), y)
    if spans_orders_of_magnitude(filled):
        filled = np.log(filled)
    sd = float(filled.std())
    return (filled - filled.mean()) / (sd if sd > 0 else 1.0)


def _resized(value: float, cost: float, too_dear: float, cheap: float, least: float, most: float) -> float:
    """An effort setting after a proposal that cost ``cost``: halved above ``too_dear``, half again as much below
    ``cheap``, kept within [least, most]."""
    if cost > too_dear:
        return max(least, value / 2)
    if cost < cheap:
        return min(most, value * 1.5)
    return value


def _local_scale(hyper: Hyperparameters) -> np.ndarray:
    """Perturbation sd per column: ``_LOCAL_SCALE`` stretched by the column's length scale relative to the
    geometric mean (wide where the loss changes slowly), within 0.1-5 times."""
    lengths = np.exp(hyper.log_lengths)
    return np.clip(lengths / np.exp(np.mean(np.log(lengths))), 0.1, 5.0) * _LOCAL_SCALE


def _best_unseen(cand: np.ndarray, score: np.ndarray, taken: np.ndarray) -> np.ndarray:
    """The highest-scoring candidate that is not a configuration already run or outstanding (else the highest): a
    copy, not a view, which would keep the whole candidate array alive with each trial it is kept for (85 KB a
    trial: 600 MB at 5,000 trials)."""
    for i in np.argsort(-score, kind="stable"):
        if not _seen(cand[i], taken):
            return cand[i].copy()
    return cand[int(np.argmax(score))].copy()


def _seen(x: np.ndarray, taken: np.ndarray) -> bool:
    return bool(np.any(np.all(np.abs(taken - x) < 1e-9, axis=1)))
