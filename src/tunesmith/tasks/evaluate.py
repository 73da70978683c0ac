"""Evaluating a configuration of a task: cross-validation without leakage, holdout, latency (nested CV: ``nested``)."""

from __future__ import annotations

import math
import pickle
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tunesmith.errors import SpecError, TunesmithError
from tunesmith.import_path import folder_importable
from tunesmith.space.domains import Domain
from tunesmith.spec.task_config import LatencyConfig, TaskConfig
from tunesmith.tasks.data import Dataset, dataset_fingerprint, load_dataset
from tunesmith.tasks.pipeline import BaseDir, build_pipeline, estimator_kinds, refuse_unfilled_missing_values
from tunesmith.tasks.scoring import (
    TaskScorer, check_scoring_fits_estimator, check_scoring_fits_responses, task_scorer,
)
from tunesmith.tasks.splits import (
    Split, carve_holdout, development_splits, holdout_of_one_class, time_ordered_refit,
)

if TYPE_CHECKING:
    from tunesmith.cost import Prices
    from tunesmith.records import ParamValue, TrialRecord
    from tunesmith.selection import SelectionRule


@dataclass(frozen=True, eq=False)
class Prepared:
    """What every trial of a task shares: the rows, the holdout, the folds, the scorer."""

    dataset: Dataset
    dev_idx: np.ndarray        # rows the search may see
    holdout_idx: np.ndarray    # rows it never sees, which the model to ship is scored on
    refit_idx: np.ndarray      # the development rows the model to ship is fit on (time-ordered: the folds' window)
    classification: bool
    splits: list[Split]        # indices into dev rows
    scorer: TaskScorer
    warnings: tuple[str, ...] = ()   # what `validate` and `run` tell about the data (the task still runs)

    @property
    def dev(self) -> Dataset:
        return self.dataset.subset(self.dev_idx)


_prepared: dict[tuple[str, str, bool, str], tuple[Dataset, Prepared]] = {}


def prepare(task: TaskConfig, base_dir: BaseDir = None, *, new: bool = False,
            tuned: Mapping[str, Domain] | None = None) -> Prepared:
    """Load the data, carve the holdout, make the folds (cached per process while the data is unchanged).

    ``new``: the task of a spec given anew (run, validate, a re-tune's new data), which is refused what surely fails
    or cannot be scored: missing values a step of the pipeline cannot take, a scorer of the wrong kind on labels it
    cannot take, folds or a holdout of one class where the scorer is undefined, folds whose parts hold different
    classes where it raises. An experiment recorded before those checks (resume, reproduce, promote, drift, its
    trials) runs as it ran, what it would be refused now said as a warning where it concerns the holdout.
    ``tuned``: the space (a scorer's method a tuned parameter may turn on is warned of, not refused:
    :func:`check_scoring_fits_responses`)."""
    ds = load_dataset(task.data, base_dir)
    key = (task.model_dump_json(), str(base_dir), new, repr(tuned) if new else "")  # tuned is read only when new
    hit = _prepared.get(key)
    if hit is not None and hit[0] is ds:
        return hit[1]
    classification, regression = estimator_kinds(task, base_dir)  # also imports its classes, which the folds find
    said = _continuous_looking_target(task, ds) if classification else None  # the estimator first, then its scorer
    if new:
        refuse_unfilled_missing_values(task, ds, base_dir)
    scoring_said = check_scoring_fits_estimator(task, classification, regression, ds.y) \
        if new else None
    responses_said = None
    if new:  # built as a trial builds it: a OneHotText's columns named, what the scorer asks of the model offered
        responses_said = check_scoring_fits_responses(task, build_pipeline(task, {}, None, base_dir, data=ds), tuned)
    dev_idx, hold_idx = carve_holdout(task.holdout, ds, classification, cut_at_rows=task.cv.cuts_at_rows)
    splits = development_splits(task, ds, dev_idx, classification, refuse_undefined=new)
    refit_idx, hold_idx = _refit_and_scored(task, ds, dev_idx, hold_idx, new)
    one_class_holdout = holdout_of_one_class(task, ds, dev_idx, hold_idx, classification, refuse_undefined=new)
    warnings = tuple(w for w in (*ds.warnings, said, scoring_said, responses_said, one_class_holdout) if w)
    prepared = Prepared(ds, dev_idx, hold_idx, refit_idx, classification, splits, task_scorer(task), warnings)
    if len(_prepared) >= 8:
        _prepared.pop(next(iter(_prepared)))
    _prepared[key] = (ds, prepared)
    return prepared


