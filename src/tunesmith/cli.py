"""The `tunesmith` command line.

Exit codes: 0 done (failed trials are results, not errors); 2 invalid input; 130 interrupted;
1 internal error, store failure once the store is open, every trial failed, or stdout took no output (the command's
work is done: a run is recorded in full); 3 `promote` rejected by a gate (and `cycle`: a gate
rejected the re-tune). `drift`: 4 drift found. 75 (EX_TEMPFAIL, "retry later"): every command that opens a store,
when no database server answers at its address (nothing was done); `run` / `resume`, when the Ray cluster went away
mid-run (`resume` on a new cluster continues). A reader of stdout or stderr that leaves (`| head -1`, `| grep -q`)
changes no exit code (see :class:`_Console`).
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
import typer.core
from rich.console import Console

from tunesmith.errors import (ClusterLost, RegistryUnavailable, StorageError, StoreDamaged, StoreUnavailable,
                              TemporaryFailure, UserInputError, WorkdirError)
from tunesmith.exit_codes import (
    EXIT_DRIFT, EXIT_FAILED, EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OK, EXIT_REJECTED, EXIT_TEMPFAIL,
)
from tunesmith.json_output import strict_json
from tunesmith.quotas import parse_quota_key, parse_quota_limit
from tunesmith.records import RunStatus, TrialState

if TYPE_CHECKING:
    from tunesmith.scheduler.evidence import RestartedChild

# Words people try for a command tunesmith names otherwise: what to say instead of a spelling-based guess.
COMMAND_WORDS: dict[str, str] = {
    "select": "Selection is the spec's `select:` key (best, knee, {weights: ...}); `tunesmith show NAME` prints the "
              "selected trial (what `tunesmith promote` ships)",
    "status": "Did you mean 'show'?", "info": "Did you mean 'show'?", "best": "Did you mean 'show'?",
    "list": "Did you mean 'ls'?", "start": "Did you mean 'run'?", "continue": "Did you mean 'resume'?",
    "rm": "Did you mean 'delete'?", "remove": "Did you mean 'delete'?", "check": "Did you mean 'validate'?",
    "stop": "Ctrl-C (or SIGTERM) stops a run; `tunesmith resume NAME` continues it",
}


class _Commands(typer.core.TyperGroup):
    """An unknown command is pointed at one it means (:data:`COMMAND_WORDS`, or a close spelling by
    :func:`tunesmith.suggestions.closest` without its loosest rule), or at none: difflib's default cutoff sent
    `select` to `delete`."""

    def resolve_command(self, ctx: Any, args: list[str]):  # type: ignore[no-untyped-def]
        word = args[0] if args else ""
        if word and not word.startswith("-") and self.get_command(ctx, word) is None and not ctx.resilient_parsing:
            from tunesmith.suggestions import closest

            meant = COMMAND_WORDS.get(word.lower())
            near = None if meant else closest(word, self.commands, loose=False)
            hint = meant or (f"Did you mean {near!r}?" if near else "")
            ctx.fail(f"No such command {word!r}." + (f" {hint}" if hint else ""))
        return super().resolve_command(ctx, args)


app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, cls=_Commands,
                  help="tunesmith: declared, durable, isolated hyperparameter tuning.")


class _Console(Console):
    """stdout or stderr. A reader that leaves (`| head -1`, `| grep -q`, `2>&1 | head`) took what it wanted: the
    command goes on and its exit code says how its work went (0, 1 every trial failed, 130 interrupted...), for
    every command alike, quietly. Rich's default exits with 1 on a broken pipe, which told a script under
    ``set -o pipefail`` that `show NAME | grep -q completed` failed when grep found what it sought, and whether it
    did depended on timing (did show finish writing before grep left?). A reader that crashed says so with its own
    exit code, which pipefail reports. Later lines go to the null device (what Python's own note on SIGPIPE
    advises: no SIGPIPE default, no traceback, no error at exit). Output that a full disk lost is another matter:
    see :class:`_GuardedStream`."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        # a print while quiet drops the lines that failed: Rich keeps them, to write them out (again) as soon as the
        # console speaks again, which it does for an in-process caller of main, who gets its voice back
        self.print(end="")
        _to_null(self.file)


def _to_null(stream: Any) -> None:
    """Point ``stream``'s descriptor at the null device: what Python's exit would flush there is dropped, not an
    error (a reader that left, a full disk)."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError):
        # io.UnsupportedOperation (both): a stream with no descriptor (`app([...])` under pytest's capture,
        # Jupyter). Nothing is flushed to a descriptor; raising here would replace the exit code with a traceback
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, fd)
    except OSError:
        pass  # the descriptor is closed already: nothing is flushed there either
    finally:
        os.close(null)


class _GuardedStream:
    """sys.stdout, and sys.stderr, while :func:`main` runs a command. A write or flush that fails loses the output,
    never the work: the command goes on (a run records every trial, as with its stdout intact) and the descriptor
    points at the null device until main returns (later output, and what the stream still buffers, go there).
    Raising instead stopped `show` where it was but left `run` going, its progress display's listener dropped.

    A broken pipe is a reader that left, by choice (see :class:`_Console`): nothing more is said. Any other error
    (a full disk, ``> /dev/full``, an I/O error) lost output that nobody chose to drop: ``lost`` keeps why, for
    main to say in one line and exit 1 when stdout lost it. Stderr's loss is told nowhere (there is nowhere left)
    and changes no exit code: a failing write of an error's message exited 1 (its traceback lost as well) where the
    error's own code (2, bad input) was due."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.lost: str | None = None

    def write(self, text: str) -> int:
        try:  # every line of output passes here: a plain try, nothing built
            return int(self._stream.write(text))
        except OSError as e:
            self._lose(e)
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as e:
            self._lose(e)

    def _lose(self, error: OSError) -> None:
        if self.lost is None and not isinstance(error, BrokenPipeError):
            self.lost = error.strerror or str(error)
        _to_null(self._stream)  # later writes go to the null device, and do not fail

    def __getattr__(self, name: str) -> Any:  # fileno, isatty, encoding...: the real stream's
        return getattr(self._stream, name)


@contextmanager
def _given_back(stream: Any, console: Console) -> Iterator[None]:
    """Put ``stream``'s descriptor, and ``console``'s voice, back as they were on leaving: a command whose output
    failed (a reader that left, a full disk) points the descriptor at the null device (:func:`_to_null`) and
    silences the console writing there, which an in-process caller of :func:`main` (a test, a program) would
    otherwise keep, losing its own later output, and main's later messages, without an error."""
    quiet = console.quiet
    try:
        kept = os.dup(stream.fileno())
    except (OSError, ValueError, AttributeError):
        # no descriptor (pytest's capture, Jupyter), a closed one, or no stream at all (None): nothing to give back
        try:
            yield
        finally:
            console.quiet = quiet
        return
    try:
        yield
    finally:
        console.quiet = quiet
        try:
            stream.flush()  # what a failed write left buffered goes to the null device, not to the one given back
        except (OSError, ValueError):
            pass
        try:
            os.dup2(kept, stream.fileno())
        except (OSError, ValueError):
            pass
        finally:
            os.close(kept)


# Where the output is no terminal (a file, a pipe, a cron or CI log) and COLUMNS is not set, Rich lays it out for
# 80 columns: a drift table's p-values read `1.07e-…` and its headers `stati…` in a log; 200 fits every table whole.
PIPED_WIDTH = 200


def _piped_width(stream: Any) -> int | None:
    if os.environ.get("COLUMNS"):
        return None  # Rich reads it
    try:
        return None if stream.isatty() else PIPED_WIDTH
    except (AttributeError, ValueError):  # a closed or bare stream
        return PIPED_WIDTH


out = _Console(highlight=False, width=_piped_width(sys.stdout))
err = _Console(stderr=True, highlight=False, width=_piped_width(sys.stderr))

SpecStorageOption = Annotated[str | None, typer.Option(
    "--storage", "-s", help="SQLAlchemy URL of the store (default: the spec's storage:, $TUNESMITH_STORAGE, "
                            "or sqlite:///tunesmith.db)")]
StorageOption = Annotated[str | None, typer.Option(  # commands given a name read no spec, so no storage: either
    "--storage", "-s", help="SQLAlchemy URL of the store (default: $TUNESMITH_STORAGE, or sqlite:///tunesmith.db "
                            "in this folder)")]
QuietOption = Annotated[bool, typer.Option(
    "--quiet", "-q", help="no progress display or table of best trials (warnings, and why a run stopped early, "
                          "still go to stderr)")]
MetricsPortOption = Annotated[int | None, typer.Option(
    "--metrics-port", min=0, max=65535, help="serve Prometheus metrics on this port during the run (0: any free)")]
MetricsAddrOption = Annotated[str, typer.Option("--metrics-addr", help="address the metrics server listens on")]
MetricsFileOption = Annotated[str | None, typer.Option(
    "--metrics-file", help="keep a node_exporter textfile (.prom) of the metrics current, written atomically")]


class LogFormat(enum.StrEnum):
    HUMAN = "human"
    JSON = "json"


LogFormatOption = Annotated[LogFormat, typer.Option(
    "--log-format", help="human: the progress display; json: one JSON object per event on stderr")]


def _store(url: str | None, spec_storage: str | None = None, create: bool = False):  # type: ignore[no-untyped-def]
    """The store; only `run` may create one (reading an address that holds nothing is a mistake to report). Closed
    as the command's Click context closes, when the command ends however it ends: a program running commands
    in-process (:func:`main`, or ``app([...])``) kept each one's SQLite connections (and its -wal, -shm files) open
    until garbage collection."""
    from tunesmith.storage.sql import SQLStore, refuse_in_memory, resolve_url, url_origin

    resolved, origin = resolve_url(url, spec_storage, os.environ), url_origin(url, spec_storage, os.environ)
    refuse_in_memory(resolved, origin)
    return _closed_with_command(SQLStore(resolved, create=create, origin=origin))


def _closed_with_command(store):  # type: ignore[no-untyped-def]
    """``store``, to be closed as the command's Click context closes (see :func:`_store`), its upgrade of an older
    tunesmith's schema said as a warning; also the store `cycle` and `watch` open by the cycle's own rule (a spec
    file's `storage:`)."""
    from tunesmith.storage.upgrades import upgrades_allowed

    store.on_upgrade = _warn  # (before its first use, which opens it)
    store.upgrade = upgrades_allowed(os.environ)  # TUNESMITH_MIGRATE=never: an older store is refused, not upgraded
    _click_module("globals").get_current_context().call_on_close(store.close)
    return store


def _observed(display, port, addr, textfile, log_format, store, name):  # type: ignore[no-untyped-def]
    """The monitoring flags of run/resume, as listeners around the run (JSON logs replace the display)."""
    from tunesmith.monitoring.observers import MonitoringOptions, observed

    return observed(display, MonitoringOptions(port, addr, textfile, str(log_format)), sys.stderr,
                    store=store, experiment=name)


# run/resume under --log-format json: {"experiment": its name}, so that what the command says outside the run's
# events (a spec's warnings before it starts, the error that ends it) is a JSON line too; None otherwise
_json_log: dict[str, str | None] | None = None


def _log_as_json(log_format: LogFormat, experiment: str | None) -> None:
    global _json_log
    _json_log = {"experiment": experiment} if log_format is LogFormat.JSON else None


