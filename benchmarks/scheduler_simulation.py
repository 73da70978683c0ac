"""Steps used and best final score of ASHA / Hyperband / the median rule against running every trial to the end.

    python benchmarks/scheduler_simulation.py [--trials 81] [--seeds 20] [--workers 8]

Synthetic learning curves, in simulated time (no processes): trial i's validation accuracy after epoch t is
``a_i * (1 - exp(-t / tau_i)) + noise``, with a random asymptote ``a_i ~ U(0.6, 0.95)``, a random speed
``tau_i ~ U(1, --tau-max)`` (default 8; curves cross, so slow learners can end on top) and Gaussian noise
(sd ``--noise``, default 0.01) at each epoch. Each trial reports epochs 1..27, taking a random U(0.5, 2)
simulated seconds per epoch, so 8 workers interleave. Every scheduler sees the same curves; the full run is
every trial to epoch 27.

Reported per scheduler, over ``--seeds`` curve sets: the fraction of the full run's epochs used, and the gap
between the best final score among trials the scheduler let finish and the full run's best final score
(relative; the issue's target is <= 35% of the epochs and a gap within 1%), and how often the full run's best
trial survived.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics

from tunesmith.records import Direction, TrialState
from tunesmith.scheduler import ASHAScheduler, HyperbandScheduler, MedianScheduler, NoScheduler, resource_summary
from tunesmith.scheduler.base import Scheduler
from tunesmith.testing.scheduler_sim import Curve, simulate

MAX = 27


def curves(n: int, seed: int, tau_max: float, noise: float) -> list[Curve]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        a, tau = rng.uniform(0.6, 0.95), rng.uniform(1.0, tau_max)
        values = [a * (1 - math.exp(-t / tau)) + rng.gauss(0, noise) for t in range(1, MAX + 1)]
        # Random epoch times make the workers' reports interleave out of number order: real asynchrony.
        out.append(Curve.of(values, seconds_per_step=rng.uniform(0.5, 2.0)))
    return out


def schedulers(seed: int) -> dict[str, Scheduler]:
    up = Direction.MAXIMIZE
    return {
        "none (full run)": NoScheduler(),
        "asha(1, 27, eta 3)": ASHAScheduler(up, MAX, 1, 3),
        "hyperband(1, 27, eta 3)": HyperbandScheduler(up, MAX, 1, 3, seed=seed),
        "median(warmup 3, min 5)": MedianScheduler(up, warmup_steps=3, min_trials=5),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=81)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--tau-max", type=float, default=8.0, help="slowest learning rate of a curve (>= 1)")
    parser.add_argument("--noise", type=float, default=0.01, help="sd of the per-epoch noise")
    args = parser.parse_args()
    rows: dict[str, list[tuple[float, float, bool]]] = {}
    for seed in range(args.seeds):
        tabulated = curves(args.trials, seed, args.tau_max, args.noise)
        finals = [c.reports[-1].value for c in tabulated]
        best_full = max(finals)
        for name, scheduler in schedulers(seed).items():
            result = simulate(scheduler, tabulated, workers=args.workers)
            done = [t for t in result.trials if t.state is TrialState.COMPLETED]
            best = max(t.values[0] for t in done if t.values)
            used = resource_summary(result.trials, MAX).fraction_used
            survived = any(finals[t.number] == best_full for t in done)
            rows.setdefault(name, []).append((used, (best_full - best) / best_full, survived))
    print(f"{args.trials} trials, {args.workers} workers, {args.seeds} curve sets, tau ~ U(1, {args.tau_max}), "
          f"noise sd {args.noise}; gap = relative shortfall of the best final score")
    print(f"{'scheduler':<26} {'epochs used':>12} {'max used':>9} {'mean gap':>9} {'max gap':>8} "
          f"{'best kept':>10}")
    for name, values in rows.items():
        used, gap, kept = zip(*values, strict=True)
        print(f"{name:<26} {statistics.mean(used):>11.1%} {max(used):>9.1%} {statistics.mean(gap):>9.2%} "
              f"{max(gap):>8.2%} {sum(kept):>5}/{len(kept)}")


if __name__ == "__main__":
    main()
