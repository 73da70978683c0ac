"""Built-in scikit-learn tasks: honest, leak-free evaluation of a pipeline configuration.

This package is the only place that imports estimator classes by name (``tasks.pipeline``). What it
guarantees: every preprocessing step is fit inside each training fold only; a group stays within one fold; rows
with a time column are ordered by it and never trained on their future; the holdout is carved (seeded) before
anything else and is seen only by :func:`holdout_report`.

The API for the runner (``base_dir``: the spec's folder, where relative data paths are read)::

    evaluate(task: TaskConfig, params: Mapping[str, Any], trial, base_dir=None) -> dict[str, float]
        One trial: CV on the development rows. Keys: task.metric_name (the fold mean), f"{metric}_std",
        fold_0..fold_{k-1}, n_folds, fit_time_s, unstable (0/1), latency_p50_ms, latency_p95_ms,
        latency_batch_ms, latency_batch_rows, model_size_bytes (the last five unless task.latency is null:
        measured on the last fold's model; `promote` measures the model it ships again).
        Calls trial.report(fold_index, running_mean) after each fold and raises TrialPruned when
        trial.should_prune() turns true. trial.seed seeds every step's unset random_state.

    holdout_report(task, best_params, seed, base_dir=None) -> dict[str, float]
        Refit (as refit does), score once on the holdout: holdout_{metric}, holdout_rows,
        holdout_fit_time_s ({} without a holdout). For reporting only; never feed it to the search.

    refit(task, params, seed, base_dir=None) -> model
        The configuration's pipeline fit on every development row (time-ordered rows: the latest a sliding
        window keeps, and the holdout scored after cv.gap rows): what `tunesmith promote` ships.

    fingerprint(task, base_dir=None) -> dict[str, Any]
        JSON-able: content_hash, n_rows, n_cols (the features), columns {name: int|float|string|datetime},
        source, target, groups, time. fingerprint_changes(old, new) -> list[str] says what changed (empty: same data).

    nested_estimate(task, space, strategy_name="tpe", trials_per_fold=10, seed=0, base_dir=None, *,
                    selection=None, enqueue=()) -> dict
        Nested CV with tunesmith's own strategy in-process, each inner search picking as the run does
        (selection: the run's SelectionRule: constraints, select, exclude_unstable) and evaluating the run's
        enqueued configurations first (enqueue: the spec's): nested_{metric},
        nested_{metric}_std, outer_scores, outer_best_params, inner_best_scores, inner_picks, outer_folds,
        trials_per_fold; or `unavailable` (why) when an outer fold has no selectable inner trial.

    prepare(task, base_dir=None) -> Prepared
        Loads the data and builds holdout and folds (cached per process); call it before a run to surface
        data errors (SpecError with the field path) before any trial starts.
"""

from tunesmith.tasks.data import (
    Dataset,
    RowsLike,
    fingerprint_changes,
    generate,
    load_dataset,
    read_columns,
    read_header,
    reference_columns,
    rows_like,
)
from tunesmith.tasks.evaluate import (
    Prepared,
    after_run_estimates,
    cross_validate,
    evaluate,
    fingerprint,
    holdout_report,
    measure_model,
    prepare,
    refit,
    score_new_rows,
)
from tunesmith.tasks.nested import nested_estimate
from tunesmith.tasks.pipeline import build_pipeline, step_names, tunable_parameters

__all__ = [
    "Dataset", "Prepared", "RowsLike", "after_run_estimates", "build_pipeline", "cross_validate", "evaluate",
    "fingerprint",
    "fingerprint_changes", "generate", "holdout_report", "load_dataset", "measure_model", "nested_estimate", "prepare",
    "read_columns", "read_header", "reference_columns", "refit", "rows_like", "score_new_rows", "step_names",
    "tunable_parameters",
]
