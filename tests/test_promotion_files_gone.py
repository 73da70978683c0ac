"""`promote` when files it reads are gone or moved: the champion's registered model files (an MLflow database restored
without its artifact folder), a function trial's saved model folder (a store copied to another machine), the spec's
`policy:` file (the checkout moved). Each is one line naming the file and the fix (exit 2), or, where another copy
is known, promoted from it with a note; never a traceback or a gate's verdict. Against real MLflow (SQLite)."""

from __future__ import annotations

import json
import shutil
from urllib.parse import unquote, urlparse


from tests._promotion_setup import run_tracked
from tests.helpers import cli_in_process, completed_in_process
from tunesmith.clock import SystemClock
from tunesmith.storage.sql import SQLStore

WINE = {
    "objective": {"metric": "accuracy", "direction": "maximize"},
    "task": {
        "estimator": {"sklearn.linear_model.LogisticRegression": {"max_iter": 2000}},
        "pipeline": ["sklearn.preprocessing.StandardScaler"],
        "data": {"sklearn": "wine"},
        "cv": {"kind": "stratified", "folds": 3},
        "holdout": {"fraction": 0.3},
        "scoring": "accuracy",
    },
    "space": {"logisticregression__C": {"type": "categorical", "choices": [0.0003, 1.0]}},
    "strategy": "grid",
    "budget": {"trials": 2},
    "executor": {"kind": "inline"},
    "seed": 0,
}


def _client(uri: str):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def _audit(storage: str, name: str) -> list[dict]:
    code, out, err = cli_in_process("audit", name, "--json", "--storage", storage)
    assert code == 0, out + err
    return json.loads(out)


def test_a_champion_whose_registered_files_are_gone_is_one_line_naming_it_and_the_fix(project, mlflow_uri):
    """An MLflow database restored (or moved) without its artifact folder: beat_champion read the champion's model
    and promote ended in a traceback (MlflowException: No such artifact: 'registered-model'); in a cycle, a failed
    promote step every day with the bare exception text."""
    spec = {**WINE, "name": "gone", "tracking": {"mlflow": {"uri": mlflow_uri}},
            "promotion": {"beat_champion": {"metric": "accuracy", "margin": -1.0, "resamples": 50}}}
    run_tracked(project.write_spec(spec), project.storage)
    from tunesmith.promotion.promote import promote

    store = SQLStore(project.storage, create=False)
    first, second = (t.number for t in store.trials(store.experiment("gone").id))
    assert promote(store, "gone", "gone-model", SystemClock(), trial_number=first).version == "1"
    source = _client(mlflow_uri).get_model_version("gone-model", "1").source
    shutil.rmtree(unquote(urlparse(source).path))  # the registered model's files, not the database's rows
    before = _audit(project.storage, "gone")

    args = ("promote", "gone", "--model-name", "gone-model", "--trial", str(second), "--storage", project.storage)
    proc = completed_in_process(project.root, *args, env={"COLUMNS": "200"})
    assert "Traceback" not in proc.stdout + proc.stderr
    assert (proc.returncode, proc.stdout) == (2, ""), proc.stderr
    assert proc.stderr.splitlines() == [
        f"error: beat_champion: the champion, gone-model version 1, cannot be read from {source} (No such artifact: "
        "'registered-model'), so the candidate cannot be compared with it; restore its files there (an MLflow "
        "database moved or restored without its artifact folder), or promote without this gate: --policy FILE "
        "holding `beat_champion: null`"]
    assert _audit(project.storage, "gone") == before  # refused: nothing recorded, nothing registered
    assert len(_client(mlflow_uri).search_model_versions("name='gone-model'")) == 1

    off = project.write("no-beat.yaml", "beat_champion: null\n")
    proc = completed_in_process(project.root, *args, "--policy", str(off), env={"COLUMNS": "200"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "promoted: gone trial" in proc.stdout and "beat_champion" not in proc.stdout
    assert str(_client(mlflow_uri).get_model_version_by_alias("gone-model", "previous").version) == "1"

