"""Built-in scikit-learn tasks: leak-free CV, holdout isolation, business metrics, latency, fingerprints.

The leakage tests pair tunesmith's evaluation with the leaky way of doing the same thing on the same data: the
leaky score must be far above chance (so the data can expose leakage) and tunesmith's must sit at chance.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_selection import SelectKBest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix
from sklearn.model_selection import KFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

import tunesmith
from tunesmith.errors import SpecError
from tunesmith.evaluation.context import TrialContext, TrialPruned
from tunesmith.records import Report
from tunesmith.spec.model import TASK_TIMINGS
from tunesmith.spec.task_config import TaskConfig, check_task_space
from tunesmith.tasks import (
    evaluate,
    fingerprint,
    fingerprint_changes,
    generate,
    holdout_report,
    load_dataset,
    nested_estimate,
    prepare,
)
from tunesmith.tasks.scoring import cost_weighted_error, precision_at_recall, recall_at_precision


def task(**kw: Any) -> TaskConfig:
    return TaskConfig.model_validate(kw)


def make_trial(seed: int = 0, prune_after: int | None = None) -> tuple[TrialContext, list[Report]]:
    reports: list[Report] = []
    ctx = TrialContext(0, seed, {}, ".", 1, reports.append,
                       lambda: prune_after is not None and len(reports) > prune_after)
    return ctx, reports


LR = {"sklearn.linear_model.LogisticRegression": {"max_iter": 1000}}


# -- leakage -------------------------------------------------------------------------------------------------------

def test_feature_selection_on_noise_scores_at_chance_but_selecting_first_does_not() -> None:
    t = task(estimator=LR, pipeline=["sklearn.feature_selection.SelectKBest"],
             data={"generate": {"kind": "noise", "n_rows": 100, "n_features": 2000, "seed": 1}},
             cv={"kind": "stratified", "folds": 5}, scoring="accuracy", latency=None)
    ds = generate(t.data.generate)  # type: ignore[arg-type]
    # The leaky way: select the features on all rows, then cross-validate.
    selected = SelectKBest(k=10).fit_transform(ds.X, ds.y)
    leaky = cross_val_score(LogisticRegression(max_iter=1000), selected, ds.y, cv=5).mean()
    assert leaky > 0.75, "the data must be able to expose the leak"
    honest = evaluate(t, {"selectkbest__k": 10}, make_trial()[0])["accuracy"]
    assert 0.3 < honest < 0.65


def test_grouped_data_scores_at_chance_under_group_cv() -> None:
    t = task(estimator={"sklearn.neighbors.KNeighborsClassifier": {"n_neighbors": 1}},
             data={"generate": {"kind": "groups", "n_rows": 300, "n_groups": 40, "n_features": 5}},
             scoring="accuracy", latency=None)
    ds = generate(t.data.generate)  # type: ignore[arg-type]
    leaky = cross_val_score(KNeighborsClassifier(1), ds.X, ds.y, cv=KFold(5, shuffle=True, random_state=0)).mean()
    assert leaky > 0.9
    prep = prepare(t)
    assert all(not set(prep.dev.groups[tr]) & set(prep.dev.groups[te]) for tr, te in prep.splits)  # type: ignore[index]
    honest = evaluate(t, {}, make_trial()[0])["accuracy"]
    assert honest < 0.7


def test_a_random_walk_cannot_be_predicted_from_its_future() -> None:
    t = task(estimator={"sklearn.neighbors.KNeighborsRegressor": {"n_neighbors": 5}},
             data={"generate": {"kind": "random_walk", "n_rows": 300, "n_features": 3}},
             cv={"folds": 4, "gap": 5}, scoring="r2", latency=None)
    ds = generate(t.data.generate)  # type: ignore[arg-type]
    leaky = cross_val_score(KNeighborsRegressor(5), ds.X, ds.y, cv=KFold(5, shuffle=True, random_state=0)).mean()
    assert leaky > 0.8
    prep = prepare(t)
    for train, test in prep.splits:
        assert train.max() + 5 < test.min()  # never trained on the future; the gap is kept
    assert evaluate(t, {}, make_trial()[0])["r2"] < 0.2


class RowRecorder(TransformerMixin, BaseEstimator):
    """Passes X through; records the row ids (column 0) it was fit on and transformed."""

    fitted: list[set[int]] = []
    transformed: list[set[int]] = []

    def fit(self, X: np.ndarray, y: Any = None) -> RowRecorder:
        RowRecorder.fitted.append({int(v) for v in X[:, 0]})
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        RowRecorder.transformed.append({int(v) for v in X[:, 0]})
        return X


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def regression_csv(path: Path, n: int = 120, seed: int = 0, holdout_y: dict[int, float] | None = None) -> Path:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        x = rng.normal(size=3)
        y = float(x @ [1.0, -2.0, 0.5] + rng.normal(scale=0.1))
        rows.append([i, *x.round(6), (holdout_y or {}).get(i, round(y, 6))])
    return write_csv(path, ["row_id", "a", "b", "c", "y"], rows)


def test_holdout_rows_never_reach_the_search(tmp_path: Path) -> None:
    regression_csv(tmp_path / "d.csv")
    recorder = f"{RowRecorder.__module__}.RowRecorder"
    t = task(estimator="sklearn.linear_model.Ridge", pipeline=[recorder],
             data={"path": "d.csv", "target": "y"}, cv={"folds": 4}, holdout={"fraction": 0.25}, scoring="r2")
    prep = prepare(t, tmp_path)
    holdout_ids = {int(v) for v in prep.dataset.X[prep.holdout_idx, 0]}
    assert len(holdout_ids) == 30
    RowRecorder.fitted.clear()
    RowRecorder.transformed.clear()
    first = evaluate(t, {"ridge__alpha": 1.0}, make_trial()[0], base_dir=tmp_path)
    evaluate(t, {"ridge__alpha": 10.0}, make_trial()[0], base_dir=tmp_path)
    nested_estimate(t, {"ridge__alpha": tunesmith.Float(0.01, 10.0, log=True)}, "random", 2, 0, base_dir=tmp_path)
    seen = set().union(*RowRecorder.fitted, *RowRecorder.transformed)
    assert len(RowRecorder.fitted) > 8
    assert not seen & holdout_ids
    # Changing the holdout's labels changes nothing the search sees, and only the holdout report.
    poisoned = regression_csv(tmp_path / "p.csv", holdout_y={i: 1e3 * (i % 7) for i in holdout_ids})
    t2 = t.model_copy(update={"data": t.data.model_copy(update={"path": poisoned.name})})
    second = evaluate(t2, {"ridge__alpha": 1.0}, make_trial()[0], base_dir=tmp_path)
    keys = [k for k in first if not k.startswith(("latency", "fit_time", "model_size"))]
    assert {k: first[k] for k in keys} == {k: second[k] for k in keys}
    RowRecorder.fitted.clear()
    clean = holdout_report(t, {"ridge__alpha": 1.0}, 0, base_dir=tmp_path)
    assert RowRecorder.fitted[0] == {int(v) for v in prep.dataset.X[prep.dev_idx, 0]}  # refit on every dev row
    assert clean["holdout_rows"] == 30 and clean["holdout_r2"] > 0.9
    assert holdout_report(t2, {"ridge__alpha": 1.0}, 0, base_dir=tmp_path)["holdout_r2"] < 0


def test_a_resumed_runs_later_preparations_reuse_its_first() -> None:
    """A resume prepares with the space (``tuned``) and ``new=False``, where ``tuned`` is not read; its refit, holdout
    and nested estimate prepare without it. The cache keyed on ``tuned`` anyway: the holdout carved, the folds made
    and the class checks run a second time."""
    t = task(estimator=LR, data={"generate": {"kind": "classification", "n_rows": 120, "n_features": 4}},
             cv={"folds": 3}, holdout={"fraction": 0.25}, scoring="accuracy")
    first = prepare(t, None, tuned={"logisticregression__C": tunesmith.Float(0.01, 10.0, log=True)})
    assert prepare(t, None) is first
    assert prepare(t, None, new=True) is not first  # a spec given anew is checked, and keys apart


@pytest.mark.parametrize(("cv", "fit_rows"), [
    ({"kind": "timeseries", "folds": 3, "expanding": False, "window": 40, "gap": 5}, 40),
    ({"kind": "timeseries", "folds": 3, "gap": 5}, 96),      # expanding: every development row
    ({"kind": "timeseries", "folds": 3, "expanding": False}, 24),  # the folds' default window, 96 // (3 + 1)
])
def test_a_time_ordered_holdout_scores_the_procedure_the_folds_estimated(tmp_path: Path, cv: dict[str, Any],
                                                                         fit_rows: int) -> None:
    """The model to ship is fit on the latest rows a sliding window keeps and scored on the holdout after cv.gap
    rows, as each fold was: fit on every development row and scored from the next one, the holdout scored another
    procedure than the CV (a walk's sales data: 4.94 MAE against 4.58 for the folds' own)."""
    import datetime

    start = datetime.date(2024, 1, 1)
    rows = [[i, str(start + datetime.timedelta(days=i)), float(np.sin(i)), float(i % 7)] for i in range(120)]
    write_csv(tmp_path / "t.csv", ["row_id", "day", "a", "y"], rows)
    recorder = f"{RowRecorder.__module__}.RowRecorder"
    t = task(estimator="sklearn.linear_model.Ridge", pipeline=[recorder],
             data={"path": "t.csv", "target": "y", "time": "day"}, cv=cv, holdout={"fraction": 0.2},
             scoring="neg_mean_absolute_error", latency=None)
    prep = prepare(t, tmp_path)
    gap = cv.get("gap", 0)
    assert list(prep.dev_idx) == list(range(96))
    assert list(prep.holdout_idx) == list(range(96 + gap, 120)), "the first gap rows of the holdout are not scored"
    RowRecorder.fitted.clear()
    report = holdout_report(t, {"ridge__alpha": 1.0}, 0, base_dir=tmp_path)
    assert RowRecorder.fitted[0] == set(range(96 - fit_rows, 96))
    assert report["holdout_rows"] == 24 - gap


def test_a_gap_as_long_as_the_holdout_is_refused(tmp_path: Path) -> None:
    import datetime

    start = datetime.date(2024, 1, 1)
    write_csv(tmp_path / "t.csv", ["day", "a", "y"],
              [[str(start + datetime.timedelta(days=i)), float(i), float(i % 5)] for i in range(100)])
    t = task(estimator="sklearn.linear_model.Ridge", data={"path": "t.csv", "target": "y", "time": "day"},
             cv={"kind": "timeseries", "folds": 3, "gap": 10}, holdout={"fraction": 0.1}, scoring="r2",
             latency=None)
    with pytest.raises(SpecError, match="holdout's 10 latest rows are all within cv.gap .10 rows.*raise the fraction"):
        prepare(t, tmp_path, new=True)


# -- CV kinds ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "cv", "folds"), [
    ({"sklearn": "iris"}, {"kind": "kfold", "folds": 3}, 3),
    ({"sklearn": "iris"}, {"kind": "stratified", "folds": 3}, 3),
    ({"sklearn": "iris"}, {"kind": "repeated", "folds": 3, "repeats": 2}, 6),
    ({"generate": {"kind": "groups", "n_rows": 120, "n_features": 3}}, {"kind": "group", "folds": 3}, 3),
    ({"generate": {"kind": "groups", "n_rows": 120, "n_features": 3}}, {"kind": "stratified_group", "folds": 3}, 3),
    ({"generate": {"kind": "random_walk", "n_rows": 120, "n_features": 2}},
     {"kind": "timeseries", "folds": 3, "expanding": False, "window": 30}, 3),
])
def test_each_cv_kind_runs_and_keeps_its_promise(data: dict[str, Any], cv: dict[str, Any], folds: int) -> None:
    regression = data.get("generate", {}).get("kind") == "random_walk"
    est = "sklearn.linear_model.Ridge" if regression else LR
    t = task(estimator=est, data=data, cv=cv, scoring="r2" if regression else "accuracy", latency=None)
    prep = prepare(t)
    dev = prep.dev
    assert len(prep.splits) == folds
    for train, test in prep.splits:
        assert not set(train) & set(test)
        if cv["kind"] in ("group", "stratified_group"):
            assert not set(dev.groups[train]) & set(dev.groups[test])  # type: ignore[index]
        if cv["kind"] == "stratified":
            assert abs(np.mean(dev.y[test] == 0) - np.mean(dev.y == 0)) < 0.05
        if cv["kind"] == "timeseries":
            assert len(train) == 30 and train.max() < test.min()
    result = evaluate(t, {}, make_trial()[0])
    assert result["n_folds"] == folds and len([k for k in result if k.startswith("fold_")]) == folds


def test_cv_kind_defaults_follow_the_data() -> None:
    from tunesmith.tasks.splits import resolved_cv_kind

    def kind(data: dict[str, Any], est: Any = LR) -> str:
        t = task(estimator=est, data=data, scoring="accuracy")
        return resolved_cv_kind(t.cv, load_dataset(t.data), True if est == LR else False)

    assert kind({"sklearn": "iris"}) == "stratified"
    assert kind({"sklearn": "diabetes"}, "sklearn.linear_model.Ridge") == "kfold"
    assert kind({"generate": {"kind": "groups"}}) == "stratified_group"
    assert kind({"generate": {"kind": "random_walk"}}, "sklearn.linear_model.Ridge") == "timeseries"


@pytest.mark.parametrize(("data", "cv", "message"), [
    ({"sklearn": "iris"}, {"kind": "group"}, "needs a groups column"),
    ({"sklearn": "iris"}, {"kind": "timeseries"}, "needs a time column"),
    ({"sklearn": "iris", "path": "x.csv"}, {}, "exactly one of"),
    ({"path": "x.csv"}, {}, "needs `target`"),
    ({"sklearn": "iriss"}, {}, "did you mean 'iris'"),
    ({"sklearn": "iris"}, {"kind": "kfolds"}, "kfold"),
])
def test_invalid_task_sections_are_rejected(data: dict[str, Any], cv: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        task(estimator=LR, data=data, cv=cv, scoring="accuracy")


@pytest.mark.parametrize(("data", "cv", "message"), [
    ({"generate": {"kind": "random_walk", "n_rows": 60, "n_features": 2}}, {"kind": "kfold"}, "train on the future"),
    ({"generate": {"kind": "groups", "n_rows": 60, "n_features": 2}}, {"kind": "stratified"},
     "split groups across folds"),
])
def test_a_cv_kind_that_would_leak_for_the_data_is_refused_once_the_data_is_read(
        data: dict[str, Any], cv: dict[str, Any], message: str) -> None:
    """Checked with the data (its groups or time column found), not the spec: a mistyped column was blamed on the
    kind (tests/test_task_split_checks.py)."""
    est = "sklearn.linear_model.Ridge" if data["generate"]["kind"] == "random_walk" else LR
    with pytest.raises(SpecError, match=message) as e:
        prepare(task(estimator=est, data=data, cv=cv, scoring="r2" if est != LR else "accuracy"))
    assert e.value.path == "task.cv.kind"


def test_unknown_scorer_and_space_keys_get_a_did_you_mean() -> None:
    with pytest.raises(ValidationError, match="did you mean 'roc_auc'"):
        task(estimator=LR, data={"sklearn": "iris"}, scoring="roc_aux")
    t = task(estimator=LR, pipeline=["sklearn.preprocessing.StandardScaler"], data={"sklearn": "iris"},
             scoring="accuracy")
    check_task_space(t, ["logisticregression__C", "C", "standardscaler__with_mean"])
    with pytest.raises(SpecError, match="did you mean 'standardscaler'") as e:
        check_task_space(t, ["standardscalar__with_mean"])
    assert e.value.path == "space.standardscalar__with_mean"
    with pytest.raises(SpecError, match="did you mean 'logisticregression__C'"):
        check_task_space(t, ["logisticregression__CC"])
    bad = task(estimator="sklearn.linear_model.LogisticRegresion", data={"sklearn": "iris"}, scoring="accuracy")
    with pytest.raises(SpecError, match="did you mean sklearn.linear_model.LogisticRegression") as e:
        check_task_space(bad, ["C"])
    assert e.value.path == "task.estimator"


@pytest.mark.parametrize(("written", "meant"), [
    ("rmse", "neg_root_mean_squared_error"), ("RMSE", "neg_root_mean_squared_error"),
    ("mae", "neg_mean_absolute_error"), ("mse", "neg_mean_squared_error"),
    ("neg_rmse", "neg_root_mean_squared_error"), ("mape", "neg_mean_absolute_percentage_error"),
    ("r2_score", "r2"), ("rsquared", "r2"),
])
def test_a_regression_metrics_abbreviation_gets_scikit_learns_scorer_name(written: str, meant: str) -> None:
    """`scoring: rmse` said only "unknown scorer 'rmse'" where `auc` got "did you mean 'roc_auc'"; an error's scorer
    is negated in scikit-learn (it maximises every scorer), which the hint says."""
    with pytest.raises(ValidationError, match=f"did you mean {meant!r}") as e:
        task(estimator="sklearn.linear_model.Ridge", data={"sklearn": "diabetes"}, scoring=written)
    negated = "(scikit-learn's scorers are maximised, so errors are negated)" in str(e.value)
    assert negated == (meant.startswith("neg_") and not written.startswith("neg_")), str(e.value)


# -- metrics -------------------------------------------------------------------------------------------------------

def test_business_metrics_match_hand_computation() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200).astype(bool)
    s = rng.normal(size=200) + y
    pr, rp = [], []
    for thr in np.unique(s):
        pred = s >= thr
        tp = (pred & y).sum()
        precision, recall = tp / pred.sum(), tp / y.sum()
        if recall >= 0.8:
            pr.append(precision)
        if precision >= 0.7:
            rp.append(recall)
    assert precision_at_recall(y, s, 0.8) == pytest.approx(max(pr))
    assert recall_at_precision(y, s, 0.7) == pytest.approx(max(rp))
    y_true, y_pred = ["a", "b", "b", "a", "c"], ["a", "a", "b", "c", "c"]
    cost = np.array([[0, 1, 2], [5, 0, 1], [1, 1, 0]], dtype=float)
    by_hand = (5 + 2) / 5  # b predicted a: 5; a predicted c: 2
    assert cost_weighted_error(y_true, y_pred, cost, ["a", "b", "c"]) == pytest.approx(by_hand)
    cm = confusion_matrix(y_true, y_pred, labels=["a", "b", "c"])
    assert (cm * cost).sum() / 5 == pytest.approx(by_hand)


def test_business_metric_as_the_task_objective() -> None:
    t = task(estimator=LR, pipeline=["sklearn.preprocessing.StandardScaler"], data={"sklearn": "breast_cancer"},
             cv={"folds": 3}, scoring={"cost": [[0, 1], [10, 0]]}, latency=None)
    assert t.metric_name == "cost" and t.direction == "minimize"
    r = evaluate(t, {}, make_trial()[0])
    assert 0 <= r["cost"] < 0.5
    p = task(estimator=LR, pipeline=["sklearn.preprocessing.StandardScaler"], data={"sklearn": "breast_cancer"},
             cv={"folds": 3}, scoring={"precision_at_recall": 0.95, "name": "p_at_r95"}, latency=None)
    assert 0.8 < evaluate(p, {}, make_trial()[0])["p_at_r95"] <= 1


def test_task_pos_label_scores_a_binary_scorer_of_that_class_as_scikit_learn_would(tmp_path: Path) -> None:
    """f1 or average_precision of a 'no'/'yes' target could not be scored at all (scikit-learn's positive class is
    1); ``task.pos_label`` names it, and each fold scores as scikit-learn's own scorer of that class does."""
    from sklearn.metrics import average_precision_score, f1_score, make_scorer
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(4)
    X = rng.normal(size=(300, 3)).round(6)  # as written to the file
    y = np.where(X[:, 0] + rng.normal(size=300) > 1.2, "yes", "no")  # imbalanced: about one row in five is 'yes'
    path = tmp_path / "yn.csv"
    path.write_text("a,b,c,churned\n" + "".join(f"{r[0]:.6f},{r[1]:.6f},{r[2]:.6f},{t}\n" for r, t in zip(X, y, strict=True)))
    folds = StratifiedKFold(3, shuffle=True, random_state=0)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    for scoring, pos, metric, response in (("f1", "yes", f1_score, "predict"),
                                           ("average_precision", "no", average_precision_score, "predict_proba")):
        t = task(estimator=LR, pipeline=["sklearn.preprocessing.StandardScaler"],
                 data={"path": str(path), "target": "churned"}, cv={"kind": "stratified", "folds": 3},
                 scoring=scoring, pos_label=pos, latency=None)
        got = evaluate(t, {}, make_trial()[0])
        sklearns = cross_val_score(model, X, y, cv=folds,
                                   scoring=make_scorer(metric, pos_label=pos, response_method=response))
        assert [got[f"fold_{i}"] for i in range(3)] == pytest.approx(list(sklearns)), scoring
        assert 0 < got[scoring] < 1


