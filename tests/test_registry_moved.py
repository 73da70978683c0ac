"""The registry a promotion opens, when it moved: refused where it holds no champion the store recorded, followed
with `--tracking-uri` (`promote`, `cycle`, `watch`)."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import pytest
import yaml

from tests.helpers import completed_in_process
from tunesmith.storage.sql import SQLStore

PROMOTION = {"min": {"holdout_roc_auc": 0.5}}


def _cli(cwd: Path, *args: str) -> tuple[int, str, str]:
    """`tunesmith ARGS` from ``cwd`` on the store there, in this process: exit code, stdout, stderr."""
    done = completed_in_process(cwd, *args, env={"TUNESMITH_STORAGE": f"sqlite:///{cwd / 'tunesmith.db'}",
                                                 "COLUMNS": "200"})
    return done.returncode, done.stdout, done.stderr


def _events(folder: Path) -> int:
    store = SQLStore(f"sqlite:///{folder / 'tunesmith.db'}", create=False)
    try:
        return sum(len(store.events(e.id)) for e in store.experiments())
    finally:
        store.close()


def _champion(uri: str, model: str) -> tuple[str, str | None]:
    """The version behind ``model``'s alias champion at ``uri``, and its ``previous_champion`` tag."""
    import mlflow

    version = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version_by_alias(model, "champion")
    return str(version.version), version.tags.get("tunesmith.previous_champion")


