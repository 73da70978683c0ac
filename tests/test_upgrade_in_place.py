"""An SRE upgrades tunesmith in place over a store an older release made (a new user's walk, X): the spec files the
team's nightly `cycle spec.yaml` reads are unchanged, and are no edit of their recorded experiments whatever a
migration wrote into those or a default changed since."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import completed_in_process, specs_migrated_from

GROUPED: dict[str, Any] = {
    "name": "grouped", "objective": {"metric": "accuracy", "direction": "maximize"},
    "task": {"estimator": "sklearn.linear_model.LogisticRegression",
             "data": {"generate": {"kind": "groups", "n_rows": 200}},
             "cv": {"kind": "group", "folds": 3}, "holdout": {"fraction": 0.2}, "scoring": "accuracy", "latency": None},
    "space": {"logisticregression__C": {"type": "float", "low": 0.1, "high": 10, "log": True}},
    "budget": {"trials": 2}, "executor": {"kind": "inline"}, "seed": 0}
# the README's drift example as a release of 2026-12-03 recorded it: every key written, spread at its default then
DRIFTING: dict[str, Any] = {
    **GROUPED, "name": "drifting",
    "task": {**GROUPED["task"], "data": {"sklearn": "breast_cancer"}, "cv": {"kind": "stratified", "folds": 3}},
    "drift": {"retune": {"trials": 2}}}
DRIFTING_RECORDED = {**DRIFTING, "drift": {"retune": {"trials": 2, "top_k": 5, "prior": "transfer", "spread": False}}}


def _upgraded_with_files(tmp_path: Path) -> str:
    """A store at revision 0005 (before 0006 wrote ``fraction_of``) holding both experiments, opened (upgraded) by
    this tunesmith; their spec files beside it, as written then."""
    url = f"sqlite:///{tmp_path / 'tunesmith.db'}"
    specs_migrated_from("0005", url, [GROUPED, DRIFTING_RECORDED])
    for spec in (GROUPED, DRIFTING):
        (tmp_path / f"{spec['name']}.yaml").write_text(yaml.safe_dump(spec))
    return url


def test_an_unchanged_spec_file_is_no_edit_of_what_a_migration_wrote_or_a_changed_default(tmp_path: Path) -> None:
    """Migration 0006 writes ``holdout.fraction_of: groups`` into a grouped experiment, and ``drift.retune.spread``
    defaulted to false until 2026-12-04: `diff NAME FILE` said "removed (was groups)" and "false -> true", exit 1,
    and `cycle FILE` (and `watch`, `run`) refused the unchanged file as an edit."""
    url = _upgraded_with_files(tmp_path)
    for name in ("grouped", "drifting"):
        diff = completed_in_process(tmp_path, "diff", name, f"{name}.yaml", "--storage", url)
        assert (diff.returncode, diff.stdout, diff.stderr) == (0, "no differences\n", ""), (name, diff)
        run = completed_in_process(tmp_path, "run", f"{name}.yaml", "--storage", url)
        assert run.returncode == 2 and "already exists" in run.stderr, run
        assert "differs" not in run.stderr, run.stderr


def test_a_changed_default_written_into_a_file_is_an_edit_that_says_the_default_changed(tmp_path: Path) -> None:
    """A file that writes the new default (or any value) is an edit all the same; the line says the default changed
    instead of leaving the reader to think someone edited the recorded value."""
    url = _upgraded_with_files(tmp_path)
    (tmp_path / "drifting.yaml").write_text(yaml.safe_dump({**DRIFTING, "drift": {"retune": {
        "trials": 2, "spread": True}}}))
    diff = completed_in_process(tmp_path, "diff", "drifting", "drifting.yaml", "--storage", url)
    assert diff.returncode == 1, diff
    assert diff.stdout.splitlines()[0] == ("drift.retune.spread: false -> true (false was its default until "
                                           "2026-12-04, true since)"), diff.stdout
    (tmp_path / "grouped.yaml").write_text(yaml.safe_dump({**GROUPED, "task": {
        **GROUPED["task"], "holdout": {"fraction": 0.2, "fraction_of": "rows"}}}))
    diff = completed_in_process(tmp_path, "diff", "grouped", "grouped.yaml", "--storage", url)
    assert diff.returncode == 1 and diff.stdout.startswith("task.holdout.fraction_of: groups -> rows"), diff


def _revision(url: str) -> str:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SELECT version_num FROM alembic_version")).scalar())
    finally:
        engine.dispose()


def _old_store(tmp_path: Path) -> str:
    """A store as a tunesmith of revision 0005 left it, one experiment in it."""
    from helpers import migrate_to
    from sqlalchemy import create_engine, text

    url = f"sqlite:///{tmp_path / 'tunesmith.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        migrate_to(conn, "0005")
        conn.execute(text("INSERT INTO experiments (name, spec, status, created_at, updated_at, next_number) "
                          "VALUES ('old', :spec, 'completed', 1.0, 2.0, 0)"), {"spec": json.dumps({**GROUPED,
                                                                                                  "name": "old"})})
    engine.dispose()
    return url


def test_a_host_told_never_to_migrate_refuses_an_older_store_until_it_is_upgraded_on_purpose(tmp_path: Path) -> None:
    """Any command that opens a store, `ls` and a Prometheus scrape's `metrics` included, upgraded a shared store one
    way, locking every host still on the older release out of it. Under TUNESMITH_MIGRATE=never such a command is
    refused (exit 2, one line: the store's revision, this tunesmith's, the fix), nothing written; `tunesmith store
    upgrade` upgrades it on purpose and says so; a new store is still made by `run`."""
    from tunesmith.storage.schema import HEAD_REVISION

    url = _old_store(tmp_path)
    never = {"TUNESMITH_MIGRATE": "never", "TUNESMITH_STORAGE": url}
    listed = subprocess.run([sys.executable, "-m", "tunesmith.cli", "ls"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, env={**os.environ, **never})
    assert listed.returncode == 2 and len(listed.stderr.splitlines()) == 1, listed
    assert ("is at schema revision '0005', older than the " f"'{HEAD_REVISION}' this tunesmith needs"
            in listed.stderr and "TUNESMITH_MIGRATE=never" in listed.stderr
            and "tunesmith store upgrade" in listed.stderr), listed.stderr
    scraped = completed_in_process(tmp_path, "metrics", "old", env=never)
    assert scraped.returncode == 2 and scraped.stderr == listed.stderr, scraped
    assert _revision(url) == "0005"

    upgraded = completed_in_process(tmp_path, "store", "upgrade", env=never)
    assert upgraded.returncode == 0 and upgraded.stderr == "", upgraded
    assert upgraded.stdout.startswith(f"upgraded the store at {url} from schema revision '0005' to "
                                      f"'{HEAD_REVISION}'"), upgraded.stdout
    assert _revision(url) == HEAD_REVISION
    assert completed_in_process(tmp_path, "ls", env=never).returncode == 0
    again = completed_in_process(tmp_path, "store", "upgrade", env=never)
    assert again.returncode == 0 and "nothing to upgrade" in again.stdout, again

    (tmp_path / "new.yaml").write_text(yaml.safe_dump({**GROUPED, "name": "new"}))
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    made = completed_in_process(tmp_path, "run", "new.yaml", "-q", env={**never, "TUNESMITH_STORAGE": fresh})
    assert made.returncode == 0, made
    bad = completed_in_process(tmp_path, "ls", env={**never, "TUNESMITH_MIGRATE": "no"})
    assert bad.returncode == 2 and bad.stderr.startswith("error: TUNESMITH_MIGRATE: 'no' is not"), bad


def test_the_python_api_warns_as_it_upgrades_a_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`open_experiment` ("read only") upgraded a team's store without a word; it follows TUNESMITH_MIGRATE too."""
    import tunesmith
    from tunesmith.errors import UpgradeRefused
    from tunesmith.storage import StoreUpgraded

    url = _old_store(tmp_path)
    monkeypatch.setenv("TUNESMITH_MIGRATE", "never")
    with pytest.raises(UpgradeRefused, match="is at schema revision '0005'"):
        tunesmith.open_experiment("old", storage=url)
    monkeypatch.delenv("TUNESMITH_MIGRATE")
    with pytest.warns(StoreUpgraded, match="from schema revision '0005'.*restore a backup"):
        assert tunesmith.open_experiment("old", storage=url).name == "old"


