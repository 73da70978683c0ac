"""The search-quality report's arithmetic, on made-up runs: the normalized score, group means, and auto's margin
over the best peer with its paired spread over seeds."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.search_quality import report, scoring  # noqa: E402
from benchmarks.search_quality.problems import Problem  # noqa: E402
from benchmarks.search_quality.runner import REGIMES, RunResult  # noqa: E402
from tunesmith.space import Float, SearchSpace  # noqa: E402


def _problem(name: str, group: str) -> Problem:
    return Problem(name, group, lambda: SearchSpace.from_domains({"x": Float(0.0, 1.0)}),
                   lambda params, rng: (0.0, 0.0), 0.0)


# Random search's median best is 1.0 at every budget and the optimum 0.0: score = 100 * (1 - best).
BASE = {n: {"median_best": [1.0] * 128, "best_seen": 0.0, "method": "made up"} for n in ("a", "b")}
SUITE = {"a": _problem("a", "synthetic"), "b": _problem("b", "synthetic")}
BEST = {  # (optimizer, problem, seed) -> best loss of the sequential run
    ("ts-auto", "a", 0): 0.0, ("ts-auto", "b", 0): 0.5, ("ts-auto", "a", 1): 0.2, ("ts-auto", "b", 1): 0.2,
    ("optuna-tpe", "a", 0): 0.1, ("optuna-tpe", "b", 0): 0.5, ("optuna-tpe", "a", 1): 0.6, ("optuna-tpe", "b", 1): 0.6,
    ("random", "a", 0): 0.9, ("random", "b", 0): 0.9, ("random", "a", 1): 0.9, ("random", "b", 1): 0.9,
}


def _results() -> list[RunResult]:
    return [RunResult(p, o, s, "sequential", [1.5, best] + [1.0] * 46, best, 0.01, 0.1)
            for (o, p, s), best in BEST.items()]


def test_normalized_score_is_100_at_the_optimum_and_0_at_random_search():
    assert scoring.normalized(0.0, 1.0, 0.0) == 100.0
    assert scoring.normalized(1.0, 1.0, 0.0) == 0.0
    assert scoring.normalized(2.0, 1.0, 0.0) == -100.0


def test_group_mean_and_spread_over_seeds():
    sc = report.Scores(SUITE, [REGIMES["sequential"]], _results(), BASE)
    mean, sd = sc.group(sc.norm, "sequential", "ts-auto", ["a", "b"], [0, 1])
    # per seed: (100 + 50) / 2 = 75 and (80 + 80) / 2 = 80
    assert sc.per_seed(sc.norm, "sequential", "ts-auto", ["a", "b"], [0, 1]) == pytest.approx({0: 75.0, 1: 80.0})
    assert mean == pytest.approx(77.5)
    assert sd == pytest.approx(3.5355, abs=1e-3)


def test_margin_row_names_the_best_peer_and_the_paired_spread():
    section = report.build(suite=SUITE, regimes=[REGIMES["sequential"]], seeds=[0, 1], results=_results(),
                           base=BASE, optimizers=["ts-auto", "optuna-tpe", "random"], skipped={}, excluded=[],
                           aliases={}, auto_pick={}, command="made up", compute_s=1.0, note="", folds=3, jobs=1)
    rows = [line for line in section.markdown.splitlines() if line.startswith("| synthetic | ")]
    # optuna-tpe per seed: (90 + 50) / 2 = 70 and 40: mean 55; auto - optuna per seed: +5 and +40
    assert rows == ["| synthetic | Optuna TPESampler (default) | 55.0 | 77.5 | +22.5 ± 24.7 | 2 / 2 |"]


def test_a_peer_missing_runs_is_not_named_best_peer():
    # A peer that finished only seed 0 of problem "a", where it scored 100, would lead on its partial mean.
    results = _results() + [RunResult("a", "hyperopt-tpe", 0, "sequential", [0.0] * 48, 0.0, 0.01, 0.1)]
    section = report.build(suite=SUITE, regimes=[REGIMES["sequential"]], seeds=[0, 1], results=results,
                           base=BASE, optimizers=["ts-auto", "optuna-tpe", "hyperopt-tpe", "random"], skipped={},
                           excluded=[], aliases={}, auto_pick={}, command="made up", compute_s=1.0, note="",
                           folds=3, jobs=1)
    lines = section.markdown.splitlines()
    assert [line for line in lines if line.startswith("| synthetic | ")] == [
        "| synthetic | Optuna TPESampler (default) | 55.0 | 77.5 | +22.5 ± 24.7 | 2 / 2 |"]
    assert "Not eligible as best peer (no score on some problem and seed of a group: a run missing, crashed or unscorable): Hyperopt TPE." in lines


def test_a_peer_with_a_whole_seed_missing_is_not_named_best_peer():
    # Hyperopt ran seed 0 of both problems (scoring 100 on each) but not seed 1.
    results = _results() + [RunResult(p, "hyperopt-tpe", 0, "sequential", [0.0] * 48, 0.0, 0.01, 0.1)
                            for p in ("a", "b")]
    section = report.build(suite=SUITE, regimes=[REGIMES["sequential"]], seeds=[0, 1], results=results,
                           base=BASE, optimizers=["ts-auto", "optuna-tpe", "hyperopt-tpe"], skipped={}, excluded=[],
                           aliases={}, auto_pick={}, command="made up", compute_s=1.0, note="", folds=3, jobs=1)
    rows = [line for line in section.markdown.splitlines() if line.startswith("| synthetic | ")]
    assert rows == ["| synthetic | Optuna TPESampler (default) | 55.0 | 77.5 | +22.5 ± 24.7 | 2 / 2 |"]


def test_margin_row_is_blank_when_no_peer_is_complete():
    results = [r for r in _results() if r.optimizer != "optuna-tpe" and r.optimizer != "random"]
    results.append(RunResult("a", "optuna-tpe", 0, "sequential", [0.5] * 48, 0.5, 0.01, 0.1))
    section = report.build(suite=SUITE, regimes=[REGIMES["sequential"]], seeds=[0, 1], results=results,
                           base=BASE, optimizers=["ts-auto", "optuna-tpe"], skipped={}, excluded=[], aliases={},
                           auto_pick={}, command="made up", compute_s=1.0, note="", folds=3, jobs=1)
    rows = [line for line in section.markdown.splitlines() if line.startswith("| synthetic | ")]
    assert rows == ["| synthetic | — | — | — | — | — |"]


def _branin_runs_file(path: Path) -> None:
    import gzip
    import json

    with gzip.open(path, "wt", encoding="utf-8") as f:
        for opt, best in (("ts-auto", 0.3979), ("random", 5.0)):
            f.write(json.dumps(RunResult("branin", opt, 7, "sequential", [9.0] * 47 + [best], best, 0.01, 0.1)
                               .to_json()) + "\n")


def _branin_args(seeds: int = 1) -> list[str]:
    return ["--groups", "synthetic", "--problems", "branin", "--seeds", str(seeds), "--first-seed", "7",
            "--regimes", "sequential", "--optimizers", "ts-auto,random"]


def test_report_only_reads_a_gzipped_runs_file(tmp_path, capsys):
    # How a set's runs are kept in the repository: tables redrawn from them without running anything.
    from benchmarks.search_quality.__main__ import main

    runs = tmp_path / "set.jsonl.gz"
    _branin_runs_file(runs)
    assert main([*_branin_args(), "--runs", str(runs), "--report-only"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| branin |"))
    assert row.split("|")[2].strip() == "100.0"  # branin's optimum is 0.397887: auto's run found it


def test_batch_runs_are_also_scored_at_the_sequential_trial_count():
    # Random search's median best falls from 1.0 (trial 48) to 0.2 (trial 128), and auto's batch runs reach 0.5 at
    # their 48th trial and 0.0 later: at 48 trials they score 100 * (1 - 0.5) / 1 = 50 on both problems and seeds,
    # against auto's sequential per-seed means of 75 and 80 (the sequential runs' R is 1.0 at 48 as well).
    base = {n: {**BASE[n], "median_best": [1.0] * 48 + [0.2] * 80} for n in BASE}
    batch = [RunResult(p, "ts-auto", s, "batch", [0.9] * 47 + [0.5] + [0.0] * 80, 0.0, 0.01, 0.1)
             for p in ("a", "b") for s in (0, 1)]
    section = report.build(suite=SUITE, regimes=[REGIMES["sequential"], REGIMES["batch"]], seeds=[0, 1],
                           results=_results() + batch, base=base, optimizers=["ts-auto", "optuna-tpe"], skipped={},
                           excluded=[], aliases={}, auto_pick={}, command="made up", compute_s=1.0, note="", folds=3,
                           jobs=1)
    lines = section.markdown.splitlines()
    start = lines.index("### Batch against sequential at an equal trial count (48)")
    rows = [line for line in lines[start:] if line.startswith("| tunesmith auto") or line.startswith("| Optuna")]
    assert rows == ["| tunesmith auto | 77.5 → 50.0 (-27.5 ± 3.5) | 77.5 → 50.0 (-27.5 ± 3.5) |"]


def test_a_gzipped_runs_file_cut_short_by_a_kill_is_resumed_from_its_complete_runs(tmp_path, capsys):
    import gzip
    import json
    import zlib

    from benchmarks.search_quality.__main__ import main

    runs = tmp_path / "set.jsonl.gz"
    _branin_runs_file(runs)
    # A process killed after flushing its next run (as the harness flushes each one): a gzip member with no end
    # marker, whose flushed line is still readable.
    extra = RunResult("branin", "ts-auto", 8, "sequential", [1.0] * 48, 1.0, 0.01, 0.1).to_json()
    cut = zlib.compressobj(wbits=31)
    with open(runs, "ab") as f:
        f.write(cut.compress((json.dumps(extra) + "\n").encode()) + cut.flush(zlib.Z_SYNC_FLUSH))
    with pytest.raises(EOFError):
        gzip.open(runs, "rt").read()
    # Seeds 7 and 8: only random search's seed-8 run is missing, so it runs and is appended to the mended file.
    assert main([*_branin_args(seeds=2), "--runs", str(runs), "--resume"]) == 0
    assert "1 to do" in capsys.readouterr().out
    kept = [json.loads(line) for line in gzip.open(runs, "rt").read().splitlines()]   # reads to the end
    assert sorted((d["optimizer"], d["seed"]) for d in kept) == [("random", 7), ("random", 8), ("ts-auto", 7),
                                                                 ("ts-auto", 8)]


def test_kept_runs_are_not_overwritten_without_resume(tmp_path, capsys):
    from benchmarks.search_quality.__main__ import main

    runs = tmp_path / "set.jsonl.gz"
    _branin_runs_file(runs)
    before = runs.read_bytes()
    assert main([*_branin_args(), "--runs", str(runs)]) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert runs.read_bytes() == before


def test_real_clock_runs_get_their_own_section_beside_the_nominal_one(tmp_path):
    """A run of only the real-clock regime is written between its own markers: it must not replace the section
    of the nominal-clock regimes, which holds earlier fresh sets' tables."""
    results = [RunResult(p, o, s, "realclock", [1.5, best] + [1.0] * 38, best, 0.01, 0.1)
               for (o, p, s), best in BEST.items()]
    kw = dict(suite=SUITE, seeds=[0, 1], base=BASE, optimizers=["ts-auto", "optuna-tpe", "random"], skipped={},
              excluded=[], aliases={}, auto_pick={}, command="made up", compute_s=1.0, note="", folds=3, jobs=1)
    nominal = report.build(regimes=[REGIMES["sequential"]], results=_results(), **kw)
    real = report.build(regimes=[REGIMES["realclock"]], results=results, **kw)
    assert (nominal.marker, real.marker) == ("search-quality", "search-quality-realclock")
    assert "### Realclock: 40 x 1 = 40 trials" in real.markdown and "timed for real" in real.markdown
    assert "| synthetic | Optuna TPESampler (default) | 55.0 | 77.5 | +22.5 ± 24.7 | 2 / 2 |" in real.markdown
    out = tmp_path / "RESULTS.md"
    out.write_text("# results\n")
    report.write_markdown(out, nominal.markdown, nominal.marker)
    report.write_markdown(out, real.markdown, real.marker)
    report.write_markdown(out, real.markdown, real.marker)       # rewritten in place, not appended twice
    text = out.read_text()
    assert text.count("## Search quality\n") == 1 and text.count("## Search quality on real clocks") == 1


