"""Run one attempt of a trial job, in whatever process the executor chose, and say what happened."""

from __future__ import annotations

import functools
import os
import re
import sys
import sysconfig
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TextIO

from tunesmith.cost import measured_objectives
from tunesmith.environ_scope import variables_set
from tunesmith.errors import SpecError, TrialError
from tunesmith.evaluation.attempt_log import attempt_header
from tunesmith.evaluation.command import command_env, run_command
from tunesmith.evaluation.context import TrialContext, prune_signals, step_first_hint
from tunesmith.evaluation.job import TrialJob
from tunesmith.evaluation.loading import resolve_function
from tunesmith.evaluation.output_tail import OUTPUT_LABEL, read_tail, with_tail
from tunesmith.evaluation.results import normalize_result, unkept_extras, unkept_note
from tunesmith.evaluation.signal_watch import SignalsSeen, signals_watched
from tunesmith.import_path import folder_importable
from tunesmith.records import Failure, FailureKind, Outcome, RaisedAt, Report
from tunesmith.redaction import redact, secrets_of
from tunesmith.report_order import ReportOrder
from tunesmith.stop_reasons import stopped_by

TRACEBACK_LINES = 12
DEVICES_VARIABLE = "CUDA_VISIBLE_DEVICES"   # a function trial's devices: executor.gpus, not trial.env


