"""Re-tunes with Optuna's samplers (``strategy: cmaes``, ``tpe``, ``gp``; ``tpe-2``, ``nsga2-2``: tpe, nsga2 with
two objectives): their warm starts against re-evaluations alone and a cold start. (Until 2026-12-05 22:00 UTC this
script was ``benchmarks/retune_cmaes.py``, cmaes only.)

**cmaes.**
``drift.retune.prior: transfer`` (the default) gives ``bo`` the old landscape as its GP's prior mean
(``benchmarks/retune.py``). For ``cmaes`` it is Warm Starting CMA-ES (Nomura et al. 2021, Optuna's
``source_trials``): the first generation is drawn from a Gaussian fitted to the old experiment's best 10%.
Declared 2026-12-05 before any run of this script (RESULTS.md, "Re-tuning with cmaes"):

* scenarios: the three ``bowl4`` moves of ``benchmarks/retune.py`` (the old experiment 40 trials, each re-tune 30,
  3 configurations re-evaluated first, spread over the old best quarter as by default), 30 seeds, every proposal
  ``cmaes`` with tunesmith's options (the old experiment too);
* arms: ``cold`` (plain CMA-ES: what Optuna's ``CmaEsSampler`` does on the new data alone), ``reevaluate``
  (``prior: none``: the re-evaluations only, what a cmaes re-tune did before), ``ws-cmaes`` (``prior:
  transfer``, the re-evaluations plus the warm start);
* measure: trials to 99% of the cold run's final score, as in ``benchmarks/retune.py``;
* rule: the warm start stays if, over the three scenarios, it is sooner than ``reevaluate`` per seed more often
  than later, and its median is not above ``reevaluate``'s on any of them; else its code is removed.

**tpe** (declared 2026-12-05 ~22:00 UTC, before any TPE run of this script). TPE has no prior to put the old
landscape into; the one way it can use the old trials is as observations: ``prior: rebased`` (each old value
shifted by the median change of the re-evaluated configurations), measured worse than re-evaluation alone for
``bo``, never for TPE. ``auto`` runs TPE where trials stop early, so a re-tune of such an experiment runs TPE.

* scenarios, budgets, seeds and measure as for cmaes, every proposal ``tpe`` with tunesmith's options;
* arms: ``cold``, ``reevaluate`` (``prior: none``; what ``transfer`` gives TPE today), ``rebased``;
* rule: ``prior: transfer`` on a TPE re-tune becomes the rebased replay if, over the three scenarios, ``rebased`` is
  sooner than ``reevaluate`` per seed more often than later, and its median is not above ``reevaluate``'s on any
  of them; else TPE keeps the re-evaluations only.

**gp** (Optuna's ``GPSampler``; declared 2026-12-06 01:36 UTC, before any gp run of this script but one smoke run
at 2 seeds, to time it). Like TPE it has no prior to put the old landscape into; ``transfer`` gives it the
re-evaluations only. Does the rebased replay help it as it helped TPE (``bo``'s own GP it did not help)?

* scenarios, budgets and measure as for cmaes, every proposal ``gp`` with tunesmith's options; 15 seeds, not 30:
  the smoke run took 115 s for 2 seeds on the loaded 2-core machine, so 30 would take about 29 minutes;
* arms: ``cold``, ``reevaluate`` (``prior: none``; what ``transfer`` gives gp today), ``rebased``;
* rule: ``prior: transfer`` on a gp re-tune becomes the rebased replay if, over the three scenarios, ``rebased`` is
  sooner than ``reevaluate`` per seed more often than later, and its median is not above ``reevaluate``'s on any
  of them; else gp keeps the re-evaluations only.

**tpe-2: tpe with two objectives** (declared 2026-12-06 02:25 UTC, before any measured run: its code was run
once on ``bowl4-moderate`` with a seed outside those measured (1000), to check that it ran, and once at 2 seeds
with its output discarded, to time it (2 s); no count looked at. ``hypervolume_curve`` was checked against
Optuna's ``compute_hypervolume`` on 200 random point sets).
``transfer`` gives a TPE re-tune with several objectives the re-evaluations only (unmeasured). Does the rebased
replay help there as with one objective?

* scenarios: ``bowl_pair``, two objectives on the three ``bowl4`` moves: the first is ``bowl`` itself, the second
  the same bowl with its optimum ``SECOND_OPTIMUM_OFFSET`` (0.25 in the unit cube) away; on the new task both
  optima move by the scenario's distance along the same direction, 0.05 higher and 1.5 times as curved. Budgets
  as for cmaes (old 40, re-tune 30, 3 re-evaluated, spread over the old best quarter ranked lexicographically,
  as a re-tune ranks several objectives), 30 seeds, every proposal ``tpe`` with tunesmith's options (Optuna's
  multi-objective TPE), the old experiment too;
* arms: ``cold``, ``reevaluate`` (``prior: none``; what ``transfer`` gives it today), ``rebased`` (each objective
  shifted by its own median change over the re-evaluated configurations);
* measure: trials to 99% of the cold run's final hypervolume, the area the re-tune's trials so far (its
  re-evaluations included, the replayed old trials not) dominate up to the fixed reference point
  ``REFERENCE_POINT`` (0.6, 0.6), both objectives minimised, points beyond it ignored (the new optima are
  0.35; a random configuration's objectives are about 0.43 at the 5th percentile, 0.65-0.78 at the median); not
  reached: the budget plus one;
* rule: ``prior: transfer`` on a TPE re-tune with several objectives (no constraints) becomes the rebased
  replay if, over the three scenarios, ``rebased`` is sooner than ``reevaluate`` per seed more often than later,
  and its median is not above ``reevaluate``'s on any of them; else it keeps the re-evaluations only.

**nsga2-2: nsga2 with two objectives** (declared 2026-12-06 04:20 UTC, before any measured run: its code was run
once at 2 seeds, to check that it ran (counts in RESULTS.md, "seen before this declaration"), and once on
``bowl4-moderate`` with seed 1000 to check the generations NSGA-II gave the trials; no count looked at there).
``transfer`` gives an nsga2 re-tune the re-evaluations only (unmeasured). Optuna 5.1's ``NSGAIISampler`` counts a
completed trial in a population only by the generation it stamped into the trial when it sampled it: a replayed
trial (``add_trials``) carries none, so a plain rebased replay would be ignored, and so is a re-evaluation (every
parameter fixed, never sampled), in every arm. Does the old experiment, re-based, help as NSGA-II's first
population?

* scenarios, budgets, seeds and measure as for tpe-2 (``bowl_pair`` on the three ``bowl4`` moves; old 40, re-tune
  30, 3 re-evaluated, spread over the old best quarter ranked lexicographically; 30 seeds; trials to 99% of the
  cold run's final hypervolume, reference point ``REFERENCE_POINT``), every proposal ``nsga2`` with tunesmith's
  options (Optuna's defaults: population 50), the old experiment too. With a population of 50 a 40-trial old run
  and a 30-trial cold re-tune are generation 0, random configurations: that is what these budgets give nsga2
  (``auto`` picks it from 200 trials), not changed for this measurement;
* arms: ``cold``, ``reevaluate`` (``prior: none``; what ``transfer`` gives it today), ``rebased`` (each objective
  shifted by its own median change over the re-evaluated configurations, replayed once the re-evaluations end,
  each replayed trial stamped generation 0, ``FirstPopulationReplay``): generation 0 is then the 37 replayed old
  trials (the old 40 less the 3 re-evaluated) and the first 13 new ones; the other 14 new trials are children of
  parents selected (NSGA-II's elite selection: non-domination rank, then crowding distance) from those 50;
* rule, as tpe's and tpe-2's: ``prior: transfer`` on an nsga2 re-tune (no constraints) becomes the rebased replay
  into its first population if, over the three scenarios, ``rebased`` is sooner than ``reevaluate`` per seed more
  often than later, and its median is not above ``reevaluate``'s on any of them; else it keeps the
  re-evaluations only.

    python benchmarks/retune_samplers.py --strategy cmaes --seeds 30 [--markdown benchmarks/RESULTS.md]
    python benchmarks/retune_samplers.py --strategy tpe --seeds 30 [--markdown benchmarks/RESULTS.md]
    python benchmarks/retune_samplers.py --strategy gp --seeds 15 [--markdown benchmarks/RESULTS.md]
    python benchmarks/retune_samplers.py --strategy tpe-2 --seeds 30 [--markdown benchmarks/RESULTS.md]
    python benchmarks/retune_samplers.py --strategy nsga2-2 --seeds 30 [--markdown benchmarks/RESULTS.md]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_file import environment, write_section  # noqa: E402
from retune import BOWL_SPACE, BY_NAME, bowl, median_iqr, ratio_interval, trials_to_reach  # noqa: E402

import numpy as np  # noqa: E402
import optuna  # noqa: E402
from retune import _BOWL_CENTRE, _BOWL_DIRECTION, _BOWL_ROTATION, _BOWL_WEIGHTS  # noqa: E402

from tunesmith.records import Direction, TrialRecord, TrialState  # noqa: E402
from tunesmith.retune import warm_start_from  # noqa: E402
from tunesmith.seeding import derive_seed  # noqa: E402
from tunesmith.strategy import StrategyDecision, build_strategy  # noqa: E402
from tunesmith.strategy.base import Strategy  # noqa: E402
from tunesmith.strategy.optuna_adapter import OptunaStrategy, sampler_options  # noqa: E402
from tunesmith.strategy.unit_cube import UnitCube  # noqa: E402
from tunesmith.strategy.warm_start import PriorMode, WarmStartedStrategy  # noqa: E402
from tunesmith.testing.shifted_functions import drive  # noqa: E402

SCENARIOS = ("bowl4-mild", "bowl4-moderate", "bowl4-strong")
# per strategy: the warm arms (label, drift.retune.prior); the last one is the candidate, the first the baseline
ARMS = {"cmaes": (("reevaluate", PriorMode.NONE), ("ws-cmaes", PriorMode.TRANSFER)),
        "tpe": (("reevaluate", PriorMode.NONE), ("rebased", PriorMode.REBASED)),
        "gp": (("reevaluate", PriorMode.NONE), ("rebased", PriorMode.REBASED)),
        "tpe-2": (("reevaluate", PriorMode.NONE), ("rebased", PriorMode.REBASED)),
        "nsga2-2": (("reevaluate", PriorMode.NONE), ("rebased", PriorMode.REBASED))}
TITLES = {"cmaes": "Re-tuning with cmaes: Warm Starting CMA-ES", "tpe": "Re-tuning with tpe: old trials replayed",
          "gp": "Re-tuning with gp (Optuna's GPSampler): old trials replayed",
          "tpe-2": "Re-tuning with tpe, two objectives: old trials replayed",
          "nsga2-2": "Re-tuning with nsga2, two objectives: old trials replayed as its first population"}
PAIRS = {"tpe-2": "tpe", "nsga2-2": "nsga2"}   # the two-objective protocols and the sampler each runs
# tpe-2: the second objective's optimum, this far from the first's (unit cube); both move with the bowl's.
SECOND_OPTIMUM_OFFSET = 0.25 * np.array([1.0, 1.0, -1.0, -1.0]) / 2.0
REFERENCE_POINT = (0.6, 0.6)   # hypervolume's, both objectives (the new task's optima are 0.35)


def markers(strategy: str) -> tuple[str, str]:
    return (f"<!-- retune-{strategy}:start (written by benchmarks/retune_samplers.py; edits inside are "
            "overwritten) -->", f"<!-- retune-{strategy}:end -->")


def sampler(name: str, seed: int, objectives: int = 1) -> Any:
    return build_strategy(StrategyDecision(name, {}, ""), BOWL_SPACE, [Direction.MINIMIZE] * objectives,
                          seed % 2**32, 1)


def bowl_pair(shift: float, new: bool) -> Callable[[dict[str, Any]], tuple[float, float]]:
    """Two ``bowl``s whose optima are ``SECOND_OPTIMUM_OFFSET`` apart; on the new task both move ``shift`` along
    the bowl's direction, 0.05 higher and 1.5 times as curved (the first objective is ``bowl`` itself)."""
    cube = UnitCube(BOWL_SPACE)
    first = _BOWL_CENTRE + (shift * _BOWL_DIRECTION if new else 0.0)
    centres = (first, first + SECOND_OPTIMUM_OFFSET)
    level, curvature = (0.35, 1.5) if new else (0.30, 1.0)

    def losses(params: dict[str, Any]) -> tuple[float, float]:
        x = cube.encode(params)
        d1, d2 = (_BOWL_ROTATION @ (x - c) for c in centres)
        return (float(level + curvature * np.sum(_BOWL_WEIGHTS * d1 * d1)),
                float(level + curvature * np.sum(_BOWL_WEIGHTS * d2 * d2)))
    return losses


