"""`tunesmith drift` given input it cannot use: one line on stderr naming the flag and the fix, exit 2, and with
--json the same bad_input object on stdout as `cycle --json` prints, for a CI step that parses it."""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import pytest
from _cli_input_setup import cli_quiet
from _drift_setup import BuiltOnce, build_once
from helpers import cli_in_folder, tune_in_process

SPEC = """\
name: enc
objective: {metric: roc_auc, direction: maximize}
task:
  estimator: {sklearn.linear_model.LogisticRegression: {max_iter: 1000}}
  data: {path: good.csv, target: y}
  cv: {kind: stratified, folds: 2}
  scoring: roc_auc
space:
  logisticregression__C: {type: float, low: 0.01, high: 10, log: true}
budget: {trials: 1}
"""


def _rows(n: int = 40) -> list[list[str]]:
    return [["city", "x", "z", "y"], *([["Oslo", "Bergen"][i % 2], f"{i / n:.3f}", f"{(i * 7 % n) / n:.3f}",
                                        str(i % 2)] for i in range(n))]


def _write(path: Path, rows: list[list[str]], sep: str = ",") -> Path:
    path.write_text("".join(sep.join(r) + "\n" for r in rows))
    return path


def _tune_enc(root: Path) -> None:
    _write(root / "good.csv", _rows())
    (root / "enc.yaml").write_text(SPEC)
    tune_in_process(root / "enc.yaml", root / "tunesmith.db")


@pytest.fixture(scope="module")
def tuned_enc(tmp_path_factory: pytest.TempPathFactory) -> BuiltOnce:
    """enc tuned once for the module, in this process (the set-up: the commands refusing are the test)."""
    return build_once(tmp_path_factory, "drift_bad_input", _tune_enc)


