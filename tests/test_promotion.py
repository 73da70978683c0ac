"""Gated promotion to the MLflow model registry, reports, audit events and rollback, against real MLflow."""

from __future__ import annotations

import time
import json
import os
import shutil
import sys
from typing import Any
from pathlib import Path

import pytest
import yaml

import tunesmith
from tests._promotion_setup import FUNCTION_TRIALS, run_tracked, tracking_in_process, tuned_with_models
from tests._promotion_setup import WINE_TASK as TASK
from tests.conftest import Project
from tests.helpers import cli_in_process, completed_in_process
from tests.mlflow_fixtures import require_mlflow
from tunesmith.clock import SystemClock
from tunesmith.errors import UserInputError
from tunesmith.storage.sql import SQLStore


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory, mlflow_template: Path) -> Project:
    """One task experiment, tuned once, tracked into its own MLflow database; tests use distinct model names."""
    require_mlflow()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    root = tmp_path_factory.mktemp("promotion")
    shutil.copy(mlflow_template, root / "mlflow.db")  # already migrated: saves MLflow's first-use schema build
    project = Project(root)
    spec = {**TASK, "tracking": {"mlflow": {"uri": "sqlite:///mlflow.db", "experiment": "wine-tuning"}},
            "workdir": str(root / ".tunesmith" / "wine")}
    result = run_tracked(project.write_spec(spec), project.storage)  # tracked live, by MLflow in this process
    assert result.status.value == "completed"
    return project


def _store(project: Project) -> SQLStore:
    return SQLStore(project.storage, create=False)


def _trial_with_c(project: Project, c: float) -> int:
    store = _store(project)
    return next(t.number for t in store.trials(store.experiment("wine").id) if t.params["logisticregression__C"] == c)


def _policy(project: Project, name: str, gates: dict) -> str:
    path = project.root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(gates))
    return str(path)


def _promote(project: Project, model: str, **kw):
    from tunesmith.promotion.promote import promote

    return promote(_store(project), "wine", model, SystemClock(), **kw)


def _promote_here(project: Project, *args: str):
    """`tunesmith promote ARGS` from the project's folder as the command's own code and output in this process
    (helpers.completed_in_process; COLUMNS=200 as Project.cli gives a process), as subprocess.run gives its result.
    A promote as a process imports scikit-learn, skops and MLflow anew (4-5 CPU-s): one of each exit code is a
    process (rejected, 3, and bad input, 2: test_cli_exit_codes_rejected_3_bad_input_2; promoted, 0:
    test_promote_without_a_tracking_uri_registers_where_mlflow_tracking_uri_says), the other promotes whose words
    a test checks run here."""
    return completed_in_process(project.root, "promote", *args, "--storage", project.storage, env={"COLUMNS": "200"})


def _audit_json(project: Project) -> str:
    """What `tunesmith audit wine --json` prints, run in this process (a read-back: the promote is the subject)."""
    code, out, err = cli_in_process("audit", "wine", "--json", "--storage", project.storage)
    assert code == 0, out + err
    return out


def _audit(project: Project) -> list[dict]:
    return json.loads(_audit_json(project))


def _client(project: Project):
    import mlflow

    uri = f"sqlite:///{project.root / 'mlflow.db'}"
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_promote_registers_a_skops_model_moves_champion_and_reports(tuned):
    outcome = _promote(tuned, "wine-a", reason="first release")
    assert outcome.decision.value == "promoted" and outcome.version == "1"
    assert outcome.trial == _trial_with_c(tuned, 1.0)  # the best eligible trial
    client = _client(tuned)
    champion = client.get_model_version_by_alias("wine-a", "champion")
    assert str(champion.version) == "1" and champion.tags["tunesmith.experiment"] == "wine"
    assert float(champion.tags["tunesmith.metric.holdout_accuracy"]) > 0.9
    # the model was refit on the development rows and stored with skops; nothing pickled anywhere
    from mlflow.artifacts import download_artifacts

    local = Path(download_artifacts(artifact_uri=champion.source, tracking_uri=str(client.tracking_uri)))
    files = {p.name for p in local.rglob("*")}
    assert "model.skops" in files and not any(f.endswith((".pkl", ".pickle", ".joblib")) for f in files)
    assert yaml.safe_load((local / "MLmodel").read_text())["flavors"]["sklearn"]["serialization_format"] == "skops"
    from tunesmith.tracking.model_registry import ModelRegistry

    registry = ModelRegistry(str(client.tracking_uri))
    model = registry.load_sklearn(registry.by_alias("wine-a", "champion"))
    from sklearn.datasets import load_wine

    X, y = load_wine(return_X_y=True)
    assert (model.predict(X) == y).mean() > 0.9
    # the registered version belongs to the trial's tracked run
    run = client.get_run(champion.run_id)
    assert run.data.tags["tunesmith.trial"] == str(outcome.trial)
    # report and audit event
    report = json.loads(outcome.report_json.read_text())
    assert report["decision"] == "promoted" and report["version"] == "1" and report["reason"] == "first release"
    assert {g["gate"] for g in report["gates"]} == set()  # the spec has no promotion: section
    assert "**Decision: promoted**" in outcome.report_md.read_text()
    events = [e for e in _store(tuned).events(_store(tuned).experiment("wine").id) if e.kind == "promoted"]
    assert events[-1].payload["version"] == "1" and events[-1].payload["actor"]["user"]
    assert events[-1].payload["reason"] == "first release"
    # the promotion counts in the experiment's metrics, computed from the store by `tunesmith metrics`
    pytest.importorskip("prometheus_client", reason="needs prometheus-client: pip install 'tunesmith[metrics]'")
    from tunesmith.monitoring.metrics import metrics_from_store

    exposition = metrics_from_store(_store(tuned), "wine", time.time()).decode()
    assert 'tunesmith_promotions_total{experiment="wine",outcome="promoted"}' in exposition


def test_beat_champion_hands_a_champion_of_the_same_data_the_candidates_rows_as_they_are(tuned, monkeypatch):
    """A champion whose experiment reads the same data from the same folder (here: the candidate's own) had the
    candidate's raw file read again and its holdout rows re-encoded, to the very matrix the candidate held."""
    import tunesmith.tasks

    bad, good = _trial_with_c(tuned, 0.0003), _trial_with_c(tuned, 1.0)
    assert _promote(tuned, "wine-same", trial_number=bad).version == "1"
    encoded: list[object] = []
    rows_like = tunesmith.tasks.rows_like
    monkeypatch.setattr(tunesmith.tasks, "rows_like", lambda *a, **k: encoded.append(a) or rows_like(*a, **k))
    beat = _policy(tuned, "beat-same", {"beat_champion": {"metric": "accuracy", "margin": 0.05, "resamples": 200}})
    better = _promote(tuned, "wine-same", trial_number=good, policy_file=beat)
    gate = next(g for g in better.gates if g.gate == "beat_champion")
    assert better.version == "2" and gate.evidence["champion_version"] == "1", gate
    assert encoded == []


