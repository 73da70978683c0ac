"""The SRE walkthrough of `cycle` / `watch`: each case through the real CLI in a subprocess."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import cli_in_folder


def _cli(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`tunesmith ARGS` from ``cwd``, a real subprocess (without torch: see without_torch; ``env``'s PYTHONPATH from
    :func:`_sitecustomize` hides it too)."""
    from tests.mlflow_fixtures import without_torch

    return subprocess.run([sys.executable, "-m", "tunesmith.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=240, env={**os.environ, "TUNESMITH_STORAGE": f"sqlite:///{cwd / 'tunesmith.db'}",
                                            "COLUMNS": "200", **without_torch(cwd / ".without-torch"), **(env or {})})


@pytest.mark.parametrize(("outcomes", "code"), [
    (("rejected", "no_drift"), 3), (("failed", "rejected", "promoted"), 1), (("unavailable", "rejected"), 3),
    (("no_drift", "held"), 0), (("unavailable", "no_drift"), 0), (("no_drift", "unavailable"), 75)])
def test_watch_exits_with_the_worst_of_its_cycles_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        outcomes: tuple[str, ...], code: int) -> None:
    """`watch --cycles N` exited with the last cycle's code: a rejected (3) or failed (1) cycle followed by a good one
    exited 0. Each JSON line still carries its own; an outage a later cycle outlived (75) is not kept."""
    import tunesmith.cycle
    from tunesmith.cycle import CycleOutcome, CycleReport

    def cycles(*args: object, on_cycle: object, **kwargs: object) -> list[CycleReport]:
        reports = [CycleReport("bc", "bc", "bc", CycleOutcome(o), ()) for o in outcomes]
        for i, report in enumerate(reports):
            on_cycle(report, i == len(reports) - 1)  # type: ignore[operator]
        return reports

    monkeypatch.setattr(tunesmith.cycle, "watch_command", cycles)
    done = cli_in_folder(tmp_path, "watch", "bc", "--data", "d.csv", "--cycles", str(len(outcomes)), "--json")
    assert done.returncode == code, (done.stdout, done.stderr)
    assert [json.loads(line)["outcome"] for line in done.stdout.splitlines()] == list(outcomes)


@pytest.mark.parametrize("command", ["cycle", "watch"])
def test_a_bad_store_url_names_where_it_came_from(tmp_path: Path, command: str) -> None:
    """`cycle` said "storage: postgresql://..." (read as the spec's key) for a URL from TUNESMITH_STORAGE."""
    (tmp_path / "d.csv").write_text("a,b\n1,2\n")
    # the walk's case (the URL from the environment) through the real CLI, --storage's in this process (its main)
    for env, origin, cli in (({"TUNESMITH_STORAGE": "nosuchdialect://x/y"}, "TUNESMITH_STORAGE", _cli),
                             ({}, "--storage", cli_in_folder)):
        extra = ("--storage", "nosuchdialect://x/y") if origin == "--storage" else ()
        proc = cli(tmp_path, command, "churn", "--data", "d.csv", *extra, env=env)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith(f"error: {origin}: "), proc.stderr


@pytest.mark.parametrize("every", ["99999999999999d", "366d", "8761h"])
def test_an_every_past_a_year_is_refused_at_parsing_naming_the_largest(tmp_path: Path, every: str) -> None:
    """`--every 99999999999999d` printed a cycle, then OverflowError from the sleep (exit 1)."""
    proc = _cli(tmp_path, "watch", "churn", "--data", "d.csv", "--every", every, "--cycles", "2", "--json")
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and json.loads(proc.stdout)["outcome"] == "bad_input"  # no cycle ran
    assert proc.stderr.startswith("error: --every: ") and "365d" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_every_parses_as_the_specs_durations_do(tmp_path: Path) -> None:
    """Compound durations (1h30m, and so 1m1m) are what `budget.wall_time` and `grace_period` take: --every, parsed
    by the same rule, takes them too; what the rule refuses --every refuses, in its words."""
    from tunesmith.spec.units import parse_duration

    assert parse_duration("1m1m") == 120.0 and parse_duration("1h30m") == 5400.0
    bad = _cli(tmp_path, "watch", "churn", "--data", "d.csv", "--every", "1m1x")
    assert bad.returncode == 2 and bad.stderr.startswith("error: --every: expected a duration like"), bad.stderr


