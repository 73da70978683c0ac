"""The `tunesmith` command line.

Exit codes: 0 done (failed trials are results, not errors); 2 invalid input; 130 interrupted;
1 internal error, store failure, or every trial failed. `drift`: 4 drift found. `cycle`: 3 a promotion gate
rejected the re-tune.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from tunesmith.errors import StorageError, UserInputError
from tunesmith.records import RunStatus, TrialState

EXIT_OK, EXIT_FAILED, EXIT_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="tunesmith: declared, durable, isolated hyperparameter tuning.")
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

StorageOption = Annotated[str | None, typer.Option(
    "--storage", "-s", help="SQLAlchemy URL of the store (default: the spec's storage:, $TUNESMITH_STORAGE, "
                            "or sqlite:///tunesmith.db)")]


def _store(url: str | None, spec_storage: str | None = None, create: bool = False):  # type: ignore[no-untyped-def]
    """The store; only `run` may create one (reading an address that holds nothing is a mistake to report)."""
    from tunesmith.storage.sql import SQLStore, resolve_url

    return SQLStore(resolve_url(url, spec_storage, os.environ), create=create)


def _run_and_exit(result) -> NoReturn:  # type: ignore[no-untyped-def]
    if result.status is RunStatus.INTERRUPTED:
        err.print(f"Interrupted. Continue with: tunesmith resume {result.experiment.name}")
        raise typer.Exit(EXIT_INTERRUPTED)
    if result.status is RunStatus.FAILED:
        err.print(f"[red]The run stopped[/]: {result.stop_reason}")
        raise typer.Exit(EXIT_FAILED)
    ended = [t for t in result.trials if t.state.is_finished()]
    if ended and all(t.state is TrialState.FAILED for t in ended):
        err.print(f"[red]Every trial failed[/] ({len(ended)}); see `tunesmith trials {result.experiment.name}` "
                  "and the trial logs.")
        raise typer.Exit(EXIT_FAILED)
    raise typer.Exit(EXIT_OK)


@app.command()
def run(
    spec: Annotated[str, typer.Argument(help="the experiment spec (YAML)")],
    storage: StorageOption = None,
    name: Annotated[str | None, typer.Option(help="override the spec's name")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress display")] = False,
) -> None:
    """Record a new experiment from SPEC and run it."""
    from tunesmith.console import ProgressDisplay
    from tunesmith.events import RunListener
    from tunesmith.runner import install_signal_handlers, prepare, run_experiment
    from tunesmith.spec.loader import load_spec

    loaded = load_spec(spec, name=name)
    plan = prepare(loaded)
    for w in plan.warnings:
        err.print(f"[yellow]warning[/]: {w}")
    store = _store(storage, loaded.storage, create=True)
    listener = RunListener() if quiet else ProgressDisplay(out)
    result = run_experiment(loaded, store, listener, on_runner=install_signal_handlers)
    _run_and_exit(result)


@app.command()
def resume(name: Annotated[str, typer.Argument(help="the experiment's name")], storage: StorageOption = None,
           quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
           join: Annotated[bool, typer.Option("--join", help="cooperate with coordinators already running it "
                                                             "(another machine on a shared store)")] = False) -> None:
    """Continue an interrupted or crashed experiment: lost trials re-run, the budget counts what finished."""
    from tunesmith.console import ProgressDisplay
    from tunesmith.events import RunListener
    from tunesmith.runner import install_signal_handlers, resume_experiment

    store = _store(storage)
    listener = RunListener() if quiet else ProgressDisplay(out)
    result = resume_experiment(name, store, listener, on_runner=install_signal_handlers, join=join)
    _run_and_exit(result)


@app.command()
def validate(spec: Annotated[str, typer.Argument(help="the experiment spec (YAML)")]) -> None:
    """Check SPEC completely (schema, space, strategy, trial code) without running or recording anything."""
    from tunesmith.runner import prepare
    from tunesmith.spec.loader import load_spec

    plan = prepare(load_spec(spec))
    s = plan.spec
    for w in plan.warnings:
        err.print(f"[yellow]warning[/]: {w}")
    out.print(f"[green]valid[/]: {s.name}: {len(plan.space.names)} parameters"
              f"{' (conditional)' if plan.space.is_conditional else ''}, "
              f"{len(s.objective)} objective(s), strategy {plan.decision.name} ({plan.decision.reason}), "
              f"executor {s.executor.kind} x{s.executor.workers}")


@app.command("ls")
def list_experiments(storage: StorageOption = None,
                     as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False) -> None:
    """List the experiments in the store."""
    from rich.table import Table

    store = _store(storage)
    rows = []
    counts = store.trial_counts()  # one query for all experiments, not one trial read each
    for e in store.experiments():
        n = counts.get(e.id, {})
        rows.append({"name": e.name, "status": e.status.value, "strategy": e.strategy, "trials": sum(n.values()),
                     "completed": n.get(TrialState.COMPLETED, 0), "failed": n.get(TrialState.FAILED, 0),
                     "created_at": e.created_at})
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table()
    for col in ("name", "status", "strategy", "trials", "completed", "failed"):
        table.add_column(col)
    for r in rows:
        table.add_row(*(str(r[c]) for c in ("name", "status", "strategy", "trials", "completed", "failed")))
    out.print(table if rows else "no experiments in this store")


@app.command()
def show(name: Annotated[str, typer.Argument()], storage: StorageOption = None,
         as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False) -> None:
    """Status, counts by state, the best trial (and the Pareto front for several objectives)."""
    from tunesmith.console import print_best_table
    from tunesmith.summary import experiment_summary

    store = _store(storage)
    exp = store.experiment(name)
    trials = store.trials(exp.id)
    summary = experiment_summary(exp, trials)
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    counts = ", ".join(f"{k} {v}" for k, v in summary["trials"].items() if v)
    out.print(f"[bold]{name}[/]: {summary['status']}; strategy {summary['strategy']['name']} "
              f"({summary['strategy']['reason']})")
    out.print(f"trials: {counts or 'none'}; failure rate {summary['failure_rate']:.0%}")
    if summary["scheduler"]:
        r = summary["scheduler"]["resources"]
        out.print(f"scheduler {summary['scheduler']['name']}: {r['steps_used']:g} of {r['steps_full']:g} steps "
                  f"({r['fraction_used']:.0%} of running every trial to the end; {r['fraction_saved']:.0%} saved); "
                  f"pruned {summary['trials']['pruned']}")
    _print_task_summary(summary)
    _print_lineage(summary)
    if summary["best"]:
        b = summary["best"]
        out.print(f"best: trial {b['number']} {b['values']} params {b['params']}")
    for p in summary["pareto"]:
        out.print(f"  pareto: trial {p['number']} {p['values']}")
    print_best_table(out, exp, trials)


def _print_task_summary(summary: dict) -> None:  # type: ignore[type-arg]
    """The honest-evaluation facts of a built-in task: fold spread, latency, size, holdout, nested, data."""
    if "task" not in summary:
        return
    task, best = summary["task"], summary["best"]
    metric = task["metric"]
    if best:
        m = best["metrics"]
        folds = [v for k, v in sorted(m.items()) if k.startswith("fold_")]
        out.print(f"cv ({task['cv']}): {metric} {best['values'][metric]:.4f} ± {m.get(metric + '_std', 0):.4f} "
                  f"over {len(folds)} folds {[round(f, 4) for f in folds]}")
        if "latency_p50_ms" in m:
            out.print(f"prediction latency p50 {m['latency_p50_ms']:.3f} ms, p95 {m['latency_p95_ms']:.3f} ms per row; "
                      f"model size {m.get('model_size_bytes', 0) / 1024:.1f} KiB; fit {m.get('fit_time_s', 0):.3f} s")
    unstable = task["unstable_trials"]
    if unstable:
        out.print(f"unstable configurations (fold spread over the threshold): {unstable}"
                  f"{', excluded from selection' if task['exclude_unstable'] else ''}")
    holdout = summary.get("holdout")
    if holdout:
        out.print(f"[bold]holdout[/] {metric} of trial {holdout['trial']} (refit on all development rows, never seen "
                  f"by the search): {holdout.get('holdout_' + metric, float('nan')):.4f} on {int(holdout.get('holdout_rows', 0))} rows")
    nested = summary.get("nested")
    if nested:
        out.print(f"nested CV estimate of the whole tuning procedure: {nested.get('nested_' + metric, float('nan')):.4f} "
                  f"± {nested.get('nested_' + metric + '_std', float('nan')):.4f}")
    data = summary.get("data_fingerprint")
    if data:
        out.print(f"data: {data.get('n_rows')} rows x {data.get('n_cols')} columns, {str(data.get('content_hash'))[:19]}")


def _print_lineage(summary: dict) -> None:  # type: ignore[type-arg]
    """Where a re-tune came from and what re-tuned this experiment."""
    lineage, retunes = summary.get("lineage"), summary.get("retunes")
    if lineage:
        warm = summary.get("warm_start") or {}
        how = (f"warm-started: {len(warm.get('first', []))} prior best re-evaluated first, "
               f"{warm.get('prior', 0)} prior trials replayed" if lineage.get("warm") else "cold")
        out.print(f"re-tune of {lineage['parent']} (generation {lineage['generation']}, root {lineage['root']}) "
                  f"on {lineage.get('data')}; {how}")
    if retunes:
        out.print(f"re-tuned as: {', '.join(retunes)}")


@app.command()
def trials(name: Annotated[str, typer.Argument()], storage: StorageOption = None,
           as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
           as_csv: Annotated[bool, typer.Option("--csv", help="CSV output")] = False) -> None:
    """Every trial: state, active params, values, metrics, intermediate values, error, attempts, duration."""
    from rich.table import Table

    from tunesmith.summary import trials_csv, trials_json

    store = _store(storage)
    exp = store.experiment(name)
    records = store.trials(exp.id)
    if as_json:
        print(json.dumps(trials_json(exp, records, store.events(exp.id)), indent=2))
        return
    if as_csv:
        sys.stdout.write(trials_csv(exp, records))
        return
    table = Table()
    for col in ("#", "state", "values", "params", "attempts", "time", "error"):
        table.add_column(col)
    for r in trials_json(exp, records):
        table.add_row(str(r["number"]), r["state"], json.dumps(r["values"]) if r["values"] else "",
                      json.dumps(r["params"]), str(r["attempts"]),
                      f"{r['duration_s']:.2f}s" if r["duration_s"] is not None else "", r["error"] or "")
    out.print(table)


@app.command()
def delete(name: Annotated[str, typer.Argument()], storage: StorageOption = None,
           yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask")] = False,
           missing_ok: Annotated[bool, typer.Option("--missing-ok", help="succeed if there is no such experiment")] = False,
           ) -> None:
    """Delete an experiment's records from the store (trial folders on disk are kept)."""
    from tunesmith.errors import ExperimentNotFound, StoreNotFound

    try:
        store = _store(storage)
        exp = store.experiment(name)
    except (ExperimentNotFound, StoreNotFound):
        if missing_ok:
            return
        raise
    if not yes and not typer.confirm(f"Delete experiment {name!r} and its {len(store.trials(exp.id))} trials?"):
        raise typer.Exit(EXIT_INPUT)
    store.delete_experiment(name)
    out.print(f"deleted {name}")


