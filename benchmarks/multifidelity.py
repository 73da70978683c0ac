"""Early stopping on real learning curves: tunesmith's schedulers beside Optuna's pruners, at equal trial counts.

    python benchmarks/multifidelity.py [--trials 54] [--seeds 3] [--workloads sgd,hgb]
                                       [--rows ts-none,ts-asha,...] [--markdown benchmarks/RESULTS.md]

Workloads (``benchmarks/mf_objectives.py``; scikit-learn's bundled ``digits``, validation accuracy after every
step, 27 steps):

    sgd   SGDClassifier, one partial_fit epoch per step (loss, alpha, learning-rate schedule, eta0)
    hgb   HistGradientBoostingClassifier with warm_start, one boosting iteration per step (learning rate, leaves,
          min samples per leaf, L2)

Rows (ids for ``--rows``); all run 2 workers and ``--trials`` trials per seed:

    ts-none           tunesmith, scheduler none: every trial runs its 27 steps (the reference, "full")
    ts-median         tunesmith, {name: median, warmup_steps: 3, min_trials: 5}
    ts-asha           tunesmith, {name: asha, min_resource: 1, max_resource: 27, reduction_factor: 3}
    ts-hyperband      tunesmith, {name: hyperband, min_resource: 1, max_resource: 27, reduction_factor: 3}
    optuna-median     Optuna MedianPruner(n_startup_trials=5, n_warmup_steps=3)
    optuna-sha        Optuna SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    optuna-hyperband  Optuna HyperbandPruner(min_resource=1, max_resource=27, reduction_factor=3)
    optuna-none       (not run by default) Optuna NopPruner: the same epochs and scores as ts-none, other wall time

tunesmith runs through the public API, ``tunesmith.run(spec, storage=<temporary SQLite file>)`` with
``strategy: random``, ``executor: {kind: process, workers: 2}`` and ``seed``. Optuna runs ``study.optimize(...,
n_jobs=2)`` (threads, its way of running two at once) on its default in-memory storage with
``RandomSampler(seed)``, and every trial **enqueued** with the configuration tunesmith's random strategy drew for
that trial number in ``ts-none``: both libraries then judge the same configurations, whose curves are the same
(every model's seed is fixed), and differ only in what they stop. The script checks that every tunesmith row drew
those same configurations too.

Measured per row (mean over seeds): *epochs* = the sum over trials of the last step each trained to, against
trials x 27; *best final* = the best validation accuracy among trials that trained all 27 steps (a trial stopped
at its last step still trained fully); *gap* = (none's best - the row's best) / none's best; *winner kept* = the
seeds in which the configuration that ``ts-none`` found best was let train to the end; *wall* = from creating the
store or study (and, for tunesmith, starting its worker processes) until the run returned.

Paired by seed, for each tunesmith row and its Optuna counterpart (ASHA / SuccessiveHalving, Hyperband /
HyperbandPruner, median / MedianPruner): the per-seed differences in epochs and best final, their mean ± sd, the
mean's 95% t interval and how many seeds tunesmith did better, tied or did worse. Both libraries' two workers
reach rungs in a timing-dependent order, so means of a few seeds can differ by chance; the interval says whether
the seeds can tell the two apart.

Targets (from the issue): ASHA uses at most 35% of the full run's epochs and reaches a best final score within
1% of it; tunesmith's ASHA is no worse than Optuna's pruners (SuccessiveHalving, Hyperband) on epochs and best
score.
"""

from __future__ import annotations

import os

# One BLAS / OpenMP thread per process, before numpy is imported anywhere: tunesmith's worker processes inherit
# this environment, and Optuna's two threads share this process; either way two trials share the two cores alike.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import logging  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import mf_objectives  # noqa: E402
from results_file import environment, write_section  # noqa: E402

MARK_START = "<!-- multifidelity:start (written by benchmarks/multifidelity.py; edits inside are overwritten) -->"
MARK_END = "<!-- multifidelity:end -->"
MAX_STEP = mf_objectives.MAX_STEP
TARGET_EPOCHS = 0.35   # ASHA's epochs against the full run
TARGET_GAP = 0.01      # ASHA's best final score within 1% of the full run's


