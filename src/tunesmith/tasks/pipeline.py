"""Building the task's scikit-learn pipeline: the one place that imports estimator classes by name.

Steps are named as scikit-learn's ``make_pipeline`` names them (the lower-cased class name, ``-1``, ``-2``...
for repeats), and parameters are set with scikit-learn's ``step__param``. A bare parameter name (``C``) belongs
to the final estimator. A class may live in the spec's folder (``mysteps.Clip`` for ``mysteps.py`` beside the
spec), as a ``trial.function`` may: ``base_dir`` is importable while the class is imported (and while a pipeline
is fit: evaluation.attempt, evaluate.refit).
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from tunesmith.errors import SpecError, TunesmithError
from tunesmith.import_path import folder_importable, import_failure
from tunesmith.spec.task_config import Component, TaskConfig
from tunesmith.suggestions import closest

_PIPELINE_OWN = {"steps", "memory", "verbose", "transform_input"}


BaseDir = str | os.PathLike[str] | None


def import_class(path: str, where: str, base_dir: BaseDir = None) -> type:
    """The class named ``module.Class``; ``base_dir`` (the spec's folder) is importable while it is imported.

    Raises:
        SpecError: at ``where``, saying what could not be imported.
    """
    module_name, _, attr = path.rpartition(".")
    folder = os.fspath(base_dir) if base_dir else None
    try:
        with folder_importable(base_dir):
            module = importlib.import_module(module_name)
    except ImportError as e:
        searched = f" (searched the spec's folder {folder} and the Python path)" if folder else ""
        raise SpecError(where, f"cannot import {module_name!r}: {e}{searched}") from None
    except TunesmithError:
        raise  # the module met tunesmith's own error (a store it reads whose server does not answer): its exit code
    except (Exception, SystemExit) as e:  # the module's own top-level code failed (or ended the program)
        raise SpecError(where, import_failure(module_name, e)) from None
    obj = getattr(module, attr, None)
    if obj is None:
        names = [n for n in dir(module) if not n.startswith("_") and isinstance(getattr(module, n, None), type)]
        close = closest(attr, names)
        hint = f"; did you mean {module_name}.{close}?" if close else ""
        raise SpecError(where, f"{module_name!r} has no class {attr!r}{hint}")
    if not isinstance(obj, type) or not hasattr(obj, "get_params"):
        raise SpecError(where, f"{path!r} is not a scikit-learn-compatible estimator class (no get_params)")
    return obj


def _instantiate(component: Component, where: str, base_dir: BaseDir) -> Any:
    cls = import_class(component.path, where, base_dir)
    try:
        return cls(**component.params)
    except TypeError as e:
        raise SpecError(f"{where}.params", f"{component.path} does not accept these parameters: {e}") from None


def _components(task: TaskConfig) -> list[tuple[Component, str]]:
    return [*((c, f"task.pipeline.{i}") for i, c in enumerate(task.pipeline)), (task.estimator, "task.estimator")]


def _make(task: TaskConfig, base_dir: BaseDir) -> Any:
    from sklearn.pipeline import make_pipeline

    return make_pipeline(*(_instantiate(c, where, base_dir) for c, where in _components(task)))


def step_names(task: TaskConfig, base_dir: BaseDir = None) -> list[str]:
    """The pipeline's step names, in order (the final estimator's last)."""
    return [name for name, _ in _make(task, base_dir).steps]


def tunable_parameters(task: TaskConfig, base_dir: BaseDir = None) -> set[str]:
    """Every ``step__param`` the pipeline accepts (nested ones included).

    Raises:
        SpecError: a class cannot be imported or built.
    """
    return {k for k in _make(task, base_dir).get_params(deep=True) if k not in _PIPELINE_OWN and "__" in k}


def build_pipeline(task: TaskConfig, params: dict[str, Any], seed: int | None, base_dir: BaseDir = None) -> Any:
    """A fresh, unfitted pipeline with ``params`` set; steps with a ``random_state`` that neither the task nor
    ``params`` sets get ``seed``."""
    pipe = _make(task, base_dir)
    final = pipe.steps[-1][0]
    routed = {k if "__" in k else f"{final}__{k}": v for k, v in params.items()}
    if seed is not None:
        for (name, step), (component, _) in zip(pipe.steps, _components(task), strict=True):
            key = f"{name}__random_state"
            if "random_state" in step.get_params(deep=False) and "random_state" not in component.params \
                    and key not in routed:
                routed[key] = seed
    pipe.set_params(**routed)
    return pipe


def is_classifier_task(task: TaskConfig, base_dir: BaseDir = None) -> bool:
    from sklearn.base import is_classifier

    return bool(is_classifier(_make(task, base_dir)))


def estimator_kinds(task: TaskConfig, base_dir: BaseDir = None) -> tuple[bool, bool]:
    """Whether scikit-learn calls the pipeline a classifier, and whether a regressor: one build for both."""
    from sklearn.base import is_classifier, is_regressor

    pipe = _make(task, base_dir)
    return bool(is_classifier(pipe)), bool(is_regressor(pipe))


def takes_missing_values(task: TaskConfig, base_dir: BaseDir = None) -> bool:
    """Whether the pipeline can fit and predict rows with a missing feature value (NaN): an imputer
    (``sklearn.impute``, or a step holding one, a ColumnTransformer's) comes before the first step that does not
    accept NaN (scikit-learn's ``allow_nan`` tag), or no step refuses them (HistGradientBoosting). A step whose
    tags cannot be read is taken to accept them: only a pipeline known to fail is refused."""
    from sklearn.utils import get_tags

    for _, step in _make(task, base_dir).steps:
        inside = [step, *step.get_params(deep=True).values()] if hasattr(step, "get_params") else [step]
        if any(type(s).__module__.startswith("sklearn.impute") or type(s).__name__.endswith("Imputer")
               for s in inside):
            return True
        try:
            allowed = bool(get_tags(step).input_tags.allow_nan)
        except Exception:  # noqa: BLE001 - a third-party step with broken tags: not known to fail
            return True
        if not allowed:
            return False
    return True


def refuse_missing_values(task: TaskConfig, base_dir: BaseDir, columns: dict[str, list[Any]],
                          features: list[str], name: str, field: str = "--data") -> None:
    """New rows (``columns``, as read from file ``name``) with a missing value in a feature column, for a pipeline
    that cannot take them (:func:`takes_missing_values`): refused, naming the column and the row, before a drift
    check scores them (scikit-learn's "Input X contains NaN" was printed whole, and the check skipped) or a re-tune
    records an experiment whose every trial fails.

    Raises:
        UserInputError: at ``field``: an infinite value, whatever the pipeline (:func:`refuse_infinite_values`);
            the first missing value, and the two fixes.
    """
    from tunesmith.errors import UserInputError
    from tunesmith.tasks.data import is_missing as missing
    from tunesmith.tasks.data import refuse_infinite_values

    refuse_infinite_values(columns, features, name, field)

    found = next(((col, i) for col in features if col in columns for i, v in enumerate(columns[col]) if missing(v)),
                 None)
    if found is None or takes_missing_values(task, base_dir):
        return
    col, row = found
    count = sum(missing(v) for c in features if c in columns for v in columns[c])
    raise UserInputError(f"{field}: {name} column {col!r} row {row + 1} holds a missing value "
                         f"({columns[col][row]!r}; {count} in all), which the experiment's pipeline cannot take (it "
                         "has no imputer); clean those rows, or add an imputer step to task.pipeline "
                         "(sklearn.impute.SimpleImputer) and tune afresh")
