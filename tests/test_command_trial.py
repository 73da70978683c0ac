"""Command trials: placeholders rendered safely, JSON lines read from stdout, exits classified; via the real CLI."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import alive, settles

from tunesmith.evaluation.command import render_command

PY = shlex.quote(sys.executable)

# Records what it was given, then talks the JSON-lines protocol with some noise around it.
SHOW = '''
import json, os, sys
with open(os.path.join(os.environ["TUNESMITH_TRIAL_DIR"], "seen.json"), "w") as f:
    json.dump({"argv": sys.argv[1:], "cwd": os.getcwd(), "env_number": os.environ["TUNESMITH_TRIAL_NUMBER"]}, f)
print("starting up")
print(json.dumps({"step": 0, "loss": 0.5}))
print("not json {")
print(json.dumps({"step": 1, "loss": 0.25}))
print(json.dumps({"loss": 99.0}))
print("to stderr", file=sys.stderr)
print(json.dumps({"loss": 0.125, "throughput": 3}))
print("after the result")
'''

FAILS = '''
case "$1" in
  exit) echo "about to fail"; echo "no such table: runs" >&2; exit 3 ;;
  nojson) echo "plain words only" ;;
  silent) ;;
  signal) kill -SEGV $$ ;;
  child_signal) "$2" -c "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"; exit $? ;;
esac
'''


def _command_spec(project: Any, command: str, space: dict[str, Any], cwd: str | None = None, **executor: Any) -> Path:
    spec = project.spec(
        "cmd", strategy="grid", space=space, trial={"command": command, **({"cwd": cwd} if cwd else {})},
        executor={"kind": "process", "workers": 2, "retries": 0, **executor}, budget={"trials": 10},
    )
    return project.write_spec(spec)


def _run(project: Any, spec: Path, all_fail: bool = False) -> list[dict[str, Any]]:
    """Run the spec to its end. When every trial is meant to fail, the exit status is the CLI's business, not ours."""
    proc = project.cli("run", str(spec))
    if all_fail:
        assert "Traceback" not in proc.stderr, proc.stderr
    else:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return sorted(project.trials("cmd"), key=lambda t: t["number"])  # read back in this process


# -- rendering ---------------------------------------------------------------------------------------------------

def _render(command: str, params: dict[str, Any], names: tuple[str, ...] = ("mode", "depth", "lr")) -> str:
    return render_command(command, params, names, "/runs/trial 3", "/specs", 42, 3)


@pytest.mark.parametrize("value", ["two words", "x; touch injected", "$(touch injected)", "it's", "`id`", ""])
def test_parameters_are_shell_quoted(value: str) -> None:
    rendered = _render("train {mode} --lr {lr}", {"mode": value, "lr": 0.1})
    assert shlex.split(rendered) == ["train", value, "--lr", "0.1"]


def test_values_render_as_text() -> None:
    rendered = _render("t {mode} {depth} {lr}", {"mode": True, "depth": 3, "lr": 1e-05})
    assert rendered == "t True 3 1e-05"
    assert _render("t {mode}", {"mode": None}) == "t ''"


def test_inactive_conditional_parameter_renders_empty() -> None:
    rendered = _render("train --mode {mode} --depth {depth}", {"mode": "linear"})
    assert rendered == "train --mode linear --depth ''"
    assert shlex.split(rendered) == ["train", "--mode", "linear", "--depth", ""]


def test_builtin_placeholders_and_literal_braces() -> None:
    rendered = _render("run {args} {trial_dir} {spec_dir} {seed} {number} '{{\"a\": 1}}' {{mode}}",
                       {"mode": "a b", "lr": 0.5})
    assert rendered == "run --mode 'a b' --lr 0.5 '/runs/trial 3' /specs 42 3 '{\"a\": 1}' {mode}"
    assert render_command("{spec_dir}", {}, (), "/t", None, 1, 0) == "."


# -- through the CLI -----------------------------------------------------------------------------------------------

def test_command_trial_end_to_end(project: Any) -> None:
    project.write("show.py", SHOW)
    space = {
        "mode": {"type": "categorical", "choices": ["a b", "x; touch INJECTED"]},
        "depth": {"type": "categorical", "choices": [2], "when": {"mode": "a b"}},
    }
    command = f"{PY} {{spec_dir}}/show.py {{mode}} {{depth}} {{args}} {{trial_dir}} {{seed}} {{number}} {{{{lit}}}}"
    trials = _run(project, _command_spec(project, command, space))
    assert [t["state"] for t in trials] == ["completed", "completed"]
    assert not list(project.root.rglob("INJECTED")), "a parameter value ran as a shell command"
    for t in trials:
        trial_dir = Path(t["log_path"]).parent
        seen = json.loads((trial_dir / "seen.json").read_text())
        assert seen["cwd"] == str(project.root), "a command runs in the spec's folder"
        mode = t["params"]["mode"]
        if mode == "a b":
            assert t["params"] == {"mode": "a b", "depth": 2}
            depth, args = "2", ["--mode", "a b", "--depth", "2"]
        else:
            assert t["params"] == {"mode": "x; touch INJECTED"}
            depth, args = "", ["--mode", "x; touch INJECTED"]
        assert seen["argv"] == [mode, depth, *args, str(trial_dir), str(t["seed"]), str(t["number"]), "{lit}"]
        assert seen["env_number"] == str(t["number"])
        # The last JSON line without "step" is the result; "step" lines are intermediate values.
        assert t["values"] == {"loss": 0.125}
        assert t["metrics"] == {"throughput": 3.0}
        assert t["intermediate"] == [[0, 0.5], [1, 0.25]]
        log = Path(t["log_path"]).read_text()
        for line in ("starting up", "not json {", '{"step": 0, "loss": 0.5}', '{"loss": 99.0}', "to stderr",
                     "after the result"):
            assert line in log


