"""What a drift check compares the new rows with: never an overwritten file passed off as what the experiment was
tuned on, and ``--reference`` on a task experiment keeps its label a target and its champion check."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
import yaml

from tunesmith.testing.drift_data import iid_split, shifted_split

from test_cycle import SPEC as CYCLE_SPEC
from _drift_setup import BuiltOnce, build_once
from helpers import cli_in_folder, cli_in_process, tune_in_process


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tunesmith.cli", *args], cwd=root, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "TUNESMITH_STORAGE": f"sqlite:///{root / 'tunesmith.db'}",
                                            "COLUMNS": "200"})


def _events(root: Path) -> int:
    with closing(sqlite3.connect(root / "tunesmith.db")) as db:
        return int(db.execute("select count(*) from events").fetchone()[0])


def _first_cycle(root: Path, data: str) -> None:
    """`tunesmith cycle bc.yaml --data DATA --trials 2` from ``root``, in this process: the set-up that makes
    bc-retune-1 the champion (its re-tune records DATA as its own rows); the commands after it are the test."""
    code, out, err = cli_in_process("cycle", "bc.yaml", "--data", data, "--trials", "2", "--json",
                                    "--storage", f"sqlite:///{root / 'tunesmith.db'}")
    assert code == 0 and json.loads(out)["champion"] == "bc-retune-1", out + err


def _tune_bc(root: Path) -> None:
    shifted_split(root)
    iid_split(root)
    (root / "bc.yaml").write_text(yaml.safe_dump({**CYCLE_SPEC, "budget": {"trials": 2}}))
    tune_in_process(root / "bc.yaml", root / "tunesmith.db")


@pytest.fixture(scope="module")
def tuned_bc(tmp_path_factory: pytest.TempPathFactory) -> BuiltOnce:
    """bc (a LogisticRegression on breast_cancer's smaller tumours, reference.csv), 2 trials: tuned in this process
    once for the module (the set-up, not what is tested), its folder laid anew as built for each test."""
    return build_once(tmp_path_factory, "drift_reference", _tune_bc)


@pytest.fixture
def project(tuned_bc: BuiltOnce, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tuned_bc.fresh()
    monkeypatch.chdir(root)   # the tests' commands run from here
    return root


@pytest.mark.slow
def test_a_retune_on_a_file_overwritten_since_is_refused_not_compared_with_itself(project: Path) -> None:
    """The SRE walkthrough: `cycle --data latest.csv` daily, the same path each day. The re-tune's task data is that
    path; the next day's rows overwrote it, and the drift check compared them with themselves (no_drift, rc 0)."""
    shutil.copy(project / "shifted.csv", project / "latest.csv")
    _first_cycle(project, "latest.csv")
    shutil.copy(project / "iid_current.csv", project / "latest.csv")
    events_before = _events(project)

    # the cycle's refusal runs as a process of its own, as drift's below does; watch's same refusal and the commands
    # checked after them run in this process (cli_in_folder: the CLI's own main, exit code and output), each a
    # start-up importing scikit-learn fewer
    for command, cli in ((("cycle", "bc.yaml"), _cli), (("watch", "bc.yaml", "--every", "1s", "--cycles", "1"),
                                                        cli_in_folder)):
        proc = cli(project, *command, "--data", "latest.csv", "--trials", "2", "--json")
        assert proc.returncode == 2, (command, proc.stdout, proc.stderr)
        said = proc.stderr + proc.stdout
        assert "latest.csv" in said and "bc-retune-1" in said and "content hash" in said and "rows" in said, said
        assert "--reference" in said and "own name" in said and "Traceback" not in said, said
    assert _events(project) == events_before   # nothing recorded, not even the cycle's skipped tune step

    # the refusal's fix works for a cycle too: its own file overwritten, --reference serves
    given = cli_in_folder(project, "cycle", "bc", "--data", "latest.csv", "--reference", "shifted.csv", "--trials",
                          "2", "--json")
    assert given.returncode == 0 and json.loads(given.stdout)["steps"][0]["detail"]["reference_from"] == "given", \
        given.stdout + given.stderr
    alone = _cli(project, "drift", "bc-retune-1", "--data", "latest.csv", "--json")
    assert alone.returncode == 2 and "latest.csv" in alone.stderr and "Traceback" not in alone.stderr
    # the rows it was tuned on, given: the shift from them is found, and the champion is checked
    given = cli_in_folder(project, "drift", "bc-retune-1", "--data", "latest.csv", "--reference", "shifted.csv",
                          "--json")
    assert given.returncode == 4, given.stdout + given.stderr
    report = json.loads(given.stdout)
    assert report["drift"] and report["champion"] is not None


@pytest.mark.slow
def test_a_cycle_compares_a_retune_champion_with_its_own_rows_whatever_reference_says(project: Path) -> None:
    """README and --help: a re-tune's own file, whatever `--reference` says (it serves a first tuning). It was
    compared with --reference, the first tuning's rows, finding again the drift it was re-tuned for."""
    _first_cycle(project, "shifted.csv")
    proc = _cli(project, "cycle", "bc", "--data", "shifted.csv", "--reference", "reference.csv", "--trials", "2",
                "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    drift = json.loads(proc.stdout)["steps"][0]
    assert drift["detail"]["reference_from"] == "task", drift
    assert drift["detail"]["reference"] == str((project / "shifted.csv").resolve()), drift
    assert "the task data of bc-retune-1" in drift["why"], drift
    assert any("--reference" in n and "not used" in n for n in drift["detail"]["notes"]), drift


@pytest.mark.slow
def test_a_path_re_pointed_at_each_days_file_records_the_file_not_the_link(project: Path) -> None:
    """The walk: README's `watch churn.yaml --data new_rows.csv --every 1d` stopped at its second cycle, exit 2,
    the re-tune's recorded file being the one path each day's rows came through. Re-pointed as a symlink at each
    day's own file, the re-tune records that file, and the next cycle compares the next day's rows with it."""
    (project / "rows").mkdir()
    shutil.copy(project / "shifted.csv", project / "rows" / "day1.csv")
    shutil.copy(project / "iid_current.csv", project / "rows" / "day2.csv")
    (project / "latest.csv").symlink_to(project / "rows" / "day1.csv")
    _first_cycle(project, "latest.csv")
    (project / "latest.csv").unlink()
    (project / "latest.csv").symlink_to(project / "rows" / "day2.csv")
    second = _cli(project, "cycle", "bc.yaml", "--data", "latest.csv", "--trials", "2", "--json")
    assert second.returncode == 0, second.stdout + second.stderr
    report = json.loads(second.stdout)
    assert report["checked"] == "bc-retune-1", report  # compared with day1.csv, the re-tune's own rows
    drift = next(step for step in report["steps"] if step["step"] == "drift")
    assert drift["detail"]["reference"].endswith("/rows/day1.csv"), drift["detail"]
    assert drift["detail"]["data"].endswith("/rows/day2.csv") and drift["detail"]["drift"], drift["detail"]


@pytest.mark.slow
def test_reference_on_a_task_experiment_tests_the_label_as_target_and_checks_the_champion(project: Path) -> None:
    """`--reference` on a task experiment dropped the champion check (champion and champion_skipped null) and
    tested the label as one more feature, in the features' Bonferroni share."""
    plain = json.loads(cli_in_folder(project, "drift", "bc", "--data", "shifted.csv", "--json").stdout)  # to compare
    proc = _cli(project, "drift", "bc", "--data", "shifted.csv", "--reference", "reference.csv", "--json")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    roles = {c["name"]: c["role"] for c in report["columns"]}
    assert roles["label"] == "target" and report["target_drift"]
    assert report["champion"] is not None and report["champion"]["degraded"]
    assert report["champion"]["current"] == pytest.approx(plain["champion"]["current"])
    assert report["reference_from"] == "given"


@pytest.mark.slow
def test_the_reference_is_the_data_the_last_trials_ran_on_when_it_changed_mid_experiment(project: Path) -> None:
    """A task's own file edited since it ran is refused as the reference (rows and hash said); once a resume has
    run on the edited file (a ``data_changed`` event holds its fingerprint), that is the data it was tuned on."""
    lines = (project / "reference.csv").read_text().splitlines()
    (project / "reference.csv").write_text("\n".join(lines[:-5]) + "\n")
    refused = _cli(project, "drift", "bc", "--data", "shifted.csv", "--json")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert json.loads(refused.stdout)["outcome"] == "bad_input", refused.stdout  # --json: cycle's refusal object
    assert "reference.csv" in refused.stderr and "'bc'" in refused.stderr and "Traceback" not in refused.stderr
    assert f"{len(lines) - 1} rows then, {len(lines) - 6} now" in refused.stderr and "content hash" in refused.stderr

    # records the change, later trials running on it: the set-up of what drift says next, in this process
    assert cli_in_folder(project, "resume", "bc", "-q").returncode == 0
    checked = cli_in_folder(project, "drift", "bc", "--data", "shifted.csv", "--json")   # a later command
    assert checked.returncode == 4, checked.stdout + checked.stderr
    assert json.loads(checked.stdout)["rows"]["reference"] == len(lines) - 6


@pytest.mark.slow
def test_a_data_file_gone_since_is_named_and_reference_stands_in_for_it(project: Path) -> None:
    """A store copied to another machine, or its data archived: the task's own file is missing. `--reference` stands
    in for it as it does for a changed file (it was refused, naming the old path, with no word of --reference)."""
    (project / "archive").mkdir()
    shutil.move(project / "reference.csv", project / "archive" / "reference.csv")
    proc = cli_in_folder(project, "drift", "bc", "--data", "iid_current.csv")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "--reference" in proc.stderr and "reference.csv" in proc.stderr and "no longer exists" in proc.stderr
    proc = cli_in_folder(project, "drift", "bc", "--data", "iid_current.csv", "--reference",
                         "archive/reference.csv", "--json")
    assert proc.returncode in (0, 4), proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["champion"] is not None, report   # refit on --reference
    assert any("no longer exists" in note for note in report["notes"]), report["notes"]
    proc = cli_in_folder(project, "cycle", "bc", "--data", "iid_current.csv", "--reference",
                         "archive/reference.csv", "--trials", "2", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr  # (the data the module's bc was tuned on is not i.i.d.'s)
    assert json.loads(proc.stdout)["steps"][0]["detail"]["reference_from"] == "given", proc.stdout