def _refit_and_scored(task: TaskConfig, ds: Dataset, dev_idx: np.ndarray,
                      hold_idx: np.ndarray, new: bool) -> tuple[np.ndarray, np.ndarray]:
    """(the rows the model to ship is fit on, the holdout rows it is scored on): every development row and the whole
    holdout, but for time-ordered rows the folds' procedure (:func:`time_ordered_refit`), unless ``cv.refit:
    all_rows`` (an experiment recorded before that rule keeps the model its holdout figure is of). A ``gap`` as long
    as the holdout leaves none to score: refused in a spec given anew; a recorded one scores them all, as it did."""
    if ds.time is None or len(hold_idx) == 0 or task.cv.refits_on_all_rows:
        return dev_idx, hold_idx
    fit, scored = time_ordered_refit(task.cv, dev_idx, hold_idx)
    if len(scored) == 0 and new:
        raise SpecError("task.holdout.fraction", f"the holdout's {len(hold_idx)} latest rows are all within "
                                                 f"cv.gap ({task.cv.gap} rows) of the development rows, which leaves "
                                                 "none to score the model on; raise the fraction or lower the gap")
    return fit, scored if len(scored) else hold_idx


MIN_ROWS_PER_CLASS = 5
MANY_CLASSES = 20
"""A numeric target of more than MANY_CLASSES distinct values with fewer than MIN_ROWS_PER_CLASS rows per value, on
average, looks like a quantity, not classes: the diabetes target's 442 rows hold 214 values (2.1 each), which
scikit-learn's ``type_of_target`` calls multiclass because each is a whole number. A warning, not a refusal: a
small dataset of many real classes (30 classes of 4 rows) looks the same, and a recorded experiment must still
resume, reproduce and promote."""


def _continuous_looking_target(task: TaskConfig, ds: Dataset) -> str | None:
    """A classifier on a continuous target ran, every value a class of its own (LogisticRegression on diabetes
    scored accuracy 0.002), where a regressor with stratified folds was refused. A target whose values are not
    whole numbers is refused (scikit-learn's classifiers refuse it at every fit: no trial could complete); one that
    only looks like a quantity is warned about.

    Raises:
        SpecError: at ``task.estimator``, naming the fix.
    """
    from sklearn.utils.multiclass import type_of_target

    kind = type_of_target(ds.y)
    target = repr(task.data.target) if task.data.target else f"of the {task.data.sklearn} data"
    fix = ("use a regressor (e.g. sklearn.linear_model.Ridge or sklearn.ensemble.RandomForestRegressor), or a target "
           "of classes")
    if kind.startswith("continuous"):
        raise SpecError("task.estimator", f"{task.estimator.path} is a classifier, but the target {target} is a "
                                          f"continuous quantity (its values are not whole numbers); {fix}")
    values = len(np.unique(ds.y)) if kind == "multiclass" else 0
    if np.issubdtype(np.asarray(ds.y).dtype, np.number) and values > MANY_CLASSES and \
            values * MIN_ROWS_PER_CLASS > ds.n_rows:
        return (f"task.estimator: {task.estimator.path} is a classifier, but the target {target} looks like a "
                f"quantity ({values} distinct values over {ds.n_rows} rows, fewer than {MIN_ROWS_PER_CLASS} each): "
                f"each value is a class of its own; if it is a quantity, {fix}")
    return None


@dataclass(frozen=True)
class FoldResults:
    scores: list[float]
    fit_times: list[float]
    last_model: Any
    last_test: np.ndarray      # indices (into the data given) of the last fold's test rows


def cross_validate(task: TaskConfig, ds: Dataset, splits: list[Split], params: Mapping[str, Any], seed: int | None,
                   scorer: TaskScorer, on_fold: Callable[[int, float], bool] | None = None,
                   base_dir: BaseDir = None) -> FoldResults:
    """Fit a fresh pipeline on each training fold only (every preprocessing step included) and score it on the
    fold's test rows. ``on_fold(index, running_mean)`` returning True stops early (pruned). ``base_dir``: the spec's
    folder, where a step's module beside the spec is loaded from (without it, a ``mysteps`` imported by name: another
    folder's, where one process imported that first)."""
    scores: list[float] = []
    fit_times: list[float] = []
    model: Any = None
    test = np.arange(0)
    for i, (train, test) in enumerate(splits):
        model = build_pipeline(task, dict(params), seed, base_dir, data=ds)
        started = time.perf_counter()
        model.fit(ds.X[train], ds.y[train])
        fit_times.append(time.perf_counter() - started)
        scores.append(scorer(model, ds.X[test], ds.y[test]))
        if on_fold is not None and on_fold(i, float(np.mean(scores))):
            break
    return FoldResults(scores, fit_times, model, test)