EXIT_DRIFT = 4  # `drift`: the data moved beyond the spec's drift thresholds (`cycle`'s codes: tunesmith.cycle)
JsonFlag = Annotated[bool, typer.Option("--json", help="print the report as JSON on stdout (no table)")]
JsonOut = Annotated[str | None, typer.Option("--json-out", help="also write the report as JSON to this file")]
DataOption = Annotated[str, typer.Option("--data", help="the new rows (CSV or Parquet), with the experiment's "
                                                        "task data columns")]


def _emit_json(payload: dict[str, Any], as_json: bool, json_out: str | None) -> None:
    text = json.dumps(payload, indent=2, default=str)
    if json_out:
        try:
            with open(json_out, "w", encoding="utf-8") as f:
                f.write(text + "\n")
        except OSError as e:
            raise UserInputError(f"--json-out: cannot write {json_out!r}: {e.strerror}") from None
    if as_json:
        print(text)


@app.command()
def drift(name: Annotated[str, typer.Argument(help="the experiment whose data the new rows are compared with")],
          data: DataOption,
          reference: Annotated[str | None, typer.Option("--reference", help="compare with this file instead of "
                                                        "the experiment's task data (trial-code experiments)")] = None,
          storage: StorageOption = None, as_json: JsonFlag = False, json_out: JsonOut = None) -> None:
    """Per-column drift (PSI, KS, chi-square), target drift and the champion's score on new data.
    Exit 0: no drift; 4: drift beyond the spec's drift: thresholds; 2: bad input."""
    from tunesmith.drift import check_stored, print_report

    report = check_stored(_store(storage), name, data, reference)
    _emit_json(report.to_json(), as_json, json_out)
    if not as_json:
        print_report(out, report)
    raise typer.Exit(EXIT_DRIFT if report.drifted else EXIT_OK)


