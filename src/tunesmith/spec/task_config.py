"""The ``task:`` section of a spec: a built-in, leak-free cross-validated scikit-learn task.

A spec declares ``task:`` instead of ``trial:``; each trial then fits the declared pipeline inside every training
fold and reports its cross-validated score (see :mod:`tunesmith.tasks`). Everything that can be checked without
the data is checked here, once, with the field path in the message; :func:`check_task_space` additionally
imports the estimator and the pipeline steps to check the search space's ``step__param`` names.

Example::

    task:
      estimator: sklearn.linear_model.LogisticRegression
      # (or, with arguments, estimator: {sklearn.linear_model.LogisticRegression: {max_iter: 500}})
      pipeline: [sklearn.preprocessing.StandardScaler, sklearn.feature_selection.SelectKBest]
      data: {path: data/churn.csv, target: churned, groups: customer_id}
      cv: {kind: stratified_group, folds: 5}
      holdout: {fraction: 0.2}
      scoring: roc_auc  # or {precision_at_recall: 0.8} | {recall_at_precision: 0.9} | {cost: [[0, 1], [5, 0]]}
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from tunesmith.errors import SpecError, quoted
from tunesmith.strict_model import OneOrMore, StrictFloat, StrictInt, StrictModel
from tunesmith.suggestions import closest

TASK_MEASURED = ("latency_p50_ms", "latency_p95_ms", "latency_batch_ms", "model_size_bytes")
CV_KINDS = ("kfold", "stratified", "group", "stratified_group", "timeseries", "repeated")
SKLEARN_DATASETS = ("iris", "wine", "breast_cancer", "digits", "diabetes")
GENERATORS = ("classification", "regression", "noise", "groups", "random_walk")
# True while spec_from_dict validates an experiment's stored spec: its scorer name was checked when it was recorded
RECORDED_SPEC: ContextVar[bool] = ContextVar("RECORDED_SPEC", default=False)
GROUPS_WITH_TIME = (  # task.data.groups's message: TimeSeriesSplit ignores groups (it only warns)
    "cannot be kept with a time column: time-ordered rows are split by time (folds and holdout), which puts a "
    "group's earlier rows in training and its later rows in test, and scikit-learn has no splitter that keeps "
    "groups whole in time order; drop `groups` to score each group's future from its past, or drop `time` to "
    "score groups never seen (cv.kind group or stratified_group)")
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")


# tunesmith's own steps by their bare names, for the hint (the spec does not import the tasks layer to list them)
_OWN_STEPS = {"onehottext": "tunesmith.tasks.steps.OneHotText"}


def _check_dotted(value: str) -> str:
    if not _DOTTED.fullmatch(value):
        own = _OWN_STEPS.get(value.lower()) if isinstance(value, str) else None
        hint = f" (tunesmith's own step is {own})" if own else ""
        raise ValueError(f"must be an importable class path like 'sklearn.svm.SVC'; got {quoted(value)}{hint}")
    return value


class Component(StrictModel):
    """An importable class (``module.Class``) and fixed constructor parameters.

    Written in YAML as ``module.Class`` or as ``{module.Class: {param: value}}``.
    """

    path: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"path": data}
        if isinstance(data, dict) and len(data) == 1 and "path" not in data:
            (path, params), = data.items()
            if params is None:
                params = {}
            if not isinstance(params, dict):
                raise ValueError(f"the parameters of {path!r} must be a mapping; got {quoted(params)}")
            return {"path": path, "params": params}
        return data

    @field_validator("path")
    @classmethod
    def _dotted(cls, v: str) -> str:
        return _check_dotted(v)


class GenerateConfig(StrictModel):
    """Synthetic data (seeded), for examples and tests.

    ``classification`` / ``regression``: scikit-learn's make_* generators. ``noise``: features and a binary
    label independent of each other (any score above chance is leakage). ``groups``: labels and features
    shared within a group (predictable only by memorising groups). ``random_walk``: a time series whose next
    step is unpredictable from the past.
    """

    kind: Literal["classification", "regression", "noise", "groups", "random_walk"]
    n_rows: StrictInt = Field(default=300, ge=20, le=1_000_000)
    n_features: StrictInt = Field(default=20, ge=1, le=10_000)
    n_groups: StrictInt = Field(default=30, ge=2, description="groups for kind: groups")
    seed: StrictInt = Field(default=0, ge=0, lt=2**32)


class DataConfig(StrictModel):
    """Where the rows come from: a CSV / Parquet file, a bundled scikit-learn dataset, or a generator."""

    path: str | None = None
    sklearn: str | None = None
    generate: GenerateConfig | None = None
    target: str | None = Field(default=None, description="the label column (files only)")
    groups: str | None = Field(default=None, description="rows of one group stay within one fold")
    time: str | None = Field(default=None, description="orders the rows; never trained on the future")
    features: Annotated[list[str], OneOrMore] | None = Field(
        default=None, description="feature columns; default: all but the above")
    # Experiments recorded before a time column listed in ``features`` was fed as its timestamps say ``codes`` (the
    # store's migration 0008): a resumed one must be fed what its trials were fit on.
    time_as: Literal["seconds", "codes"] | None = Field(
        default=None, description="the time column listed in features: fed as its timestamps (seconds, a date's "
                                  "POSIX seconds: the default) or as text codes of its dates (codes)")

    @field_validator("sklearn")
    @classmethod
    def _known_dataset(cls, v: str | None) -> str | None:
        if v is not None and v not in SKLEARN_DATASETS:
            close = closest(v, SKLEARN_DATASETS)
            hint = f"did you mean {close!r}? " if close else ""
            raise ValueError(f"unknown dataset {v!r}; {hint}choose one of {', '.join(SKLEARN_DATASETS)}")
        return v

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        given = [k for k in ("path", "sklearn", "generate") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of `path` (CSV or Parquet), `sklearn` (a bundled dataset) or "
                             f"`generate`; got {', '.join(given) or 'none'}")
        if self.path is not None:
            if not self.path.lower().endswith((".csv", ".parquet", ".pq")):
                raise ValueError(f"path must name a .csv or .parquet file; got {self.path!r}")
            if self.target is None:
                raise ValueError("a data file needs `target`: the name of the label column")
        elif any(v is not None for v in (self.target, self.groups, self.time, self.features)):
            raise ValueError("target, groups, time and features name columns of a data file; bundled and "
                             "generated datasets bring their own (generate: {kind: groups} has groups, "
                             "{kind: random_walk} a time order)")
        if self.path is not None:
            named = [c for c in (self.target, self.groups, self.time) if c is not None]
            dup = next((c for c in named if named.count(c) > 1), None)
            if dup is not None:
                raise ValueError(f"column {dup!r} is named twice among target, groups and time")
            if self.features is not None and self.target in self.features:
                raise ValueError(f"features must not include the target column {self.target!r}")
        if self.time_as is not None and (self.time is None or self.time not in (self.features or ())):
            raise ValueError("time_as says what the time column listed in features is fed as; features does not "
                             "list a time column: remove it")
        return self

    @property
    def time_as_codes(self) -> bool:
        return self.time_as == "codes"

    @property
    def has_groups(self) -> bool:
        return self.groups is not None or (self.generate is not None and self.generate.kind == "groups")

    @property
    def has_time(self) -> bool:
        return self.time is not None or (self.generate is not None and self.generate.kind == "random_walk")


class CVConfig(StrictModel):
    """How the non-holdout rows are split into folds. ``kind`` defaults from the data: ``timeseries`` with a
    time column, ``group`` (``stratified_group`` for classification) with groups, else ``stratified`` for
    classification and ``kfold`` for regression."""

    kind: Literal["kfold", "stratified", "group", "stratified_group", "timeseries", "repeated"] | None = None
    folds: StrictInt = Field(default=5, ge=2, le=100)
    repeats: StrictInt = Field(default=3, ge=1, le=100, description="for kind: repeated")
    shuffle: bool = True
    seed: StrictInt = Field(default=0, ge=0, lt=2**32, description="the folds are the same for every trial")
    gap: StrictInt = Field(default=0, ge=0, description="timeseries: rows left out between train and test")
    expanding: bool = Field(default=True, description="timeseries: expanding window; false: sliding window")
    window: StrictInt | None = Field(default=None, ge=1, description="timeseries, sliding: training rows per fold")
    # Experiments recorded before cuts fell between timestamps say ``rows`` (the store's migration 0008): a resumed
    # one must split as it did. ``rows`` also cuts a holdout carved by time.
    cut_at: Literal["timestamps", "rows"] | None = Field(
        default=None, description="timeseries: where fold (and time holdout) cuts fall: between timestamps (the "
                                  "default: no timestamp on both sides of a cut) or at row counts")
    # Experiments recorded before the model to ship was fit as the folds were say ``all_rows`` (the store's
    # migrations 0006 and 0009): promote, drift and cycle must judge the model the recorded holdout figure is of.
    refit: Literal["as_folds", "all_rows"] | None = Field(
        default=None, description="timeseries, with a holdout: the model to ship is fit as the folds were (as_folds, "
                                  "the default: on the latest cv.window development rows, scored from cv.gap rows "
                                  "into the holdout) or on every development row, scored on the whole holdout")

    @property
    def cuts_at_rows(self) -> bool:
        return self.cut_at == "rows"

    @property
    def refits_on_all_rows(self) -> bool:
        return self.refit == "all_rows"


class HoldoutConfig(StrictModel):
    """Rows carved off before tuning, never seen by the search; the best configuration is scored on them once.

    The rows are the latest ones with a time column, whole groups with groups, stratified for classification.
    ``fraction`` is of the rows; with groups, whole groups are drawn until they hold about that many rows.
    ``fraction_of: groups`` draws that fraction of the groups instead (scikit-learn's GroupShuffleSplit), as
    experiments recorded before tunesmith counted rows do: groups of unequal sizes make its share of the rows
    anything (0.2 of the groups held 60% of the rows of one dataset)."""

    fraction: StrictFloat = Field(gt=0, lt=1)
    seed: StrictInt = Field(default=0, ge=0, lt=2**32)
    fraction_of: Literal["rows", "groups"] | None = Field(
        default=None, description="with groups: what fraction counts, rows (the default) or groups")
    # Experiments recorded before a classifier's grouped holdout was stratified say ``random`` (the store's
    # migration 0008): a resumed one must hold out the rows it held out then.
    draw: Literal["stratified", "random"] | None = Field(
        default=None, description="with groups, for a classifier: whole groups drawn to keep each class's share "
                                  "(stratified, the default) or at random")

    @property
    def draws_at_random(self) -> bool:
        return self.draw == "random"

    @property
    def counts_groups(self) -> bool:
        return self.fraction_of == "groups"


class BusinessScoring(StrictModel):
    """A business metric: exactly one of the three.

    ``precision_at_recall: r``: the best precision of any threshold whose recall is at least r (binary).
    ``recall_at_precision: p``: the best recall of any threshold whose precision is at least p (binary).
    ``cost: [[...]]``: mean cost per row, ``cost[true][predicted]``, classes in sorted order (minimize).
    """

    precision_at_recall: StrictFloat | None = Field(default=None, gt=0, le=1)
    recall_at_precision: StrictFloat | None = Field(default=None, gt=0, le=1)
    cost: list[list[StrictFloat]] | None = None
    pos_label: str | int | bool | None = Field(default=None, description="binary metrics: the positive class; "
                                                                          "default: the greater label")
    name: str | None = Field(default=None, description="metric name; default: the metric's kind")

    @model_validator(mode="after")
    def _exactly_one(self) -> BusinessScoring:
        given = [k for k in ("precision_at_recall", "recall_at_precision", "cost") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of precision_at_recall, recall_at_precision or cost; "
                             f"got {', '.join(given) or 'none'}")
        if self.cost is not None:
            n = len(self.cost)
            if n < 2 or any(len(row) != n for row in self.cost):
                raise ValueError(f"cost must be a square matrix of at least 2x2 (rows: true class, columns: "
                                 f"predicted class); got {quoted(self.cost)}")
            if any(c < 0 for row in self.cost for c in row):
                raise ValueError(f"cost entries must be >= 0; got {quoted(self.cost)}")
        return self

    @property
    def kind(self) -> str:
        if self.precision_at_recall is not None:
            return "precision_at_recall"
        if self.recall_at_precision is not None:
            return "recall_at_precision"
        return "cost"


class LatencyConfig(StrictModel):
    """How prediction latency is measured on each trial's held-out fold rows."""

    rows: StrictInt = Field(default=30, ge=1, le=10_000, description="single-row predictions timed")
    batch_size: StrictInt = Field(default=256, ge=1, description="rows per batch prediction")
    repeats: StrictInt = Field(default=5, ge=1, le=1000, description="batch predictions timed")


class NestedConfig(StrictModel):
    """Nested cross-validation: an outer loop around the whole tuning procedure, for an unbiased estimate."""

    outer_folds: StrictInt = Field(default=3, ge=2, le=20)
    trials: StrictInt = Field(default=10, ge=1, le=10_000, description="inner search trials per outer fold")
    strategy: str = "tpe"


class TaskConfig(StrictModel):
    """The ``task:`` section. See the module docstring."""

    estimator: Component
    pipeline: list[Component] = Field(default_factory=list)
    data: DataConfig
    cv: CVConfig = Field(default_factory=CVConfig)
    holdout: HoldoutConfig | None = None
    scoring: str | BusinessScoring
    pos_label: str | int | bool | None = Field(
        default=None, description="the positive class of scikit-learn's binary scorers (f1, precision, recall, "
                                  "average_precision): 'yes' of a yes/no target; default: 1, as scikit-learn's")
    unstable_spread: StrictFloat | None = Field(default=None, gt=0,
                                                description="flag a config whose fold std exceeds this")
    exclude_unstable: bool = Field(default=False, description="selection skips configs flagged unstable")
    nested: NestedConfig | None = None
    latency: LatencyConfig | None = Field(default_factory=LatencyConfig, description="null: do not measure")

    @field_validator("scoring")
    @classmethod
    def _known_scorer(cls, v: str | BusinessScoring) -> str | BusinessScoring:
        if isinstance(v, str) and not RECORDED_SPEC.get():  # see spec_from_dict
            from sklearn.metrics import get_scorer_names

            names = get_scorer_names()
            if v not in names:
                close = closest(v, names)
                hint = f"did you mean {close!r}? " if close else ""
                if close and close.startswith("neg_") and not v.lower().startswith("neg_"):  # rmse, mae, ...
                    hint = f"did you mean {close!r} (scikit-learn's scorers are maximised, so errors are negated)? "
                raise ValueError(f"unknown scorer {v!r}; {hint}use a scikit-learn scorer name (accuracy, roc_auc, "
                                 "neg_log_loss, r2, ...) or a business metric {precision_at_recall: 0.8}")
        return v

    @field_validator("pos_label")
    @classmethod
    def _scorer_takes_pos_label(cls, v: str | int | bool | None, info: ValidationInfo) -> str | int | bool | None:
        scoring = info.data.get("scoring")  # declared before: absent where it was refused
        if v is None or scoring is None:
            return v
        if isinstance(scoring, BusinessScoring):
            raise ValueError(f"a business metric takes its positive class beside it: move it to "
                             f"task.scoring.pos_label ({{{scoring.kind}: ..., pos_label: {v!r}}})")
        from tunesmith.tasks.scoring import BINARY_SCORERS, takes_pos_label

        if not RECORDED_SPEC.get() and not takes_pos_label(scoring):
            raise ValueError(f"{scoring} (task.scoring) does not score one positive class: remove pos_label, or "
                             f"use a scorer that does ({BINARY_SCORERS}; objective.metric the same)")
        return v

    @model_validator(mode="after")
    def _cv_fits_data(self) -> TaskConfig:
        # A kind that would leak for a groups or time column is refused once the data is read
        # (tunesmith.tasks.splits), after the column is found: a mistyped column is named, not the kind.
        kind = self.cv.kind
        if kind in ("group", "stratified_group") and not self.data.has_groups:
            raise ValueError(f"cv.kind {kind!r} needs a groups column: set data.groups")
        if kind == "timeseries" and not self.data.has_time:
            raise ValueError("cv.kind timeseries needs a time column to order the rows: set data.time")
        if self.holdout is not None and self.holdout.fraction_of is not None and not self.data.has_groups:
            raise ValueError("holdout.fraction_of says what the fraction counts where whole groups are held out; "
                             "the data has no groups: remove it")
        if self.holdout is not None and self.holdout.draw is not None and not self.data.has_groups:
            raise ValueError("holdout.draw says how whole groups are held out; the data has no groups: remove it")
        if self.cv.cut_at is not None and not self.data.has_time:
            raise ValueError("cv.cut_at says where time-ordered rows are cut; the data has no time column: remove it")
        if self.cv.refit is not None and not self.data.has_time:
            raise ValueError("cv.refit says how a time-ordered model to ship is fit; the data has no time column: "
                             "remove it")
        if self.cv.window is not None and self.cv.expanding:
            raise ValueError("cv.window sets a sliding window's size; also set expanding: false")
        if isinstance(self.scoring, BusinessScoring) and self.scoring.kind != "cost" and self.data.generate is not None:
            if self.data.generate.kind in ("regression", "random_walk"):
                raise ValueError(f"scoring.{self.scoring.kind} needs a binary classification target")
        return self

    @property
    def recorded_metrics(self) -> tuple[str, ...]:
        """The metrics each trial of this task records (:func:`tunesmith.tasks.evaluate`), known before it runs:
        what a constraint or a promotion policy may name. One ``fold_<i>`` per split: ``folds``, times ``repeats``
        for the repeated kind."""
        name, splits = self.metric_name, self.cv.folds * (self.cv.repeats if self.cv.kind == "repeated" else 1)
        return (name, f"{name}_std", *(f"fold_{i}" for i in range(splits)), "n_folds", "fit_time_s", "unstable",
                *((*TASK_MEASURED, "latency_batch_rows") if self.latency is not None else ()))

    @property
    def metric_name(self) -> str:
        """The key of the objective metric in :func:`tunesmith.tasks.evaluate`'s result."""
        if isinstance(self.scoring, str):
            return self.scoring
        return self.scoring.name or self.scoring.kind

    @property
    def direction(self) -> str:
        """``maximize`` for scikit-learn scorers (losses are negated, ``neg_*``) and the binary business
        metrics; ``minimize`` for a cost."""
        return "minimize" if isinstance(self.scoring, BusinessScoring) and self.scoring.kind == "cost" else "maximize"


def check_task_space(task: TaskConfig, space_names: Iterable[str], path: str = "space",
                     base_dir: str | None = None) -> None:
    """Check every space key names a pipeline step's parameter (``step__param``) or a parameter of the estimator.

    Imports the estimator and the steps (so an unimportable class is reported here too).

    Raises:
        SpecError: at ``task.estimator`` / ``task.pipeline.N`` for a class that cannot be imported or built, at
            ``space.<key>`` for a key that names no step or parameter, with a did-you-mean.
    """
    from tunesmith.tasks.pipeline import tunable_parameters

    known = tunable_parameters(task, base_dir)  # raises SpecError for unimportable classes
    bare = {name.split("__", 1)[1] for name in known if name.startswith(f"{_final_step_name(task, base_dir)}__")}
    for key in space_names:
        if key in known or ("__" not in key and key in bare):
            continue
        step, sep, _ = key.partition("__")
        steps = sorted({n.split("__", 1)[0] for n in known})
        if sep and step not in steps:
            close = closest(step, steps)
            hint = f"did you mean {close!r}? " if close else ""
            raise SpecError(f"{path}.{key}", f"names no pipeline step {step!r}; {hint}steps are {', '.join(steps)} "
                                             "(scikit-learn's make_pipeline names: the lower-cased class name)")
        candidates = sorted(known) + sorted(bare)
        close = closest(key, candidates)
        hint = f"did you mean {close!r}? " if close else ""
        raise SpecError(f"{path}.{key}", f"names no parameter of the pipeline; {hint}write step__param, e.g. "
                                         f"{sorted(known)[0] if known else 'step__param'}")


def _final_step_name(task: TaskConfig, base_dir: str | None) -> str:
    from tunesmith.tasks.pipeline import step_names

    return step_names(task, base_dir)[-1]


__all__ = ["BusinessScoring", "CVConfig", "Component", "DataConfig", "GenerateConfig", "HoldoutConfig",
           "LatencyConfig", "NestedConfig", "TaskConfig", "check_features_distinct", "check_task_space",
           "check_time_ordered_folds_unshuffled", "folds_keep_time_order", "CV_KINDS",
           "SKLEARN_DATASETS", "GENERATORS"]


def check_groups_with_time(task: TaskConfig) -> None:
    """A groups column beside a time column is refused in a spec given anew (:func:`check_new_spec`'s checks): an
    experiment recorded before this check still loads, resumes and promotes as it ran (folds and holdout by time,
    groups ignored); a check in the model refused its resume, which reads the stored spec as a new one is read."""
    if task.data.has_groups and task.data.has_time:
        raise SpecError("task.data.groups", GROUPS_WITH_TIME)


def folds_keep_time_order(cv_kind: str | None, data: DataConfig) -> bool:
    """Whether the folds are time-ordered: ``cv.kind: timeseries``, or unset where the data has a time order (a time
    column, or ``generate: {kind: random_walk}``). Takes the fields, not the task: the spec writer asks it of a
    stored task's dict."""
    return cv_kind == "timeseries" or (cv_kind is None and data.has_time)


def check_time_ordered_folds_unshuffled(task: TaskConfig) -> None:
    """``cv.shuffle: true`` written for time-ordered folds (``kind: timeseries``, or unset beside a time column) is
    refused in a spec given anew: it was accepted and ignored, the folds kept in time order. Only where written:
    ``shuffle`` defaults to true, and every experiment's stored spec holds it, so a recorded one still loads.

    Raises:
        SpecError: at ``task.cv.shuffle``.
    """
    if folds_keep_time_order(task.cv.kind, task.data) and task.cv.shuffle and "shuffle" in task.cv.model_fields_set:
        raise SpecError("task.cv.shuffle", "time-ordered folds (cv.kind timeseries) keep the rows in time order and "
                                           "cannot be shuffled: remove shuffle (or set it to false)")


def check_features_distinct(task: TaskConfig) -> None:
    """A feature listed twice (``features: [age, age]``) is refused in a spec given anew, at the repeat: it was taken
    silently, and the estimator was handed that column twice. A spec given anew only, as
    :func:`check_groups_with_time`: an experiment recorded with one still loads and resumes as it ran."""
    features = task.data.features or []
    for i, name in enumerate(features):
        if name in features[:i]:
            raise SpecError(f"task.data.features.{i}", f"repeats {name!r} (item {features.index(name)}); list each "
                                                       "feature column once: remove this one")