def test_latency_size_fit_time_and_fold_scores_are_reported() -> None:
    t = task(estimator=LR, pipeline=["sklearn.preprocessing.StandardScaler"], data={"sklearn": "wine"},
             cv={"folds": 3}, scoring="accuracy", unstable_spread=1e-9, latency={"rows": 10, "repeats": 3})
    trial, reports = make_trial()
    r = evaluate(t, {"C": 0.5}, trial)
    for key in ("latency_p50_ms", "latency_p95_ms", "latency_batch_ms", "model_size_bytes", "fit_time_s"):
        assert r[key] > 0, key
    assert r["latency_p95_ms"] >= r["latency_p50_ms"]
    assert r["accuracy"] == pytest.approx(np.mean([r[f"fold_{i}"] for i in range(3)]))
    assert [rep.step for rep in reports] == [0, 1, 2] and reports[-1].value == pytest.approx(r["accuracy"])
    assert r["unstable"] == (1.0 if r["accuracy_std"] > 1e-9 else 0.0)


def test_a_pruned_trial_stops_after_the_fold_it_was_told() -> None:
    t = task(estimator=LR, data={"sklearn": "iris"}, cv={"folds": 5}, scoring="accuracy")
    trial, reports = make_trial(prune_after=1)
    with pytest.raises(TrialPruned):
        evaluate(t, {}, trial)
    assert len(reports) == 2


