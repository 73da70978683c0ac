"""One adapter file per library. Each exposes ``make(space, seed, budget, batch) -> Session``.

A session proposes configurations with ``ask() -> (handle, params) | None`` and learns with
``tell(handle, loss)``. ``params`` holds the active parameters only (a conditional space's inactive ones are
dropped), with tunesmith's value types (int for Int, the choice object itself for Categorical). In the batch
regime ``ask`` is called ``batch`` times before the first ``tell``: the optimizer sees pending proposals the way
parallel workers would make it see them.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from tunesmith.space import SearchSpace


class Session(Protocol):
    def ask(self) -> tuple[Any, dict[str, Any]] | None: ...

    def tell(self, handle: Any, loss: float) -> None: ...


@dataclass(frozen=True)
class Optimizer:
    id: str
    label: str
    module: str                    # adapter module in this package
    options: dict[str, Any]
    needs: tuple[str, ...] = ()    # importable modules it needs
    tunesmith: bool = False

    def missing(self) -> str | None:
        """Why it cannot run here, or None."""
        for mod in self.needs:
            if importlib.util.find_spec(mod) is None:
                return f"`{mod}` is not installed"
        return None

    def make(self, space: SearchSpace, seed: int, budget: int, batch: int, trial_seconds: float | None = None) -> Session:
        """``trial_seconds``: the nominal duration of one evaluation (None: real time), told to tunesmith only."""
        factory: Callable[..., Session] = importlib.import_module(f"{__name__}.{self.module}").make
        extra = {"trial_seconds": trial_seconds} if self.tunesmith else {}
        return factory(space, seed, budget, batch, **self.options, **extra)


TUNESMITH_STRATEGIES = ("auto", "bo", "tpe", "gp", "cmaes", "qmc", "random", "nsga2", "grid")

OPTIMIZERS: dict[str, Optimizer] = {
    **{f"ts-{s}": Optimizer(f"ts-{s}", f"tunesmith {s}", "tunesmith_", {"strategy": s},
                            ("torch",) if s == "gp" else (), tunesmith=True) for s in TUNESMITH_STRATEGIES},
    "optuna-tpe": Optimizer("optuna-tpe", "Optuna TPESampler (default)", "optuna_", {"sampler": "tpe"}),
    "optuna-gp": Optimizer("optuna-gp", "Optuna GPSampler", "optuna_", {"sampler": "gp"}, ("torch",)),
    "nevergrad-ngopt": Optimizer("nevergrad-ngopt", "Nevergrad NGOpt", "nevergrad_", {}, ("nevergrad",)),
    "hyperopt-tpe": Optimizer("hyperopt-tpe", "Hyperopt TPE", "hyperopt_", {}, ("hyperopt",)),
    "skopt-gp": Optimizer("skopt-gp", "scikit-optimize gp_minimize (acq_optimizer auto)", "skopt_", {}, ("skopt",)),
    "smac-hpo": Optimizer("smac-hpo", "SMAC3 HPO facade", "smac_", {}, ("smac",)),
    "random": Optimizer("random", "random search (uniform, numpy)", "random_", {}),
}
