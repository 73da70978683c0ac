"""A listener that fails (a closed pipe, a terminal gone, a bug) never stops or abandons the run it watches.

Real runs: worker processes, a SQLite store, the CLI as a subprocess in a shell pipeline, real signals.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import count_states, start_cli, wait_for, worker_pids
from tunesmith import api
from tunesmith.events import RunListener
from tunesmith.records import ExperimentRecord, TrialRecord


def failing(hook: str) -> RunListener:
    """A listener whose ``hook`` raises what a write to a closed pipe raises; it counts its calls."""

    def fail(self: RunListener, *_a: object, **_k: object) -> None:
        self.calls += 1  # type: ignore[attr-defined]
        raise BrokenPipeError(32, "Broken pipe")

    return type("Failing", (RunListener,), {"calls": 0, hook: fail})()


class Watching(RunListener):
    """A healthy listener beside it: what it is told."""

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.finished: list[str] = []

    def warning(self, message: str) -> None:
        self.warnings.append(message)

    def run_finished(self, experiment: ExperimentRecord, trials: list[TrialRecord], stop_reason: str) -> None:
        self.finished.append(experiment.status.value)


@pytest.mark.parametrize("hook", ["run_started", "trial_started", "trial_finished", "run_stopping", "run_finished"])
def test_a_listener_that_raises_is_reported_once_and_the_run_completes(project, hook):
    spec = project.spec(f"l-{hook.replace('_', '-')}", budget={"trials": 4})
    failed, watching = failing(hook), Watching()
    from tunesmith.events import Listeners

    result = api.run(spec, storage=project.storage, listener=Listeners(failed, watching))

    assert result.experiment.status.value == "completed"
    assert count_states(project, spec["name"]) == {"completed": 4}
    assert failed.calls == 1  # dropped after its first failure: not called again
    assert watching.warnings == [f"Failing stopped watching this run: its {hook} raised BrokenPipeError: "
                                 "[Errno 32] Broken pipe; the run goes on without it"]
    assert watching.finished == ["completed"]  # the others still hear the end


def test_with_no_listener_left_to_show_it_the_warning_goes_to_stderr(project, capfd):
    spec = project.spec("l-stderr", budget={"trials": 2})
    result = api.run(spec, storage=project.storage, listener=failing("trial_finished"))
    assert result.experiment.status.value == "completed"
    assert capfd.readouterr().err.count("warning: Failing stopped watching this run: its trial_finished raised "
                                        "BrokenPipeError") == 1


def test_a_keyboard_interrupt_in_a_listener_still_stops_the_run(project):
    class CtrlC(RunListener):
        def trial_finished(self, trial: TrialRecord, best: TrialRecord | None) -> None:
            raise KeyboardInterrupt

    spec = project.spec("l-ctrl-c", budget={"trials": 4}, executor={"kind": "inline"})
    api.run(spec, storage=project.storage, listener=CtrlC())
    assert api.open_experiment("l-ctrl-c", storage=project.storage).experiment.status.value == "interrupted"


def _shell(project, command: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TUNESMITH_STORAGE": project.storage, "COLUMNS": "200"}
    tunesmith = f"{sys.executable} -m tunesmith.cli"
    return subprocess.run(["bash", "-c", command.replace("tunesmith", tunesmith)], cwd=project.root, env=env,
                          capture_output=True, text=True, timeout=120)


def test_json_logs_piped_into_head_do_not_stop_the_run(project):
    project.write_spec(project.spec("piped", budget={"trials": 6}))
    # the JSON log is on stderr: `2>&1` puts it in the pipe; head leaves after the first line
    proc = _shell(project, "tunesmith run piped.yaml --log-format json 2>&1 | head -1; echo rc=${PIPESTATUS[0]}")
    assert count_states(project, "piped") == {"completed": 6}
    assert project.show("piped")["status"] == "completed"
    first, status = proc.stdout.splitlines()
    assert json.loads(first)["event"] == "run_started"
    assert status == "rc=0", proc.stderr
    assert "Traceback" not in proc.stderr


HALF_FAIL = '''
import time

def half_fail(config, trial):
    time.sleep(0.3)
    if config["x"] > 0.5:
        raise ValueError("x too large")
    return config["x"]
'''


def test_the_progress_display_piped_into_head_does_not_stop_the_run(project):
    project.write("half.py", HALF_FAIL)
    # seed 3: trial 0 succeeds (so the run never fails fast), later ones fail and the display prints a line each
    project.write_spec(project.spec("shown", budget={"trials": 8}, seed=3, trial={"function": "half:half_fail"}))
    proc = _shell(project, "tunesmith run shown.yaml | head -1; echo rc=${PIPESTATUS[0]}")
    states = count_states(project, "shown")
    assert sum(states.values()) == 8 and set(states) == {"completed", "failed"}, states
    assert project.show("shown")["status"] == "completed"
    first, status = proc.stdout.splitlines()
    assert first.startswith("Running shown")
    assert status == "rc=0"  # a reader that leaves changes no exit code (test_cli_input: every command)
    assert "Traceback" not in proc.stderr
    # its later lines go to the null device: the display watches on, with nothing to report on stderr
    assert "stopped watching" not in proc.stderr, proc.stderr


def test_warnings_during_a_run_reach_stderr_after_stdout_s_reader_left(project):
    """The progress display printed its warnings on stdout: after `| head -1` they went to the null device with the
    rest, and a run's ignored report lines (its results' only clue) were lost without a word."""
    project.write("bad_steps.py", "import json, sys\n"
                  "print(json.dumps({'step': 'bad', 'loss': 1.0}))\n"
                  "print(json.dumps({'loss': float(sys.argv[1])}))\n")
    project.write_spec(project.spec("badsteps", budget={"trials": 2},
                                    trial={"command": "python {spec_dir}/bad_steps.py {x}"}))
    proc = _shell(project, "tunesmith run badsteps.yaml | head -c1; echo rc=${PIPESTATUS[0]}")
    assert proc.stdout.endswith("rc=0\n"), proc.stdout
    assert " ".join(proc.stderr.split()).count("a report line was ignored") == 2, proc.stderr
    assert "stopped watching" not in proc.stderr, proc.stderr


def test_a_stop_signal_after_the_json_log_reader_left_records_the_run_interrupted(project):
    """The reported case: run_stopping raised on the closed pipe and shutdown stopped partway."""
    project.write_spec(project.spec("stopped", budget={"trials": 4}, trial={"function": "objectives:slow"},
                                    executor={"kind": "process", "workers": 2, "grace_period": 0.5}))
    proc = start_cli(project, "run", "stopped.yaml", "--log-format", "json")
    try:
        seen = []
        while len([e for e in seen if e["event"] == "trial_started"]) < 2:
            seen.append(json.loads(proc.stderr.readline()))
        assert proc.stderr is not None
        proc.stderr.close()  # the reader of the JSON log went away: every later line is a broken pipe
        wait_for(lambda: count_states(project, "stopped").get("running") == 2)
        proc.send_signal(signal.SIGTERM)
        returncode = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
    assert count_states(project, "stopped") == {"interrupted": 2}
    assert project.show("stopped")["status"] == "interrupted"
    assert returncode == 130  # interrupted, though "Interrupted. Continue with ..." could not reach the closed pipe
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and worker_pids(project):
        time.sleep(0.1)
    assert worker_pids(project) == []


def test_a_listener_that_records_the_run_is_not_isolated():
    """The audit trail is part of the record: a store that cannot take it stops the run, as any store failure."""
    from tunesmith.audit import AuditListener
    from tunesmith.errors import StorageError
    from tunesmith.events import Listeners

    assert AuditListener.records_the_run, "the audit trail is the listener this rule is for"

    class Recording(RunListener):
        records_the_run = True

        def trial_started(self, trial: TrialRecord) -> None:
            raise StorageError("the store is gone")

    fanout = Listeners(Watching(), Recording())
    with pytest.raises(StorageError):
        fanout.trial_started(None)
    assert fanout.dropped == [], "nothing is dropped: the error is the run's"


def test_a_dropped_progress_display_gives_the_terminal_back(project):
    """Its live bar redirects stdout and stderr through itself and hides the cursor until it is stopped."""
    import io

    from rich.console import Console
    from rich.file_proxy import FileProxy

    from tunesmith.console import ProgressDisplay

    class Buggy(ProgressDisplay):
        def trial_finished(self, trial: TrialRecord, best: TrialRecord | None) -> None:
            raise RuntimeError("a bug in the display")

    screen = io.StringIO()
    display = Buggy(Console(file=screen, force_terminal=True, width=120))
    try:
        result = api.run(project.spec("l-display", budget={"trials": 3}), storage=project.storage, listener=display)
        assert result.experiment.status.value == "completed"
        assert not isinstance(sys.stdout, FileProxy) and not isinstance(sys.stderr, FileProxy)
        assert screen.getvalue().endswith("\x1b[?25h")  # the cursor shown again
    finally:
        if display._progress is not None:  # without the fix: let the next tests have their stdout back
            display._progress.stop()


def test_a_listener_failing_on_resumes_data_changed_warning_does_not_stop_the_resume(project):
    """The warning that the data changed goes through the run's fan-out: a listener failing on it is dropped there."""
    from tests.test_task_runs import TASK

    data = project.root / "data.csv"
    rows = ["a,b,label"] + [f"{i % 7},{(i * 3) % 5},{i % 2}" for i in range(60)]
    data.write_text("\n".join(rows) + "\n")
    spec = {**TASK, "name": "csv-l", "task": {**{k: v for k, v in TASK["task"].items() if k != "holdout"},
                                              "data": {"path": "data.csv", "target": "label"}, "pipeline": []},
            "space": {"C": {"type": "float", "low": 0.01, "high": 10, "log": True}}, "budget": {"trials": 2}}
    first = api.run(project.write_spec(spec), storage=project.storage)  # set-up in this process: resume is the subject
    assert first.experiment.status.value == "completed"
    data.write_text("\n".join(rows[:-5]) + "\n")  # five rows fewer
    failed, watching = failing("warning"), Watching()
    heard_after = []  # a dropped listener is not called again: no run_started, trial_finished, ... after its failure
    for hook in ("run_started", "trial_finished", "run_finished"):
        setattr(failed, hook, lambda *_a, _hook=hook, **_k: heard_after.append(_hook))
    from tunesmith.events import Listeners

    result = api.resume("csv-l", storage=project.storage, listener=Listeners(failed, watching))
    assert result.experiment.status.value == "completed"
    assert failed.calls == 1 and heard_after == []
    assert sorted(w.split(" (")[0].split(":")[0] for w in watching.warnings) == [  # told of both, once each
        "Failing stopped watching this run", "the data changed since this experiment started"]


