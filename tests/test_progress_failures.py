"""The live display of a run where many trials fail: the first failures in full, then one line, then a summary by
reason at the end (one line a failure flooded the terminal: 394 of them above an 800-trial run's bar)."""

from __future__ import annotations

import io
import re

from rich.console import Console

from tunesmith import api
from tunesmith.console import FAILURE_LINES, ProgressDisplay

# Trial 0, 4, 8, ... complete (a success first: fail fast stays out of it). The others fail five ways: a KeyError, a
# ValueError quoting a value that differs from trial to trial (one way all the same), and three other exceptions.
MANY_FAIL = """
def objective(config, trial):
    if trial.number % 4 == 0:
        return config["x"]
    if trial.number % 4 == 1:
        raise KeyError("lr")
    if trial.number % 4 == 2:
        raise ValueError(f"bad x={config['x']}")
    raise (TypeError, RuntimeError, OSError)[trial.number % 3]("other")
"""


def test_after_the_first_failures_the_rest_are_counted_and_summed_up_by_reason(project):
    project.write("many_fail.py", MANY_FAIL)
    shown = io.StringIO()
    display = ProgressDisplay(Console(file=shown, width=300), Console(file=io.StringIO()))
    spec = project.spec("flood", trial={"function": "many_fail:objective"}, executor={"kind": "inline"},
                        budget={"trials": 40})
    api.run(spec, storage=project.storage, listener=display)
    lines = shown.getvalue().splitlines()

    failed = [line for line in lines if " failed: " in line and line.lstrip().startswith("trial ")]
    assert len(failed) == FAILURE_LINES == 10, lines
    held = [line for line in lines if "further failures" in line]
    assert held == ["  further failures are counted on the progress line; `tunesmith trials flood --state failed` "
                    "lists them"], lines
    i = lines.index("30 trials failed in this run, by reason:")
    assert lines[i + 1] == "  10 like trial 1: exception: KeyError: 'lr' (at many_fail.py:6 in objective)"
    assert lines[i + 2].startswith("  10 like trial 2: exception: ValueError: bad x=")
    assert lines[i + 2].endswith(" (at many_fail.py:8 in objective)")
    assert lines[i + 3] == "  4 like trial 3: exception: TypeError: other (at many_fail.py:9 in objective)"
    assert lines[i + 4] == "  6 more, 2 other way(s): `tunesmith trials flood --state failed` lists them"


def test_memory_failures_that_differ_only_in_the_memory_used_are_one_way():
    """A reason with no signature (a memory failure, a timeout) is grouped with the values it quotes left out: each
    trial killed for memory names its own use."""
    from tunesmith.console import FailureTally
    from tunesmith.records import FailureKind, TrialRecord, TrialState

    tally = FailureTally()
    for number, used in enumerate(("310.2", "355.0", "301.7")):
        tally.add(TrialRecord(number, TrialState.FAILED, {}, 0, failure_kind=FailureKind.MEMORY,
                              error=f"memory: memory use {used} MiB exceeded memory_limit 300.0 MiB; killed"))
    assert tally.summary("big") == ["3 trials failed in this run, by reason:",
                                    "  3 like trial 0: memory: memory use 310.2 MiB exceeded memory_limit 300.0 MiB; "
                                    "killed"]


def test_without_a_display_the_python_api_says_the_failures_and_why_the_run_stopped_on_stderr(project, capfd):
    """`tunesmith.run(spec)` (progress=False, the default) printed nothing of failed trials: a notebook whose every
    trial failed saw no line, and then result.best.params raised AttributeError on None. It says on stderr, as it
    says the run's warnings, what `tunesmith run` shows of them: the first in full, then a summary by reason, and
    the line that says why the run stopped."""
    project.write("many_fail.py", MANY_FAIL)
    spec = project.spec("flood", trial={"function": "many_fail:objective"}, executor={"kind": "inline"},
                        budget={"trials": 40})
    api.run(spec, storage=project.storage)
    out, err = capfd.readouterr()
    lines = err.splitlines()
    assert out == "", out
    assert [line.split(":")[0] for line in lines[:FAILURE_LINES]] == [
        f"trial {n} failed" for n in range(1, 14) if n % 4], lines
    assert lines[0] == "trial 1 failed: exception: KeyError: 'lr' (at many_fail.py:6 in objective)", lines
    assert lines[FAILURE_LINES] == ("further failures are summed up when the run ends; `tunesmith trials flood "
                                    "--state failed` lists them"), lines
    assert lines[FAILURE_LINES + 1:FAILURE_LINES + 3] == [
        "30 trials failed in this run, by reason:",
        "  10 like trial 1: exception: KeyError: 'lr' (at many_fail.py:6 in objective)"], lines
    assert lines[-1] == "Stopped: trial budget of 40 reached.", lines
    assert len(lines) == FAILURE_LINES + 7, lines


