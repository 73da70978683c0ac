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


def carve_holdout(holdout: HoldoutConfig | None, ds: Dataset, classification: bool,
                  cut_at_rows: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(development rows, holdout rows). The holdout is the latest rows with a time column (from the first row of
    a timestamp, unless ``cut_at_rows``: ``cv.cut_at: rows``, as experiments recorded before), whole groups with
    groups (stratified by class for a classifier, unless ``holdout.draw: random``), stratified for classification,
    random otherwise; empty without a holdout."""
    n = ds.n_rows
    if holdout is None:
        return np.arange(n), np.arange(0)
    if ds.time is not None:
        cut = n - max(1, math.ceil(holdout.fraction * n))
        if not cut_at_rows:
            starts = _timestamp_starts(ds.time)
            if not len(starts):
                raise SpecError("task.holdout.fraction", f"every one of the {n} rows has the same timestamp: a "
                                                         "holdout of the latest rows needs at least two timestamps")
            cut = int(starts[np.argmin(np.abs(starts - cut))])
        return np.arange(cut), np.arange(cut, n)
    from sklearn.model_selection import GroupShuffleSplit, ShuffleSplit, StratifiedShuffleSplit

    try:
        if ds.groups is not None and classification and not holdout.counts_groups and not holdout.draws_at_random:
            dev, hold = _whole_groups_stratified(holdout.fraction, ds.groups, ds.y, holdout.seed)
        elif ds.groups is not None and not holdout.counts_groups:
            dev, hold = _whole_groups_of_about(holdout.fraction, ds.groups, holdout.seed)
        elif ds.groups is not None:  # recorded when the fraction counted groups: the same groups as then
            splitter = GroupShuffleSplit(n_splits=1, test_size=holdout.fraction, random_state=holdout.seed)
            dev, hold = next(splitter.split(ds.X, ds.y, ds.groups))
        elif classification:
            _every_class_on_both_sides(ds)
            strat = StratifiedShuffleSplit(n_splits=1, test_size=holdout.fraction, random_state=holdout.seed)
            dev, hold = next(strat.split(ds.X, ds.y))
        else:
            plain = ShuffleSplit(n_splits=1, test_size=holdout.fraction, random_state=holdout.seed)
            dev, hold = next(plain.split(ds.X))
    except ValueError as e:
        raise SpecError("task.holdout.fraction",
                        f"cannot carve a holdout of {holdout.fraction} from {n} rows: {e}") from None
    return np.sort(dev), np.sort(hold)


def _whole_groups_of_about(fraction: float, groups: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(development rows, holdout rows): whole groups, drawn in a seeded order, each taken when it brings the
    holdout's row count nearer ``fraction`` of the rows (a group larger than what is left to take is passed over);
    at least one group on each side.

    Raises:
        ValueError: fewer than two groups.
    """
    labels, inverse, sizes = np.unique(np.asarray(groups).astype(str), return_inverse=True, return_counts=True)
    if len(labels) < 2:
        raise ValueError(f"the rows hold {len(labels)} group; a holdout of whole groups needs at least 2")
    target, taken, held = fraction * len(groups), 0, list[int]()
    for g in np.random.RandomState(seed).permutation(len(labels)):
        if taken >= target or len(held) == len(labels) - 1:  # no group brings it nearer; one group left to develop on
            break
        if abs(taken + sizes[g] - target) < abs(taken - target):
            held.append(g)
            taken += int(sizes[g])
    if not held:  # every group alone is farther from the target than none: the nearest one
        held.append(int(np.argmin(np.abs(sizes - target))))
    in_holdout = np.isin(inverse, held)
    return np.flatnonzero(~in_holdout), np.flatnonzero(in_holdout)


def _whole_groups_stratified(fraction: float, groups: np.ndarray, y: np.ndarray,
                             seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(development rows, holdout rows): whole groups holding about ``fraction`` of each class's rows. Groups are
    taken, each when it brings the holdout's class counts nearer their targets (the distance summed over classes,
    each relative to its target, so that a rare class counts as much as a common one), in an order that puts the
    groups weighing most on some class first (a rare class's holders, large groups; ties in an order ``seed``
    fixes): the groups of the common class alone come last and fill its count. (Drawn at random, an 8% class had
    3 to 12 rows in a holdout of 100, by seed; scikit-learn's StratifiedGroupKFold stratifies but fixes the
    holdout's size to one of its folds: 40 rows for a 0.2 holdout of 300 with one customer of 150.)

    Raises:
        ValueError: fewer than two groups.
    """
    labels, inverse = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    if len(labels) < 2:
        raise ValueError(f"the rows hold {len(labels)} group; a holdout of whole groups needs at least 2")
    _, classes = np.unique(np.asarray(y).astype(str), return_inverse=True)
    counts = np.zeros((len(labels), int(classes.max()) + 1))
    np.add.at(counts, (inverse, classes), 1)  # rows of each class in each group
    target = fraction * counts.sum(axis=0)
    order = np.random.RandomState(seed).permutation(len(labels))
    order = order[np.argsort(-(counts / counts.sum(axis=0)).max(axis=1)[order], kind="stable")]
    taken, held = np.zeros(counts.shape[1]), list[int]()

    def distance(t: np.ndarray) -> float:
        return float((np.abs(t - target) / target).sum())

    for g in order:
        if len(held) == len(labels) - 1:  # one group left to develop on
            break
        if distance(taken + counts[g]) < distance(taken):
            held.append(int(g))
            taken += counts[g]
    if not held:  # every group alone is farther from the targets than none: the nearest one
        held.append(int(np.argmin([distance(c) for c in counts])))
    in_holdout = np.isin(inverse, held)
    return np.flatnonzero(~in_holdout), np.flatnonzero(in_holdout)


def development_splits(task: TaskConfig, ds: Dataset, dev_idx: np.ndarray, classification: bool,
                       refuse_undefined: bool = True) -> list[Split]:
    """The folds of the development rows (:func:`cv_splits`). When they cannot be made but the folds of every row
    could, the holdout took the rows they needed: the error names ``task.holdout.fraction`` and what it left, not
    ``task.cv.folds`` alone. Its fix offers both: a smaller fraction is not always enough (a stratified holdout takes
    a row of every class, so a class with as many rows as folds falls short whatever the fraction)."""
    try:
        return cv_splits(task, ds.subset(dev_idx), classification, refuse_undefined=refuse_undefined)
    except SpecError as refused:
        if task.holdout is None:
            raise
        try:
            cv_splits(task, ds, classification, refuse_undefined=refuse_undefined)
        except SpecError:
            raise refused from None  # the folds fail on every row too: theirs (or the data's) to fix
        reason = refused.message.partition("; ")[0]  # the folds' messages say what is wrong, then "; " the fix
        raise SpecError("task.holdout.fraction",
                        f"a holdout of {task.holdout.fraction} leaves {len(dev_idx)} of the {ds.n_rows} rows to "
                        f"cross-validate, too few for {task.cv.folds} {resolved_cv_kind(task.cv, ds, classification)} "
                        f"folds ({reason}); use fewer folds or a smaller fraction, or more rows") from None


def holdout_of_one_class(task: TaskConfig, ds: Dataset, dev_idx: np.ndarray, hold_idx: np.ndarray,
                         classification: bool, refuse_undefined: bool = True) -> str | None:
    """What to say of a classifier's holdout of one class (the latest rows, carved by time, or whole groups): its
    score says how the model does on that class alone. Refused where the scorer cannot be computed on it at all
    (roc_auc: the run completed, exit 0, its holdout score NaN). None when the holdout holds several classes.

    Raises:
        SpecError: at ``task.holdout.fraction``, with the fraction that would reach another class (time order).
    """
    from tunesmith.tasks.scoring import undefined_on_one_class

    if task.holdout is None or not classification or len(hold_idx) == 0:
        return None
    classes, _ = label_classes(ds.y[hold_idx])
    if len(classes) != 1:
        return None
    n, n_hold = ds.n_rows, len(hold_idx)
    which = f"the latest {n_hold} of the {n} rows" if ds.time is not None else f"{n_hold} of the {n} rows"
    said = f"the holdout ({which}) holds only class {classes[0]!r}"
    if ds.time is not None:
        other = np.flatnonzero(np.asarray(ds.y).astype(str) != classes[0])
        # the least fraction f (in hundredths) whose ceil(f * n) latest rows, less the cv.gap rows left out before
        # the scored ones (time_ordered_refit), reach row other[-1]: f * n > n - 1 - other[-1] + gap
        gap = 0 if task.cv.refits_on_all_rows else task.cv.gap  # (cv.refit: all_rows scores the whole holdout)
        hundredths = 100 * (n - 1 - int(other[-1]) + gap) // n + 1 if len(other) else 0
        counted = f" (the first {gap} of its rows, the cv.gap, are not scored)" if gap else ""
        if not len(other):
            fix = "the rows hold no other class"
        elif hundredths < 100:
            fix = f"a fraction of at least {hundredths / 100:.2f} reaches the latest row of another class{counted}"
        else:
            fix = f"no fraction below 1 reaches the latest row of another class{counted}: lower task.cv.gap"
    else:
        fix = "another holdout.seed or a larger fraction draws groups of other classes"
    why = undefined_on_one_class(task, ds.y[dev_idx], ds.y[hold_idx])
    if why is None:
        return (f"task.holdout.fraction: {said}: its {task.metric_name} says how the model does on that class "
                f"alone; {fix}")
    undefined = f"{said}, where {task.metric_name} cannot be computed ({why}); {fix}"
    if refuse_undefined:
        raise SpecError("task.holdout.fraction", undefined)
    return f"task.holdout.fraction: {undefined}"  # an experiment recorded before this check: said, as it ran


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
              path: str = "task.cv", refuse_undefined: bool = True) -> list[Split]:
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
    splitter: object = None
    splits: list[Split] | None = None  # made by a splitter, or (time-ordered rows with timestamps) cut between them
    if kind == "kfold":
        splitter = KFold(cv.folds, shuffle=cv.shuffle, random_state=rs)
    elif kind == "stratified":
        splitter = StratifiedKFold(cv.folds, shuffle=cv.shuffle, random_state=rs)
    elif kind == "group":
        splitter = GroupKFold(cv.folds, shuffle=cv.shuffle, random_state=rs)
    elif kind == "stratified_group":
        splitter = StratifiedGroupKFold(cv.folds, shuffle=cv.shuffle, random_state=rs)
    elif kind == "timeseries":
        if (fault := _too_few_rows_for_timeseries(cv, ds.n_rows, path)) is not None:
            raise SpecError(path, fault)
        if not cv.cuts_at_rows and ds.time is not None:
            splits = _cut_between_timestamps(cv, ds.time, path)
        else:
            splitter = TimeSeriesSplit(cv.folds, gap=cv.gap, max_train_size=training_window(cv, ds.n_rows))
    else:  # repeated
        cls = RepeatedStratifiedKFold if classification else RepeatedKFold
        splitter = cls(n_splits=cv.folds, n_repeats=cv.repeats, random_state=cv.seed)
    # groups only to the splitters that keep them whole (the others ignore them, with scikit-learn's raw warning:
    # a time-series split of an experiment recorded with groups and time, refused since)
    groups = ds.groups if kind in ("group", "stratified_group") else None
    if splits is None:
        try:
            splits = [(np.asarray(tr), np.asarray(te))
                      for tr, te in splitter.split(ds.X, ds.y, groups)]  # type: ignore[attr-defined]
        except ValueError as e:
            raise SpecError(path, f"cannot make {cv.folds} {kind} folds of {ds.n_rows} rows: {e}") from None
    if classification and refuse_undefined:  # (an experiment recorded before this check runs as it ran)
        _every_fold_scores(task, ds, splits, kind, path)
    return splits


def _timestamp_starts(time: np.ndarray) -> np.ndarray:
    """The rows (time-ordered) that start a timestamp, the first row left out: where a cut may fall."""
    return np.flatnonzero(time[1:] != time[:-1]) + 1


def _cut_between_timestamps(cv: CVConfig, time: np.ndarray, path: str) -> list[Split]:
    """TimeSeriesSplit's folds with each test part moved to start at the first row of a timestamp: cut by row
    count, rows of one timestamp (daily snapshots of many customers) fell on both sides of a cut, and a fold trained
    on part of the day it tested on. Each cut moves to the nearest timestamp start, after the previous fold's
    (every fold tests on some rows). ``gap`` and ``window`` still count rows. With a timestamp per row, the folds
    are TimeSeriesSplit's."""
    n, folds = len(time), cv.folds
    starts = _timestamp_starts(time)
    if len(starts) < folds:
        raise SpecError(_folds_field(path), f"the {n} rows hold {len(starts) + 1} distinct timestamps, too few for "
                                            f"{folds} timeseries folds cut between timestamps (each fold tests on "
                                            "later timestamps than it trains on); use at most "
                                            f"{max(len(starts), 1)} folds, or rows of more timestamps")
    tested = n // (folds + 1)
    cuts, at = [], -1  # at: the index in ``starts`` of the previous cut
    for i, by_rows in enumerate(range(n - folds * tested, n, tested)):
        lo, hi = at + 1, len(starts) - (folds - i)  # leave a start for every later fold
        at = lo + int(np.argmin(np.abs(starts[lo:hi + 1] - by_rows)))
        cuts.append(int(starts[at]))
    if cuts[0] - cv.gap <= 0:
        raise SpecError(path, f"cannot make {folds} timeseries folds of {n} rows with a gap of {cv.gap}: cut between "
                              f"timestamps, the first fold tests from row {cuts[0]}, and the gap leaves it no row to "
                              "train on; use a smaller task.cv.gap or fewer folds, or more rows")
    window = training_window(cv, n)
    bounds = [*cuts, n]
    return [(np.arange(max(0, cut - cv.gap - window) if window else 0, cut - cv.gap), np.arange(cut, bounds[i + 1]))
            for i, cut in enumerate(cuts)]


def _too_few_rows_for_timeseries(cv: CVConfig, n_rows: int, path: str) -> str | None:
    """Why ``n_rows`` time-ordered rows make no ``cv.folds`` folds, and the fix; None when they do. TimeSeriesSplit's
    own words count folds + 1 blocks of rows (the oldest only trains): "folds=5 greater than samples=2" for 4 asked.
    Its rule: each fold tests on ``n_rows // (folds + 1)`` rows, the oldest rows before the first fold's test rows
    and its gap must leave a row to train on."""
    folds, gap = cv.folds, cv.gap
    if n_rows < folds + 1:
        fix = (f"use at most {n_rows - 1} folds ({_folds_field(path)}), or more rows" if n_rows > 2
               else "use more rows")
        return (f"cannot make {folds} timeseries folds of {n_rows} rows: they need at least {folds + 1} (the oldest "
                f"rows only train; each fold tests on the next ones); {fix}")
    tested = n_rows // (folds + 1)
    if n_rows - gap - tested * folds <= 0:
        return (f"cannot make {folds} timeseries folds of {n_rows} rows with a gap of {gap}: each fold tests on "
                f"{tested} rows, and the gap leaves the first fold no row to train on; use a smaller task.cv.gap or "
                "fewer folds, or more rows")
    return None


def training_window(cv: CVConfig, n_rows: int) -> int | None:
    """A sliding window's training rows, of ``n_rows`` to cross-validate; None for an expanding window."""
    return None if cv.expanding else (cv.window or max(1, n_rows // (cv.folds + 1)))


def time_ordered_refit(cv: CVConfig, dev_idx: np.ndarray, hold_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Time-ordered rows: (the development rows the model to ship is fit on, the holdout rows it is scored on), by
    the procedure the folds estimated. A sliding window fits the latest ``window`` development rows, as each fold
    did, not all of them; a ``gap`` leaves out the first ``gap`` holdout rows, as each fold left them out between its
    training and test rows. (Fit on every development row and scored from the next one, the holdout scored another
    procedure than the CV: the walk's sales data, 4.94 MAE against 4.58 for the folds' own.)"""
    window = training_window(cv, len(dev_idx))
    return (dev_idx if window is None else dev_idx[-window:]), hold_idx[cv.gap:]


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


def _every_fold_scores(task: TaskConfig, ds: Dataset, splits: list[Split], kind: str, path: str) -> None:
    """A classifier's fold whose test part holds one class is refused where the scorer cannot be computed on it
    (roc_auc: NaN, every trial failed on "trial.report: ... got nan"), not where it is merely imbalanced (accuracy
    on one class is defined). Stratified kinds are checked before splitting (:func:`_every_fold_holds_every_class`);
    time-series, group and plain folds can fall this way. A training part of one class is not refused for that
    alone: trees, forests, k-NN and naive Bayes fit it, and an estimator that cannot says so itself in the trial's
    error. A fold whose two parts hold different classes is refused where the scorer raises on it
    (:func:`_fold_classes_score`)."""
    from tunesmith.tasks.scoring import undefined_on_one_class

    classes, codes = np.unique(np.asarray(ds.y).astype(str), return_inverse=True)  # once: folds count codes
    for i, (train, test) in enumerate(splits):
        present = np.flatnonzero(np.bincount(codes[test], minlength=len(classes)))
        if len(present) != 1:
            _fold_classes_score(task, ds, (train, test), codes, classes, f"{kind} fold {i}", path)
            continue
        why = undefined_on_one_class(task, ds.y[train], ds.y[test])
        if why is not None:
            raise SpecError(_folds_field(path), f"{kind} fold {i} tests on {len(test)} rows, all of class "
                                                f"{str(classes[present[0]])!r}, where {task.metric_name} cannot be "
                                                f"computed ({why}); use fewer folds (larger parts), or more rows")


def _fold_classes_score(task: TaskConfig, ds: Dataset, split: Split, codes: np.ndarray, classes: np.ndarray,
                        fold: str, path: str) -> None:
    """A fold whose test part lacks a class its training part holds, or holds one its training part lacks: a scorer
    of probabilities needs the two to match (neg_log_loss, roc_auc_ovr: "y_true and y_prob contain different number
    of classes"), and every trial failed on it, where group folds put a class's few groups on one side. Refused
    where scikit-learn's scorer raises on that fold for a stand-in fit on its training part (as for any model: it
    counts classes, not predictions); one that scores it (accuracy, f1_macro) is not refused.

    Raises:
        SpecError: at the folds, naming the class, how many groups (or rows) hold it, and the fixes.
    """
    from tunesmith.tasks.scoring import stand_in_raises

    train, test = split
    trained, tested = set(codes[train].tolist()), set(codes[test].tolist())
    if trained == tested or not isinstance(task.scoring, str):
        return
    why = stand_in_raises(task.scoring, ds.y[train], ds.y[test], task.pos_label)
    if why is None:
        return
    missing_from_test = sorted(trained - tested)
    code = missing_from_test[0] if missing_from_test else sorted(tested - trained)[0]
    name = str(classes[code])
    lacking = (f"tests on {len(test)} rows without class {name!r}, which its training part holds"
               if missing_from_test else f"trains on {len(train)} rows without class {name!r}, which its test part "
                                         "holds")
    holders, held_by = _holders_of_class(ds, codes == code)
    fewer = "fewer folds, " if holders >= 2 else ""
    raise SpecError(_folds_field(path), f"{fold} {lacking}, where {task.metric_name} cannot be computed "
                                        f"(scikit-learn: {why.split('. ')[0]}); class {name!r} {held_by}: use "
                                        f"{fewer}more {'groups' if ds.groups is not None else 'rows'} of that "
                                        "class, or a scorer that takes a fold without it (accuracy or f1_macro; "
                                        "objective.metric the same)")


def _holders_of_class(ds: Dataset, rows: np.ndarray) -> tuple[int, str]:
    """How many groups (rows, without groups) hold the rows ``rows`` marks, and that in words."""
    if ds.groups is None:
        count = int(rows.sum())
        return count, f"has {count} of the {ds.n_rows} rows"
    holders = len(np.unique(ds.groups[rows]))
    return holders, (f"is in {holders} of the {len(np.unique(ds.groups))} groups ({int(rows.sum())} of the "
                     f"{ds.n_rows} rows)")


def _folds_field(path: str) -> str:
    """The field that sets the number of folds: the nested estimate's outer split is ``task.nested.outer_folds``."""
    return f"{path}.outer_folds" if path == "task.nested" else f"{path}.folds"


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
        raise SpecError(_folds_field(path),
                        f"the least populated class, {classes[least]!r}, has {counts[least]} of the {ds.n_rows} rows "
                        f"to cross-validate, fewer than the {folds} {kind} folds, so some folds would hold none of it; "
                        "use fewer folds, or rows with more of that class")


def _every_class_on_both_sides(ds: Dataset) -> None:
    """A stratified holdout puts rows of every class on both sides: a class of one row cannot be (scikit-learn's
    error named no fix: "The minimum number of groups for any class cannot be less than 2")."""
    classes, counts = label_classes(ds.y)
    single = [c for c, k in zip(classes, counts, strict=True) if k < 2]
    if len(single) == 1:
        raise SpecError("task.holdout.fraction",
                        f"class {single[0]!r} has 1 of the {ds.n_rows} rows, and a stratified holdout needs at least 2 "
                        "of each class, one on each side; drop that row, or relabel it into another class")
    if single:
        raise SpecError("task.holdout.fraction",
                        f"classes {', '.join(map(repr, single))} have 1 of the {ds.n_rows} rows each, and a "
                        "stratified holdout needs at least 2 of each class, one on each side; drop those rows, or "
                        "relabel them into other classes")
