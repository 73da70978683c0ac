"""The multifidelity benchmark's paired comparison (tunesmith − Optuna, seed by seed), on made-up runs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import multifidelity as mf  # noqa: E402


def result(row_id: str, runs: dict[int, tuple[int, float]]) -> mf.Result:
    res = mf.Result(mf.BY_ID[row_id], "sgd")
    for seed, (epochs, best) in runs.items():
        res.runs[seed] = mf.Run(epochs, best, 1.0, [], {}, {}, 0)
    return res


def test_differences_are_taken_seed_by_seed() -> None:
    ts = result("ts-asha", {0: (150, 0.96), 1: (200, 0.97), 2: (100, 0.95)})
    opt = result("optuna-sha", {0: (140, 0.96), 1: (210, 0.96), 2: (100, 0.95)})
    p = mf.Paired.of(ts, opt)
    assert p.seeds == [0, 1, 2]
    assert p.epochs == [10, -10, 0]
    assert p.best == pytest.approx([0.0, 0.01, 0.0])
    assert p.tally([float(e) for e in p.epochs], better_if_negative=True) == (1, 1, 1)
    assert p.tally(p.best, better_if_negative=False) == (1, 2, 0)
    mean, sd, half = p.stats([float(e) for e in p.epochs])
    assert mean == 0 and sd == pytest.approx(10.0)
    assert half == pytest.approx(4.302653 * 10 / 3**0.5, rel=1e-5)  # t(0.975, 2 df)


def test_a_seed_without_a_finished_trial_on_either_side_is_left_out() -> None:
    ts = result("ts-asha", {0: (150, 0.96), 1: (200, 0.97)})
    opt = result("optuna-sha", {0: (140, 0.96), 1: (210, 0.96)})
    ts.runs[1].best = None
    assert mf.Paired.of(ts, opt).seeds == [0]


def test_the_verdict_needs_the_interval_to_exclude_zero() -> None:
    noisy = mf.Paired([0, 1, 2, 3], [30, -20, 25, -15], [0.0, 0.0, 0.0, 0.0])
    assert noisy.verdict() == "no difference the seeds can tell from noise on either"
    worse = mf.Paired([0, 1, 2, 3], [10, 12, 11, 9], [0.0, 0.0, 0.0, 0.0])
    assert worse.verdict() == "worse on epochs beyond the seeds' noise"
    better = mf.Paired([0, 1, 2, 3], [-10, -12, -11, -9], [0.001, 0.002, 0.001, 0.002])
    assert better.verdict() == "better on epochs and best beyond the seeds' noise"
    fewer = mf.Paired([0, 1, 2, 3], [-10, -12, -11, -9], [0.0, 0.001, -0.001, 0.0])
    assert fewer.verdict() == ("better on epochs beyond the seeds' noise, no difference the seeds can tell from "
                               "noise on the other")
    assert mf.Paired([0], [5], [0.0]).verdict() == "too few seeds to judge"


def test_the_section_shows_the_paired_table_and_the_seeds() -> None:
    results = [result("ts-none", {0: (1458, 0.97), 1: (1458, 0.97)}),
               result("ts-asha", {0: (150, 0.96), 1: (200, 0.97)}),
               result("optuna-sha", {0: (140, 0.96), 1: (210, 0.96)})]
    table = mf.paired_table(results)
    assert "| sgd | ASHA − SuccessiveHalvingPruner | 2 | +0.0 ± 14.1" in table
    assert mf.per_seed_lines(results) == [
        "sgd, ts-asha − optuna-sha (seed: epochs / best points): 0: +10 / +0.00, 1: -10 / +1.00"]
    verdict = mf.verdicts(results, 54)[0]
    assert "paired over 2 seeds: epochs +0.0 ± 14.1" in verdict