def test_a_python_api_run_whose_every_trial_fails_says_why_it_stopped(project, capfd):
    project.write("bad.py", "def bad(config, trial):\n    return 1 / 0\n")
    spec = project.spec("all-bad", trial={"function": "bad:bad"}, executor={"kind": "inline"}, budget={"trials": 10})
    result = api.run(spec, storage=project.storage)
    out, err = capfd.readouterr()
    assert (result.status.value, result.best, out) == ("failed", None, ""), out
    failed = "exception: ZeroDivisionError: division by zero (at bad.py:2 in bad)"
    assert err.splitlines() == [*(f"trial {n} failed: {failed}" for n in range(5)),
                                f"Stopped: {result.stop_reason}."], err
    assert failed in (result.stop_reason or "")


def test_a_python_api_run_says_nothing_without_failures_or_to_a_listener_of_its_own(project, capfd):
    """Quiet stays quiet where nothing failed; a listener given (TunedSearchCV's, which says failed fits as
    scikit-learn does) is told every trial, and the run prints nothing of its own."""
    from tunesmith.events import RunListener

    project.write("bad.py", "def bad(config, trial):\n    return 1 / 0\n")
    api.run(project.spec("fine", executor={"kind": "inline"}), storage=project.storage)
    told: list[str] = []

    class Told(RunListener):
        def trial_finished(self, trial, best) -> None:  # type: ignore[no-untyped-def]
            told.append(trial.state.value)

    api.run(project.spec("bad-told", trial={"function": "bad:bad"}, executor={"kind": "inline"}),
            storage=project.storage, listener=Told())
    assert capfd.readouterr() == ("", "")
    assert told == ["failed"] * 5


def test_in_a_jupyter_kernel_without_ipywidgets_progress_is_a_few_plain_lines_and_no_warning(project, monkeypatch):
    """`progress=True` in a kernel without ipywidgets: Rich's live display warned 'install "ipywidgets" for Jupyter
    support' at every refresh (about one a trial, each an output kept in the .ipynb) and drew no bar; 'further
    failures are counted on the progress line' named a line that was not there. Now a plain line at every tenth of
    the run, no warning, and the failures beyond the first ones summed up at the end."""
    import sys
    import warnings

    import rich.jupyter

    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # not installed, whatever this environment has
    shown: list[str] = []  # what a notebook cell gets: one output for each print
    monkeypatch.setattr(rich.jupyter, "display", lambda segments, text: shown.append(text))
    project.write("many_fail.py", MANY_FAIL)
    display = ProgressDisplay(Console(force_jupyter=True, width=300), Console(file=io.StringIO()))
    spec = project.spec("nb-flood", trial={"function": "many_fail:objective"}, executor={"kind": "inline"},
                        budget={"trials": 40, "max_failure_rate": 1.0})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        api.run(spec, storage=project.storage, listener=display)
    assert [str(w.message) for w in caught] == []
    lines = re.sub(r"\x1b\[[0-9;]*m", "", "".join(shown)).splitlines()  # (the text form keeps the colours)
    progress = [re.sub(r"best \S+ \(#\d+\)", "best B", line) for line in lines if line.startswith("trials ")]
    assert progress == [f"trials {n}/40: failed {n - n // 4}, best B" for n in range(4, 41, 4)], lines
    held = [line for line in lines if "further failures" in line]
    assert held == ["  further failures are summed up when the run ends; `tunesmith trials nb-flood --state failed` "
                    "lists them"], lines
    assert any(line.startswith("30 trials failed in this run, by reason:") for line in lines), lines
    assert len(shown) < 40, "an output for each trial"
