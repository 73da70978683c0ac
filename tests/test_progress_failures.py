"""The live display of a run where many trials fail: the first failures in full, then one line, then a summary by
reason at the end (one line a failure flooded the terminal: 394 of them above an 800-trial run's bar)."""

from __future__ import annotations

import io

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