# Reports with steps as a JSON writer may give them: 1.0 from a float counter, and steps no report can have.
FLOAT_STEPS = '''
import json
import time
for step, loss in [(0.0, 0.5), (1.0, 0.4), (1.5, 0.35), (-1, 0.3), (True, 0.3), ("2", 0.3), (2.0, 0.25)]:
    print(json.dumps({"step": step, "loss": loss}))
print(json.dumps({"loss": 0.2}))
'''


def test_a_whole_float_step_is_a_report_and_a_bad_step_is_told_once_in_the_log(project: Any) -> None:
    """`{"step": 1.0, "loss": 0.3}` (a float counter, json.dumps of a numpy number) was dropped line by line without a
    word: the scheduler saw no reports and the trial no pruning. A whole float is that step; a step no report can
    have (1.5, -1, true, "2") is left out and said once in the trial's log, with the line and the fix."""
    project.write("float_steps.py", FLOAT_STEPS)
    space = {"x": {"type": "categorical", "choices": [1]}}
    (trial,) = _run(project, _command_spec(project, f"{PY} float_steps.py", space, workers=1))  # 1 trial: 1 worker
    assert trial["values"] == {"loss": 0.2}
    assert trial["intermediate"] == [[0, 0.5], [1, 0.4], [2, 0.25]]
    log = Path(trial["log_path"]).read_text()
    told = [line for line in log.splitlines() if line.startswith("tunesmith:")]
    assert told == ['tunesmith: a report line was ignored, {"step": 1.5, "loss": 0.35}: its "step" must be a whole '
                    'number >= 0, as in {"step": 3, "loss": 0.35}; later ignored lines of this trial are not told'], log


@pytest.mark.parametrize("kind", ["process", "inline"])
def test_a_bad_report_line_is_a_run_warning_once_per_trial_as_well_as_in_its_log(project: Any, kind: str) -> None:
    """A report line left out was said only in the trial's log, which nobody reads while the run looks fine: the
    scheduler saw fewer reports than printed, and the run said nothing. It is a run warning too, once per trial."""
    project.write("float_steps.py", FLOAT_STEPS)
    space = {"x": {"type": "categorical", "choices": [1, 2]}}
    spec = _command_spec(project, f"{PY} float_steps.py", space, kind=kind, **({"workers": 1} if kind == "inline" else {}))
    proc = project.cli("run", str(spec), "--log-format", "json")
    assert proc.returncode == 0, proc.stderr
    warned = [e["reason"] for e in map(json.loads, proc.stderr.splitlines()) if e["event"] == "warning"]
    told = ('a report line was ignored, {"step": 1.5, "loss": 0.35}: its "step" must be a whole number >= 0, as in '
            '{"step": 3, "loss": 0.35}; later ignored lines of this trial are not told')
    assert sorted(warned) == [f"trial 0: {told}", f"trial 1: {told}"], proc.stderr
    for trial in project.trials("cmd"):
        log = Path(trial["log_path"]).read_text()
        assert [line for line in log.splitlines() if line.startswith("tunesmith:")] == [f"tunesmith: {told}"], log


def test_a_step_too_big_to_store_is_a_bad_report_line_not_a_failed_run(project: Any) -> None:
    """`{"step": 1e19}` reached SQLite as an int beyond 64 bits: OverflowError, and the experiment failed."""
    project.write("big_step.py", """
        import json
        print(json.dumps({"step": 0, "loss": 0.5}))
        print(json.dumps({"step": 1e19, "loss": 0.4}))
        print(json.dumps({"step": 2 ** 63, "loss": 0.4}))
        print(json.dumps({"step": 2 ** 63 - 1, "loss": 0.3}))
        print(json.dumps({"loss": 0.2}))
    """)
    space = {"x": {"type": "categorical", "choices": [1]}}
    (trial,) = _run(project, _command_spec(project, f"{PY} big_step.py", space, kind="inline"))
    assert (trial["state"], trial["values"]) == ("completed", {"loss": 0.2})
    assert trial["intermediate"] == [[0, 0.5], [2 ** 63 - 1, 0.3]]
    told = [line for line in Path(trial["log_path"]).read_text().splitlines() if line.startswith("tunesmith:")]
    assert told == ['tunesmith: a report line was ignored, {"step": 1e+19, "loss": 0.4}: its "step" is above '
                    '9223372036854775807, the largest step a report can have; later ignored lines of this trial are '
                    'not told']


def test_command_failures_are_classified(project: Any) -> None:
    project.write("fails.sh", FAILS)
    space = {"how": {"type": "categorical", "choices": ["exit", "nojson", "silent", "signal", "child_signal"]}}
    # exec: the shell running the script is the command itself, so its own signal reaches us undisguised
    trials = _run(project, _command_spec(project, f"exec sh {{spec_dir}}/fails.sh {{how}} {PY}", space), all_fail=True)
    got = {t["params"]["how"]: (t["state"], t["failure_kind"], t["error"]) for t in trials}
    assert got == {
        "exit": ("failed", "exit_code", "exit_code: command exited with code 3; stderr: no such table: runs"),
        # what it printed instead of a result, and printing nothing, were one reason with nothing after it
        "nojson": ("failed", "invalid_result", 'invalid_result: command printed no JSON result line (print e.g. '
                                               '{"loss": 0.93}); output: plain words only'),
        "silent": ("failed", "invalid_result",
                   'invalid_result: command printed nothing on stdout (print e.g. {"loss": 0.93})'),
        "signal": ("failed", "crashed", "crashed: command killed by signal SIGSEGV"),
        "child_signal": ("failed", "crashed", "crashed: command exited with code 137 (signal SIGKILL); stderr: Killed"),
    }
    logs = {t["params"]["how"]: Path(t["log_path"]).read_text() for t in trials}
    assert "about to fail" in logs["exit"] and "no such table: runs" in logs["exit"]
    assert "plain words only" in logs["nojson"]