@pytest.fixture
def tuned(project, tuned_enc: BuiltOnce, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The project folder of experiment enc, laid anew as tuned: good.csv, enc.yaml, its store."""
    root = tuned_enc.fresh()
    monkeypatch.chdir(root)
    monkeypatch.setenv("TUNESMITH_STORAGE", f"sqlite:///{root / 'tunesmith.db'}")
    return dataclasses.replace(project, root=root)


def _here(tuned):  # type: ignore[no-untyped-def]
    """``here(*args)``: `tunesmith ARGS` as tuned.cli runs it, in this process (helpers' cli_in_folder: the
    CLI's own main, exit code, stdout and stderr), for a test's repeated cases and later commands once the command
    it is about refused as a process of its own: each a start-up fewer (a cycle on enc.yaml: ~2 CPU-s of imports)."""
    return functools.partial(cli_in_folder, tuned.root)


def _refused(proc, says: str) -> None:  # type: ignore[no-untyped-def]
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert says in proc.stderr, proc.stderr


@pytest.mark.slow
def test_drift_json_prints_the_bad_input_object_cycle_prints(tuned) -> None:  # type: ignore[no-untyped-def]
    proc = tuned.cli("drift", "enc", "--data", "nope.csv", "--json")
    _refused(proc, "error: --data: file 'nope.csv' does not exist")
    report = json.loads(proc.stdout)
    assert report["outcome"] == "bad_input" and report["exit_code"] == 2 and report["target"] == "enc", report
    assert report["error"] == "--data: file 'nope.csv' does not exist", report
    here = _here(tuned)
    cycle = json.loads(here("cycle", "enc.yaml", "--data", "nope.csv", "--json").stdout)
    assert set(report) == set(cycle), (report, cycle)
    out = here("drift", "enc", "--data", "nope.csv", "--json-out", "drift.json")
    _refused(out, "does not exist")
    assert out.stdout == "" and json.loads((tuned.root / "drift.json").read_text()) == report
    plain = here("drift", "enc", "--data", "nope.csv")
    _refused(plain, "does not exist")
    assert plain.stdout == ""   # no --json: stderr only, as before


@pytest.mark.slow
def test_an_empty_data_or_reference_value_is_named_as_such(tuned) -> None:  # type: ignore[no-untyped-def]
    """`--data "$NEW_ROWS"` with the variable unset said the working folder was a folder, not a file."""
    here = _here(tuned)
    for flag, args, cli in (("--data", ("--data", ""), tuned.cli),
                            ("--reference", ("--data", "good.csv", "--reference", ""), here)):
        proc = cli("drift", "enc", *args)
        _refused(proc, f"error: {flag}: an empty value (an unset variable?)")
        assert "is a folder" not in proc.stderr, proc.stderr
    # retune's refusal of an empty --data as a process of its own: the test below that scikit-learn is not imported
    for command in (("retune", "enc"), ("cycle", "enc.yaml")):
        _refused(here(*command, "--data", ""), "error: --data: an empty value (an unset variable?)")


@pytest.mark.slow
def test_a_semicolon_or_tab_separated_file_is_named_with_the_conversion(tuned) -> None:  # type: ignore[no-untyped-def]
    """It listed the one column "city;x;z;y" the file seemed to have, and which were missing."""
    _write(tuned.root / "semi.csv", _rows(), sep=";")
    _write(tuned.root / "tabs.csv", _rows(), sep="\t")
    here = _here(tuned)
    for name, sep, cli in (("semi.csv", "';'", tuned.cli), ("tabs.csv", "a tab", here)):
        for command in (("drift", "enc"), ("retune", "enc"), ("cycle", "enc.yaml")):
            # retune's refusal of semi.csv as a process of its own: the test below that scikit-learn is not imported
            proc = (here if command[0] == "retune" else cli)(*command, "--data", name)
            _refused(proc, f"error: --data: {name} seems to use {sep} between fields")
            assert "tunesmith reads comma-separated CSV: convert it" in proc.stderr, proc.stderr
            assert "delimiter=" in proc.stderr and "lacks" not in proc.stderr, proc.stderr
    (tuned.root / "semi.yaml").write_text(SPEC.replace("good.csv", "semi.csv").replace("name: enc", "name: semi"))
    _refused(tuned.cli("run", "semi.yaml"), "error: task.data.path: semi.csv seems to use ';' between fields")


@pytest.mark.slow
def test_infinite_values_in_a_feature_are_refused_naming_column_and_count(tuned) -> None:  # type: ignore[no-untyped-def]
    """A quarter of x infinite: the drift check skipped its champion ("Input X contains infinity"), and a re-tune
    recorded an experiment whose every trial failed on it."""
    rows = _rows()
    for i, r in enumerate(rows[1:]):
        r[1] = ("inf", "-inf", r[1], r[1])[i % 4]
    _write(tuned.root / "inf.csv", rows)
    before = cli_quiet(tuned, "ls", "--json")
    # drift's refusal as a process of its own, the same refusal by retune and cycle in this process
    for command, cli in ((("drift", "enc"), tuned.cli), (("retune", "enc"), _here(tuned)),
                         (("cycle", "enc.yaml"), _here(tuned))):
        proc = cli(*command, "--data", "inf.csv")
        _refused(proc, "error: --data: inf.csv column 'x' holds 20 infinite value(s) (row 1: 'inf')")
        assert "contains infinity" not in proc.stderr, proc.stderr
    assert cli_quiet(tuned, "ls", "--json") == before, "nothing recorded"


_IMPORTS_AFTER = """
import runpy, sys
sys.argv = ["tunesmith", *sys.argv[1:]]
try:
    runpy.run_module("tunesmith.cli", run_name="__main__")
finally:
    print("sklearn imported:", "sklearn" in sys.modules)
"""


def test_a_retune_refused_for_its_new_rows_is_refused_before_scikit_learn_is_imported(tuned) -> None:  # type: ignore[no-untyped-def]
    """A re-tune read its parent's spec in full first, its scorer looked up in scikit-learn (3-4 CPU-s of imports),
    then refused a missing, empty or semicolon-separated --data: the rows are checked before the spec's scorer and
    classes now, and the refusal is the same."""
    import subprocess
    import sys

    _write(tuned.root / "semi.csv", _rows(), sep=";")
    for data, says in (("nope.csv", "nope.csv' does not exist"), ("", "an empty value"),
                       ("semi.csv", "semi.csv seems to use ';'")):
        proc = subprocess.run([sys.executable, "-c", _IMPORTS_AFTER, "retune", "enc", "--data", data], cwd=tuned.root,
                              capture_output=True, text=True, timeout=120)
        _refused(proc, says)
        assert proc.stdout.strip() == "sklearn imported: False", proc.stdout


def test_a_retune_of_an_experiment_whose_scorer_is_gone_since_is_refused_naming_it(tuned) -> None:  # type: ignore[no-untyped-def]
    """The parent's spec is read as recorded; the re-tune's own, built from it, is checked in full before anything is
    recorded: a scorer scikit-learn no longer has (here renamed in the store) is refused, naming task.scoring."""
    import sqlite3

    with sqlite3.connect(tuned.db) as conn:
        spec = json.loads(conn.execute("SELECT spec FROM experiments WHERE name = 'enc'").fetchone()[0])
        spec["task"]["scoring"] = spec["objective"][0]["metric"] = "roc_aucc"
        conn.execute("UPDATE experiments SET spec = ? WHERE name = 'enc'", (json.dumps(spec),))
    before = cli_quiet(tuned, "ls", "--json")
    _refused(tuned.cli("retune", "enc", "--data", "good.csv"),
             "error: task.scoring: unknown scorer 'roc_aucc'; did you mean 'roc_auc'?")
    assert cli_quiet(tuned, "ls", "--json") == before, "nothing recorded"
