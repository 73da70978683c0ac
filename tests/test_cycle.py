"""The keep-fresh cycle: drift -> re-tune -> promote, each step an event; the promote seam; watch's loop."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import cli_in_folder

from tunesmith.cycle import (
    CycleOutcome, PromotionVerdict, StepStatus, lineage_head, promote_step, run_cycle, watch,
)
from tunesmith.runner import run_experiment
from tunesmith.spec.loader import load_spec
from tunesmith.storage.sql import SQLStore
from tunesmith.testing.drift_data import shifted_split

SPEC = {
    "name": "bc",
    "objective": {"metric": "roc_auc", "direction": "maximize"},
    "task": {"estimator": {"sklearn.linear_model.LogisticRegression": {"max_iter": 2000}},
             "pipeline": ["sklearn.preprocessing.StandardScaler"],
             "data": {"path": "reference.csv", "target": "label"}, "cv": {"kind": "stratified", "folds": 3},
             "holdout": {"fraction": 0.2}, "scoring": "roc_auc"},
    "space": {"logisticregression__C": {"type": "float", "low": 0.001, "high": 100.0, "log": True}},
    "strategy": "random", "budget": {"trials": 3}, "executor": {"kind": "inline"}, "seed": 0,
    "drift": {"retune": {"trials": 2, "top_k": 1}},
}


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The experiment's folder, also the working directory: runs made in-process put their workdir
    (.tunesmith/NAME, relative) here, not in the repository, where tests running at once would share it."""
    monkeypatch.chdir(tmp_path)
    shifted_split(tmp_path)
    (tmp_path / "bc.yaml").write_text(yaml.safe_dump(SPEC))
    return tmp_path


def test_promote_step_says_why_it_is_skipped_and_calls_the_seam(folder: Path) -> None:
    spec = load_spec(folder / "bc.yaml")
    store = SQLStore(f"sqlite:///{folder / 'unused.db'}")
    skipped = promote_step(store, "bc", spec, None)
    assert skipped.status is StepStatus.SKIPPED and "promotion:" in skipped.why
    calls = []

    def gate(store_: SQLStore, experiment: str, model_name: str | None) -> PromotionVerdict:
        calls.append((experiment, model_name))
        return PromotionVerdict(model_name == "ok", {"gates": ["beat_champion"]})

    assert promote_step(store, "bc", spec, "ok", gate).status is StepStatus.DONE
    assert promote_step(store, "bc", spec, "no", gate).status is StepStatus.REJECTED
    said = promote_step(store, "bc", spec, "no", lambda *a: PromotionVerdict(False, {
        "failed_gates": ["min.holdout_roc_auc", "beat_champion"], "report": "/p/r.md"}))
    # the plain output prints `why`: the gates and the report, not only in --json's detail
    assert said.why == "min.holdout_roc_auc, beat_champion rejected it; the champion stays; report: /p/r.md"
    assert calls == [("bc", "ok"), ("bc", "no")]


@pytest.mark.slow
def test_a_gate_rejection_keeps_the_old_champion_and_exits_3(folder: Path) -> None:
    store = SQLStore(f"sqlite:///{folder / 'tunesmith.db'}")
    run_experiment(load_spec(folder / "bc.yaml"), store)
    rejected = run_cycle(store, "bc", "shifted.csv",
                         promote=lambda s, e, m: PromotionVerdict(False, {"failed": "beat_champion"}))
    assert rejected.outcome is CycleOutcome.REJECTED and rejected.exit_code == 3
    assert rejected.champion == "bc" and lineage_head(store, "bc").name == "bc"
    assert store.experiment("bc-retune-1").attributes["rejected"] is True
    kinds = [e.kind for e in store.events(store.experiment("bc").id) if e.kind.startswith("cycle_")]
    assert kinds == ["cycle_drift", "cycle_retune", "cycle_promote"]
    # the same rows again (a scheduler's retry): not re-tuned a second time to meet the same gate
    again = run_cycle(store, "bc", "shifted.csv", promote=lambda s, e, m: PromotionVerdict(True, {}))
    assert again.outcome is CycleOutcome.REJECTED and again.exit_code == 3, again.to_json()
    assert [(s.name, s.status) for s in again.steps] == [("drift", StepStatus.DONE), ("retune", StepStatus.SKIPPED),
                                                         ("promote", StepStatus.SKIPPED)], again.to_json()
    assert again.steps[1].detail["rejected_before"] == "bc-retune-1" and "--force-retune" in again.steps[1].why
    assert "bc-retune-2" not in store.experiment_names()
    promoted = run_cycle(store, "bc", "shifted.csv", promote=lambda s, e, m: PromotionVerdict(True, {}),
                         force_retune=True)
    assert promoted.outcome is CycleOutcome.PROMOTED and promoted.champion == "bc-retune-2"
    assert lineage_head(store, "bc").name == "bc-retune-2"
    slept: list[float] = []
    reports = watch(store, "bc", "shifted.csv", 3600.0, cycles=2, sleep=slept.append)
    assert [r.outcome for r in reports] == [CycleOutcome.NO_DRIFT] * 2 and len(slept) == 1
    assert 3500 < slept[0] <= 3600 and reports[0].checked == "bc-retune-2"