def _say_json(event: str, **fields: Any) -> None:
    from tunesmith.monitoring.json_log import event_line

    with contextlib.suppress(OSError):  # the log's reader left: the exit code still says how it ended
        sys.stderr.write(event_line(event, (_json_log or {}).get("experiment"), time.time(), **fields))
        sys.stderr.flush()


def _warn(message: str) -> None:
    """A command's warning before the run's listeners exist (or outside them: the store's upgrade): a JSON line under
    --log-format json."""
    from tunesmith.terminal_text import escape  # (a message may quote a URL, a path)

    if _json_log is not None:
        _say_json("warning", message=message, reason=message)  # as the run's own warnings say it
    else:
        err.print(f"[yellow]warning[/]: {escape(message)}", soft_wrap=True)


def _run_and_exit(result, store, log_format: LogFormat = LogFormat.HUMAN) -> NoReturn:  # type: ignore[no-untyped-def]
    """Say how the run ended, if it needs saying, and exit with its code. With ``--log-format json`` the line is a
    JSON object (``event: run_exit``) like every other line on stderr, where a plain one broke a log shipper. A
    command to continue names ``store`` where `resume NAME` would open another."""
    from tunesmith.storage.sql import resume_hint
    from tunesmith.terminal_text import escape  # a reason may quote a trial's stderr

    def say_and_exit(code: int, text: str) -> NoReturn:
        if log_format is LogFormat.JSON:
            _say_json("run_exit", exit_code=code, message=text)
        else:
            err.print(escape(text), soft_wrap=True)
        raise typer.Exit(code)

    name = result.experiment.name
    if result.status is RunStatus.INTERRUPTED and result.experiment.status is RunStatus.RUNNING:
        say_and_exit(EXIT_INTERRUPTED, f"Interrupted. Other coordinators still run {name}; this one left (join them "
                                       f"again with: {resume_hint(store, name, join=True)})")
    if result.status is RunStatus.INTERRUPTED:
        say_and_exit(EXIT_INTERRUPTED, f"Interrupted. Continue with: {resume_hint(store, name)}")
    if result.status is RunStatus.FAILED:
        say_and_exit(EXIT_FAILED, f"The run stopped: {result.stop_reason}")
    ended = [t for t in result.trials if t.state.is_finished()]
    if ended and all(t.state is TrialState.FAILED for t in ended):
        last = max(ended, key=lambda t: t.finished_at or 0.0)  # with --quiet, nothing else said why
        say_and_exit(EXIT_FAILED, f"Every trial failed ({len(ended)}); the last: {last.error or 'no reason recorded'}; "
                                  f"see `tunesmith trials {name}` and the trial logs.")
    raise typer.Exit(EXIT_OK)


@contextmanager
def _lost_cluster_or_store_said(name: str, store) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """A run whose Ray cluster went away stopped cleanly (the store has everything): say so and how to go on. One
    whose store failed a write (a full disk) says what `resume` continues once the store takes writes again."""
    from tunesmith.storage.sql import resume_hint

    try:
        yield
    except StorageError as e:
        if isinstance(e, UserInputError | TemporaryFailure | StoreDamaged) or not _recorded(store, name):
            raise  # (a damaged file never takes writes again: its message names the fix)
        if isinstance(e, WorkdirError):  # the store is sound: the workdir's disk refused, its message says the fix
            raise StorageError(f"{e}: {resume_hint(store, name)}") from None
        raise StorageError(f"{e}; what was recorded before it is kept: once the store takes writes again, continue "
                           f"with: {resume_hint(store, name)}") from None
    except ClusterLost as e:
        from tunesmith.terminal_text import escape

        why = (f"{e}. Finished trials are in the store; the running ones re-run on a new cluster with: "
               f"{resume_hint(store, name)}")
        if _json_log is not None:
            _say_json("run_exit", exit_code=EXIT_TEMPFAIL, message=f"The run stopped: {why}")
        else:
            err.print(f"[red]The run stopped[/]: {escape(why)}", soft_wrap=True)
        raise typer.Exit(EXIT_TEMPFAIL) from None


def _recorded(store, name: str) -> bool:  # type: ignore[no-untyped-def]
    """Whether the store (one that failed a write) still reads experiment ``name``."""
    try:
        return bool(store.holds_experiment(name))
    except Exception:  # noqa: BLE001 - not readable either: no resume to offer
        return False


def _print_version(value: bool) -> None:
    if value:
        from tunesmith.versions import tunesmith_version

        print(f"tunesmith {tunesmith_version()}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _options(version: Annotated[bool, typer.Option(
        "--version", is_eager=True, callback=_print_version, help="print the version and exit")] = False) -> None:
    """tunesmith: declared, durable, isolated hyperparameter tuning."""


@app.command()
def run(
    spec: Annotated[str, typer.Argument(help="the experiment spec (YAML)")],
    storage: SpecStorageOption = None,
    name: Annotated[str | None, typer.Option(help="override the spec's name")] = None,
    quiet: QuietOption = False,
    metrics_port: MetricsPortOption = None, metrics_addr: MetricsAddrOption = "127.0.0.1",
    metrics_file: MetricsFileOption = None, log_format: LogFormatOption = LogFormat.HUMAN,
) -> None:
    """Record a new experiment from SPEC and run it."""
    from tunesmith.console import ProgressDisplay
    from tunesmith.events import RunListener
    from tunesmith.runner import prepare, run_experiment
    from tunesmith.stop_signals import handlers_restored, install_signal_handlers
    from tunesmith.errors import ExperimentExists, SpecError
    from tunesmith.spec.diff import exists_saying_what_differs
    from tunesmith.spec.loader import NAME_RULE, load_spec
    from tunesmith.spec.model import NAME_PATTERN
    from tunesmith.tracking import check_tracking_destination

    _log_as_json(log_format, name)
    if name is not None and not re.fullmatch(NAME_PATTERN, name):  # the override's mistake, not the file's
        raise SpecError("--name", f"{NAME_RULE}; got {name!r}")
    declared = load_spec(spec, name=name)
    _log_as_json(log_format, declared.name)
    plan = prepare(declared)  # once: the run records this plan, whose warnings are shown here
    for w in plan.warnings:
        _warn(w)
    store = _store(storage, plan.spec.storage, create=True)
    check_tracking_destination(plan.spec, store.url)  # before the store is made: MLflow's tables would break it
    listener = RunListener() if quiet else ProgressDisplay(out, err)
    with _observed(listener, metrics_port, metrics_addr, metrics_file, log_format, store, plan.spec.name) as listener, \
            _lost_cluster_or_store_said(plan.spec.name, store), handlers_restored():  # (app([...]) gets them back)
        try:
            result = run_experiment(plan, store, listener, on_runner=install_signal_handlers)
        except ExperimentExists as e:  # the recorded spec is what `resume` runs: what differs is why that matters
            raise exists_saying_what_differs(e, store, declared) from None
    _run_and_exit(result, store, log_format)


@app.command()
def resume(name: Annotated[str, typer.Argument(help="the experiment's name")], storage: StorageOption = None,
           quiet: QuietOption = False,
           join: Annotated[bool, typer.Option("--join", help="cooperate with coordinators already running it "
                                                             "(another machine on a shared store)")] = False,
           metrics_port: MetricsPortOption = None, metrics_addr: MetricsAddrOption = "127.0.0.1",
           metrics_file: MetricsFileOption = None, log_format: LogFormatOption = LogFormat.HUMAN,
           trials: Annotated[int | None, typer.Option(
               "--trials", help="raise the recorded trial budget to N first (recorded in the audit trail), to give a "
                                "finished experiment more trials")] = None,
           wall_time: Annotated[str | None, typer.Option(
               "--wall-time", metavar="D", help="raise the recorded wall-time budget to D first (30s, 10m, 1h30m; "
                                                "recorded in the audit trail), to give a run its time stopped more "
                                                "time")] = None) -> None:
    """Continue an interrupted or crashed experiment: lost trials re-run, the budget counts what finished. With
    --trials N (--wall-time D), a finished one gets more trials (more time), informed by those it has."""
    from tunesmith.clock import SystemClock
    from tunesmith.console import ProgressDisplay
    from tunesmith.events import RunListener
    from tunesmith.raised_budget import raise_budget_to_resume
    from tunesmith.runner import resume_experiment
    from tunesmith.stop_signals import handlers_restored, install_signal_handlers

    _log_as_json(log_format, name)
    store = _store(storage)
    raise_budget_to_resume(store, store.url, name, trials, SystemClock(), join, wall_time=wall_time)
    listener = RunListener() if quiet else ProgressDisplay(out, err)
    with _observed(listener, metrics_port, metrics_addr, metrics_file, log_format, store, name) as listener, \
            _lost_cluster_or_store_said(name, store), handlers_restored():
        result = resume_experiment(name, store, listener, on_runner=install_signal_handlers, join=join)
    _run_and_exit(result, store, log_format)


@app.command()
def validate(specs: Annotated[list[str], typer.Argument(
        metavar="spec", help="the experiment spec (YAML); several: each checked on its own (specs/*.yaml)")],
             schema_only: Annotated[bool, typer.Option(
                 "--schema-only", help="check the spec without importing any code it names (its trial module, a "
                                       "task's classes): for reviewing a spec whose code you have not read")] = False,
             ) -> None:
    """Check each SPEC completely (schema, space, strategy, trial code) without running or recording anything. The
    check imports the trial code (its module's top-level code runs, as `run` runs it): review that code first, or
    give --schema-only, which checks all but the code. Of several specs (a CI job, a pre-commit hook), each is
    checked on its own, in the order given, and gets one line naming its file: `valid: FILE: ...` on stdout, or
    `error: FILE: ...` on stderr. The exit code is the worst one met, in this order: 2 if any spec is bad input (it
    must change before anything else helps), else 1 (a failure that is not the input's), else 75 (retry later), else
    0."""
    from tunesmith.validation import check_spec, check_spec_schema, own_import_path

    codes = set()
    for path in specs:
        about = path if len(specs) > 1 else None  # one spec: said unprefixed, as main says a command's own error
        try:
            with own_import_path():
                plan = check_spec_schema(path) if schema_only else check_spec(path)
        except SAID_ERRORS as e:  # (another error, a bug, ends the command with its traceback, as main lets it)
            code, line = _error_said(e, about=about)
            err.print(line, soft_wrap=True)
            codes.add(code)
            continue
        _say_valid(plan, about=about, schema_only=schema_only)
        codes.add(EXIT_OK)
    raise typer.Exit(next(code for code in _WORST_FIRST if code in codes))


# the order in which one of several specs' exit codes wins (`validate A B`): the input to fix first. Validate opens
# no store, but a check runs the user's code: a task's pipeline classes are imported and built (only an ImportError
# there is bad input), and a step's module that reads a stored experiment at import meets the store's failures, 1
# and 75 (tests/test_cli_input.py). Every code _error_said gives is ranked: one spec's is the command's.
_WORST_FIRST = (EXIT_INPUT, EXIT_FAILED, EXIT_TEMPFAIL, EXIT_OK)


