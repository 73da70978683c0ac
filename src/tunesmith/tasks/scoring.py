"""Scoring a fitted model on rows: any scikit-learn scorer by name, or a business metric.

A :class:`TaskScorer` returns the metric in its natural sign: scikit-learn scorers as scikit-learn defines them
(losses negated, ``neg_log_loss``), business metrics as named (a cost is a positive number to minimise).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tunesmith.errors import SpecError, TrialError
from tunesmith.space.domains import Categorical, Domain
from tunesmith.spec.task_config import BusinessScoring, TaskConfig
from tunesmith.suggestions import listed


@dataclass(frozen=True)
class TaskScorer:
    name: str
    greater_is_better: bool
    fn: Callable[[Any, np.ndarray, np.ndarray], float]

    def __call__(self, model: Any, X: np.ndarray, y: np.ndarray) -> float:
        return float(self.fn(model, X, y))


def task_scorer(task: TaskConfig) -> TaskScorer:
    scoring = task.scoring
    if isinstance(scoring, str):
        return TaskScorer(scoring, True, sklearn_scorer(scoring, task.pos_label))
    return TaskScorer(task.metric_name, scoring.kind != "cost", lambda m, X, y: business_score(scoring, m, X, y))


@dataclass(frozen=True)
class _ScorerParts:
    """What scikit-learn's scorer of a name is made of, read from its private attributes (it has no public way to
    ask a scorer's metric, response method or arguments): the one place that depends on them. A part this
    scikit-learn's scorer lacks is None (``kwargs``: empty), and what reads it leaves the scorer unchecked."""

    score_func: Callable[..., Any] | None
    response_method: str | tuple[str, ...] | list[str] | None
    sign: int | None
    kwargs: dict[str, Any]

    @property
    def asks(self) -> tuple[str, ...]:
        """The methods of the model the scorer calls (the first it has)."""
        response = self.response_method
        return (response,) if isinstance(response, str) else tuple(response or ())


def _scorer_parts(name: str) -> _ScorerParts | None:
    """The parts of scikit-learn's scorer ``name``; None where this scikit-learn has no scorer of that name."""
    from sklearn.metrics import get_scorer

    try:
        scorer = get_scorer(name)
    except ValueError:
        return None
    return _ScorerParts(getattr(scorer, "_score_func", None), getattr(scorer, "_response_method", None),
                        getattr(scorer, "_sign", None), dict(getattr(scorer, "_kwargs", None) or {}))


def sklearn_scorer(name: str, pos_label: str | int | bool | None = None) -> Any:
    """scikit-learn's scorer ``name``; with ``pos_label`` (``task.pos_label``), the same scorer of that positive
    class, as ``make_scorer(f1_score, pos_label="yes")`` is: scikit-learn's binary scorers take class 1 as positive,
    and fail on labels 'no'/'yes'. Rebuilt from the scorer's function, sign, response method and arguments (private
    attributes of scikit-learn's scorers, which have no public way to change one's argument); the scorer picks its
    probability column by ``pos_label`` too (average_precision of 'yes'), as scikit-learn's own does."""
    from sklearn.metrics import get_scorer, make_scorer

    scorer = get_scorer(name)  # (a name it does not have: its ValueError)
    if pos_label is None:
        return scorer
    parts = _scorer_parts(name)
    assert parts is not None and parts.sign is not None  # (get_scorer has it; every scikit-learn scorer a sign)
    return make_scorer(parts.score_func, response_method=parts.response_method, greater_is_better=parts.sign > 0,
                       **{**parts.kwargs, "pos_label": pos_label})


BINARY_SCORERS = "f1, precision, recall, jaccard, average_precision or neg_brier_score"


def takes_pos_label(name: str) -> bool:
    """Whether scikit-learn's scorer ``name`` scores one positive class (f1, precision, average_precision): its
    metric takes ``pos_label`` and the scorer does not set it (f1_macro sets None: it averages over classes)."""
    import inspect

    parts = _scorer_parts(name)
    if parts is None:  # a scorer this scikit-learn does not have: the spec's check of task.scoring says so
        return True
    return parts.score_func is not None and "pos_label" in inspect.signature(parts.score_func).parameters \
        and "pos_label" not in parts.kwargs


CLASSIFICATION_SCORERS = "accuracy, balanced_accuracy, f1, roc_auc, average_precision or neg_log_loss"
REGRESSION_SCORERS = "r2, neg_mean_absolute_error or neg_root_mean_squared_error"