def run_attempt(job: TrialJob, log: TextIO, on_report: Callable[[Report], None],
                prune_requested: Callable[[], bool], function: Callable[..., Any] | None = None,
                decided_step: Callable[[], int | None] | None = None) -> Outcome:
    """Run ``job`` once. Never raises for anything the trial did: failures come back in the Outcome.

    Args:
        job: the attempt to run.
        log: the trial's log, open for writing; the executor has pointed stdout/stderr at it.
        on_report: called with each intermediate report, as it happens.
        prune_requested: polled by the trial (``trial.should_prune()``).
        function: the trial function itself, where the job's reference cannot be imported (an interactive one,
            run inline); else it is found by ``job.function``.
        decided_step: the step of the report the scheduler's stop was decided on (of this attempt or an earlier
            one), which the log's stopped line names; None where the executor does not carry it (the attempt's
            last report is named then).
    """
    started = time.perf_counter()
    reports: list[Report] = []
    notes: list[str] = []  # for the run's warnings: the log has them already
    log_lock = threading.Lock()  # a command's stdout and stderr lines (two threads) share the log with the notes

    def say(note: str) -> None:
        with log_lock:
            log.write(f"tunesmith: {note}\n")
            log.flush()
        notes.append(note)

    # each kind of ignored report said once: a loop breaking a rule at every step would drown the log and warnings
    say_out_of_order, say_bad_line = _first_only(say), _first_only(say)
    order = ReportOrder()

    def report(r: Report) -> None:
        if not order.accept(r):
            say_out_of_order(order.note(r))
            return
        reports.append(r)
        on_report(r)

    raw: Any = None
    failure: Failure | None = None
    pruned = False
    traceback_text = ""  # written to the log after the output's tail is read for the reason
    if header := attempt_header(job.attempt):  # a retry's output follows the earlier attempts': where it starts
        log.write(header)
        log.flush()
    log_start = _log_size(log)
    secrets = secrets_of(job.env, os.environ)
    if job.command is not None:
        env = command_env(dict(os.environ), job.env, job.params, job.number, job.seed, job.workdir, job.attempt)
        raw, failure, pruned = run_command(job.command, job.command_cwd or job.base_dir or job.workdir, env, log,
                                           job.metrics, report, prune_requested,
                                           secrets=secrets, on_ignored=say_bad_line,
                                           log_lock=log_lock, on_note=say)
    else:
        signals = SignalsSeen()
        # the one KeyboardInterrupt that may be the trial's own: raised out of its function, inside the watch. One
        # raised anywhere else (a Ctrl-C in prune_requested, or as the handlers are put back) is a signal's
        from_the_function: BaseException | None = None
        try:
            # the spec's folder importable all through: a function may import what lies beside it when called
            with signals_watched() as signals, folder_importable(job.base_dir):
                fn = (_task_function(job) if job.task is not None else function
                      or resolve_function(job.function or "", job.base_dir))
                trial = TrialContext(job.number, job.seed, dict(job.params), job.workdir, job.attempt, report,
                                     prune_requested)
                # trial.env as a command has it (a re-tune's $TUNESMITH_DATA), but the devices: its worker's, for life
                with variables_set({k: v for k, v in job.env.items() if k != DEVICES_VARIABLE}):
                    try:
                        raw = fn(dict(job.params), trial)
                    except KeyboardInterrupt as e:
                        from_the_function = e
                        raise
                    finally:  # (a stop signal's run stops: what its checkpoint carries waits for the resume)
                        trial._end_attempt(restate=from_the_function is None)
            pruned = prune_requested()
        except KeyboardInterrupt as e:
            if e is not from_the_function or signals.interrupt_is_theirs():
                raise  # Ctrl-C, a stop signal: the run stops (inline), the worker ends as the signal's
            failure = _exception_failure(e, then=", raised by the trial itself, not by a signal")
            traceback_text = _traceback()
        except prune_signals():  # (evaluated only when something was raised: optuna's is known once imported)
            pruned = True
        except SpecError as e:
            failure = Failure(FailureKind.EXCEPTION, str(e))
        except MemoryError:
            failure, traceback_text = Failure(FailureKind.MEMORY, "MemoryError raised in the trial"), _traceback()
        except TrialError as e:
            failure = Failure(FailureKind.EXCEPTION, str(e))
        except BaseException as e:  # noqa: BLE001 - sys.exit() (argparse, say), asyncio.CancelledError, a custom
            # BaseException: all the trial's own, deterministic, and none may end the worker or the inline run. The
            # stop signals arrive as KeyboardInterrupt, handled above, unless the trial's code turned one into
            # another exception (an event loop cancelling its tasks): a stop signal that arrived wins
            if signals.arrived:
                raise KeyboardInterrupt from e
            failure, traceback_text = _exception_failure(e, then=step_first_hint(e)), _traceback()
    duration = time.perf_counter() - started
    normalized = None
    if failure is None and not pruned:
        normalized = normalize_result(raw, job.metrics, measured_objectives(job))
        if isinstance(normalized, Failure):
            failure = normalized
        elif unkept := unkept_extras(raw, job.metrics):
            say(unkept_note(unkept))
    if failure is not None and job.command is None:
        failure = with_tail(failure, OUTPUT_LABEL, _output_since(log, job.log_path, log_start), secrets)
    if failure is not None:
        # the whole reason, here where the trial's secrets are known, and not its output's tail only: an exception's
        # message quotes a credential as readily (a driver's "auth failed for postgresql://bob:pw@db"), and every
        # reader of the reason (run's lines, trials, the report, the store, JSON logs) gets it as it is recorded.
        # The log keeps the traceback as it was
        failure = replace(failure, message=redact(failure.message, secrets))
    if traceback_text:
        log.write(traceback_text)
        log.flush()
    if failure is not None:
        return Outcome(failure=failure, duration_s=duration, notes=tuple(notes))
    if pruned:
        if job.stop_rule is not None and prune_requested():  # (a trial that raised TrialPruned on its own: not said)
            decided = decided_step() if decided_step is not None else None
            _say_stopped(log, job, decided if decided is not None else reports[-1].step if reports else None, reports)
        last = (reports[-1].value,) if reports and len(job.metrics) == 1 else None
        return Outcome(values=last, pruned=True, duration_s=duration, notes=tuple(notes))
    assert normalized is not None and not isinstance(normalized, Failure)
    values, metrics = normalized
    return Outcome(values=values, metrics=metrics, duration_s=duration, notes=tuple(notes))


def _first_only(say: Callable[[str], None]) -> Callable[[str], None]:
    """``say``, for the first note given only."""
    said = False

    def first(note: str) -> None:
        nonlocal said
        if not said:
            said = True
            say(note)

    return first


def _say_stopped(log: TextIO, job: TrialJob, step: int | None, reports: list[Report]) -> None:
    """One line in the trial's log: who stopped it, at which step, and why (the log ended mid-curve, unexplained):
    why as the rule that decided it says, of the report it was decided on."""
    how = "the command got SIGTERM" if job.command is not None else "trial.should_prune() turned true"
    at = f"after its report at step {step}" if step is not None else "before it reported"
    decided_on = next((r for r in reversed(reports) if r.step == step), None)
    log.write(f"tunesmith: stopped early {at} by {stopped_by(job.scheduler, job.stop_rule, decided_on)}; {how}\n")
    log.flush()


def _log_size(log: TextIO) -> int | None:
    """Where this attempt's output starts in the log (earlier attempts of the trial wrote before it)."""
    try:
        return os.fstat(log.fileno()).st_size
    except (OSError, ValueError, AttributeError):  # not a file (a test's StringIO): no tail
        return None