def _cli(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`tunesmith ARGS` from ``cwd``, a real subprocess on the store there (without torch: see without_torch)."""
    from tests.mlflow_fixtures import without_torch

    return subprocess.run([sys.executable, "-m", "tunesmith.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=240, env={**os.environ, "TUNESMITH_STORAGE": f"sqlite:///{cwd / 'tunesmith.db'}",
                                            "COLUMNS": "200", **without_torch(cwd / ".without-torch"), **(env or {})})


@pytest.mark.slow
def test_cycle_command_from_a_spec_tunes_detects_retunes_and_reports_json(folder: Path) -> None:
    proc = _cli(folder, "cycle", "bc.yaml", "--data", "shifted.csv", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert [(s["step"], s["status"]) for s in report["steps"]] == [
        ("tune", "done"), ("drift", "done"), ("retune", "done"), ("promote", "skipped")]
    assert report["outcome"] == "retuned" and report["champion"] == "bc-retune-1"
    assert "promotion:" in report["steps"][3]["why"]
    assert report["steps"][2]["detail"]["trials"] == 2  # drift.retune.trials
    again = cli_in_folder(folder, "watch", "bc.yaml", "--data", "shifted.csv", "--every", "1s", "--cycles", "2",
                          "--json")  # in this process, as the refusals below (the cycle above was the CLI's)
    assert again.returncode == 0, again.stderr
    lines = [json.loads(line) for line in again.stdout.splitlines()]
    assert [r["outcome"] for r in lines] == ["no_drift", "no_drift"]
    assert lines[0]["checked"] == "bc-retune-1" and lines[0]["steps"][0]["status"] == "skipped"  # tune: recorded
    bad = cli_in_folder(folder, "watch", "bc", "--data", "shifted.csv", "--every", "soon")  # (the CLI's own
    assert bad.returncode == 2 and "--every" in bad.stderr  # --every refusals: tests/test_cycle_sre.py)
    bad = cli_in_folder(folder, "cycle", "nope.yaml", "--data", "shifted.csv")
    assert bad.returncode == 2 and "nope.yaml" in bad.stderr


@pytest.mark.slow
def test_cycle_promotes_the_retune_through_the_real_gates_into_mlflow(folder: Path, mlflow_uri: str) -> None:
    """No seam replaced: the spec's promotion: gates run, the re-tune is registered and becomes the champion."""
    from tunesmith.cycle import promote_step
    from tunesmith.errors import UserInputError

    # the registry is mlflow_uri, the spec's default (mlflow.db in its folder): no tracking: section, whose live
    # mirroring (a writer process for each run and re-tune) this test does not look at
    assert mlflow_uri == f"sqlite:///{folder / 'mlflow.db'}"
    (folder / "bc.yaml").write_text(yaml.safe_dump({**SPEC, "promotion": {"min": {"holdout_roc_auc": 0.5}}}))
    store = SQLStore(f"sqlite:///{folder / 'tunesmith.db'}")
    run_experiment(load_spec(folder / "bc.yaml"), store)
    with pytest.raises(UserInputError, match="--model-name"):
        promote_step(store, "bc", load_spec(folder / "bc.yaml"), None)
    report = run_cycle(store, "bc", "shifted.csv", model_name="bc-model")
    assert report.outcome is CycleOutcome.PROMOTED and report.exit_code == 0, report.to_json()
    promote = report.to_json()["steps"][-1]
    assert promote["detail"]["decision"] == "promoted" and promote["detail"]["failed_gates"] == []
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)
    champion = client.get_model_version_by_alias("bc-model", "champion")
    assert champion.tags["tunesmith.experiment"] == "bc-retune-1"