def check_scoring_fits_estimator(task: TaskConfig, classification: bool, regression: bool,
                                 y: np.ndarray) -> str | None:
    """A regression scorer on a classifier failed every trial where the labels are not numbers ('no'/'yes': could
    not convert string to float): refused. On numeric labels it scores distances between them, which means
    something for ordered classes (wine quality 3-9 with neg_mean_absolute_error) and not for others (r2 of 0/1
    labels): said, not refused. A classification scorer on a regressor fails every trial (accuracy of continuous
    predictions, roc_auc without predict_proba): refused, for an estimator scikit-learn says is a regressor only
    (``regression``: one of the user's own, tagged as neither, is not judged).

    Returns:
        What to say of a regression scorer on numeric class labels, or None.

    Raises:
        SpecError: at ``task.scoring``, naming scorers of the estimator's kind.
    """
    scoring = task.scoring
    path = task.estimator.path
    if not isinstance(scoring, str):
        if not classification:
            raise SpecError("task.scoring", f"{task.metric_name} is a classification metric; {path} is not a "
                                            "classifier")
        check_scoring_fits_classes(task, y)
        return None
    kind = scorer_kind(scoring)
    if kind == "regression" and classification:
        numeric = np.issubdtype(np.asarray(y).dtype, np.number)
        said = (f"{scoring} is a regression metric (of distances between numbers); {path} is a classifier, which "
                "predicts classes")
        if not numeric:
            raise SpecError("task.scoring", f"{said}, and the labels are not numbers: use a classification scorer "
                                            f"({CLASSIFICATION_SCORERS}; objective.metric the same), or a regressor "
                                            "for a numeric target")
        return (f"task.scoring: {said}: it scores the distances between the class labels, which means something "
                f"only for ordered classes; otherwise use a classification scorer ({CLASSIFICATION_SCORERS})")
    if kind == "classification" and regression:
        raise SpecError("task.scoring", f"{scoring} is a classification metric; {path} is a regressor, which "
                                        f"predicts numbers: use a regression scorer ({REGRESSION_SCORERS}; "
                                        "objective.metric the same), or a classifier for a target of classes")
    if classification:
        check_scoring_fits_classes(task, y)
    return None


def check_scoring_fits_responses(task: TaskConfig, model: Any, tuned: Mapping[str, Domain] | None = None) -> str | None:
    """A scorer that asks the model for what it lacks (neg_log_loss: predict_proba, of a LinearSVC; roc_auc:
    predict_proba or decision_function) passed ``validate``, then every trial failed on scikit-learn's bare "Pipeline
    has none of the following attributes: predict_proba". Asked of ``model``, the task's pipeline as built (an SVC's
    predict_proba depends on its ``probability``), against the methods scikit-learn's scorer calls
    (``_response_method``, a private attribute: a scikit-learn without it leaves the scorer unchecked, as before);
    a business threshold metric needs predict_proba or decision_function (:func:`positive_scores`).

    ``tuned``: the space. A parameter of the final estimator it tunes may turn the method on (an SGDClassifier's
    ``loss: [hinge, log_loss]``, an SVC's ``probability: [true, false]``), which the pipeline as built does not say:
    where one of its choices (or bounds) does, some configurations work, and this is a warning (returned) that those
    without the method fail their trials.

    Raises:
        SpecError: at ``task.scoring``, naming the estimator, the method it lacks and the fixes, when no value the
            space gives a parameter turns the method on.
    """
    scoring = task.scoring
    if isinstance(scoring, str):
        parts = _scorer_parts(scoring)
        if parts is None:  # a scorer this scikit-learn does not have: check_scoring_fits_estimator's to judge
            return None
        asks = parts.asks
    elif scoring.kind == "cost":  # of predictions
        return None
    else:
        asks = ("predict_proba", "decision_function")
    if not asks or any(_has(model, method) for method in asks):
        return None
    path = task.estimator.path
    turning = _tuned_turning_on(model, tuned or {}, asks)
    if turning:
        return (f"task.scoring: {task.metric_name} needs the model's {' or '.join(asks)}, which "
                f"{path.rpartition('.')[2]} (task.estimator) offers only with some values of {', '.join(turning)} "
                "(the space): a configuration without it fails its trial")
    fix = ("use a scorer that takes its decision_function (roc_auc, average_precision"
           if _has(model, "decision_function") else "use a scorer of its predictions (accuracy, balanced_accuracy, f1")
    raise SpecError("task.scoring", f"{task.metric_name} needs the model's {' or '.join(asks)}, which "
                                    f"{path.rpartition('.')[2]} (task.estimator) lacks: every trial would fail; {fix}"
                                    "; objective.metric the same), or an estimator with predict_proba (e.g. "
                                    "sklearn.calibration.CalibratedClassifierCV, which calibrates a LinearSVC by "
                                    "default; sklearn.svm.SVC with probability: true)")


