"""Per-trial overhead of tunesmith beside Optuna, on a no-op objective, in one run.

    python benchmarks/overhead.py [--trials 1000] [--repeats 3] [--markdown benchmarks/RESULTS.md]

Every row runs the same no-op objective (``benchmarks/noop_objective.py``) over the same one-parameter float space
``x ~ U(0, 1)`` for ``--trials`` trials, in a fresh interpreter and a fresh temporary folder (and database) of its
own. Imports happen before the clock starts; everything else is timed: creating the store or study (schema
included), spawning workers, every trial, closing. Per-trial time is that wall time divided by the trials.

Rows (ids for ``--rows``):

    ts-inline        tunesmith, inline executor, SQLite file, random strategy
    ts-proc1         tunesmith, process executor with 1 worker, SQLite file, random strategy
    ts-proc2         tunesmith, process executor with 2 workers, SQLite file, random strategy
    optuna-mem       Optuna, in-memory storage, RandomSampler
    optuna-sqlite    Optuna, RDBStorage on a SQLite file, RandomSampler
    ts-inline-auto   tunesmith inline + SQLite, default strategy (`auto`, which resolves to `bo` here: its cost
                     guard holds proposals to 10% of these no-op trials, so most are cheap perturbations)
    optuna-mem-tpe   Optuna in memory, default sampler (TPESampler)
    optuna-sqlite-tpe  Optuna + SQLite, default sampler (TPESampler)
    ts-inline-full   (not run by default) tunesmith inline with SQLite synchronous=FULL: an fsync per commit
    ts-inline-metrics, ts-proc2-metrics  (not run by default) ts-inline / ts-proc2 with Prometheus metrics on: the
                     metrics listener, its /metrics server on a free loopback port and a node_exporter textfile
                     (what `--metrics-port 0 --metrics-file F` does); compare with the same rows without, same run:
                     --rows ts-inline,ts-inline-metrics,ts-proc2,ts-proc2-metrics

The first five run ``--repeats`` times; the default-sampler rows, which only show what the sampler itself costs,
run ``--sampler-repeats`` times (1 by default, to keep a full run near three minutes on a small machine).
Repeats are interleaved (round robin over the rows) so a burst of load from elsewhere hits every row alike.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shlex
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from results_file import environment, write_section

BENCH_DIR = Path(__file__).resolve().parent
MARK_START = "<!-- overhead:start (written by benchmarks/overhead.py; edits inside are overwritten) -->"
MARK_END = "<!-- overhead:end -->"
TARGET_RATIO = 0.5        # tunesmith inline <= half of Optuna + SQLite
MOONSHOT_MS = 2.0         # tunesmith inline per trial
PROCESS_TARGET_MS = 25.0  # process executor overhead per trial


@dataclass(frozen=True)
class Row:
    id: str
    label: str
    library: str             # tunesmith | optuna
    sampler: str             # tunesmith strategy name / optuna sampler
    executor: str = ""       # tunesmith: inline | process
    workers: int = 1
    storage: str = "sqlite"  # sqlite | memory
    synchronous: str = "NORMAL"
    core: bool = True        # runs --repeats times (else --sampler-repeats)
    metrics: bool = False    # Prometheus metrics on (served and written as a textfile)


ROWS = [
    Row("ts-inline", "tunesmith inline + SQLite", "tunesmith", "random", "inline"),
    Row("ts-proc1", "tunesmith process, 1 worker + SQLite", "tunesmith", "random", "process", 1),
    Row("ts-proc2", "tunesmith process, 2 workers + SQLite", "tunesmith", "random", "process", 2),
    Row("optuna-mem", "Optuna in memory", "optuna", "random", storage="memory"),
    Row("optuna-sqlite", "Optuna + SQLite (RDBStorage)", "optuna", "random"),
    Row("ts-inline-auto", "tunesmith inline + SQLite", "tunesmith", "auto", "inline", core=False),
    Row("optuna-mem-tpe", "Optuna in memory", "optuna", "tpe", storage="memory", core=False),
    Row("optuna-sqlite-tpe", "Optuna + SQLite (RDBStorage)", "optuna", "tpe", core=False),
    Row("ts-inline-full", "tunesmith inline + SQLite synchronous=FULL", "tunesmith", "random", "inline",
        synchronous="FULL", core=False),
]
ROWS += [
    Row("ts-inline-metrics", "tunesmith inline + SQLite, metrics on", "tunesmith", "random", "inline", metrics=True),
    Row("ts-proc2-metrics", "tunesmith process, 2 workers + SQLite, metrics on", "tunesmith", "random", "process", 2,
        metrics=True),
]
DEFAULT_ROWS = [r.id for r in ROWS if r.id != "ts-inline-full" and not r.metrics]
BY_ID = {r.id: r for r in ROWS}


# -- one measurement, in a child interpreter -------------------------------------------------------------------
def measure(row: Row, trials: int, tmp_root: str | None) -> dict[str, Any]:
    """Run one row once, here; return its timings. Called in a fresh interpreter (``--child``)."""
    sys.path.insert(0, str(BENCH_DIR))
    import noop_objective

    folder = tempfile.mkdtemp(prefix=f"overhead-{row.id}-", dir=tmp_root)
    try:
        if row.library == "tunesmith":
            return _measure_tunesmith(row, trials, folder)
        return _measure_optuna(row, trials, folder, noop_objective.objective)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# Both libraries import these lazily on their first SQLite store; importing them before the clock starts keeps a
# one-off import cost out of both sides' per-trial figures alike.
PREIMPORTS = ("sqlalchemy", "sqlalchemy.orm", "sqlalchemy.dialects.sqlite", "alembic.command", "alembic.config",
              "alembic.migration", "alembic.script", "optuna", "optuna.storages._rdb.models")


def _preimport() -> None:
    for name in PREIMPORTS:
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def _measure_tunesmith(row: Row, trials: int, folder: str) -> dict[str, Any]:
    # Import everything a run needs before the clock starts (the first run in a process would pay for it).
    _preimport()
    import tunesmith
    import tunesmith.api
    import tunesmith.executor.inline
    import tunesmith.executor.process
    import tunesmith.runner
    import tunesmith.strategy.optuna_adapter  # imports optuna
    from tunesmith.events import RunListener
    from tunesmith.runner import run_experiment
    from tunesmith.spec.loader import spec_from_dict
    from tunesmith.storage.sql import SQLStore

    finished: list[float] = []

    class Clocked(RunListener):
        def trial_finished(self, trial: Any, best: Any) -> None:
            finished.append(time.perf_counter())

    db = os.path.join(folder, "tunesmith.db")
    spec = {
        "name": "overhead", "objective": {"metric": "value", "direction": "minimize"},
        "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
        "strategy": row.sampler, "budget": {"trials": trials},
        "executor": {"kind": row.executor, "workers": row.workers},
        "trial": {"function": "noop_objective:objective"},
        "seed": 0, "workdir": os.path.join(folder, "work"), "base_dir": str(BENCH_DIR),
    }
    listener: RunListener = Clocked()
    observing = None
    if row.metrics:  # what `--metrics-port 0 --metrics-file F` attaches; prometheus_client imported before the clock
        import tunesmith.monitoring.metrics  # noqa: F401
        from tunesmith.monitoring.observers import MonitoringOptions, observed

        observing = observed(listener, MonitoringOptions(metrics_port=0, metrics_file=os.path.join(folder, "m.prom")),
                             open(os.devnull, "w"))
    t0 = time.perf_counter()
    if observing is not None:
        with observing as both:
            result = tunesmith.run(spec, storage=f"sqlite:///{db}", listener=both)
        strategy = result.experiment.strategy
    elif row.synchronous == "NORMAL":  # the public API, as a user calls it
        result = tunesmith.run(spec, storage=f"sqlite:///{db}", listener=Clocked())
        strategy = result.experiment.strategy
    else:  # the API has no knob for the pragma: the same path run_experiment takes, with the store built here
        store = SQLStore(f"sqlite:///{db}", sqlite_synchronous=row.synchronous)
        try:
            strategy = run_experiment(spec_from_dict(spec), store, Clocked()).experiment.strategy
        finally:
            store.close()
    t1 = time.perf_counter()
    with sqlite3.connect(db) as conn:  # what is durably in the file, read independently of tunesmith
        recorded = conn.execute(
            "SELECT count(*) FROM trials WHERE state = 'completed' AND \"values\" IS NOT NULL").fetchone()[0]
    timings = _timings(t0, t1, finished, trials, recorded, f"{strategy}")
    if row.metrics:
        timings["listener_ms"] = _metrics_listener_ms(db, os.path.join(folder, "again.prom"))
    return timings


def _metrics_listener_ms(db: str, textfile: str) -> float:
    """The metrics listener's own time per trial, replaying the run's records through a fresh one: what metrics
    add to a trial, measured apart from the run so that load from elsewhere does not drown it."""
    from tunesmith.monitoring.metrics import TuningMetrics
    from tunesmith.monitoring.observers import MetricsListener
    from tunesmith.storage.sql import SQLStore

    store = SQLStore(f"sqlite:///{db}", create=False)
    try:
        experiment = store.experiment("overhead")
        records = store.trials(experiment.id)
    finally:
        store.close()
    listener = MetricsListener(TuningMetrics(), textfile)
    t0 = time.perf_counter()
    listener.run_started(experiment, [], False, len(records))
    for t in records:
        listener.trial_started(t)
        listener.trial_finished(t, None)
    listener.run_finished(experiment, records, "done")
    return (time.perf_counter() - t0) / len(records) * 1000


def _measure_optuna(row: Row, trials: int, folder: str, fn: Any) -> dict[str, Any]:
    import logging

    _preimport()
    import optuna

    optuna.logging.set_verbosity(logging.WARNING)
    finished: list[float] = []

    def objective(trial: optuna.Trial) -> float:
        return fn({"x": trial.suggest_float("x", 0.0, 1.0)}, trial)

    def clocked(study: optuna.Study, trial: Any) -> None:
        finished.append(time.perf_counter())

    db = os.path.join(folder, "optuna.db")
    t0 = time.perf_counter()
    sampler = (optuna.samplers.RandomSampler(seed=0) if row.sampler == "random"
               else optuna.samplers.TPESampler(seed=0))  # TPESampler() is what create_study picks by default
    storage = f"sqlite:///{db}" if row.storage == "sqlite" else None
    study = optuna.create_study(storage=storage, sampler=sampler, direction="minimize")
    study.optimize(objective, n_trials=trials, callbacks=[clocked])
    t1 = time.perf_counter()
    if row.storage == "sqlite":
        with sqlite3.connect(db) as conn:
            recorded = conn.execute("SELECT count(*) FROM trials WHERE state = 'COMPLETE'").fetchone()[0]
    else:
        recorded = 0
    return _timings(t0, t1, finished, trials, recorded, type(sampler).__name__)


def _timings(t0: float, t1: float, finished: list[float], trials: int, recorded: int,
             sampler: str) -> dict[str, Any]:
    total = t1 - t0
    first = finished[0] - t0 if finished else total
    steady = (finished[-1] - finished[0]) / (len(finished) - 1) if len(finished) > 1 else total
    return {
        "total_s": total,
        "per_trial_ms": total / trials * 1000,
        "first_ms": first * 1000,            # start -> first trial finished: store/schema, workers, first trial
        "steady_ms": steady * 1000,          # between the first and the last trial finished
        "tail_ms": (t1 - finished[-1]) * 1000 if finished else 0.0,  # last trial -> run() returned
        "finished": len(finished),
        "recorded": recorded,
        "sampler": sampler,
    }


def run_child(row: Row, trials: int, tmp_root: str | None) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", row.id, "--trials", str(trials)]
    if tmp_root:
        cmd += ["--tmpdir", tmp_root]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=str(BENCH_DIR), check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"row {row.id} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- the report ---------------------------------------------------------------------------------------------------
@dataclass
class Result:
    row: Row
    runs: list[dict[str, Any]] = field(default_factory=list)

    def med(self, key: str) -> float:
        return statistics.median(r[key] for r in self.runs)

    def spread(self, key: str) -> str:
        if len(self.runs) < 2:
            return "(1 run)"
        values = [r[key] for r in self.runs]
        return f"{min(values):.2f}–{max(values):.2f}"


def run_environment(tmp_root: str | None) -> dict[str, str]:
    env = environment(("tunesmith", "optuna", "sqlalchemy"))
    env["versions"] += f", SQLite {sqlite3.sqlite_version}"
    folder = tmp_root or tempfile.gettempdir()
    env["folder"] = f"{folder} ({_filesystem(folder)})"
    return env


def _filesystem(path: str) -> str:
    """The filesystem type of the mount holding ``path`` (fsync costs differ a lot between ext4 and tmpfs)."""
    best, kind = "", "?"
    try:
        real = os.path.realpath(path)
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and (real == parts[1] or real.startswith(parts[1].rstrip("/") + "/")) \
                    and len(parts[1]) > len(best):
                best, kind = parts[1], parts[2]
    except OSError:
        pass
    return kind


def _sampler_name(res: Result) -> str:
    names = {r["sampler"] for r in res.runs}
    name = "/".join(sorted(names))
    if res.row.library == "tunesmith" and res.row.sampler == "auto":
        return f"auto → {name}"
    return name


def table_rows(results: list[Result]) -> list[list[str]]:
    out = []
    for res in results:
        if not res.runs:
            continue
        recorded = res.med("recorded")
        out.append([
            res.row.label, _sampler_name(res),
            f"{res.med('per_trial_ms'):.2f}", res.spread("per_trial_ms"),
            f"{res.med('steady_ms'):.2f}", f"{res.med('first_ms'):.0f}", f"{res.med('total_s'):.1f}",
            f"{int(recorded)}" if res.row.storage == "sqlite" else "— (memory)",
            str(len(res.runs)),
        ])
    return out


HEADERS = ["Row", "Sampler", "ms / trial (median)", "spread (min–max)", "steady ms / trial", "first trial (ms)",
           "total (s)", "trials in DB", "runs"]
SHORT_HEADERS = ["Row", "Sampler", "ms/trial", "min–max", "steady ms", "first ms", "total s", "in DB", "runs"]


def markdown_table(results: list[Result]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(HEADERS) - 2)) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in table_rows(results)]
    return "\n".join(lines)


def reading(results: list[Result], trials: int) -> str:
    by = {r.row.id: r for r in results if r.runs}
    parts: list[str] = []
    for plain_id, on_id in (("ts-inline", "ts-inline-metrics"), ("ts-proc2", "ts-proc2-metrics")):
        plain, on = by.get(plain_id), by.get(on_id)
        if plain and on:
            a, b = plain.med("per_trial_ms"), on.med("per_trial_ms")
            own = on.med("listener_ms")
            parts.append(f"Metrics on ({on.row.label}): {b:.2f} ms a trial against {a:.2f} ms off in the same run, "
                         f"{(b - a) / a:+.1%}; the metrics listener's own time, measured apart, is {own * 1000:.0f} µs "
                         f"a trial, {own / a:.1%} of the trial without metrics "
                         f"({'meets' if own <= a * 0.05 else 'misses'} the 5% target).")
    inline, osql = by.get("ts-inline"), by.get("optuna-sqlite")
    if inline and osql:
        a, b = inline.med("per_trial_ms"), osql.med("per_trial_ms")
        ratio = a / b
        verdict = "meets" if ratio <= TARGET_RATIO else "misses"
        moon = "under" if a <= MOONSHOT_MS else "above"
        parts.append(
            f"With the random sampler on both sides, tunesmith inline, every trial committed to its SQLite file, "
            f"takes {a:.2f} ms a trial against {b:.2f} ms for Optuna with SQLite: a ratio of {ratio:.2f}, which "
            f"{verdict} the target of at most {TARGET_RATIO:.1f} ({b * TARGET_RATIO:.2f} ms here) and is {moon} the "
            f"{MOONSHOT_MS:.0f} ms moonshot by {abs(a - MOONSHOT_MS):.2f} ms.")
    mem = by.get("optuna-mem")
    if inline and mem:
        parts.append(f"Optuna in memory ({mem.med('per_trial_ms'):.2f} ms) is the floor of sampling alone, so about "
                     f"{inline.med('per_trial_ms') - mem.med('per_trial_ms'):.2f} ms of tunesmith's inline trial is its "
                     "own bookkeeping (store, trial folder and log, runner).")
    for rid, n in (("ts-proc1", 1), ("ts-proc2", 2)):
        p = by.get(rid)
        if p:
            v = p.med("per_trial_ms")
            verdict = "under" if v < PROCESS_TARGET_MS else "over"
            extra = f", {v - inline.med('per_trial_ms'):+.2f} ms against inline" if inline else ""
            parts.append(f"The process executor with {n} worker{'s' if n > 1 else ''} costs {v:.2f} ms a no-op trial "
                         f"({verdict} the {PROCESS_TARGET_MS:.0f} ms target{extra}; worker start-up included, first "
                         f"trial done after {p.med('first_ms'):.0f} ms).")
    auto, otpe, osqltpe = by.get("ts-inline-auto"), by.get("optuna-mem-tpe"), by.get("optuna-sqlite-tpe")
    if auto and otpe:
        s = (f"With the default samplers, the sampler's own cost at {trials} trials shows: tunesmith `auto` (`bo`) "
             f"{auto.med('per_trial_ms'):.2f} ms, Optuna TPE in memory {otpe.med('per_trial_ms'):.2f} ms")
        if osqltpe:
            s += (f", Optuna TPE + SQLite {osqltpe.med('per_trial_ms'):.2f} ms (ratio "
                  f"{auto.med('per_trial_ms') / osqltpe.med('per_trial_ms'):.2f})")
        parts.append(s + "; tunesmith's `bo` holds its proposals to 10% of the (no-op) trial's duration on average, "
                     "Optuna's rows run TPESampler() with its defaults.")
    return " ".join(parts)


def markdown_section(results: list[Result], env: dict[str, str], command: str, trials: int, note: str | None) -> str:
    lines = [
        MARK_START,
        "## Per-trial overhead",
        "",
        f"- Command: `{command}`",
        f"- Date: {env['date']}; tunesmith at {env['code']}",
        f"- Machine: {env['machine']}; load average at start {env['load']}",
        f"- Python: {env['python']}; {env['versions']}",
        f"- Databases and trial folders: fresh per run, in {env['folder']}",
    ]
    if note:
        lines.append(f"- Note: {note}")
    lines += [
        "",
        (f"{trials} trials of a no-op objective (`benchmarks/noop_objective.py`) over one float parameter, each row "
        "in a fresh interpreter with imports done before the clock starts. *ms / trial* = the run's whole wall time "
        "(store or study creation, worker start-up, every trial, closing) / trials; *steady* = the time between the "
        "first and the last finished trial / (trials − 1); *first trial* = start until the first trial finished. "
        "*trials in DB* = completed trials read back from the SQLite file afterwards. tunesmith's store is SQLite in "
        "WAL mode with synchronous=NORMAL (no fsync per commit; survives a crash of any process, not a power cut); "
        "Optuna's RDBStorage uses SQLite's defaults (rollback journal, synchronous=FULL: fsyncs on every commit), "
        "so its times follow the disk and vary the most from run to run. Rows are run round robin, one repeat of "
        "every row before the next, so load from elsewhere spreads over all of them."),
        "",
        markdown_table(results),
        "",
        reading(results, trials),
        MARK_END,
    ]
    return "\n".join(lines) + "\n"


def write_markdown(path: Path, section: str) -> None:
    """Replace this benchmark's section of ``path`` (between its markers), append it, or create the file."""
    write_section(path, section, MARK_START, MARK_END)