def test_beat_champion_then_rollback(tuned):
    from tunesmith.promotion.promote import rollback

    bad, good = _trial_with_c(tuned, 0.0003), _trial_with_c(tuned, 1.0)
    assert _promote(tuned, "wine-b", trial_number=bad).version == "1"  # a weak champion to beat
    beat = _policy(tuned, "beat", {"beat_champion": {"metric": "accuracy", "margin": 0.05, "resamples": 200}})
    better = _promote(tuned, "wine-b", trial_number=good, policy_file=beat)
    assert better.decision.value == "promoted" and better.version == "2" and better.previous_champion == "1"
    gate = next(g for g in better.gates if g.gate == "beat_champion")
    assert gate.evidence["ci_low"] > 0.05 and gate.evidence["champion_version"] == "1"
    assert "paired bootstrap, 200 resamples" in gate.evidence["method"]
    worse = _promote(tuned, "wine-b", trial_number=bad, policy_file=beat)
    assert worse.rejected and worse.version is None
    gate = next(g for g in worse.gates if g.gate == "beat_champion")
    assert not gate.passed and gate.evidence["ci_low"] < 0.05 and gate.evidence["improvement"] < 0
    client = _client(tuned)
    assert str(client.get_model_version_by_alias("wine-b", "champion").version) == "2"
    assert str(client.get_model_version_by_alias("wine-b", "previous").version) == "1"
    uri = str(client.tracking_uri)
    back = rollback(_store(tuned), "wine-b", SystemClock(), uri, "bad predictions on Monday")
    assert (back.from_version, back.to_version, back.previous) == ("2", "1", None)
    assert str(client.get_model_version_by_alias("wine-b", "champion").version) == "1"
    assert "previous" not in client.get_registered_model("wine-b").aliases
    assert client.get_model_version("wine-b", "2").tags["tunesmith.rolled_back"] == "bad predictions on Monday"
    with pytest.raises(UserInputError, match="no earlier champion"):
        rollback(_store(tuned), "wine-b", SystemClock(), uri, "again")
    kinds = [e.kind for e in _store(tuned).events(_store(tuned).experiment("wine").id)]
    assert "rolled_back" in kinds and "promotion_rejected" in kinds


@pytest.mark.slow
def test_promoting_the_champion_again_registers_nothing_and_says_so(tuned):
    """Re-promoting the champion's own trial (beat_champion margin 0: it ties with itself) registered a second
    version of the same model and moved `previous` onto the champion itself, so a rollback went nowhere."""
    best = _trial_with_c(tuned, 1.0)
    assert _promote(tuned, "wine-again", trial_number=best, reason="first release").version == "1"
    tie = _policy(tuned, "tie", {"beat_champion": {"metric": "accuracy", "margin": 0, "resamples": 200}})
    again = _promote(tuned, "wine-again", trial_number=best, policy_file=tie, reason="again")
    assert again.decision.value == "already the champion" and again.version is None and not again.rejected
    assert again.champion_before == "1"
    gate = next(g for g in again.gates if g.gate == "beat_champion")
    assert gate.passed and gate.message == "the candidate is champion v1 already: nothing to beat"
    client = _client(tuned)
    assert [str(v.version) for v in client.search_model_versions("name='wine-again'")] == ["1"]
    assert client.get_registered_model("wine-again").aliases == {"champion": 1}  # no `previous`
    report = json.loads(again.report_json.read_text())
    assert report["decision"] == "already the champion" and report["version"] is None
    assert "Already the champion: version 1; nothing registered" in again.report_md.read_text()
    events = [e for e in _store(tuned).events(_store(tuned).experiment("wine").id)
              if e.kind == "promotion_already_champion"]
    assert len(events) == 1 and events[0].payload["champion_before"] == "1" and events[0].payload["reason"] == "again"
    # from the command line, without beat_champion (the registry is asked once every gate passed): exit 0, said.
    # The command's code in this process (its exit code from main; _promote_here)
    proc = _promote_here(tuned, "wine", "--model-name", "wine-again", "--trial", str(best))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"already the champion: wine trial {best} is wine-again version 1; nothing registered" in proc.stdout
    assert [str(v.version) for v in client.search_model_versions("name='wine-again'")] == ["1"]


@pytest.mark.parametrize("gates, failing", [
    ({"min": {"holdout_rows": 1000}}, "min.holdout_rows"),       # the holdout has 54 rows
    ({"min": {"accuracy": 1.01}}, "min.accuracy"),
    ({"max": {"latency_p95_ms": 0.0}}, "max.latency_p95_ms"),
    ({"max": {"model_size_bytes": 10}}, "max.model_size_bytes"),
    ({"max_fold_spread": 0.0}, "max_fold_spread"),
    ({"safe_ranges": {"logisticregression__C": [0.001, 0.5]}}, "safe_ranges.logisticregression__C"),
    ({"safe_ranges": {"logisticregression__C": {"choices": [0.0003]}}}, "safe_ranges.logisticregression__C"),
    ({"require_tags": ["ticket"]}, "require_tags.ticket"),
    ({"require_tags": {"owner": "someone-else"}}, "require_tags.owner"),
])
def test_each_gate_rejects_and_the_report_names_it(tuned, gates, failing):
    outcome = _promote(tuned, "wine-gates", policy_file=_policy(tuned, "gate", gates))
    assert outcome.rejected and outcome.version is None and outcome.decision.value == "rejected"
    report = json.loads(outcome.report_json.read_text())
    assert [g["gate"] for g in report["gates"] if g["verdict"] == "failed"] == [failing]
    assert f"Rejected by: {failing}" in outcome.report_md.read_text()


def test_passing_gates_pass_with_their_evidence(tuned):
    gates = {"min": {"holdout_accuracy": 0.8}, "max": {"model_size_bytes": 10_000_000}, "max_fold_spread": 0.5,
             "safe_ranges": {"logisticregression__C": [0.1, 10]}, "require_tags": ["owner"]}
    outcome = _promote(tuned, "wine-dry", policy_file=_policy(tuned, "ok", gates), dry_run=True)
    assert outcome.decision.value == "dry run: every gate passed" and outcome.version is None
    assert all(g.passed for g in outcome.gates) and len(outcome.gates) == 5
    import mlflow

    with pytest.raises(mlflow.exceptions.MlflowException):
        _client(tuned).get_registered_model("wine-dry")  # a dry run registers nothing


@pytest.mark.slow
def test_cli_exit_codes_rejected_3_bad_input_2(tuned):
    policy = _policy(tuned, "strict", {"min": {"holdout_rows": 1000}})
    proc = tuned.cli("promote", "wine", "--model-name", "wine-cli", "--policy", policy)
    assert proc.returncode == 3, proc.stderr
    assert "FAIL min.holdout_rows" in proc.stdout and "report:" in proc.stdout
    proc = tuned.cli("promote", "wine", "--model-name", "wine-cli", "--trial", "99")
    assert proc.returncode == 2 and "no trial 99" in proc.stderr and "Traceback" not in proc.stderr
    # one process for each exit code (3 above, 2 here); the other bad input runs the command's code in this process
    # (its exit code from main): a mistyped policy is refused by a process in the test below, and a rollback as a
    # process imports MLflow anew (about 4 CPU-s)
    bad = _policy(tuned, "typo", {"min": {"holdout_accuracy": 0.5}, "safe_range": {}})
    proc = completed_in_process(tuned.root, "promote", "wine", "--model-name", "wine-cli", "--policy", bad,
                                "--storage", tuned.storage)
    assert proc.returncode == 2 and "safe_range" in proc.stderr and "did you mean 'safe_ranges'" in proc.stderr
    proc = completed_in_process(tuned.root, "rollback", "wine-cli", "--reason", "x", "--tracking-uri",
                                "sqlite:///mlflow.db", "--storage", tuned.storage)
    assert proc.returncode == 2 and "no champion" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    audit = _audit(tuned)
    assert any(r["kind"] == "promotion_rejected" and r["detail"]["failed_gates"] == ["min.holdout_rows"]
               for r in audit)


