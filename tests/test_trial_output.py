"""An inline trial's output: its own thread's prints, warnings and log records go to its trial.log, other threads'
to the process's streams, and a breakpoint() in it talks to the user, not to the log."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import tunesmith


def _chatty(tag: str, together: threading.Barrier) -> Callable[[dict[str, Any], Any], float]:
    """A trial function that writes its tag on stdout, stderr and through logging, while the other run's trial writes
    too. (Its warnings go to stderr as well, but pytest records warnings, so the subprocess below has those.)"""

    def objective(config: dict[str, Any], trial: Any) -> float:
        together.wait(timeout=60)  # both runs' trials (and the test's own thread) write at the same time
        handler = logging.StreamHandler()  # sys.stderr as the trial sees it
        log = logging.getLogger(f"chatty-{tag}")
        log.addHandler(handler)
        try:
            for i in range(5):
                print(f"{tag}-stdout-{trial.number}-{i}")
                print(f"{tag}-stderr-{trial.number}-{i}", file=sys.stderr)
                log.warning(f"{tag}-logging-{trial.number}-{i}")
                time.sleep(0.01)
        finally:
            log.removeHandler(handler)
        return config["x"]

    return objective


def test_two_inline_runs_in_threads_each_log_only_their_own_output_and_the_streams_come_back(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """contextlib.redirect_stdout/stderr swapped the process's streams: thread A saved the real stdout and set its
    log, B saved A's log and set its own, A put the real one back, then B "restored" A's log, closed by then. Every
    later print raised "I/O operation on closed file", and meanwhile each run's output (and the test's own thread's)
    went into the other's logs."""
    streams = sys.stdout, sys.stderr, sys.breakpointhook
    together = threading.Barrier(3)
    results: dict[str, Any] = {}
    errors: list[BaseException] = []

    def run(tag: str) -> None:
        try:
            results[tag] = tunesmith.run(
                {"name": f"chatty-{tag}", "objective": {"metric": "loss", "direction": "minimize"},
                 "space": {"x": {"type": "float", "low": 0, "high": 1}}, "trial": _chatty(tag, together),
                 "budget": {"trials": 3}, "executor": {"kind": "inline"}, "seed": 0, "workdir": str(tmp_path / tag)},
                storage=f"sqlite:///{tmp_path / tag}.db")
        except BaseException as e:  # noqa: BLE001 - told by the test's own thread
            errors.append(e)
            together.abort()

    threads = [threading.Thread(target=run, args=(tag,)) for tag in ("A", "B")]
    for thread in threads:
        thread.start()
    for number in range(3):  # the test's own thread writes while each pair of trials does
        together.wait(timeout=60)
        print(f"main-stdout-{number}")
        print(f"main-stderr-{number}", file=sys.stderr)
    for thread in threads:
        thread.join(timeout=120)
    left = sys.stdout, sys.stderr, sys.breakpointhook
    sys.stdout, sys.stderr, sys.breakpointhook = streams  # the tests after this one print, whatever happened here
    assert left == streams, "the process's streams were not given back"
    assert not errors, errors
    for tag, other in (("A", "B"), ("B", "A")):
        trials = results[tag].trials
        assert [t.state.value for t in trials] == ["completed"] * 3, tag
        for t in trials:
            text = Path(str(t.log_path)).read_text()
            for i in range(5):
                for kind in ("stdout", "stderr", "logging"):
                    assert f"{tag}-{kind}-{t.number}-{i}\n" in text, (tag, kind, text)
            assert f"{other}-" not in text and "main-" not in text, text
    said = capsys.readouterr()
    assert all(f"main-stdout-{n}" in said.out and f"main-stderr-{n}" in said.err for n in range(3)), said
    assert "-stdout-" not in said.out.replace("main-stdout-", ""), said.out


