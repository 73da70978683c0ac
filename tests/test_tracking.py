"""MLflow tracking against real MLflow (SQLite in a temp folder): live, backfilled, and when MLflow is down."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import tunesmith
from helpers import start_cli, stop_processes, wait_for
from tests.mlflow_fixtures import require_mlflow
from tunesmith.clock import SystemClock
from tunesmith.storage.sql import SQLStore

REPORTING = '''
def objective(config, trial):
    for step in range(3):
        trial.report(step, config["x"] * (step + 1))
    if config["x"] > 0.9:
        raise ValueError("too big")
    return {"loss": (config["x"] - 0.3) ** 2, "extra": 2.0}
'''


def _spec(project, name="tracked", uri=None, **overrides):
    project.write("reporting.py", REPORTING)
    spec = project.spec(name, trial={"function": "reporting:objective"}, executor={"kind": "inline"},
                        budget={"trials": 5}, seed=3, tags={"team": "ml"})
    if uri is not None:
        spec["tracking"] = {"mlflow": {"uri": uri, "experiment": "tunesmith-tests", "flush_timeout": 60}}
    spec.update(overrides)
    return project.write_spec(spec)


def _runs(uri, experiment="tunesmith-tests"):
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    return client, client.search_runs([exp.experiment_id], max_results=1000) if exp else []


def test_a_run_is_tracked_live_parent_children_steps_tags_artifacts(project, mlflow_uri):
    # credentials in a tag or the description were exported as written (a walk): every text of the spec is redacted
    secret = {"tags": {"team": "ml", "source": "postgresql://bob:hunter2@db.internal/prod"},
              "description": "reads postgresql://bob:hunter2@db/x"}
    result = tunesmith.run(_spec(project, uri=mlflow_uri, **secret), storage=project.storage)
    client, runs = _runs(mlflow_uri)
    parents = [r for r in runs if r.data.tags.get("tunesmith.kind") == "experiment"]
    children = [r for r in runs if r.data.tags.get("tunesmith.kind") == "trial"]
    assert len(parents) == 1 and len(children) == 5
    parent = parents[0]
    assert parent.data.tags["tunesmith.experiment"] == "tracked" and parent.data.tags["tunesmith.tag.team"] == "ml"
    assert parent.data.params["strategy"] == "random" and parent.data.params["seed"] == "3"
    assert parent.info.status == "FINISHED"
    best = result.best
    assert parent.data.metrics["best_loss"] == pytest.approx(best.values[0])
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "tunesmith")}
    assert {"tunesmith/spec.json", "tunesmith/environment.json"} <= artifacts
    assert parent.data.tags["tunesmith.tag.source"] == "postgresql://bob:***@db.internal/prod"
    exported = client.download_artifacts(parent.info.run_id, "tunesmith/spec.json", str(project.root))
    text = Path(exported).read_text()
    assert "hunter2" not in text and "reads postgresql://bob:***@db/x" in text, text
    by_number = {int(r.data.tags["tunesmith.trial"]): r for r in children}
    store = SQLStore(project.storage, create=False)
    for t in store.trials(store.experiment("tracked").id):
        run = by_number[t.number]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.tags["tunesmith.experiment"] == "tracked"
        assert run.data.tags["tunesmith.state"] == t.state.value
        assert run.data.tags["tunesmith.seed"] == str(t.seed) and run.data.tags["tunesmith.attempts"] == "1"
        assert float(run.data.params["x"]) == pytest.approx(t.params["x"])
        history = client.get_metric_history(run.info.run_id, "intermediate/loss")
        assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [
            (r.step, pytest.approx(r.value)) for r in t.intermediate]
        assert "tunesmith/trial.log" in {a.path for a in client.list_artifacts(run.info.run_id, "tunesmith")}
        if t.state.value == "completed":
            assert run.info.status == "FINISHED" and run.data.metrics["loss"] == pytest.approx(t.values[0])
            assert run.data.metrics["extra"] == 2.0
        else:
            assert run.info.status == "FAILED" and "too big" in run.data.tags["tunesmith.failure"]
    assert not [e for e in store.events(store.experiment("tracked").id) if e.kind == "tracking_failed"]


def test_export_backfills_and_twice_creates_no_duplicates(project, mlflow_uri):
    from tunesmith.tracking import export_mlflow

    tunesmith.run(_spec(project, "backfill"), storage=project.storage)  # no tracking: section
    store = SQLStore(project.storage, create=False)
    first_export = export_mlflow(store, "backfill", SystemClock(), mlflow_uri)
    assert (first_export.written, first_export.unchanged) == (5, 0)
    _, first = _runs(mlflow_uri, "backfill")
    second_export = export_mlflow(store, "backfill", SystemClock(), mlflow_uri)  # a fresh tracker: found by tags
    assert (second_export.written, second_export.unchanged) == (0, 5)
    assert second_export.parent_run_id == first_export.parent_run_id
    _, second = _runs(mlflow_uri, "backfill")
    assert len(first) == len(second) == 6
    assert sorted(r.info.run_id for r in first) == sorted(r.info.run_id for r in second)
    exported = [e for e in store.events(store.experiment("backfill").id) if e.kind == "tracking_exported"]
    assert [e.payload["written"] for e in exported] == [5, 0] and exported[0].payload["actor"]["host"]


def test_mlflow_down_leaves_the_run_complete_and_records_an_event(project, mlflow_uri):
    # nothing listens on port 9: every MLflow request fails; the run must not notice
    result = tunesmith.run(_spec(project, "down", uri="http://127.0.0.1:9"), storage=project.storage)
    assert result.status.value == "completed"
    store = SQLStore(project.storage, create=False)
    exp = store.experiment("down")
    trials = store.trials(exp.id)
    assert len(trials) == 5 and all(t.state.is_finished() for t in trials)
    failed = [e for e in store.events(exp.id) if e.kind == "tracking_failed"]
    assert len(failed) == 1 and failed[0].payload["retry"] == "tunesmith export mlflow down"
    # the next export (to a reachable MLflow) writes everything
    from tunesmith.tracking import export_mlflow

    assert export_mlflow(store, "down", SystemClock(), mlflow_uri).written == 5



def test_the_writer_process_names_where_its_tracking_uri_came_from(project, monkeypatch):
    """The writer process was given the URI without where it came from: what it refused named the spec's
    tracking.mlflow.uri, which the spec did not set, for a URI from $MLFLOW_TRACKING_URI."""
    require_mlflow()
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    uri = "postgresql+psycopg://postgres@127.0.0.1:9/mlflow"  # nothing listens on port 9; no server is reached first
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    result = tunesmith.run(_spec(project, "from-env", tracking={"mlflow": {"experiment": "tunesmith-tests"}}),
                           storage=project.storage)
    store = SQLStore(project.storage, create=False)
    [failed] = [e for e in store.events(result.experiment.id) if e.kind == "tracking_failed"]
    assert f"MLFLOW_TRACKING_URI: {uri}: " in failed.payload["error"], failed.payload

def test_quiet_still_tells_on_stderr_that_mlflow_tracking_failed(project):
    require_mlflow()
    _spec(project, "down-quiet", uri="http://127.0.0.1:9")  # nothing listens on port 9
    run = project.cli("run", "down-quiet.yaml", "--quiet", env={"MLFLOW_DISABLE_TELEMETRY": "true"})
    assert run.returncode == 0, run.stderr
    assert run.stdout == ""
    warned = [line for line in run.stderr.splitlines() if line.startswith("warning: MLflow tracking failed")]
    assert len(warned) == 1 and "`tunesmith export mlflow down-quiet`" in warned[0], run.stderr


def test_a_slow_tracker_never_blocks_the_loop(project):
    """The listener's hooks only queue: a tracker stuck forever delays nothing but the bounded wait at the end."""
    from tunesmith.events import Listeners, RunListener
    from tunesmith.tracking.listener import TrackingListener

    release = threading.Event()
    calls: list[str] = []

    class StuckTracker:
        def parent_run(self, experiment, environment=None):
            calls.append("parent")
            release.wait(30)
            return "p"

        def sync_trial(self, parent, experiment, trial):
            calls.append("trial")
            return True

        def finish_parent(self, parent, experiment, best):
            calls.append("finish")

    class Shown(RunListener):  # a listener that shows warnings, as the progress display does
        def __init__(self) -> None:
            self.warnings: list[str] = []

        def warning(self, message: str) -> None:
            self.warnings.append(message)

    store = SQLStore(project.storage)
    shown = Shown()
    # its warning goes the way every listener's does: through the fan-out (warn_through), to whoever shows warnings
    listener = Listeners(TrackingListener(StuckTracker, store, SystemClock(), flush_timeout=0.2), shown)
    from tunesmith.runner import run_experiment
    from tunesmith.spec.loader import load_spec

    try:
        result = run_experiment(load_spec(_spec(project, "stuck")), store, listener)
    finally:
        release.set()
    assert result.status.value == "completed" and len(result.trials) == 5
    assert calls == ["parent"]  # the loop went on while the tracker was stuck in its first call
    event = [e for e in store.events(result.experiment.id) if e.kind == "tracking_failed"][0]
    assert "did not answer within 0.2s" in event.payload["error"]
    assert len(shown.warnings) == 1 and "tunesmith export mlflow stuck" in shown.warnings[0]