def _tuned_turning_on(model: Any, tuned: Mapping[str, Domain], asks: tuple[str, ...]) -> list[str]:
    """The parameters of ``tuned`` of which a value (a choice, a bound), set alone on ``model``, makes it offer one
    of ``asks``. Set as build_pipeline routes it (a name without ``__`` is the final step's); a value the estimator
    refuses to be set to says nothing."""
    from sklearn.base import clone

    turning = []
    final = model.steps[-1][0] if hasattr(model, "steps") else None
    for name, domain in tuned.items():
        values = domain.choices if isinstance(domain, Categorical) else (domain.low, domain.high)
        key = name if "__" in name or final is None else f"{final}__{name}"
        for value in values:
            try:
                probe = clone(model).set_params(**{key: value})
            except Exception:  # noqa: BLE001 - a parameter or value a user's class does not take: not judged here
                continue
            if any(_has(probe, method) for method in asks):
                turning.append(name)
                break
    return turning


def _has(model: Any, method: str) -> bool:
    """Whether the unfitted ``model`` offers ``method`` (scikit-learn's ``available_if`` answers from its
    parameters); a class whose answer raises otherwise is not judged."""
    try:
        return hasattr(model, method)
    except Exception:  # noqa: BLE001 - a class of the user's own may compute it: not known to lack it
        return True


MULTICLASS_SCORERS = "accuracy, balanced_accuracy, f1_macro, roc_auc_ovr or neg_log_loss"


def check_scoring_fits_classes(task: TaskConfig, y: np.ndarray) -> None:
    """A classifier's scorer that cannot take the target's classes failed every trial (the run exited 1): a binary
    scorer on three classes (roc_auc: "multi_class must be in ('ovo', 'ovr')", f1: "Target is multiclass but
    average='binary'"), f1 of labels 'no'/'yes' (its positive class is 1), a business metric's threshold on more than
    two classes, a pos_label no row has, a cost matrix of another size. Asked of scikit-learn, not a list of binary
    scorers: the scorer is called on a stand-in classifier (the class prior, as :func:`undefined_on_one_class`) on
    one row of each of the target's classes; one that raises there raises for any model. A score it gives that is
    not finite is no refusal: a real model's predictions can make it defined.

    Raises:
        SpecError: at ``task.scoring`` (``task.scoring.pos_label``, ``task.scoring.cost``), naming the fix.
    """
    classes = np.unique(np.asarray(y))
    several = len(classes) > 2
    names = listed([repr(c) for c in classes.tolist()], 6)
    target = f"the target {task.data.target!r}" if task.data.target else "the target"
    has = f"{target} has {len(classes)} classes ({names})"
    scoring = task.scoring
    if isinstance(scoring, BusinessScoring):
        if scoring.kind == "cost":
            assert scoring.cost is not None
            shape = (len(scoring.cost), max((len(row) for row in scoring.cost), default=0))
            if shape != (len(classes), len(classes)) or any(len(row) != len(classes) for row in scoring.cost):
                raise SpecError("task.scoring.cost", f"is {shape[0]}x{shape[1]}, but {has}: give one row and one "
                                                     "column per class, in the order listed")
            return
        if several:
            raise SpecError("task.scoring", f"{scoring.kind} needs a binary target (a positive class and the "
                                            f"rest), but {has}: use a scorer for several classes "
                                            f"({MULTICLASS_SCORERS}; objective.metric the same), or a binary target")
        if scoring.pos_label is not None and scoring.pos_label not in classes.tolist():
            raise SpecError("task.scoring.pos_label", f"{scoring.pos_label!r} is not a class of the target; {has}: "
                                                      "give one of them")
        return
    pos_label = task.pos_label
    if pos_label is not None and pos_label not in classes.tolist():
        words = ("yes", "true", "on", "y") if pos_label is True else ("no", "false", "off", "n")
        meant = [c for c in classes.tolist() if isinstance(pos_label, bool) and str(c).lower() in words]
        quote = (f" (YAML reads an unquoted yes, no, on or off as a boolean: quote it, pos_label: '{meant[0]}')"
                 if meant else "")
        raise SpecError("task.pos_label", f"{pos_label!r} is not a class of the target; {has}: give one of "
                                          f"them{quote}")
    why = stand_in_raises(scoring, classes, classes, pos_label)
    if why is None:
        return
    variants = [n for n in _variants(scoring) if stand_in_raises(n, classes, classes) is None]
    fix = f"use {_one_of(variants)}" if variants else (
        f"use a scorer for several classes ({MULTICLASS_SCORERS})" if several
        else "use a scorer that takes these labels (accuracy, balanced_accuracy, roc_auc)")
    other = "a binary target" if several else "labels 0 and 1 (1 the positive class)"
    if not several and pos_label is None and takes_pos_label(scoring):
        other = f"set the positive class, task.pos_label: {classes.tolist()[-1]!r}, or {other}"
    raise SpecError("task.scoring", f"{scoring} cannot score {target}, which has {len(classes)} classes ({names}): "
                                    f"every trial would fail (scikit-learn: {why}); {fix} (objective.metric the "
                                    f"same), or {other}")