def drive_pair(strategy: Strategy, losses: Callable[[dict[str, Any]], tuple[float, float]],
               trials: int) -> list[TrialRecord]:
    """``drive`` for two objectives."""
    out = []
    for number in range(trials):
        proposal = strategy.ask()
        assert proposal is not None
        values = losses(dict(proposal.params))
        strategy.tell(proposal.token, TrialState.COMPLETED, list(values))
        out.append(TrialRecord(number, TrialState.COMPLETED, dict(proposal.params), 0, values=values))
    return out


def hypervolume_curve(trials: list[TrialRecord]) -> list[float]:
    """After each trial: the area the trials so far dominate up to ``REFERENCE_POINT`` (both minimised)."""
    out = []
    for n in range(1, len(trials) + 1):
        points = sorted(t.values[:2] for t in trials[:n]
                        if t.values[0] < REFERENCE_POINT[0] and t.values[1] < REFERENCE_POINT[1])
        area, lowest = 0.0, REFERENCE_POINT[1]
        for a, b in points:   # by the first objective; each point lower on the second adds a strip
            if b < lowest:
                area += (REFERENCE_POINT[0] - a) * (lowest - b)
                lowest = b
        out.append(area)
    return out


class FirstPopulationReplay(OptunaStrategy):
    """nsga2-2's ``rebased`` arm: NSGA-II whose replayed old trials (numbered below zero) belong to generation 0.

    Optuna 5.1's ``NSGAIISampler`` (``BaseGASampler``) counts a completed trial in a population only by the
    generation it stamped into the trial's system attributes when it sampled it; a trial added with
    ``add_trials`` carries none and is never a parent (neither is an enqueued one whose every parameter is
    fixed: the re-evaluations, in every arm). Stamped 0, the replayed trials fill generation 0 up to
    ``population_size`` with the first new trials, and the first parent population is selected from them all."""

    def replay(self, history: Sequence[TrialRecord]) -> None:
        super().replay([t for t in history if t.number >= 0])
        generation = {optuna.samplers.NSGAIISampler._get_generation_key(): 0}
        old = [optuna.trial.create_trial(params=dict(t.params), distributions=dict(self._distributions),
                                         values=list(t.values), system_attrs=generation)
               for t in history if t.number < 0 and t.state is TrialState.COMPLETED and t.values]
        if old:
            self.study.add_trials(old)