def _say_valid(plan, about: str | None = None, schema_only: bool = False) -> None:  # type: ignore[no-untyped-def]
    """A checked spec's warnings (stderr) and its `valid:` line (stdout); ``about``: its file, named in each line
    (one of several specs); ``schema_only``: its code was not checked (`validate --schema-only`), which it says."""
    from tunesmith.terminal_text import escape

    where = f"{escape(about)}: " if about is not None else ""
    one_line = about is not None  # one of several: a line each, for grep and CI logs (one spec wraps, as ever)
    s = plan.spec
    for w in plan.warnings:
        err.print(f"[yellow]warning[/]: {where}{escape(w)}", soft_wrap=one_line)
    out.print(f"[green]valid{' (schema only)' if schema_only else ''}[/]: {where}{s.name}: "
              f"{len(plan.space.names)} parameters"
              f"{' (conditional)' if plan.space.is_conditional else ''}, "
              f"{len(s.objective)} objective(s), strategy {plan.decision.name} ({plan.decision.reason}), "
              f"executor {s.executor.kind}{'' if s.executor.kind == 'inline' else f' x{s.executor.workers}'}",
              soft_wrap=one_line)  # (inline runs one trial at a time, whatever workers says: it warns so above)


@app.command("ls")
def list_experiments(storage: StorageOption = None,
                     as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False) -> None:
    """List the experiments in the store."""
    from rich.table import Table

    from tunesmith.coordinators import run_abandoned
    from tunesmith.storage.sql import resume_hint
    from tunesmith.summary import status_said
    from tunesmith.terminal_text import escape

    store = _store(storage)
    rows = []
    counts = store.trial_counts()  # one query for all experiments, not one trial read each
    now = time.time()
    for e in store.experiments():
        n = counts.get(e.id, {})
        # `show`'s rule: recorded as running while no coordinator runs it (killed with -9, its machine gone)
        # (it reads the experiment's events and trials: only for one recorded as running)
        abandoned = e.status is RunStatus.RUNNING and run_abandoned(store, e, now)
        said = status_said(e.status.value, {state.value: k for state, k in n.items()})
        rows.append({"name": e.name, "status": e.status.value, **({"status_said": said} if said != e.status.value
                                                                   else {}), "abandoned": abandoned,
                     "strategy": e.strategy, "trials": sum(n.values()), "completed": n.get(TrialState.COMPLETED, 0),
                     "failed": n.get(TrialState.FAILED, 0), "created_at": e.created_at})
    if as_json:
        print(strict_json(rows, indent=2))
        return
    table = Table()
    for col in ("name", "status", "strategy", "trials", "completed", "failed"):
        table.add_column(col)
    for r in rows:
        status = f"{r['status']} (abandoned)" if r["abandoned"] else r.get("status_said", r["status"])
        table.add_row(r["name"], status, *(str(r[c]) for c in ("strategy", "trials", "completed", "failed")))
    out.print(table if rows else "no experiments in this store")
    if lost := [r["name"] for r in rows if r["abandoned"]]:
        out.print(f"abandoned: no live coordinator runs it (killed, or its machine went away); continue with "
                  f"{escape(resume_hint(store, lost[0]))}" + (f" (and {', '.join(lost[1:])})" if lost[1:] else ""))


@app.command()
def show(name: Annotated[str, typer.Argument()], storage: StorageOption = None,
         as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False) -> None:
    """Status, counts by state, the best trial (and the Pareto front for several objectives)."""
    from tunesmith.console import print_best_table
    from tunesmith.storage.sql import resume_hint
    from tunesmith.summary import best_text, reads_curves, scheduler_without_reports, shown_experiment
    from tunesmith.terminal_text import escape  # a stop reason may quote a trial's stderr

    from tunesmith.promotion.champions import champions_held

    store = _store(storage)
    exp = store.experiment(name)
    trials = store.trials(exp.id, curves=reads_curves(exp))
    shown = shown_experiment(store, exp, trials, time.time())
    summary = shown.summary
    # the trials registered models serve, by the store's audit trail: a promotion may have shipped another trial than
    # the selected one (`promote --trial N`), which `show` then marked "what tunesmith promote ships" all the same
    held = [c for c in champions_held(store, exp) if c.trial is not None]
    if held:
        summary = {**summary, "served": [{"model_name": c.model_name, "version": c.version, "trial": c.trial}
                                         for c in held]}
    if as_json:
        print(strict_json(summary, indent=2))
        return
    counts = ", ".join(f"{k} {v}" for k, v in summary["trials"].items() if v)
    out.print(f"[bold]{name}[/]: {summary.get('status_said', summary['status'])}; strategy "
              f"{summary['strategy']['name']} ({summary['strategy']['reason']})")
    out.print(f"trials: {counts or 'none'}; failure rate {summary['failure_rate']:.0%}")
    if "stop_reason" in summary:
        out.print(f"stopped: {escape(summary['stop_reason'])}")
    if summary["scheduler"]:
        _print_scheduler_summary(summary, scheduler_without_reports(exp, trials), shown.restarted,
                                 command=(exp.spec.get("trial") or {}).get("command") is not None)
    if "quota_wait" in summary:
        w = summary["quota_wait"]
        out.print(f"[yellow]waiting on quota[/] {escape(w['key'])}: {w['in_use']} of {w['limit']} slots in use "
                  f"since {_clock_time(w['since'])} (see `tunesmith quota list`)")
    if summary.get("abandoned"):
        out.print(f"[yellow]no live coordinator runs {name}[/] (it was killed, or its machine went away); continue it "
                  f"with: {escape(resume_hint(store, name))}")
    _print_task_summary(summary)
    if "reproducibility" in summary:
        r = summary["reproducibility"]
        out.print(f"reproducibility index: {r['index']:.0%} ({r['matched']} of {r['reproduced']} re-runs matched)")
    _print_lineage(summary)
    if summary["best"]:
        b = summary["best"]
        # with several objectives (or a select policy) the best by the first objective is not what promote ships
        first = (f" by {summary['objectives'][0]['metric']} (the first objective)"
                 if summary.get("selected") and summary["selected"]["number"] != b["number"] else "")
        out.print(escape(best_text(b, first)))
    _print_selection_and_cost(summary)
    for c in held:
        out.print(escape(f"served: model {c.model_name!r} version {c.version} is trial {c.trial} (by this store's "
                         "audit trail of promotions and rollbacks)"), soft_wrap=True)
    # the whole Pareto front with several objectives (the table lists it; --json has it under "pareto")
    print_best_table(out, exp, trials, front_limit=None,
                     served={c.trial: f"model {c.model_name} version {c.version}" for c in held if c.trial is not None})


def _print_selection_and_cost(summary: dict) -> None:  # type: ignore[type-arg]
    """The selected trial and why; money spent, burn rate and projected total."""
    if summary.get("constraints"):
        out.print(f"constraints: {', '.join(summary['constraints'])} ({summary.get('feasible_trials', 0)} feasible)")
    if "selected" in summary and summary["selected"] is not None:
        sel = summary["selected"]
        label = f"trial {sel['number']}" if sel["number"] is not None else "no trial"
        others = [s for s in summary.get("served", ()) if s["trial"] != sel["number"]]
        ships = ("" if sel["number"] is None else " (what `tunesmith promote` ships)" if not others else
                 f" (what `tunesmith promote` ships without --trial; model {others[0]['model_name']} serves trial "
                 f"{others[0]['trial']})")
        out.print(f"[bold]selected[/] ({sel['policy']}): {label}{ships}: {sel['reason']}")
    cost = summary.get("cost")
    if cost:
        from tunesmith.cost import money

        def money_or_dash(v: float | None) -> str:
            return "-" if v is None else money(v)
        cap = f" of a budget of {cost['budget']:g}" if cost["budget"] is not None else ""
        p = cost["prices"]
        why = (f": completed without reporting {p['metric']!r}" if p["metric"] and not (
            p["cpu_hour"] or p["gpu_hour"] or p["memory_gb_hour"]) else "")  # else a measurement never arrived
        unknown = (f" (and {cost['trials_cost_unknown']} of unknown cost{why})" if cost.get("trials_cost_unknown")
                   else "")
        out.print(f"cost: spent {money(cost['spent'])}{cap} over {cost['trials_priced']} trials{unknown}; burn rate "
                  f"{money_or_dash(cost['burn_per_hour'])}/hour; projected total "
                  f"{money_or_dash(cost['projected_total'])}")
        out.print(f"priced at: {_prices_text(cost['prices'])}")


def _prices_text(prices: dict) -> str:  # type: ignore[type-arg]
    """What a trial is charged for: `cpu_hour 0.04, gpu_hour 2.5 x 0.5 GPU per trial`, or the metric it reports."""
    rates = [f"{key} {prices[key]:g}" + (f" x {prices['gpus']:g} GPU per trial" if key == "gpu_hour" else "")
             for key in ("cpu_hour", "gpu_hour", "memory_gb_hour") if prices[key]]
    own = f"the trial's own metric {prices['metric']!r}" if prices["metric"] else ""
    return f"{own} (else {', '.join(rates)})" if own and rates else own or ", ".join(rates)


def _print_scheduler_summary(summary: dict, unfed: str | None,  # type: ignore[type-arg]
                             restarted: Sequence[RestartedChild], command: bool = False) -> None:
    """`show`'s lines on early stopping: the steps saved, and what made them mean less than they say."""
    from tunesmith.terminal_text import escape

    scheduler, r = summary["scheduler"], summary["scheduler"]["resources"]
    steps = (f"{r['steps_used']:g} of {r['steps_full']:g} steps ({r['fraction_used']:.0%} of running every trial to "
             f"its end, {r['full_length']:g} steps; {r['fraction_saved']:.0%} saved)" if r["trials"]
             else "no steps counted (no finished trial reported one)")
    unreported = f"; {r['unreported']} trial(s) without reports not counted" if r["unreported"] and r["trials"] else ""
    out.print(f"scheduler {scheduler['name']}: {steps}{unreported}; pruned {summary['trials']['pruned']}")
    if "length_warning" in scheduler:
        out.print(f"[yellow]warning[/]: {escape(scheduler['length_warning'])}")
    if unfed is not None:
        out.print(f"[yellow]warning[/]: {escape(unfed)}")
    if restarted:
        from tunesmith.scheduler.evidence import restarted_warning

        out.print(f"[yellow]warning[/]: {escape(restarted_warning(restarted, command))}; the steps saved above count "
                  "the trials PBT stopped, not what it gained")
    if past := scheduler.get("ran_past_their_stop"):
        out.print(f"[yellow]{len(past)} pruned trial(s) ran on past the step they were stopped at[/] (trial "
                  f"{', '.join(map(str, past[:5]))}{', ...' if len(past) > 5 else ''}): a stopped trial runs on "
                  "until its code returns; check trial.should_prune() after each report and return when it is "
                  "true")


def _print_task_summary(summary: dict) -> None:  # type: ignore[type-arg]
    """The honest-evaluation facts of a built-in task: fold spread, latency, size, holdout, nested, data."""
    from tunesmith.summary import evaluation_lines, holdout_lines
    from tunesmith.terminal_text import escape

    if "task" not in summary:
        return
    for line in (*evaluation_lines(summary), *holdout_lines(summary)):  # the report's and `run`'s words too
        out.print(escape(line))
    epochs = summary.get("data_fingerprints") or []
    if len(epochs) > 1:
        out.print(f"[yellow]the data changed mid-experiment[/] ({len(epochs) - 1} time(s), found on resume): trials "
                  "from before and after a change are not comparable")
    for i, epoch in enumerate(epochs):
        data = epoch["fingerprint"] or {}
        which = _trials_on(epoch["from_trial"], epochs[i + 1]["from_trial"] if i + 1 < len(epochs) else None,
                           len(epochs) > 1 and i + 1 == len(epochs))
        re_run = f", and trial(s) {', '.join(map(str, epoch['re_run']))} re-run on it" if epoch["re_run"] else ""
        changed = f"; changed: {escape('; '.join(epoch['changes']))}" if epoch["changes"] else ""
        # n_cols counts the features (the label, groups and time columns are not): "columns" read as the file's
        shape = (f"{data.get('n_rows')} rows x {data.get('n_cols')} feature columns, "
                 f"{str(data.get('content_hash'))[:19]}"
                 if data else "its fingerprint was not recorded")
        out.print(f"data{which}: {shape}{re_run}{changed}")