def test_the_real_clock_regime_tells_tunesmith_no_nominal_trial_time():
    """The nominal regimes tell `bo` that a synthetic evaluation stands for a 1 s trial; the real-clock regime
    does not, so `bo` sees the evaluation's real duration (microseconds)."""
    from benchmarks.search_quality import runner

    seen = []
    original = runner.OPTIMIZERS["ts-auto"].make

    class Spy:
        def make(self, space, seed, budget, batch, trial_seconds=None):
            seen.append((budget, trial_seconds))
            return original(space, seed, budget, batch, trial_seconds)

    problem = Problem("bowl", "synthetic", lambda: SearchSpace.from_domains({"x": Float(0.0, 1.0)}),
                      lambda params, rng: ((params["x"] - 0.3) ** 2,) * 2, 0.0)
    saved = runner.OPTIMIZERS["ts-auto"]
    runner.OPTIMIZERS["ts-auto"] = Spy()  # type: ignore[assignment]
    try:
        real = runner.run_one(problem, "ts-auto", 0, REGIMES["realclock"])
        nominal = runner.run_one(problem, "ts-auto", 0, runner.Regime("short", 12, 1))
    finally:
        runner.OPTIMIZERS["ts-auto"] = saved
    assert seen == [(40, None), (12, 1.0)]
    assert real.error is None and len(real.true_losses) == 40 and min(real.true_losses) < 1e-3
    assert nominal.error is None and len(nominal.true_losses) == 12