# -- data ------------------------------------------------------------------------------------------------------------

def test_csv_types_time_order_missing_values_and_parquet(tmp_path: Path) -> None:
    rows = [["2024-01-03", "x", "1.5", "c1", "yes"], ["2024-01-01", "y", "", "c2", "no"],
            ["2024-01-02", "x", "2", "c1", "yes"]]
    write_csv(tmp_path / "d.csv", ["when", "color", "v", "cust", "label"], rows)
    # groups with time is no task (refused with the spec: tests/test_task_split_checks.py), but the loader reads both
    t = task(estimator=LR, data={"path": "d.csv", "target": "label", "time": "when"}, scoring="accuracy")
    t = t.model_copy(update={"data": t.data.model_copy(update={"groups": "cust"})})
    ds = load_dataset(t.data, tmp_path)
    assert ds.feature_names == ("color", "v")  # time and group columns are not features
    assert list(ds.y) == ["no", "yes", "yes"]   # sorted by time
    assert np.isnan(ds.X[0, 1]) and list(ds.X[:, 0]) == [1.0, 0.0, 0.0]
    fp = fingerprint(t, tmp_path)
    assert fp["columns"] == {"color": "string", "v": "float", "label": "string", "cust": "string", "when": "datetime"}
    assert (fp["n_rows"], fp["n_cols"]) == (3, 2)
    with pytest.raises(SpecError, match="did you mean 'label'"):
        load_dataset(t.data.model_copy(update={"target": "lable"}), tmp_path)
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        (tmp_path / "d.parquet").write_bytes(b"PAR1")
        with pytest.raises(SpecError, match="pip install pyarrow"):
            load_dataset(t.data.model_copy(update={"path": "d.parquet"}), tmp_path)


