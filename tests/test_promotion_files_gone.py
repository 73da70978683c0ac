"""`promote` when files it reads are gone or moved: the champion's registered model files (an MLflow database restored
without its artifact folder), a function trial's saved model folder (a store copied to another machine), the spec's
`policy:` file (the checkout moved). Each is one line naming the file and the fix (exit 2), or, where another copy
is known, promoted from it with a note; never a traceback or a gate's verdict. Against real MLflow (SQLite)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import yaml

import tunesmith
from tests._promotion_setup import WINE_TASK, run_tracked, tuned_with_models
from tests.helpers import cli_in_process, completed_in_process
from tunesmith.clock import SystemClock
from tunesmith.errors import UserInputError
from tunesmith.storage.sql import SQLStore

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
    spec = {**WINE_TASK, "name": "gone", "tracking": {"mlflow": {"uri": mlflow_uri}},
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
        "database restored without its artifact folder, or moved with it: a version keeps the source it was "
        "registered with), or promote without this gate: --policy FILE holding `beat_champion: null`"]
    assert _audit(project.storage, "gone") == before  # refused: nothing recorded, nothing registered
    assert len(_client(mlflow_uri).search_model_versions("name='gone-model'")) == 1

    off = project.write("no-beat.yaml", "beat_champion: null\n")
    proc = completed_in_process(project.root, *args, "--policy", str(off), env={"COLUMNS": "200"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "promoted: gone trial" in proc.stdout and "beat_champion" not in proc.stdout
    assert str(_client(mlflow_uri).get_model_version_by_alias("gone-model", "previous").version) == "1"


def test_a_saved_model_folder_that_is_gone_is_registered_from_the_trials_mlflow_run(project, mlflow_uri):
    """The store copied to another machine (or a trial folder cleaned): the trial's model/ folder is gone, and the
    undocumented gate `model` said it "handed over no model" (exit 3, a verdict) while its MLflow run held a copy."""
    store = tuned_with_models(project, "fm", mlflow_uri, 3)
    from tunesmith.promotion.promote import promote

    dry = promote(store, "fm", "fm-model", SystemClock(), dry_run=True)
    trial = next(t for t in store.trials(store.experiment("fm").id) if t.number == dry.trial)
    folder = Path(trial.log_path).parent / "model"
    shutil.rmtree(folder)
    outcome = promote(store, "fm", "fm-model", SystemClock())
    assert (outcome.decision.value, outcome.version) == ("promoted", "1")
    assert outcome.notes == (f"trial {trial.number}'s model folder {folder} is gone; registering the copy its "
                             "MLflow run holds",)
    from mlflow.artifacts import download_artifacts

    source = _client(mlflow_uri).get_model_version("fm-model", "1").source
    weights = Path(download_artifacts(artifact_uri=source, tracking_uri=mlflow_uri)) / "weights.json"
    assert json.loads(weights.read_text())["x"] == pytest.approx(trial.params["x"])
    report = json.loads(outcome.report_json.read_text())
    assert report["notes"] == list(outcome.notes)
    assert f"Note: {outcome.notes[0]}" in outcome.report_md.read_text()

    other = next(t for t in store.trials(store.experiment("fm").id) if t.number != trial.number)
    shutil.rmtree(Path(other.log_path).parent / "model")
    run = _client(mlflow_uri).search_runs(
        [_client(mlflow_uri).get_experiment_by_name("fm").experiment_id],
        f"tags.`tunesmith.kind` = 'trial' AND tags.`tunesmith.trial` = '{other.number}'")[0]
    shutil.rmtree(unquote(urlparse(run.info.artifact_uri).path) + "/model")  # and the copy: nothing left
    with pytest.raises(UserInputError, match=rf"^trial {other.number} has no model to register: its model folder "
                                             r".* is missing and its MLflow run holds no copy \(a function trial"):
        promote(store, "fm", "fm-model", SystemClock(), trial_number=other.number, dry_run=True)
    shutil.rmtree(project.root / ".tunesmith", ignore_errors=True)


def test_a_trial_with_no_model_folder_and_no_copy_is_bad_input_naming_the_folder(project):
    """No copy anywhere (no tracking): exit 2 naming the folder and the fix, not gate `model`'s exit 3 (a verdict:
    a cycle never offers a rejected re-tune again). A trial that never called save_model is told the same."""
    from tests._promotion_setup import FUNCTION_TRIALS

    project.write("fmodels.py", FUNCTION_TRIALS)
    spec = project.spec("local", trial={"function": "fmodels:with_model"}, executor={"kind": "inline"},
                        budget={"trials": 3})
    tunesmith.run(project.write_spec(spec), storage=project.storage)
    store = SQLStore(project.storage, create=False)
    trials = store.trials(store.experiment("local").id)
    from tunesmith.promotion.promote import promote

    chosen = promote(store, "local", "local-model", SystemClock(), dry_run=True).trial
    folder = Path(next(t for t in trials if t.number == chosen).log_path).parent / "model"
    shutil.rmtree(folder)
    before = _audit(project.storage, "local")
    proc = completed_in_process(project.root, "promote", "local", "--model-name", "local-model", "--dry-run",
                                "--storage", project.storage, env={"COLUMNS": "200"})  # (no MLflow to look in)
    assert (proc.returncode, proc.stdout) == (2, ""), proc.stdout + proc.stderr
    others = ", ".join(str(t.number) for t in trials if t.number != chosen)
    assert proc.stderr.splitlines() == [
        f"error: trial {chosen} has no model to register: its model folder {folder} is missing (a function trial "
        "hands one over with trial.save_model(path), a command trial writes {trial_dir}/model); if it saved one, "
        f"restore the folder (a store copied or moved without its trial folders), or promote a trial that has one: "
        f"--trial {others}"]
    assert _audit(project.storage, "local") == before

    never = project.spec("never", trial={"function": "fmodels:without_model"}, executor={"kind": "inline"},
                         budget={"trials": 2})
    tunesmith.run(project.write_spec(never), storage=project.storage)
    with pytest.raises(UserInputError, match=r"^trial \d has no model to register: its model folder .* is missing"):
        promote(store, "never", "never-model", SystemClock(), dry_run=True)
    shutil.rmtree(project.root / ".tunesmith", ignore_errors=True)


def test_policy_given_stands_in_for_a_recorded_policy_file_that_is_gone(tmp_path):
    """The checkout moved: the spec's `policy:` file is recorded at its old absolute path, and `--policy`, merged
    after it, could not stand in: every promote failed reading the old path."""
    old, new = tmp_path / "A", tmp_path / "B"
    old.mkdir()
    (old / "policy.yaml").write_text(yaml.safe_dump({"min": {"holdout_accuracy": 0.5}}))
    spec = {**WINE_TASK, "name": "moved", "promotion": {"policy": "policy.yaml"},
            "workdir": str(tmp_path / "work")}
    (old / "moved.yaml").write_text(yaml.safe_dump(spec))
    storage = f"sqlite:///{tmp_path / 'tunesmith.db'}"
    tunesmith.run(old / "moved.yaml", storage=storage)
    old.rename(new)

    proc = completed_in_process(new, "promote", "moved", "-m", "moved-model", "--dry-run", "--storage", storage)
    assert (proc.returncode, proc.stdout) == (2, ""), proc.stdout + proc.stderr
    assert proc.stderr.splitlines() == [
        f"error: promotion.policy: the spec's policy file '{old / 'policy.yaml'}' does not exist; put it back there, or "
        "(the checkout or the store moved) give it where it is now: `tunesmith promote --policy PATH` stands in for "
        "it"]

    proc = completed_in_process(new, "promote", "moved", "-m", "moved-model", "--dry-run", "--policy", "policy.yaml",
                                "--storage", storage)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "pass min.holdout_accuracy" in proc.stdout
    assert f"note: the spec's policy file '{old / 'policy.yaml'}' does not exist; --policy policy.yaml stands in " \
           "for it" in " ".join(proc.stderr.split())