def pair_sampler(strategy: str, label: str, seed: int) -> Any:
    if strategy == "nsga2-2" and label == "rebased":
        return FirstPopulationReplay("nsga2", BOWL_SPACE, [Direction.MINIMIZE] * 2, seed % 2**32,
                                     sampler_options("nsga2", {}, BOWL_SPACE))
    return sampler(PAIRS[strategy], seed, 2)


def run_pair(strategy: str, name: str, seed: int) -> dict[str, list[float]]:
    """A two-objective protocol's arms on one scenario and seed: the hypervolume after each trial of the re-tune."""
    sc = BY_NAME[name]
    old_losses, new_losses = bowl_pair(sc.shift, new=False), bowl_pair(sc.shift, new=True)
    old = drive_pair(sampler(PAIRS[strategy], seed, 2), old_losses, sc.base_trials)
    best_first = sorted(old, key=lambda t: (t.values, t.number))   # as a re-tune ranks them: lexicographic
    out = {"cold": hypervolume_curve(drive_pair(sampler(PAIRS[strategy], derive_seed(seed, "retune", "cold"), 2),
                                                new_losses, sc.trials))}
    for label, mode in ARMS[strategy]:
        parent: Any = SimpleNamespace(name="old")
        warm = warm_start_from(parent, best_first, sc.top_k, mode, BOWL_SPACE)
        strategy_object = WarmStartedStrategy(
            pair_sampler(strategy, label, derive_seed(seed, "retune", f"warm-{label}")), warm)
        strategy_object.replay([])
        out[label] = hypervolume_curve(drive_pair(strategy_object, new_losses, sc.trials))
    return out


