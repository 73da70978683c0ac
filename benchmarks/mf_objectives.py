"""Objectives with real learning curves for ``benchmarks/multifidelity.py``: nobody tabulated these by hand.

Both train on scikit-learn's bundled ``digits`` data (1797 8x8 images, 10 classes; no download), split once
75/25, stratified, with a fixed seed, and report the validation accuracy after every *step*:

- ``sgd``: a linear ``SGDClassifier`` on standardised pixels, one ``partial_fit`` epoch per step, 27 steps.
- ``hgb``: a ``HistGradientBoostingClassifier`` grown with ``warm_start``, ``ITERS_PER_STEP`` boosting iterations
  (10 trees each, one per class) per step, 27 steps.

Every model's seed is fixed, so a configuration's curve is a function of its parameters alone: the same
configuration gives the same curve in tunesmith and in Optuna, and the libraries differ only in what they stop.

Each objective is written once against a tiny reporter interface (``report(step, value) -> bool``: True when the
trial should stop), with one adapter per library: ``sgd``/``hgb`` take tunesmith's ``(config, trial)``,
``optuna_objective(name)`` returns an Optuna objective. This module is importable by tunesmith's worker processes
(``base_dir`` is this folder). ``multifidelity.py`` limits BLAS and OpenMP to one thread per process (through
the environment, which tunesmith's workers inherit) so that two workers share two cores alike in both libraries.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np

MAX_STEP = 27
ITERS_PER_STEP = 1

# The search spaces, in tunesmith's spec shape; Optuna's objectives suggest the same domains.
SPACES: dict[str, dict[str, dict[str, Any]]] = {
    "sgd": {
        "loss": {"type": "categorical", "choices": ["hinge", "log_loss", "modified_huber"]},
        "alpha": {"type": "float", "low": 1e-7, "high": 1e-1, "log": True},
        "learning_rate": {"type": "categorical", "choices": ["optimal", "constant", "invscaling"]},
        "eta0": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
    },
    "hgb": {
        "learning_rate": {"type": "float", "low": 0.005, "high": 0.5, "log": True},
        "max_leaf_nodes": {"type": "int", "low": 4, "high": 32, "log": True},
        "min_samples_leaf": {"type": "int", "low": 2, "high": 64, "log": True},
        "l2_regularization": {"type": "float", "low": 1e-6, "high": 10.0, "log": True},
    },
}

Report = Callable[[int, float], bool]


@cache
def _data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    return X_train, X_val, y_train, y_val


def train_sgd(params: dict[str, Any], report: Report) -> float:
    from sklearn.linear_model import SGDClassifier
    from sklearn.preprocessing import StandardScaler
    X_train, X_val, y_train, y_val = _data()
    scaler = StandardScaler().fit(X_train)
    X_train, X_val = scaler.transform(X_train), scaler.transform(X_val)
    classes = np.unique(y_train)
    model = SGDClassifier(loss=params["loss"], alpha=params["alpha"], learning_rate=params["learning_rate"],
                          eta0=params["eta0"], random_state=0)
    order = np.random.default_rng(0)
    score = 0.0
    for epoch in range(1, MAX_STEP + 1):
        idx = order.permutation(len(y_train))  # a fixed shuffle per epoch: the same curve every time
        model.partial_fit(X_train[idx], y_train[idx], classes=classes)
        score = float(model.score(X_val, y_val))
        if report(epoch, score):
            break
    return score


def train_hgb(params: dict[str, Any], report: Report) -> float:
    from sklearn.ensemble import HistGradientBoostingClassifier

    X_train, X_val, y_train, y_val = _data()
    model = HistGradientBoostingClassifier(
        learning_rate=params["learning_rate"], max_leaf_nodes=params["max_leaf_nodes"],
        min_samples_leaf=params["min_samples_leaf"], l2_regularization=params["l2_regularization"],
        warm_start=True, early_stopping=False, max_iter=ITERS_PER_STEP, random_state=0)
    score = 0.0
    for step in range(1, MAX_STEP + 1):
        model.set_params(max_iter=step * ITERS_PER_STEP)
        model.fit(X_train, y_train)  # warm_start: adds ITERS_PER_STEP iterations to the ones it has
        score = float(model.score(X_val, y_val))
        if report(step, score):
            break
    return score


TRAIN = {"sgd": train_sgd, "hgb": train_hgb}


# -- tunesmith: trial.report / trial.should_prune ----------------------------------------------------------------

def _tunesmith(name: str, config: dict[str, Any], trial: Any) -> float:
    def report(step: int, value: float) -> bool:
        trial.report(step, value)
        return bool(trial.should_prune())

    return TRAIN[name](config, report)


def sgd(config: dict[str, Any], trial: Any) -> float:
    return _tunesmith("sgd", config, trial)


def hgb(config: dict[str, Any], trial: Any) -> float:
    return _tunesmith("hgb", config, trial)


# -- Optuna: trial.report / trial.should_prune, and the same domains ---------------------------------------------

def suggest(trial: Any, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, dom in space.items():
        if dom["type"] == "categorical":
            params[name] = trial.suggest_categorical(name, dom["choices"])
        elif dom["type"] == "int":
            params[name] = trial.suggest_int(name, dom["low"], dom["high"], log=dom.get("log", False))
        else:
            params[name] = trial.suggest_float(name, dom["low"], dom["high"], log=dom.get("log", False))
    return params


def optuna_objective(name: str) -> Callable[[Any], float]:
    """An Optuna objective for workload ``name``; a pruned trial raises ``TrialPruned`` after its last report."""
    import optuna

    def objective(trial: Any) -> float:
        pruned = False

        def report(step: int, value: float) -> bool:
            nonlocal pruned
            trial.report(value, step)
            pruned = trial.should_prune()
            return pruned

        score = TRAIN[name](suggest(trial, SPACES[name]), report)
        if pruned:
            raise optuna.TrialPruned()
        return score

    return objective