def evaluate(task: TaskConfig, params: Mapping[str, Any], trial: Any, base_dir: BaseDir = None) -> dict[str, float]:
    """Cross-validate one configuration on the development rows (the holdout is never touched).

    Args:
        task: the task section.
        params: the trial's parameters (``step__param`` or bare names of the final estimator's parameters).
        trial: the trial context: ``seed`` seeds the estimator's ``random_state``; ``report(fold, running_mean)``
            is called after each fold, and when ``should_prune()`` turns true the trial stops as pruned.
        base_dir: the spec's folder; a relative data path is read from there.

    Returns:
        ``{metric}`` (the mean over folds), ``{metric}_std``, ``fold_{i}``, ``fit_time_s`` (mean per fold),
        ``unstable`` (1.0 when the fold std exceeds ``task.unstable_spread``), ``n_folds`` and, unless
        ``task.latency`` is null, ``latency_p50_ms`` / ``latency_p95_ms`` (one row), ``latency_batch_ms`` (one
        batch of ``latency_batch_rows``) and ``model_size_bytes``: all measured on the last fold's model and its
        held-out rows.

    Raises:
        TrialPruned: the scheduler stopped the trial after a fold.
        SpecError: the data or the folds do not fit the task (the message names the field).
    """
    from tunesmith.evaluation.context import TrialPruned

    prep = prepare(task, base_dir)
    dev = prep.dev
    should_prune = getattr(trial, "should_prune", None)
    pruned = False

    def on_fold(i: int, running: float) -> bool:
        nonlocal pruned
        trial.report(i, running)
        pruned = bool(should_prune()) if should_prune is not None else False
        return pruned

    folds = cross_validate(task, dev, prep.splits, params, getattr(trial, "seed", None), prep.scorer, on_fold,
                           base_dir)
    if pruned:
        raise TrialPruned()
    return summarize(task, folds, dev)


def summarize(task: TaskConfig, folds: FoldResults, ds: Dataset) -> dict[str, float]:
    name = task.metric_name
    scores = folds.scores
    std = float(np.std(scores))
    out: dict[str, float] = {name: float(np.mean(scores)), f"{name}_std": std}
    out.update({f"fold_{i}": s for i, s in enumerate(scores)})
    out["n_folds"] = float(len(scores))
    out["fit_time_s"] = float(np.mean(folds.fit_times))
    out["unstable"] = 1.0 if task.unstable_spread is not None and std > task.unstable_spread else 0.0
    if task.latency is not None:
        out.update(measure_model(folds.last_model, ds.X[folds.last_test], task.latency))
    return out


def measure_model(model: Any, X: np.ndarray, cfg: LatencyConfig) -> dict[str, float]:
    """Prediction latency on rows ``X`` (per row: p50 / p95 over ``cfg.rows`` single-row calls; per batch: the
    median of ``cfg.repeats`` calls) and the model's serialized size.

    The size is ``len(pickle.dumps(model))``, measured in memory; nothing is ever unpickled.
    """
    if len(X) == 0:
        return {}
    model.predict(X[:1])  # warm-up: first-call costs (imports, caches) are not per-row latency
    single = []
    for i in range(cfg.rows):
        row = X[i % len(X)][None, :]
        t0 = time.perf_counter_ns()
        model.predict(row)
        single.append((time.perf_counter_ns() - t0) / 1e6)
    batch_rows = X[np.arange(cfg.batch_size) % len(X)]
    batches = []
    for _ in range(cfg.repeats):
        t0 = time.perf_counter_ns()
        model.predict(batch_rows)
        batches.append((time.perf_counter_ns() - t0) / 1e6)
    return {
        "latency_p50_ms": float(np.percentile(single, 50)),
        "latency_p95_ms": float(np.percentile(single, 95)),
        "latency_batch_ms": float(statistics.median(batches)),
        "latency_batch_rows": float(len(batch_rows)),
        "model_size_bytes": float(len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))),
    }