def test_cross_val_score_of_a_search_on_joblib_threads_gives_the_streams_back() -> None:
    """The walk's case: two TunedSearchCV fits at once under joblib's threading backend left sys.stdout and
    sys.stderr on a closed trial.log of a deleted temporary folder."""
    from joblib import parallel_backend
    from scipy.stats import loguniform
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    from tunesmith.sklearn import TunedSearchCV

    X, y = load_iris(return_X_y=True)
    streams = sys.stdout, sys.stderr
    try:
        with parallel_backend("threading", n_jobs=2):
            scores = cross_val_score(TunedSearchCV(LogisticRegression(max_iter=300), {"C": loguniform(1e-2, 1e2)},
                                                   n_iter=4, cv=3, random_state=0), X, y, cv=4)
    finally:
        left = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = streams
    assert left == streams, left
    assert len(scores) == 4 and min(scores) > 0.8, scores


BREAKPOINT_SCRIPT = """
    import sys
    import warnings

    import tunesmith

    def objective(config, trial):
        answer = 6 * 7
        print("before the breakpoint")
        breakpoint(header="stopped in the trial")
        print("after the breakpoint")
        warnings.warn("a trial's own warning")
        return config["x"]

    if __name__ == "__main__":
        result = tunesmith.run({"name": "bp", "objective": {"metric": "loss", "direction": "minimize"},
                                "space": {"x": {"type": "float", "low": 0, "high": 1}}, "trial": objective,
                                "budget": {"trials": 1}, "executor": {"kind": "inline"}, "seed": 0})
        print("run", result.status.value, file=sys.stderr)
        print("log", result.trials[0].log_path, file=sys.stderr)
"""


def _run_breakpoint_script(folder: Path, stdin: str, **env: str) -> tuple[subprocess.CompletedProcess[str], str]:
    (folder / "bp.py").write_text(textwrap.dedent(BREAKPOINT_SCRIPT), encoding="utf-8")
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONBREAKPOINT"} | env
    done = subprocess.run([sys.executable, "bp.py"], cwd=folder, input=stdin, capture_output=True, text=True,
                          timeout=120, env=environ)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert "run completed" in lines, done.stderr
    log = next(line.removeprefix("log ") for line in lines if line.startswith("log "))
    return done, Path(log).read_text()


def test_a_breakpoint_in_an_inline_trial_talks_on_the_process_streams_not_into_the_log(tmp_path: Path) -> None:
    """README: inline is "for debugging with a debugger or breakpoints", but pdb's prompt and answers went into
    trial.log while pdb read the real stdin: the user saw a hung run."""
    done, log = _run_breakpoint_script(tmp_path, "p answer\nc\n")
    assert "stopped in the trial\n" in done.stdout, done.stdout
    assert "(Pdb)" in done.stdout and "42" in done.stdout.split("(Pdb)")[1], done.stdout
    # (pdb's answer is a line of its own: the log's warning line names bp.py's path, whose pytest-N may hold a 42)
    assert "(Pdb)" not in log and "42" not in log.splitlines() and "stopped in" not in log, log
    assert "before the breakpoint" in log and "after the breakpoint" in log, log
    assert "UserWarning: a trial's own warning" in log and "warning" not in done.stderr, log


def test_pythonbreakpoint_set_by_the_user_is_obeyed_in_an_inline_trial(tmp_path: Path) -> None:
    done, log = _run_breakpoint_script(tmp_path, "", PYTHONBREAKPOINT="0")
    assert "(Pdb)" not in done.stdout + done.stderr + log, done.stdout
    assert "after the breakpoint" in log, log