@dataclass(frozen=True)
class Row:
    id: str
    label: str
    library: str                       # tunesmith | optuna
    scheduler: dict[str, Any] | None   # tunesmith's scheduler section
    default: bool = True


ROWS = [
    Row("ts-none", "none (full run)", "tunesmith", {"name": "none"}),
    Row("ts-median", "median (warmup 3, min 5)", "tunesmith", {"name": "median", "warmup_steps": 3, "min_trials": 5}),
    Row("ts-asha", "ASHA (1, 27, η 3)", "tunesmith",
        {"name": "asha", "min_resource": 1, "max_resource": MAX_STEP, "reduction_factor": 3}),
    Row("ts-hyperband", "Hyperband (1, 27, η 3)", "tunesmith",
        {"name": "hyperband", "min_resource": 1, "max_resource": MAX_STEP, "reduction_factor": 3}),
    Row("optuna-median", "MedianPruner (warmup 3, startup 5)", "optuna", None),
    Row("optuna-sha", "SuccessiveHalvingPruner (1, η 3)", "optuna", None),
    Row("optuna-hyperband", "HyperbandPruner (1, 27, η 3)", "optuna", None),
    Row("optuna-none", "NopPruner (full run)", "optuna", None, default=False),
]
BY_ID = {r.id: r for r in ROWS}


@dataclass
class Run:
    """One row on one workload and seed."""

    epochs: int
    best: float | None                      # best score among trials that trained all MAX_STEP steps
    wall_s: float
    configs: list[tuple[Any, ...]]          # by trial number
    finished: dict[tuple[Any, ...], int]    # configuration -> last step it trained to
    scores: dict[tuple[Any, ...], float]    # configuration -> its score at MAX_STEP, for those that got there
    failed: int


def key(params: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(sorted(params.items()))


# -- one run of each library ------------------------------------------------------------------------------------

def run_tunesmith(row: Row, workload: str, trials: int, seed: int, folder: str) -> Run:
    import tunesmith
    from tunesmith.records import TrialState

    spec = {
        "name": f"mf-{workload}-{row.id}-{seed}", "objective": {"metric": "accuracy", "direction": "maximize"},
        "space": mf_objectives.SPACES[workload], "strategy": "random", "budget": {"trials": trials},
        "scheduler": row.scheduler, "executor": {"kind": "process", "workers": 2},
        "trial": {"function": f"mf_objectives:{workload}"}, "seed": seed,
        "workdir": os.path.join(folder, "work"), "base_dir": str(BENCH_DIR),
    }
    t0 = time.perf_counter()
    result = tunesmith.run(spec, storage=f"sqlite:///{os.path.join(folder, 'tunesmith.db')}")
    wall = time.perf_counter() - t0
    ordered = sorted(result.trials, key=lambda t: t.number)
    steps = {key(dict(t.params)): t.intermediate[-1].step if t.intermediate else 0 for t in ordered}
    finals = {key(dict(t.params)): t.intermediate[-1].value for t in ordered
              if t.intermediate and t.intermediate[-1].step == MAX_STEP}
    return Run(sum(steps.values()), max(finals.values(), default=None), wall, [key(dict(t.params)) for t in ordered],
               steps, finals, sum(1 for t in ordered if t.state is TrialState.FAILED))


def run_optuna(row: Row, workload: str, trials: int, seed: int, configs: list[dict[str, Any]]) -> Run:
    import optuna

    pruner: optuna.pruners.BasePruner = {
        "optuna-median": lambda: optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=3),
        "optuna-sha": lambda: optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3),
        "optuna-hyperband": lambda: optuna.pruners.HyperbandPruner(min_resource=1, max_resource=MAX_STEP,
                                                                   reduction_factor=3),
        "optuna-none": lambda: optuna.pruners.NopPruner(),
    }[row.id]()
    t0 = time.perf_counter()
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=seed),
                                pruner=pruner, study_name=f"mf-{workload}-{row.id}-{seed}")
    for params in configs:
        study.enqueue_trial(params)
    study.optimize(mf_objectives.optuna_objective(workload), n_trials=trials, n_jobs=2)
    wall = time.perf_counter() - t0
    ordered = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    steps = {key(t.params): max(t.intermediate_values, default=0) for t in ordered}
    finals = {key(t.params): t.intermediate_values[MAX_STEP] for t in ordered if MAX_STEP in t.intermediate_values}
    return Run(sum(steps.values()), max(finals.values(), default=None), wall, [key(t.params) for t in ordered],
               steps, finals, sum(1 for t in ordered if t.state == optuna.trial.TrialState.FAIL))