def _trials_on(start: int | None, until: int | None, last: bool) -> str:
    """Which trials ran on one fingerprint of the data: from ``start`` to the next one's ``until`` (unknown for a
    change recorded before its first trial number was; nothing to say when the data never changed)."""
    if start is None or (until is None and not last):
        return ""
    if last:
        return f" (from trial {start} on)"
    return f" (trials {start} to {until - 1})" if until is not None and until > start else " (no trial)"


def _print_lineage(summary: dict) -> None:  # type: ignore[type-arg]
    """Where a re-tune came from and what re-tuned this experiment."""
    lineage, retunes = summary.get("lineage"), summary.get("retunes")
    if lineage:
        warm, strategy = summary.get("warm_start") or {}, summary["strategy"]["name"]
        taken = warm.get("taken_as")
        into = "the model's prior mean" if strategy == "bo" else "CMA-ES's start (their best 10%)"
        prior = {"transfer": f"{warm.get('prior', 0)} prior trials as {into}",
                 "rebased": f"{warm.get('prior', 0)} prior trials replayed re-based"}.get(taken or "",
                                                                                        "no other prior trial used")
        if warm.get("mode") == "transfer" and taken == "none":
            prior += f" (strategy {strategy} takes none here; see drift.retune.prior)"
        queued = len(warm.get("first", []))
        ran = min(queued, summary.get("total_trials", queued))  # a budget below top_k re-evaluates only that many
        how = (f"warm-started: {f'{ran} of the {queued}' if ran < queued else queued} prior best re-evaluated "
               f"first, {prior}" if lineage.get("warm") else "cold")
        out.print(f"re-tune of {lineage['parent']} (generation {lineage['generation']}, root {lineage['root']}) "
                  f"on {lineage.get('data')}; {how}")
    if retunes:
        out.print(f"re-tuned as: {', '.join(retunes)}")


@app.command()
def trials(name: Annotated[str, typer.Argument()], storage: StorageOption = None,
           as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
           as_csv: Annotated[bool, typer.Option("--csv", help="CSV output")] = False,
           state: Annotated[list[str] | None, typer.Option(
               "--state", help="only trials in this state (repeat it, or comma-separate: failed,interrupted)")] = None,
           sort: Annotated[str | None, typer.Option(
               "--sort", help="order by this objective (best first) or recorded metric (ascending)")] = None,
           limit: Annotated[int | None, typer.Option("--limit", min=1, help="list the first N only")] = None,
           log: Annotated[int | None, typer.Option(
               "--log", min=0, metavar="N", help="print trial N's log (every attempt's output)")] = None) -> None:
    """Every trial: state, active params, values, metrics, intermediate values, error, attempts, duration.
    --state, --sort and --limit choose which, for the table, --json and --csv alike; --log N prints one's log."""
    from rich.table import Table
    from rich.text import Text

    from tunesmith.summary import trials_csv, trials_json
    from tunesmith.terminal_text import escape
    from tunesmith.trial_listing import read_listed, trial_log

    if as_json and as_csv:  # one of them printed, silently: the other was lost
        raise UserInputError("--csv and --json: give one (each prints every trial in its own format)")
    if log is not None and (as_json or as_csv or state or sort or limit):
        raise UserInputError("--log prints one trial's log: leave out --json, --csv, --state, --sort and --limit")
    store = _store(storage)
    exp = store.experiment(name)
    if log is not None:
        text = trial_log(store, exp, log)
        sys.stdout.write(text)
        if not text:  # (nothing printed read as the command failing)
            err.print(f"trial {log}'s log is empty: the trial printed nothing")
        return
    records, total = read_listed(store, exp, state or (), sort, limit, curves=as_json or as_csv)
    if as_json:
        print(strict_json(trials_json(exp, records, store.events(exp.id)), indent=2))
        return
    if as_csv:
        sys.stdout.write(trials_csv(exp, records))
        return
    table = Table()
    for col in ("#", "state", "values", "params", "attempts", "time", "error"):
        table.add_column(col)
    for r in trials_json(exp, records):
        # one line a trial, cut to the column's width (50 parameters wrapped a row to 13 lines): the full params
        # are in --json and --csv
        params = Text(json.dumps(r["params"]), no_wrap=True, overflow="ellipsis")
        table.add_row(str(r["number"]), r["state"], escape(json.dumps(r["values"])) if r["values"] else "",
                      params, str(r["attempts"]),
                      f"{r['duration_s']:.2f}s" if r["duration_s"] is not None else "", escape(r["error"] or ""))
    out.print(table)
    if len(records) < total:
        out.print(f"{len(records)} of {total} trials")
    if records:
        out.print(f"a trial's log: tunesmith trials {escape(name)} --log N")


SpecSideArgument = Annotated[str, typer.Argument(help="a spec file (a file that exists, or ends in .yaml or .yml), "
                                                       "or the name of an experiment in the store (its recorded spec)")]


@app.command("diff")
def diff_specs(old: SpecSideArgument, new: SpecSideArgument, storage: SpecStorageOption = None,
               as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False) -> None:
    """Compare two specs as tunesmith reads them: one line per difference by field path (the space first, then
    objectives and constraints, then budget, executor and the rest), and whether OLD's trials are points of NEW's
    space. Exit 0: the same; 1: they differ; 2: bad input (a spec file's first problem, as `validate` says it; no
    such experiment) or a store that cannot be read; 75: the store's server did not answer."""
    from tunesmith.spec.diff import compare_named

    opened: dict[str | None, Any] = {}  # two recorded sides of one store open it once

    def read_recorded(name: str, spec_storage: str | None) -> Any:  # only for a side that is no file
        if spec_storage not in opened:
            opened[spec_storage] = _store(storage, spec_storage)
        return opened[spec_storage].experiment(name).spec

    try:
        compared = compare_named(old, new, read_recorded)
    except StorageError as e:
        if isinstance(e, UserInputError | TemporaryFailure):  # exit 2 and 75, as every command's
            raise
        err.print(_error_said(e)[1], soft_wrap=True)
        raise typer.Exit(EXIT_INPUT) from None  # diff(1)'s 2 for any trouble: 1 says the specs differ
    if as_json:
        print(strict_json(compared.to_json(), indent=2))
    else:  # print, not Rich: a value may hold [brackets] or :colons: that Rich reads as markup or emoji
        print("\n".join([d.line for d in compared.differences] + [compared.space_line()])
              if compared.differences else "no differences")
    raise typer.Exit(EXIT_FAILED if compared.differences else EXIT_OK)


@app.command("spec")
def print_spec(name: Annotated[str, typer.Argument(help="the experiment's name")], storage: StorageOption = None,
               as_json: Annotated[bool, typer.Option("--json", help="the stored JSON, secrets hidden")] = False,
               show_secrets: Annotated[bool, typer.Option(
                   "--show-secrets", help="print secret-named trial.env values and any password as recorded, "
                                          "not as ***")] = False,
               ) -> None:
    """Print the spec experiment NAME was recorded with, as YAML: what its run ran (with the seed and workdir it
    filled in), which `tunesmith validate`, `run` and `diff` read back; secret-named trial.env values and whatever
    reads like a password, token or key as *** unless --show-secrets."""
    from tunesmith.redaction import spec_secrets_hidden
    from tunesmith.spec.writer import recorded_spec_yaml

    experiment = _store(storage).experiment(name)
    if as_json:
        print(strict_json(experiment.spec if show_secrets else spec_secrets_hidden(experiment.spec), indent=2))
        return
    sys.stdout.write(recorded_spec_yaml(experiment.name, experiment.spec, show_secrets))


@app.command()
def delete(name: Annotated[str, typer.Argument()], storage: StorageOption = None,
           yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask")] = False,
           missing_ok: Annotated[bool, typer.Option("--missing-ok",
                                                    help="succeed (saying nothing was deleted) if there is no "
                                                         "such experiment")] = False,
           even_if_champion: Annotated[bool, typer.Option(
               "--even-if-champion", help="delete an experiment the store's audit trail names as a registered "
               "model's champion (its alias was moved outside tunesmith)")] = False,
           reason: Annotated[str | None, typer.Option("--reason", help="why (kept in the audit trail)")] = None,
           ) -> None:
    """Delete an experiment's records from the store (trial folders on disk are kept); the audit trail keeps who
    deleted it, when, and its promotions and rollbacks (tunesmith audit NAME)."""
    from tunesmith.deletion import delete_experiment, refuse_deleting
    from tunesmith.errors import ExperimentNotFound, StoreNotFound
    from tunesmith.terminal_text import escape

    try:
        store = _store(storage)
        exp = store.experiment(name)
    except (ExperimentNotFound, StoreNotFound) as e:
        if missing_ok:  # a success, said: a script's typo deleted nothing (the did-you-mean is in the message); no
            # store yet is what a first `make demo` meets: what is wrong, not the fix ("run an experiment first")
            said = str(e).partition("; ")[0] if isinstance(e, StoreNotFound) else str(e)
            out.print(f"nothing deleted: {escape(said)}", soft_wrap=True)
            return
        raise
    if not yes:  # refused before it is asked; delete_experiment checks again after the answer (with --yes, once)
        refuse_deleting(store, exp, time.time(), even_if_champion=even_if_champion)
        if not sys.stdin.isatty():  # nobody to answer: the prompt met end-of-input and exited 130, mute
            raise UserInputError(f"--yes: deleting {name!r} asks first, and nothing can answer here (stdin is not a "
                                 "terminal); add --yes")
        count = sum(store.trial_counts_of(exp.id).values())  # (not every trial and report read to count)
        if not typer.confirm(f"Delete experiment {name!r} and its {count} trials?"):
            raise typer.Exit(EXIT_INPUT)
    try:
        kept = delete_experiment(store, exp, time.time(), reason, even_if_champion=even_if_champion)
    except ExperimentNotFound as e:  # deleted by another process while the prompt waited: what --missing-ok asks for
        if missing_ok:
            out.print(f"nothing deleted: {escape(str(e))}", soft_wrap=True)
            return
        raise
    out.print(f"deleted {name}" + (f" ({len(kept.kept_events)} promotion/rollback event(s) kept in its audit trail)"
                                   if kept.kept_events else ""))


@app.command()
def version(storage: Annotated[str | None, typer.Option(
                "--storage", "-s", help="also read the schema revision of this store (never migrated)")] = None,
            as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False) -> None:
    """Versions of tunesmith, Python, Optuna, scikit-learn, SQLAlchemy, ... and the store schema: for bug reports."""
    from tunesmith.versions import versions

    report = versions(storage, "--storage")
    if as_json:
        print(strict_json(report, indent=2))
        return
    for key, value in report.items():
        if key == "store":
            revision = value['schema_revision'] or 'none (no tunesmith store here yet)'
            out.print(f"store {value['url']}: schema revision {revision}")
        elif key == "tunesmith_commit":
            out.print(f"{key} {value or 'unknown (not installed from a git checkout or URL)'}")
        else:
            out.print(f"{key} {value if value is not None else 'not installed'}")


