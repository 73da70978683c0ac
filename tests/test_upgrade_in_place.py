"""An SRE upgrades tunesmith in place over a store an older release made (a new user's walk, X): the spec files the
team's nightly `cycle spec.yaml` reads are unchanged, and are no edit of their recorded experiments whatever a
migration wrote into those or a default changed since."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