def test_a_promote_refused_for_its_trial_or_policy_is_refused_before_scikit_learn_is_imported(tuned):
    """`promote` read the spec in full first, its scorer looked up in scikit-learn (3-4 CPU-s of imports), then
    refused a --trial the experiment lacks or a mistyped policy file: both are checked first now, and the refusal
    is the same (the spec is read in full before the refit)."""
    import subprocess

    program = ("import runpy, sys\nsys.argv = ['tunesmith', *sys.argv[1:]]\ntry:\n"
               "    runpy.run_module('tunesmith.cli', run_name='__main__')\n"
               "finally:\n    print('sklearn imported:', 'sklearn' in sys.modules)\n")
    bad = _policy(tuned, "typo-first", {"min": {"holdout_accuracy": 0.5}, "safe_range": {}})
    env = {**os.environ, "TUNESMITH_STORAGE": tuned.storage, "COLUMNS": "200"}
    for args, says in ((("--trial", "99"), "no trial 99"), (("--policy", bad), "did you mean 'safe_ranges'")):
        proc = subprocess.run([sys.executable, "-c", program, "promote", "wine", "--model-name", "wine-cli", *args],
                              cwd=tuned.root, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and says in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stdout.strip() == "sklearn imported: False", proc.stdout


@pytest.mark.parametrize("model_name", ["team/wine", "wine:v2", " "])
def test_a_model_name_mlflow_refuses_is_bad_input_before_anything_runs(tuned, model_name):
    """It was MLflow's traceback (exit 1), after the gates had run ('no champion yet' passed: the look-up's error
    was read as no model), with no report or audit event of the attempt."""
    before = _audit_json(tuned)
    reports = set((tuned.root / ".tunesmith").rglob("*.md"))
    # a process for one name (the refusal's exit code and words as a user gets them); the other two names the
    # command's code in this process (_promote_here)
    proc = tuned.cli("promote", "wine", "--model-name", model_name) if model_name == "team/wine" else \
        _promote_here(tuned, "wine", "--model-name", model_name)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        f"error: --model-name: {model_name!r} is not a name MLflow accepts; use a non-empty name without '/' or ':' "
        "(e.g. team-wine)"]
    assert _audit_json(tuned) == before
    assert set((tuned.root / ".tunesmith").rglob("*.md")) == reports


def test_a_report_dir_that_is_a_file_or_missing_is_bad_input_and_no_folder_is_made(tuned):
    """--report-dir naming a file was a FileExistsError traceback after the gates had run; a missing one was made,
    with its parents (as root, at /), where --output, --json-out and --metrics-file refuse a missing folder."""
    before = _audit_json(tuned)
    spec_file = tuned.root / "wine.yaml"
    missing = tuned.root / "no-such" / "reports"
    for report_dir, said in ((spec_file, f"--report-dir: {str(spec_file)!r} is a file, not a folder; name the "
                                         "folder the reports go in"),
                             (missing, f"--report-dir: folder {str(missing)!r} does not exist; create it, or leave "
                                       "--report-dir out (<workdir>/promotions, made for you)")):
        proc = _promote_here(tuned, "wine", "--model-name", "wine-dir", "--report-dir", str(report_dir), "--dry-run")
        assert (proc.returncode, proc.stdout, proc.stderr.splitlines()) == (2, "", [f"error: {said}"]), proc.stderr
    assert not (tuned.root / "no-such").exists()
    assert _audit_json(tuned) == before


def test_a_gate_written_twice_in_a_policy_file_is_refused(tuned):
    """YAML kept the second `min:` and dropped the first without a word: a gate the platform team wrote was not run,
    and the promotion passed."""
    policy = tuned.root / "twice.yaml"
    policy.write_text("min: {holdout_rows: 1000}\nmax: {latency_p95_ms: 1000}\nmin: {accuracy: 0.1}\n")
    before = _audit_json(tuned)
    proc = tuned.cli("promote", "wine", "--model-name", "wine-twice", "--policy", str(policy), "--dry-run")
    assert "Traceback" not in proc.stdout + proc.stderr
    assert (proc.returncode, proc.stdout) == (2, ""), proc.stdout + proc.stderr
    assert proc.stderr.splitlines() == [f"error: policy file {policy}: min: written twice (lines 1 and 3); YAML "
                                        "would keep only the last: rename or remove one"]
    assert _audit_json(tuned) == before


def test_a_safe_range_on_a_parameter_the_space_lacks_fails_the_gate(tuned):
    """safe_ranges: {logisticregression_C: [...]} (one underscore) passed on every trial as 'not active in this
    configuration': a policy's typo let every configuration through the gate meant to fence them."""
    policy = _policy(tuned, "fence", {"safe_ranges": {"logisticregression_C": [0.5, 2.0]},
                                      "min": {"accuracy": 0.5}})
    outcome = _promote(tuned, "wine-fence", policy_file=policy, dry_run=True)
    gates = {g.gate: g for g in outcome.gates}
    fence = gates["safe_ranges.logisticregression_C"]
    assert not fence.passed
    assert fence.message == ("logisticregression_C is no parameter of the space; did you mean "
                             "'logisticregression__C'?")
    assert outcome.rejected


def test_a_min_or_max_gate_on_a_metric_the_experiment_never_records_is_bad_input_before_judging(tuned):
    """`min: {acuracy: 0.5}` rejected the trial, exit 3 ("FAIL min.acuracy: acuracy was not recorded for this
    trial"): a CI job reads 3 as the model rejected, not the policy mistyped. A misspelt beat_champion.metric was
    refused already (exit 2, before anything runs)."""
    before = _audit_json(tuned)
    for bound in ("min", "max"):
        policy = _policy(tuned, f"typo-{bound}", {bound: {"acuracy": 0.5}})
        proc = _promote_here(tuned, "wine", "--model-name", "wine-typo", "--policy", policy, "--dry-run")
        assert (proc.returncode, proc.stdout) == (2, ""), proc.stdout + proc.stderr
        assert proc.stderr.splitlines() == [
            f"error: policy file {policy}: {bound}.acuracy: 'acuracy' is not a metric this experiment records "
            "(accuracy, holdout_accuracy, holdout_rows or a metric its trials report); did you mean 'accuracy'?"]
    assert _audit_json(tuned) == before


SOME_REPORT = """
def objective(config, trial):
    (trial.workdir / "weights.txt").write_text(str(config["x"]))
    trial.save_model(trial.workdir / "weights.txt")  # a model to promote: a trial without one is bad input
    return {"loss": config["x"], **({"extra": 1.0} if config["x"] > 0.5 else {})}
"""


def test_a_gate_on_a_metric_some_trials_record_still_fails_a_trial_without_it(project):
    """Refused as a typo only where the experiment could never record the metric: one its trials report now and
    then is the gate's to judge."""
    project.write("some.py", SOME_REPORT)
    spec = project.spec("some", trial={"function": "some:objective"}, executor={"kind": "inline"},
                        space={"x": {"type": "categorical", "choices": [0.2, 0.9]}}, strategy="grid",
                        budget={"trials": 2})
    tunesmith.run(project.write_spec(spec), storage=project.storage)
    store = _store(project)
    without = next(t.number for t in store.trials(store.experiment("some").id) if "extra" not in t.metrics)
    from tunesmith.promotion.promote import promote

    outcome = promote(store, "some", "some-model", SystemClock(), trial_number=without, dry_run=True,
                      policy_file=_policy(project, "extra", {"min": {"extra": 0.5}}))
    gates = {g.gate: g for g in outcome.gates}
    assert outcome.rejected and gates["min.extra"].message == "extra was not recorded for this trial"