@app.command()
def metrics(name: Annotated[str, typer.Argument()], storage: StorageOption = None) -> None:
    """Print the Prometheus exposition of one experiment, computed from the store (no coordinator needed)."""
    from tunesmith.monitoring.metrics import metrics_from_store

    sys.stdout.write(metrics_from_store(_store(storage), name, time.time()).decode())


@app.command()
def report(name: Annotated[str, typer.Argument()], storage: StorageOption = None,
           output: Annotated[str, typer.Option("--output", "-o", help="the HTML file to write")] = "report.html",
           ) -> None:
    """Write one self-contained HTML report of an experiment (plots inlined; opens offline)."""
    from tunesmith.monitoring.report import write_report

    count = write_report(_store(storage), name, output, generated_at=time.time())
    out.print(f"wrote {output} ({count} trials)")


@app.command()
def dashboard(name: Annotated[str, typer.Argument()], storage: StorageOption = None,
              port: Annotated[int, typer.Option("--port", min=0, max=65535, help="0 picks a free port")] = 8050,
              addr: Annotated[str, typer.Option("--addr", help="address to listen on")] = "127.0.0.1",
              refresh: Annotated[int, typer.Option("--refresh", min=1, help="seconds between page reloads")] = 10,
              ) -> None:
    """Serve the experiment's report, rebuilt from the store as trials start, report and finish (read-only; usable
    during a run).
    Ctrl-C, SIGTERM or SIGHUP stops it with exit 130, as they stop `run`."""
    from tunesmith.monitoring.dashboard import serve_dashboard
    from tunesmith.stop_signals import stop_signals_interrupt

    with stop_signals_interrupt():
        serve_dashboard(_store(storage), name, addr, port, refresh, announce=lambda line: print(line, flush=True))


def _clock_time(epoch: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


quota_app = typer.Typer(no_args_is_help=True, cls=_Commands, help=(
    "Store-wide limits on trials running at once, per user (user:NAME) or per tag (tag:KEY=VALUE); every "
    "coordinator on the store obeys them."))
app.add_typer(quota_app, name="quota")
# Checked as parsed, the key before the limit (`quota set foo 0` names the key), each refusal a QuotaError: one line
# and exit 2 (main), where a Click BadParameter is Click's usage text and "Invalid value for '{limit}'".
QuotaKeyArgument = Annotated[str, typer.Argument(parser=parse_quota_key, help="user:NAME (e.g. user:alice) or "
                                                 "tag:KEY=VALUE (e.g. tag:team=vision)")]


@quota_app.command("set")
def quota_set(key: QuotaKeyArgument,
              limit: Annotated[int, typer.Argument(parser=parse_quota_limit, show_default=False,
                                                   help="the most trials running at once under KEY (>= 1)")],
              storage: StorageOption = None) -> None:
    """Limit KEY to LIMIT trials running at once, across every run on the store (replaces its limit)."""
    from tunesmith.storage.sql import describe_url

    store = _store(storage, create=True)  # limits may be set before the store's first run
    store.set_quota(key, limit, time.time())
    out.print(f"quota {key}: at most {limit} trial(s) running at once; runs waiting on it start as slots free "
              f"(store: {describe_url(store.url)})")


@quota_app.command("remove")
def quota_remove(key: QuotaKeyArgument, storage: StorageOption = None) -> None:
    """Lift the limit on KEY."""
    removed = _store(storage).remove_quota(key)
    out.print(f"quota {key}: removed" if removed else f"quota {key}: had no limit; nothing to remove")


@quota_app.command("list")
def quota_list(storage: StorageOption = None,
               as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False) -> None:
    """Every limit, and every key with trials running now: its slots in use (live leases) and who waits for one."""
    from rich.table import Table

    from tunesmith.terminal_text import escape  # a key names a spec's tag

    usage = _store(storage).quotas(time.time())
    if as_json:
        print(strict_json([{"key": u.key, "limit": u.limit, "in_use": u.in_use, "waiting": u.waiting}
                          for u in usage], indent=2))
        return
    table = Table()
    for col in ("key", "limit", "in use", "coordinators waiting"):
        table.add_column(col)
    for u in usage:
        table.add_row(escape(u.key), "-" if u.limit is None else str(u.limit), str(u.in_use), str(u.waiting))
    out.print(table if usage else "no quotas set and nothing running on this store")


@quota_app.command("release")
def quota_release(holder: Annotated[str, typer.Argument(help="the coordinator, as a refusal names it (HOST:PID:TAG)")],
                  storage: StorageOption = None) -> None:
    """Give back every slot HOLDER holds (trial slots, a cycle's hold on its lineage, a promotion's on its model), as
    if its leases had lapsed: for a coordinator you know is gone (killed on a host that is down), whose leases would
    hold until they lapse."""
    from tunesmith.errors import QuotaError
    from tunesmith.lease_holders import holder_alive, holder_here

    if not holder.strip():  # it said " holds no slot on this store", exit 0
        raise QuotaError("holder: empty; give the coordinator as a refusal names it (HOST:PID:TAG)")
    if holder_here(holder) and holder_alive(holder):
        raise QuotaError(f"holder {holder}: a live process on this host (pid {holder.split(':')[1]}); stop it "
                         "instead, and its slots go back with it")
    keys = _store(storage).release_slots(holder)
    out.print(f"released {holder}'s slots on {', '.join(keys)}" if keys else
              f"{holder} holds no slot on this store (its leases lapsed, or the name is mistyped: copy it from the "
              "refusal that named it); nothing to release")


store_app = typer.Typer(no_args_is_help=True, cls=_Commands, help="The store itself: its schema.")
app.add_typer(store_app, name="store")


@store_app.command("upgrade")
def store_upgrade(storage: StorageOption = None) -> None:
    """Upgrade the store an older tunesmith wrote to this one's schema revision, on purpose (also under
    TUNESMITH_MIGRATE=never). One way: back it up first; every tunesmith sharing it must then be this release."""
    from tunesmith.storage.upgrades import upgrade_on_purpose

    out.print(upgrade_on_purpose(_store(storage)), soft_wrap=True, markup=False, highlight=False)


export_app = typer.Typer(no_args_is_help=True, cls=_Commands, help="Write an experiment to another system.")
app.add_typer(export_app, name="export")
TrackingUriOption = Annotated[str | None, typer.Option(
    "--tracking-uri", help="MLflow tracking URI (default: the spec's tracking.mlflow.uri, else $MLFLOW_TRACKING_URI, "
                           "else sqlite:///mlflow.db in the spec's folder)")]


@export_app.command("mlflow")
def export_mlflow(name: Annotated[str, typer.Argument(help="the experiment's name")], storage: StorageOption = None,
                  tracking_uri: TrackingUriOption = None) -> None:
    """Write experiment NAME and its trials to MLflow (only what is missing there: running it twice is harmless).
    Ctrl-C, SIGTERM or SIGHUP stops it after the trial run being written, its runs ended (exit 130); running it
    again continues."""
    from tunesmith.clock import SystemClock
    from tunesmith.console import CountingProgress
    from tunesmith.stop_signals import stop_signals_deferred
    from tunesmith.tracking import export_mlflow as export

    with stop_signals_deferred() as stop, contextlib.closing(CountingProgress(err, "trial runs")) as progress:
        result = export(_store(storage), name, SystemClock(), tracking_uri, on_trial=progress,
                        stopping=lambda: stop.signal is not None)
    if result.stopped:
        err.print(f"stopped by {stop.signal}: {result.written} trial run(s) written, {result.unchanged} already up "
                  f"to date, {result.left} not looked at; running the same command again continues (nothing is "
                  "written twice)", soft_wrap=True)
        raise typer.Exit(EXIT_INTERRUPTED)
    out.print(f"exported {name}: parent run {result.parent_run_id}; {result.written} trial run(s) written, "
              f"{result.unchanged} already up to date")


@app.command()
def promote(
    name: Annotated[str, typer.Argument(help="the experiment's name")],
    model_name: Annotated[str, typer.Option("--model-name", "-m", help="the registered model to promote to")],
    trial: Annotated[int | None, typer.Option("--trial", help="this trial (default: the best eligible one)")] = None,
    policy: Annotated[str | None, typer.Option("--policy", help="a policy file (YAML) with more gates")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="run the gates, register nothing")] = False,
    reason: Annotated[str | None, typer.Option("--reason", help="why (kept in the audit trail)")] = None,
    report_dir: Annotated[str | None, typer.Option("--report-dir", help="the existing folder the report goes in "
                                                                        "(default: <workdir>/promotions)")] = None,
    even_if_rolled_back: Annotated[bool, typer.Option(
        "--even-if-rolled-back", help="promote a trial whose model was rolled back from this model (gate "
        "rolled_back fails it otherwise)")] = False,
    storage: StorageOption = None, tracking_uri: TrackingUriOption = None,
) -> None:
    """Run every promotion gate on a trial; only when all pass, register it and move alias `champion` to it.
    A trial whose model was rolled back is rejected unless --even-if-rolled-back. Exit 0 promoted, already the
    champion (nothing registered) or a dry run that passed; 3 rejected by a gate; 2 bad input; 75 another promotion
    of the model held it too long, or moved its champion meanwhile (nothing registered: run it again)."""
    from tunesmith.clock import SystemClock
    from tunesmith.promotion.promote import Decision
    from tunesmith.promotion.promote import promote as run_promotion
    from tunesmith.terminal_text import escape  # the note names the model

    with _library_warnings_said("refitting the trial"):
        result = run_promotion(_store(storage), name, model_name, SystemClock(), trial, policy, dry_run,
                               tracking_uri, report_dir, reason, even_if_rolled_back,
                               waiting=lambda said: err.print(f"[yellow]note[/]: {escape(said)}", soft_wrap=True))
    for note in result.notes:
        err.print(f"[yellow]note[/]: {escape(note)}", soft_wrap=True)
    for g in result.gates:
        mark = "[green]pass[/]" if g.passed else "[red]FAIL[/]"
        out.print(f"  {mark} {g.gate}: {g.message}")
    if result.version:
        out.print(f"[green]promoted[/]: {name} trial {result.trial} is {model_name} version {result.version} "
                  f"(alias champion{'; previous -> ' + result.previous_champion if result.previous_champion else ''})")
    elif result.decision in (Decision.ALREADY_CHAMPION, Decision.DRY_RUN_ALREADY_CHAMPION):
        out.print(f"{result.decision.value}: {name} trial {result.trial} is {model_name} version "
                  f"{result.champion_before}; nothing registered")
    else:
        out.print(f"{result.decision.value}: {name} trial {result.trial} -> {model_name}")
    out.print(f"report: {result.report_md}")
    raise typer.Exit(EXIT_REJECTED if result.rejected else EXIT_OK)


ModelRegistryOption = Annotated[str | None, typer.Option("--tracking-uri", help="MLflow tracking URI (default: the "
                                                         "registry this store's last promotion of the model recorded, "
                                                         "else $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db "
                                                         "here)")]


