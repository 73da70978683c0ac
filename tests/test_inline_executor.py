"""The inline executor: trials in the coordinator's own process, its loop held while one runs."""

from __future__ import annotations

import sys
from pathlib import Path

from tunesmith.errors import StorageError


def test_beats_failing_while_an_inline_trial_runs_are_told_once_after_it_not_into_its_log(project, monkeypatch):
    """The inline executor had a keep-alive thread of its own (the coordinator's heartbeat thread does that job now,
    whatever holds up the loop): an error killed it, its traceback going into the trial's log; StorageError was
    swallowed forever, then raised after three missed beats before the finished trial was handed over (a 10 h
    trial lost to a 2-minute outage). Beats failing while inline trials run are told once, from the loop, after the
    trial (not into its log); the trials' results are saved."""
    import tunesmith.runner as runner_module
    from tunesmith.coordinators import Heartbeat
    from tunesmith.events import RunListener
    from tunesmith.runner import run_experiment
    from tunesmith.spec import spec_from_dict
    from tunesmith.storage import SQLStore

    monkeypatch.setenv("SLOW_SECONDS", "0.6")
    monkeypatch.setattr(runner_module, "Heartbeat", lambda beat: Heartbeat(beat, 0.05))
    store = SQLStore(project.storage)
    beats: list[int] = []

    def unreachable(*_args: object) -> None:
        beats.append(1)
        raise StorageError("database is unreachable")

    monkeypatch.setattr(store, "heartbeat", unreachable)
    warnings: list[tuple[str, str]] = []

    class Warnings(RunListener):
        def warning(self, message: str) -> None:  # a display writes to stderr: not to a trial's log
            warnings.append((message, getattr(sys.stderr, "name", "")))

    spec = spec_from_dict(project.spec(name="beats", trial={"function": "objectives:slow"}, budget={"trials": 2},
                                       executor={"kind": "inline"}, base_dir=str(project.root)))
    try:
        result = run_experiment(spec, store, Warnings())
    finally:
        store.close()
    assert [t.state.value for t in result.trials] == ["completed", "completed"], "a result was not handed over"
    assert len(beats) >= 4, "the heartbeat stopped beating after a failure"
    told = [(m, where) for m, where in warnings if "heartbeat" in m]
    assert len(told) == 1, warnings
    assert "failed in a row" in told[0][0] and "StorageError: database is unreachable" in told[0][0], told
    logs = [t.log_path for t in result.trials]
    assert told[0][1] not in logs, "told while a trial's output still went to its log"
    assert all("Traceback" not in Path(str(log)).read_text() for log in logs)


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


def test_inline_says_grace_period_is_not_enforced_and_a_second_ctrl_c_stops_the_trial(project):
    """`executor: {kind: inline, grace_period: 2s}` with a 20 s trial and Ctrl-C at 3 s exited 130 only when the trial
    finished, though `validate` and `run` warned of an inline trial_timeout and said nothing of grace_period. Both
    warn now, naming the way out that works: a second Ctrl-C stops the trial at once."""
    import signal
    import time

    from helpers import start_cli, stop_processes, wait_for

    project.write("long.py", """
        import time
        def objective(config, trial):
            time.sleep(20)
            return config["x"]
    """)
    spec = project.write_spec(project.spec(name="inline-grace", trial={"function": "long:objective"},
                                           budget={"trials": 1}, executor={"kind": "inline", "grace_period": "2s"}))
    warning = "grace_period cannot be enforced"
    checked = project.cli("validate", str(spec))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert warning in " ".join(checked.stderr.split()), checked.stderr
    proc = start_cli(project, "run", str(spec), "--quiet")
    try:
        wait_for(lambda: project.cli("show", "inline-grace", "--json").returncode == 0
                 and project.show("inline-grace")["trials"].get("running"))
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        started = time.monotonic()
        _, stderr = proc.communicate(timeout=15)
    finally:
        stop_processes(proc)
    said = " ".join(stderr.split())
    assert proc.returncode == 130 and time.monotonic() - started < 10, said
    assert warning in said and "a second Ctrl-C stops it at once" in said, said
    assert "Traceback" not in said


def test_a_failure_in_a_notebook_cell_says_so_not_the_kernels_temporary_file(tmp_path, monkeypatch):
    """ipykernel compiles each cell under a hashed temporary file name (/tmp/ipykernel_<pid>/431441316.py), which
    nothing in the notebook shows and which changes at each edit: a failure read `(at 431441316.py:3 in boom)`."""
    import tunesmith

    monkeypatch.chdir(tmp_path)
    cell = "import math\ndef boom(config, trial):\n    return 1 / 0\n"
    namespace = {"__name__": "__main__"}  # a cell's functions are the kernel's __main__'s
    exec(compile(cell, str(tmp_path / "ipykernel_4242" / "431441316.py"), "exec"), namespace)
    result = tunesmith.run({"name": "cell", "objective": {"metric": "loss", "direction": "minimize"},
                            "space": {"x": {"type": "float", "low": 0, "high": 1}}, "trial": namespace["boom"],
                            "budget": {"trials": 1}})
    assert [t.error for t in result.trials] == [
        "exception: ZeroDivisionError: division by zero (at line 3 of a notebook cell, in boom)"]