def holdout_report(task: TaskConfig, best_params: Mapping[str, Any], seed: int | None,
                   base_dir: BaseDir = None) -> dict[str, float]:
    """Refit the configuration as the model to ship is (:func:`refit`) and score it once on the holdout.

    Call it after the search, with the best trial's parameters; its result is for reporting only and must not
    be fed back to the search.

    Returns:
        ``holdout_{metric}``, ``holdout_rows``, ``holdout_fit_time_s``; empty when the task has no holdout.
    """
    if task.holdout is None:
        return {}
    prep = prepare(task, base_dir)
    ds = prep.dataset
    started = time.perf_counter()
    model = refit(task, best_params, seed, base_dir)
    fit_time = time.perf_counter() - started
    score = prep.scorer(model, ds.X[prep.holdout_idx], ds.y[prep.holdout_idx])
    return {f"holdout_{task.metric_name}": score, "holdout_rows": float(len(prep.holdout_idx)),
            "holdout_fit_time_s": fit_time}


def refit(task: TaskConfig, params: Mapping[str, Any], seed: int | None, base_dir: BaseDir = None) -> Any:
    """The configuration's pipeline fit on every development row (never on the holdout), or for time-ordered rows
    on the latest ones a sliding window keeps (unless ``cv.refit: all_rows``): the model to ship."""
    prep = prepare(task, base_dir)
    model = build_pipeline(task, dict(params), seed, base_dir, data=prep.dataset)
    with folder_importable(base_dir):  # a step of the spec's folder may import beside it as it fits, as in a trial
        model.fit(prep.dataset.X[prep.refit_idx], prep.dataset.y[prep.refit_idx])
    return model


def score_new_rows(task: TaskConfig, params: Mapping[str, Any], seed: int | None, X: np.ndarray, y: np.ndarray,
                   base_dir: BaseDir = None) -> float:
    """Refit the configuration on every development row (:func:`refit`) and score it on rows from elsewhere (new
    data, encoded with :func:`tunesmith.tasks.rows_like`). For monitoring, not for search."""
    return float(prepare(task, base_dir).scorer(refit(task, params, seed, base_dir), X, y))


def fingerprint(task: TaskConfig, base_dir: BaseDir = None) -> dict[str, Any]:
    """The dataset's fingerprint (JSON-able): ``content_hash``, ``n_rows``, ``n_cols``, ``columns`` (name ->
    int / float / string / datetime), ``source``, ``target``, ``groups``, ``time``. Compare two with
    :func:`tunesmith.tasks.fingerprint_changes`."""
    return dataset_fingerprint(task.data, base_dir)