# what a hostile or careless command writes on stderr: a window title (OSC 0, ended by BEL), a hyperlink (OSC 8, ended
# by ST), a DCS string, a charset switch, an 8-bit CSI, a colour (CSI) and a lone BEL
ESCAPES = (r"printf 'x \033]0;PWNED-TITLE\007 \033]8;;https://evil.example\033\\click\033]8;;\033\\ "
           r"\033Pq#0\033\\\033(Bplain \302\23331mc1 \033[1;31mred\033[0m\007 end\n' >&2; exit 3")


def test_a_commands_stderr_tail_keeps_no_escape_sequence(tmp_path: Path) -> None:
    """Only CSI sequences were taken out of the tail the reason quotes: a window title (OSC 0) and a hyperlink to
    any URL (OSC 8) reached `run`'s failure line and `trials`. Every escape sequence goes, its text with it where it
    is no text to read (a title, a URL); the words printed between stay. The log keeps the output as written."""
    _result, failure, _seconds, log, _notes = _run_here(tmp_path, ESCAPES)
    assert failure is not None
    assert failure.message == "command exited with code 3; stderr: x  click plain c1 red end", failure.message
    assert "\x1b]0;PWNED-TITLE\x07" in log


def test_command_timeout_kills_the_command_and_its_children(project: Any) -> None:
    space = {"x": {"type": "categorical", "choices": [1]}}
    command = "echo $$ > shell.pid; sleep 1000 & echo $! > sleep.pid; wait; echo '{{\"loss\": 1}}'"
    # cwd: trial_dir, today's folder for a command that writes relative paths of its own
    (trial,) = _run(project, _command_spec(project, command, space, cwd="trial_dir", trial_timeout="1s", workers=1),
                    all_fail=True)
    assert (trial["state"], trial["failure_kind"]) == ("failed", "timeout")
    assert trial["error"] == "timeout: exceeded trial_timeout of 1.0s; the trial's whole process tree was killed"
    trial_dir = Path(trial["log_path"]).parent
    for name in ("shell.pid", "sleep.pid"):
        pid = int((trial_dir / name).read_text())
        assert settles(lambda pid=pid: not alive(pid)), f"{name} {pid} survived the timeout"


# The SRE's script: a background child that inherits stdout, then the result
BACKGROUND = """#!/bin/sh
sleep 30 &
echo $! > "$TUNESMITH_TRIAL_DIR/bg.pid"
echo '{"loss": 1.0}'
"""


def test_a_background_child_holding_stdout_is_stopped_and_the_trial_ends_by_the_commands_own_result(
        project: Any) -> None:
    """The trial waited for the child to close stdout: with trial_timeout it failed as a timeout after 10 s (its output
    the very result line), without one the run hung as long as the child lived (a daemon: for ever)."""
    script = project.write("bg.sh", BACKGROUND)
    script.chmod(0o755)
    spec = _command_spec(project, "./bg.sh", {"x": {"type": "categorical", "choices": [1]}}, trial_timeout="10s",
                         workers=1)
    proc = project.cli("run", str(spec))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (trial,) = project.trials("cmd")
    assert (trial["state"], trial["values"]) == ("completed", {"loss": 1.0}), trial
    assert trial["duration_s"] < 5, "the trial waited for the background child"
    log = Path(trial["log_path"]).read_text()
    pid = int((Path(trial["log_path"]).parent / "bg.pid").read_text())
    note = (f"a background process the command started (pid {pid}: sleep) kept the trial's output open after the "
            "command exited; tunesmith stopped it after 1s, and the trial ends by the command's own exit status and "
            "result")
    assert f"tunesmith: {note}" in log, log
    assert note in " ".join(proc.stderr.split()), "said as the run goes, too"
    assert not alive(pid)


def _run_here(tmp_path: Path, command: str) -> tuple[Any, Any, float, str, list[str]]:
    """run_command in this process, as a worker runs it: (result, failure, seconds, log, notes)."""
    from tunesmith.evaluation.command import run_command

    notes: list[str] = []
    started = time.monotonic()
    with open(tmp_path / "trial.log", "w") as log:
        result, failure, _pruned = run_command(command, str(tmp_path), {**os.environ, "TUNESMITH_TRIAL_DIR":
                                                                        str(tmp_path)}, log, ("loss",),
                                               lambda _r: None, lambda: False, on_note=notes.append)
    return result, failure, time.monotonic() - started, (tmp_path / "trial.log").read_text(), notes


def test_a_background_child_holding_only_stderr_is_stopped_too(tmp_path: Path) -> None:
    """stdout sent away, stderr kept: the trial waited 2 s for stderr, then left the child running, holding the pipe."""
    command = "sleep 30 >/dev/null & echo $! > bg.pid; echo '{\"loss\": 2.0}'"
    result, failure, seconds, log, notes = _run_here(tmp_path, command)
    assert (result, failure) == ({"loss": 2.0}, None)
    assert seconds < 1.9, seconds
    pid = int((tmp_path / "bg.pid").read_text())
    assert notes == [f"a background process the command started (pid {pid}: sleep) kept the trial's output open "
                     "after the command exited; tunesmith stopped it after 1s, and the trial ends by the command's "
                     "own exit status and result"]
    assert settles(lambda: not alive(pid))
    assert '{"loss": 2.0}' in log


def test_what_a_child_says_just_after_the_command_exits_is_still_read(tmp_path: Path) -> None:
    """The grace is for output under way: a child that ends within it is read to its end, and nothing is stopped."""
    command = "(sleep 0.3; echo 'late words'; echo 'late error' >&2) & echo '{\"loss\": 3.0}'"
    result, failure, seconds, log, notes = _run_here(tmp_path, command)
    assert (result, failure, notes) == ({"loss": 3.0}, None, [])
    assert "late words" in log and "late error" in log
    assert seconds < 1.0, seconds