def counts_hypervolume(rows: list[dict[str, list[float]]], trials: int) -> dict[str, list[int]]:
    """Per arm and seed: trials to 99% of that seed's cold final hypervolume (not reached: the budget plus one)."""
    out: dict[str, list[int]] = {"cold": []}
    for row in rows:
        threshold = 0.99 * row["cold"][-1]
        for arm, curve in row.items():
            reached = next((i + 1 for i, v in enumerate(curve) if v >= threshold), None)
            out.setdefault(arm, []).append(trials + 1 if reached is None else reached)
    return out


def run(strategy: str, name: str, seed: int) -> dict[str, list[float]]:
    sc = BY_NAME[name]
    old_loss, new_loss = bowl(sc.shift, new=False), bowl(sc.shift, new=True)
    old = drive(sampler(strategy, seed), old_loss, sc.base_trials)
    best_first = sorted(old, key=lambda t: t.values[0])
    out = {"cold": [t.values[0] for t in drive(sampler(strategy, derive_seed(seed, "retune", "cold")), new_loss,
                                               sc.trials)]}
    for label, mode in ARMS[strategy]:
        warm = warm_start_from(SimpleNamespace(name="old"), best_first, sc.top_k, mode, BOWL_SPACE)  # type: ignore[arg-type]
        strategy_object = WarmStartedStrategy(sampler(strategy, derive_seed(seed, "retune", f"warm-{label}")), warm)
        strategy_object.replay([])
        out[label] = [t.values[0] for t in drive(strategy_object, new_loss, sc.trials)]
    return out