class _BrokenStderr:
    """A stderr that is no real file (pytest's capture, Jupyter) and whose reader left: a broken pipe."""

    def __init__(self) -> None:
        import io

        self._text = io.StringIO()  # fileno() raises io.UnsupportedOperation, as those streams do

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        pass

    def fileno(self) -> int:
        return self._text.fileno()

    def isatty(self) -> bool:
        return False


def test_the_cli_in_process_keeps_its_exit_code_when_a_stderr_without_a_descriptor_breaks(project, monkeypatch):
    # `app([...])` from Python: every trial fails, the reason goes to a stderr whose pipe broke; the exit code
    # (1) must survive, not be replaced by a traceback from dup2 on a stream that has no file descriptor
    from tunesmith.cli import app, err

    monkeypatch.setattr(err, "quiet", err.quiet)  # the broken pipe silences this shared console: undone after

    project.write("broken.py", '''
        def broken(config, trial):
            raise ValueError("always")
    ''')
    spec = project.write_spec(project.spec("pipe", trial={"function": "broken:broken"}, budget={"trials": 2}))
    monkeypatch.chdir(project.root)
    monkeypatch.setenv("TUNESMITH_STORAGE", project.storage)
    monkeypatch.setattr(sys, "stderr", _BrokenStderr())
    with pytest.raises(SystemExit) as exited:
        app(["run", spec.name, "-q"])
    assert exited.value.code == 1


