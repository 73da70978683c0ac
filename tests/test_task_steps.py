"""The pipeline steps tunesmith ships (tunesmith.tasks.steps): OneHotText one-hot encodes a task's text columns.

The README's only one-hot recipe was a step of the user's own, which runs but cannot be promoted (the registry loads
back only allow-listed modules' classes: `promote` exited 2 after `promote --dry-run` said every gate passed), and
a ColumnTransformer cannot be written in a spec. A tunesmith step can be both tuned and shipped.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import cli_in_process

from tests.mlflow_fixtures import require_mlflow

STEP = "tunesmith.tasks.steps.OneHotText"
REGIONS = ("north", "south", "east", "west")


def _churn_csv(path: Path, n: int = 160, holdout_only: int = 0) -> Path:
    """``n`` daily rows: t (the time), region (text; ``west`` churns most), age (a number) and churned (0/1); the
    last ``holdout_only`` rows' region is 'central', a level no earlier row has."""
    rng = np.random.default_rng(0)
    lines = ["t,region,age,churned"]
    for i in range(n):
        region = "central" if i >= n - holdout_only else REGIONS[i % 4]
        age = int(rng.integers(18, 80))
        churned = int(rng.random() < (0.7 if region == "west" else 0.15) + (age - 50) / 400)
        lines.append(f"{i},{region},{age},{churned}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _spec(name: str, step: Any = STEP, **extra: Any) -> dict[str, Any]:
    return {"name": name, "objective": {"metric": "roc_auc", "direction": "maximize"},
            "task": {"estimator": {"sklearn.linear_model.LogisticRegression": {"max_iter": 1000}},
                     "pipeline": [step, "sklearn.preprocessing.StandardScaler"],
                     "data": {"path": "churn.csv", "target": "churned", "time": "t", "features": ["age", "region"]},
                     "cv": {"kind": "timeseries", "folds": 3}, "holdout": {"fraction": 0.2}, "scoring": "roc_auc",
                     "latency": None},
            "space": {"logisticregression__C": {"type": "float", "low": 0.01, "high": 10, "log": True}},
            "budget": {"trials": 2}, "executor": {"kind": "inline"}, "seed": 0, **extra}


def test_a_model_with_onehottext_is_promoted_to_mlflow_and_loads_back_and_predicts(project, mlflow_uri) -> None:
    """The whole recipe: tune with the step on a text column, promote to a real MLflow registry (skops, the
    allow-list), read the registered version back as the registry reads it and predict the task's rows."""
    require_mlflow()
    from tests._promotion_setup import run_tracked
    from tunesmith.spec import spec_from_dict
    from tunesmith.storage import SQLStore
    from tunesmith.tasks import prepare, refit
    from tunesmith.tracking.model_registry import ModelRegistry

    _churn_csv(project.root / "churn.csv")
    spec = _spec("ohe", tracking={"mlflow": {"uri": mlflow_uri}})
    assert run_tracked(project.write_spec(spec), project.storage).status.value == "completed"
    code, out, err = cli_in_process("promote", "ohe", "--model-name", "churn-ohe", "--storage", project.storage)
    assert code == 0 and "allow-list" not in err, out + err

    registry = ModelRegistry(mlflow_uri)
    version = registry.by_alias("churn-ohe", "champion")
    model = registry.load_sklearn(version)
    from mlflow.artifacts import download_artifacts

    import tunesmith

    requirements = Path(download_artifacts(artifact_uri=f"{version.source}/requirements.txt",
                                           tracking_uri=mlflow_uri)).read_text().split()
    assert f"tunesmith=={tunesmith.__version__}" in requirements, requirements  # its loader imports the step's class
    step = model.steps[0][1]
    assert type(step).__module__ + "." + type(step).__name__ == STEP and step.columns == [1], step  # region: 2nd
    store = SQLStore(project.storage, create=False)
    try:
        experiment = store.experiment("ohe")
        task_spec = spec_from_dict(experiment.spec)
        best = next(t for t in store.trials(experiment.id) if t.number == experiment.attributes["holdout"]["trial"])
    finally:
        store.close()
    assert task_spec.task is not None
    data = prepare(task_spec.task, task_spec.base_dir).dataset
    shipped = refit(task_spec.task, best.params, best.seed, task_spec.base_dir)
    assert np.allclose(model.predict_proba(data.X), shipped.predict_proba(data.X))
    assert step.transform(data.X[:3]).shape == (3, len(REGIONS) + 1)  # a column a level, then age


def test_a_level_only_the_holdout_has_is_scored_as_no_known_level(project) -> None:
    """F3's case with OneHotText (handle_unknown: ignore by default): the holdout's new level is encoded as all
    zeros, and the holdout is scored, not recorded undefined; with handle_unknown: error it is recorded undefined."""
    _churn_csv(project.root / "churn.csv", holdout_only=8)
    code, out, err = cli_in_process("run", str(project.write_spec(_spec("newlevel"))), "--quiet", "--storage",
                                    project.storage)
    assert code == 0, out + err
    holdout = project.show("newlevel")["holdout"]
    assert math.isfinite(holdout["holdout_roc_auc"]) and "why_undefined" not in holdout, holdout
    strict = _spec("strict", {STEP: {"handle_unknown": "error"}})
    code, out, err = cli_in_process("run", str(project.write_spec(strict)), "--quiet", "--storage", project.storage)
    assert code == 0, out + err
    holdout = project.show("strict")["holdout"]
    why = " ".join(holdout["why_undefined"][0].split())
    assert holdout["holdout_roc_auc"] == "nan" and "column 'region' holds a level" in why, holdout  # not its position


@pytest.mark.parametrize(("step", "field", "says"), [
    ({STEP: {"columns": ["regoin"]}}, "task.pipeline.0.params.columns.0",
     "'regoin' is not a feature column of the task's data; did you mean 'region'? (features: age, region)"),
    ({STEP: {"columns": [2]}}, "task.pipeline.0.params.columns.0",
     "must be a feature column's name or its position, 0 to 1; got 2"),
    ({STEP: {"columns": "region"}}, "task.pipeline.0.params.columns",
     "must be a list of feature columns (names or positions); got 'region'"),
    ({STEP: {"handle_unknown": "skip"}}, "task.pipeline.0.params.handle_unknown",
     "must be one of ignore, error, infrequent_if_exist, warn; got 'skip'"),
    ({STEP: {"column": ["region"]}}, "task.pipeline.0.params",
     "tunesmith.tasks.steps.OneHotText has no parameter 'column'; did you mean 'columns'? (its parameters: columns, "
     "feature_names, handle_unknown)"),
    ("OneHotText", "task.pipeline.0.path",
     "must be an importable class path like 'sklearn.svm.SVC'; got 'OneHotText' (tunesmith's own step is "
     "tunesmith.tasks.steps.OneHotText)"),
])
def test_columns_that_are_no_features_are_refused_at_validate(project, step, field, says) -> None:
    _churn_csv(project.root / "churn.csv")
    code, out, err = cli_in_process("validate", str(project.write_spec(_spec("bad", step))))
    assert code == 2 and "Traceback" not in err, (code, out, err)
    assert " ".join(err.split()) == f"error: {field}: {says}", err


def test_a_task_without_text_columns_is_told_to_name_the_columns(project) -> None:
    _churn_csv(project.root / "churn.csv")
    spec = _spec("numbers")
    spec["task"]["data"]["features"] = ["age"]
    code, out, err = cli_in_process("validate", str(project.write_spec(spec)))
    assert code == 2 and "error: task.pipeline.0.params.columns: no feature column is text (age are all numbers)" \
        in " ".join(err.split()), (code, out, err)
    spec["task"]["pipeline"][0] = {STEP: {"columns": ["age"]}}  # a numeric code column may be one-hot encoded
    code, out, err = cli_in_process("validate", str(project.write_spec(spec)))
    assert code == 0, (code, out, err)


def test_a_missing_number_passed_through_onehottext_unfilled_is_refused_naming_the_step_it_reaches(project) -> None:
    """The missing-value check stopped at a step it could not judge, as it does at a class of the user's own: every
    trial then failed on "Input X contains NaN". OneHotText passes the other columns on as they are, so it is walked
    through: the estimator it reaches is named, and an imputer after it is enough."""
    path = _churn_csv(project.root / "churn.csv")
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], *(",".join((r := line.split(","))[:2] + [""] + r[3:]) if i % 9 == 0
                                           else line for i, line in enumerate(lines[1:]))]) + "\n")
    spec = _spec("gaps")
    spec["task"]["pipeline"] = [STEP]
    code, out, err = cli_in_process("validate", str(project.write_spec(spec)))
    said = " ".join(err.split())
    assert code == 2 and said.startswith("error: task.data: column 'age' has 18 missing values and nothing in "
                                         "task.pipeline fills them before LogisticRegression (task.estimator)"), said
    spec["task"]["pipeline"] = [STEP, "sklearn.impute.SimpleImputer"]
    code, out, err = cli_in_process("validate", str(project.write_spec(spec)))
    assert code == 0, (code, out, err)


