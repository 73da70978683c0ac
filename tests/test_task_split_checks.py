"""A task whose folds, holdout or scorer cannot honestly evaluate it is refused before anything is recorded: one
message naming the field and the fix, exit 2 (a new user's walk through task evaluation found each of these
validated, then leaked silently, failed every trial with an error the user never wrote, or blamed another field).

The data is the walk's, small: 240 daily rows of two numbers (one with gaps), a colour (a typo'd category, gaps),
a customer (the groups column), a date and a 0/1 target. `validate` runs in this process (tunesmith.cli.main:
the command's own code, exit code and message); the one case whose raw library warning is the point runs it as a
subprocess.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import cli_in_process

from tunesmith.errors import SpecError
from tunesmith.spec.loader import load_spec, spec_from_dict
from tunesmith.tasks import prepare

LR = {"sklearn.linear_model.LogisticRegression": {"max_iter": 500}}
SPACE = {"logisticregression__C": {"type": "float", "low": 0.01, "high": 100, "log": True}}
RIDGE_SPACE = {"ridge__alpha": {"type": "float", "low": 0.01, "high": 100, "log": True}}


def walker_csv(path: Path, n: int = 240, target: Callable[[int, float], Any] | None = None) -> Path:
    """The walk's data: num (float, every 12th missing), num2, color (a typo 'gren', every 24th missing),
    customer (0..39), date (daily, ISO), target (0/1 from num and noise, unless ``target(row, num)`` says)."""
    rng = np.random.default_rng(0)
    start = datetime.date(2024, 1, 1)
    lines = ["num,num2,color,customer,date,target"]
    for i in range(n):
        num = float(rng.normal())
        label = target(i, num) if target else int(num + rng.normal() > 0)
        color = "" if i % 24 == 5 else ("gren" if i % 37 == 0 else ("red", "green", "blue")[i % 3])
        lines.append(f"{'' if i % 12 == 3 else round(num, 4)},{rng.normal():.4f},{color},{i % 40},"
                     f"{start + datetime.timedelta(days=i)},{label}")
    path.write_text("\n".join(lines) + "\n")
    return path


def task_spec(name: str, data: dict[str, Any] | None = None, cv: dict[str, Any] | None = None,
              holdout: dict[str, Any] | None = None, scoring: str = "roc_auc", estimator: Any = None,
              pipeline: list[str] | None = None) -> dict[str, Any]:
    task: dict[str, Any] = {
        "estimator": estimator or LR,
        "pipeline": ["sklearn.impute.SimpleImputer", "sklearn.preprocessing.StandardScaler"]
        if pipeline is None else pipeline,
        "data": {"path": "d.csv", "target": "target", **(data or {})},
        "cv": cv or {"kind": "stratified", "folds": 3},
        "scoring": scoring,
        "latency": None,
    }
    if holdout is not None:
        task["holdout"] = holdout
    return {"name": name, "objective": {"metric": scoring, "direction": "maximize"}, "task": task,
            "space": SPACE if estimator is None else RIDGE_SPACE, "budget": {"trials": 2},
            "executor": {"kind": "inline"}, "seed": 0}


def refused(project: Any, spec: dict[str, Any]) -> tuple[str, str]:
    """`tunesmith validate` of ``spec``, which must be refused: exit 2, one line, no traceback. (field, message)"""
    code, out, err = cli_in_process("validate", str(project.write_spec(spec)))
    said = " ".join(err.split())
    assert code == 2, (code, out, err)
    assert "Traceback" not in err and said.startswith("error: "), err
    assert "Warning" not in err, f"a library's raw warning: {err}"
    field, _, message = said[len("error: "):].partition(": ")
    return field, message


def valid(project: Any, spec: dict[str, Any]) -> str:
    """`tunesmith validate` of ``spec``, which must pass: its warnings (stderr)."""
    code, out, err = cli_in_process("validate", str(project.write_spec(spec)))
    assert code == 0 and "valid" in out, (code, out, err)
    return " ".join(err.split())


# -- groups and time together --------------------------------------------------------------------------------------

def test_groups_with_a_time_column_is_refused_before_anything_is_recorded(project) -> None:
    """TimeSeriesSplit ignores groups (scikit-learn warned, raw) and the holdout is carved by time: a customer's
    rows ended up on both sides of folds and holdout, where the README promises a group stays within one fold."""
    walker_csv(project.root / "d.csv")
    spec = task_spec("gt", data={"groups": "customer", "time": "date"}, cv={"kind": "timeseries", "folds": 3},
                     holdout={"fraction": 0.2})
    proc = project.cli("run", str(project.write_spec(spec)))
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    said = " ".join(proc.stderr.split())
    assert said.startswith("error: task.data.groups: ") and "Traceback" not in said and "Warning" not in said, said
    assert "drop `groups`" in said and "drop `time`" in said and "no splitter" in said, said
    assert len(proc.stderr.strip().splitlines()) <= 3, proc.stderr  # one message (wrapped at 200 columns at most)
    assert proc.stderr.count("error: ") == 1 and "warning:" not in proc.stderr, proc.stderr
    assert not project.db.exists(), "nothing recorded"
    for kind in (None, "group", "stratified_group"):  # with any kind, and an unset one (it would resolve to time)
        cv = {"folds": 3} if kind is None else {"kind": kind, "folds": 3}
        assert refused(project, {**spec, "task": {**spec["task"], "cv": cv}})[0] == "task.data.groups"
    # an experiment recorded before this check still loads (show, resume, promote), as it ran: resume, promote and
    # retune read the stored spec with recorded=False (reproduce.stored_spec)
    for recorded in (spec_from_dict(spec, recorded=True), spec_from_dict(spec)):
        assert recorded.task is not None and recorded.task.data.groups == "customer"


# -- a mistyped groups or time column is named before the CV kind -------------------------------------------------

def test_a_mistyped_groups_or_time_column_is_named_not_the_cv_kind(project) -> None:
    walker_csv(project.root / "d.csv")
    field, message = refused(project, task_spec("g", data={"groups": "custmer"}))
    assert field == "task.data.groups" and "did you mean 'customer'" in message, (field, message)
    field, message = refused(project, task_spec("t", data={"time": "dat"}))
    assert field == "task.data.time" and "did you mean 'date'" in message, (field, message)
    # spelled right, the kind that would leak is still refused, at the kind
    field, message = refused(project, task_spec("g2", data={"groups": "customer"}))
    assert field == "task.cv.kind" and "would split groups across folds" in message, (field, message)
    field, message = refused(project, task_spec("t2", data={"time": "date"}))
    assert field == "task.cv.kind" and "would train on the future" in message, (field, message)


# -- time-series folds and a time-carved holdout holding one class ------------------------------------------------

FIRST_TWO_ONE_CLASS = [1, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 1]   # the walk's first 12 labels
SECOND_TEST_ONE_CLASS = [0, 1, 0, 1, 1, 1, 0, 1, 1, 0, 0, 1]  # 5 folds of 12 rows: tests on rows 2-3, 4-5, ...


def test_a_timeseries_fold_training_on_one_class_is_not_refused(project) -> None:
    """A training part of one class was refused for every classifier ("a classifier cannot learn from one class"),
    yet trees, forests, k-NN and naive Bayes fit it: a valid spec refused. Only an undefined score is refused."""
    walker_csv(project.root / "d.csv", n=12, target=lambda i, _: FIRST_TWO_ONE_CLASS[i])
    tree = task_spec("ts", data={"time": "date"}, cv={"kind": "timeseries", "folds": 5},
                     estimator="sklearn.tree.DecisionTreeClassifier", scoring="accuracy")
    valid(project, {**tree, "space": {"max_depth": {"type": "int", "low": 1, "high": 4}}})


def test_a_timeseries_fold_testing_on_one_class_is_refused_where_the_scorer_is_undefined(project) -> None:
    """roc_auc of one class is NaN: every trial failed with "trial.report: value must be a finite number; got nan",
    a call the user never wrote. Accuracy is defined on one class: not refused (imbalance alone is not)."""
    walker_csv(project.root / "d.csv", n=12, target=lambda i, _: SECOND_TEST_ONE_CLASS[i])
    spec = task_spec("ts", data={"time": "date"}, cv={"kind": "timeseries", "folds": 5})
    field, message = refused(project, spec)
    assert field == "task.cv.folds", (field, message)
    assert "timeseries fold 1 tests on 2 rows, all of class '1', where roc_auc cannot be computed" in message
    assert "Only one class is present in y_true" in message and "use fewer folds" in message, message
    valid(project, task_spec("acc", data={"time": "date"}, cv={"kind": "timeseries", "folds": 5},
                             scoring="accuracy"))
    with pytest.raises(SpecError, match="neg_log_loss cannot be computed") as e:  # it raises, not NaN
        prepare(load_spec(project.write_spec(task_spec("ll", data={"time": "date"}, scoring="neg_log_loss",
                                                       cv={"kind": "timeseries", "folds": 5}))).task,
                project.root, new=True)
    assert e.value.path == "task.cv.folds"


def test_a_time_carved_holdout_of_one_class_is_refused_where_the_scorer_is_undefined(project) -> None:
    """The latest 20% of rows all class 1: the run completed with a NaN holdout roc_auc, exit 0."""
    walker_csv(project.root / "d.csv", target=lambda i, num: 1 if i >= 191 else int(num > 0) if i != 190 else 0)
    spec = task_spec("ho", data={"time": "date"}, cv={"kind": "timeseries", "folds": 3}, holdout={"fraction": 0.2})
    field, message = refused(project, spec)
    assert field == "task.holdout.fraction", (field, message)
    assert "the holdout (the latest 48 of the 240 rows) holds only class '1', where roc_auc cannot be computed" \
           in message, message
    assert "a fraction of at least 0.21" in message, message
    warned = valid(project, {**spec, "objective": {"metric": "accuracy", "direction": "maximize"},
                             "task": {**spec["task"], "scoring": "accuracy"}})
    assert "task.holdout.fraction: the holdout (the latest 48 of the 240 rows) holds only class '1'" in warned
    # an experiment recorded before the check (resume, promote, drift, its trials) runs as it ran: said, not refused
    recorded = prepare(spec_from_dict({**spec, "task": {**spec["task"], "data": {
        **spec["task"]["data"], "path": str(project.root / "d.csv")}}}).task, project.root)
    assert any("holds only class '1', where roc_auc cannot be computed" in w for w in recorded.warnings), recorded


def test_the_one_class_holdouts_fraction_hint_counts_the_gap_left_out_before_its_scored_rows(project) -> None:
    """With a cv.gap the first ``gap`` holdout rows are not scored (the folds' procedure): the hint counted every
    holdout row as scored, so the fraction it named (0.21) still scored class 1 alone, and naming it was refused
    again. The least fraction whose scored rows reach row 190 (of class 0) is 0.25 here: 60 rows, 50 scored."""
    walker_csv(project.root / "d.csv", target=lambda i, num: 1 if i >= 191 else int(num > 0) if i != 190 else 0)
    cv = {"kind": "timeseries", "folds": 3, "gap": 10}
    field, message = refused(project, task_spec("ho", data={"time": "date"}, cv=cv, holdout={"fraction": 0.2}))
    assert field == "task.holdout.fraction", (field, message)
    assert "the holdout (the latest 38 of the 240 rows) holds only class '1'" in message, message
    assert "a fraction of at least 0.25 reaches the latest row of another class" in message, message
    assert "cv.gap" in message, message
    field, message = refused(project, task_spec("ho", data={"time": "date"}, cv=cv, holdout={"fraction": 0.24}))
    assert field == "task.holdout.fraction" and "a fraction of at least 0.25" in message, (field, message)
    valid(project, task_spec("ho", data={"time": "date"}, cv=cv, holdout={"fraction": 0.25}))


# -- the scorer fits the estimator --------------------------------------------------------------------------------

def test_a_regression_scorer_on_a_classifier_is_refused_on_labels_that_are_not_numbers(project) -> None:
    """With a 'no'/'yes' target every trial failed: could not convert string to float. On numeric labels it scores
    distances between them (meaningful for ordered classes, wine quality 3-9; not for r2 of 0/1): said, not
    refused, as a valid spec must stay valid."""
    walker_csv(project.root / "d.csv", target=lambda i, num: "yes" if num > 0 else "no")
    field, message = refused(project, task_spec("mse", scoring="neg_mean_squared_error"))
    assert field == "task.scoring" and "neg_mean_squared_error is a regression metric" in message, message
    assert "LogisticRegression is a classifier" in message and "the labels are not numbers" in message, message
    assert "accuracy" in message and "roc_auc" in message, message
    walker_csv(project.root / "d.csv")
    warned = valid(project, task_spec("r2", scoring="r2"))
    assert "task.scoring: r2 is a regression metric" in warned and "only for ordered classes" in warned, warned


def test_a_classification_scorer_on_a_regressor_is_refused(project) -> None:
    walker_csv(project.root / "d.csv", target=lambda i, num: round(3 * num + i / 100, 3))
    for scoring in ("accuracy", "roc_auc"):
        field, message = refused(project, task_spec(scoring, scoring=scoring, cv={"kind": "kfold", "folds": 3},
                                                    estimator="sklearn.linear_model.Ridge"))
        assert field == "task.scoring" and f"{scoring} is a classification metric" in message, message
        assert "Ridge is a regressor" in message and "r2" in message, message


def test_a_scorer_asking_for_what_the_estimator_lacks_is_refused_naming_the_method_and_the_fixes(project) -> None:
    """neg_log_loss on a LinearSVC (no predict_proba) passed validate, then every trial failed on scikit-learn's bare
    "Pipeline has none of the following attributes: predict_proba". Asked of the pipeline as built: an SVC offers
    predict_proba with probability: true only, and a scorer taking decision_function (roc_auc) is not refused."""
    walker_csv(project.root / "d.csv")
    svc = {"sklearn.svm.LinearSVC": {}}
    space = {"linearsvc__C": {"type": "float", "low": 0.01, "high": 100, "log": True}}
    field, message = refused(project, {**task_spec("svc", scoring="neg_log_loss", estimator=svc), "space": space})
    assert field == "task.scoring", (field, message)
    assert message.startswith("neg_log_loss needs the model's predict_proba, which LinearSVC (task.estimator) lacks: "
                              "every trial would fail; use a scorer that takes its decision_function (roc_auc"), message
    assert "sklearn.calibration.CalibratedClassifierCV" in message and "probability: true" in message, message
    valid(project, {**task_spec("svc-auc", scoring="roc_auc", estimator=svc), "space": space})
    svm = {"svc__C": {"type": "float", "low": 0.1, "high": 10, "log": True}}
    field, message = refused(project, {**task_spec("svm", scoring="neg_log_loss", estimator="sklearn.svm.SVC"),
                                       "space": svm})
    assert field == "task.scoring" and "which SVC (task.estimator) lacks" in message, message
    valid(project, {**task_spec("svm-p", scoring="neg_log_loss", estimator={"sklearn.svm.SVC": {"probability": True}}),
                    "space": svm})
    (project.root / "labels.py").write_text(  # a classifier of labels alone: no score to set a threshold on
        "import numpy as np\nfrom sklearn.base import BaseEstimator, ClassifierMixin\n\n\n"
        "class Majority(ClassifierMixin, BaseEstimator):\n"
        "    def __init__(self, k=1):\n        self.k = k\n\n"
        "    def fit(self, X, y):\n        self.classes_, counts = np.unique(y, return_counts=True)\n"
        "        return self\n\n"
        "    def predict(self, X):\n        return np.full(len(X), self.classes_[0])\n")
    spec = {**task_spec("labels", estimator="labels.Majority"), "space": {"majority__k": {"type": "int", "low": 1,
                                                                                           "high": 3}}}
    spec["task"]["scoring"], spec["objective"]["metric"] = {"recall_at_precision": 0.6}, "recall_at_precision"
    field, message = refused(project, spec)
    assert field == "task.scoring" and message.startswith("recall_at_precision needs the model's predict_proba or "
                                                          "decision_function, which Majority (task.estimator) "
                                                          "lacks"), message
    assert "use a scorer of its predictions (accuracy" in message, message


def test_a_scorer_asking_for_a_method_a_tuned_parameter_turns_on_is_warned_of_not_refused(project) -> None:
    """An SGDClassifier's predict_proba depends on its loss, an SVC's on its probability: a space tuning them was
    refused (the check asked the pipeline with default parameters), though its log_loss configurations work. A
    space whose values never turn the method on (a LinearSVC's C) is still refused."""
    walker_csv(project.root / "d.csv")
    sgd = {"sgdclassifier__loss": {"type": "categorical", "choices": ["hinge", "log_loss", "modified_huber"]}}
    warned = valid(project, {**task_spec("sgd", scoring="neg_log_loss", estimator="sklearn.linear_model.SGDClassifier"),
                             "space": sgd})
    assert ("task.scoring: neg_log_loss needs the model's predict_proba, which SGDClassifier (task.estimator) offers "
            "only with some values of sgdclassifier__loss (the space): a configuration without it fails its trial"
            in warned), warned
    svm = {"svc__probability": {"type": "categorical", "choices": [False, True]},
           "svc__C": {"type": "float", "low": 0.1, "high": 10, "log": True}}
    warned = valid(project, {**task_spec("svm", scoring="neg_log_loss", estimator="sklearn.svm.SVC"), "space": svm})
    assert "offers only with some values of svc__probability (the space)" in warned, warned
    svc = {"linearsvc__C": {"type": "float", "low": 0.01, "high": 100, "log": True},
           "linearsvc__loss": {"type": "categorical", "choices": ["hinge", "squared_hinge"]}}
    field, message = refused(project, {**task_spec("lsvc", scoring="neg_log_loss",
                                                   estimator={"sklearn.svm.LinearSVC": {}}), "space": svc})
    assert field == "task.scoring" and "which LinearSVC (task.estimator) lacks: every trial would fail" in message, \
        message


def test_a_scorer_that_cannot_take_the_targets_classes_is_refused_and_one_that_can_is_not(project) -> None:
    """A binary scorer on three classes, or f1 of 'no'/'yes' (its positive class is 1), passed validate and failed
    every trial (the run exited 1). scikit-learn says which: the scorer on a stand-in classifier, one row a class."""
    walker_csv(project.root / "d.csv", target=lambda i, num: i % 3)
    for scoring, fix in (("roc_auc", "roc_auc_ovr"), ("precision", "precision_macro"), ("jaccard", "jaccard_weighted")):
        field, message = refused(project, task_spec(scoring, scoring=scoring))
        assert field == "task.scoring" and f"{scoring} cannot score the target 'target', which has 3 classes " \
            "(0, 1, 2): every trial would fail" in message and fix in message, message
    for scoring in ("roc_auc_ovr", "f1_macro", "accuracy", "neg_log_loss"):
        assert "task.scoring" not in valid(project, task_spec(scoring, scoring=scoring))
    walker_csv(project.root / "d.csv", target=lambda i, num: "yes" if num > 0 else "no")
    field, message = refused(project, task_spec("f1", scoring="f1"))
    assert field == "task.scoring" and "pos_label=1 is not a valid label" in message, message
    assert "use one of f1_macro, f1_micro or f1_weighted" in message and "labels 0 and 1" in message, message
    assert "set the positive class, task.pos_label: 'yes', or labels 0 and 1" in message, message
    valid(project, task_spec("auc", scoring="roc_auc"))


def test_task_pos_label_names_the_positive_class_of_a_binary_scorer_and_must_be_a_class(project) -> None:
    """f1 of a 'no'/'yes' target was refused with f1_macro (which averages in the majority class) or relabelling the
    file as its only fixes: ``task.pos_label`` names the positive class of scikit-learn's binary scorers."""
    walker_csv(project.root / "d.csv", target=lambda i, num: "yes" if num > 0.8 else "no")
    spec = task_spec("f1", scoring="f1")
    spec["task"]["pos_label"] = "yes"
    valid(project, spec)
    spec["task"]["pos_label"] = "Yes"
    assert refused(project, spec) == ("task.pos_label", "'Yes' is not a class of the target; the target 'target' "
                                                        "has 2 classes ('no', 'yes'): give one of them")
    spec["task"]["pos_label"] = True  # `pos_label: yes`, unquoted
    field, message = refused(project, spec)
    assert field == "task.pos_label" and "quote it, pos_label: 'yes'" in message, message
    spec = task_spec("accuracy", scoring="accuracy")
    spec["task"]["pos_label"] = "yes"
    field, message = refused(project, spec)
    assert field == "task.pos_label" and message.startswith("accuracy (task.scoring) does not score one positive "
                                                            "class: remove pos_label"), message
    spec = task_spec("recall_at_precision", scoring="recall_at_precision")
    spec["task"]["scoring"], spec["task"]["pos_label"] = {"recall_at_precision": 0.6}, "yes"
    field, message = refused(project, spec)
    assert field == "task.pos_label" and "move it to task.scoring.pos_label" in message, message


def test_a_business_metric_that_cannot_take_the_targets_classes_is_refused(project) -> None:
    """scoring.pos_label of no class, a cost matrix of another size: each trial failed, said only in its log."""
    walker_csv(project.root / "d.csv", target=lambda i, num: i % 3)
    spec = task_spec("cost", scoring="cost")
    spec["task"]["scoring"] = {"cost": [[0, 1], [5, 0]]}
    spec["objective"]["direction"] = "minimize"
    assert refused(project, spec) == ("task.scoring.cost", "is 2x2, but the target 'target' has 3 classes (0, 1, "
                                                           "2): give one row and one column per class, in the order "
                                                           "listed")
    spec["task"]["scoring"] = {"cost": [[0, 1, 1], [5, 0, 1], [1, 1, 0]]}
    valid(project, spec)
    walker_csv(project.root / "d.csv")
    spec = task_spec("recall_at_precision", scoring="recall_at_precision")
    spec["task"]["scoring"] = {"recall_at_precision": 0.6, "pos_label": "yes"}
    assert refused(project, spec) == ("task.scoring.pos_label", "'yes' is not a class of the target; the target "
                                                                "'target' has 2 classes (0, 1): give one of them")
    spec["task"]["scoring"] = {"recall_at_precision": 0.6, "pos_label": 0}
    valid(project, spec)


def test_a_regression_target_is_not_asked_about_classes(project) -> None:
    walker_csv(project.root / "d.csv", target=lambda i, num: round(3 * num + i / 100, 3))
    for scoring in ("r2", "neg_mean_absolute_error"):
        valid(project, task_spec(scoring, scoring=scoring, cv={"kind": "kfold", "folds": 3},
                                 estimator="sklearn.linear_model.Ridge"))


def test_an_estimator_tagged_as_neither_kind_is_not_called_a_regressor(project) -> None:
    """The user's own estimator on BaseEstimator alone (no ClassifierMixin, no RegressorMixin) was refused with
    accuracy as "a regressor, which predicts numbers": scikit-learn does not say what it is, so it is not judged."""
    walker_csv(project.root / "d.csv")
    (project.root / "mine.py").write_text(
        "import numpy as np\nfrom sklearn.base import BaseEstimator\n\n\n"
        "class Majority(BaseEstimator):\n"
        "    def __init__(self, k=1):\n        self.k = k\n\n"
        "    def fit(self, X, y):\n        values, counts = np.unique(y, return_counts=True)\n"
        "        self.label_ = values[counts.argmax()]\n        return self\n\n"
        "    def predict(self, X):\n        return np.full(len(X), self.label_)\n")
    spec = task_spec("mine", scoring="accuracy", estimator="mine.Majority", cv={"kind": "kfold", "folds": 3})
    valid(project, {**spec, "space": {"majority__k": {"type": "int", "low": 1, "high": 3}}})


# -- holdout errors name the holdout --------------------------------------------------------------------------------

def test_a_holdout_leaving_too_few_rows_to_cross_validate_is_blamed_not_the_folds(project) -> None:
    walker_csv(project.root / "d.csv")
    field, message = refused(project, task_spec("big", holdout={"fraction": 0.99}))
    assert field == "task.holdout.fraction", (field, message)
    assert "leaves 2 of the 240 rows to cross-validate" in message, message
    assert "use fewer folds or a smaller fraction" in message, message
    field, message = refused(project, task_spec("ts", data={"time": "date"}, cv={"kind": "timeseries", "folds": 3},
                                                holdout={"fraction": 0.99}))
    assert field == "task.holdout.fraction" and "leaves 2 of the 240 rows" in message, (field, message)


def test_a_class_of_one_row_names_the_class_and_the_fix_for_a_stratified_holdout(project) -> None:
    walker_csv(project.root / "d.csv", target=lambda i, num: 2 if i == 100 else int(num > 0))
    field, message = refused(project, task_spec("one", scoring="accuracy", holdout={"fraction": 0.2}))
    assert field == "task.holdout.fraction", (field, message)
    assert "class '2' has 1 of the 240 rows" in message and "drop that row, or relabel it" in message, message
    assert "minimum number of groups" not in message, "scikit-learn's text, with no fix"


def test_a_constraint_on_a_metric_the_task_does_not_record_is_refused(project) -> None:
    """The README's own example constraint named `p95_latency_ms`; a task records `latency_p95_ms`. Validated, the
    run made every trial infeasible and selected nothing, at exit 0."""
    walker_csv(project.root / "d.csv")
    spec = {**task_spec("lat"), "constraints": ["p95_latency_ms <= 20"]}
    spec["task"]["latency"] = {"rows": 5}
    field, message = refused(project, spec)
    assert field == "constraints.0"
    assert message.startswith("'p95_latency_ms' is no metric this task records; did you mean 'latency_p95_ms'?")
    valid(project, {**spec, "constraints": ["latency_p95_ms <= 20", "cpu_s <= 5", "roc_auc_std <= 0.1"]})


def test_a_second_quality_metric_is_refused_saying_a_task_records_one_scorer_not_sending_to_constraints(
        project) -> None:
    """A second objective `average_precision` was refused "(or put it in constraints)", and the constraint then
    refused as "no metric this task records": the user went round in a circle. A task records one scorer; both
    messages say so, and that a trial function records several."""
    walker_csv(project.root / "d.csv")
    spec = task_spec("two")
    spec["objective"] = [spec["objective"], {"metric": "average_precision", "direction": "maximize"}]
    field, message = refused(project, spec)
    assert field == "objective.1", (field, message)
    assert "put it in constraints" not in message, message
    assert "with one scorer, task.scoring (roc_auc)" in message and "trial function" in message, message
    field, message = refused(project, {**task_spec("con"), "constraints": ["average_precision >= 0.3"]})
    assert field == "constraints.0", (field, message)
    assert "with one scorer, task.scoring (roc_auc)" in message and "trial function" in message, message
    # a metric the task does record may still be constrained: that advice stays where it holds
    spec = task_spec("std")
    spec["objective"] = [spec["objective"], {"metric": "roc_auc_std", "direction": "minimize"}]
    field, message = refused(project, spec)
    assert field == "objective.1" and "put it in constraints" in message, (field, message)
    valid(project, {**task_spec("std2"), "constraints": ["roc_auc_std <= 0.1"]})


# -- too few time-ordered rows for the folds ------------------------------------------------------------------------

def test_too_few_rows_for_the_timeseries_folds_is_said_in_its_own_words_with_the_fix(project) -> None:
    """scikit-learn's "Cannot have number of folds=5 greater than the number of samples=2" was passed on for 4 folds
    asked (it counts the oldest block, which only trains, as a fold), with no fix."""
    walker_csv(project.root / "d.csv", n=4)
    cv = {"kind": "timeseries", "folds": 4}
    assert refused(project, task_spec("few", data={"time": "date"}, cv=cv, scoring="accuracy")) == ("task.cv", (
        "cannot make 4 timeseries folds of 4 rows: they need at least 5 (the oldest rows only train; each fold tests "
        "on the next ones); use at most 3 folds (task.cv.folds), or more rows"))
    walker_csv(project.root / "d.csv", n=12)
    cv = {"kind": "timeseries", "folds": 3, "gap": 9}
    assert refused(project, task_spec("gap", data={"time": "date"}, cv=cv, scoring="accuracy")) == ("task.cv", (
        "cannot make 3 timeseries folds of 12 rows with a gap of 9: each fold tests on 3 rows, and the gap leaves "
        "the first fold no row to train on; use a smaller task.cv.gap or fewer folds, or more rows"))


def test_shuffle_asked_of_time_ordered_folds_is_refused_not_ignored(project) -> None:
    """`cv: {kind: timeseries, shuffle: true}` was valid and the folds kept time order anyway: the user believed
    something else happened. Refused at the field; an unset kind that resolves to timeseries too. An experiment
    recorded with it (every stored spec holds shuffle: true, its default) still loads."""
    walker_csv(project.root / "d.csv")
    for cv in ({"kind": "timeseries", "folds": 3, "shuffle": True}, {"folds": 3, "shuffle": True}):
        spec = task_spec("tsh", data={"time": "date"}, cv=cv, scoring="accuracy")
        assert refused(project, spec) == ("task.cv.shuffle", (
            "time-ordered folds (cv.kind timeseries) keep the rows in time order and cannot be shuffled: remove "
            "shuffle (or set it to false)"))
    assert spec_from_dict(spec).task is not None
    valid(project, task_spec("tsf", data={"time": "date"}, cv={"kind": "timeseries", "folds": 3, "shuffle": False},
                             scoring="accuracy"))
    valid(project, task_spec("ksh", cv={"kind": "stratified", "folds": 3, "shuffle": True}, scoring="accuracy"))



@pytest.mark.parametrize("generated", [False, True], ids=["time_column", "random_walk"])
def test_a_recorded_time_ordered_experiments_printed_spec_validates_again(project, generated: bool) -> None:
    """`tunesmith spec NAME > f.yaml` printed `shuffle: true` (the default every stored spec holds) for time-ordered
    folds, and `validate f.yaml` then refused its own experiment's spec at task.cv.shuffle. Also where the folds
    keep time order with cv.kind unset because the data is `generate: {kind: random_walk}`: the writer worked out
    "time-ordered" again and saw only a time column."""
    from tunesmith.spec.writer import recorded_spec_yaml

    walker_csv(project.root / "d.csv")
    given = task_spec("tsr", data={"time": "date"}, cv={"kind": "timeseries", "folds": 3}, scoring="accuracy")
    if generated:
        given = task_spec("tsr", cv={"folds": 3}, scoring="r2", estimator="sklearn.linear_model.Ridge")
        given["task"]["data"] = {"generate": {"kind": "random_walk", "n_rows": 60, "n_features": 3}}
    spec = spec_from_dict(given)
    printed = recorded_spec_yaml("tsr", spec.to_json())
    assert "shuffle" not in printed
    (project.root / "f.yaml").write_text(printed)
    assert load_spec(str(project.root / "f.yaml")).task.data.has_time

# -- group folds whose parts hold different classes ----------------------------------------------------------------

def _groups_csv(path: Path, holders: int) -> Path:
    """12 customers of 10 rows each; class 2 only in the first ``holders`` customers, the others 0/1 at random."""
    rng = np.random.default_rng(0)
    lines = ["customer,num,num2,target"]
    for g in range(12):
        for _ in range(10):
            label = 2 if g < holders else int(rng.integers(0, 2))
            lines.append(f"c{g},{rng.normal() + label:.4f},{rng.normal():.4f},{label}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_group_fold_without_a_class_is_refused_where_the_scorer_needs_every_class(project) -> None:
    """Class 2 in 1 of 12 customers: a fold tests without it (the model knows it) or trains without it (its test part
    holds it), and neg_log_loss and roc_auc_ovr failed every trial on "y_true and y_prob contain different number
    of classes", validate having passed: only a test part of ONE class was checked. Accuracy and f1_macro score such
    a fold: not refused, and they do score it."""
    from tunesmith.tasks.evaluate import cross_validate

    _groups_csv(project.root / "d.csv", holders=1)
    def spec(scoring: str) -> dict[str, Any]:
        return task_spec("g", data={"groups": "customer"}, cv={"kind": "group", "folds": 3}, scoring=scoring)

    field, message = refused(project, spec("neg_log_loss"))
    assert field == "task.cv.folds", (field, message)
    assert message.startswith("group fold 0 tests on 40 rows without class '2', which its training part holds, "
                              "where neg_log_loss cannot be computed (scikit-learn: y_true and y_prob contain "
                              "different number of classes: 2 vs 3)"), message
    assert "class '2' is in 1 of the 12 groups (10 of the 120 rows): use more groups of that class, or a scorer " \
           "that takes a fold without it (accuracy or f1_macro" in message, message
    field, message = refused(project, spec("roc_auc_ovr"))
    assert field == "task.cv.folds" and "where roc_auc_ovr cannot be computed" in message, (field, message)
    _groups_csv(project.root / "d.csv", holders=2)  # in 2 groups: fewer folds can hold it on both sides
    assert "use fewer folds, more groups of that class" in refused(project, spec("neg_log_loss"))[1]
    for scoring in ("accuracy", "f1_macro"):
        valid(project, spec(scoring))
        task = load_spec(project.write_spec(spec(scoring))).task
        prep = prepare(task, project.root, new=True)
        scores = cross_validate(task, prep.dev, prep.splits, {}, 0, prep.scorer).scores
        assert len(scores) == 3 and np.isfinite(scores).all(), scores


# -- time-ordered cuts fall between timestamps ----------------------------------------------------------------------

def snapshots_csv(path: Path, per_day: list[int]) -> Path:
    """Daily snapshots: ``per_day[d]`` customers' rows dated day d (a number and a 0/1 target)."""
    rng = np.random.default_rng(1)
    start = datetime.date(2024, 1, 1)
    lines = ["num,date,target"]
    for day, count in enumerate(per_day):
        for _ in range(count):
            num = float(rng.normal())
            lines.append(f"{num:.4f},{start + datetime.timedelta(days=day)},{int(num + rng.normal() > 0)}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("cv", [{"kind": "timeseries", "folds": 3}, {"kind": "timeseries", "folds": 4, "gap": 2},
                                {"kind": "timeseries", "folds": 3, "expanding": False, "window": 10}])
def test_time_ordered_folds_and_holdout_never_cut_a_timestamp(project, cv: dict[str, Any]) -> None:
    """Cut by row count, a fold trained on part of the day it tested on (the walk's churn data: fold 0's train max =
    test min = 2023-05-14); with daily snapshots of many customers that leaks. Each test part (and the holdout)
    starts at the first row of a day, the cut moved to the nearest one; gap and window still count rows."""
    snapshots_csv(project.root / "d.csv", [7, 5, 9, 6, 8, 7, 5, 9, 6, 7, 8, 5, 6, 9, 7, 8, 6, 7, 5, 9])
    spec = task_spec("snap", data={"time": "date"}, cv=cv, holdout={"fraction": 0.2}, scoring="accuracy",
                     pipeline=[])
    spec["task"]["data"]["path"] = str(project.root / "d.csv")
    task = spec_from_dict(spec).task
    assert task is not None
    prep = prepare(task, project.root, new=True)
    time = prep.dataset.time
    assert time[prep.dev_idx].max() < time[prep.holdout_idx].min(), "a day on both sides of the holdout's cut"
    dev_time = time[prep.dev_idx]
    for i, (train, test) in enumerate(prep.splits):
        assert len(train) and len(test)
        assert dev_time[train].max() < dev_time[test].min(), f"fold {i}: a day in both its training and test rows"
        assert test[0] - train[-1] - 1 == cv.get("gap", 0), f"fold {i}: the gap is not {cv.get('gap', 0)} rows"
        if "window" in cv:
            assert len(train) <= cv["window"]
        if i:
            assert test[0] == prep.splits[i - 1][1][-1] + 1, "the folds' test parts do not follow each other"
    assert prep.splits[-1][1][-1] == len(prep.dev_idx) - 1, "the last fold does not test on the latest rows"


def test_too_few_timestamps_for_the_timeseries_folds_is_refused_with_the_fix(project) -> None:
    """4 days of 10 rows each make at most 3 folds cut between days (the first day only trains)."""
    snapshots_csv(project.root / "d.csv", [10, 10, 10, 10])
    spec = task_spec("days", data={"time": "date"}, cv={"kind": "timeseries", "folds": 4}, scoring="accuracy")
    assert refused(project, spec) == ("task.cv.folds", (
        "the 40 rows hold 4 distinct timestamps, too few for 4 timeseries folds cut between timestamps (each fold "
        "tests on later timestamps than it trains on); use at most 3 folds, or rows of more timestamps"))
    valid(project, task_spec("days3", data={"time": "date"}, cv={"kind": "timeseries", "folds": 3},
                             scoring="accuracy"))


def test_time_ordered_folds_of_one_row_per_timestamp_are_time_series_splits(project) -> None:
    """A timestamp per row: the cuts TimeSeriesSplit makes, unmoved."""
    from sklearn.model_selection import TimeSeriesSplit

    walker_csv(project.root / "d.csv")
    spec = task_spec("one", data={"time": "date"}, cv={"kind": "timeseries", "folds": 4, "gap": 3},
                     scoring="accuracy")
    spec["task"]["data"]["path"] = str(project.root / "d.csv")
    task = spec_from_dict(spec).task
    assert task is not None
    got = prepare(task, project.root, new=True).splits
    expected = list(TimeSeriesSplit(4, gap=3).split(np.zeros((240, 1))))
    assert [(list(a), list(b)) for a, b in got] == [(list(a), list(b)) for a, b in expected]