def stand_in_raises(scoring: str, y_fit: np.ndarray, y_scored: np.ndarray,
                    pos_label: str | int | bool | None = None) -> str | None:
    """What scikit-learn raises when ``scoring`` scores a stand-in classifier fit on rows of classes ``y_fit`` on rows
    of classes ``y_scored`` (one row of each class: whether a scorer takes the target), or None. A scorer of
    probabilities or decision values (neg_log_loss, roc_auc_ovr) that raises there raises for any model fit on those
    classes: it checks the rows' classes against the model's ``classes_`` (a column each), not against what the model
    predicts (rows without a class the model knows: "y_true and y_prob contain different number of classes")."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an undefined score on so few rows (precision of no positive prediction)
        try:
            _stand_in_scored(scoring, y_fit, y_scored, pos_label)
        except Exception as e:  # noqa: BLE001 - whatever scikit-learn raises there, every trial would raise
            return str(e).split("\n")[0]
    return None


def _stand_in_scored(scoring: str, y_fit: np.ndarray, y_scored: np.ndarray,
                     pos_label: str | int | bool | None = None) -> float:
    """``scoring`` (of positive class ``pos_label``) of a stand-in classifier (``y_fit``'s class prior; it reads no
    feature, so it is given a column of zeros) on rows of classes ``y_scored``; raises what scikit-learn raises."""
    from sklearn.dummy import DummyClassifier

    stand_in = DummyClassifier(strategy="prior").fit(np.zeros((len(y_fit), 1)), y_fit)
    return float(sklearn_scorer(scoring, pos_label)(stand_in, np.zeros((len(y_scored), 1)), y_scored))


def _variants(scoring: str) -> list[str]:
    """scikit-learn's scorers named ``scoring`` and a suffix (roc_auc_ovr, f1_macro): the same metric averaged over
    classes."""
    from sklearn.metrics import get_scorer_names

    return sorted((n for n in get_scorer_names() if n.startswith(f"{scoring}_")), key=lambda n: (len(n), n))


def _one_of(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"one of {', '.join(names[:-1])} or {names[-1]}"


def scorer_kind(name: str) -> str | None:
    """``classification``, ``regression``, or None (a clustering agreement score, which takes either, or one whose
    kind scikit-learn does not say): read from scikit-learn's own scorer, not a list of names. A scorer that asks
    the model for probabilities or a decision function (roc_auc, neg_log_loss) is a classifier's; otherwise the
    module that holds its metric says (sklearn.metrics._classification and _ranking, or _regression). Both are
    private attributes of scikit-learn's scorers: one it no longer has leaves the scorer unchecked, as before."""
    parts = _scorer_parts(name)
    if parts is None:  # a recorded spec's scorer this scikit-learn no longer has: the trials say so
        return None
    if set(parts.asks) & {"predict_proba", "decision_function"}:
        return "classification"
    module = getattr(parts.score_func, "__module__", None) or ""
    if module.endswith(("._classification", "._ranking")):
        return "classification"
    if module.endswith("._regression"):
        return "regression"
    return None