def test_onehottext_is_a_scikit_learn_transformer() -> None:
    """Cloned, its parameters read and set as any scikit-learn step's (the search tunes ``onehottext__...``); a
    missing value is a level of its own; a level never fit on is all zeros, or raises with handle_unknown='error'."""
    from sklearn.base import clone

    from tunesmith.tasks.steps import OneHotText

    step = OneHotText(columns=[1])
    assert clone(step).get_params() == {"columns": [1], "handle_unknown": "ignore", "feature_names": None}
    X = np.array([[5.0, 0.0], [6.0, 1.0], [7.0, np.nan]])
    fitted = clone(step).fit(X)
    assert np.array_equal(fitted.transform(X), [[1, 0, 0, 5], [0, 1, 0, 6], [0, 0, 1, 7]])
    assert np.array_equal(fitted.transform(np.array([[8.0, 9.0]])), [[0, 0, 0, 8]])
    assert list(fitted.get_feature_names_out(["age", "region"])) == ["region_0.0", "region_1.0", "region_nan", "age"]
    with pytest.raises(ValueError, match="column 1 holds a level the rows it was fit on never had: code 9"):
        OneHotText(columns=[1], handle_unknown="error").fit(X).transform(np.array([[8.0, 9.0]]))
    named = OneHotText(columns=[1], handle_unknown="error", feature_names=["age", "region"]).fit(X)
    with pytest.raises(ValueError, match="column 'region' holds a level the rows it was fit on never had: code 9"):
        named.transform(np.array([[8.0, 9.0]]))
    with pytest.raises(ValueError, match="given no columns"):
        OneHotText().fit(X)


def test_onehottext_after_another_step_is_refused_at_validate(project) -> None:
    """Its columns are positions in the task's data: after a step that drops or reorders columns (SelectKBest) it
    one-hot encoded whatever column had come to that position (a number column), and validate said valid."""
    _churn_csv(project.root / "churn.csv")
    spec = _spec("late")
    spec["task"]["pipeline"] = [{"sklearn.feature_selection.SelectKBest": {"k": 1}}, STEP]
    code, out, err = cli_in_process("validate", str(project.write_spec(spec)))
    said = " ".join(err.split())
    assert code == 2 and "Traceback" not in err, (code, out, err)
    assert said.startswith("error: task.pipeline.1: tunesmith.tasks.steps.OneHotText must be task.pipeline's first "
                           "step"), said