def test_rollback_where_no_mlflow_database_is_names_it_and_creates_none(project):
    """Run from another folder without --tracking-uri, rollback created an empty mlflow.db there (with MLflow's
    INFO lines about creating tables) and then said the model had no champion. It says the flag was not given (it
    blamed --tracking-uri as if it had been)."""
    proc = project.cli("rollback", "wine-clf", "--reason", "drift")
    assert "Traceback" not in proc.stdout + proc.stderr
    assert (proc.returncode, proc.stdout) == (2, ""), proc.stderr
    assert proc.stderr.splitlines() == [
        f"error: --tracking-uri (not given: the default, sqlite:///mlflow.db in this folder): no MLflow database at "
        f"{project.root / 'mlflow.db'}; pass the URI the model was registered at (the spec's tracking.mlflow.uri), "
        "e.g. --tracking-uri sqlite:////path/to/mlflow.db"]
    assert not (project.root / "mlflow.db").exists()


def test_function_trials_hand_over_a_model_with_save_model(project, mlflow_uri):
    store = tuned_with_models(project, "fm", mlflow_uri, 3,
                              promotion={"beat_champion": {"metric": "loss", "margin": 0.0}})
    from tunesmith.promotion.promote import promote

    first = promote(store, "fm", "fm-model", SystemClock())
    assert first.version == "1"
    other = next(t.number for t in store.trials(store.experiment("fm").id) if t.number != first.trial)
    challenger = promote(store, "fm", "fm-model", SystemClock(), trial_number=other, dry_run=True)
    gate = next(g for g in challenger.gates if g.gate == "beat_champion")
    assert gate.evidence["method"].startswith("recorded values")  # no holdout: compared on recorded values
    assert promote(store, "fm", "fm-model", SystemClock()).decision.value == "already the champion"
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)
    source = client.get_model_version("fm-model", "1").source
    from mlflow.artifacts import download_artifacts

    assert (Path(download_artifacts(artifact_uri=source, tracking_uri=mlflow_uri)) / "weights.json").is_file()
    nomodel = project.spec("nm", trial={"function": "fmodels:without_model"}, executor={"kind": "inline"},
                           budget={"trials": 2})
    tunesmith.run(project.write_spec(nomodel), storage=project.storage)
    with pytest.raises(UserInputError, match=r"^trial \d has no model to register: its model folder .* is missing"):
        promote(store, "nm", "nm-model", SystemClock())  # bad input, not gate `model`'s verdict (exit 3)
    shutil.rmtree(project.root / ".tunesmith", ignore_errors=True)


def test_a_same_named_experiment_of_another_store_is_not_taken_for_the_champion(project, mlflow_uri):
    """Two stores (or `tunesmith delete` and a new run) sharing one MLflow registry: the champion's tags matched on
    experiment name and trial number alone, so another experiment's model was called 'already the champion',
    nothing was registered, and promote exited 0."""
    from tunesmith.promotion.promote import promote

    outcomes = []
    for store_name in ("team-a", "team-b"):
        store = tuned_with_models(project, "shared", mlflow_uri, 2, f"sqlite:///{project.root / (store_name + '.db')}",
                                  workdir=str(project.root / store_name))
        outcomes.append(promote(store, "shared", "shared-model", SystemClock()))
    assert outcomes[0].trial == outcomes[1].trial  # same name, same number: only when it was created differs
    assert [(o.decision.value, o.version) for o in outcomes] == [("promoted", "1"), ("promoted", "2")]
    assert outcomes[1].champion_before == "1" and outcomes[1].previous_champion == "1"
    # a third store with an experiment of the same name that promoted nothing: rolling back from it must not put
    # the audit event on that experiment, which neither version came from (the name alone had matched it)
    from tunesmith.promotion.promote import rollback

    store_c = tuned_with_models(project, "shared", mlflow_uri, 1, f"sqlite:///{project.root / 'team-c.db'}",
                                workdir=str(project.root / "team-c"))
    before = [e.kind for e in store_c.events(store_c.experiment("shared").id)]
    rollback(store_c, "shared-model", SystemClock(), mlflow_uri, "bad model")
    assert [e.kind for e in store_c.events(store_c.experiment("shared").id)] == before
    shutil.rmtree(project.root / ".tunesmith", ignore_errors=True)


def test_a_dry_run_of_the_champions_own_trial_says_it_is_the_champion(project, mlflow_uri):
    """With beat_champion the dry run reads the registry's champion; for the champion's own trial it said 'every gate
    passed', as if promoting it would register something."""
    from tunesmith.promotion.promote import promote

    store = tuned_with_models(project, "dry", mlflow_uri, 2,
                              promotion={"beat_champion": {"metric": "loss", "margin": 0.0}})
    first = promote(store, "dry", "dry-model", SystemClock())
    assert first.version == "1"
    dry = promote(store, "dry", "dry-model", SystemClock(), trial_number=first.trial, dry_run=True)
    assert (dry.decision.value, dry.version, dry.champion_before) == ("dry run: already the champion", None, "1")
    proc = _promote_here(project, "dry", "--model-name", "dry-model", "--trial", str(first.trial), "--dry-run")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"dry run: already the champion: dry trial {first.trial} is dry-model version 1" in proc.stdout
    shutil.rmtree(project.root / ".tunesmith", ignore_errors=True)


def test_a_command_trial_hands_over_model_folder(project, mlflow_uri):
    project.write("train.py", '''
        import json, os, sys
        x = float(sys.argv[1])
        model = os.path.join(os.environ["TUNESMITH_TRIAL_DIR"], "model")   # the trial's own folder
        os.makedirs(model, exist_ok=True)
        with open(os.path.join(model, "weights.json"), "w") as f:
            json.dump({"x": x}, f)
        print(json.dumps({"loss": (x - 0.3) ** 2}))
    ''')
    spec = project.spec("cmd", trial={"command": f"{sys.executable} {{spec_dir}}/train.py {{x}}"},
                        budget={"trials": 2}, executor={"kind": "process", "workers": 1},
                        tracking={"mlflow": {"uri": mlflow_uri}})
    run_tracked(project.write_spec(spec), project.storage)
    from tunesmith.promotion.promote import promote

    outcome = promote(SQLStore(project.storage, create=False), "cmd", "cmd-model", SystemClock())
    assert outcome.version == "1"
    import mlflow
    from mlflow.artifacts import download_artifacts

    client = mlflow.MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)
    source = client.get_model_version("cmd-model", "1").source
    weights = Path(download_artifacts(artifact_uri=source, tracking_uri=mlflow_uri)) / "weights.json"
    assert json.loads(weights.read_text())["x"] == pytest.approx(
        _trial_params(project, "cmd", outcome.trial)["x"])


def _trial_params(project, name, number):
    store = SQLStore(project.storage, create=False)
    return dict(store.trials(store.experiment(name).id, [number])[0].params)


def test_rollback_reads_a_sqlite_tracking_uri_with_a_query_as_mlflow_does(tmp_path):
    """`sqlite:///mlflow.db?timeout=30` names mlflow.db (SQLAlchemy's reading, MLflow's too): rollback looked for a
    file called 'mlflow.db?timeout=30' and said there was no database."""
    import sqlite3

    from tunesmith.clock import SystemClock
    from tunesmith.errors import UserInputError
    from tunesmith.promotion.promote import rollback

    sqlite3.connect(tmp_path / "mlflow.db").close()
    with pytest.raises(UserInputError) as e:
        rollback(None, "wine-clf", SystemClock(), f"sqlite:///{tmp_path / 'mlflow.db'}?timeout=30", "drift")
    assert "no MLflow database" not in str(e.value) and "has no champion" in str(e.value)