@pytest.fixture
def recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Experiment ``bc`` (tests/test_cycle.py's spec) tuned in the store; the working directory is its folder."""
    import yaml

    from tests.test_cycle import SPEC
    from tunesmith.runner import run_experiment
    from tunesmith.spec.loader import load_spec
    from tunesmith.storage.sql import SQLStore
    from tunesmith.testing.drift_data import shifted_split

    monkeypatch.chdir(tmp_path)
    shifted_split(tmp_path)
    (tmp_path / "bc.yaml").write_text(yaml.safe_dump(SPEC))
    run_experiment(load_spec(tmp_path / "bc.yaml"), SQLStore(f"sqlite:///{tmp_path / 'tunesmith.db'}"))
    return tmp_path


@pytest.mark.slow
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP", "SIGINT"])
def test_watch_stopped_between_cycles_exits_130_saying_so(recorded: Path, signame: str) -> None:
    """SIGTERM (Kubernetes, Argo) ended a waiting `watch` with 143 and SIGHUP with 129, silently, as a crash
    looks; `run`, `cycle` and `dashboard` exit 130 on either."""
    import signal

    proc = subprocess.Popen([sys.executable, "-m", "tunesmith.cli", "watch", "bc", "--data", "reference.csv",
                             "--every", "1h", "--json"], cwd=recorded, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE,
                            env={**os.environ, "TUNESMITH_STORAGE": f"sqlite:///{recorded / 'tunesmith.db'}"})
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())  # the first cycle is reported: watch now waits an hour
        assert first["outcome"] == "no_drift", first
        proc.send_signal(getattr(signal, signame))
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, (out, err)
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "between cycles" in lines[0] and "nothing is lost" in lines[0], err


def test_cycle_json_on_bad_input_says_bad_input_on_stdout_and_in_json_out(tmp_path: Path) -> None:
    """A CI step that parses stdout, or uploads cycle.json `if: always()`, got nothing on exit 2."""
    import yaml

    from tests.test_cycle import SPEC

    (tmp_path / "bc.yaml").write_text(yaml.safe_dump(SPEC))
    # the first case through the real CLI, the others in this process (the CLI's own main: a start-up each fewer)
    for target, says, cli in (("bc.yaml", "missing.csv", _cli), ("churn", "no store at", cli_in_folder)):
        (tmp_path / "cycle.json").unlink(missing_ok=True)  # (the first made no store)
        proc = cli(tmp_path, "cycle", target, "--data", "missing.csv", "--json", "--json-out", "cycle.json")
        assert proc.returncode == 2, proc.stderr
        said = proc.stderr.strip().splitlines()
        assert len(said) == 1 and said[0].startswith("error: ") and says in said[0], proc.stderr
        report = json.loads(proc.stdout)
        assert report["outcome"] == "bad_input" and report["exit_code"] == 2 and report["steps"] == []
        assert report["error"] == said[0].removeprefix("error: ") and report["target"] == target
        assert json.loads((tmp_path / "cycle.json").read_text()) == report
    unwritable = cli_in_folder(tmp_path, "cycle", "bc.yaml", "--data", "missing.csv", "--json", "--json-out",
                               "no/cycle.json")
    assert unwritable.returncode == 2 and "--json-out" in unwritable.stderr
    assert json.loads(unwritable.stdout)["outcome"] == "bad_input"
    quiet = cli_in_folder(tmp_path, "cycle", "bc.yaml", "--data", "missing.csv")
    assert quiet.returncode == 2 and quiet.stdout == ""  # without --json: the stderr line only, as before
    assert not (tmp_path / "tunesmith.db").exists()  # a first cycle's store was created, then left empty