def test_fingerprint_changes_when_the_data_changes(tmp_path: Path) -> None:
    path = regression_csv(tmp_path / "d.csv")
    t = task(estimator="sklearn.linear_model.Ridge", data={"path": "d.csv", "target": "y"}, scoring="r2")
    before = fingerprint(t, tmp_path)
    assert fingerprint(t, tmp_path) == before and fingerprint_changes(before, before) == []
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines[:-1], lines[-1].rsplit(",", 1)[0] + ",42.0"]) + "\n")
    after = fingerprint(t, tmp_path)
    assert after["content_hash"] != before["content_hash"] and after["n_rows"] == before["n_rows"]
    assert any("content hash" in c for c in fingerprint_changes(before, after))
    assert fingerprint(task(estimator=LR, data={"sklearn": "iris"}, scoring="accuracy"))["n_rows"] == 150


def test_nested_cv_estimates_the_tuning_procedure() -> None:
    t = task(estimator=LR, pipeline=["sklearn.preprocessing.StandardScaler"], data={"sklearn": "wine"},
             cv={"folds": 3}, scoring="accuracy", nested={"outer_folds": 3})
    r = nested_estimate(t, {"C": tunesmith.Float(0.01, 10.0, log=True)}, "tpe", 3, seed=0)
    assert len(r["outer_scores"]) == 3 and 0.85 < r["nested_accuracy"] <= 1
    assert all(0.01 <= p["C"] <= 10 for p in r["outer_best_params"])
    again = nested_estimate(t, {"C": tunesmith.Float(0.01, 10.0, log=True)}, "tpe", 3, seed=0)  # replays
    picks, picks_again = r.pop("inner_picks"), again.pop("inner_picks")
    assert r == again
    for pick, pick_again in zip(picks, picks_again, strict=True):  # all but the wall-clock timings
        assert {k: v for k, v in pick["metrics"].items() if k not in TASK_TIMINGS} == \
            {k: v for k, v in pick_again["metrics"].items() if k not in TASK_TIMINGS}
        assert (pick["trial"], pick["reason"]) == (pick_again["trial"], pick_again["reason"])