# -- the report ---------------------------------------------------------------------------------------------------

@dataclass
class Result:
    row: Row
    workload: str
    runs: dict[int, Run] = field(default_factory=dict)  # by seed


def summarise(res: Result, none: Result, trials: int) -> dict[str, Any]:
    seeds = sorted(res.runs)
    full = trials * MAX_STEP
    fraction = statistics.mean(res.runs[s].epochs / full for s in seeds)
    bests = [res.runs[s].best for s in seeds]
    gaps, kept = [], 0
    for s in seeds:
        ref, got = none.runs[s], res.runs[s]
        gaps.append((ref.best - got.best) / ref.best if ref.best and got.best is not None else float("nan"))
        winner = max(ref.scores, key=lambda c: ref.scores[c], default=None)
        kept += winner is not None and got.finished.get(winner) == MAX_STEP
    return {
        "fraction": fraction,
        "epochs": statistics.mean(res.runs[s].epochs for s in seeds),
        "best": statistics.mean(b for b in bests if b is not None) if any(b is not None for b in bests) else None,
        "gap": statistics.mean(gaps),
        "gap_max": max(gaps),
        "kept": kept,
        "seeds": len(seeds),
        "wall": statistics.mean(res.runs[s].wall_s for s in seeds),
        "failed": sum(res.runs[s].failed for s in seeds),
        # the same configuration under the same trial number, so trial k starts k-th in every row
        "same_configs": all(res.runs[s].configs == none.runs[s].configs for s in seeds),
    }


# tunesmith's row and the Optuna row it is held against; the targets name the first two pairs.
PAIRS = [("ts-asha", "optuna-sha"), ("ts-hyperband", "optuna-hyperband"), ("ts-median", "optuna-median")]


@dataclass(frozen=True)
class Paired:
    """tunesmith minus Optuna, seed by seed: both judged the same configurations, so a seed is a matched pair."""

    seeds: list[int]
    epochs: list[int]        # tunesmith's epochs - Optuna's (negative: tunesmith trained less)
    best: list[float]        # tunesmith's best final - Optuna's (positive: tunesmith found better)

    @staticmethod
    def of(ts: Result, opt: Result) -> Paired:
        seeds = [s for s in sorted(ts.runs) if s in opt.runs
                 and ts.runs[s].best is not None and opt.runs[s].best is not None]
        return Paired(seeds, [ts.runs[s].epochs - opt.runs[s].epochs for s in seeds],
                      [ts.runs[s].best - opt.runs[s].best for s in seeds])  # type: ignore[operator]

    @staticmethod
    def stats(diffs: list[float]) -> tuple[float, float, float]:
        """Mean, standard deviation over seeds, and the half-width of the mean's 95% t interval."""
        if len(diffs) < 2:
            return (diffs[0] if diffs else float("nan")), float("nan"), float("nan")
        from scipy.stats import t

        sd = statistics.stdev(diffs)
        return statistics.mean(diffs), sd, float(t.ppf(0.975, len(diffs) - 1)) * sd / len(diffs) ** 0.5

    @staticmethod
    def tally(diffs: list[float], better_if_negative: bool) -> tuple[int, int, int]:
        """Seeds where tunesmith did better, tied, did worse."""
        sign = -1 if better_if_negative else 1
        return (sum(1 for d in diffs if sign * d > 1e-12), sum(1 for d in diffs if abs(d) <= 1e-12),
                sum(1 for d in diffs if sign * d < -1e-12))

    def describe(self) -> str:
        """One line: mean ± sd, the 95% interval, the per-seed tally, for epochs and for best."""
        (me, se, he), (mb, sb, hb) = self.stats([float(e) for e in self.epochs]), self.stats(self.best)
        we, te, le = self.tally([float(e) for e in self.epochs], better_if_negative=True)
        wb, tb, lb = self.tally(self.best, better_if_negative=False)
        return (f"epochs {me:+.1f} ± {se:.1f} (95% CI {me - he:+.1f} .. {me + he:+.1f}; fewer/equal/more in "
                f"{we}/{te}/{le} seeds), best {mb * 100:+.3f} ± {sb * 100:.3f} points (95% CI {(mb - hb) * 100:+.3f} .. "
                f"{(mb + hb) * 100:+.3f}; better/equal/worse in {wb}/{tb}/{lb} seeds)")

    def verdict(self) -> str:
        """Whether the seeds show tunesmith worse on either measure, beyond what they can tell from noise."""
        (me, _, he), (mb, _, hb) = self.stats([float(e) for e in self.epochs]), self.stats(self.best)
        if len(self.seeds) < 2:
            return "too few seeds to judge"
        worse = [what for what, bad in (("epochs", me - he > 0), ("best", mb + hb < 0)) if bad]
        better = [what for what, good in (("epochs", me + he < 0), ("best", mb - hb > 0)) if good]
        if worse:
            return f"worse on {' and '.join(worse)} beyond the seeds' noise"
        if better:
            rest = "" if len(better) == 2 else ", no difference the seeds can tell from noise on the other"
            return f"better on {' and '.join(better)} beyond the seeds' noise{rest}"
        return "no difference the seeds can tell from noise on either"


