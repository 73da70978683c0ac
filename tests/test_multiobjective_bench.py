"""The multi-objective benchmark's scoring: 2-D hypervolume on a shared scale, and the paired comparison."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import multiobjective as mo  # noqa: E402


def test_hypervolume_of_hand_computed_fronts():
    lo, hi = (0.0, 0.0), (1.0, 1.0)  # (accuracy: maximise, latency: minimise), already on [0, 1]
    assert mo.hypervolume([(1.0, 0.0)], lo, hi) == pytest.approx(1.1 * 1.1)          # the ideal point
    assert mo.hypervolume([(0.0, 1.0)], lo, hi) == pytest.approx(0.1 * 0.1)          # the worst point
    # two points (scaled to min space: (0, 0.5) and (0.5, 0)): 1.1 x 0.6 + 0.6 x 0.5
    two = mo.hypervolume([(1.0, 0.5), (0.5, 0.0)], lo, hi)
    assert two == pytest.approx(1.1 * 0.6 + 0.6 * 0.5)
    # a dominated point and a duplicate add nothing; scaling follows lo / hi
    assert mo.hypervolume([(1.0, 0.5), (0.5, 0.0), (0.4, 0.6), (1.0, 0.5)], lo, hi) == pytest.approx(two)
    assert mo.hypervolume([(90.0, 5.0), (45.0, 0.0)], (0.0, 0.0), (90.0, 10.0)) == pytest.approx(two)


def test_scores_share_one_scale_per_problem_and_seeds_stay_paired():
    runs = {("tunesmith auto", "p", 0): [(0.9, 1.0), (0.5, 0.2)], ("optuna MOTPE", "p", 0): [(0.9, 1.0)],
            ("tunesmith auto", "p", 1): [(0.5, 0.2)], ("optuna MOTPE", "p", 1): [(0.9, 1.0), (0.6, 0.5)],
            ("optuna NSGA-II", "p", 0): [(0.5, 1.0)], ("optuna NSGA-II", "p", 1): [(0.5, 1.0)],
            ("tunesmith auto", "other", 0): [(100.0, 100.0)]}
    hv = mo.score(runs, [1, 2], "p")
    assert set(hv) == {"tunesmith auto", "optuna MOTPE", "optuna NSGA-II"}
    assert hv["optuna NSGA-II"][2] == pytest.approx([0.1 * 0.1] * 2)  # the pooled worst corner
    assert hv["tunesmith auto"][2][0] > hv["optuna MOTPE"][2][0]
    assert hv["tunesmith auto"][1][0] == hv["optuna MOTPE"][1][0]  # same first point: same hypervolume
    text = mo.paired(hv, 2, "optuna MOTPE")
    assert text.startswith("auto - optuna MOTPE: ") and "better/worse in 1/1 seeds" in text