# -- examples --------------------------------------------------------------------------------------------------------

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("task-*.yaml")), ids=lambda p: p.stem)
def test_each_example_task_validates_and_evaluates(path: Path) -> None:
    import yaml

    spec = yaml.safe_load(path.read_text())
    t = TaskConfig.model_validate(spec["task"])
    check_task_space(t, spec["space"])
    assert spec["objective"]["metric"] == t.metric_name and spec["objective"]["direction"] == t.direction
    config = {name: (d["choices"][0] if d["type"] == "categorical" else d["low"]) for name, d in spec["space"].items()}
    result = evaluate(t, config, make_trial()[0], base_dir=EXAMPLES)
    assert np.isfinite(result[t.metric_name])
    if t.holdout is not None:
        assert np.isfinite(holdout_report(t, config, 0, base_dir=EXAMPLES)[f"holdout_{t.metric_name}"])


def test_a_classifier_on_a_continuous_target_is_refused_and_one_on_a_quantity_looking_target_warned(
        tmp_path: Path, project) -> None:
    """The walkthrough: LogisticRegression on the diabetes target with kfold ran, each value a class of its own, to
    an accuracy of 0.002, where a regressor with stratified folds was refused clearly. A target that is not whole
    numbers is refused (no classifier can fit it); whole numbers that look like a quantity are warned about, not
    refused: 30 real classes of 4 rows look the same, and a recorded experiment must still reproduce."""
    diabetes = prepare(task(estimator=LR, data={"sklearn": "diabetes"}, cv={"kind": "kfold", "folds": 3},
                            scoring="accuracy"))
    [said] = diabetes.warnings
    assert said.startswith("task.estimator: sklearn.linear_model.LogisticRegression is a classifier, but the target "
                           "of the diabetes data looks like a quantity (214 distinct values over 442 rows"), said
    assert "use a regressor" in said
    rows = tmp_path / "prices.csv"
    rows.write_text("a,price\n" + "".join(f"{i},{i * 1.37:.2f}\n" for i in range(40)))
    with pytest.raises(SpecError, match=r"the target 'price' is a continuous quantity \(its values are not whole"):
        prepare(task(estimator=LR, data={"path": str(rows), "target": "price"}, cv={"kind": "kfold", "folds": 3},
                     scoring="accuracy"))
    few = tmp_path / "few.csv"
    few.write_text("a,label\n" + "".join(f"{i},{i % 2}\n" for i in range(8)))  # two classes on a few rows: classes
    assert prepare(task(estimator=LR, data={"path": str(few), "target": "label"}, cv={"kind": "kfold", "folds": 2},
                        scoring="accuracy")).warnings == ()
    spec = {"name": "lr-diabetes", "objective": {"metric": "accuracy", "direction": "maximize"},
            "task": {"estimator": "sklearn.linear_model.LogisticRegression", "data": {"sklearn": "diabetes"},
                     "cv": {"kind": "kfold"}},
            "space": {"C": {"type": "float", "low": 0.01, "high": 10.0, "log": True}}, "budget": {"trials": 2}}
    checked = project.cli("validate", str(project.write_spec(spec)))
    assert checked.returncode == 0 and "Traceback" not in checked.stderr, checked.stderr
    assert "warning: task.estimator:" in checked.stderr and "regressor" in checked.stderr


