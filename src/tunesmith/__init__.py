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
from typing import TYPE_CHECKING, Any

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


if TYPE_CHECKING:
    # What a type checker sees: the names themselves, each from the module _EXPORTS names (a test holds the two
    # alike). A module __getattr__ typed Any would make every name Any to it, a misspelt one too.
    from tunesmith.api import (ExperimentResult as ExperimentResult, open_experiment as open_experiment,
                               reproduce_trial as reproduce_trial, resume as resume, run as run)
    from tunesmith.errors import (ClusterLost as ClusterLost, ExperimentExists as ExperimentExists,
                                  ExperimentNotFound as ExperimentNotFound, SpaceError as SpaceError,
                                  SpecError as SpecError, StorageError as StorageError,
                                  StoreUnavailable as StoreUnavailable, TrialError as TrialError,
                                  TunesmithError as TunesmithError)
    from tunesmith.evaluation.context import TrialContext as TrialContext, TrialPruned as TrialPruned
    from tunesmith.records import (Direction as Direction, FailureKind as FailureKind, TrialRecord as TrialRecord,
                                   TrialState as TrialState)
    from tunesmith.space.domains import Categorical as Categorical, Float as Float, Int as Int
    from tunesmith.space.search_space import SearchSpace as SearchSpace
    from tunesmith.spec.loader import load_spec as load_spec
    from tunesmith.spec.model import (Budget as Budget, Executor as Executor, ExperimentSpec as ExperimentSpec,
                                      Objective as Objective)
else:
    def __getattr__(name: str) -> Any:  # at run time: each module loads when one of its names is first used
        if name in _EXPORTS:
            return getattr(importlib.import_module(_EXPORTS[name]), name)
        raise AttributeError(f"module 'tunesmith' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
