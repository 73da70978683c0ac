"""The re-tune benchmark's scoring (benchmarks/retune.py): trials to 99% of cold's final score, the verdict and
its bootstrap interval, and the committed summary being what the committed runs say."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import retune as bench  # noqa: E402


def test_trials_to_99_percent_of_cold_final_count_a_miss_as_budget_plus_one() -> None:
    sc = bench.BY_NAME["bowl4-mild"]
    row = {"cold": [0.9, 0.5, 0.4, 0.41], "ranked": [0.404, 0.5], "none": [0.9, 0.9]}
    counts = bench.counts_of(bench.dataclasses.replace(sc, arms=("ranked", "none")), [row])
    # threshold 0.4 / 0.99 = 0.40404...: cold reaches it at its 3rd trial, ranked at its 1st, none never
    assert counts == {"cold": [3], "ranked": [1], "none": [sc.trials + 1]}


def test_ratio_interval_resamples_seeds_in_pairs_and_holds_the_ratio_of_medians() -> None:
    # warm exactly half of cold on every seed: every paired resample gives 0.5, whatever the seeds' spread
    cold = [4, 10, 20, 30, 8, 12]
    assert bench.ratio_interval(cold, [c // 2 for c in cold]) == (0.5, 0.5)
    # unpaired resampling would not: the same values shuffled across seeds give a spread
    low, high = bench.ratio_interval(cold, [15, 2, 5, 4, 10, 6])
    assert low < 0.5 < high
    # noisy seeds: the interval holds the ratio of medians, and the same inputs give the same interval
    cold = [20, 18, 25, 12, 30, 22, 16, 19, 24, 21]
    warm = [6, 15, 9, 12, 3, 11, 20, 7, 10, 8]
    low, high = bench.ratio_interval(cold, warm)
    ratio = 9.5 / 20.5
    assert low < ratio < high < 1.0 and (low, high) == bench.ratio_interval(cold, warm)


def test_summary_verdict_and_interval_come_from_the_latest_run_of_each_scenario(tmp_path: Path) -> None:
    runs = tmp_path / "runs.jsonl"
    old = {"scenario": "bowl4-mild", "seeds": 2, "spread_over_band": None,
           "counts": {"cold": [10, 10], bench.DEFAULT_ARM: [10, 10]}}
    new = {"scenario": "bowl4-mild", "seeds": 4, "spread_over_band": None,
           "counts": {"cold": [10, 12, 8, 10], bench.DEFAULT_ARM: [5, 4, 6, 5]}}
    miss = {"scenario": "bowl4-strong", "seeds": 2, "spread_over_band": None,
            "counts": {"cold": [10, 10], bench.DEFAULT_ARM: [6, 6], "none": [9, 9]}}
    # two runs of some arms, with more seeds: they replace cold and theirs, keep "none", and say so once
    some = {"scenario": "bowl4-strong", "seeds": 3, "spread_over_band": None, "arms_only": True,
            "counts": {"cold": [10, 10, 10], bench.DEFAULT_ARM: [4, 4, 4]}}
    runs.write_text("\n".join(json.dumps(e) for e in (old, new, miss, some, some)) + "\n", encoding="utf-8")
    rows = {line.split("|")[1].strip(): line for line in bench.summary_section(runs).splitlines()
            if line.startswith("| bowl4")}
    mild = [c.strip() for c in rows["bowl4-mild"].split("|")]
    assert mild[2] == "4" and mild[-5] == "0.50" and mild[-3:-1] == ["yes", "n/a"], mild   # the later run's
    low, high = map(float, mild[-4].split("-"))
    assert (low, high) == pytest.approx(bench.ratio_interval(new["counts"]["cold"], new["counts"][bench.DEFAULT_ARM]),
                                        abs=0.005) and low <= 0.5 <= high
    strong = [c.strip() for c in rows["bowl4-strong"].split("|")]
    assert strong[2] == "3 (2 for arms not rerun)" and strong[4] == "9 (9-9)", strong   # "none" kept
    assert strong[-5:-1] == ["0.40", "0.40-0.40", "yes", "n/a"], strong


def test_the_committed_summary_is_what_the_committed_runs_say() -> None:
    """RESULTS.md's whole summary (header, columns, every row, the runs of some arms merged in) is recomputed from
    retune_runs.jsonl: a hand edit, or a run recorded without rewriting the summary, shows here."""
    results = (Path(bench.__file__).parent / "RESULTS.md").read_text(encoding="utf-8")
    assert bench.summary_section(bench.RUNS) in results