def after_run_estimates(task: TaskConfig, space: Any, trials: Sequence[TrialRecord], selection: SelectionRule,
                        seed: int, base_dir: BaseDir = None, prices: Prices | None = None,
                        enqueue: Sequence[Mapping[str, ParamValue]] = ()) -> tuple[dict[str, Any], list[str]]:
    """What a run records once its trials have ended: the holdout score of the trial ``selection`` (the run's own
    rule) picks from ``trials``, refit on every development row (none without a holdout or a pick), and, if asked,
    the nested estimate, whose inner searches pick by the same rule and evaluate the run's ``enqueue`` first
    (:func:`tunesmith.tasks.nested_estimate`); with
    the library warnings their fits raised, each once (:mod:`tunesmith.tasks.library_warnings`), for the run to say.
    A nested estimate that cannot be given (an outer fold with no selectable inner trial, or none that completed,
    or a failure of its own: the pick's refit on an outer training part, the outer scorer) is recorded as
    ``nested.unavailable`` and said, never raised: the holdout, recorded with it, is kept. A holdout the model to
    ship cannot be refit or scored on is recorded undefined, its error the reason (:func:`_holdout_or_why`).

    The nested estimate's inner searches run here, in the coordinator, after the budget has ended: no executor
    measures or prices them. So what the estimate took is recorded with it (``duration_s``, ``cpu_s`` of this
    process) and, when ``prices`` price CPU time and nothing else, its ``cost``: outer folds times
    ``nested.trials`` cross-validated fits can cost as much as the run.
    """
    from tunesmith.tasks.library_warnings import captured, explained
    from tunesmith.tasks.nested import nested_estimate

    results: dict[str, Any] = {}
    held: list[str] = []  # the holdout refit's own warnings: an undefined (NaN) score keeps them, as why
    with captured() as said, folder_importable(base_dir):  # the nested fits, as a trial's (see refit)
        picked = selection.pick(trials)
        if task.holdout is not None and picked is not None:
            best = picked.trial
            unscored: list[str] = []
            with captured() as held:  # apart from the nested fits' (one capture blamed theirs on the holdout)
                results["holdout"] = {"trial": best.number, "params": dict(best.params),
                                      **_holdout_or_why(task, best.params, best.seed, base_dir, unscored)}
            held[:0] = unscored  # why the score is undefined: the failure first, then what the library warned
            results = explained(results, held)
        if task.nested is not None:
            started, started_cpu = time.monotonic(), _cpu_s()
            try:
                results["nested"] = nested_estimate(task, space, task.nested.strategy, task.nested.trials, seed,
                                                    base_dir, selection=selection, enqueue=enqueue)
            except SpecError as e:  # no estimate (every inner trial of a fold failed): say so, keep the holdout
                results["nested"] = {"unavailable": f"{e.path}: {e.message}"}  # the path: inner or outer folds
            except Exception as e:  # noqa: BLE001 - the pick's refit or the outer scorer failed: the estimate is
                # lost, not the holdout beside it nor the run, whose trials all ended (Ctrl-C is no Exception)
                results["nested"] = {"unavailable": f"{type(e).__name__}: {e}"}
            results["nested"].update(_what_it_took(time.monotonic() - started, _cpu_s() - started_cpu, prices))
    said[:0] = held  # the run says the holdout refit's warnings too, first
    if "unavailable" in results.get("nested", {}):
        said.append(f"no nested estimate: {results['nested']['unavailable']}")
    return results, said


def _holdout_or_why(task: TaskConfig, params: Mapping[str, Any], seed: int | None, base_dir: BaseDir,
                    why: list[str]) -> dict[str, float]:
    """:func:`holdout_report`, or, where the model to ship cannot be refit or scored on the holdout (a level of a text
    column only the holdout holds, given to a one-hot step that refuses unknown levels), an undefined (NaN) score on
    the holdout's rows, with the library's error appended to ``why``. That escaped ``run`` as a traceback after every
    trial had ended, the experiment recorded ``completed`` with no holdout, no word of why, and no nested estimate
    (made after it). Recorded undefined, it is shown as every undefined holdout score is (``why_undefined``): no CV
    gap, a ``min:`` gate on it fails, ``drift`` compares with the CV score."""
    try:
        return holdout_report(task, dict(params), seed, base_dir)
    except ValueError as e:  # scikit-learn's refusal (its errors derive from it): the trials' results stand, and
        # what it raised is the reason recorded; any other error (a SpecError from prepare, a defect) is raised
        if isinstance(e, TunesmithError):  # a SpaceError is also a ValueError: ours, not the library's refusal
            raise
        rows = len(prepare(task, base_dir).holdout_idx)
        error = f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}"
        hint = ("; a level of a text column the development rows never had is unknown to an encoder fit on them: "
                "tunesmith.tasks.steps.OneHotText (handle_unknown: ignore) encodes it as none of the known levels"
                if "unknown categor" in error.lower() else "")
        why.append(f"the model to ship could not be refit on the development rows and scored on the holdout: "
                   f"{error}{hint}")
        return {f"holdout_{task.metric_name}": math.nan, "holdout_rows": float(rows)}


def _cpu_s() -> float:
    """CPU seconds of this process and of its children that ended (an estimator's n_jobs workers, joblib's loky
    processes once shut down): the inner searches run here, and process_time alone missed what they spread out."""
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _what_it_took(duration_s: float, cpu_s: float, prices: Prices | None) -> dict[str, float]:
    """The nested estimate's wall time, CPU seconds and, priced as a trial is (:meth:`Prices.price`), its cost: on
    no GPU (the coordinator's refits), and unknown, so left out, where memory is priced (its peak is not measured)."""
    from tunesmith.cost import ResourceUsage

    took = {"duration_s": round(duration_s, 3), "cpu_s": round(cpu_s, 3)}
    cost = prices.price(ResourceUsage(took["cpu_s"], None, took["duration_s"])) if prices is not None else None
    if cost is not None and prices is not None and prices.metric is None:  # a reported cost: the trials' alone
        took["cost"] = cost
    return took