@app.command()
def retune(name: Annotated[str, typer.Argument(help="the experiment to re-tune")],
           data: Annotated[str | None, typer.Option("--data", help="the new rows (CSV or Parquet; required for a "
                                                    "task experiment, passed as $TUNESMITH_DATA to trial code)")] = None,
           trials: Annotated[int | None, typer.Option("--trials", min=1, help="trial budget (default: "
                                                      "drift.retune.trials, else half the old budget)")] = None,
           new_name: Annotated[str | None, typer.Option("--name", help="the new experiment's name (default: "
                                                        "ROOT-retune-K)")] = None,
           top_k: Annotated[int | None, typer.Option("--top-k", min=0, help="prior best configurations "
                                                     "re-evaluated first (default: drift.retune.top_k, 5)")] = None,
           cold: Annotated[bool, typer.Option("--cold", help="start from scratch (lineage kept, no warm start)")] = False,
           storage: StorageOption = None, quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False) -> None:
    """A new experiment on new data, linked to NAME and warm-started from its trials."""
    from tunesmith.console import ProgressDisplay
    from tunesmith.events import RunListener
    from tunesmith.retune import retune as run_retune
    from tunesmith.runner import install_signal_handlers

    listener = RunListener() if quiet else ProgressDisplay(out)
    result = run_retune(_store(storage), name, data, trials=trials, new_name=new_name, top_k=top_k, warm=not cold,
                        listener=listener, on_runner=install_signal_handlers)
    _run_and_exit(result)