def test_a_cycle_told_never_to_migrate_leaves_an_older_store_as_it_is(tmp_path: Path) -> None:
    """`cycle spec.yaml` whose spec fails a check meant for specs given anew looks the experiment up in the store
    first (a recorded one is excused): that look-up upgraded the store under TUNESMITH_MIGRATE=never too. It is
    refused there as every command is, and the store stays at its revision."""
    from tunesmith.testing.drift_data import shifted_split

    # `${x}` in a command: refused in a spec given anew, recorded by an earlier tunesmith
    spec = {"name": "cmd", "objective": {"metric": "loss", "direction": "minimize"},
            "trial": {"command": "echo ${x}; echo '{\"loss\": 0.5}'"},
            "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
            "budget": {"trials": 1}, "executor": {"kind": "process", "workers": 1}, "seed": 0}
    shifted_split(tmp_path)
    (tmp_path / "cmd.yaml").write_text(yaml.safe_dump(spec))
    url = f"sqlite:///{tmp_path / 'tunesmith.db'}"
    from helpers import migrate_to
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        migrate_to(conn, "0005")
        conn.execute(text("INSERT INTO experiments (name, spec, status, created_at, updated_at, next_number) "
                          "VALUES ('cmd', :s, 'completed', 1.0, 2.0, 0)"), {"s": json.dumps(spec)})
    engine.dispose()
    cycled = completed_in_process(tmp_path, "cycle", "cmd.yaml", "--data", "reference.csv", "--reference",
                                  "reference.csv", env={"TUNESMITH_MIGRATE": "never", "TUNESMITH_STORAGE": url})
    assert cycled.returncode == 2 and "TUNESMITH_MIGRATE=never" in cycled.stderr, cycled
    assert _revision(url) == "0005"