def _model_registry(storage: str | None, model_name: str, tracking_uri: str | None):  # type: ignore[no-untyped-def]
    """The store (None where there is none to audit into: the registry is the record that matters) and the registry
    of a command naming only a model, and where the registry came from (said where it was not given)."""
    from tunesmith.errors import StoreNotFound
    from tunesmith.promotion.promote import model_registry_uri
    from tunesmith.terminal_text import escape

    try:
        store = _store(storage)
        store.experiments()
    except StoreNotFound:
        store = None
    uri, field = model_registry_uri(store, model_name, tracking_uri, os.getcwd())
    if field.startswith("the registry this store"):
        err.print(f"[yellow]note[/]: {escape(field)}; --tracking-uri names another", soft_wrap=True)
    return store, uri, field


RegisteredModelArgument = Annotated[str, typer.Argument(help="the registered model")]


@app.command()
def rollback(model_name: RegisteredModelArgument,
             reason: Annotated[str, typer.Option("--reason", help="why (kept in the audit trail)")],
             storage: StorageOption = None, tracking_uri: ModelRegistryOption = None) -> None:
    """Move alias `champion` of MODEL_NAME back to the previous champion (recorded in the audit trail). Where a
    rollback of it was cut short (killed), this finishes that one instead, and says so. The rollback holds the
    model: `tunesmith cycle -m MODEL_NAME` checks drift but neither re-tunes nor promotes until `tunesmith release
    MODEL_NAME` (a `tunesmith promote` by hand is not held). Exit 0 rolled back; 2 bad input (nothing to roll back
    to, no registry there); 75 a promotion of the model held it too long (run it again)."""
    from tunesmith.clock import SystemClock
    from tunesmith.promotion.promote import rollback as run_rollback
    from tunesmith.terminal_text import escape

    store, uri, field = _model_registry(storage, model_name, tracking_uri)
    result = run_rollback(store, model_name, SystemClock(), uri, reason, field)
    for note in result.notes:
        err.print(f"[yellow]note[/]: {escape(note)}", soft_wrap=True)
    done = (f"finished the interrupted rollback of {model_name} (reason: {result.reason}); nothing more was rolled "
            "back" if result.finished_interrupted else f"rolled back {model_name}")
    out.print(escape(f"{done}: champion v{result.from_version} -> v{result.to_version}"
                     f"{'; previous -> v' + result.previous if result.previous else '; no earlier champion left'}"),
              soft_wrap=True)
    out.print(escape(f"held: cycles with --model-name {model_name} check drift but neither re-tune nor promote it "
                     f"until released (tunesmith release {model_name} --reason ...; a `tunesmith promote` by hand is "
                     "not held)"), soft_wrap=True)


@app.command()
def release(model_name: RegisteredModelArgument, reason: Annotated[str, typer.Option(
                "--reason", help="why the cause of the rollback is gone (audit trail)")],
            storage: StorageOption = None, tracking_uri: ModelRegistryOption = None) -> None:
    """Let cycles re-tune and promote MODEL_NAME again after a rollback held it (recorded in the audit trail, and on
    the champion's version). Exit 0 released, or not held (nothing to do); 2 bad input; 75 a promotion or rollback
    of the model held it too long (run it again)."""
    from tunesmith.clock import SystemClock
    from tunesmith.promotion.promote import release_hold
    from tunesmith.terminal_text import escape

    store, uri, field = _model_registry(storage, model_name, tracking_uri)
    hold = release_hold(store, model_name, SystemClock(), uri, reason, field)
    if hold is None:
        out.print(escape(f"model {model_name} is not held by a rollback: nothing to release"), soft_wrap=True)
        return
    out.print(escape(f"released {model_name}: cycles re-tune and promote it again (it was held since the rollback "
                     f"from v{hold.mark.from_version} to v{hold.mark.to_version}, reason: {hold.mark.reason})"),
              soft_wrap=True)


@app.command()
def reproduce(name: Annotated[str, typer.Argument(help="the experiment's name")],
              trial: Annotated[int, typer.Argument(help="the trial's number")],
              rtol: Annotated[float, typer.Option(
                  "--rtol", help="relative tolerance per objective (a task's timings are not compared)")] = 1e-6,
              storage: StorageOption = None) -> None:
    """Re-run TRIAL with its recorded params and seed; compare each objective (exit 0 matched, 1 not); a task's
    timings (latency, fit time) are shown, not compared."""
    from tunesmith.clock import SystemClock
    from tunesmith.reproduce import reproduce as run_reproduce

    r = run_reproduce(_store(storage), name, trial, SystemClock(), rtol)
    for d in r.differences:
        err.print(f"[yellow]warning[/]: differs from the experiment's first run: {d}")
    if r.error:
        out.print(f"[red]not reproduced[/]: trial {trial}: {r.error}")
    else:
        verdict = "[green]reproduced[/]" if r.matched else "[red]NOT reproduced[/]"
        timings = (f"; {', '.join(r.not_compared)} not compared: measured times vary from run to run"
                   if r.not_compared else "")
        out.print(f"{verdict}: trial {trial} recorded {r.recorded}, now {r.reproduced} (rtol {r.rtol:g}{timings})")
    out.print(f"reproducibility index of {name}: {r.index[0]}/{r.index[1]} reproduced trials matched")
    raise typer.Exit(EXIT_OK if r.matched else EXIT_FAILED)