def undefined_on_one_class(task: TaskConfig, y_train: np.ndarray, y_test: np.ndarray) -> str | None:
    """Why ``task``'s scorer cannot be computed on test rows that all hold one class, whatever the model, or None
    when it can. Asked of scikit-learn, not a list of names: a stand-in classifier (the training rows' class
    prior) is scored on the rows, and a scorer that raises there (neg_log_loss: "y_true contains only one label")
    or gives no finite number (roc_auc: NaN, "Only one class is present in y_true") does so for any model, since
    with one class in y_true no prediction makes it defined. Only for one-class rows: on rows of several classes
    the stand-in's constant predictions can leave a score undefined that a real model's would not. Business
    metrics are defined on one class (0 or 1). The stand-in reads no feature: it is given a column of zeros, not
    a copy of the rows' features."""
    if not isinstance(task.scoring, str):
        return None
    import warnings

    from sklearn.exceptions import UndefinedMetricWarning

    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        try:
            value = _stand_in_scored(task.scoring, y_train, y_test, task.pos_label)
        except Exception as e:  # noqa: BLE001 - whatever scikit-learn raises there, every trial would raise
            return f"scikit-learn: {e}"
    if np.isfinite(value):
        return None
    why = next((str(w.message) for w in reversed(said) if issubclass(w.category, UndefinedMetricWarning)), None)
    return f"scikit-learn gives {value}{f': {why}' if why else ''}"


def business_score(cfg: BusinessScoring, model: Any, X: np.ndarray, y: np.ndarray) -> float:
    """The business metric ``cfg`` of a fitted classifier on (X, y)."""
    classes = list(model.classes_)
    if cfg.kind == "cost":
        assert cfg.cost is not None
        return cost_weighted_error(y, model.predict(X), np.asarray(cfg.cost, dtype=float), classes)
    if len(classes) != 2:
        raise TrialError(f"scoring.{cfg.kind} needs a binary target; the model saw {len(classes)} classes")
    pos = cfg.pos_label if cfg.pos_label is not None else classes[-1]
    if pos not in classes:
        raise TrialError(f"scoring.pos_label {pos!r} is not one of the classes {classes}")
    scores = positive_scores(model, X, classes.index(pos))
    y_true = np.asarray(y) == pos
    if cfg.kind == "precision_at_recall":
        assert cfg.precision_at_recall is not None
        return precision_at_recall(y_true, scores, cfg.precision_at_recall)
    assert cfg.recall_at_precision is not None
    return recall_at_precision(y_true, scores, cfg.recall_at_precision)


def positive_scores(model: Any, X: np.ndarray, pos_index: int) -> np.ndarray:
    """A continuous score for the positive class: predict_proba, else decision_function."""
    if hasattr(model, "predict_proba"):
        return np.asarray(model.predict_proba(X))[:, pos_index]
    if hasattr(model, "decision_function"):
        d = np.asarray(model.decision_function(X))
        return d if pos_index == 1 else -d
    raise TrialError("a threshold metric needs predict_proba or decision_function; the estimator has neither")


def precision_at_recall(y_true: np.ndarray, scores: np.ndarray, min_recall: float) -> float:
    """The highest precision of any threshold whose recall is at least ``min_recall``."""
    from sklearn.metrics import precision_recall_curve

    if not y_true.any():
        return 0.0
    precision, recall, _ = precision_recall_curve(y_true, scores)
    ok = recall >= min_recall
    return float(precision[ok].max()) if ok.any() else 0.0


def recall_at_precision(y_true: np.ndarray, scores: np.ndarray, min_precision: float) -> float:
    """The highest recall of any threshold whose precision is at least ``min_precision`` (0 when none)."""
    from sklearn.metrics import precision_recall_curve

    if not y_true.any():
        return 0.0
    precision, recall, _ = precision_recall_curve(y_true, scores)
    ok = precision >= min_precision
    return float(recall[ok].max()) if ok.any() else 0.0


def cost_weighted_error(y_true: Any, y_pred: Any, cost: np.ndarray, classes: list[Any]) -> float:
    """Mean cost per row: ``cost[i][j]`` for a row of class ``classes[i]`` predicted as ``classes[j]``."""
    from sklearn.metrics import confusion_matrix

    if cost.shape != (len(classes), len(classes)):
        raise TrialError(f"scoring.cost is {cost.shape[0]}x{cost.shape[1]} but the target has {len(classes)} classes "
                         f"({classes}); give one row and one column per class, in sorted order")
    cm = confusion_matrix(y_true, y_pred, labels=classes)
    return float((cm * cost).sum() / max(1, cm.sum()))