def test_a_champion_registered_before_the_created_at_tag_is_still_known_by_name_and_trial(project, mlflow_uri):
    """Versions registered by an older tunesmith have no tunesmith.created_at tag: re-promoting the champion's own
    trial compared the model with itself (a strict beat_champion rejected it) or registered it again."""
    from mlflow import MlflowClient

    from tunesmith.promotion.promote import CREATED_AT_TAG, promote

    store = tuned_with_models(project, "legacy", mlflow_uri, 2)
    first = promote(store, "legacy", "legacy-model", SystemClock())
    MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri).delete_model_version_tag(
        "legacy-model", first.version, CREATED_AT_TAG)
    again = promote(store, "legacy", "legacy-model", SystemClock(), trial_number=first.trial)
    assert (again.decision.value, again.version) == ("already the champion", None), again


def _walkthrough() -> list[str]:
    """The command lines of the README's promotion "Try it" block (after its `cd examples`)."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start = readme.index("**Try it** (`examples/promotion.yaml`")
    begin = readme.index("```bash\n", start) + len("```bash\n")
    block = readme[begin:readme.index("\n```", begin)]
    lines = [line for line in block.splitlines() if line.strip()]
    assert lines[0] == "cd examples", lines[0]
    return lines[1:]


def _forget_relative_mlflow_engines() -> None:
    """MLflow keeps one engine per URI text for the whole process: a relative `sqlite:///mlflow.db` made by an earlier
    test in another folder would be this program's (it found no registered model where promote had just made one)."""
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore

    for store in (RegistryStore, TrackingStore):
        for uri in [u for u in store._engine_map if u.startswith("sqlite:///") and not u.startswith("sqlite:////")]:
            store._engine_map.pop(uri).dispose()


def _python_in_process(cwd: Path, args: list[str], env: dict[str, str]):
    """`python -c PROGRAM` (the only form the walkthrough has) run in this process from folder ``cwd`` with ``env``
    set, as subprocess.run gives its result: exit 0, or 1 with the traceback on stderr."""
    import contextlib
    import io
    import subprocess
    import traceback

    assert args[0] == "-c" and len(args) == 2, args
    _forget_relative_mlflow_engines()  # a process of its own would start without them
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        patch.chdir(cwd)
        for name, value in env.items():
            patch.setenv(name, value)
        try:
            exec(compile(args[1], "<string>", "exec"), {"__name__": "__main__"})
        except SystemExit as exited:
            code = exited.code if isinstance(exited.code, int) else (0 if exited.code is None else 1)
        except BaseException:
            traceback.print_exc()
            code = 1
    return subprocess.CompletedProcess(["python", *args], code, out.getvalue(), err.getvalue())


@pytest.mark.slow
def test_the_readme_promotion_walkthrough_runs_as_written(tmp_path: Path, mlflow_template: Path) -> None:
    """The walkthrough's "second version" promoted the best trial again: *already the champion*, nothing registered,
    and its `rollback` then failed (exit 2, no earlier champion). Every line runs here, in a fresh copy of examples/,
    and exits as its comment says (0 unless it says `exit N`). Every line runs its own code and output in this
    process, each of which, as a process, imported scikit-learn and MLflow anew (3-5 CPU-s a line, ~13 for the
    run and its MLflow writer): a `tunesmith` line is the command's code (its exit code from main;
    helpers.completed_in_process), `tunesmith run` tracked by MLflow's writer in this process
    (_promotion_setup.tracking_in_process; its trials still run in worker processes, as the spec says), the
    `python -c` line the program it gives, from the same folder (_python_in_process)."""
    import re
    import shlex

    examples = tmp_path / "examples"
    shutil.copytree(Path(__file__).resolve().parents[1] / "examples", examples)
    shutil.copy(mlflow_template, examples / "mlflow.db")  # migrated already: MLflow builds its schema slowly
    given = {"MLFLOW_DISABLE_TELEMETRY": "true", "COLUMNS": "200",
             "TUNESMITH_STORAGE": f"sqlite:///{examples / 'tunesmith.db'}"}
    for line in _walkthrough():
        command, _, comment = line.partition("  #")
        words = shlex.split(command)
        assert words[0] in ("tunesmith", "python"), line
        if words[0] == "python":
            proc = _python_in_process(examples, words[1:], env=given)
        else:
            with tracking_in_process():
                proc = completed_in_process(examples, *words[1:], env=given)
            if words[1] == "run":  # tracked live: every record written, as the writer process would have
                store = SQLStore(given["TUNESMITH_STORAGE"], create=False)
                try:
                    failed = [e.payload for e in store.events(store.experiment("promotion").id)
                              if e.kind == "tracking_failed"]
                finally:
                    store.close()
                assert not failed, failed
        expected = int(m.group(1)) if (m := re.search(r"\bexit (\d)", comment)) else 0
        assert proc.returncode == expected, f"{line}\nexit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        if "already the champion" in proc.stdout:
            raise AssertionError(f"{line}: registered nothing\n{proc.stdout}")
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{examples / 'mlflow.db'}")
    model = client.get_registered_model("wine-clf")
    assert {k: str(v) for k, v in model.aliases.items()} == {"champion": "1"}, model.aliases  # rolled back
    assert len(client.search_model_versions("name='wine-clf'")) == 2


def test_a_tree_model_is_stored_with_skops_and_read_back(mlflow_uri, tmp_path):
    """Every forest and boosted model holds sklearn.tree._tree.Tree, which skops does not trust by default: MLflow's
    check of what it saved refused it, and every promote of such a model ended in a traceback (a new user's walk,
    RandomForestClassifier). A class of the user's own is still refused, by name."""
    import mlflow
    from sklearn.base import BaseEstimator, TransformerMixin
    from sklearn.datasets import load_wine
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline

    from tunesmith.tracking.model_registry import ModelRegistry, UntrustedModel

    X, y = load_wine(return_X_y=True)
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    registry = ModelRegistry(mlflow_uri)
    client = mlflow.MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)
    experiment = client.create_experiment("trees", artifact_location=(tmp_path / "artifacts").as_uri())
    run_id = client.create_run(experiment).info.run_id  # (artifacts in the test's folder, not ./mlruns)
    version = registry.register("trees", registry.log_sklearn(run_id, forest, X[:5]), run_id, {})
    assert (registry.load_sklearn(version).predict(X) == forest.predict(X)).all()

    class Doubling(BaseEstimator, TransformerMixin):  # defined here: no allow-listed module vouches for it
        def fit(self, X, y=None):
            return self

        def transform(self, X):
            return X * 2

    own = make_pipeline(Doubling(), RandomForestClassifier(n_estimators=2, random_state=0)).fit(X, y)
    with pytest.raises(UntrustedModel, match="Doubling"):
        registry.log_sklearn(run_id, own, X[:5])


def test_promote_serializes_the_model_once_to_check_it_against_the_allow_list(tuned, monkeypatch):
    """promote checked the refit model against the allow-list before the gates (so a dry run tells), then
    `log_sklearn` checked it again: two full skops serializations of the same model before MLflow's own."""
    import skops.io

    dumped: list[object] = []
    dumps = skops.io.dumps

    def counted(obj, *args, **kwargs):
        dumped.append(obj)
        return dumps(obj, *args, **kwargs)

    monkeypatch.setattr(skops.io, "dumps", counted)
    assert _promote(tuned, "wine-once").version == "1"
    assert len(dumped) == 1, dumped


