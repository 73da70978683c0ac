"""The inline executor's keep-alive: the thread that renews the lease and beats while an inline trial holds the loop."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from tunesmith.errors import StorageError
from tunesmith.evaluation.job import TrialJob
from tunesmith.executor.base import AttemptEnded
from tunesmith.executor.inline import InlineExecutor


def _job(project, number: int = 0) -> TrialJob:
    workdir = project.root / f"trial-{number}"
    workdir.mkdir()
    return TrialJob("exp", number, 1, {"x": 0.5}, 7, str(workdir), str(workdir / "trial.log"), ("loss",),
                    function="objectives:slow", base_dir=str(project.root))


def _run_one(executor: InlineExecutor, job: TrialJob) -> list:
    executor.submit(job)
    return executor.poll(0)


def test_a_keep_alive_that_raises_is_told_once_after_the_trial_not_into_its_log(project, monkeypatch):
    """Any error but StorageError killed the keep-alive thread, its traceback going into the trial's log (stderr is
    redirected there), and nobody was told; the trial then went unbeaten."""
    monkeypatch.setenv("SLOW_SECONDS", "0.6")
    calls: list[int] = []

    def keep_alive() -> None:
        calls.append(1)
        if len(calls) % 2:
            raise RuntimeError("lease table locked by a bug")

    warnings: list[str] = []
    written_to: list[str] = []

    def warn(line: str) -> None:
        warnings.append(line)
        written_to.append(getattr(sys.stderr, "name", ""))  # a display writes there: not the trial's log

    executor = InlineExecutor(keep_alive=keep_alive, keep_alive_every=0.05, warn=warn)
    job = _job(project)
    events = _run_one(executor, job)
    assert [type(e) for e in events] == [AttemptEnded] and events[0].outcome.failure is None
    assert len(calls) >= 4, "the thread went on beating after a failure"
    assert len(warnings) == 1 and "RuntimeError: lease table locked by a bug" in warnings[0], warnings
    assert "trial 0" in warnings[0]
    assert "Traceback" not in Path(job.log_path).read_text()
    assert job.log_path not in written_to, "told while the trial's output still went to its log"


def test_a_store_failing_while_an_inline_trial_ran_still_hands_its_result_over(project, monkeypatch):
    """The thread swallowed StorageError forever, and then (a fix) raised it from poll after three missed beats,
    before the finished trial's AttemptEnded was queued: a 10 h trial was lost to a 2-minute store outage, saved
    interrupted or left running, and re-run by resume. The result is handed over and the failures told; the loop's
    own keep-alive and the save of that result raise StorageError if the store is still down, and stop the run."""
    monkeypatch.setenv("SLOW_SECONDS", "0.6")

    calls: list[int] = []

    def keep_alive() -> None:
        calls.append(1)
        raise StorageError("database is unreachable")

    warnings: list[str] = []
    executor = InlineExecutor(keep_alive=keep_alive, keep_alive_every=0.05, warn=warnings.append)
    events = _run_one(executor, _job(project))
    assert [type(e) for e in events] == [AttemptEnded] and events[0].outcome.failure is None
    assert len(calls) >= 3, "the store failed for several beats in a row"
    assert len(warnings) == 1 and f"trial 0: {len(calls)} keep-alive beat(s) failed" in warnings[0], warnings
    assert "StorageError: database is unreachable" in warnings[0]
    beaten = len(calls)
    time.sleep(0.2)  # four periods: the thread ended with the trial
    assert len(calls) == beaten, "beats went on after the trial"


def test_a_keyboard_interrupt_an_inline_trial_raises_fails_that_trial_and_the_run_goes_on(project):
    """An inline trial raising KeyboardInterrupt itself (no Ctrl-C) stopped the whole run as "interrupted by the
    user"; it is that trial's exception, as any other, and the next trials run."""
    project.write("gives_up.py", """
        def objective(config, trial):
            if trial.number == 0:
                raise KeyboardInterrupt("enough")
            return config["x"]
    """)
    spec = project.write_spec(project.spec(name="gives-up", trial={"function": "gives_up:objective"},
                                           budget={"trials": 3}, executor={"kind": "inline", "retries": 0}))
    proc = project.cli("run", str(spec), "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    trials = project.trials("gives-up")
    assert [t["state"] for t in trials] == ["failed", "completed", "completed"]
    assert (trials[0]["failure_kind"], trials[0]["error"]) == (
        "exception", "exception: KeyboardInterrupt: enough (at gives_up.py:4 in objective), raised by the trial "
                     "itself, not by a signal")
    assert "KeyboardInterrupt: enough" in Path(trials[0]["log_path"]).read_text()


def test_a_base_exception_an_inline_trial_raises_fails_that_trial_and_the_run_goes_on(project):
    """A BaseException that is not an Exception (nor KeyboardInterrupt, SystemExit) raised by an inline trial killed
    the coordinator with a traceback (exit 1), the experiment failed, and the trial read "interrupted by the user"."""
    project.write("too_big.py", """
        import asyncio

        class Big(BaseException):
            pass

        class Unreadable(BaseException):
            def __str__(self):
                raise RuntimeError("no str for you")

        def objective(config, trial):
            if trial.number == 0:
                raise Big("too big")
            if trial.number == 1:
                raise asyncio.CancelledError()
            if trial.number == 2:
                raise Unreadable()
            return config["x"]
    """)
    spec = project.write_spec(project.spec(name="too-big", trial={"function": "too_big:objective"},
                                           budget={"trials": 4}, executor={"kind": "inline", "retries": 0}))
    proc = project.cli("run", str(spec), "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    trials = sorted(project.trials("too-big"), key=lambda t: t["number"])
    assert [t["state"] for t in trials] == ["failed", "failed", "failed", "completed"]
    assert [t["error"] for t in trials[:3]] == [
        "exception: Big: too big (at too_big.py:13 in objective)",
        "exception: CancelledError (at too_big.py:15 in objective)",
        "exception: Unreadable (its message could not be read: RuntimeError: no str for you) "
        "(at too_big.py:17 in objective)"]
    assert "Big: too big" in Path(trials[0]["log_path"]).read_text()
    assert 'too_big.py", line 17, in objective' in Path(trials[2]["log_path"]).read_text()


def test_a_report_step_too_big_to_store_fails_that_trial_not_the_run(project):
    """`trial.report(2**63, v)` reached SQLite: OverflowError, and the whole experiment failed. It is a bad step, a
    TrialError in the trial that made it; a whole float step (1.0) is that step, as in a command's report line."""
    project.write("big_step.py", """
        def objective(config, trial):
            trial.report(1.0, 0.5)
            if trial.number == 0:
                trial.report(2 ** 63, 0.4)
            return config["x"]
    """)
    spec = project.write_spec(project.spec(name="big-step", trial={"function": "big_step:objective"},
                                           budget={"trials": 2}, executor={"kind": "inline", "retries": 0}))
    proc = project.cli("run", str(spec), "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    trials = sorted(project.trials("big-step"), key=lambda t: t["number"])
    assert [t["state"] for t in trials] == ["failed", "completed"]
    assert trials[0]["error"] == ("exception: trial.report: step must be a whole number from 0 to 9223372036854775807 "
                                  "(an int, or a whole float such as 1.0); got 9223372036854775808")
    assert trials[1]["intermediate"] == [[1, 0.5]]
