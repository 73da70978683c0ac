"""Holdout carving and cross-validation folds. Both are fixed by their seeds, the same for every trial.

Index conventions: :func:`carve_holdout` returns row indices into the loaded dataset; :func:`cv_splits` returns
indices into the rows it is given (the development rows, once the holdout is carved).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from tunesmith.errors import SpecError
from tunesmith.spec.task_config import CVConfig, HoldoutConfig, TaskConfig
from tunesmith.tasks.data import Dataset

Split = tuple[np.ndarray, np.ndarray]


def carve_holdout(holdout: HoldoutConfig | None, ds: Dataset, classification: bool) -> tuple[np.ndarray, np.ndarray]:
    """(development rows, holdout rows). The holdout is the latest rows with a time column, whole groups with
    groups, stratified for classification, random otherwise; empty without a holdout."""
    n = ds.n_rows
    if holdout is None:
        return np.arange(n), np.arange(0)
    if ds.time is not None:
        n_hold = max(1, math.ceil(holdout.fraction * n))
        return np.arange(n - n_hold), np.arange(n - n_hold, n)
    from sklearn.model_selection import GroupShuffleSplit, ShuffleSplit, StratifiedShuffleSplit

    try:
        if ds.groups is not None:
            splitter = GroupShuffleSplit(n_splits=1, test_size=holdout.fraction, random_state=holdout.seed)
            dev, hold = next(splitter.split(ds.X, ds.y, ds.groups))
        elif classification:
            strat = StratifiedShuffleSplit(n_splits=1, test_size=holdout.fraction, random_state=holdout.seed)
            dev, hold = next(strat.split(ds.X, ds.y))
        else:
            plain = ShuffleSplit(n_splits=1, test_size=holdout.fraction, random_state=holdout.seed)
            dev, hold = next(plain.split(ds.X))
    except ValueError as e:
        raise SpecError("task.holdout.fraction",
                        f"cannot carve a holdout of {holdout.fraction} from {n} rows: {e}") from None
    return np.sort(dev), np.sort(hold)


def resolved_cv_kind(cv: CVConfig, ds: Dataset, classification: bool) -> str:
    """The CV kind to use: the declared one, else the one the data implies."""
    if cv.kind is not None:
        return cv.kind
    if ds.time is not None:
        return "timeseries"
    if ds.groups is not None:
        return "stratified_group" if classification else "group"
    return "stratified" if classification else "kfold"


def cv_splits(task: TaskConfig, ds: Dataset, classification: bool, cv: CVConfig | None = None,
              path: str = "task.cv") -> list[Split]:
    """The folds of ``ds``'s rows, as (train, test) index arrays.

    Raises:
        SpecError: at ``task.cv``: a kind that needs classes or groups it does not have, or too few rows or groups.
    """
    from sklearn.model_selection import (
        GroupKFold,
        KFold,
        RepeatedKFold,
        RepeatedStratifiedKFold,
        StratifiedGroupKFold,
        StratifiedKFold,
        TimeSeriesSplit,
    )

    cv = cv or task.cv
    _kind_fits_the_data(cv.kind, ds, path)
    kind = resolved_cv_kind(cv, ds, classification)
    rs = cv.seed if cv.shuffle else None
    if kind in ("stratified", "stratified_group") and not classification:
        raise SpecError(f"{path}.kind", f"{kind!r} stratifies classes, but the estimator is a regressor; use "
                                        f"{'group' if kind == 'stratified_group' else 'kfold'}")
    if classification and kind in ("stratified", "stratified_group", "repeated"):
        _every_fold_holds_every_class(ds, cv.folds, kind, path)
    splitter: object
    if kind == "kfold":
        splitter = KFold(cv.folds, shuffle=cv.shuffle, random_state=rs)
    elif kind == "stratified":
        splitter = StratifiedKFold(cv.folds, shuffle=cv.shuffle, random_state=rs)
    elif kind == "group":
        splitter = GroupKFold(cv.folds, shuffle=cv.shuffle, random_state=rs)
    elif kind == "stratified_group":
        splitter = StratifiedGroupKFold(cv.folds, shuffle=cv.shuffle, random_state=rs)
    elif kind == "timeseries":
        window = None if cv.expanding else (cv.window or max(1, ds.n_rows // (cv.folds + 1)))
        splitter = TimeSeriesSplit(cv.folds, gap=cv.gap, max_train_size=window)
    else:  # repeated
        cls = RepeatedStratifiedKFold if classification else RepeatedKFold
        splitter = cls(n_splits=cv.folds, n_repeats=cv.repeats, random_state=cv.seed)
    # groups only to the splitters that keep them whole (the others ignore them, with scikit-learn's raw warning:
    # a time-series split of an experiment recorded with groups and time, refused since)
    groups = ds.groups if kind in ("group", "stratified_group") else None
    try:
        return [(np.asarray(tr), np.asarray(te))
                for tr, te in splitter.split(ds.X, ds.y, groups)]  # type: ignore[attr-defined]
    except ValueError as e:
        raise SpecError(path, f"cannot make {cv.folds} {kind} folds of {ds.n_rows} rows: {e}") from None


def _kind_fits_the_data(kind: str | None, ds: Dataset, path: str) -> None:
    """A declared kind that would leak for the data's time or groups column. Checked here, once the data is read
    (the column found), not with the spec: a mistyped column was blamed on the kind, and only once the kind was
    changed did the user learn the column did not exist."""
    if ds.time is not None and kind is not None and kind != "timeseries":
        raise SpecError(f"{path}.kind", f"{kind!r} would train on the future of a time-ordered dataset; use kind: "
                                        "timeseries (or leave kind out)")
    if ds.groups is not None and kind in ("kfold", "stratified", "repeated"):
        raise SpecError(f"{path}.kind", f"{kind!r} would split groups across folds; use kind: group or "
                                        "stratified_group (or leave kind out)")


def split_count(cv: CVConfig) -> int:
    """How many (train, test) splits :func:`cv_splits` makes with ``cv``, one ``fold_<i>`` metric each: ``folds``, times
    ``repeats`` for the repeated kind (the only kind that repeats; an unset kind never resolves to it)."""
    return cv.folds * (cv.repeats if cv.kind == "repeated" else 1)


def label_classes(labels: Sequence[object] | np.ndarray) -> tuple[list[str], list[int]]:
    """The classes of a label column, as text, and their row counts: one rule for every check that a classifier's
    rows hold enough classes (the folds here, a re-tune's new rows in :mod:`tunesmith.retune`)."""
    values, counts = np.unique(np.asarray(labels).astype(str), return_counts=True)
    return [str(v) for v in values], [int(c) for c in counts]


def _every_fold_holds_every_class(ds: Dataset, folds: int, kind: str, path: str) -> None:
    """Stratified folds of a class with fewer rows than folds leave some folds without it: scikit-learn only warns,
    and every trial then fails on a fold it cannot score (roc_auc on one class) or fit. Refused up front."""
    classes, counts = label_classes(ds.y)
    if len(classes) < 2:
        raise SpecError(path, f"every one of the {ds.n_rows} rows to cross-validate has the label {classes[0]!r}: "
                              "a classifier needs rows of at least two classes")
    least = counts.index(min(counts))
    if counts[least] < folds:
        raise SpecError(f"{path}.folds", f"the least populated class, {classes[least]!r}, has {counts[least]} of the "
                                         f"{ds.n_rows} rows to cross-validate, fewer than the {folds} {kind} folds, so "
                                         "some folds would hold none of it; use fewer folds, or rows with more of "
                                         "that class")