def test_importing_tunesmith_or_running_without_tracking_loads_no_mlflow(project):
    spec = _spec(project, "light")
    code = (
        "import sys, tunesmith\n"
        "assert 'mlflow' not in sys.modules\n"
        f"tunesmith.run({str(spec)!r}, storage={project.storage!r})\n"
        "from tunesmith import cli, runner, tracking, promotion, audit, environment\n"
        "import tunesmith.promotion.gates, tunesmith.spec.promotion_config\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('mlflow', 'skops'))\n"
        "print(bad)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=project.root, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().replace("'", '"')) == []


def test_a_missing_mlflow_names_the_extra(project, monkeypatch):
    require_mlflow()
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed
    from tunesmith.errors import UserInputError
    from tunesmith.tracking.mlflow_tracker import import_mlflow

    message = "MLflow is not installed; pip install -e '.[mlflow]' in tunesmith's checkout (the mlflow extra)"
    with pytest.raises(UserInputError, match=f"^{re.escape(message)}$"):
        import_mlflow()


def test_a_tracking_section_without_mlflow_is_bad_input_before_anything_is_recorded(project, without_mlflow):
    """It showed only as a tracking_failed event after every trial had run: refused by `validate` and `run`."""
    env = without_mlflow
    spec = _spec(project, "untracked", uri="sqlite:///mlflow.db")
    for command in ("validate", "run"):
        proc = project.cli(command, str(spec), env=env)
        where = f"{command}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stdout == "", where
        assert proc.stderr.splitlines() == [
            "error: tracking.mlflow: mirroring the run to MLflow needs MLflow, which is not installed: "
            "pip install -e '.[mlflow]' in tunesmith's checkout (the mlflow extra) (or remove the tracking: "
            "section)"], where
    assert not project.db.exists() and not (project.root / "mlflow.db").exists()


def test_an_exported_spec_hides_a_secret_env_value_wherever_it_is_written(project, mlflow_uri):
    """`tunesmith spec` hid a secret-named trial.env value also where the spec repeats it (a tag, the description),
    the MLflow export only in trial.env: two copies of one rule that disagreed (review surface, item 2). One rule
    now (redaction.spec_secrets_hidden): the exported spec.json, its tags and `spec --json` agree."""
    from helpers import cli_json_in_process
    from tunesmith.tracking import export_mlflow

    token = "abcd1234xyz"
    path = _spec(project, "hidden", tags={"hdr": f"--hdr {token}"}, description=f"sends --hdr {token}",
                 trial={"function": "reporting:objective", "env": {"API_TOKEN": token, "MODE": "fast"}})
    tunesmith.run(path, storage=project.storage)
    store = SQLStore(project.storage, create=False)
    try:
        parent_id = export_mlflow(store, "hidden", SystemClock(), mlflow_uri).parent_run_id
    finally:
        store.close()
    client, _ = _runs(mlflow_uri, "hidden")
    exported = json.loads(Path(client.download_artifacts(parent_id, "tunesmith/spec.json", str(project.root)))
                          .read_text())
    assert token not in json.dumps(exported) and exported["description"] == "sends --hdr ***", exported
    assert exported["trial"]["env"] == {"API_TOKEN": "***", "MODE": "fast"}, exported
    assert client.get_run(parent_id).data.tags["tunesmith.tag.hdr"] == "--hdr ***"
    printed = cli_json_in_process("spec", "hidden", "--storage", project.storage)
    assert {k: v for k, v in printed.items() if k in exported} == exported


def test_secrets_are_redacted_in_exported_specs():
    from tunesmith.redaction import redact_env, redact
    from tunesmith.redaction import spec_secrets_hidden

    spec = {"storage": "postgresql://bob:hunter2@db/tuning", "tags": {"db": "https://ann:t0ps3cret@h/x"},
            "space": {"u": {"type": "categorical", "choices": ["mysql://c:letmein@h/d"]}},
            "trial": {"env": {"API_TOKEN": "abc", "MODE": "fast"},
                                                                        "command": "run --url https://u:pw@h/x"},
            "tracking": {"mlflow": {"uri": "https://me:s3cret@mlflow.example"}}}
    out = json.dumps(spec_secrets_hidden(spec))
    assert "hunter2" not in out and "abc" not in out and "s3cret" not in out and ":pw@" not in out
    assert "t0ps3cret" not in out and "letmein" not in out, out
    assert "fast" in out and "bob:***@db" in out
    assert redact_env({"AWS_SECRET_ACCESS_KEY": "x", "HOME": "/root"}) == {"AWS_SECRET_ACCESS_KEY": "***", "HOME": "/root"}
    assert redact("train PASSWORD=pw1 --n 3") == "train PASSWORD=*** --n 3"


@pytest.mark.slow
def test_the_registry_on_a_new_database_prints_none_of_mlflows_info_lines_but_its_warnings(tmp_path) -> None:
    """A walk's `cycle ... -m NAME` printed MLflow's "Creating initial MLflow database tables..." and "Updating
    database tables" INFO lines on stderr, between tunesmith's own."""
    require_mlflow()
    code = ("import logging\n"
            "from tunesmith.tracking.model_registry import ModelRegistry\n"
            f"registry = ModelRegistry('sqlite:///{tmp_path / 'new.db'}')\n"
            "assert registry.by_alias('m', 'champion') is None and registry.versions('m') == []\n"
            f"import os; assert not os.path.exists('{tmp_path / 'new.db'}')  # reading a registry makes none\n"
            "registry.client.search_registered_models()  # MLflow's client makes it, as registering does\n"
            "logging.getLogger('mlflow.store.db.utils').warning('a warning still shows')\n"
            "logging.getLogger('alembic.runtime.migration').error('an error still shows')\n")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_LOGGING_LEVEL"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=180,
                          env={**env, "MLFLOW_DISABLE_TELEMETRY": "true"})
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "new.db").exists()
    assert "INFO" not in proc.stderr and "Creating initial MLflow database tables" not in proc.stderr, proc.stderr
    assert "a warning still shows" in proc.stderr and "an error still shows" in proc.stderr, proc.stderr
    chosen = subprocess.run([sys.executable, "-c", code.replace("new.db", "other.db")], cwd=tmp_path,
                            capture_output=True, text=True, timeout=180,
                            env={**env, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_LOGGING_LEVEL": "INFO"})
    assert "Creating initial MLflow database tables" in chosen.stderr, chosen.stderr  # the user's level is kept


def _tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_a_tracking_uri_naming_a_tunesmith_store_is_refused_before_mlflow_writes_into_it(project):
    """`--tracking-uri sqlite:///tunesmith.db` (for mlflow.db, beside it) had MLflow write its tables into the store
    (a traceback), after which it recorded and deleted nothing ("foreign key mismatch"); the spec's
    `tracking.mlflow.uri` did it too, `validate` saying valid (a walk). Refused wherever it comes from, unwritten."""
    from helpers import cli_in_process

    tunesmith.run(_spec(project, "kept"), storage=project.storage)
    before = _tables(project.db)
    store_said = f"{project.storage} is a tunesmith store, not an MLflow one: MLflow would write its own tables"
    for args in (("export", "mlflow", "kept"), ("promote", "kept", "-m", "wine"), ("rollback", "wine", "--reason", "x")):
        code, out, err = cli_in_process(*args, "--tracking-uri", project.storage)
        assert code == 2 and err.startswith(f"error: --tracking-uri: {store_said}"), (args, code, out, err)
        assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert _tables(project.db) == before, "no MLflow table in the store"
    tracked = _spec(project, "tracked", uri=project.storage)
    for command in ("validate", "run"):
        code, out, err = cli_in_process(command, str(tracked))
        assert code == 2 and err.startswith(f"error: tracking.mlflow.uri: {store_said}"), (command, out, err)
    assert [e.name for e in SQLStore(project.storage, create=False).experiments()] == ["kept"], "nothing recorded"
    # the store `run` would make: refused before it is made (its URL is the tracking URI's)
    code, out, err = cli_in_process("run", str(tracked), "--storage", "sqlite:///new.db")
    assert code == 2 and "tracking.mlflow.uri" in err, err
    new = _spec(project, "new", uri="sqlite:///new.db", storage="sqlite:///new.db")
    code, out, err = cli_in_process("validate", str(new))
    assert code == 2 and "/new.db is a tunesmith store" in err and not (project.root / "new.db").exists()



def test_cycle_watch_and_retune_refuse_a_tracking_uri_naming_a_tunesmith_store_before_any_work(
        project, mlflow_uri, monkeypatch):
    """`run` refused a tracking URI naming the store before anything was recorded; `retune`, `cycle` and `watch`
    tuned anyway, MLflow's writer refusing it for each run, said only as a tracking warning once it had run."""
    from helpers import cli_in_process

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    tunesmith.run(_spec(project, "kept", tracking={"mlflow": {"experiment": "tunesmith-tests"}}),
                  storage=project.storage)  # tracked where $MLFLOW_TRACKING_URI says
    project.write("rows.csv", "x\n0.1\n0.2\n0.3\n0.4\n")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", project.storage)  # set to the store's URL, for mlflow.db beside it
    before = _tables(project.db)
    said = f"error: MLFLOW_TRACKING_URI: {project.storage} is a tunesmith store, not an MLflow one"
    rows = ("--data", "rows.csv", "--reference", "rows.csv")
    for args in (("retune", "kept"), ("cycle", "kept", *rows), ("watch", "kept", *rows, "--cycles", "1")):
        code, out, err = cli_in_process(*args)
        assert code == 2 and err.startswith(said) and len(err.splitlines()) == 1, (args, code, out, err)
    store = SQLStore(project.storage, create=False)
    assert [e.name for e in store.experiments()] == ["kept"], "no re-tune recorded"
    assert not [e for e in store.events(store.experiment("kept").id) if e.kind.startswith("cycle_")]
    assert _tables(project.db) == before
    # a spec file's first cycle: refused before its store is made (the URI names it: sqlite:///new.db)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    fresh = _spec(project, "fresh", uri="sqlite:///new.db")
    code, out, err = cli_in_process("cycle", str(fresh), *rows, "--storage", "sqlite:///new.db")
    assert code == 2 and err.startswith("error: tracking.mlflow.uri: ") and "/new.db is a tunesmith store" in err, err
    assert not (project.root / "new.db").exists()

@pytest.mark.parametrize(("uri", "said"), [
    ("nonsense://", "nonsense://: no MLflow store takes this scheme"),
    ("mlflow.db", "a folder is MLflow's file store, which MLflow 3 refuses (maintenance mode): use a database, e.g. "
                  "sqlite:///mlflow.db"),
    ("sqlite:///{spec}", "is not a SQLite database; point it at MLflow's database (e.g. sqlite:///mlflow.db)"),
    ("postgresql://u@127.0.0.1:notaport/mlflow", "the port 'notaport' is not a number"),
])
def test_a_tracking_uri_mlflow_cannot_use_is_one_line_naming_the_flag(project, uri, said):
    """`promote` and `export mlflow` crashed with MLflow's traceback for each (a walk)."""
    from helpers import cli_in_process

    require_mlflow()
    spec = _spec(project, "backfill")
    tunesmith.run(spec, storage=project.storage)
    code, out, err = cli_in_process("export", "mlflow", "backfill", "--tracking-uri", uri.format(spec=spec))
    assert code == 2 and err.startswith("error: --tracking-uri: ") and said in err, (code, out, err)
    assert "Traceback" not in err and len(err.splitlines()) == 1, err


def _trial_runs_by_status(db: Path) -> dict[str, int]:
    """MLflow's runs of kind ``trial`` in its SQLite file, by status, read as the export writes them."""
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT r.status, COUNT(*) FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
                                 "WHERE t.key = 'tunesmith.kind' AND t.value = 'trial' GROUP BY r.status").fetchall())


