"""Scoring a fitted model on rows: any scikit-learn scorer by name, or a business metric.

A :class:`TaskScorer` returns the metric in its natural sign: scikit-learn scorers as scikit-learn defines them
(losses negated, ``neg_log_loss``), business metrics as named (a cost is a positive number to minimise).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tunesmith.errors import TrialError
from tunesmith.spec.task_config import BusinessScoring, TaskConfig


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
        from sklearn.metrics import get_scorer

        return TaskScorer(scoring, True, get_scorer(scoring))
    return TaskScorer(task.metric_name, scoring.kind != "cost", lambda m, X, y: business_score(scoring, m, X, y))


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