def test_a_json_log_ends_with_json_however_the_run_ended(project):
    """With --log-format json the run's last word on stderr ("Every trial failed...", "Interrupted. Continue
    with...") was a plain line in the JSON stream, and a log shipper reading one object per line broke on it."""
    project.write_spec(project.spec("allfail", budget={"trials": 2}, trial={"function": "objectives:raises"},
                                    executor={"kind": "inline"}))
    proc = project.cli("run", "allfail.yaml", "--log-format", "json", "--quiet")
    assert proc.returncode == 1, proc.stderr
    lines = [json.loads(line) for line in proc.stderr.splitlines()]   # every line, JSON
    assert lines[-1]["event"] == "run_exit" and lines[-1]["exit_code"] == 1, lines[-1]
    assert lines[-1]["message"].startswith("Every trial failed (2)"), lines[-1]


def test_every_line_of_a_json_log_is_an_object_with_its_time_before_and_after_the_run_too(project):
    """The spec's warnings before the run (a grid larger than the budget: four wrapped text lines), a refusal that
    ended the command (the name taken, a missing spec) were plain text in the JSON stream, and run_exit had no
    timestamp or time."""
    spec = project.spec("logged", budget={"trials": 2}, executor={"kind": "inline"},
                        space={"x": {"type": "int", "low": 0, "high": 99}}, strategy={"name": "grid"})
    project.write_spec(spec)
    first = project.cli("run", "logged.yaml", "--log-format", "json", "--quiet")
    assert first.returncode == 0, first.stderr
    lines = [json.loads(line) for line in first.stderr.splitlines()]  # every line, JSON
    assert lines[0]["event"] == "warning" and "grid" in lines[0]["reason"] and lines[0]["experiment"] == "logged"
    again = project.cli("run", "logged.yaml", "--log-format", "json", "--quiet")
    missing = project.cli("run", "nope.yaml", "--log-format", "json", "--quiet")
    for proc, code in ((again, 2), (missing, 2)):
        assert proc.returncode == code, proc.stderr
        [line] = [json.loads(line) for line in proc.stderr.splitlines() if "run_exit" in line]
        assert line["exit_code"] == code and line["message"] and {"timestamp", "time"} <= set(line), line
        assert all(json.loads(text) for text in proc.stderr.splitlines())
    assert "already exists" in json.loads(again.stderr.splitlines()[-1])["message"]


