"""Optuna's samplers with their defaults, through Optuna's own ask/tell (not through tunesmith)."""

from __future__ import annotations

import logging
import warnings
from typing import Any

import optuna

from tunesmith.space import Categorical, Float, Int, SearchSpace

optuna.logging.set_verbosity(logging.ERROR)  # the GP fallback warnings would flood the log


def _suggest(trial: optuna.Trial, name: str, dom: Float | Int | Categorical) -> Any:
    if isinstance(dom, Float):
        return trial.suggest_float(name, dom.low, dom.high, log=dom.log, step=dom.step)
    if isinstance(dom, Int):
        return trial.suggest_int(name, dom.low, dom.high, log=dom.log, step=dom.step)
    return trial.suggest_categorical(name, dom.choices)  # type: ignore[arg-type]


class OptunaSession:
    def __init__(self, space: SearchSpace, seed: int, sampler: str) -> None:
        self.space = space
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = optuna.samplers.TPESampler(seed=seed) if sampler == "tpe" else optuna.samplers.GPSampler(seed=seed)
        self.study = optuna.create_study(sampler=s)

    def ask(self) -> tuple[Any, dict[str, Any]]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trial = self.study.ask()
            params = self.space.sample_active(lambda name, dom: _suggest(trial, name, dom))
        return trial, params

    def tell(self, handle: Any, loss: float) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.study.tell(handle, loss)


def make(space: SearchSpace, seed: int, budget: int, batch: int, sampler: str) -> OptunaSession:
    return OptunaSession(space, seed, sampler)