def counts(rows: list[dict[str, list[float]]], trials: int) -> dict[str, list[int]]:
    """Per arm and seed: trials to 99% of that seed's cold final score (not reached: the budget plus one)."""
    out: dict[str, list[int]] = {"cold": []}
    for row in rows:
        threshold = min(row["cold"]) / 0.99
        for arm, curve in row.items():
            reached = trials_to_reach(curve, threshold)
            out.setdefault(arm, []).append(trials + 1 if reached is None else reached)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strategy", choices=sorted(ARMS), default="cmaes")
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--markdown", type=Path, help="write the table into this RESULTS.md")
    args = parser.parse_args()
    started = time.time()
    torch = ["torch"] if args.strategy == "gp" else []
    env = environment(["optuna", "cmaes", "numpy", "scipy", *torch])
    (base, _), (candidate, _) = ARMS[args.strategy]
    lines = [f"| scenario | seeds | cold | {base} | {candidate} | {candidate} / cold | 90% interval | "
             f"{candidate} against {base} per seed: sooner / later / equal |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name in SCENARIOS:
        trials = BY_NAME[name].trials
        if args.strategy in PAIRS:
            c = counts_hypervolume([run_pair(args.strategy, name, seed) for seed in range(args.seeds)], trials)
        else:
            c = counts([run(args.strategy, name, seed) for seed in range(args.seeds)], trials)
        sooner = sum(w < r for w, r in zip(c[candidate], c[base], strict=True))
        later = sum(w > r for w, r in zip(c[candidate], c[base], strict=True))
        low, high = ratio_interval(c["cold"], c[candidate])
        ratio = statistics.median(c[candidate]) / statistics.median(c["cold"])
        lines.append(f"| {name} | {args.seeds} | {median_iqr(c['cold'])} | {median_iqr(c[base])} | "
                     f"{median_iqr(c[candidate])} | {ratio:.2f} | {low:.2f}-{high:.2f} | "
                     f"{sooner} / {later} / {args.seeds - sooner - later} |")
        print(lines[-1], flush=True)
    start, end = markers(args.strategy)
    measure = f"hypervolume (reference point {REFERENCE_POINT})" if args.strategy in PAIRS else "score"
    section = "\n".join([
        start, f"### {TITLES[args.strategy]} (`benchmarks/retune_samplers.py`)", "",
        f"- Command: `python benchmarks/retune_samplers.py --strategy {args.strategy} --seeds {args.seeds} "
        "--markdown benchmarks/RESULTS.md`",
        f"- Median (IQR) trials to 99% of the cold run's final {measure} (not reached in the budget: budget + 1); "
        f"old run 40 trials, each re-tune 30, 3 re-evaluated first (spread); {time.time() - started:.0f} s",
        f"- {env['code']}; {env['machine']}; {env['python']}; {env['versions']}; load average at start "
        f"{env['load']}; {env['date']}", "", *lines, end])
    if args.markdown:
        write_section(args.markdown, section, start, end)


if __name__ == "__main__":
    main()