def test_a_trial_that_breaks_the_specs_constraints_fails_a_gate_when_asked_for_by_number(project, mlflow_uri):
    """`promote --trial N` shipped a trial breaking the spec's constraints (latency_p95_ms 9.51 against <= 5)
    without a word: "every gate passed" (a new user's walk). Selection never picks one; asked for by number, it is
    rejected by a `constraints` gate naming the bound and the recorded value."""
    from tunesmith.promotion.promote import promote

    store = tuned_with_models(project, "capped", mlflow_uri, 2, constraints=["loss <= -1"])  # none is feasible
    outcome = promote(store, "capped", "capped-model", SystemClock(), trial_number=0, dry_run=True)
    [gate] = [g for g in outcome.gates if g.gate == "constraints"]
    assert not gate.passed and outcome.decision.value == "dry run: rejected", outcome.gates
    assert gate.message.startswith("trial 0 breaks the spec's constraints: loss <= -1 (loss "), gate.message


def test_a_rolled_back_trial_is_rejected_unless_asked_for(tuned):
    """`promote` after `rollback` re-registered the very trial the rollback demoted (a new version, exit 0), and
    neither its output nor its report said a word of the rollback: the default promote (or a cycle) shipped the bad
    model again. Gate rolled_back now rejects it (exit 3), naming the rollback's date and reason, unless asked for
    with --even-if-rolled-back; the rejection is in the audit trail as any other."""
    from tunesmith.promotion.promote import rollback

    bad, good = _trial_with_c(tuned, 0.0003), _trial_with_c(tuned, 1.0)
    assert _promote(tuned, "wine-sticky", trial_number=bad).version == "1"
    assert _promote(tuned, "wine-sticky", trial_number=good).version == "2"
    uri = str(_client(tuned).tracking_uri)
    rollback(_store(tuned), "wine-sticky", SystemClock(), uri, "bad predictions on Monday")
    proc = _promote_here(tuned, "wine", "--model-name", "wine-sticky")  # the default: the best trial, `good`
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert f"FAIL rolled_back: trial {good}'s model (wine-sticky version 2) was rolled back on 20" in proc.stdout
    assert "reason: 'bad predictions on Monday'; promote another trial, or pass --even-if-rolled-back" in proc.stdout
    client = _client(tuned)
    assert sorted(str(v.version) for v in client.search_model_versions("name='wine-sticky'")) == ["1", "2"]
    assert str(client.get_model_version_by_alias("wine-sticky", "champion").version) == "1"
    report = Path(proc.stdout.split("report: ", 1)[1].strip())
    assert "Rejected by: rolled_back" in report.read_text() and "bad predictions on Monday" in report.read_text()
    gate = next(g for g in json.loads(report.with_suffix(".json").read_text())["gates"] if g["gate"] == "rolled_back")
    assert gate["evidence"]["reason"] == "bad predictions on Monday" and gate["evidence"]["version"] == "2"
    audit = _audit(tuned)
    assert [r["detail"]["failed_gates"] for r in audit if r["kind"] == "promotion_rejected"][-1] == ["rolled_back"]
    dry = _promote(tuned, "wine-sticky", dry_run=True)  # no beat_champion: no registry read; the audit trail says it
    assert [g.gate for g in dry.gates if not g.passed] == ["rolled_back"] and dry.decision.value == "dry run: rejected"
    assert "(wine-sticky version 2) was rolled back on 20" in dry.gates[-1].message
    # asked for: promoted again, said so, and recorded as asked (the command's own code and output, run in this
    # process, as the rejection above; the words are compared, not the line breaks)
    code, out, err = cli_in_process("promote", "wine", "--model-name", "wine-sticky", "--even-if-rolled-back",
                                    "--storage", tuned.storage)
    assert code == 0, out + err
    said = " ".join(out.split())
    assert "pass rolled_back:" in said and "promoted again as asked (--even-if-rolled-back)" in said, out
    assert f"promoted: wine trial {good} is wine-sticky version 3" in said, out
    audit = _audit(tuned)
    assert [r["detail"].get("even_if_rolled_back") for r in audit if r["kind"] == "promoted"][-1] is True
    # promoted again since, the rollback no longer stands against it
    again = _promote(tuned, "wine-sticky")
    assert again.decision.value == "already the champion" and not again.rejected, again.gates


def test_a_rolled_back_trial_does_not_block_a_new_experiments_trial_of_the_same_params(project, mlflow_uri):
    """What `tunesmith cycle` promotes is a re-tune: a new experiment. Its trial is not the rolled-back model even when
    it picked the same params, so the rollback of the old one's does not block it."""
    from tunesmith.promotion.promote import promote, rollback

    store = tuned_with_models(project, "old", mlflow_uri, 2)
    first, second = (t.number for t in store.trials(store.experiment("old").id))
    assert promote(store, "old", "churn", SystemClock(), trial_number=first).version == "1"
    assert promote(store, "old", "churn", SystemClock(), trial_number=second).version == "2"
    rollback(store, "churn", SystemClock(), mlflow_uri, "drift")
    blocked = promote(store, "old", "churn", SystemClock(), trial_number=second)
    assert [g.gate for g in blocked.gates if not g.passed] == ["rolled_back"]
    store = tuned_with_models(project, "old-r1", mlflow_uri, 2)   # same seed and space: the same params
    retune = store.trials(store.experiment("old-r1").id)
    assert dict(retune[second].params) == dict(store.trials(store.experiment("old").id)[second].params)
    outcome = promote(store, "old-r1", "churn", SystemClock(), trial_number=second)
    assert (outcome.decision.value, outcome.version) == ("promoted", "3"), outcome.gates
    assert "rolled_back" not in [g.gate for g in outcome.gates]
    shutil.rmtree(project.root / ".tunesmith", ignore_errors=True)


def test_a_misspelt_beat_champion_metric_is_bad_input_on_the_first_promotion_too(tuned):
    """`beat_champion: {metric: acc}` passed the first promotion ("no champion yet: nothing to beat") and failed every
    later one ("acc is not recorded for the candidate", no did-you-mean), where a misspelt `min:` metric is named."""
    policy = _policy(tuned, "acc", {"beat_champion": {"metric": "acc"}})
    before = _audit_json(tuned)
    for extra in ([], ["--dry-run"]):  # a process, then the same with --dry-run as the command's code here
        args = ("wine", "--model-name", "wine-acc", "--trial", "0", "--policy", policy, *extra)
        proc = _promote_here(tuned, *args) if extra else tuned.cli("promote", *args)
        assert "Traceback" not in proc.stdout + proc.stderr
        assert (proc.returncode, proc.stdout) == (2, ""), proc.stdout + proc.stderr
        assert proc.stderr.splitlines() == [
            f"error: policy file {policy}: beat_champion.metric: 'acc' is not a metric this experiment records "
            "(accuracy, holdout_accuracy, holdout_rows or a metric its trials report); did you mean 'accuracy'?"]
    assert _audit_json(tuned) == before
    import mlflow

    with pytest.raises(mlflow.exceptions.MlflowException):
        _client(tuned).get_registered_model("wine-acc")  # nothing registered


def test_a_misspelt_beat_champion_metric_in_the_spec_names_the_spec_field(project, mlflow_uri):
    store = tuned_with_models(project, "typo", mlflow_uri, 1, promotion={"beat_champion": {"metric": "los"}})
    del store
    proc = project.cli("promote", "typo", "--model-name", "typo-model", "--trial", "0")
    assert "Traceback" not in proc.stdout + proc.stderr
    assert (proc.returncode, proc.stdout) == (2, ""), proc.stdout + proc.stderr
    assert proc.stderr.splitlines() == [
        "error: promotion.beat_champion.metric: 'los' is not a metric this experiment records (loss or a metric its "
        "trials report); did you mean 'loss'?"]
    shutil.rmtree(project.root / ".tunesmith", ignore_errors=True)