def print_table(results: list[Result], trials: int) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(markdown_table(results))
        return
    console = Console()
    if not console.is_terminal:
        console = Console(width=150)  # piped to a file: do not squeeze the table into 80 columns
    table = Table(title=f"Per-trial overhead, {trials} no-op trials (median of the runs)")
    for i, h in enumerate(SHORT_HEADERS):
        table.add_column(h, justify="left" if i < 2 else "right")
    for cells in table_rows(results):
        table.add_row(*cells)
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=1000, help="trials per run (default 1000)")
    p.add_argument("--repeats", type=int, default=3, help="runs of each main row; the median is reported (default 3)")
    p.add_argument("--sampler-repeats", type=int, default=1,
                   help="runs of each default-sampler row (TPE at 1000 trials is slow; default 1)")
    p.add_argument("--rows", default=",".join(DEFAULT_ROWS),
                   help=f"comma-separated row ids (default: {','.join(DEFAULT_ROWS)}; also: ts-inline-full)")
    p.add_argument("--markdown", metavar="FILE", help="write the results section into FILE (replacing an earlier one)")
    p.add_argument("--tmpdir", help="where the per-run folders and databases go (default: the system temp folder)")
    p.add_argument("--note", help="a line for the markdown header (the machine being shared, say)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.child:
        print(json.dumps(measure(BY_ID[args.child], args.trials, args.tmpdir)))
        return 0

    ids = [s.strip() for s in args.rows.split(",") if s.strip()]
    unknown = [i for i in ids if i not in BY_ID]
    if unknown:
        p.error(f"unknown row(s) {', '.join(unknown)}; known: {', '.join(BY_ID)}")
    results = [Result(BY_ID[i]) for i in ids]
    env = run_environment(args.tmpdir)
    rounds = max(args.repeats, args.sampler_repeats)
    started = time.perf_counter()
    for k in range(rounds):
        for res in results:
            if k >= (args.repeats if res.row.core else args.sampler_repeats):
                continue
            r = run_child(res.row, args.trials, args.tmpdir)
            res.runs.append(r)
            print(f"[{time.perf_counter() - started:6.1f}s] round {k + 1}/{rounds} {res.row.id:<18} "
                  f"{r['per_trial_ms']:7.2f} ms/trial  first {r['first_ms']:6.0f} ms  ({r['sampler']}, "
                  f"{r['recorded']} in DB)", file=sys.stderr, flush=True)
            if r["finished"] != args.trials:
                print(f"warning: {res.row.id} finished {r['finished']} of {args.trials} trials", file=sys.stderr)
    print_table(results, args.trials)
    text = reading(results, args.trials)
    if text:
        print(text)
    if args.markdown:
        argv_shown = sys.argv[1:] if argv is None else argv
        command = "python benchmarks/overhead.py" + ("" if not argv_shown else " " + shlex.join(argv_shown))
        write_markdown(Path(args.markdown), markdown_section(results, env, command, args.trials, args.note))
        print(f"wrote {args.markdown}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