def test_a_search_started_while_another_threads_trial_runs_prints_its_verbose_lines_on_its_own_stdout(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """fit() keeps sys.stdout for its verbose lines, which its trials print: kept while another thread's inline
    trial ran, that was the stream that writes to the calling thread's trial log, so they went into the logs."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from tunesmith.sklearn import TunedSearchCV

    running, release = threading.Event(), threading.Event()

    def waits(config: dict[str, Any], trial: Any) -> float:
        running.set()
        release.wait(timeout=60)
        return config["x"]

    def run() -> None:
        tunesmith.run({"name": "waits", "objective": {"metric": "loss", "direction": "minimize"},
                       "space": {"x": {"type": "float", "low": 0, "high": 1}}, "trial": waits,
                       "budget": {"trials": 1}, "executor": {"kind": "inline"}, "workdir": str(tmp_path)},
                      storage=f"sqlite:///{tmp_path / 'waits.db'}")

    other = threading.Thread(target=run)
    other.start()
    try:
        assert running.wait(timeout=60)
        X, y = load_iris(return_X_y=True)
        TunedSearchCV(LogisticRegression(max_iter=300), {"C": [0.1, 1.0]}, cv=2, verbose=2).fit(X, y)
    finally:
        release.set()
        other.join(timeout=60)
    out = capsys.readouterr().out
    assert "Fitting 2 folds for each of 2 candidates" in out, out
    assert out.count("] END {'C': ") == 2, out


def test_a_breakpoint_hook_set_before_the_run_an_ides_debugger_is_the_one_an_inline_trial_calls(tmp_path: Path) -> None:
    """An IDE's debugger (pydevd, debugpy) sets sys.breakpointhook to stop in the IDE: it is obeyed, not replaced
    by a pdb on the terminal; and it is the hook again after the run."""
    called: list[str] = []

    def ides_hook(*args: Any, **kwargs: Any) -> None:
        called.append(sys._getframe(1).f_code.co_name)

    def stops(config: dict[str, Any], trial: Any) -> float:
        breakpoint()
        return config["x"]

    before = sys.breakpointhook
    sys.breakpointhook = ides_hook
    try:
        result = tunesmith.run({"name": "ide", "objective": {"metric": "loss", "direction": "minimize"},
                                "space": {"x": {"type": "float", "low": 0, "high": 1}}, "trial": stops,
                                "budget": {"trials": 2}, "executor": {"kind": "inline"}, "workdir": str(tmp_path)},
                               storage=f"sqlite:///{tmp_path / 'ide.db'}")
        after = sys.breakpointhook
    finally:
        sys.breakpointhook = before
    assert [t.state.value for t in result.trials] == ["completed", "completed"]
    assert called == ["stops", "stops"] and after is ides_hook, (called, after)


WITHOUT_STREAMS = '''
import json, os, sys, threading, warnings
import tunesmith

wd, out = sys.argv[1], sys.argv[2]
seen = {"no streams": sys.stdout is None and sys.stderr is None}
inside, done = threading.Event(), threading.Event()

def objective(config, trial):
    inside.set()
    done.wait(60)
    print("from the trial")
    return config["x"]

def elsewhere():  # another thread of the process (a heartbeat, a timer) prints and warns while the trial runs
    inside.wait(60)
    try:
        print("from another thread")
        warnings.warn("from another thread")
        seen["elsewhere"] = "wrote nothing, raised nothing"
    except Exception as e:
        seen["elsewhere"] = repr(e)
    finally:
        done.set()

other = threading.Thread(target=elsewhere)
other.start()
run = tunesmith.run({"name": "nostreams", "objective": {"metric": "loss", "direction": "minimize"},
                     "space": {"x": {"type": "float", "low": 0, "high": 1}}, "trial": objective,
                     "budget": {"trials": 1}, "executor": {"kind": "inline"}, "seed": 0, "workdir": wd},
                    storage="sqlite:///" + os.path.join(wd, "s.db"))
other.join()
seen["states"] = [t.state.value for t in run.trials]
with open(out, "w") as f:
    json.dump(seen, f)
'''


def test_a_process_without_stdout_and_stderr_prints_nothing_from_other_threads_while_an_inline_trial_runs(
        tmp_path: Path) -> None:
    """Review B L2: with no sys.stdout/sys.stderr (pythonw, a daemon started with fds 1 and 2 closed), print and
    warnings write nothing; while an inline trial ran, the proxies in their place raised AttributeError ('NoneType'
    object has no attribute 'write') in every other thread that printed or warned. The trial's own output still
    goes to its log."""
    script, out = tmp_path / "nostreams.py", tmp_path / "seen.json"
    script.write_text(WITHOUT_STREAMS)

    def close_output() -> None:  # in the child, before it execs Python: it starts with sys.stdout None
        os.close(1)
        os.close(2)

    subprocess.run([sys.executable, str(script), str(tmp_path), str(out)], stdin=subprocess.DEVNULL,
                   preexec_fn=close_output, timeout=120, check=True)
    seen = json.loads(out.read_text())
    assert seen == {"no streams": True, "elsewhere": "wrote nothing, raised nothing", "states": ["completed"]}, seen
    assert "from the trial" in (tmp_path / "trial-00000" / "trial.log").read_text()