def test_a_background_writer_after_the_exit_is_logged_never_the_result(tmp_path: Path) -> None:
    """Lines read after the command exited were parsed as its own: the trial returned loss 99, and as the drain
    deadline was checked only while no line came, a writer every 0.3 s held the trial for ever."""
    command = ("(sleep 0.5; while true; do echo '{\"loss\": 99}'; sleep 0.3; done) & echo $! > bg.pid; "
               "echo '{\"loss\": 1}'")
    result, failure, seconds, log, notes = _run_here(tmp_path, command)
    assert (result, failure) == ({"loss": 1}, None)
    assert seconds < 5, seconds  # 1 s of grace, then stopped: not for ever
    pid = int((tmp_path / "bg.pid").read_text())
    # the subshell, and its `sleep 0.3` unless caught between two
    assert len(notes) == 1 and f"pid {pid}: sh" in notes[0] and "tunesmith stopped" in notes[0], notes
    assert settles(lambda: not alive(pid))
    assert '{"loss": 1}' in log


def test_a_daemon_that_left_the_commands_session_is_named_not_stopped(tmp_path: Path) -> None:
    """A daemon holding the output (an ssh ControlPersist master, a server others use) was SIGKILLed with the
    trial's own children. It is left running and named; the trial ends all the same."""
    daemon = "import os, time; os.setsid(); open('bg.pid', 'w').write(str(os.getpid())); time.sleep(60)"
    command = (f"{PY} -c {shlex.quote(daemon)} & while [ ! -s bg.pid ]; do sleep 0.05; done; "
               "echo '{\"loss\": 4.0}'")
    try:
        result, failure, seconds, log, notes = _run_here(tmp_path, command)
        pid = int((tmp_path / "bg.pid").read_text())
        assert (result, failure) == ({"loss": 4.0}, None)
        assert seconds < 5, seconds
        name = Path(sys.executable).name[:15]  # /proc/PID/comm: 15 characters at most
        assert notes == [f"a process the command started that left its session (pid {pid}: {name}) kept the trial's "
                         "output open after the command exited; a daemon (setsid), which others may use, is not "
                         "tunesmith's to stop: it was left running and tunesmith stopped reading after 1s, and the "
                         "trial ends by the command's own exit status and result"]
        time.sleep(0.5)
        assert alive(pid), "the daemon was stopped"
    finally:
        if (tmp_path / "bg.pid").exists() and (tmp_path / "bg.pid").read_text():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int((tmp_path / "bg.pid").read_text()), signal.SIGKILL)