@pytest.mark.slow
def test_cycle_of_a_spec_file_uses_the_store_its_storage_names(folder: Path) -> None:
    """`run` recorded the experiment in the spec's storage:, but `cycle bc.yaml` (and `watch`) opened
    --storage / $TUNESMITH_STORAGE / ./tunesmith.db, found nothing there and tuned the experiment again from scratch."""
    (folder / "bc.yaml").write_text(yaml.safe_dump({**SPEC, "storage": f"sqlite:///{folder / 'team.db'}"}))
    recorded = load_spec(folder / "bc.yaml")   # the set-up `run bc.yaml` did, in this process: into the spec's store
    run_experiment(recorded, SQLStore(recorded.storage))
    proc = _cli(folder, "cycle", "bc.yaml", "--data", "shifted.csv", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["steps"][0]["why"] == "experiment bc is already recorded", "found, not tuned again"
    assert report["outcome"] == "retuned" and report["checked"] == "bc"
    assert not (folder / "tunesmith.db").exists()
    assert [e.name for e in SQLStore(f"sqlite:///{folder / 'team.db'}").experiments()] == ["bc", "bc-retune-1"]
    watched = cli_in_folder(folder, "watch", "bc.yaml", "--data", "shifted.csv", "--cycles", "1", "--json")
    assert watched.returncode == 0, watched.stderr
    assert json.loads(watched.stdout)["checked"] == "bc-retune-1" and not (folder / "tunesmith.db").exists()


def test_cycle_reads_its_spec_file_once(folder: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI read the spec file to find its store, then the cycle read it again (each read validates the whole
    spec and may import the trial code)."""
    import tunesmith.spec.loader as loader
    from tunesmith.cli import app

    reads: list[str] = []
    read_spec_file = loader.read_spec_file  # the cycle reads it as a recorded spec when it names one (see _spec_file)

    def counted(path: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        reads.append(path)
        return read_spec_file(path, *args, **kwargs)

    monkeypatch.setattr(loader, "load_spec", counted)
    monkeypatch.setattr(loader, "read_spec_file", counted)
    code = app(["cycle", "bc.yaml", "--data", "shifted.csv", "--json"], standalone_mode=False)
    assert code == 0, capsys.readouterr()
    assert json.loads(capsys.readouterr().out)["outcome"] == "retuned"
    assert reads == ["bc.yaml"]


def test_a_missing_model_name_is_refused_before_any_tuning(folder: Path) -> None:
    """With a promotion: section and no --model-name, the cycle used to tune, detect, re-tune and only then exit 2,
    leaving an unpromoted re-tune that the next cycle took for the champion."""
    (folder / "bc.yaml").write_text(yaml.safe_dump({**SPEC, "promotion": {"min": {"holdout_roc_auc": 0.5}}}))
    proc = _cli(folder, "cycle", "bc.yaml", "--data", "shifted.csv", "--json")
    assert proc.returncode == 2 and "--model-name" in proc.stderr and "Traceback" not in proc.stderr
    assert "--model-name bc" in proc.stderr and "churn" not in proc.stderr  # the spec's own name, not an unrelated one
    assert json.loads(proc.stdout)["outcome"] == "bad_input" and not (folder / ".tunesmith").exists()  # nothing tuned
    store = SQLStore(f"sqlite:///{folder / 'tunesmith.db'}")
    assert [e.name for e in store.experiments()] == []


def test_a_model_name_mlflow_refuses_is_refused_before_any_tuning(folder: Path) -> None:
    """--model-name team/churn passed the cycle's checks; the cycle tuned and re-tuned, then MLflow refused the name at
    registration with a traceback."""
    (folder / "bc.yaml").write_text(yaml.safe_dump({**SPEC, "promotion": {"min": {"holdout_roc_auc": 0.5}}}))
    proc = _cli(folder, "cycle", "bc.yaml", "--data", "shifted.csv", "--model-name", "team/churn", "--json")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "--model-name: 'team/churn' is not a name MLflow accepts" in proc.stderr
    assert json.loads(proc.stdout)["outcome"] == "bad_input" and not (folder / ".tunesmith").exists()  # nothing tuned
    store = SQLStore(f"sqlite:///{folder / 'tunesmith.db'}")
    assert [e.name for e in store.experiments()] == []


def test_without_mlflow_promote_and_a_cycle_with_a_model_name_are_bad_input_before_any_work(
        folder: Path, without_mlflow: dict[str, str]) -> None:
    """Without the mlflow extra, `promote` ran every gate and `cycle` re-tuned (recorded) before both died on
    `ModuleNotFoundError: No module named 'mlflow'` (exit 1, a traceback, no --json-out)."""
    (folder / "bc.yaml").write_text(yaml.safe_dump({**SPEC, "promotion": {"min": {"holdout_roc_auc": 0.5}}}))
    hint = "MLflow is not installed: pip install -e '.[mlflow]' in tunesmith's checkout (the mlflow extra)"
    proc = _cli(folder, "cycle", "bc.yaml", "--data", "shifted.csv", "--model-name", "m", "--json-out", "out.json",
                env=without_mlflow)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("error: --model-name: ") and hint in proc.stderr, proc.stderr
    assert not (folder / ".tunesmith").exists()  # nothing tuned; out.json says why, for a CI step that uploads it
    assert json.loads((folder / "out.json").read_text())["outcome"] == "bad_input"
    store = SQLStore(f"sqlite:///{folder / 'tunesmith.db'}")
    run_experiment(load_spec(folder / "bc.yaml"), store)  # the set-up, in this process: one CLI start-up fewer
    events = len(store.events(store.experiment("bc").id))
    for args in (("promote", "bc", "--model-name", "m"), ("rollback", "m", "--reason", "drift"),
                 ("cycle", "bc", "--data", "shifted.csv", "--model-name", "m")):
        proc = _cli(folder, *args, env=without_mlflow)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr and hint in proc.stderr, (args, proc.stderr)
    assert [e.name for e in store.experiments()] == ["bc"] and len(store.events(store.experiment("bc").id)) == events
    assert not (folder / ".tunesmith" / "bc" / "promotions").exists()  # no report: nothing was judged
    dry = _cli(folder, "promote", "bc", "--model-name", "m", "--dry-run", env=without_mlflow)  # reads no registry
    assert dry.returncode == 0 and "dry run: every gate passed" in dry.stdout, dry.stderr


@pytest.mark.slow
def test_a_retune_nobody_promoted_is_not_the_champion_a_cycle_checks(folder: Path, mlflow_uri: str) -> None:
    """`promote bc`, then a hand-made `retune bc` on the new rows: the cycle checked that re-tune (no drift: it was
    tuned on them) and called it the champion, while the registry's champion was still bc's version 1."""
    # the registry: mlflow_uri, the spec's default (mlflow.db in its folder; no tracking: section, whose writer
    # processes, one per run, re-tune and cycle, this test does not look at)
    assert mlflow_uri == f"sqlite:///{folder / 'mlflow.db'}"
    (folder / "bc.yaml").write_text(yaml.safe_dump({**SPEC, "promotion": {"min": {"holdout_roc_auc": 0.5}}}))
    from tunesmith.clock import SystemClock
    from tunesmith.promotion.promote import Decision, promote
    from tunesmith.retune import retune

    # the set-up in this process (three CLI start-ups fewer); the cycles it sets up for are run as a user runs them
    store = SQLStore(f"sqlite:///{folder / 'tunesmith.db'}")
    run_experiment(load_spec(folder / "bc.yaml"), store)
    assert promote(store, "bc", "clf", SystemClock()).decision is Decision.PROMOTED
    assert retune(store, "bc", "shifted.csv", trials=2).experiment.name == "bc-retune-1"
    from tunesmith.drift import check_stored

    assert check_stored(store, "bc", "shifted.csv").drifted  # the champion's data drifted (`drift` would exit 4)
    proc = _cli(folder, "cycle", "bc.yaml", "--data", "shifted.csv", "--model-name", "clf", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["checked"] == "bc" and report["champion_from"] == "registry", report
    assert report["outcome"] == "promoted" and report["champion"] == "bc-retune-2", report
    # the later commands in this process (the first cycle above was the real CLI): four start-ups importing MLflow
    again = json.loads(cli_in_folder(folder, "cycle", "bc", "--data", "shifted.csv", "--model-name", "clf",
                                     "--json").stdout)
    assert again["checked"] == again["champion"] == "bc-retune-2" and again["outcome"] == "no_drift", again
    other = cli_in_folder(folder, "cycle", "bc-retune-1", "--data", "shifted.csv", "--model-name", "clf")
    assert other.returncode == 2 and "'bc-retune-2', which is not 'bc-retune-1'" in other.stderr, other.stderr
    kept = cli_in_folder(folder, "delete", "bc-retune-2", "--yes")  # the champion's experiment: refused, saying why
    assert kept.returncode == 2 and "champion of model 'clf'" in kept.stderr, kept.stderr
    # deleted all the same (forced, or by an older tunesmith): the cycle then refuses, naming the way out
    assert cli_in_folder(folder, "delete", "bc-retune-2", "--yes", "--even-if-champion").returncode == 0
    gone = cli_in_folder(folder, "cycle", "bc", "--data", "shifted.csv", "--model-name", "clf")
    assert gone.returncode == 2 and "'bc-retune-2', which is no longer in this store" in gone.stderr, gone.stderr
    assert "tunesmith rollback clf" in gone.stderr and "tunesmith promote bc -m clf" in gone.stderr, gone.stderr


@pytest.mark.slow
def test_a_model_name_with_nothing_registered_follows_the_lineage(folder: Path) -> None:
    """`cycle -m clf` with no promotion: section, so nothing is ever registered under clf: the cycle said its
    champion came from the registry and checked, and re-tuned, the named experiment on every cycle."""
    proc = _cli(folder, "cycle", "bc.yaml", "--data", "shifted.csv", "-m", "clf", "--json")
    assert proc.returncode == 0, proc.stderr
    first = json.loads(proc.stdout)
    assert first["outcome"] == "retuned" and first["champion"] == "bc-retune-1", first
    assert first["champion_from"] == "lineage", first
    again = json.loads(cli_in_folder(folder, "cycle", "bc", "--data", "shifted.csv", "-m", "clf", "--json").stdout)
    assert again["checked"] == again["champion"] == "bc-retune-1" and again["outcome"] == "no_drift", again


@pytest.mark.slow
def test_a_cycle_leaves_its_inline_trials_warnings_in_their_logs(folder: Path) -> None:
    """The cycle captured every library warning of its whole run to say them as the promote step's refit's: its
    inline trials' logs lost theirs, and a spec without a promotion: section was said to refit for promotion."""
    estimator = {"sklearn.linear_model.LogisticRegression": {"max_iter": 3}}  # too few: scikit-learn warns
    (folder / "bc.yaml").write_text(yaml.safe_dump({**SPEC, "task": {**SPEC["task"], "estimator": estimator}}))
    proc = _cli(folder, "cycle", "bc.yaml", "--data", "shifted.csv")
    assert proc.returncode == 0, proc.stderr
    logs = sorted((folder / ".tunesmith").rglob("trial.log"))
    assert logs and all("ConvergenceWarning" in log.read_text() for log in logs), [log.read_text() for log in logs]
    assert "refitting for promotion" not in proc.stderr, proc.stderr


@pytest.mark.slow
def test_an_edited_spec_file_of_a_recorded_experiment_is_refused_naming_the_fields(folder: Path) -> None:
    """The cycle runs the recorded spec: an edited drift threshold in the file was silently ignored."""
    store = SQLStore(f"sqlite:///{folder / 'tunesmith.db'}")
    run_experiment(load_spec(folder / "bc.yaml"), store)
    (folder / "bc.yaml").write_text(yaml.safe_dump({**SPEC, "drift": {**SPEC["drift"], "psi": 5.0}}))
    proc = _cli(folder, "cycle", "bc.yaml", "--data", "shifted.csv")
    assert proc.returncode == 2 and "drift.psi" in proc.stderr and "tunesmith cycle bc" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert [e.name for e in store.experiments()] == ["bc"]  # no re-tune ran under the old thresholds
    (folder / "bc.yaml").write_text(yaml.safe_dump(SPEC))  # the file as recorded (seed, workdir filled in: no edit)
    proc = cli_in_folder(folder, "cycle", "bc.yaml", "--data", "shifted.csv", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["steps"][0]["status"] == "skipped"


# The budget of a run the tests stop once its first trial has finished: enough trials that the signal lands before
# the last one ends (a trial here takes ~0.3 s, ~1 s on a loaded machine; the stop comes within a trial or two),
# few enough that the resume which finishes the rest stays short.
STOPPED_BUDGET = 10


def _stop_during_retune(folder: Path, signum: int, *args: str,
                        prefix: str = "bc-retune") -> tuple[subprocess.CompletedProcess[str], str]:
    """Start the CLI, wait until its re-tune (the newest experiment named ``prefix``...) has a finished trial,
    send ``signum``."""
    import time

    store = SQLStore(f"sqlite:///{folder / 'tunesmith.db'}")
    proc = subprocess.Popen([sys.executable, "-m", "tunesmith.cli", *args], cwd=folder, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "TUNESMITH_STORAGE": f"sqlite:///{folder / 'tunesmith.db'}"})
    names: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        names = [e.name for e in store.experiments() if e.name.startswith(prefix)]
        if names and any(t.state.is_finished() for t in store.trials(store.experiment(names[-1]).id)):
            break
        time.sleep(0.05)
    proc.send_signal(signum)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()  # never leave it running past the test
        raise
    assert names, (out, err)
    return subprocess.CompletedProcess(args, proc.returncode, out, err), names[-1]


@pytest.mark.slow
@pytest.mark.parametrize("command, signum", [("cycle", "SIGTERM"), ("watch", "SIGINT")])
def test_a_stopped_cycle_leaves_its_retune_interrupted_resumable_and_exits_130(
        folder: Path, command: str, signum: str) -> None:
    """SIGTERM (a scheduler's timeout) used to kill `cycle` outright, leaving the re-tune 'running' and unnamed
    by its parent; Ctrl-C ended the re-tune as a failed cycle (exit 1) and `watch` went on to the next one; the
    next cycle on the same rows started another re-tune beside the stopped one."""
    import signal as signals

    store = SQLStore(f"sqlite:///{folder / 'tunesmith.db'}")
    run_experiment(load_spec(folder / "bc.yaml"), store)
    extra = ("--every", "1s") if command == "watch" else ()
    proc, retune = _stop_during_retune(folder, getattr(signals, signum), command, "bc", "--data", "shifted.csv",
                                       "--trials", str(STOPPED_BUDGET), "--json", *extra)
    assert proc.returncode == 130, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    reports = [json.loads(line) for line in proc.stdout.splitlines()] if command == "watch" else [
        json.loads(proc.stdout)]
    assert len(reports) == 1 and reports[0]["outcome"] == "interrupted" and reports[0]["exit_code"] == 130
    step = reports[0]["steps"][-2]
    assert step["step"] == "retune" and step["status"] == "interrupted" and f"resume {retune}" in step["why"]
    assert store.experiment(retune).status.value == "interrupted"
    assert store.experiment("bc").attributes["retunes"] == [retune]
    assert not [t for t in store.trials(store.experiment(retune).id) if t.state.value == "running"]
    again = run_cycle(store, "bc", "shifted.csv")
    assert again.outcome is CycleOutcome.RETUNED and again.champion == retune, again.to_json()
    assert again.steps[-2].why.startswith(f"resumed and finished {retune} (") and "--trials" in again.steps[-2].why
    assert store.experiment(retune).status.value == "completed" and store.experiment("bc").attributes["retunes"] == [
        retune]


@pytest.mark.slow
def test_the_next_cycle_resumes_a_retune_whose_cycle_was_killed(folder: Path) -> None:
    """After `kill -9` of a cycle mid-re-tune, the re-tune stayed `running` (abandoned), unnamed by its parent, and
    the next cycle started another re-tune beside it instead of resuming it (as it does after Ctrl-C)."""
    import signal as signals

    store = SQLStore(f"sqlite:///{folder / 'tunesmith.db'}")
    run_experiment(load_spec(folder / "bc.yaml"), store)
    proc, retune = _stop_during_retune(folder, signals.SIGKILL, "cycle", "bc", "--data", "shifted.csv",
                                       "--trials", str(STOPPED_BUDGET), "--json")
    assert proc.returncode == -signals.SIGKILL
    assert store.experiment(retune).status.value == "running"  # nothing ran to record otherwise
    assert store.experiment("bc").attributes["retunes"] == [retune]  # named before it ran
    again = cli_in_folder(folder, "cycle", "bc", "--data", "shifted.csv", "--json")  # the kill was the real CLI's
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["steps"][-2]["why"].startswith(f"resumed and finished {retune} ("), report
    assert report["outcome"] == "retuned" and report["champion"] == retune
    assert [e.name for e in store.experiments()] == ["bc", retune]  # no second re-tune
    assert store.experiment(retune).status.value == "completed"
    assert len([t for t in store.trials(store.experiment(retune).id) if t.state.is_finished()]) == STOPPED_BUDGET


def test_a_task_on_bundled_data_is_refused_before_tuning_a_cycle_could_not_finish(folder: Path) -> None:
    """A re-tune needs a data file: the cycle used to tune and check drift, then stop at the re-tune with exit 2."""
    task = {**SPEC["task"], "data": {"sklearn": "breast_cancer"}}  # type: ignore[dict-item]
    (folder / "bc.yaml").write_text(yaml.safe_dump({**SPEC, "task": task}))
    proc = _cli(folder, "cycle", "bc.yaml", "--data", "shifted.csv")
    assert proc.returncode == 2 and "task.data" in proc.stderr and "tunesmith drift" in proc.stderr, proc.stderr
    assert [e.name for e in SQLStore(f"sqlite:///{folder / 'tunesmith.db'}").experiments()] == []


def _rows_every_trial_fails_on(folder: Path) -> str:
    """shifted.csv with a feature value of 1e308 in its first row: finite, so no input check refuses it, but the
    scaler's sums overflow, and every fit that takes the row fails, so every trial does (labels the experiment never
    had, infinite values and rows of one class are all refused up front now)."""
    header, first, *rows = (folder / "shifted.csv").read_text().splitlines()
    (folder / "unfittable.csv").write_text("\n".join([header, "1e308," + first.split(",", 1)[1], *rows]) + "\n")
    return "unfittable.csv"


@pytest.mark.slow
def test_a_retune_whose_every_trial_failed_is_not_the_next_cycles_champion(folder: Path) -> None:
    """It ran to its budget (status completed), so the next cycle took it as the lineage head and stopped on it
    ('no completed trial to start from', exit 2) on every later run; its step said 'did not complete'."""
    store = SQLStore(f"sqlite:///{folder / 'tunesmith.db'}")
    run_experiment(load_spec(folder / "bc.yaml"), store)
    failed = run_cycle(store, "bc", _rows_every_trial_fails_on(folder))
    assert failed.outcome is CycleOutcome.FAILED and failed.exit_code == 1
    assert "every trial of the re-tune failed" in failed.steps[-2].why
    assert lineage_head(store, "bc").name == "bc"
    again = run_cycle(store, "bc", "shifted.csv")
    assert again.checked == "bc" and again.outcome is CycleOutcome.RETUNED and again.champion == "bc-retune-2"


def test_an_unwritable_json_out_is_refused_before_the_cycle_runs(folder: Path) -> None:
    """It was found when the report was written: after the tuning and the re-tune, whose report was then lost."""
    proc = _cli(folder, "cycle", "bc.yaml", "--data", "shifted.csv", "--json-out", "reports/today.json")
    assert proc.returncode == 2 and "--json-out" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert [e.name for e in SQLStore(f"sqlite:///{folder / 'tunesmith.db'}").experiments()] == []


def test_a_first_tuning_whose_every_trial_failed_ends_the_cycle_saying_so(folder: Path) -> None:
    """The cycle went on to a drift check and a re-tune that refused to start ('no completed trial ... or re-tune
    with --cold', an option cycle lacks): exit 2 and no report, on every later cycle too."""
    estimator = {"sklearn.linear_model.LogisticRegression": {"solver": "bogus"}}  # every fit fails
    task = {**SPEC["task"], "estimator": estimator}  # type: ignore[dict-item]
    (folder / "bc.yaml").write_text(yaml.safe_dump({**SPEC, "task": task}))
    store = SQLStore(f"sqlite:///{folder / 'tunesmith.db'}", create=True)
    first = run_cycle(store, "bc.yaml", "shifted.csv")
    assert first.outcome is CycleOutcome.FAILED and first.exit_code == 1
    assert first.steps[0].status is StepStatus.FAILED and "every trial" in first.steps[0].why
    assert [s.status for s in first.steps[1:]] == [StepStatus.SKIPPED] * 3
    # no drift check ran and there is no champion: both were "bc" (the walk: a CI step ran `drift bc` on them)
    assert first.checked is None and first.champion is None and first.champion_from is None, first.to_json()
    again = run_cycle(store, "bc", "shifted.csv")
    assert again.outcome is CycleOutcome.FAILED and "no completed trial" in again.steps[0].why
    assert again.checked is None and again.champion is None, again.to_json()
    assert [e.name for e in store.experiments()] == ["bc"]


@pytest.mark.slow
def test_the_next_cycle_resumes_an_interrupted_first_tuning(folder: Path) -> None:
    """It was skipped as 'already recorded' and the new data was checked against the partial run's champion."""
    import signal as signals

    (folder / "bc.yaml").write_text(yaml.safe_dump({**SPEC, "budget": {"trials": STOPPED_BUDGET}}))
    proc, name = _stop_during_retune(folder, signals.SIGINT, "cycle", "bc.yaml", "--data", "shifted.csv", "--json",
                                     prefix="bc")
    assert proc.returncode == 130 and name == "bc", proc.stderr
    tune = json.loads(proc.stdout)["steps"][0]
    assert tune["status"] == "interrupted" and "the next cycle resumes it" in tune["why"]
    store = SQLStore(f"sqlite:///{folder / 'tunesmith.db'}")
    assert store.experiment("bc").status.value == "interrupted"
    again = run_cycle(store, "bc.yaml", "shifted.csv")
    assert again.steps[0].status is StepStatus.DONE and "resumed first tuning of bc" in again.steps[0].why
    assert store.experiment("bc").status.value == "completed"
    assert len([t for t in store.trials(store.experiment("bc").id) if t.state.is_finished()]) >= STOPPED_BUDGET
    assert again.outcome is CycleOutcome.RETUNED


@pytest.mark.slow
@pytest.mark.parametrize("target", ["bc.yaml", "bc"])
def test_the_next_cycle_resumes_a_first_tuning_that_failed_before_any_trial(folder: Path, tmp_path: Path,
                                                                            target: str, monkeypatch) -> None:
    """A first tuning whose executor could not start (here `gpus: all` on a machine showing no GPU; in the field
    a Ray cluster that was down) is recorded failed with no trial; every later cycle said 'already recorded', then
    'no completed trial ... see `tunesmith trials`', exit 1, and never resumed it."""
    if os.path.isdir("/proc/driver/nvidia/gpus"):
        pytest.skip("this machine has an NVIDIA GPU: the first tuning's executor would start")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)  # gpus: all would take an inherited allocation
    executor = {"kind": "process", "workers": 1, "gpus": "all"}
    (folder / "bc.yaml").write_text(yaml.safe_dump({**SPEC, "executor": executor}))
    down = cli_in_folder(folder, "cycle", "bc.yaml", "--data", "shifted.csv", "--json")  # the set-up; `up`: the CLI
    assert down.returncode == 2 and "shows no NVIDIA GPU" in down.stderr, down.stderr
    store = SQLStore(f"sqlite:///{folder / 'tunesmith.db'}")
    assert store.experiment("bc").status.value == "failed" and store.trials(store.experiment("bc").id) == []
    gpu_bin = tmp_path / "gpu-bin"  # the GPU is back: a stand-in nvidia-smi that lists one
    gpu_bin.mkdir()
    (gpu_bin / "nvidia-smi").write_text("#!/bin/sh\necho 'GPU 0: Stand-in (UUID: GPU-0)'\n")
    (gpu_bin / "nvidia-smi").chmod(0o755)
    up = subprocess.run([sys.executable, "-m", "tunesmith.cli", "cycle", target, "--data", "shifted.csv", "--json"],
                        cwd=folder, capture_output=True, text=True, timeout=240,
                        env={**os.environ, "TUNESMITH_STORAGE": f"sqlite:///{folder / 'tunesmith.db'}",
                             "PATH": f"{gpu_bin}{os.pathsep}{os.environ['PATH']}"})
    assert up.returncode == 0, (up.stdout, up.stderr)
    report = json.loads(up.stdout)
    assert [(s["step"], s["status"]) for s in report["steps"]] == [
        ("tune", "done"), ("drift", "done"), ("retune", "done"), ("promote", "skipped")], report
    assert "resumed first tuning of bc" in report["steps"][0]["why"]
    assert store.experiment("bc").status.value == "completed"
    assert [t.state.value for t in store.trials(store.experiment("bc").id)] == ["completed"] * 3


@pytest.mark.slow
def test_an_older_interrupted_retune_is_not_resumed_after_a_newer_one_ran(folder: Path) -> None:
    """R1 stopped on shifted.csv; R2 then ran (on other rows, every trial failed, so bc stays the head); the next
    cycle on shifted.csv skipped over R2 and resumed the stale R1. Only the newest re-tune is continued."""
    import signal as signals

    store = SQLStore(f"sqlite:///{folder / 'tunesmith.db'}")
    run_experiment(load_spec(folder / "bc.yaml"), store)
    proc, first = _stop_during_retune(folder, signals.SIGTERM, "cycle", "bc", "--data", "shifted.csv",
                                      "--trials", str(STOPPED_BUDGET), "--json")
    assert proc.returncode == 130 and store.experiment(first).status.value == "interrupted", proc.stderr
    failed = cli_in_folder(folder, "cycle", "bc", "--data", _rows_every_trial_fails_on(folder), "--json")  # R2
    assert failed.returncode == 1 and "every trial of the re-tune failed" in failed.stdout, failed.stdout
    again = _cli(folder, "cycle", "bc", "--data", "shifted.csv", "--trials", "2", "--json")
    assert again.returncode == 0, (again.stdout, again.stderr)
    retunes = store.experiment("bc").attributes["retunes"]
    assert len(retunes) == 3 and retunes[0] == first, retunes
    step = json.loads(again.stdout)["steps"][-2]
    assert step["why"] == f"re-tuned as {retunes[2]}" and step["detail"]["trials"] == 2, step
    assert store.experiment(first).status.value == "interrupted", "the stale re-tune was left alone"


@pytest.mark.slow
def test_new_rows_a_retune_would_refuse_are_refused_before_the_cycle_records_anything(folder: Path) -> None:
    """Rows of one class, or too few of a class for the folds: the cycle recorded its drift step (event cycle_drift)
    and only then met the re-tune's refusal (exit 2); from a spec file it tuned the experiment first."""
    header, *rows = (folder / "shifted.csv").read_text().splitlines()
    (folder / "one_class.csv").write_text("\n".join([header, *(r.rsplit(",", 1)[0] + ",1" for r in rows)]) + "\n")
    ones, zeros = [r for r in rows if r.endswith(",1")], [r for r in rows if r.endswith(",0")]
    (folder / "few.csv").write_text("\n".join([header, *ones, *zeros[:3]]) + "\n")
    store = SQLStore(f"sqlite:///{folder / 'tunesmith.db'}")
    proc = _cli(folder, "cycle", "bc.yaml", "--data", "one_class.csv", "--json")
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "--data: every row of one_class.csv has the same value in the label column 'label'" in proc.stderr
    assert "Traceback" not in proc.stderr and json.loads(proc.stdout)["outcome"] == "bad_input"
    assert [e.name for e in store.experiments()] == [] and not (folder / ".tunesmith").exists(), "nothing tuned"
    run_experiment(load_spec(folder / "bc.yaml"), store)
    before = [(e.kind, e.at) for e in store.events(store.experiment("bc").id)]
    for data, says in (("one_class.csv", "--data: every row of one_class.csv has the same value"),
                       ("few.csv", "the least populated class, '0', has")):
        proc = cli_in_folder(folder, "cycle", "bc", "--data", data, "--json")  # the first refusal was the CLI's
        assert proc.returncode == 2 and says in proc.stderr, (data, proc.returncode, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr and json.loads(proc.stdout)["outcome"] == "bad_input"
    assert [(e.kind, e.at) for e in store.events(store.experiment("bc").id)] == before, "nothing recorded"
    assert [e.name for e in store.experiments()] == ["bc"] and "retunes" not in store.experiment("bc").attributes


@pytest.mark.slow
def test_a_cycle_reads_its_new_rows_once_before_the_retune_loads_them(folder: Path) -> None:
    """The one-class refusal, the drift check and the re-tune's column check each read the new rows' file again
    (three reads, then the re-tune's own load). Counted by the interpreter's audit events for opening a file, so
    every way of opening it is seen."""
    store = SQLStore(f"sqlite:///{folder / 'tunesmith.db'}")
    run_experiment(load_spec(folder / "bc.yaml"), store)
    data = os.path.realpath(folder / "shifted.csv")
    opened: list[str] = []
    counting = [True]

    def hook(event: str, args: tuple[object, ...]) -> None:  # an audit hook stays for the process: made inert below
        if counting[0] and event == "open" and isinstance(args[0], str | os.PathLike) \
                and os.path.realpath(args[0]) == data:
            opened.append(str(args[1]))

    sys.addaudithook(hook)
    try:
        report = run_cycle(store, "bc", "shifted.csv")
    finally:
        counting[0] = False
    assert report.outcome is CycleOutcome.RETUNED, report
    # one read by the cycle (for its checks, the drift check and the re-tune's plan), then the re-tune's dataset
    # load, which hashes the bytes it parses (it opened the file once to hash, once to parse); the trials (inline)
    # use that load
    assert len(opened) == 2, opened


@pytest.mark.parametrize("reference,data,says", [
    (None, "shifted.csv", "--reference: experiment 'tc' runs trial code"),
    ("reference.csv", "missing.csv", "--data: file"),
    ("missing.csv", "shifted.csv", "--reference: file"),
])
def test_a_trial_code_cycle_without_its_files_is_refused_before_tuning(folder: Path, reference: str | None,
                                                                       data: str, says: str) -> None:
    """A trial-code experiment's drift check needs --reference and both files: a cycle on its spec file tuned the
    experiment to the end first, then refused them (exit 2)."""
    from tunesmith.errors import UserInputError

    (folder / "tc_objective.py").write_text("def f(config, trial):\n    return {'loss': (config['x'] - 0.3) ** 2}\n")
    (folder / "tc.yaml").write_text(yaml.safe_dump({
        "name": "tc", "objective": {"metric": "loss", "direction": "minimize"},
        "trial": {"function": "tc_objective:f"}, "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
        "budget": {"trials": 2}, "executor": {"kind": "inline"}, "seed": 0}))
    store = SQLStore(f"sqlite:///{folder / 'tunesmith.db'}")
    with pytest.raises(UserInputError, match=says):
        run_cycle(store, "tc.yaml", data, reference=reference)
    assert store.experiments() == [] and not (folder / ".tunesmith").exists(), "nothing tuned"


@pytest.mark.slow
def test_a_watch_on_an_edited_spec_file_is_told_to_watch_the_recorded_experiment_with_its_flags(folder: Path) -> None:
    """`watch`'s refusal of an edited spec file said to run `tunesmith cycle bc`: one cycle where the loop was meant,
    without its --data or --trials."""
    store = SQLStore(f"sqlite:///{folder / 'tunesmith.db'}")
    run_experiment(load_spec(folder / "bc.yaml"), store)
    (folder / "bc.yaml").write_text(yaml.safe_dump({**SPEC, "drift": {**SPEC["drift"], "psi": 5.0}}))
    proc = cli_in_folder(folder, "watch", "bc.yaml", "--data", "shifted.csv", "--trials", "1", "--cycles", "1")
    assert proc.returncode == 2 and "drift.psi" in proc.stderr, proc.stderr
    fix = " ".join(proc.stderr.split()).split("whose spec a cycle keeps; run `")[1].split("`")[0]
    assert fix == "tunesmith watch bc --data shifted.csv --trials 1 --every 86400 --cycles 1", proc.stderr
    proc = cli_in_folder(folder, *shlex.split(fix)[1:])  # copied
    assert proc.returncode == 0 and proc.stdout.count("outcome: retuned") == 1, (proc.stdout, proc.stderr)
    assert len(store.trials(store.experiment("bc-retune-1").id)) == 1  # --trials 1 kept

def test_the_refusal_of_an_edited_copy_says_to_change_its_name_and_that_fix_is_accepted(folder: Path) -> None:
    """A walk copied bc.yaml to bc-v2.yaml and raised the budget: the refusal said to "give the file another name",
    which changes nothing (the experiment is the spec's name); and "differ(s)"."""
    from tunesmith.errors import UserInputError

    store = SQLStore(f"sqlite:///{folder / 'tunesmith.db'}")
    run_experiment(load_spec(folder / "bc.yaml"), store)
    (folder / "bc-v2.yaml").write_text(yaml.safe_dump({**SPEC, "budget": {"trials": 9}}))
    with pytest.raises(UserInputError) as one:
        run_cycle(store, "bc-v2.yaml", "missing.csv")
    message = str(one.value)
    assert "budget.trials differs from the recorded experiment 'bc'" in message, message
    assert "change its name: in the file (name: bc-v2)" in message and "another name" not in message
    (folder / "bc-v2.yaml").write_text(yaml.safe_dump({**SPEC, "budget": {"trials": 9}, "seed": 5, "strategy": "qmc"}))
    with pytest.raises(UserInputError, match="budget.trials, seed, strategy.name differ from the recorded"):
        run_cycle(store, "bc-v2.yaml", "missing.csv")
    (folder / "bc-v2.yaml").write_text(yaml.safe_dump({**SPEC, "name": "bc-v2", "budget": {"trials": 9}}))
    with pytest.raises(UserInputError, match="--data") as renamed:   # the spec is accepted; the next check speaks
        run_cycle(store, "bc-v2.yaml", "missing.csv")
    assert "differ" not in str(renamed.value) and [e.name for e in store.experiments()] == ["bc"]


@pytest.mark.slow
def test_a_trial_code_retune_is_checked_against_the_data_it_was_tuned_on(folder: Path) -> None:
    """A walk: `drift fd-retune-1 --data shifted.csv` said fd-retune-1 held no data though it was re-tuned on
    shifted.csv; and `cycle --reference reference.csv --data shifted.csv` with fd-retune-1 the champion compared
    shifted.csv with reference.csv, found drift and re-tuned again, on the very rows fd-retune-1 was tuned on."""
    from tunesmith.drift import ReferenceSource, check_stored
    from tunesmith.errors import UserInputError
    from tunesmith.retune import retune

    (folder / "tc_objective.py").write_text("def f(config, trial):\n    return {'loss': (config['x'] - 0.3) ** 2}\n")
    (folder / "tc.yaml").write_text(yaml.safe_dump({
        "name": "tc", "objective": {"metric": "loss", "direction": "minimize"},
        "trial": {"function": "tc_objective:f"}, "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
        "budget": {"trials": 2}, "executor": {"kind": "inline"}, "seed": 0}))
    (folder / "new.csv").write_bytes((folder / "shifted.csv").read_bytes())
    store = SQLStore(f"sqlite:///{folder / 'tunesmith.db'}")
    run_experiment(load_spec(folder / "tc.yaml"), store)
    retune(store, "tc", "new.csv", trials=2)
    tuned_on = str((folder / "new.csv").resolve())

    default = check_stored(store, "tc-retune-1", "shifted.csv")
    assert default.reference == tuned_on and default.reference_from is ReferenceSource.TUNED_ON
    assert not default.drifted and default.to_json()["reference_from"] == "tuned_on"
    given = check_stored(store, "tc-retune-1", "shifted.csv", "reference.csv")   # --reference still wins, said
    assert given.reference_from is ReferenceSource.GIVEN and given.drifted
    assert any(f"tc-retune-1 was tuned on {tuned_on}" in note for note in given.notes), given.notes
    with pytest.raises(UserInputError, match="--reference: experiment 'tc' runs trial code"):
        check_stored(store, "tc", "shifted.csv")   # the first tuning holds no file: --reference is still needed

    proc = _cli(folder, "drift", "tc-retune-1", "--data", "shifted.csv", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["reference"] == tuned_on

    report = run_cycle(store, "tc.yaml", "shifted.csv", reference="reference.csv")
    assert report.checked == "tc-retune-1" and report.outcome is CycleOutcome.NO_DRIFT, report.to_json()
    drift = report.to_json()["steps"][1]
    assert drift["detail"]["reference"] == tuned_on and drift["detail"]["reference_from"] == "tuned_on"
    assert "the data tc-retune-1 was tuned on" in drift["why"], drift["why"]
    assert any("--reference reference.csv is not used" in n for n in drift["detail"]["notes"]), drift["detail"]
    again = run_cycle(store, "tc", "shifted.csv")   # no --reference needed once the champion holds its file
    assert again.outcome is CycleOutcome.NO_DRIFT and again.checked == "tc-retune-1"
    assert [e.name for e in store.experiments()] == ["tc", "tc-retune-1"], "no needless re-tune"

    (folder / "new.csv").unlink()   # the file the re-tune was tuned on, gone: said, and --reference serves
    with pytest.raises(UserInputError, match=f"tc-retune-1 was tuned on {tuned_on}.*give the rows it was tuned on"):
        check_stored(store, "tc-retune-1", "shifted.csv")
    given = check_stored(store, "tc-retune-1", "shifted.csv", "shifted.csv")
    assert given.reference_from is ReferenceSource.GIVEN and not given.drifted
    assert any("which is no longer there" in note for note in given.notes), given.notes

    # the file back at its path, overwritten by other rows (`--data latest.csv` each day): compared with itself the
    # new rows would never show drift again; without --reference the check says why, and a cycle takes --reference
    (folder / "new.csv").write_bytes((folder / "reference.csv").read_bytes())
    with pytest.raises(UserInputError, match=f"tc-retune-1 was tuned on {tuned_on}, which has changed since"):
        check_stored(store, "tc-retune-1", "new.csv")
    moved = run_cycle(store, "tc", "new.csv", reference="shifted.csv", trials=2)
    [step] = [s for s in moved.to_json()["steps"] if s["step"] == "drift"]
    assert step["detail"]["reference_from"] == "given" and moved.outcome is CycleOutcome.RETUNED, step
    assert any("which has changed since" in n for n in step["detail"]["notes"]), step["detail"]


def test_audit_lists_a_cycles_steps_even_when_it_found_no_drift(folder: Path) -> None:
    from tests.helpers import cli_in_process

    store = SQLStore(f"sqlite:///{folder / 'tunesmith.db'}")
    run_experiment(load_spec(folder / "bc.yaml"), store)
    assert run_cycle(store, "bc", "reference.csv").outcome is CycleOutcome.NO_DRIFT
    store.close()
    import getpass
    import socket

    code, out, _ = cli_in_process("audit", "bc", "--storage", f"sqlite:///{folder / 'tunesmith.db'}")
    by = f" by {getpass.getuser()}@{socket.gethostname()}"  # which user and host ran the cycle: a no-drift day's too
    checked = os.path.realpath(folder / "reference.csv")   # the line names the file checked, not only the reference
    assert code == 0 and f" bc cycle_drift done{by}: no drift beyond the thresholds in {checked} against " in out, out
    assert f" bc cycle_retune skipped{by}: no drift" in out, out
    code, out, _ = cli_in_process("audit", "bc", "--storage", f"sqlite:///{folder / 'tunesmith.db'}", "--json")
    rows = json.loads(out)
    kinds = [r["kind"] for r in rows]
    assert kinds[-3:] == ["cycle_drift", "cycle_retune", "cycle_promote"], kinds
    assert all(r["detail"]["actor"]["host"] == socket.gethostname() for r in rows[-3:]), rows[-3:]