def pairs_of(results: list[Result], workload: str) -> list[tuple[Result, Result, Paired]]:
    by = {r.row.id: r for r in results if r.workload == workload}
    return [(by[a], by[b], Paired.of(by[a], by[b])) for a, b in PAIRS if a in by and b in by]


def paired_table(results: list[Result]) -> str:
    """Per pair and workload: the paired differences' mean ± sd, 95% interval and per-seed tally."""
    lines = ["| workload | tunesmith − Optuna | seeds | epochs: mean ± sd (95% CI) | fewer / equal / more | "
             "best final, points: mean ± sd (95% CI) | better / equal / worse |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for workload in dict.fromkeys(r.workload for r in results):
        for ts, opt, p in pairs_of(results, workload):
            (me, se, he), (mb, sb, hb) = p.stats([float(e) for e in p.epochs]), p.stats(p.best)
            we, te, le = p.tally([float(e) for e in p.epochs], better_if_negative=True)
            wb, tb, lb = p.tally(p.best, better_if_negative=False)
            lines.append(f"| {workload} | {ts.row.label.split(' (')[0]} − {opt.row.label.split(' (')[0]} "
                         f"| {len(p.seeds)} | {me:+.1f} ± {se:.1f} ({me - he:+.1f} .. {me + he:+.1f}) "
                         f"| {we} / {te} / {le} | {mb * 100:+.3f} ± {sb * 100:.3f} ({(mb - hb) * 100:+.3f} .. "
                         f"{(mb + hb) * 100:+.3f}) | {wb} / {tb} / {lb} |")
    return "\n".join(lines)


def per_seed_lines(results: list[Result]) -> list[str]:
    """The paired differences seed by seed (epochs; best final in points), for the record."""
    out = []
    for workload in dict.fromkeys(r.workload for r in results):
        for ts, opt, p in pairs_of(results, workload):
            cells = ", ".join(f"{s}: {e:+d} / {b * 100:+.2f}" for s, e, b in zip(p.seeds, p.epochs, p.best, strict=True))
            out.append(f"{workload}, {ts.row.id} − {opt.row.id} (seed: epochs / best points): {cells}")
    return out


def markdown_table(results: list[Result], trials: int) -> str:
    lines = ["| workload | library | scheduler / pruner | epochs (% of full) | best final accuracy | gap to none "
             "(mean / worst seed) | winner kept | wall (s) |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for workload in dict.fromkeys(r.workload for r in results):
        none = next(r for r in results if r.workload == workload and r.row.id == "ts-none")
        for res in (r for r in results if r.workload == workload):
            s = summarise(res, none, trials)
            best = f"{s['best']:.4f}" if s["best"] is not None else "—"
            gap = "—" if res.row.id == "ts-none" else f"{s['gap'] * 100:+.2f}% / {s['gap_max'] * 100:+.2f}%"
            lines.append(f"| {workload} | {res.row.library} | {res.row.label} | {s['epochs']:.0f} "
                         f"({s['fraction'] * 100:.1f}%) | {best} | {gap} | {s['kept']}/{s['seeds']} "
                         f"| {s['wall']:.1f} |")
    return "\n".join(lines)


def verdicts(results: list[Result], trials: int) -> list[str]:
    out = []
    for workload in dict.fromkeys(r.workload for r in results):
        by = {r.row.id: r for r in results if r.workload == workload}
        none, asha = by.get("ts-none"), by.get("ts-asha")
        if none is None or asha is None:
            continue
        a = summarise(asha, none, trials)
        ok_epochs, ok_gap = a["fraction"] <= TARGET_EPOCHS, a["gap"] <= TARGET_GAP
        line = (f"**{workload}**: tunesmith ASHA used {a['fraction'] * 100:.1f}% of the full run's epochs "
                f"({'meets' if ok_epochs else 'misses'} <= {TARGET_EPOCHS * 100:.0f}%) and its best final accuracy is "
                f"{a['gap'] * 100:+.2f}% from the full run's on average, {a['gap_max'] * 100:+.2f}% in the worst "
                f"seed ({'meets' if ok_gap else 'misses'} within {TARGET_GAP * 100:.0f}% on the mean).")
        for rid in ("optuna-sha", "optuna-hyperband"):
            if rid in by:
                o = summarise(by[rid], none, trials)
                no_worse = a["epochs"] <= o["epochs"] and (a["best"] or 0) >= (o["best"] or 0)
                line += (f" Against Optuna's {by[rid].row.label.split(' ')[0]}: {a['epochs']:.0f} vs {o['epochs']:.0f} "
                         f"epochs, best {a['best']:.4f} vs {o['best']:.4f} (means: "
                         f"{'no worse on both' if no_worse else 'worse on at least one'}")
                if rid == "optuna-sha":
                    # The pair. Seeds are matched (same configurations, same curves), so the honest test
                    # is on the per-seed differences, whose spread two timing-dependent runs make wide.
                    p = Paired.of(asha, by[rid])
                    line += f"; paired over {len(p.seeds)} seeds: {p.describe()}: {p.verdict()}"
                line += ")."
        out.append(line)
    return out


def markdown_section(results: list[Result], env: dict[str, str], command: str, trials: int, seeds: list[int],
                     total_s: float, note: str | None) -> str:
    same = all(summarise(r, next(n for n in results if n.workload == r.workload and n.row.id == "ts-none"),
                         trials)["same_configs"] for r in results)
    failed = sum(run.failed for r in results for run in r.runs.values())
    lines = [
        MARK_START,
        "## Early stopping on real learning curves",
        "",
        f"- Command: `{command}` ({total_s / 60:.1f} min for the whole script)",
        f"- Date: {env['date']}; tunesmith at {env['code']}",
        f"- Machine: {env['machine']}; load average at start {env['load']}",
        f"- Python: {env['python']}; {env['versions']}",
        f"- {trials} trials per run, 2 workers, seeds {', '.join(map(str, seeds))}; every row judged the same "
        f"configurations per seed, in the same trial-number order: {'yes' if same else 'NO'}; failed trials: {failed}",
    ]
    if note:
        lines.append(f"- Note: {note}")
    lines += [
        "",
        ("Workloads: `sgd` = SGDClassifier, one `partial_fit` epoch per step; `hgb` = HistGradientBoostingClassifier "
         "with `warm_start`, one boosting iteration per step; both on scikit-learn's bundled `digits`, validation "
         f"accuracy (450 images) after each of {MAX_STEP} steps (`benchmarks/mf_objectives.py`). tunesmith runs "
         "`tunesmith.run` with `strategy: random`, the process executor with 2 workers and a temporary SQLite store; "
         "Optuna runs `study.optimize(n_jobs=2)` (threads) in memory, each trial enqueued with the configuration "
         "tunesmith's random strategy drew for that trial number, so every row judges the same configurations and "
         "curves. *epochs* = sum over trials of the last step trained (mean over seeds; % of trials × 27); *best "
         "final* = best accuracy among trials that trained all 27 steps (mean over seeds); *gap* = relative shortfall "
         "against the full run's best; *winner kept* = seeds in which the full run's best configuration was let "
         "finish; *wall* = store/study creation and worker start-up included (mean over seeds)."),
        "",
        markdown_table(results, trials),
        "",
        *[f"- {v}" for v in verdicts(results, trials)],
        "",
        ("Paired by seed (tunesmith − Optuna; a seed is a matched pair: the same configurations, by trial number, "
         "and the same curves). Epochs: negative means tunesmith trained less. Best final: in accuracy points, "
         "positive means tunesmith kept a better configuration. sd is over seeds; the 95% interval is the mean's "
         "(t distribution). Two workers report in a timing-dependent order in both libraries, so the same seed run "
         "twice can differ too."),
        "",
        paired_table(results),
        "",
        *[f"- {line}" for line in per_seed_lines(results)],
        MARK_END,
    ]
    return "\n".join(lines) + "\n"


def write_markdown(path: Path, section: str) -> None:
    """Replace this benchmark's section of ``path`` (between its markers), append it, or create the file."""
    write_section(path, section, MARK_START, MARK_END)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=54)
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0 .. N-1")
    parser.add_argument("--workloads", default="sgd,hgb")
    parser.add_argument("--rows", default=",".join(r.id for r in ROWS if r.default))
    parser.add_argument("--markdown", type=Path, help="write the section into this file (between its markers)")
    parser.add_argument("--note", help="a line added to the markdown section")
    parser.add_argument("--tmpdir", help="where the temporary stores and trial folders go")
    args = parser.parse_args()
    import optuna

    optuna.logging.set_verbosity(logging.WARNING)
    rows = [BY_ID[r] for r in args.rows.split(",")]
    if rows[0].id != "ts-none":
        rows = [BY_ID["ts-none"], *[r for r in rows if r.id != "ts-none"]]  # the reference, and the configurations
    workloads = args.workloads.split(",")
    seeds = list(range(args.seeds))
    env = environment(("tunesmith", "optuna", "scikit-learn", "numpy"))
    started = time.perf_counter()
    results = [Result(row, w) for w in workloads for row in rows]
    for workload in workloads:
        for seed in seeds:
            configs: list[dict[str, Any]] = []
            for res in (r for r in results if r.workload == workload):
                folder = tempfile.mkdtemp(prefix=f"mf-{workload}-{res.row.id}-", dir=args.tmpdir)
                try:
                    if res.row.library == "tunesmith":
                        run = run_tunesmith(res.row, workload, args.trials, seed, folder)
                    else:
                        run = run_optuna(res.row, workload, args.trials, seed, configs)
                finally:
                    shutil.rmtree(folder, ignore_errors=True)
                if res.row.id == "ts-none":
                    configs = [dict(c) for c in run.configs]
                res.runs[seed] = run
                print(f"{workload} seed {seed} {res.row.id:<17} epochs {run.epochs:5d} "
                      f"({run.epochs / (args.trials * MAX_STEP) * 100:5.1f}%) best {run.best} "
                      f"wall {run.wall_s:6.1f}s failed {run.failed}", flush=True)
    total = time.perf_counter() - started
    print()
    print(markdown_table(results, args.trials))
    print()
    for v in verdicts(results, args.trials):
        print(v)
    print()
    print(paired_table(results))
    print()
    for line in per_seed_lines(results):
        print(line)
    print(f"\nwhole script: {total:.0f} s")
    if args.markdown:
        command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__), *sys.argv[1:]])
        write_markdown(args.markdown, markdown_section(results, env, command, args.trials, seeds, total, args.note))


if __name__ == "__main__":
    main()