def test_the_nested_estimate_leaves_out_constraints_on_every_metric_an_executor_adds() -> None:
    """The process executor adds gpu_device_N and gpu_share to a trial that has GPUs (devices.slot_metrics), but
    the rule for metrics an executor adds listed cost, cpu_s, peak_memory_mb and gpus by hand: a constraint on
    gpu_share was kept for the inner trials, which never have it, and the estimate was always unavailable."""
    from tunesmith.constraints import Constraint
    from tunesmith.cost import Prices, ResourceUsage, cost_metrics, executor_added
    from tunesmith.executor.devices import slot_metrics
    from tunesmith.records import Direction, ObjectiveSpec
    from tunesmith.selection import SelectionRule

    added = {**cost_metrics(Prices(1.0, 1.0, 1.0, 0.5), ResourceUsage(1.0, 10.0, 2.0, 0.5), {}),
             **cost_metrics(Prices(metric="dollars"), ResourceUsage(None, None, 2.0), {}, failed=False),
             **slot_metrics((0, 3), 0.5)}
    assert {"gpu_share", "gpu_device_1", "cpu_s", "cost", "cost_unknown"} <= set(added)
    assert all(executor_added(m) for m in added) and not executor_added("gpu_device_accuracy")
    t = task(estimator=LR, pipeline=["sklearn.preprocessing.StandardScaler"], data={"sklearn": "wine"},
             cv={"folds": 2}, scoring="accuracy", nested={"outer_folds": 2})
    on_devices = ("gpu_share <= 0.5", "gpu_device_0 >= 0", "gpu_device_1 >= 0")
    rule = SelectionRule((ObjectiveSpec("accuracy", Direction.MAXIMIZE),),
                         tuple(Constraint.parse(c) for c in on_devices))
    r = nested_estimate(t, {"C": tunesmith.Float(0.01, 10.0, log=True)}, "random", 2, seed=0, selection=rule)
    assert "unavailable" not in r and 0 < r["nested_accuracy"] <= 1, r.get("unavailable")
    assert r["ignored_constraints"] == list(on_devices)