def test_watch_json_on_bad_input_prints_one_bad_input_line(tmp_path: Path) -> None:
    """`cycle --json` printed a bad_input object on exit 2; `watch --json`, one JSON line per cycle otherwise,
    printed nothing, so a reader of its lines could not tell a refusal from a crash."""
    import yaml

    from tests.test_cycle import SPEC

    (tmp_path / "bc.yaml").write_text(yaml.safe_dump(SPEC))
    # the first case through the real CLI, the others in this process (the CLI's own main: a start-up each fewer)
    for args, says, cli in ((("bc.yaml", "--data", "missing.csv"), "missing.csv", _cli),
                            (("bc.yaml", "--data", "missing.csv", "--every", "400d"), "--every", cli_in_folder),
                            (("churn", "--data", "missing.csv"), "no store at", cli_in_folder)):  # (none made)
        proc = cli(tmp_path, "watch", *args, "--json")
        assert proc.returncode == 2, proc.stderr
        said = proc.stderr.strip().splitlines()
        assert len(said) == 1 and said[0].startswith("error: ") and says in said[0], proc.stderr
        lines = proc.stdout.splitlines()
        assert len(lines) == 1, proc.stdout
        report = json.loads(lines[0])
        assert report["outcome"] == "bad_input" and report["exit_code"] == 2 and report["target"] == args[0]
        assert report["error"] == said[0].removeprefix("error: ")
    quiet = cli_in_folder(tmp_path, "watch", "bc.yaml", "--data", "missing.csv")
    assert quiet.returncode == 2 and quiet.stdout == ""


