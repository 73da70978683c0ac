"""Set-up shared by the promotion tests (test_promotion.py, test_promotion_files_gone.py, test_delete_champion.py):
a task experiment's spec, and tuned experiments whose runs are tracked live into a real MLflow database, by
MLflow's writer running in this process.

A tracked run hands its records to a writer process of its own (tunesmith.tracking.tracker_process), which imports
MLflow: about 2-3 CPU-seconds per run, paid again by every experiment a test tunes as its set-up. Inside
:func:`tracking_in_process`, the run's listener gets the very tracker that process runs (``MlflowTracker``, same
URI, same experiment, same writes) in this process instead, where MLflow is imported already. The writer process
itself is tested where it is the subject (tests/test_tracking.py: a run tracked live; MLflow down).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import tunesmith
from tunesmith.storage.sql import SQLStore

# a task experiment tuned in seconds: bundled data, two grid points of C, a weak one (0.0003) and a good one
WINE_TASK: dict[str, Any] = {
    "name": "wine",
    "objective": {"metric": "accuracy", "direction": "maximize"},
    "task": {
        "estimator": {"sklearn.linear_model.LogisticRegression": {"max_iter": 2000}},
        "pipeline": ["sklearn.preprocessing.StandardScaler"],
        "data": {"sklearn": "wine"},
        "cv": {"kind": "stratified", "folds": 3},
        "holdout": {"fraction": 0.3},
        "scoring": "accuracy",
    },
    "space": {"logisticregression__C": {"type": "categorical", "choices": [0.0003, 1.0]}},
    "strategy": "grid",
    "budget": {"trials": 2},
    "executor": {"kind": "inline"},
    "seed": 0,
    "tags": {"owner": "ml-platform"},
}

FUNCTION_TRIALS = '''
import os

def with_model(config, trial):
    folder = os.path.join(str(trial.workdir), "my-model")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "weights.json"), "w") as f:
        f.write('{"x": %r}' % config["x"])
    trial.save_model(folder)
    return (config["x"] - 0.3) ** 2

def without_model(config, trial):
    return (config["x"] - 0.3) ** 2
'''


@contextmanager
def tracking_in_process() -> Iterator[None]:
    """Runs started inside are tracked live by ``MlflowTracker`` in this process, not in its writer process."""
    from unittest import mock

    from tunesmith.tracking import tracker_process
    from tunesmith.tracking.mlflow_tracker import MlflowTracker

    with mock.patch.object(tracker_process, "TrackerProcess", MlflowTracker):  # (uri, experiment name, field): the same
        yield


def run_tracked(spec: Any, storage: str) -> Any:
    """``tunesmith.run(spec, storage=storage)`` tracked live (:func:`tracking_in_process`); the tracking must have
    written everything (no ``tracking_failed`` event), as the writer process would have."""
    with tracking_in_process():
        result = tunesmith.run(spec, storage=storage)
    store = SQLStore(storage, create=False)
    try:
        failed = [e.payload for e in store.events(result.experiment.id) if e.kind == "tracking_failed"]
    finally:
        store.close()
    assert not failed, failed
    return result


def tuned_with_models(project: Any, name: str, mlflow_uri: str, trials: int, storage: str | None = None,
                      **spec: object) -> SQLStore:
    """An experiment of function trials that hand over a model (FUNCTION_TRIALS' with_model), tracked in MLflow at
    ``mlflow_uri``, run to the end; its store, opened."""
    project.write("fmodels.py", FUNCTION_TRIALS)
    storage = storage or project.storage
    full = project.spec(name, trial={"function": "fmodels:with_model"}, executor={"kind": "inline"},
                        budget={"trials": trials}, tracking={"mlflow": {"uri": mlflow_uri}}, **spec)
    assert run_tracked(project.write_spec(full), storage).status.value == "completed"
    return SQLStore(storage, create=False)