def test_a_missing_column_lists_every_column_of_a_wide_file_or_says_how_many_it_left_out(tmp_path: Path) -> None:
    """breast_cancer's 31 columns were cut at 20 without a word: the label column, last, was never shown to a user
    who had typed `target`."""
    from tunesmith.suggestions import listed
    from tunesmith.tasks.data import load_dataset
    from tunesmith.testing.drift_data import shifted_split

    shifted_split(tmp_path)
    task = TaskConfig.model_validate({"estimator": "sklearn.linear_model.LogisticRegression",
                                      "data": {"path": "reference.csv", "target": "target"}, "scoring": "accuracy"})
    with pytest.raises(SpecError) as refused:
        load_dataset(task.data, tmp_path)
    assert str(refused.value).endswith(", worst_fractal_dimension, label"), str(refused.value)
    assert listed([f"c{i}" for i in range(45)]).endswith(", c39, and 5 more")
    assert listed(["a", "b"], 10) == "a, b"


def test_time_ordered_rows_know_their_place_in_the_file(tmp_path: Path) -> None:
    """Rows sorted by their time column keep each one's position in the file: `beat_champion` reads the candidate's
    holdout rows back from the file to encode them as the champion's experiment does."""
    from tunesmith.spec.task_config import DataConfig
    from tunesmith.tasks import load_dataset, reference_columns

    (tmp_path / "t.csv").write_text("when,x,y\n2024-03-01,3,1\n2024-01-01,1,0\n2024-02-01,2,1\n2024-01-01,4,0\n")
    data = DataConfig(path="t.csv", target="y", time="when")
    ds = load_dataset(data, tmp_path)
    raw = reference_columns(data, tmp_path)
    assert ds.file_rows is not None
    assert [float(raw["x"][i]) for i in ds.file_rows] == ds.X[:, 0].tolist() == [1.0, 4.0, 2.0, 3.0]
    assert load_dataset(DataConfig(path="t.csv", target="y"), tmp_path).file_rows is None
