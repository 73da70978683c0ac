"""tunesmith: production hyperparameter tuning.

The public Python API::

    import tunesmith
    spec = tunesmith.ExperimentSpec(
        name="svc-wine",
        objective={"metric": "accuracy", "direction": "maximize"},
        space={"C": tunesmith.Float(1e-3, 1e3, log=True), "kernel": tunesmith.Categorical(["rbf", "linear"])},
        trial=objective,                      # def objective(config, trial) -> float | dict
        budget={"trials": 30},
    )
    result = tunesmith.run(spec)              # or tunesmith.load_spec("spec.yaml")
    result.best.params

Names are imported lazily, so ``import tunesmith.executor.worker`` (a trial worker) stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "ExperimentSpec": "tunesmith.spec.model",
    "Objective": "tunesmith.spec.model",
    "Budget": "tunesmith.spec.model",
    "Executor": "tunesmith.spec.model",
    "load_spec": "tunesmith.spec.loader",
    "Float": "tunesmith.space.domains",
    "Int": "tunesmith.space.domains",
    "Categorical": "tunesmith.space.domains",
    "SearchSpace": "tunesmith.space.search_space",
    "TrialContext": "tunesmith.evaluation.context",
    "TrialPruned": "tunesmith.evaluation.context",
    "TrialRecord": "tunesmith.records",
    "TrialState": "tunesmith.records",
    "Direction": "tunesmith.records",
    "FailureKind": "tunesmith.records",
    "run": "tunesmith.api",
    "resume": "tunesmith.api",
    "reproduce_trial": "tunesmith.api",
    "open_experiment": "tunesmith.api",
    "ExperimentResult": "tunesmith.api",
    "TunesmithError": "tunesmith.errors",
    "SpecError": "tunesmith.errors",
    "SpaceError": "tunesmith.errors",
    "ExperimentExists": "tunesmith.errors",
    "ExperimentNotFound": "tunesmith.errors",
    "StorageError": "tunesmith.errors",
    "StoreUnavailable": "tunesmith.errors",
    "ClusterLost": "tunesmith.errors",
    "TrialError": "tunesmith.errors",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'tunesmith' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