def _output_since(log: TextIO, path: str, start: int | None) -> str:
    """What the function printed in this attempt: its stdout and stderr share the log."""
    if start is None:
        return ""
    for stream in (sys.stdout, sys.stderr, log):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    return read_tail(path, start)


def _task_function(job: TrialJob) -> Callable[..., Any]:
    """A built-in task as a trial function (imports scikit-learn's machinery only when a task runs)."""
    from tunesmith.spec.task_config import TaskConfig
    from tunesmith.tasks import evaluate

    task = TaskConfig.model_validate(job.task)
    return lambda params, trial: evaluate(task, params, trial, job.base_dir)


def _exception_failure(e: BaseException, then: str = "") -> Failure:
    """``ValueError: message (at model.py:42 in fit)``: type, message and where it was raised, ``then`` said after;
    where it was raised also as the failure's ``raised_at``, which fail fast compares (not read back from these
    words: a file's name, a message cut at its length, may hide it there)."""
    try:
        message = str(e).strip()
    except BaseException as unreadable:  # noqa: BLE001 - its __str__ raised: the trial still gets a reason
        try:
            why = f"{type(unreadable).__name__}: {unreadable}"
        except BaseException:  # noqa: BLE001 - that error's __str__ raised too
            why = type(unreadable).__name__
        text = f"{type(e).__name__} (its message could not be read: {why})"
    else:
        text = f"{type(e).__name__}: {message}" if message else type(e).__name__  # `raise KeyboardInterrupt`
    frames = traceback.extract_tb(e.__traceback__)
    raised_at = _raised_at(type(e).__name__, frames) if frames else None
    if raised_at is not None:
        text += f" ({raised_at.place})"
    return Failure(FailureKind.EXCEPTION, (text if len(text) <= 2000 else text[:1997] + "...") + then, raised_at)


def _raised_at(exception: str, frames: traceback.StackSummary) -> RaisedAt:
    """``at model.py:42 in fit``: where it was raised; raised in code not the user's (the standard library, an
    installed package, tunesmith), the user's line that called into it too: ``at subprocess.py:571 in run, called
    from train.py:12 in objective``. Fail fast compares the user's line: a library's place is the same for every
    failure that passes through it (an exit status and a signal, in ``subprocess.run``), whatever the user's code
    did."""
    innermost = frames[-1]
    users = next((f for f in reversed(frames) if _users(f.filename)), None)  # the innermost frame of the user's
    place = f"at {_frame(innermost)}"
    if users is not None and users is not innermost:
        place += f", called from {_frame(users)}"
    return RaisedAt(exception, place, _line(users or innermost))


def _frame(frame: traceback.FrameSummary) -> str:
    if _NOTEBOOK_CELL.search(frame.filename):  # ipykernel's hashed file for a cell: shown nowhere in the notebook
        return f"line {frame.lineno} of a notebook cell, in {frame.name}"
    return f"{_line(frame)} in {frame.name}"


# ipykernel compiles each cell as <tmp>/ipykernel_<pid>/<hash of its code>.py (ipykernel.compiler)
_NOTEBOOK_CELL = re.compile(r"[/\\]ipykernel_\d+[/\\]\d+\.py$")


def _line(frame: traceback.FrameSummary) -> str:
    return f"{os.path.basename(frame.filename)}:{frame.lineno}"


@functools.cache
def _not_users_folders() -> tuple[str, ...]:
    """The standard library's folders and tunesmith's own, resolved, each ending in a separator."""
    paths = sysconfig.get_paths()
    folders = {paths[key] for key in ("stdlib", "platstdlib") if key in paths}
    folders.add(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the tunesmith package
    return tuple(os.path.join(os.path.realpath(folder), "") for folder in folders)


@functools.lru_cache(maxsize=256)
def _users(filename: str) -> bool:
    """Whether a frame's file is the user's code: not the standard library, an installed package (site-packages,
    dist-packages), tunesmith itself, nor code with no file (``<frozen ...>``, a dataclass's ``<string>``)."""
    if filename.startswith("<"):
        return False
    path = os.path.realpath(filename)
    parts = path.split(os.sep)
    return not ("site-packages" in parts or "dist-packages" in parts or path.startswith(_not_users_folders()))


def _traceback() -> str:
    """The last frames of the exception being handled, for the trial log."""
    return "".join(traceback.format_exc().splitlines(keepends=True)[-TRACEBACK_LINES * 2:])