@app.command()
def audit(name: Annotated[str | None, typer.Argument(help="the experiment (default: all)")] = None,
          storage: StorageOption = None,
          as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False) -> None:
    """The audit trail: runs, promotions, rejections, rollbacks, releases, exports, deletions, cycle steps (and
    cycles refused or taken over); who, when, from where, why. A lineage's root lists its re-tunes' promotions and
    rollbacks too. A deleted experiment's promotions and rollbacks are kept, with its deletion. A promotion or rollback
    killed partway is settled against the registry first, where it can be read: its outcome is recorded, and a
    rollback cut short is finished (its alias moves), as the model's next promote or rollback would. Exit 0 listed;
    2 bad input (no such experiment; --json: the bad_input object `drift` and `cycle` give)."""
    from tunesmith.audit import CYCLE_STEP_PREFIX
    from tunesmith.clock import SystemClock
    from tunesmith.promotion.settling import settled_trail
    from tunesmith.terminal_text import escape

    try:
        rows, unsettled = settled_trail(_store(storage), name, SystemClock())
    except UserInputError as e:  # a CI step parsing stdout gets the refusal, as from `drift --json`
        if as_json:
            _emit_json(_refused_json(name or "", e, None), True, None)
        raise
    for left in unsettled:
        err.print(f"[yellow]note[/]: {escape(left.said)}", soft_wrap=True)
    if as_json:
        print(strict_json(rows, indent=2, default=str))
        return
    import datetime

    for r in rows:
        d = r["detail"]
        who = d.get("actor") or {}
        when = datetime.datetime.fromtimestamp(r["at"], datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        if r["kind"].startswith(CYCLE_STEP_PREFIX):  # a step's detail (a drift report) is for --json
            by = f" by {who.get('user')}@{who.get('host')}" if who else ""
            out.print(f"{when} {r['experiment']} {r['kind']} {d.get('status')}{by}: {d.get('why')}", soft_wrap=True)
            continue
        extra = {k: v for k, v in d.items() if k not in ("actor", "reason") and v not in (None, [], "")}
        which = f"{r['experiment']} (deleted, id {r['experiment_id']})" if r["deleted"] else r["experiment"]
        out.print(f"{when} {which} {r['kind']}" + (f" trial {r['trial']}" if r["trial"] is not None else "")
                  + (f" by {who.get('user')}@{who.get('host')}" if who else "")
                  + (f" reason: {d['reason']}" if d.get("reason") else "") + (f" {json.dumps(extra)}" if extra else ""))
    if not rows:
        out.print("no audited actions")


JsonFlag = Annotated[bool, typer.Option("--json", help="print the report as JSON on stdout (no table)")]
JsonOut = Annotated[str | None, typer.Option("--json-out", help="also write the report as JSON to this file")]
DataOption = Annotated[str, typer.Option("--data", help="the new rows (CSV or Parquet), with the experiment's "
                                                        "task data columns")]


def _check_json_out(json_out: str | None) -> None:
    """Refused before the work whose report it would hold (a cycle may tune for hours), not after it."""
    if json_out:
        folder = os.path.dirname(os.path.abspath(json_out))
        if not os.path.isdir(folder):
            raise UserInputError(f"--json-out: folder {folder!r} does not exist; create it or write elsewhere")


def _emit_json(payload: dict[str, Any], as_json: bool, json_out: str | None) -> None:
    text = strict_json(payload, indent=2, default=str)
    if json_out:
        try:
            with open(json_out, "w", encoding="utf-8") as f:
                f.write(text + "\n")
        except OSError as e:
            raise UserInputError(f"--json-out: cannot write {json_out!r}: {e.strerror}") from None
    if as_json:
        print(text)


def _emit_refusal_json(refused: dict[str, Any], as_json: bool, json_out: str | None) -> None:
    """A refused command's ``--json`` report, written where asked; to stdout alone when ``--json-out``'s own path
    is what failed (its folder is missing), which the one-line error on stderr then names."""
    try:
        _emit_json(refused, as_json, json_out)
    except UserInputError:
        _emit_json(refused, as_json, None)


@app.command()
def drift(name: Annotated[str, typer.Argument(help="the experiment whose data the new rows are compared with")],
          data: DataOption,
          reference: Annotated[str | None, typer.Option("--reference", help="compare with this file instead of "
                                                        "the data the experiment was tuned on (its task data, or the "
                                                        "file a re-tune was tuned on); needed for trial code that "
                                                        "holds none")] = None,
          storage: StorageOption = None, as_json: JsonFlag = False, json_out: JsonOut = None) -> None:
    """Per-column drift (PSI, KS, chi-square), target drift and the champion's score on new data: the trial a
    registered model serves by the store's audit trail (`tunesmith promote`'s), else the best one.
    Exit 0: no drift; 4: drift beyond the spec's drift: thresholds; 2: bad input (--json: cycle's bad_input object)."""
    from tunesmith.cycle import served_by_trail
    from tunesmith.drift import check_stored, print_report

    try:
        _check_json_out(json_out)
        store = _store(storage)
        report = check_stored(store, name, data, reference, served=served_by_trail(store, name))
    except UserInputError as e:  # a CI step parsing stdout gets the refusal, in the shape `cycle --json` gives it
        if as_json or json_out:
            _emit_refusal_json(_refused_json(name, e, None), as_json, json_out)
        raise
    _emit_json(report.to_json(), as_json, json_out)
    if not as_json:
        print_report(out, report)
    raise typer.Exit(EXIT_DRIFT if report.drifted else EXIT_OK)


@app.command()
def retune(name: Annotated[str, typer.Argument(help="the experiment to re-tune")],
           data: Annotated[str | None, typer.Option("--data", help="the new rows (CSV or Parquet; required for a "
                                                    "task experiment, passed as $TUNESMITH_DATA to trial "
                                                    "code)")] = None,
           trials: Annotated[int | None, typer.Option("--trials", min=1, help="trial budget (default: "
                                                      "drift.retune.trials, else half the old budget)")] = None,
           new_name: Annotated[str | None, typer.Option("--name", help="the new experiment's name (default: "
                                                        "ROOT-retune-K)")] = None,
           top_k: Annotated[int | None, typer.Option("--top-k", min=0, help="prior best configurations "
                                                     "re-evaluated first (default: drift.retune.top_k, 5)")] = None,
           cold: Annotated[bool, typer.Option("--cold",
                                              help="start from scratch (lineage kept, no warm start)")] = False,
           storage: StorageOption = None, quiet: Annotated[bool, typer.Option(
               "--quiet", "-q", help="no progress display or table of best trials: only the new experiment's name, "
                                     "one line on stdout (warnings, and why a run stopped early, still go to "
                                     "stderr)")] = False,
           as_json: Annotated[bool, typer.Option("--json", help="no progress display: the new experiment as JSON on "
                                                           "stdout (experiment, parent, root, data, status, "
                                                           "stop_reason, trials)")] = False) -> None:
    """A new experiment on new data, linked to NAME and warm-started from its trials: ROOT-retune-K (or --name),
    which `-q` prints alone, for a pipeline's next step (`tunesmith promote`). Exit 0 the re-tune ran; 1 it stopped
    on an error or every trial failed; 2 bad input (nothing recorded); 130 interrupted (`tunesmith resume` continues
    it)."""
    from tunesmith.console import ProgressDisplay
    from tunesmith.events import RunListener
    from tunesmith.retune import retune as run_retune
    from tunesmith.stop_signals import handlers_restored, install_signal_handlers

    if cold and top_k:  # it ran cold, --top-k ignored without a word
        raise UserInputError("--top-k and --cold: give one (--top-k re-evaluates the parent's best configurations "
                             "first, --cold starts from scratch)")
    listener, store = RunListener() if quiet or as_json else ProgressDisplay(out, err), _store(storage)
    with handlers_restored():
        result = run_retune(store, name, data, trials=trials, new_name=new_name, top_k=top_k,
                            warm=not cold, listener=listener, on_runner=install_signal_handlers)
    made = result.experiment
    if as_json:  # (the exit code is the process's, as below)
        lineage = made.attributes.get("lineage") or {}
        print(strict_json({"experiment": made.name, "parent": lineage.get("parent", name), "root": lineage.get("root"),
                           "data": lineage.get("data"), "status": result.status.value,
                           "stop_reason": result.stop_reason, "trials": len(result.trials)}, indent=2), flush=True)
    elif quiet:  # the one thing a pipeline needs from it: the name `promote` takes next
        print(made.name, flush=True)
    _run_and_exit(result, store)


CycleTarget = Annotated[str, typer.Argument(help="a spec file (tuned first if not recorded yet) or an experiment name")]
ReferenceOption = Annotated[str | None, typer.Option("--reference", help="the rows the first tuning was tuned on "
                                                     "(needed for trial code); a re-tune champion's own file is "
                                                     "used instead, unless overwritten since")]
TrialsOption = Annotated[int | None, typer.Option("--trials", min=1, help="the re-tune's trial budget")]
ModelNameOption = Annotated[str | None, typer.Option("--model-name", "-m", help="the registered model (needs the "
                                                     "mlflow extra): its champion is what the cycle checks, and a "
                                                     "promoted re-tune becomes it (-m as in `promote`)")]
CycleTrackingUriOption = Annotated[str | None, typer.Option(
    "--tracking-uri", help="with --model-name: the MLflow registry to read the champion from and promote into, as "
                           "`promote --tracking-uri` (default: the lineage root's recorded tracking.mlflow.uri, else "
                           "$MLFLOW_TRACKING_URI, else sqlite:///mlflow.db in its folder); for a registry that moved. "
                           "The recorded spec is kept, and its runs are tracked where it says")]


@app.command()
def cycle(target: CycleTarget, data: DataOption, reference: ReferenceOption = None, trials: TrialsOption = None,
          model_name: ModelNameOption = None, storage: SpecStorageOption = None, as_json: JsonFlag = False,
          json_out: JsonOut = None, tracking_uri: CycleTrackingUriOption = None,
          force_retune: Annotated[bool, typer.Option(
              "--force-retune", help="re-tune on drift even rows a promotion gate already rejected a re-tune of "
                                     "(skipped otherwise: the same rows give the same model)")] = False) -> None:
    """One cron-friendly cycle: drift check -> re-tune when triggered -> promote -> report (steps recorded as
    events). Exit 0: done (see outcome; `held`: a rollback holds the model, nothing re-tuned); 3: a promotion gate
    rejected the re-tune (or one of the same rows before: not re-tuned again); 1: a step failed; 2: bad input;
    75: the store's or MLflow's server did not answer, or another cycle holds the lineage (retry later); 130:
    interrupted (Ctrl-C, SIGTERM, SIGHUP: the run is recorded as interrupted; `tunesmith resume` continues it), or a
    stop signal was noted and the cycle ended with 0 (1, 2, 3 and 75 come first); --json's exit_code is the process's,
    and stopped_by names the signal. A second signal stops at once: outcome interrupted, no steps."""
    from tunesmith.cycle import CycleOutcome, CycleReport, cycle_command
    from tunesmith.lineage_guard import LineageBusy
    from tunesmith.stop_signals import stop_signals_deferred
    from tunesmith.terminal_text import escape

    try:  # a stop signal outside a tuning run is noted: the cycle ends, each step whole, then exit 130 (not 143)
        _check_json_out(json_out)
        with stop_signals_deferred() as stop:
            try:
                report = cycle_command(storage, target, data, _closed_with_command, reference=reference,
                                       trials=trials, model_name=model_name, on_runner=_deferred_stop_reaches(stop),
                                       tracking_uri=tracking_uri, force_retune=force_retune)
            except KeyboardInterrupt:  # asked twice: stop now, and say so (as watch does), the report too
                err.print(_watch_stopped(stop, True, "cycle"), soft_wrap=True)
                if as_json or json_out:
                    _emit_json(_cycle_json(CycleReport.refused(target, CycleOutcome.INTERRUPTED), stop.signal),
                               as_json, json_out)
                raise typer.Exit(EXIT_INTERRUPTED) from None
    except (UserInputError, StoreUnavailable, RegistryUnavailable, LineageBusy) as e:  # a CI step parsing stdout
        if as_json or json_out:  # or uploading the file `if: always()` gets the refusal too
            # a TemporaryFailure comes from the cycle, inside stop_signals_deferred: `stop` is set
            refused = _refused_json(target, e, None if isinstance(e, UserInputError) else stop.signal)
            try:
                _emit_json(refused, as_json, json_out)
            except UserInputError:
                _emit_json(refused, as_json, None)  # --json-out's own path is what failed
        raise
    for warning in (w for s in report.steps for w in s.detail.get("warnings", ())):  # the promote step's refit's
        err.print(f"[yellow]warning[/]: while refitting for promotion: {escape(warning)}", soft_wrap=True)
    for step in (s for s in report.steps if "error" in s.detail):  # a step that raised once work had started
        err.print(f"[red]error[/]: cycle step {step.name}: {escape(str(step.detail['error']))}", soft_wrap=True)
    signal_name = stop.signal
    as_dict = _cycle_json(report, signal_name)
    _emit_json(as_dict, as_json, json_out)
    if not as_json:
        _print_cycle(report)
    if signal_name is not None:
        err.print(f"cycle: stopped by {signal_name} once the cycle had ended, each step whole, recorded and reported "
                  "(a tuning run it reached stopped at once, recorded as interrupted: the next cycle resumes it)",
                  soft_wrap=True)
    raise typer.Exit(as_dict["exit_code"])  # the process's, as the JSON says


@contextmanager
def _library_warnings_said(doing: str) -> Iterator[None]:
    """A library's warnings raised while the command fits a model itself (scikit-learn's FutureWarning on a
    deprecated parameter): one line each on stderr, as a run's warnings are, not Python's raw file:line print."""
    from tunesmith.tasks.library_warnings import captured
    from tunesmith.terminal_text import escape

    said: list[str] = []
    try:
        with captured() as said:  # filled as it closes, also when the command fails
            yield
    finally:
        for warning in said:
            err.print(f"[yellow]warning[/]: while {doing}: {escape(warning)}", soft_wrap=True)


def _refused_json(target: str, error: UserInputError | TemporaryFailure, stopped_by: str | None) -> dict[str, Any]:
    """The ``--json`` report of a cycle that did not run: bad input (exit 2), or a store whose server did not answer
    or another cycle holding the lineage (exit 75, retry later; with ``stopped_by``, a signal noted meanwhile, as a
    later watch cycle's report has)."""
    from tunesmith.cycle import CycleOutcome, CycleReport

    if isinstance(error, TemporaryFailure):
        outcome = (CycleOutcome.UNAVAILABLE if isinstance(error, StoreUnavailable | RegistryUnavailable)
                   else CycleOutcome.BUSY)
        return _cycle_json(CycleReport.refused(target, outcome, str(error)), stopped_by)
    return CycleReport.refused(target, CycleOutcome.BAD_INPUT, str(error)).to_json()  # no stopped_by, as documented


def _cycle_json(report, stopped_by: str | None) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A cycle's ``--json`` report, after which a stop signal may have been noted (``stopped_by``). Its ``exit_code``
    (130 for a noted signal, unless 1, 2, 3 or 75 came first) is what `cycle` and `watch` exit with, read from it so
    the JSON and the process cannot disagree."""
    from tunesmith.cycle import stopped_exit

    return {**report.to_json(), "exit_code": stopped_exit(report.exit_code, stopped_by), "stopped_by": stopped_by}


def _print_cycle(report) -> None:  # type: ignore[no-untyped-def]
    from tunesmith.terminal_text import escape

    for s in report.steps:
        out.print(f"{s.name:8} {s.status.value:8} {escape(s.why)}")
    out.print(f"outcome: {report.outcome.value}" + (f"; champion: {report.champion}" if report.champion else ""))


MAX_WATCH_EVERY = 365 * 86400.0  # --every's largest: a year


@app.command()
def watch(target: CycleTarget, data: DataOption,
          every: Annotated[str, typer.Option("--every", help="time between cycles: 1d, 6h, 30m, "
                                                        "1h30m; at most 365d")] = "1d",
          cycles: Annotated[int | None, typer.Option("--cycles", min=1, help="stop after this many cycles")] = None,
          reference: ReferenceOption = None, trials: TrialsOption = None, model_name: ModelNameOption = None,
          storage: SpecStorageOption = None, as_json: JsonFlag = False,
          tracking_uri: CycleTrackingUriOption = None) -> None:
    """Run `cycle` every --every (until Ctrl-C or --cycles), one report per cycle (one JSON line with --json, each
    with its exit_code). A cycle the store's server did not answer for is reported (outcome unavailable) and the next
    one tries again; at the first cycle watch stops with exit 75, as `cycle` does (an address never seen to answer may
    be a typo). Exit: 2, 1 or 3 where any cycle ended so (bad input, a failed step, a gate's rejection: in that
    order), else the last cycle's (0, 75 retry later, 130 stopped by a signal)."""
    import time

    from tunesmith.cycle import CycleOutcome, stopped_exit, watch_command, watch_exit
    from tunesmith.stop_signals import stop_signals_deferred
    from tunesmith.terminal_text import escape

    # a stop signal during a cycle step (drift, promote, report) is noted and watch stops once the cycle has ended,
    # the step under way whole (a promotion is not cut between registering, moving aliases and its audit event); a
    # tuning run keeps its own handlers, and one that starts after the signal stops at once, resumable
    noted = {"in_cycle": False}  # a signal noted during the cycle just reported (not while it was being reported)
    exit_code = {"last": EXIT_OK}  # the last cycle's, a noted signal's 130 included (stopped_exit), as its JSON says
    earlier: list[int] = []        # the codes of the cycles before it, as their JSON lines said them: an earlier
    # failure or rejection is watch's exit code too (watch_exit; the last cycle's alone hid them)
    reported = {"any": False}
    with stop_signals_deferred() as stop:
        def show_cycle(report, last: bool) -> None:  # type: ignore[no-untyped-def]
            noted["in_cycle"] = stop.signal is not None
            as_dict = _cycle_json(report, stop.signal)
            if reported["any"]:
                earlier.append(exit_code["last"])
            reported["any"] = True
            exit_code["last"] = as_dict["exit_code"]
            if report.outcome in (CycleOutcome.UNAVAILABLE, CycleOutcome.BUSY):
                # another cycle follows unless this was the last one (--cycles) or a noted signal stops watch now
                follows = not last and stop.signal is None
                goes_on = f"; watch goes on: the next cycle tries again (--every {escape(every)})" if follows else ""
                err.print(f"[red]error[/]: {escape(report.error or '')}{goes_on}", soft_wrap=True)
            if as_json:
                print(strict_json(as_dict, default=str), flush=True)
            else:
                _print_cycle(report)
            stop.at_once = True  # reported: a signal from here on stops watch between cycles, at once

        def wait(seconds: float) -> None:
            if stop.signal is not None:  # noted during the cycle just reported
                raise KeyboardInterrupt
            time.sleep(seconds)
            stop.at_once = False

        try:
            reports = watch_command(storage, target, data, _watch_period(every), _closed_with_command, cycles=cycles,
                                    on_cycle=show_cycle, reference=reference, trials=trials, model_name=model_name,
                                    on_runner=_deferred_stop_reaches(stop), sleep=wait, tracking_uri=tracking_uri)
        except (UserInputError, StoreUnavailable, RegistryUnavailable) as e:  # --every, or refused before a cycle
            # ran (a later day's file too), or no server (the store's, MLflow's) answered at the first cycle: one line
            # a reader of --json can parse, as `cycle --json`
            if as_json:
                print(strict_json(_refused_json(target, e, stop.signal), default=str), flush=True)
            raise
        except KeyboardInterrupt:
            err.print(_watch_stopped(stop, noted["in_cycle"]), soft_wrap=True)
            # after a cycle that ended with a signal noted: its code, a failure or rejection ahead of 130
            last = exit_code["last"] if stop.at_once and noted["in_cycle"] else EXIT_INTERRUPTED
            raise typer.Exit(watch_exit([*earlier, exit_code["last"], last]) if reported["any"] else last) from None
    if stop.signal is not None:  # noted during the last cycle (--cycles, or interrupted), which ran to its end
        stop.at_once = True
        err.print(_watch_stopped(stop, noted["in_cycle"]), soft_wrap=True)
        raise typer.Exit(watch_exit([*earlier, stopped_exit(exit_code["last"], stop.signal)]))
    raise typer.Exit(watch_exit([*earlier, exit_code["last"]]) if reports else EXIT_OK)


def _watch_period(every: str) -> float:
    """--every in seconds, by the spec's rule (budget.wall_time, grace_period: compound durations, 1h30m, included).

    Raises:
        UserInputError: at --every, unparsable or over 365d (the sleep overflowed the platform's time_t after a
            first cycle had run).
    """
    from tunesmith.spec.units import parse_duration

    try:
        period = parse_duration(every)
    except ValueError as e:
        raise UserInputError(f"--every: {e}") from None
    if period > MAX_WATCH_EVERY:
        raise UserInputError(f"--every: at most 365d between cycles; got {every!r} (for longer, run `tunesmith "
                             "cycle` from a scheduler)")
    return period


def _deferred_stop_reaches(stop) -> Callable[[Any], None]:  # type: ignore[no-untyped-def]
    """A tuning run's ``on_runner``: its own stop handlers, and a stop already noted (:func:`stop_signals_deferred`)
    stops it before its first trial (recorded as interrupted: `tunesmith resume` continues it). A signal the run's
    handlers take is noted too, so one in the run's tail (its holdout refit, after its loop ended) still stops the
    command once the cycle has ended."""
    from tunesmith.stop_signals import install_signal_handlers

    def on_runner(runner) -> None:  # type: ignore[no-untyped-def]
        install_signal_handlers(runner, noted=stop)
        if stop.signal is not None:
            runner.request_stop(f"interrupted by {stop.signal}")

    return on_runner


def _watch_stopped(stop, in_cycle: bool, command: str = "watch") -> str:  # type: ignore[no-untyped-def]
    """What watch (or ``command``, asked twice) says as a stop signal ends it: where it stopped, and so what may be
    unfinished. ``in_cycle``: the signal was noted during the cycle last reported (one noted while it was being
    reported came after it)."""
    if stop.at_once and not in_cycle:
        return "watch: stopped between cycles; nothing is lost: every cycle that ended is recorded and reported"
    if stop.at_once:  # noted during the cycle, acted on once it had been reported
        return (f"watch: stopped by {stop.signal} during a cycle, once it had ended: its steps ran whole and are "
                "recorded and reported (a tuning run it stopped is recorded as interrupted; the next cycle resumes it)")
    return (f"{command}: stopped at once during a cycle (stop asked twice): its steps so far are recorded; the step "
            "under way may not have finished (a promotion: check the model's aliases; the next cycle checks again)")


def main(args: list[str] | None = None) -> None:
    """Entry point: one clear message and exit code 2 for input errors, 75 for passing failures (a store's server
    that does not answer); never a traceback for them. A stdout that takes no output (`> /dev/full`) is one message
    and exit 1, once the command has done its work (a run records every trial); a command that failed keeps its own
    exit code. A reader that leaves changes no exit code
    (:class:`_Console`). ``args``: the command line after `tunesmith` (default: ``sys.argv[1:]``), for a caller in
    this process, which gets sys.stdout, descriptors 1 and 2 and the consoles' voices back as they were."""
    from tunesmith.terminal_text import escape

    original, original_err = sys.stdout, sys.stderr
    if original is None:  # fd 1 closed (`tunesmith ls >&-` from cron): print and Rich drop the output themselves
        _exit_with_command(args)
    guard = _GuardedStream(original)
    sys.stdout = guard
    if original_err is not None:  # (none: fd 2 closed, `2>&-`; print and Rich drop what is said there)
        sys.stderr = _GuardedStream(original_err)
    try:
        with _given_back(original, out), _given_back(original_err, err):
            try:
                try:
                    _exit_with_command(args)
                finally:
                    guard.flush()  # what is still buffered fails here, where it can be told, not in Python's exit
            except SystemExit as e:
                if guard.lost is None:
                    raise
                err.print(f"[red]error[/]: cannot write the output to stdout: {escape(guard.lost)}", soft_wrap=True)
                sys.exit(e.code if e.code not in (None, EXIT_OK) else EXIT_FAILED)
    finally:
        # an in-process caller gets its streams back, not a guard per call stacked on them
        sys.stdout, sys.stderr = original, original_err


# errors a command ends with as one line and an exit code (:func:`_error_said`), never a traceback
SAID_ERRORS = (UserInputError, TemporaryFailure, StorageError)


def _error_said(error: UserInputError | TemporaryFailure | StorageError, about: str | None = None) -> tuple[int, str]:
    """The exit code and the one line (Rich markup) that ``error`` ends a command with; ``about``: what the error is
    about, named first (one spec of several that `validate` checks)."""
    from tunesmith.terminal_text import escape

    # escaped: messages quote user text (a name 'exp[/]'), which rich would otherwise read as markup
    said = (f"{escape(about)}: " if about is not None else "") + escape(str(error))
    if isinstance(error, UserInputError):  # first: a wrong store address is a StorageError too, and the user's
        return EXIT_INPUT, f"[red]error[/]: {said}"
    if isinstance(error, TemporaryFailure):  # before StorageError: a store whose server does not answer is one
        return EXIT_TEMPFAIL, f"[red]error[/]: {said}"
    return EXIT_FAILED, f"[red]storage error[/]: {said}"


def _exit_with_command(args: list[str] | None) -> NoReturn:
    _log_as_json(LogFormat.HUMAN, None)  # (main may be called again in this process)
    try:
        code = app(args, standalone_mode=False)  # click returns (not raises) the code of typer.Exit here
        sys.exit(code if isinstance(code, int) else EXIT_OK)
    except SAID_ERRORS as e:
        code, line = _error_said(e)
        if _json_log is not None:
            _say_json("run_exit", exit_code=code, message=str(e))
        else:
            err.print(line, soft_wrap=True)
        sys.exit(code)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        sys.exit(EXIT_INTERRUPTED)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except Exception as e:
        click_errors = _click_module("exceptions")
        if isinstance(e, click_errors.ClickException):  # unknown command or option, missing argument
            if isinstance(e, click_errors.NoSuchOption):
                _hint_option(e)
            try:
                e.show()  # click's own echo, not a _Console: a reader of stderr that left raises here
            except OSError:
                _to_null(sys.stderr)  # the exit code still says what went wrong: bad input
            sys.exit(EXIT_INPUT)
        raise


def _click_module(name: str) -> Any:
    """Click's module ``name`` (``exceptions``, ``globals``): vendored as typer._click by recent typer releases, the
    click package before. The one typer runs on: the click package, installed beside a typer that vendors its own,
    knows none of its contexts and raises none of its exceptions."""
    import importlib

    try:
        return importlib.import_module(f"typer._click.{name}")
    except ImportError:
        return importlib.import_module(f"click.{name}")


def _hint_option(error: Any) -> None:
    """Word an unknown option's did-you-mean by the one rule (:func:`suggestions.closest`), for every command at
    once: Click's own hint is difflib's, which tells case apart (``--JSON`` got none). The option meant is one of the
    command's, else a choice of one of its options written as an option (``run --json``: ``--log-format json``)."""
    from tunesmith.suggestions import closest

    command = error.ctx.command if error.ctx is not None else None
    if command is None:
        return
    if re.fullmatch(r"-\d+(\.\d*)?", error.option_name):  # `quota set KEY -1`: a value, read as an option
        error.message = (f"{error.message}: a negative number is read as an option; no argument of "
                         f"`{error.ctx.command_path}` takes one (see --help)")
        error.possibilities = None
        return
    options = [p for p in command.get_params(error.ctx) if p.param_type_name == "option" and not p.hidden]
    hint = closest(error.option_name, [name for p in options for name in (*p.opts, *p.secondary_opts)])
    if hint is None:
        word = error.option_name.lstrip("-").lower()
        hint = next((f"{p.opts[0]} {choice}" for p in options for choice in _choices(p) if choice.lower() == word),
                    None)
    error.possibilities = None  # Click's, which would follow ours
    if hint is not None:
        error.message = f"{error.message}; did you mean {hint!r}?"


def _choices(option: Any) -> list[str]:
    """The values an option takes from a closed set: a click Choice's (typer before 0.2x), else the values of the
    enum it is annotated with (typer's own parameters since); none for an open one."""
    choices = getattr(getattr(option, "type", None), "choices", None)
    if choices is None:
        annotation = getattr(getattr(option, "type_descriptor", None), "annotation", None)
        choices = list(annotation) if isinstance(annotation, type) and issubclass(annotation, enum.Enum) else []
    return [str(getattr(c, "value", c)) for c in choices]


if __name__ == "__main__":
    main()