class Counting(RunListener):
    """What run_started was told the run's trial count would be."""

    def __init__(self) -> None:
        self.totals: list[int | None] = []

    def run_started(self, experiment: ExperimentRecord, history: list[TrialRecord], resumed: bool,
                    total_trials: int | None) -> None:
        self.totals.append(total_trials)


@pytest.mark.parametrize(("strategy", "budget", "expected"), [
    ("grid", {"trials": 100}, 3),          # the grid holds 3: a finished run showed 3/100
    ("grid", {"trials": 2}, 2),            # the budget is smaller: it stands
    ("grid", {"wall_time": "1m"}, 3),      # no trial budget: the grid's size is the count, not an open-ended spinner
    ("random", {"trials": 5}, 5),
])
def test_the_progress_counts_a_grid_smaller_than_the_budget_as_the_grid(project, strategy, budget, expected):
    spec = project.spec(f"count-{strategy}-{len(budget)}-{expected}", strategy=strategy, budget=budget,
                        space={"x": {"type": "categorical", "choices": [0.1, 0.5, 0.9]}},
                        executor={"kind": "inline"})
    counting = Counting()
    result = api.run(spec, storage=project.storage, listener=counting)
    assert counting.totals == [expected]
    assert len(result.trials) == min(expected, 5)


def test_show_prints_the_best_trial_as_its_table_does(project):
    from helpers import cli_in_process

    api.run(project.spec("best-line", space={"x": {"type": "categorical", "choices": [1, 2]}}, strategy="grid",
                         executor={"kind": "inline"}, trial={"function": "objectives:quadratic"}),
            storage=project.storage)
    code, out, _ = cli_in_process("show", "best-line")
    assert code == 0
    assert "best: trial 0 (loss 0.49) with x=1\n" in out, out  # a dict's repr said {'loss': 0.49} params {'x': 1}
    [row] = [line for line in out.splitlines() if line.startswith("│ *0")]  # the table's row says the same
    assert [cell.strip() for cell in row.split("│")[1:4]] == ["*0", "0.49", "x=1"], row