@pytest.mark.slow
def test_cycle_spec_and_cycle_name_read_and_promote_into_the_lineages_registry(
        tmp_path: Path, mlflow_template: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default tracking URI (sqlite:///mlflow.db) resolves against the folder the experiment was first run from.
    `cycle SPEC` from another checkout read the champion from that checkout's mlflow.db (nothing there: it checked
    the lineage head, an unpromoted re-tune) while its promotion went to the first checkout's."""
    import shutil

    import mlflow
    import yaml

    from tests.test_cycle import SPEC
    from tunesmith.testing.drift_data import shifted_split

    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    first, other = tmp_path / "a", tmp_path / "c"
    for checkout in (first, other):
        checkout.mkdir()
        shifted_split(checkout)
        (checkout / "bc.yaml").write_text(yaml.safe_dump({**SPEC, "promotion": {"min": {"holdout_roc_auc": 0.5}}}))
        shutil.copy(mlflow_template, checkout / "mlflow.db")  # each checkout has one: the cycle must pick
    env = {"TUNESMITH_STORAGE": f"sqlite:///{tmp_path / 'tunesmith.db'}"}
    # the set-up (run, promote, retune) in this process, from the first checkout as its CLI calls were: three CLI
    # start-ups (MLflow, scikit-learn) fewer; the cycles it sets up for run as a user runs them, from the other
    from tunesmith.clock import SystemClock
    from tunesmith.promotion.promote import Decision, promote
    from tunesmith.retune import retune
    from tunesmith.runner import run_experiment
    from tunesmith.spec.loader import load_spec
    from tunesmith.storage.sql import SQLStore

    monkeypatch.chdir(first)
    store = SQLStore(env["TUNESMITH_STORAGE"])
    try:
        run_experiment(load_spec(first / "bc.yaml"), store)
        assert promote(store, "bc", "clf", SystemClock()).decision is Decision.PROMOTED
        assert retune(store, "bc", "shifted.csv", trials=2).experiment.name == "bc-retune-1"
    finally:
        store.close()
    monkeypatch.chdir(tmp_path)   # neither checkout: the cycles below are the CLI's, run in `other`
    proc = _cli(other, "cycle", "bc.yaml", "--data", "shifted.csv", "-m", "clf", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["checked"] == "bc" and report["champion_from"] == "registry", report
    assert report["outcome"] == "promoted" and report["champion"] == "bc-retune-2", report
    by_name = json.loads(cli_in_folder(other, "cycle", "bc", "--data", "shifted.csv", "-m", "clf", "--json",
                                       env=env).stdout)  # in this process, from `other` as the CLI's was
    assert by_name["checked"] == "bc-retune-2" and by_name["champion_from"] == "registry", by_name
    for checkout, versions in ((first, 2), (other, 0)):
        client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{checkout / 'mlflow.db'}")
        assert len(client.search_model_versions("name='clf'")) == versions, checkout


@pytest.mark.slow
def test_a_first_tuning_by_cycle_with_a_model_name_is_promoted_through_the_gates(
        tmp_path: Path, mlflow_template: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`cycle SPEC -m NAME` on a fresh store tuned the experiment and, finding no drift, registered nothing: nothing
    was served until the first drift."""
    import shutil

    import mlflow
    import yaml

    from tests.test_cycle import SPEC
    from tunesmith.testing.drift_data import shifted_split

    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    shifted_split(tmp_path)
    (tmp_path / "bc.yaml").write_text(yaml.safe_dump({**SPEC, "promotion": {"min": {"holdout_roc_auc": 0.5}}}))
    shutil.copy(mlflow_template, tmp_path / "mlflow.db")
    proc = _cli(tmp_path, "cycle", "bc.yaml", "--data", "reference.csv", "-m", "clf", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert [(s["step"], s["status"]) for s in report["steps"]] == [
        ("tune", "done"), ("promote", "done"), ("drift", "done"), ("retune", "skipped"), ("promote", "skipped")]
    assert report["outcome"] == "promoted" and report["champion"] == "bc", report
    assert report["champion_from"] == "registry" and report["steps"][1]["why"].startswith("first tuning: "), report
    assert report["steps"][1]["detail"]["first_tuning"] is True, report
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert client.get_model_version_by_alias("clf", "champion").tags["tunesmith.experiment"] == "bc"
    # read back, and the next cycle, in this process (the first cycle was the real CLI)
    audit = cli_in_folder(tmp_path, "audit", "bc", "--json")
    [promoted] = [r for r in json.loads(audit.stdout) if r["kind"] == "promoted"]
    assert promoted["detail"]["reason"] == "tunesmith cycle: first tuning", promoted  # not a drift re-tune
    again = json.loads(cli_in_folder(tmp_path, "cycle", "bc", "--data", "reference.csv", "-m", "clf",
                                     "--json").stdout)
    assert again["outcome"] == "no_drift" and again["champion_from"] == "registry" and again["checked"] == "bc"


def _sitecustomize(folder: Path, code: str) -> dict[str, str]:
    """The subprocess's environment with ``code`` run as it starts (a fault to inject), from ``folder`` (torch
    hidden, as :func:`_cli` hides it)."""
    from tests.mlflow_fixtures import without_torch

    return without_torch(folder, code)


# the subprocess's MLflow registration raises, as a server down does
REGISTRY_DOWN = ("import mlflow.tracking\ndef _down(*a, **k):\n    raise mlflow.exceptions.MlflowException('registry down')\n"
                 "mlflow.tracking.MlflowClient.create_model_version = _down\n")


def _closed_port() -> int:
    """A local port no server listens on: a connection to it is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# the subprocess's MLflow registration meets a server that refuses the connection (a real request, to a closed port),
# as when the tracking server went down after the cycle read the champion
REGISTRY_REFUSED = ("import socket, mlflow.tracking\ndef _refused(*a, **k):\n    with socket.socket() as s:\n"
                    "        s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]\n"
                    "    client = mlflow.tracking.MlflowClient(tracking_uri=f'http://127.0.0.1:{port}')\n"
                    "    return client.get_registered_model('clf')\n"
                    "mlflow.tracking.MlflowClient.create_model_version = _refused\n")


def _first_cycle_folder(tmp_path: Path, mlflow_template: Path, promotion: dict[str, object]) -> Path:
    import shutil

    import yaml

    from tests.test_cycle import SPEC
    from tunesmith.testing.drift_data import shifted_split

    shifted_split(tmp_path)
    (tmp_path / "bc.yaml").write_text(yaml.safe_dump({**SPEC, "promotion": promotion}))
    shutil.copy(mlflow_template, tmp_path / "mlflow.db")
    return tmp_path


def _first_cycle_in_process(folder: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """`tunesmith cycle bc.yaml --data shifted.csv -m clf` from ``folder``, in this process (a test's set-up: one CLI
    start-up importing MLflow and scikit-learn fewer); its report's JSON."""
    from tunesmith.cycle import run_cycle
    from tunesmith.storage.sql import SQLStore

    monkeypatch.chdir(folder)
    store = SQLStore(f"sqlite:///{folder / 'tunesmith.db'}")
    try:
        return run_cycle(store, "bc.yaml", "shifted.csv", model_name="clf").to_json()
    finally:
        store.close()


def _steps(report: dict[str, object]) -> list[tuple[str, str]]:
    return [(s["step"], s["status"]) for s in report["steps"]]  # type: ignore[attr-defined,index]


@pytest.mark.slow
def test_a_first_tuning_rejected_by_a_gate_is_offered_once_and_later_cycles_go_on(
        tmp_path: Path, mlflow_template: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A gate that refused the first tuning refused it again every later cycle (refit, rejected, exit 3, drift and
    re-tune skipped), forever: the spec file's tune step is there (skipped) in every cycle."""
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    folder = _first_cycle_folder(tmp_path, mlflow_template, {"min": {"holdout_roc_auc": 0.9999}})
    first = _first_cycle_in_process(folder, monkeypatch)   # the set-up: the later cycles are the CLI's
    assert first["exit_code"] == 3, first
    assert _steps(first) == [("tune", "done"), ("promote", "rejected"), ("drift", "skipped"), ("retune", "skipped")]
    # both forms: the first tuning is not offered again, the cycle goes on (by name forced: the rows the first form's
    # re-tune was tuned on and rejected are not re-tuned twice otherwise, tests/test_cycle_undecided_retune.py)
    for target, cli, *force in (("bc.yaml", _cli), ("bc", cli_in_folder, "--force-retune")):
        again = cli(folder, "cycle", target, "--data", "shifted.csv", "-m", "clf", "--json", *force)
        report = json.loads(again.stdout)
        assert ("drift", "done") in _steps(report) and ("retune", "done") in _steps(report), (target, report)
        assert _steps(report).count(("promote", "rejected")) == 1 and report["checked"] == "bc", report


@pytest.mark.slow
def test_a_misspelt_beat_champion_metric_is_bad_input_before_the_first_tuning(
        tmp_path: Path, mlflow_template: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`beat_champion: {metric: roc_acu}` tuned the whole experiment, then the first promotion raised: no cycle
    event recorded, and --json said bad_input with no steps after a tuning had run."""
    from tunesmith.storage.sql import SQLStore

    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    folder = _first_cycle_folder(tmp_path, mlflow_template, {"beat_champion": {"metric": "roc_acu"}})
    proc = _cli(folder, "cycle", "bc.yaml", "--data", "shifted.csv", "-m", "clf", "--json")
    assert proc.returncode == 2, proc.stderr
    assert "beat_champion.metric" in proc.stderr and "roc_auc" in proc.stderr, proc.stderr
    assert json.loads(proc.stdout)["outcome"] == "bad_input"
    assert "bc" not in SQLStore(f"sqlite:///{folder / 'tunesmith.db'}").experiment_names()  # nothing tuned


@pytest.mark.slow
def test_a_promotion_that_raises_after_tuning_is_a_recorded_failed_step(
        tmp_path: Path, mlflow_template: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A promote step that raised (here: the registry unreachable, an MLflow error) after a whole tuning lost the
    cycle's record and printed bad_input with no steps."""
    from tunesmith.storage.sql import SQLStore

    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    folder = _first_cycle_folder(tmp_path, mlflow_template, {"min": {"holdout_roc_auc": 0.5}})
    proc = _cli(folder, "cycle", "bc.yaml", "--data", "shifted.csv", "-m", "clf", "--json",
                env=_sitecustomize(folder, REGISTRY_DOWN))
    assert proc.stdout, proc.stderr
    report = json.loads(proc.stdout)
    assert proc.returncode == 1 and report["exit_code"] == 1, (proc.stderr, report)
    assert report["outcome"] == "failed" and report["root"] == "bc", report
    assert _steps(report)[:2] == [("tune", "done"), ("promote", "failed")], report
    assert "registry down" in report["steps"][1]["why"] and "registry down" in proc.stderr, report
    # no drift check ran and nothing was registered: both said "bc" (the walk)
    assert report["checked"] is None and report["champion"] is None and report["champion_from"] is None, report
    store = SQLStore(f"sqlite:///{folder / 'tunesmith.db'}")
    events = [e.kind for e in store.events(store.experiment("bc").id)]
    assert "cycle_tune" in events and "cycle_promote" in events, events


@pytest.mark.slow
def test_a_first_promotion_that_failed_is_offered_again_by_the_next_cycle(
        tmp_path: Path, mlflow_template: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A first promotion that raised (the registry down) was never offered again: the next cycle's tune step is
    skipped, so nothing was registered and every cycle said no_drift, exit 0, until drift came."""
    import mlflow

    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    folder = _first_cycle_folder(tmp_path, mlflow_template, {"min": {"holdout_roc_auc": 0.5}})
    down = _cli(folder, "cycle", "bc.yaml", "--data", "reference.csv", "-m", "clf", "--json",
                env=_sitecustomize(folder, REGISTRY_REFUSED))
    # a server that does not answer passes: exit 75, retry later (it was 1, as for an MLflow error of another kind)
    assert down.returncode == 75 and json.loads(down.stdout)["exit_code"] == 75, down.stderr
    assert _steps(json.loads(down.stdout))[1] == ("promote", "failed"), down.stderr
    assert "no MLflow tracking server answers" in down.stderr, down.stderr
    (folder / "sitecustomize.py").unlink()  # the registry is back
    for target, outcome in (("bc", "promoted"), ("bc.yaml", "no_drift")):  # offered again until done, then not
        # in this process (the failed one was the real CLI, the fault injected at its start)
        again = cli_in_folder(folder, "cycle", target, "--data", "reference.csv", "-m", "clf", "--json")
        report = json.loads(again.stdout)
        assert report["outcome"] == outcome and again.returncode == 0, (target, report, again.stderr)
        assert (("promote", "done") in _steps(report)) is (outcome == "promoted"), (target, report)
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    assert client.get_model_version_by_alias("clf", "champion").tags["tunesmith.experiment"] == "bc"


@pytest.mark.slow
@pytest.mark.parametrize(("task", "metric", "code"), [
    ({"cv": {"kind": "repeated", "folds": 3, "repeats": 2}}, "fold_5", 0),  # 6 splits: fold_0 .. fold_5 recorded
    ({"nested": {"outer_folds": 2, "trials": 2}}, "roc_acu", 2),  # a nested task's trials record the same metrics
])
def test_the_beat_champion_precheck_knows_every_metric_a_task_records(
        tmp_path: Path, mlflow_template: Path, monkeypatch: pytest.MonkeyPatch, task: dict[str, object], metric: str,
        code: int) -> None:
    """The pre-check knew `folds` fold metrics where repeated CV records folds*repeats (fold_5 refused as bad input
    with 3 folds repeated twice), and skipped nested tasks (a misspelt metric tuned the whole experiment)."""
    import yaml

    from tests.test_cycle import SPEC

    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    folder = _first_cycle_folder(tmp_path, mlflow_template, {"beat_champion": {"metric": metric}})
    (folder / "bc.yaml").write_text(yaml.safe_dump({**SPEC, "task": {**SPEC["task"], **task},  # type: ignore[dict-item]
                                                    "promotion": {"beat_champion": {"metric": metric}}}))
    proc = _cli(folder, "cycle", "bc.yaml", "--data", "reference.csv", "-m", "clf", "--json")
    report = json.loads(proc.stdout)
    assert proc.returncode == code and report["outcome"] == ("promoted" if code == 0 else "bad_input"), (
        report, proc.stderr)
    if code == 2:  # refused before any tuning (the bug tuned the whole experiment, then said bad_input)
        from tunesmith.storage.sql import SQLStore

        assert "bc" not in SQLStore(f"sqlite:///{folder / 'tunesmith.db'}").experiment_names()


@pytest.mark.slow
def test_a_retune_plan_refused_after_a_first_promotion_is_a_failed_retune_after_a_done_drift(
        tmp_path: Path, mlflow_template: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The re-tune's refusal, once the first tuning was promoted, was recorded as a failed drift step: drift had run."""
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    folder = _first_cycle_folder(tmp_path, mlflow_template, {"min": {"holdout_roc_auc": 0.5}})
    env = _sitecustomize(folder, "import tunesmith.retune as r\nfrom tunesmith.errors import UserInputError\n"
                                 "def _refused(*a, **k):\n    raise UserInputError('--data: too few rows of a class')\n"
                                 "r.checked_retune_plan = _refused\n")
    proc = _cli(folder, "cycle", "bc.yaml", "--data", "shifted.csv", "-m", "clf", "--json", env=env)
    report = json.loads(proc.stdout)
    assert _steps(report) == [("tune", "done"), ("promote", "done"), ("drift", "done"), ("retune", "failed")], report
    assert proc.returncode == 2 and "too few rows" in report["steps"][-1]["why"], (report, proc.stderr)


@pytest.mark.slow
def test_a_rejected_retune_whose_marking_fails_is_not_a_second_promote_step(
        tmp_path: Path, mlflow_template: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An error marking a rejected re-tune (the store down) added a second, failed promote step after the recorded
    rejected one."""
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    folder = _first_cycle_folder(tmp_path, mlflow_template, {"min": {"holdout_roc_auc": 0.9999}})
    assert _first_cycle_in_process(folder, monkeypatch)["exit_code"] == 3   # the set-up; the next is the CLI's
    env = _sitecustomize(folder, "from tunesmith.storage.sql import SQLStore\nset_attributes = SQLStore.set_attributes\n"
                                 "def _down(self, id, updates, now):\n    if 'rejected' in updates:\n"
                                 "        raise RuntimeError('store down')\n"
                                 "    return set_attributes(self, id, updates, now)\n"
                                 "SQLStore.set_attributes = _down\n")
    proc = _cli(folder, "cycle", "bc", "--data", "shifted.csv", "-m", "clf", "--json", env=env)
    report = json.loads(proc.stdout)
    assert _steps(report)[-2:] == [("promote", "rejected"), ("report", "failed")], (report, proc.stderr)
    assert proc.returncode == 1 and "store down" in report["steps"][-1]["why"], report


def test_the_first_tunings_promotion_is_known_by_its_flag_not_its_wording(tmp_path: Path) -> None:
    """Whether a cycle had promoted (or rejected) the first tuning was read from its promote step's `why` starting
    "first tuning: ": a reworded message would have offered it again every cycle. The step now carries
    `detail.first_tuning`; steps recorded before it still count by their wording."""
    from tunesmith.cycle import CycleStep, StepStatus, _first_tuning_to_offer
    from tunesmith.storage.sql import SQLStore

    store = SQLStore(f"sqlite:///{tmp_path / 'tunesmith.db'}")
    try:
        def recorded(*promote: dict[str, object]) -> bool:
            root = store.create_experiment(f"e{len(store.experiment_names())}", {}, "random", "", 0.0)
            store.record_event(root.id, "cycle_tune", 1.0, detail=CycleStep("tune", StepStatus.DONE, "").to_json())
            for payload in promote:
                store.record_event(root.id, "cycle_promote", 2.0, detail=payload)
            return _first_tuning_to_offer(store, root, [])

        assert recorded(), "a first tuning no cycle offered yet is offered"
        flagged = {"step": "promote", "status": "done", "why": "promoted as clf v1", "detail": {"first_tuning": True}}
        assert not recorded(flagged), "its promotion, known by the flag whatever the wording"
        assert not recorded({**flagged, "status": "rejected"}), "a rejection is offered once"
        assert recorded({**flagged, "status": "failed"}), "a promotion that failed is offered again"
        old = {"step": "promote", "status": "done", "why": "first tuning: promoted as clf v1", "detail": {}}
        assert not recorded(old), "a step recorded before the flag, by its wording"
        assert recorded({**old, "why": "promoted as clf v2"}), "a re-tune's promotion is not the first tuning's"
    finally:
        store.close()


@pytest.mark.slow
def test_a_tracking_server_that_does_not_answer_is_refused_before_the_first_tuning(
        tmp_path: Path, mlflow_template: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The walk: `cycle bcq.yaml -m bcqmodel` with tracking.mlflow.uri where no server listens tuned the whole
    experiment (the champion's read took the refused connection for "nothing registered"), then its promote step
    failed, exit 1. The registry is read before any tuning: refused there, exit 75, nothing tuned."""
    import yaml

    from tests.test_cycle import SPEC
    from tunesmith.storage.sql import SQLStore

    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    folder = _first_cycle_folder(tmp_path, mlflow_template, {"min": {"holdout_roc_auc": 0.5}})
    uri = f"http://127.0.0.1:{_closed_port()}"
    (folder / "bc.yaml").write_text(yaml.safe_dump({**SPEC, "promotion": {"min": {"holdout_roc_auc": 0.5}},
                                                    "tracking": {"mlflow": {"uri": uri}}}))
    proc = _cli(folder, "cycle", "bc.yaml", "--data", "shifted.csv", "-m", "clf", "--json")
    report = json.loads(proc.stdout)
    assert proc.returncode == 75 and report["outcome"] == "unavailable" and report["steps"] == [], (report, proc.stderr)
    assert f"no MLflow tracking server answers at {uri}" in proc.stderr, proc.stderr
    assert "bc" not in SQLStore(f"sqlite:///{folder / 'tunesmith.db'}").experiment_names()  # nothing tuned


def test_a_tracking_uri_whose_host_does_not_exist_is_bad_input(monkeypatch: pytest.MonkeyPatch) -> None:
    """A registry at a host the resolver says does not exist was read as "no champion registered" (a cycle went on
    to tune); it is the URI's typo, exit 2, as for the store's address."""
    from tests.mlflow_fixtures import require_mlflow

    require_mlflow()
    from tunesmith.errors import UserInputError
    from tunesmith.tracking.model_registry import ModelRegistry

    host = "nosuchhost.invalid"
    try:
        socket.getaddrinfo(host, 5000)
    except socket.gaierror as e:
        if e.errno != socket.EAI_NONAME:
            pytest.skip(f"this machine's resolver does not say {host} does not exist ({e})")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    with pytest.raises(UserInputError, match="the host is not known"):
        ModelRegistry(f"http://{host}:5000").by_alias("clf", "champion")