def test_the_versions_of_a_model_named_with_quotes_are_found(mlflow_uri):
    """The rolled_back gate lists the model's versions: an escaped quote in MLflow's filter matched nothing, so a
    rolled-back trial of a model named `it's` would have passed."""
    from tunesmith.tracking.model_registry import ModelRegistry

    registry = ModelRegistry(mlflow_uri)
    names = ["it's", 'say "hi"', "both'\"", "plain"]
    for name in names:
        for _ in range(2):
            registry.register(name, "file:///nowhere", None, {})
    assert {name: [v.version for v in registry.versions(name)] for name in names} == {n: ["1", "2"] for n in names}
    assert registry.versions("no such model") == []


def test_promote_without_a_tracking_uri_registers_where_mlflow_tracking_uri_says(project, mlflow_template):
    """`rollback` and MLflow's own client read $MLFLOW_TRACKING_URI; `promote` (and `cycle`, the tracking
    listener) ignored it and registered into sqlite:///mlflow.db beside the spec, a file a CI runner throws away.
    Without --tracking-uri or the spec's tracking.mlflow.uri, the variable now names the registry."""
    require_mlflow()
    registry = project.root / "shared" / "registry.db"
    registry.parent.mkdir()
    shutil.copy(mlflow_template, registry)
    # a function trial's model folder (no tracking: section): where it registers does not depend on the model's
    # kind, and a task's model would have the command refit it and import skops (about 6 CPU-s more)
    project.write("fmodels.py", FUNCTION_TRIALS)
    spec = project.spec("envreg", trial={"function": "fmodels:with_model"}, executor={"kind": "inline"},
                        budget={"trials": 1})
    assert tunesmith.run(project.write_spec(spec), storage=project.storage).status.value == "completed"
    env = {"MLFLOW_TRACKING_URI": "sqlite:///shared/registry.db", "MLFLOW_DISABLE_TELEMETRY": "true"}
    proc = project.cli("promote", "envreg", "--model-name", "envreg-model", env=env)  # relative: from this folder
    assert proc.returncode == 0, proc.stderr
    assert not (project.root / "mlflow.db").exists(), "registered beside the spec, not where the variable says"
    import mlflow

    uri = f"sqlite:///{registry}"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert client.get_registered_model("envreg-model").aliases == {"champion": 1}


def test_beat_champion_fails_when_the_champion_never_saw_the_candidates_labels(project, mlflow_uri):
    """A model tuned on 0/1 recoded as malignant/benign beat the 0/1 champion by +0.98: the champion's ROC AUC on
    labels it never saw was 0.003 (its probability of class 1, benign, scored as malignant's). The gate now fails,
    saying why."""
    from tunesmith.promotion.promote import promote
    from tunesmith.testing.drift_data import shifted_split

    reference, _ = shifted_split(project.root)
    header, *rows = reference.read_text().splitlines()
    names = {"0": "malignant", "1": "benign"}
    project.write("strlabel.csv", "\n".join([header, *(f"{r.rsplit(',', 1)[0]},{names[r.rsplit(',', 1)[1]]}"
                                                       for r in rows)]) + "\n")
    store = SQLStore(project.storage)
    for name, data in (("numbers", "reference.csv"), ("words", "strlabel.csv")):
        spec = {"name": name, "objective": {"metric": "roc_auc", "direction": "maximize"},
                "task": {"estimator": {"sklearn.linear_model.LogisticRegression": {"max_iter": 2000}},
                         "pipeline": ["sklearn.preprocessing.StandardScaler"],
                         "data": {"path": data, "target": "label"}, "cv": {"kind": "stratified", "folds": 3},
                         "holdout": {"fraction": 0.2}, "scoring": "roc_auc"},
                "space": {"logisticregression__C": {"type": "float", "low": 0.01, "high": 10.0, "log": True}},
                "strategy": "random", "budget": {"trials": 1}, "executor": {"kind": "inline"}, "seed": 0,
                "tracking": {"mlflow": {"uri": mlflow_uri, "experiment": name}},
                "workdir": str(project.root / ".tunesmith" / name),
                "promotion": {"beat_champion": {"metric": "roc_auc", "margin": -0.01, "resamples": 50}}}
        run_tracked(project.write_spec(spec), project.storage)
    assert promote(store, "numbers", "labels-model", SystemClock()).version == "1"
    outcome = promote(store, "words", "labels-model", SystemClock())
    assert outcome.rejected and outcome.version is None
    gate = next(g for g in outcome.gates if g.gate == "beat_champion")
    assert not gate.passed, gate
    assert gate.message.startswith("cannot compare with champion v1: the candidate's holdout has label(s) benign, "
                                   "malignant, which the champion was never trained on (its labels: 0, 1)"), gate
    shutil.rmtree(project.root / ".tunesmith", ignore_errors=True)


def _churn_csv(path: Path, n: int = 400, seed: int = 0) -> None:
    """Rows with a text column (region) among numbers, as a data scientist's CSV has them."""
    import numpy as np

    rng = np.random.default_rng(seed)
    region = rng.choice(["east", "north", "south", "west"], n, p=[.2, .4, .3, .1])
    age = rng.integers(18, 80, n).astype(float)
    income = rng.normal(50, 15, n)
    logit = -1.0 + 0.05 * (age - 50) - 0.04 * (income - 50) + 1.2 * (region == "west") - 0.8 * (region == "east")
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    lines = ["region,age,income,churned", *(f"{r},{a:.0f},{i:.2f},{c}" for r, a, i, c in
                                            zip(region, age, income, churned, strict=True))]
    path.write_text("\n".join(lines) + "\n")


def _churn_spec(name: str, mlflow_uri: str, data: str = "churn.csv", features: list[str] | None = None,
                pipeline: list | None = None, **extra: Any) -> dict[str, Any]:
    """One configuration (C fixed), so two such experiments on the same rows fit the same model."""
    return {"name": name, "objective": {"metric": "roc_auc", "direction": "maximize"},
            "task": {"estimator": {"sklearn.linear_model.LogisticRegression": {"max_iter": 2000}},
                     "pipeline": pipeline or ["sklearn.impute.SimpleImputer", "sklearn.preprocessing.StandardScaler"],
                     "data": {"path": data, "target": "churned",
                              "features": features or ["region", "age", "income"]},
                     "cv": {"kind": "stratified", "folds": 3}, "holdout": {"fraction": 0.3}, "scoring": "roc_auc"},
            "space": {"logisticregression__C": {"type": "categorical", "choices": [1.0]}},
            "strategy": "grid", "budget": {"trials": 1}, "executor": {"kind": "inline"}, "seed": 0,
            "tracking": {"mlflow": {"uri": mlflow_uri, "experiment": name}},
            "workdir": f".tunesmith/{name}", **extra}


BEAT = {"beat_champion": {"metric": "holdout_roc_auc", "margin": 0.0, "resamples": 50}}


