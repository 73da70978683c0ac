"""executor.max_concurrent: at most N trials of an experiment run at once, whatever the workers."""

from __future__ import annotations

import pytest

import tunesmith
from tunesmith.errors import SpecError
from tunesmith.records import TrialState
from tunesmith.spec.loader import spec_from_dict

NAPS = """
import time

def nap(config, trial):
    time.sleep(0.3)
    return config["x"]
"""


def _most_at_once(trials) -> int:
    edges = sorted([(t.started_at, 1) for t in trials] + [(t.finished_at, -1) for t in trials])
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


def test_max_concurrent_caps_running_trials_below_the_workers(project):
    project.write("naps.py", NAPS)
    spec = project.spec(name="capped", trial={"function": "naps:nap"}, budget={"trials": 8},
                        executor={"kind": "process", "workers": 3, "max_concurrent": 2})
    result = tunesmith.run(spec, storage=project.storage)
    assert all(t.state is TrialState.COMPLETED for t in result.trials)
    assert _most_at_once(result.trials) == 2


def test_without_a_cap_the_workers_fill(project):
    project.write("naps.py", NAPS)
    spec = project.spec(name="uncapped", trial={"function": "naps:nap"}, budget={"trials": 6},
                        executor={"kind": "process", "workers": 3})
    assert _most_at_once(tunesmith.run(spec, storage=project.storage).trials) == 3


def test_max_concurrent_is_validated(project):
    with pytest.raises(SpecError, match=r"executor.max_concurrent"):
        spec_from_dict(project.spec(executor={"max_concurrent": 0}))
