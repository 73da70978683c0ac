"""Building the task's scikit-learn pipeline: the one place that imports estimator classes by name.

Steps are named as scikit-learn's ``make_pipeline`` names them (the lower-cased class name, ``-1``, ``-2``...
for repeats), and parameters are set with scikit-learn's ``step__param``. A bare parameter name (``C``) belongs
to the final estimator. A class may live in the spec's folder (``mysteps.Clip`` for ``mysteps.py`` beside the
spec), as a ``trial.function`` may, and is loaded by its file as trial code is; ``base_dir`` is importable while
the class is imported (and while a pipeline is fit: evaluation.attempt, evaluate.refit).
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from tunesmith.errors import SpecError, TunesmithError
from tunesmith.evaluation.loading import module_beside_spec
from tunesmith.import_path import folder_importable, import_failure
from tunesmith.spec.task_config import Component, TaskConfig
from tunesmith.suggestions import closest

if TYPE_CHECKING:
    from tunesmith.tasks.data import Dataset

_PIPELINE_OWN = {"steps", "memory", "verbose", "transform_input"}


BaseDir = str | os.PathLike[str] | None


def import_class(path: str, where: str, base_dir: BaseDir = None) -> type:
    """The class named ``module.Class``; ``base_dir`` (the spec's folder) is importable while it is imported. A
    module that is a file in the spec's folder (``mysteps`` for ``mysteps.py``) is loaded by its file, as trial code
    is (:func:`tunesmith.evaluation.loading.module_beside_spec`): by name, Python keeps the first one imported, and
    one process running experiments from two folders that each hold a ``mysteps.py`` ran the first one's steps for
    both.

    Raises:
        SpecError: at ``where``, saying what could not be imported.
    """
    module_name, _, attr = path.rpartition(".")
    folder = os.fspath(base_dir) if base_dir else None
    try:
        with folder_importable(base_dir):  # (what the module imports may lie there too)
            module = module_beside_spec(module_name, base_dir, where) or importlib.import_module(module_name)
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
        accepted = _init_parameters(cls)
        unknown = [k for k in component.params if accepted and k not in accepted]
        if unknown:  # Python's "unexpected keyword argument" named no parameter the class has
            close = closest(unknown[0], sorted(accepted))
            raise SpecError(f"{where}.params", f"{component.path} has no parameter {unknown[0]!r}"
                                               f"{f'; did you mean {close!r}?' if close else ''} (its parameters: "
                                               f"{', '.join(sorted(accepted))})") from None
        raise SpecError(f"{where}.params", f"{component.path} does not accept these parameters: {e}") from None


def _init_parameters(cls: type) -> set[str]:
    """The keyword parameters ``cls`` is built with; empty where they cannot be told (a ``**kwargs``)."""
    import inspect

    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return set()
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return set()
    return {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


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


def build_pipeline(task: TaskConfig, params: dict[str, Any], seed: int | None, base_dir: BaseDir = None, *,
                   data: Dataset) -> Any:
    """A fresh, unfitted pipeline with ``params`` set; steps with a ``random_state`` that neither the task nor
    ``params`` sets get ``seed``; a :class:`~tunesmith.tasks.steps.OneHotText` step told the positions of its
    columns among the features of ``data`` (the task's rows, or some of them: every caller has them read).

    Raises:
        SpecError: a class cannot be imported or built; a OneHotText step's columns are no features.
    """
    from tunesmith.tasks.steps import OneHotText, bind_text_columns

    pipe = _make(task, base_dir)
    if any(isinstance(step, OneHotText) for _, step in pipe.steps):
        bind_text_columns(pipe, data, [where for _, where in _components(task)])
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


def refuse_unfilled_missing_values(task: TaskConfig, ds: Dataset, base_dir: BaseDir = None) -> None:
    """The task's rows with a missing value (NaN: an empty cell, ``NA``) in a feature column, for a pipeline that
    gives it to a step that does not accept it (:func:`_step_refusing_missing_values`): every trial failed on
    scikit-learn's "Input X contains NaN", which never named the column. For a spec given anew; any row counts, a
    holdout row too (the run's last refit scores it).

    Raises:
        SpecError: at ``task.data``, naming the column, the count, the step and the fixes.
    """
    per_column = np.isnan(ds.X).sum(axis=0)
    if not per_column.any():
        return
    pipe = build_pipeline(task, {}, None, base_dir, data=ds)  # a OneHotText step told its columns, to be walked through
    refusing = _step_refusing_missing_values([step for _, step in pipe.steps], ds.X, ds.y)
    if refusing is not None:
        raise SpecError("task.data", _unfilled(ds.feature_names, per_column, pipe.steps[refusing][1], refusing,
                                               refusing == len(pipe.steps) - 1))


def _unfilled(features: tuple[str, ...], per_column: np.ndarray, step: Any, index: int, is_estimator: bool) -> str:
    """What :func:`refuse_unfilled_missing_values` says: the first column with missing values, their count, the
    step (``index`` in the pipeline) that would be given them, and the fixes."""
    from sklearn.base import is_regressor

    first = int(np.flatnonzero(per_column)[0])
    others = int(np.count_nonzero(per_column)) - 1
    more = f" ({others} more column{'s have' if others > 1 else ' has'} some too)" if others else ""
    name = type(step).__name__
    kind = "Regressor" if is_regressor(step) else "Classifier"
    fix = (f"add sklearn.impute.SimpleImputer to task.pipeline (or use an estimator that accepts missing values, e.g. "
           f"HistGradientBoosting{kind})" if is_estimator else
           f"add sklearn.impute.SimpleImputer to task.pipeline before {name}")
    return (f"column {features[first]!r} has {int(per_column[first])} missing values{more} and nothing in "
            f"task.pipeline fills them before {name} ({'task.estimator' if is_estimator else f'task.pipeline.{index}'}"
            f"), which does not accept them: every trial would fail; {fix}")


def _step_refusing_missing_values(steps: list[Any], X: np.ndarray, y: np.ndarray | None) -> int | None:
    """The index of the first of ``steps`` (a pipeline's, in order) that a missing value in ``X`` reaches and that
    does not accept it (scikit-learn's ``allow_nan`` tag), or None. A missing value lasts until a step removes it:
    an imputer ends the walk, and a step that accepts one is fit on ``X`` to see whether its output still holds one
    (StandardScaler keeps it, OneHotEncoder makes it a category of its own). A step whose handling cannot be told
    (:func:`_told_by_tags`) ends the walk too: only a pipeline known to fail is refused."""
    import warnings

    from sklearn.base import clone
    from sklearn.utils import get_tags

    for i, step in enumerate(steps):
        if not _told_by_tags(step) or type(step).__module__.startswith("sklearn.impute"):
            return None
        if not get_tags(step).input_tags.allow_nan:
            return i
        if i == len(steps) - 1:
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # what the step says of the missing values it is fit on
            try:
                X = clone(step).fit_transform(X, y)
            except Exception:  # noqa: BLE001 - a step that fails on these rows is not known to pass one on
                return None
        if not _holds_missing(X):
            return None
    return None


def _told_by_tags(step: Any) -> bool:
    """Whether scikit-learn's tags tell how ``step`` takes a missing value: one of scikit-learn's own classes that
    holds no other estimator (a ColumnTransformer's, a SelectFromModel's, a stack's decide) and runs no function of
    the user's (FunctionTransformer, tagged as refusing one, passes it to its function). A class of the user's own
    is tagged as refusing one by default, whatever it does. tunesmith's own steps (:mod:`tunesmith.tasks.steps`)
    are tagged as they behave."""
    from sklearn.preprocessing import FunctionTransformer

    if type(step).__module__ == "tunesmith.tasks.steps":  # tunesmith's own: tagged as what they do
        return True
    if not type(step).__module__.startswith("sklearn.") or isinstance(step, FunctionTransformer):
        return False
    return not any(hasattr(v, "get_params") for v in step.get_params(deep=True).values())


def _holds_missing(X: Any) -> bool:
    """Whether a step's output (a dense or sparse matrix) holds a missing value; False where that cannot be read (not
    numbers): the walk ends there, not known to fail."""
    values = X.data if hasattr(X, "tocsr") else X
    try:
        return bool(np.isnan(np.asarray(values, dtype=float)).any())
    except (TypeError, ValueError):
        return False


def refuse_missing_values(task: TaskConfig, base_dir: BaseDir, columns: dict[str, list[Any]],
                          features: list[str], name: str, field: str = "--data") -> None:
    """New rows (``columns``, as read from file ``name``) with a missing value in a feature column, for a pipeline
    that gives it to a step that does not accept it: refused, naming the column and the row, before a drift check
    scores them (scikit-learn's "Input X contains NaN" was printed whole, and the check skipped) or a re-tune records
    an experiment whose every trial fails. The pipeline is judged as ``validate`` judges the task's own data
    (:func:`_step_refusing_missing_values`, on the new rows encoded as a task's data is): a OneHotEncoder that makes
    a missing value a category of its own takes it here as it does there.

    Raises:
        UserInputError: at ``field``: an infinite value, whatever the pipeline (:func:`refuse_infinite_values`);
            the first missing value, the step refusing it, and the two fixes.
    """
    from tunesmith.errors import UserInputError
    from tunesmith.tasks.data import feature_matrix, refuse_infinite_values
    from tunesmith.tasks.data import is_missing as missing

    refuse_infinite_values(columns, features, name, field)
    present = [col for col in features if col in columns]
    found = next(((col, i) for col in present for i, v in enumerate(columns[col]) if missing(v)), None)
    if found is None:
        return
    steps = _make(task, base_dir).steps
    refusing = _step_refusing_missing_values([step for _, step in steps], feature_matrix(columns, present), None)
    if refusing is None:
        return
    col, row = found
    count = sum(missing(v) for c in present for v in columns[c])
    where = "task.estimator" if refusing == len(steps) - 1 else f"task.pipeline.{refusing}"
    raise UserInputError(f"{field}: {name} column {col!r} row {row + 1} holds a missing value "
                         f"({columns[col][row]!r}; {count} in all), which the experiment's pipeline gives to "
                         f"{type(steps[refusing][1]).__name__} ({where}) unfilled, and it does not accept one; clean "
                         "those rows, or add an imputer step to task.pipeline (sklearn.impute.SimpleImputer) before it "
                         "and tune afresh")