def test_a_holder_not_found_leaves_no_reader_nor_descriptor_behind(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Where no holder is found (no /proc, another user's process), a reader thread blocked on the pipe and both
    pipe descriptors stayed in the worker, trial after trial."""
    import threading

    from tunesmith.evaluation import command
    from tunesmith.evaluation.output_holders import Holders

    monkeypatch.setattr(command, "stop_holders", lambda _inodes, _session: Holders((), ()))
    threads, descriptors = threading.active_count(), len(os.listdir("/proc/self/fd"))
    try:
        result, failure, seconds, _log, notes = _run_here(tmp_path, "sleep 30 & echo $! > bg.pid; echo '{\"loss\": 5}'")
        assert (result, failure) == ({"loss": 5}, None)
        assert seconds < 5, seconds
        assert notes == ["a background process the command started kept the trial's output open after the command "
                         "exited; tunesmith could not find it to stop it and stopped reading after 1s, and the trial "
                         "ends by the command's own exit status and result"]
        assert (threading.active_count(), len(os.listdir("/proc/self/fd"))) == (threads, descriptors)
    finally:
        with contextlib.suppress(ProcessLookupError, ValueError, FileNotFoundError):
            os.kill(int((tmp_path / "bg.pid").read_text()), signal.SIGKILL)


# Runs run_command as a worker does, in a process of its own, and prints its peak resident memory: VmHWM, this
# process's own high-water mark. Not getrusage's ru_maxrss, which on Linux keeps the forking parent's mark across
# exec: under pytest-xdist the parent is a worker of 340 MB, and the child read 340 whatever it did.
PEAK = """
import os, sys
from tunesmith.evaluation.command import run_command
with open("trial.log", "w") as log:
    result, failure, _ = run_command(sys.argv[1], ".", dict(os.environ), log, ("loss",), lambda _r: None,
                                     lambda: False)
with open("/proc/self/status") as status:
    peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(result, failure, peak_kb // 1024)
"""


@pytest.mark.parametrize("command", [
    "yes tick | head -n 2000000; echo '{\"loss\": 1}'",
    "yes tick & echo '{\"loss\": 1}'",  # a background flood that never ends: it ran until memory was gone
], ids=["2M lines", "a background flood"])
def test_a_command_printing_fast_is_read_at_its_pace_in_flat_memory(tmp_path: Path, command: str) -> None:
    """Stdout went through an unbounded queue, filled by a thread faster than lines were logged and parsed: 3M
    lines took 9.7 s and 209 MB (2.9 s and 19 MB before); a background `yes` grew it until memory ran out."""
    import tunesmith

    env = {**os.environ, "PYTHONPATH": str(Path(tunesmith.__file__).parents[1])}
    done = subprocess.run([sys.executable, "-c", PEAK, command], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result, failure, peak_mb = done.stdout.rsplit(" ", 2)
    assert (result, failure) == ("{'loss': 1}", "None"), done.stdout
    assert int(peak_mb) < 100, f"peak resident memory {peak_mb} MB"




def test_cwd_trial_dir_runs_the_command_in_the_trials_own_folder(project: Any) -> None:
    project.write("show.py", SHOW)
    space = {"mode": {"type": "categorical", "choices": ["a"]}}
    (trial,) = _run(project, _command_spec(project, f"{PY} {{spec_dir}}/show.py {{mode}}", space, cwd="trial_dir",
                                           workers=1))
    trial_dir = Path(trial["log_path"]).parent
    assert json.loads((trial_dir / "seen.json").read_text())["cwd"] == str(trial_dir)
    assert trial["values"] == {"loss": 0.125}


# What the command's own Python sees: the PYTHONPATH tunesmith was started with, and whether it imports tunesmith.
SEES_PATH = '''
import importlib.util, json, os
seen = {"PYTHONPATH": os.environ.get("PYTHONPATH"),
        "imports_tunesmith": importlib.util.find_spec("tunesmith") is not None}
with open(os.path.join(os.environ["TUNESMITH_TRIAL_DIR"], "path.json"), "w") as f:
    json.dump(seen, f)
print(json.dumps({"loss": 1.0}))
'''


@pytest.mark.parametrize("kind", ["process", "inline"])
@pytest.mark.parametrize("user_path", [None, "user_lib"])
def test_a_command_run_by_another_python_sees_the_users_pythonpath_not_tunesmiths(project: Any, tmp_path: Path,
                                                                                   kind: str,
                                                                                   user_path: str | None) -> None:
    """A script run by its own virtualenv got the worker's import path (tunesmith's venv, its standard library) in
    PYTHONPATH: another Python version failed ('SRE module mismatch'), the same version imported tunesmith's copies
    of its packages. The command sees the PYTHONPATH tunesmith was started with, unset included, under either
    executor. tunesmith is started here with its source put on sys.path by hand, not by PYTHONPATH (as a user's
    script or an editable install does), so the variable is the user's alone."""
    import tunesmith

    venv = tmp_path / "own-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if subprocess.run([str(venv / "bin" / "python"), "-c", "import tunesmith"], env=clean,
                      capture_output=True).returncode == 0:
        pytest.skip("the base interpreter imports tunesmith itself: a fresh virtualenv cannot tell the paths apart")
    project.write("sees_path.py", SEES_PATH)
    spec = project.write_spec(project.spec(
        "cmd", trial={"command": f"{shlex.quote(str(venv / 'bin' / 'python'))} sees_path.py"},
        executor={"kind": kind, "workers": 1}, budget={"trials": 1}))
    env = {**clean, "TUNESMITH_STORAGE": project.storage}
    if user_path is not None:
        env["PYTHONPATH"] = str(project.root / user_path)
    source = str(Path(tunesmith.__file__).resolve().parents[1])
    start = f"import sys; sys.path.insert(0, {source!r}); from tunesmith.cli import main; main()"
    proc = subprocess.run([sys.executable, "-c", start, "run", str(spec)], cwd=project.root, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (trial,) = project.trials("cmd")
    seen = json.loads((Path(trial["log_path"]).parent / "path.json").read_text())
    assert seen == {"PYTHONPATH": env.get("PYTHONPATH"), "imports_tunesmith": False}


# A checkpointing script: it saves in $TUNESMITH_CHECKPOINT_DIR before each report, starts from what it finds there
# (a retry's own) and crashes on its first attempt after step 2.
RESUMES = """
import json, os, signal
own = os.environ["TUNESMITH_CHECKPOINT_DIR"]
state = {"step": 0}
if os.path.exists(os.path.join(own, "state.json")):
    with open(os.path.join(own, "state.json")) as f:
        state = json.load(f)
started, attempt = state["step"], int(os.environ["TUNESMITH_ATTEMPT"])
for step in range(started + 1, 5):
    os.makedirs(own, exist_ok=True)
    with open(os.path.join(own, "state.json.tmp"), "w") as f:
        json.dump({"step": step}, f)
    os.replace(os.path.join(own, "state.json.tmp"), os.path.join(own, "state.json"))
    print(json.dumps({"step": step, "loss": 1.0 / step}), flush=True)
    if attempt == 1 and step == 2:
        os.kill(os.getpid(), signal.SIGSEGV)
print(json.dumps({"loss": 0.25, "started_from": started, "attempt": attempt,
                  "parent_dir_is_beside": int(os.environ["TUNESMITH_PARENT_CHECKPOINT_DIR"] == own + "-parent")}))
"""


def test_a_retried_command_finds_its_own_checkpoint_and_knows_its_attempt(project: Any) -> None:
    """A command had no TUNESMITH_ATTEMPT (a function has trial.attempt), and no word said which folder a retry (or
    a PBT child) finds: $TUNESMITH_CHECKPOINT_DIR is the trial's checkpoint/, kept from attempt to attempt."""
    project.write("resumes.py", RESUMES)
    space = {"x": {"type": "categorical", "choices": [1]}}
    (trial,) = _run(project, _command_spec(project, f"{PY} resumes.py", space, workers=1, retries=1))
    assert (trial["state"], trial["attempts"]) == ("completed", 2), trial
    assert trial["metrics"] == {"started_from": 2.0, "attempt": 2.0, "parent_dir_is_beside": 1.0}
    trial_dir = Path(trial["log_path"]).parent
    assert json.loads((trial_dir / "checkpoint" / "state.json").read_text()) == {"step": 4}


def test_a_trial_env_value_naming_a_variable_is_said_to_be_taken_as_written(project: Any) -> None:
    """`env: {PATH: "/venv/bin:$PATH"}` set PATH to that very text: python3 was found (the first folder), `date` was
    not, and nothing said why. A value is never expanded: validate and run say so, naming the variable, never the
    value (a secret's)."""
    from tunesmith.runner import prepare
    from tunesmith.spec import spec_from_dict

    env = {"PATH": "/venv/bin:$PATH", "API_TOKEN": "s3cret${HOME}", "PRICE": "5$", "PLAIN": "a b"}
    plan = prepare(spec_from_dict(project.spec(trial={"command": "date; python3 x.py", "env": env},
                                               base_dir=str(project.root))))
    said = [w for w in plan.warnings if w.startswith("trial.env")]
    assert said == [
        "trial.env.PATH holds $PATH, which is not expanded: the variable is set to the text as written; write the "
        "value in full, or set it in trial.command, where the shell expands it (PATH=\"...$PATH\" python train.py)",
        "trial.env.API_TOKEN holds ${HOME}, which is not expanded: the variable is set to the text as written; write "
        "the value in full, or set it in trial.command, where the shell expands it (API_TOKEN=\"...${HOME}\" python "
        "train.py)",
    ], said


# -- braces: the shell's own, and a placeholder missing one ------------------------------------------------------

def _prepare_command(project: Any, command: str) -> None:
    from tunesmith.runner import prepare
    from tunesmith.spec import spec_from_dict

    prepare(spec_from_dict(project.spec(trial={"command": command}, space={
        "lr": {"type": "float", "low": 0.1, "high": 1.0}, "scale": {"type": "float", "low": 1.0, "high": 2.0},
        "x": {"type": "float", "low": 0.0, "high": 1.0}}, base_dir=str(project.root))))


@pytest.mark.parametrize("command", [
    "{ time python train.py --lr {lr}; } 2> time.txt",   # a shell brace group
    "awk '{print $1 * {scale}}' data.txt",               # an awk program around a placeholder
    "{ python train.py --lr {lr};} && echo '{{\"loss\": 1}}'",
])
def test_shell_and_program_braces_are_not_refused(project: Any, command: str) -> None:
    _prepare_command(project, command)  # walk2's lone-brace check refused both: commands that had worked


@pytest.mark.parametrize("command,message", [
    ("echo {x", "a lone '{' at character 6: close the placeholder"),
    ("echo {lr }", r"placeholder \{lr \} holds spaces; remove the spaces: \{lr\}"),
    ("echo {Lr}", r"placeholder \{Lr\} names no parameter; did you mean 'lr'\?"),
    ("echo {lrr}", r"placeholder \{lrr\} names no parameter; did you mean 'lr'\? parameters: lr, scale, x"),
    ("echo x}", "a lone '}' at character 7: open the placeholder"),
    ("python train.py --lr {lr --scale {scale}", "a lone '{' at character 22: close the placeholder"),
])
def test_a_placeholder_missing_a_brace_is_refused(project: Any, command: str, message: str) -> None:
    from tunesmith.errors import SpecError

    with pytest.raises(SpecError, match=message):
        _prepare_command(project, command)


@pytest.mark.parametrize("command,message", [
    ("echo ${HOME}/data", r"placeholder \{HOME\} right after '\$' names no parameter: for the shell variable write "
                          r"\$\{\{HOME\}\} \(braces doubled\); parameters: lr, scale, x"),
    ("echo ${lrr}", r"write \$\{\{lrr\}\} \(braces doubled\) \(or, for the parameter 'lr', write \{lr\} without the '\$'\)"),
])
def test_a_name_right_after_a_dollar_that_is_no_parameter_says_how_to_write_the_shells(project: Any, command: str,
                                                                                        message: str) -> None:
    """`${HOME}` was refused as naming no parameter, without saying how to write the shell's variable."""
    from tunesmith.errors import SpecError

    with pytest.raises(SpecError, match=message):
        _prepare_command(project, command)


@pytest.mark.parametrize("command,warned", [
    ("python train.py --lr ${lr}", ["${lr}"]),           # renders $0.49: the shell expands $0
    ("echo ${trial_dir}/out", ["${trial_dir}"]),
    ('echo "${lr}"', ["${lr}"]),                          # double quotes expand a '$' too
    ("awk '{{print ${scale}}}' data.txt", []),            # meant: awk's field, in single quotes: kept as written
    ("echo '$'{lr} \\${lr} ${{HOME}}", []),                # a '$' kept apart or escaped: no warning
    ("echo $${lr}", ["${lr}"]),                           # renders $$0.49: the process id, then the value
    ("echo {lr} # was ${lr}", []),                        # a comment
])
def test_a_stored_commands_parameter_after_a_dollar_is_said_not_refused(project: Any, command: str,
                                                                        warned: list[str]) -> None:
    """A recorded experiment (resume, reproduce, re-tune: a spec from the store, never refused) ran with its
    `${lr}`: said, not refused. Single-quoted, the `$` is meant (awk's field): nothing is said."""
    from tunesmith.runner import prepare
    from tunesmith.spec import spec_from_dict

    plan = prepare(spec_from_dict(project.spec(trial={"command": command}, space={
        "lr": {"type": "float", "low": 0.1, "high": 1.0}, "scale": {"type": "float", "low": 1.0, "high": 2.0}},
        base_dir=str(project.root))))
    said = [w for w in plan.warnings if "follows a '$'" in w]
    assert [w.split()[2].rstrip(":") for w in said] == warned, plan.warnings
    assert all("write {" in w and "${{" in w for w in said)


DOLLAR_CASES = [
    ("python3 branin.py --x ${x} --y {y}", "x"),          # the walkthrough: $6.0186 ran as 0.0186
    ('python3 branin.py --x "${x}" --y {y}', "x"),        # double quotes expand it too
    ("python3 branin.py --x {x} --seed ${seed}", "seed"),  # a built-in
    ("echo 'a'${y}", "y"),                                # after a closed single quote
    ("awk '{{print ${x}}}' d.txt; python3 branin.py --x {x} --y {y}", None),  # awk's field, single-quoted
    ("python3 branin.py --x {x} --y {y} --tag '$'{x} \\${y} ${{HOME}}", None),  # kept apart, escaped, the shell's
]


@pytest.fixture(scope="module")
def dollar_validated(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    """One `tunesmith validate` over every DOLLAR_CASES spec (a subprocess costs ~0.6 s of CPU, mostly start-up),
    each in a folder of its own, case{i}/dollar.yaml: each line names its spec, so none is credited to another."""
    from conftest import OBJECTIVES, Project

    root = tmp_path_factory.mktemp("dollar")
    space = {"x": {"type": "float", "low": -5.0, "high": 10.0}, "y": {"type": "float", "low": 0.0, "high": 15.0}}
    for i, (command, _) in enumerate(DOLLAR_CASES):
        project = Project(root / f"case{i}")
        project.root.mkdir()
        (project.root / "objectives.py").write_text(OBJECTIVES)
        project.write_spec(project.spec(name="dollar", trial={"command": command}, space=space), "dollar.yaml")
    return subprocess.run([sys.executable, "-m", "tunesmith.cli", "validate",
                           *(f"case{i}/dollar.yaml" for i in range(len(DOLLAR_CASES)))], cwd=root,
                          env={**os.environ, "TUNESMITH_STORAGE": f"sqlite:///{root / 'tunesmith.db'}",
                               "COLUMNS": "200"}, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("case", range(len(DOLLAR_CASES)), ids=[c for c, _ in DOLLAR_CASES])
def test_a_parameter_after_a_dollar_the_shell_expands_is_refused_in_a_new_spec(dollar_validated: Any,
                                                                                case: int) -> None:
    """The walkthrough: `--x ${x}` rendered `$6.0186`, the shell expanded `$6`, the script saw 0.0186 while the
    record said 6.0186, for every trial; it was only a warning. Refused where the '$' is the shell's; a '$' in
    single quotes (awk), escaped or kept apart is meant, and accepted without a word. Checked in the one validate
    over every case (dollar_validated): this case's lines are those naming its spec."""
    command, refused = DOLLAR_CASES[case]
    checked, path = dollar_validated, f"case{case}/dollar.yaml"
    assert "Traceback" not in checked.stdout + checked.stderr, checked.stderr
    assert checked.returncode == 2, "at least one case is refused: the worst code wins"
    valid = [line for line in checked.stdout.splitlines() if line.startswith(f"valid: {path}: ")]
    errors = [line for line in checked.stderr.splitlines() if line.startswith(f"error: {path}: ")]
    said = " ".join(line for line in checked.stderr.splitlines() if line.split(" ", 2)[1:2] == [f"{path}:"])
    if refused is None:
        assert len(valid) == 1 and errors == [] and "follows a '$'" not in said, (checked.stdout, checked.stderr)
        return
    assert valid == [] and len(errors) == 1, (checked.stdout, checked.stderr)
    assert f"trial.command: ${{{refused}}} puts the value of {{{refused}}} after a '$' the shell expands" in said
    assert f"write {{{refused}}} for the value, or ${{{{{refused}}}}} (braces doubled)" in said, said


def test_a_recorded_command_with_a_parameter_after_a_dollar_still_resumes_and_re_tunes(project: Any) -> None:
    """A spec from the store is never refused: the experiment ran with it (recorded before this check)."""
    from tunesmith.runner import prepare
    from tunesmith.spec import spec_from_dict
    from tunesmith.storage.sql import SQLStore

    command = "echo ${x} > x.txt; echo '{{\"loss\": 1}}'"
    plan = prepare(spec_from_dict(project.spec(name="old", trial={"command": command},
                                       budget={"trials": 1}, executor={"kind": "inline"},
                                       base_dir=str(project.root))))
    store = SQLStore(project.storage, create=True)  # recorded as `run` records it; its trial runs on resume
    store.create_experiment("old", plan.spec.to_json(), plan.decision.name, plan.decision.reason, time.time())
    store.close()
    resumed = project.cli("resume", "old", "-q")
    assert resumed.returncode == 0, resumed.stderr
    project.write("rows.csv", "a,b\n1,2\n")
    retuned = project.cli("retune", "old", "--data", "rows.csv", "--trials", "1", "-q")
    assert retuned.returncode == 0 and "Traceback" not in retuned.stderr, retuned.stderr


def test_a_shell_variable_with_doubled_braces_renders_as_the_shells(project: Any) -> None:
    from tunesmith.evaluation.command import check_placeholders

    _prepare_command(project, "echo ${{HOME}} {lr}")
    assert render_command("echo ${{HOME}} {lr}", {"lr": 0.5}, ("lr",), "/t", None, 1, 0) == "echo ${HOME} 0.5"
    # a parameter after '$' is rendered as written (said by validate, not refused): awk's field, a recorded command
    check_placeholders("echo ${lr}", ["lr"])
    assert render_command("echo ${lr}", {"lr": 0.5}, ("lr",), "/t", None, 1, 0) == "echo $0.5"


@pytest.mark.parametrize("command,message", [
    ("python train.py --lr { lr }", r"placeholder \{ lr \} holds spaces; remove the spaces: \{lr\}"),
    ("python train.py --lr {  lr  } --x {x}", r"placeholder \{  lr  \} holds spaces; remove the spaces: \{lr\}"),
    ("python train.py --lr { lr}", r"placeholder \{ lr\} holds spaces; remove the spaces: \{lr\}"),
    ("python train.py --dir { trial_dir }", r"remove the spaces: \{trial_dir\}"),
    ("python train.py --lr {learning rate}", r"placeholder \{learning rate\} holds spaces; write \{learning_rate\}"),
])
def test_a_placeholder_with_spaces_is_refused(project: Any, command: str, message: str) -> None:
    """`{ lr }` passed the check (its content is no name, so it was read as the shell's) and reached the shell
    as written: every trial got the literal text `{ lr }` for its learning rate."""
    from tunesmith.errors import SpecError
    from tunesmith.runner import prepare
    from tunesmith.spec import spec_from_dict

    space = {"lr": {"type": "float", "low": 0.1, "high": 1.0}, "x": {"type": "float", "low": 0.0, "high": 1.0},
             "learning_rate": {"type": "float", "low": 0.1, "high": 1.0}}
    with pytest.raises(SpecError, match=message):
        prepare(spec_from_dict(project.spec(trial={"command": command}, space=space, base_dir=str(project.root))))


@pytest.mark.parametrize("command", ["{ lr; } 2> log", "{ lr\n} 2> log", "{ echo hi; } 2> log"])
def test_a_brace_group_running_a_program_named_like_a_parameter_is_the_shells(project: Any, command: str) -> None:
    _prepare_command(project, f"{command} && python train.py --lr {{lr}}")


def test_a_command_with_shell_braces_runs(project: Any) -> None:
    space = {"x": {"type": "categorical", "choices": [2]}}
    command = ("{ echo 3 > data.txt; echo {x}; } > /dev/null 2> err.txt; "
               "awk '{print \"{{\\\"loss\\\": \" $1 * {x} \"}}\"}' data.txt")
    (trial,) = _run(project, _command_spec(project, command, space, workers=1))
    assert trial["values"] == {"loss": 6.0}


# what braces hold in the shell and in programs, where no placeholder can be: a name has no space, `;` or `$`
SHELL_BRACE_PAIRS = [
    "{ echo hi; } 2> log",              # a brace group
    "{ echo hi;} > out.txt",
    "find . -name '*.tmp' -exec rm {} \\;",   # find's {}
    "awk '{print $1}' data.txt",        # an awk program
    "cp notes.{txt,bak}",               # bash's brace expansion
    "for i in {1..3}; do echo $i; done",
]


@pytest.mark.parametrize("command", SHELL_BRACE_PAIRS)
def test_a_brace_pair_that_holds_no_name_goes_to_the_shell_as_written(project: Any, command: str) -> None:
    """`{ echo hi; } 2> log` was read as a placeholder named ` echo hi; ` and refused ("names no parameter"):
    a brace pair whose content cannot be a name is the shell's, in the check and in rendering."""
    _prepare_command(project, f"{command} && python train.py --lr {{lr}}")
    assert _render(f"{command} --lr {{lr}}", {"lr": 0.5}) == f"{command} --lr 0.5"


def test_a_brace_group_with_no_placeholder_inside_runs(project: Any) -> None:
    space = {"x": {"type": "categorical", "choices": [2]}}
    command = "{ echo 3 > data.txt; echo noise >&2; } 2> err.txt; echo '{{\"loss\": '$(cat data.txt)'}}'; echo {x} > x.txt"
    (trial,) = _run(project, _command_spec(project, command, space, cwd="trial_dir", workers=1))
    assert (trial["state"], trial["values"]) == ("completed", {"loss": 3.0})
    trial_dir = Path(trial["log_path"]).parent
    assert (trial_dir / "err.txt").read_text() == "noise\n"
    assert (trial_dir / "x.txt").read_text() == "2\n"


def test_a_recorded_command_with_a_lone_brace_still_resumes(project: Any) -> None:
    """An experiment recorded before the lone-brace check (its command ran: here the brace is in a comment) must
    stay resumable: the check is for a new spec, never the stored one."""
    from tunesmith.runner import prepare, resume_experiment
    from tunesmith.spec import spec_from_dict
    from tunesmith.storage import SQLStore

    spec = spec_from_dict(project.spec(name="old", trial={"command": "echo ok"}, budget={"trials": 2},
                                       base_dir=str(project.root)))
    plan = prepare(spec)
    assert plan.spec.trial is not None
    old = plan.spec.trial.model_copy(update={"command": "echo '{{\"loss\": {x}}}' # {x"})
    store = SQLStore(project.storage)
    store.create_experiment("old", plan.spec.model_copy(update={"trial": old}).to_json(), "random", "", 0.0)
    result = resume_experiment("old", store)
    assert [t.state.value for t in result.trials] == ["completed", "completed"]
    assert all(t.values == (t.params["x"],) for t in result.trials)
    store.close()


@pytest.mark.parametrize("command,stored,message", [
    # which fault is said when a command has several: a name after '$', then a name of nothing, then spaces, then a
    # lone brace, whatever their places in the command
    ("echo {lrr} ${HOME} { lr } {x", False, r"placeholder \{HOME\} right after '\$'"),
    ("echo {x { lr } {lrr}", False, r"placeholder \{lrr\} names no parameter"),
    ("echo {x { lr }", False, r"placeholder \{ lr \} holds spaces"),
    ("echo x} {lr", False, "a lone '}' at character 7"),
    ("echo {{lr}} {{ {x}} lr}", False, "a lone '}' at character 23"),
    # a recorded command: a name of nothing is still refused, spaces and lone braces are not
    ("echo {x { lr } {lrr}", True, r"placeholder \{lrr\} names no parameter"),
    ("echo {x { lr } x}", True, None),
])
def test_the_first_fault_of_a_command_said_is_the_same_whatever_the_order(command: str, stored: bool,
                                                                           message: str | None) -> None:
    from tunesmith.errors import SpecError
    from tunesmith.evaluation.command import check_placeholders

    if message is None:
        check_placeholders(command, ["lr", "x"], stored=stored)
        return
    with pytest.raises(SpecError, match=message):
        check_placeholders(command, ["lr", "x"], stored=stored)


PRUNED_PROGRAM = """
import json, signal, sys, time
def saved(*_):
    time.sleep(0.5)  # a checkpoint that takes a while
    open("saved-on-sigterm", "w").write("yes")
    sys.exit(0)
signal.signal(signal.SIGTERM, saved)
for step in range(1, 101):
    print(json.dumps({"step": step, "loss": 1.0 / step}), flush=True)
    time.sleep(0.02)
print(json.dumps({"loss": 0.01}), flush=True)
"""


def test_a_pruned_command_is_stopped_with_the_program_the_shell_runs_not_the_shell_alone(tmp_path: Path) -> None:
    """`cd . && python train.py`: the shell ran python as its child, and the prune's SIGTERM went to the shell
    alone; the program ran all its steps (its result in the log) and was then stopped as a 'background process'
    1 s after, its SIGTERM handler cut short by SIGKILL 1 s later, and the trial still counted as pruned."""
    from tunesmith.evaluation.command import run_command

    (tmp_path / "train.py").write_text(PRUNED_PROGRAM)
    reports: list[Any] = []
    notes: list[str] = []
    started = time.monotonic()
    with open(tmp_path / "trial.log", "w") as log:
        result, failure, pruned = run_command(f"cd . && {shlex.quote(sys.executable)} train.py", str(tmp_path),
                                              dict(os.environ), log, ("loss",), reports.append,
                                              lambda: len(reports) >= 3, on_note=notes.append)
    seconds = time.monotonic() - started
    log_text = (tmp_path / "trial.log").read_text()
    assert pruned and failure is None, (pruned, failure)
    assert (tmp_path / "saved-on-sigterm").exists(), "the program got the SIGTERM and its grace to save"
    assert '"step": 100' not in log_text and '{"loss": 0.01}' not in log_text, log_text[-300:]
    assert notes == [], "the program is the command's own, not a background process it left"
    assert seconds < 3.5, seconds