CycleTarget = Annotated[str, typer.Argument(help="a spec file (tuned first if not recorded yet) or an experiment name")]
ReferenceOption = Annotated[str | None, typer.Option("--reference", help="trial-code experiments: the rows the "
                                                     "champion was tuned on")]
TrialsOption = Annotated[int | None, typer.Option("--trials", min=1, help="the re-tune's trial budget")]
ModelNameOption = Annotated[str | None, typer.Option("--model-name", help="registered model name for promotion")]


@app.command()
def cycle(target: CycleTarget, data: DataOption, reference: ReferenceOption = None, trials: TrialsOption = None,
          model_name: ModelNameOption = None, storage: StorageOption = None, as_json: JsonFlag = False,
          json_out: JsonOut = None) -> None:
    """One cron-friendly cycle: drift check -> re-tune when triggered -> promote -> report (steps recorded as
    events). Exit 0: done (see outcome); 3: a promotion gate rejected the re-tune; 1: a step failed; 2: bad input."""
    from tunesmith.cycle import run_cycle

    report = run_cycle(_store(storage, create=target.lower().endswith((".yaml", ".yml"))), target, data,
                       reference=reference, trials=trials, model_name=model_name)
    _emit_json(report.to_json(), as_json, json_out)
    if not as_json:
        _print_cycle(report)
    raise typer.Exit(report.exit_code)


def _print_cycle(report) -> None:  # type: ignore[no-untyped-def]
    from rich.markup import escape

    for s in report.steps:
        out.print(f"{s.name:8} {s.status.value:8} {escape(s.why)}")
    out.print(f"outcome: {report.outcome.value}; champion: {report.champion}")


@app.command()
def watch(target: CycleTarget, data: DataOption,
          every: Annotated[str, typer.Option("--every", help="time between cycles: 1d, 6h, 30m")] = "1d",
          cycles: Annotated[int | None, typer.Option("--cycles", min=1, help="stop after this many cycles")] = None,
          reference: ReferenceOption = None, trials: TrialsOption = None, model_name: ModelNameOption = None,
          storage: StorageOption = None, as_json: JsonFlag = False) -> None:
    """Run `cycle` every --every (until Ctrl-C or --cycles), one report per cycle (one JSON line with --json)."""
    from tunesmith.cycle import watch as watch_loop
    from tunesmith.spec.units import parse_duration

    try:
        period = parse_duration(every)
    except ValueError as e:
        raise UserInputError(f"--every: {e}") from None

    def show_cycle(report) -> None:  # type: ignore[no-untyped-def]
        if as_json:
            print(json.dumps(report.to_json(), default=str), flush=True)
        else:
            _print_cycle(report)

    reports = watch_loop(_store(storage, create=target.lower().endswith((".yaml", ".yml"))), target, data, period,
                         cycles=cycles, on_cycle=show_cycle, reference=reference, trials=trials,
                         model_name=model_name)
    raise typer.Exit(reports[-1].exit_code if reports else EXIT_OK)


def main() -> None:
    """Entry point: one clear message and exit code 2 for input errors; never a traceback for them."""
    from rich.markup import escape

    try:
        code = app(standalone_mode=False)  # click returns (not raises) the code of typer.Exit here
        sys.exit(code if isinstance(code, int) else EXIT_OK)
    except UserInputError as e:
        # escaped: messages quote user text (a name 'exp[/]'), which rich would otherwise read as markup
        err.print(f"[red]error[/]: {escape(str(e))}", soft_wrap=True)
        sys.exit(EXIT_INPUT)
    except StorageError as e:
        err.print(f"[red]storage error[/]: {escape(str(e))}", soft_wrap=True)
        sys.exit(EXIT_FAILED)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        sys.exit(EXIT_INTERRUPTED)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except Exception as e:
        if isinstance(e, _usage_error_type()):  # unknown command or option, missing argument
            e.show()
            sys.exit(EXIT_INPUT)
        raise


def _usage_error_type() -> type[Any]:
    """Click's ClickException: vendored as typer._click by recent typer releases, the click package before."""
    try:
        from typer._click.exceptions import ClickException
    except ImportError:
        from click import ClickException  # type: ignore[no-redef]
    return ClickException


if __name__ == "__main__":
    main()