@pytest.fixture
def promoted(tmp_path: Path, mlflow_template: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Experiment ``bc`` (tests/test_cycle.py's spec, with a gate) tuned, and its trial 0 promoted as model ``clf``
    version 1 into the spec's registry, ``mlflow.db`` in its folder (no tracking: section: no writer process per
    run, which this is not about); the working directory is that folder."""
    from tests.test_cycle import SPEC, _cli as real_cli
    from tunesmith.runner import run_experiment
    from tunesmith.spec.loader import load_spec
    from tunesmith.testing.drift_data import shifted_split

    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    shifted_split(tmp_path)
    shutil.copy(mlflow_template, tmp_path / "mlflow.db")
    (tmp_path / "bc.yaml").write_text(yaml.safe_dump({**SPEC, "promotion": PROMOTION}))
    store = SQLStore(f"sqlite:///{tmp_path / 'tunesmith.db'}")
    try:
        run_experiment(load_spec(tmp_path / "bc.yaml"), store)
    finally:
        store.close()
    # in a process of its own: MLflow keeps each database it opened open for the process's life, and this one moves
    done = real_cli(tmp_path, "promote", "bc", "--model-name", "clf", "--trial", "0")
    assert done.returncode == 0 and "clf version 1" in done.stdout, (done.stdout, done.stderr)
    return tmp_path


def _moved(folder: Path) -> str:
    """The registry moved (its database; the artifacts, named by absolute path, stay): its new URI."""
    (folder / "moved").mkdir()
    shutil.move(folder / "mlflow.db", folder / "moved" / "mlflow.db")
    return f"sqlite:///{folder / 'moved' / 'mlflow.db'}"


@pytest.mark.slow
def test_promote_refuses_a_moved_sqlite_registry_and_follows_it_with_tracking_uri(promoted: Path) -> None:
    """The registry's database moved: `promote` had MLflow create an empty one at the old path and registered
    version 1 there ("no champion yet"), beside the real champion."""
    moved = _moved(promoted)
    before = _events(promoted)
    code, out, err = _cli(promoted, "promote", "bc", "--model-name", "clf", "--trial", "1")
    assert code == 2 and "Traceback" not in err, (out, err)
    assert err.startswith(f"error: tracking.mlflow.uri: sqlite:///{promoted / 'mlflow.db'}: no MLflow database at "
                          f"{promoted / 'mlflow.db'}"), err
    assert "version 1, bc trial 0" in err and "--tracking-uri URI" in err, err  # the recorded champion, the fix
    # the fix repeats the promote as it was run: without --trial it promoted the selected trial instead
    assert "tunesmith promote bc -m clf --trial 1 --tracking-uri URI" in " ".join(err.split()), err
    assert not (promoted / "mlflow.db").exists() and _events(promoted) == before  # nothing made, nothing recorded
    # and with the store it was given: copied without --storage, the fix opened the default store, another one
    shutil.copy(promoted / "tunesmith.db", promoted / "copy.db")
    copy = f"sqlite:///{promoted / 'copy.db'}"
    code, _, said = _cli(promoted, "promote", "bc", "--model-name", "clf", "--trial", "1", "--storage", copy)
    said = " ".join(said.split())
    assert code == 2 and f"tunesmith promote bc -m clf --trial 1 --storage {copy} --tracking-uri URI" in said, said
    assert f"tunesmith export mlflow bc --storage {copy} --tracking-uri" in said, said
    # starting afresh at the old path on purpose takes two steps, and the refusal names both: named alone, the
    # missing database is refused again; made alone, it holds no champion and the plain promote is refused
    old = f"sqlite:///{promoted / 'mlflow.db'}"
    steps = [f"tunesmith export mlflow bc --tracking-uri {old}", f"tunesmith promote bc -m clf --trial 1 "
                                                                  f"--tracking-uri {old}"]
    assert all(step in " ".join(err.split()) for step in steps), err
    code, out, err = _cli(promoted, "promote", "bc", "--model-name", "clf", "--trial", "1", "--tracking-uri", moved)
    assert code == 0 and "version 2" in out, (out, err)
    assert _champion(moved, "clf") == ("2", "1")  # judged against, and registered beside, the real champion
    assert not (promoted / "mlflow.db").exists()
    for step in steps:
        code, out, err = _cli(promoted, *shlex.split(step)[1:])
        assert code == 0, (step, out, err)
    assert _champion(old, "clf") == ("1", None)  # afresh, on purpose


@pytest.mark.slow
def test_a_model_never_promoted_makes_its_registry_and_an_empty_one_is_taken_only_when_named(
        promoted: Path) -> None:
    """A first promotion into a new registry still makes it (the quickstart's); a registry that exists without the
    model the store promoted (the old path made anew) is refused unless named with --tracking-uri."""
    _moved(promoted)
    code, out, err = _cli(promoted, "promote", "bc", "--model-name", "other", "--trial", "1")  # never promoted
    assert code == 0 and "version 1" in out, (out, err)
    assert (promoted / "mlflow.db").exists()
    old = f"sqlite:///{promoted / 'mlflow.db'}"
    code, out, err = _cli(promoted, "promote", "bc", "--model-name", "clf", "--trial", "1")
    assert code == 2 and err.startswith(f"error: tracking.mlflow.uri: {old} holds no champion of model 'clf'"), err
    assert f"--tracking-uri {old}" in err, err  # how to register it afresh there, on purpose
    code, out, err = _cli(promoted, "promote", "bc", "--model-name", "clf", "--trial", "1", "--tracking-uri", old)
    assert code == 0 and "version 1" in out, (out, err)


@pytest.mark.slow
def test_a_cycle_refuses_a_moved_registry_before_any_work_and_follows_it_with_tracking_uri(promoted: Path) -> None:
    """The walk's week 6: the cycle re-created the registry empty at the recorded path and promoted its re-tune
    there as version 1; and `cycle --tracking-uri`, documented, did not exist."""
    moved = _moved(promoted)
    before = _events(promoted)
    storage = f"sqlite:///{promoted / 'tunesmith.db'}"
    code, out, err = _cli(promoted, "cycle", "bc", "--data", "shifted.csv", "--reference", "reference.csv",
                          "--trials", "1", "-m", "clf", "--storage", storage, "--json")
    assert code == 2, (out, err)
    report = json.loads(out)
    assert report["outcome"] == "bad_input" and "no MLflow database at" in report["error"], report
    assert not (promoted / "mlflow.db").exists() and _events(promoted) == before
    # the fix, copied, runs the same cycle: without --reference and --trials it checked drift against the training
    # rows and re-tuned the spec's 2 trials; --storage names this folder's default store (left out: copied here, the
    # same store opens), --json is printing only
    fix = re.search(r"(tunesmith cycle .*?) --tracking-uri URI", report["error"])
    assert fix is not None and fix[1] == ("tunesmith cycle bc --data shifted.csv -m clf --reference reference.csv "
                                          "--trials 1"), report["error"]
    code, out, err = _cli(promoted, *shlex.split(fix[1])[1:], "--tracking-uri", moved, "--json")
    assert code == 0, (out, err)
    report = json.loads(out)
    steps = {s["step"]: s for s in report["steps"]}
    assert "reference.csv" in steps["drift"]["why"] and steps["retune"]["detail"]["trials"] == 1, report
    assert report["champion_from"] == "registry" and report["checked"] == "bc", report  # the moved champion
    assert report["outcome"] == "promoted" and report["champion"] == "bc-retune-1", report
    assert report["steps"][-1]["detail"]["version"] == "2", report
    assert _champion(moved, "clf") == ("2", "1") and not (promoted / "mlflow.db").exists()
    code, out, err = _cli(promoted, "watch", "bc", "--data", "shifted.csv", "-m", "clf", "--cycles", "1", "--json",
                          "--tracking-uri", moved)
    assert code == 0, (out, err)
    [line] = [json.loads(line) for line in out.splitlines()]
    assert line["checked"] == "bc-retune-1" and line["outcome"] == "no_drift", line  # the moved registry's champion


@pytest.mark.slow
def test_a_watch_refused_for_a_moved_registry_is_told_to_run_watch_again_with_its_flags(promoted: Path) -> None:
    """`watch`'s refusal told it to run `tunesmith cycle bc --data shifted.csv -m clf --tracking-uri URI`: copied, a
    one-shot cycle ran where the loop was meant, without the --trials (or --reference, --storage) given."""
    moved = _moved(promoted)
    code, out, err = _cli(promoted, "watch", "bc", "--data", "shifted.csv", "-m", "clf", "--trials", "1",
                          "--every", "1h", "--cycles", "1")
    assert code == 2 and "Traceback" not in err, (out, err)
    fix = " ".join(err.split()).split("If it moved, give its new URI: ")[1].split(". To start")[0]
    assert fix == "tunesmith watch bc --data shifted.csv -m clf --trials 1 --every 3600 --cycles 1 --tracking-uri URI"
    code, out, err = _cli(promoted, *shlex.split(fix.removesuffix("URI") + shlex.quote(moved))[1:])  # copied
    assert code == 0 and out.count("outcome: promoted") == 1, (out, err)  # one cycle (--cycles 1), watch's
    store = SQLStore(f"sqlite:///{promoted / 'tunesmith.db'}", create=False)
    try:
        assert len(store.trials(store.experiment("bc-retune-1").id)) == 1  # --trials 1 kept
    finally:
        store.close()
    assert _champion(moved, "clf") == ("2", "1")


def test_a_cycles_tracking_uri_needs_a_model_name_and_is_checked_as_a_spec_uri_is(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--tracking-uri names the registry: without --model-name a cycle reads none (a flag that changes nothing is
    refused); one naming the store is refused before MLflow writes its tables into it. Both before any tuning."""
    from tests.test_cycle import SPEC
    from tunesmith.testing.drift_data import shifted_split

    monkeypatch.chdir(tmp_path)
    shifted_split(tmp_path)
    (tmp_path / "bc.yaml").write_text(yaml.safe_dump(SPEC))  # no promotion: section: --model-name is optional
    store = f"sqlite:///{tmp_path / 'tunesmith.db'}"
    for args, said in ((("--tracking-uri", "sqlite:///elsewhere.db"), "--tracking-uri: names the registry"),
                       (("-m", "clf", "--tracking-uri", store), f"--tracking-uri: {store} is a tunesmith store")):
        code, out, err = _cli(tmp_path, "cycle", "bc.yaml", "--data", "shifted.csv", *args)
        assert code == 2 and err.startswith(f"error: {said}"), (args, err)
        assert _events(tmp_path) == 0 and not (tmp_path / ".tunesmith").exists()  # nothing tuned, nothing recorded
    assert not (tmp_path / "elsewhere.db").exists()


def _without_recorded_registry(folder: Path, *kinds: str) -> None:
    """The store's events of ``kinds`` as written before they recorded their registry (payload key ``registry``)."""
    import sqlite3

    with sqlite3.connect(folder / "tunesmith.db") as conn:
        for row_id, payload in conn.execute(
                f"SELECT id, payload FROM events WHERE kind IN ({','.join('?' * len(kinds))})", kinds).fetchall():
            conn.execute("UPDATE events SET payload = ? WHERE id = ?",
                         (json.dumps({k: v for k, v in json.loads(payload).items() if k != "registry"}), row_id))


@pytest.mark.slow
@pytest.mark.parametrize("recorded", ["on_promoted", "through_intent", "unknown"])
def test_a_first_promotion_into_another_registry_is_not_refused_for_a_champion_recorded_elsewhere(
        promoted: Path, recorded: str) -> None:
    """Review A M4: `clf` promoted into the spec's registry; another registry (a prod server, named by
    $MLFLOW_TRACKING_URI) chosen on purpose was refused its first promotion of `clf`. Refused still where the
    recorded champion's registry is unknown (events written before they recorded it)."""
    if recorded == "through_intent":  # a `promoted` written before it recorded the registry: its intent's says
        _without_recorded_registry(promoted, "promoted")
    elif recorded == "unknown":
        _without_recorded_registry(promoted, "promoted", "promotion_started")
    (promoted / "prod").mkdir()
    prod = f"sqlite:///{promoted / 'prod' / 'mlflow.db'}"
    done = completed_in_process(promoted, "promote", "bc", "--model-name", "clf", "--trial", "1", env={
        "TUNESMITH_STORAGE": f"sqlite:///{promoted / 'tunesmith.db'}", "COLUMNS": "200", "MLFLOW_TRACKING_URI": prod})
    if recorded == "unknown":
        assert done.returncode == 2 and "no MLflow database at" in done.stderr, (done.stdout, done.stderr)
        assert not (promoted / "prod" / "mlflow.db").exists()
        return
    assert done.returncode == 0 and "clf version 1" in done.stdout, (done.stdout, done.stderr)
    assert _champion(prod, "clf") == ("1", None)
    assert _champion(f"sqlite:///{promoted / 'mlflow.db'}", "clf") == ("1", None)  # the other registry's, untouched


@pytest.mark.slow
def test_a_watch_refused_after_a_cycle_repeats_the_cycles_left_not_all_of_them(promoted: Path) -> None:
    """`watch --cycles 3` refused at its second cycle told to run `... --cycles 3`: copied, it ran three more cycles
    where two were left (review-d 15). The refused cycle did nothing, so it is one of those left."""
    from tunesmith.cycle import watch
    from tunesmith.errors import UserInputError

    reports = []
    store = SQLStore(f"sqlite:///{promoted / 'tunesmith.db'}", create=False)
    try:
        with pytest.raises(UserInputError) as refused:
            watch(store, "bc", "shifted.csv", 1.0, cycles=3, model_name="clf", trials=1,
                  on_cycle=lambda report, last: reports.append(report), sleep=lambda seconds: _moved(promoted))
    finally:
        store.close()
    assert len(reports) == 1 and reports[0].outcome.value == "promoted", reports  # the first cycle ran
    fix = " ".join(str(refused.value).split()).split("If it moved, give its new URI: ")[1].split(". To start")[0]
    assert fix.startswith("tunesmith watch bc --data shifted.csv -m clf --trials 1 "), fix  # (--storage: this one)
    assert fix.endswith(" --every 1 --cycles 2 --tracking-uri URI"), fix