def test_a_stopped_export_ends_its_runs_says_so_and_a_second_one_continues_it(project, mlflow_uri):
    # a walk: SIGTERM stopped a 2,000-trial export with no word, its parent run and one trial run left RUNNING
    from tunesmith.tracking import export_mlflow

    tunesmith.run(project.write_spec(project.spec("big", budget={"trials": 60}, executor={"kind": "inline"},
                                                  trial={"function": "objectives:noop"})), storage=project.storage)
    db = Path(mlflow_uri.removeprefix("sqlite:///"))
    export = start_cli(project, "export", "mlflow", "big", "--tracking-uri", mlflow_uri)
    try:
        wait_for(lambda: sum(_trial_runs_by_status(db).values()) >= 3, timeout=60, interval=0.02)
        export.send_signal(signal.SIGTERM)
        out, err = export.communicate(timeout=60)
    finally:
        stop_processes(export)
    written = sum(_trial_runs_by_status(db).values())
    assert export.returncode == 130, (out, err)
    assert err.startswith(f"stopped by SIGTERM: {written} trial run(s) written, 0 already up to date, "
                          f"{60 - written} not looked at; running the same command again continues"), (out, err)
    assert out == "", out
    client, runs = _runs(mlflow_uri, "big")
    assert [r.info.status for r in runs if r.info.status == "RUNNING"] == []
    second = export_mlflow(SQLStore(project.storage, create=False), "big", SystemClock(), mlflow_uri)
    assert (second.written, second.unchanged) == (60 - written, written)
    _, runs = _runs(mlflow_uri, "big")
    numbers = [r.data.tags["tunesmith.trial"] for r in runs if r.data.tags.get("tunesmith.kind") == "trial"]
    assert sorted(numbers) == sorted(set(numbers)) and len(numbers) == 60
    assert {r.info.status for r in runs} == {"FINISHED"}