def test_beat_champion_scores_the_champion_on_the_rows_encoded_as_its_own_experiment_encodes_them(project, mlflow_uri):
    """The champion was handed the candidate's matrix: a candidate listing the same features in another order gave
    it scrambled columns, and a copy of the champion 'beat' it (0.80 vs 0.23). Equal configurations on the same rows
    now score the same; a new text level (every other level's code shifted) is encoded the champion's way."""
    from tunesmith.promotion.promote import promote
    from tunesmith.spec.loader import spec_from_dict
    from tunesmith.tasks import prepare, reference_columns, rows_like

    _churn_csv(project.root / "churn.csv")
    rows = (project.root / "churn.csv").read_text().splitlines()
    # a new level, 'central', that sorts first: every other region's code shifts by one
    project.write("churn_v2.csv", "\n".join([rows[0], *(("central" + r[r.index(","):]) if i % 9 == 0 else r
                                                        for i, r in enumerate(rows[1:]))]) + "\n")
    store = SQLStore(project.storage)
    run_tracked(project.write_spec(_churn_spec("bc-a", mlflow_uri)), project.storage)
    run_tracked(project.write_spec(_churn_spec("bc-d", mlflow_uri, features=["income", "age", "region"],
                                               promotion=BEAT)), project.storage)
    run_tracked(project.write_spec(_churn_spec("bc-c", mlflow_uri, data="churn_v2.csv", promotion=BEAT)),
                project.storage)
    assert promote(store, "bc-a", "M", SystemClock()).version == "1"

    same = promote(store, "bc-d", "M", SystemClock(), dry_run=True)
    gate = next(g for g in same.gates if g.gate == "beat_champion")
    assert gate.evidence["candidate"] == pytest.approx(gate.evidence["champion"], abs=1e-9), gate
    assert gate.evidence["champion"] > 0.6, gate
    assert gate.evidence["improvement"] == pytest.approx(0.0, abs=1e-9), gate  # a copy beats the champion by nothing

    shifted = promote(store, "bc-c", "M", SystemClock(), dry_run=True)
    gate = next(g for g in shifted.gates if g.gate == "beat_champion")
    # the champion's true score on the candidate's holdout rows, encoded as bc-a encodes them ('central': missing)
    spec_a = spec_from_dict(store.experiment("bc-a").spec)
    spec_c = spec_from_dict(store.experiment("bc-c").spec)
    holdout = prepare(spec_c.task, spec_c.base_dir).holdout_idx
    raw = reference_columns(spec_c.task.data, spec_c.base_dir)
    X = rows_like(spec_a.task.data, spec_a.base_dir, "churn_v2.csv",
                  columns={k: [v[i] for i in holdout] for k, v in raw.items()}).X
    from tunesmith.tracking.model_registry import ModelRegistry

    registry = ModelRegistry(mlflow_uri)
    champion = registry.load_sklearn(registry.by_alias("M", "champion"))
    y = prepare(spec_c.task, spec_c.base_dir).dataset.y[holdout]
    true = prepare(spec_c.task, spec_c.base_dir).scorer(champion, X, y)
    assert gate.evidence["champion"] == pytest.approx(true, abs=1e-9), gate
    shutil.rmtree(project.root / ".tunesmith", ignore_errors=True)


def test_beat_champion_refuses_to_compare_with_a_champion_whose_encoding_it_cannot_know(project, mlflow_uri):
    """A champion registered by another store: the rows it takes are not known here; the gate fails saying so,
    with no number."""
    from tunesmith.promotion.promote import promote

    _churn_csv(project.root / "churn.csv")
    other = f"sqlite:///{project.root / 'other.db'}"
    run_tracked(project.write_spec(_churn_spec("elsewhere", mlflow_uri)), other)
    assert promote(SQLStore(other), "elsewhere", "M2", SystemClock()).version == "1"
    run_tracked(project.write_spec(_churn_spec("here", mlflow_uri, promotion=BEAT)), project.storage)
    outcome = promote(SQLStore(project.storage), "here", "M2", SystemClock(), dry_run=True,
                      tracking_uri=mlflow_uri)
    gate = next(g for g in outcome.gates if g.gate == "beat_champion")
    assert not gate.passed and gate.evidence.get("champion") is None, gate
    assert "cannot compare with champion v1" in gate.message and "'elsewhere'" in gate.message, gate
    assert "does not hold" in gate.message, gate


def test_promote_refuses_a_data_file_changed_since_the_run(project, mlflow_uri):
    """promote re-read the task's file as it is now and refit on it: a file edited since the run shipped a model
    fitted on other rows, with no word. Refused, exit 2, naming the file, what changed and the ways out."""
    _churn_csv(project.root / "churn.csv")
    run_tracked(project.write_spec(_churn_spec("chg", mlflow_uri)), project.storage)
    _churn_csv(project.root / "churn.csv", seed=3)   # a colleague's corrected extract, written over it
    for dry in (["--dry-run"], []):
        proc = _promote_here(project, "chg", "-m", "chg", *dry)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        said = " ".join(proc.stderr.split())
        assert "churn.csv" in said and "changed since" in said and "content hash" in said, said
        assert "tunesmith retune chg --data" in said and "Restore the file" in said, said
        assert "Traceback" not in proc.stderr
    assert not list((project.root / ".tunesmith" / "chg").glob("promotions/*.json"))


def test_a_refit_model_that_cannot_score_the_holdout_is_refused_naming_the_reason(project):
    """A level only the holdout holds, with a OneHotEncoder that refuses unknown levels: promote --dry-run crashed
    with scikit-learn's traceback (exit 1). Refused, exit 2, with the library's reason."""
    from tunesmith.spec.loader import spec_from_dict
    from tunesmith.tasks import prepare

    _churn_csv(project.root / "churn.csv")
    spec = _churn_spec("newcat", "unused", pipeline=["sklearn.preprocessing.OneHotEncoder"], features=["region"])
    del spec["tracking"]
    spec_path = project.write_spec(spec)
    from tunesmith.spec.loader import load_spec

    loaded = load_spec(spec_path)
    holdout = prepare(loaded.task, loaded.base_dir).holdout_idx   # (carved from the labels: the same after the edit)
    rows = (project.root / "churn.csv").read_text().splitlines()
    picked = set(holdout[:3].tolist())
    project.write("churn.csv", "\n".join([rows[0], *(("central" + r[r.index(","):]) if i in picked else r
                                                    for i, r in enumerate(rows[1:]))]) + "\n")
    tunesmith.run(spec_path, storage=project.storage)  # its own holdout meets the same refusal: recorded undefined
    holdout = project.show("newcat")["holdout"]
    assert holdout["holdout_roc_auc"] == "nan", holdout
    assert "Found unknown categories" in " ".join(holdout["why_undefined"]), holdout
    recorded = spec_from_dict(SQLStore(project.storage).experiment("newcat").spec)
    assert set(prepare(recorded.task, recorded.base_dir).holdout_idx.tolist()) >= picked
    proc = _promote_here(project, "newcat", "-m", "newcat", "--dry-run")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    said = " ".join(proc.stderr.split())
    assert "Traceback" not in proc.stderr
    assert "cannot score the holdout" in said and "Found unknown categories" in said, said
    assert "handle_unknown: ignore" in said, said  # the hint, said for an unknown level only


STEP_OF_MY_OWN = '''
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


class Doubled(BaseEstimator, TransformerMixin):
    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.asarray(X, dtype=float) * 2.0
'''


def test_a_dry_run_refuses_a_model_the_registry_would_refuse(project, mlflow_uri):
    """A class of the user's own in the pipeline: the dry run said every gate passed, then the promote refused it
    (outside the allow-list). The dry run now refuses it as the promote does: same message, exit 2."""
    _churn_csv(project.root / "churn.csv")
    project.write("mysteps.py", STEP_OF_MY_OWN)
    run_tracked(project.write_spec(_churn_spec("own", mlflow_uri, pipeline=[
        "mysteps.Doubled", "sklearn.impute.SimpleImputer"])), project.storage)
    said = []
    for dry in (["--dry-run"], []):
        proc = _promote_here(project, "own", "-m", "own", *dry)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        said.append(" ".join(proc.stderr.split()))
    assert said[0] == said[1], said
    assert "outside the allow-list" in said[0] and "mysteps.Doubled" in said[0], said
