"""`tunesmith retune` refuses new rows it could not tune on before anything is recorded (exit 2, naming --data)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tunesmith.errors import UserInputError
from tunesmith.events import RunListener
from tunesmith.retune import plan_retune
from tunesmith.runner import run_experiment
from tunesmith.spec.loader import load_spec
from tunesmith.storage.sql import SQLStore
from tunesmith.testing.drift_data import shifted_split

from _drift_setup import BuiltOnce, build_once
from helpers import cli_in_folder, cli_in_process, tune_in_process

from test_cycle import SPEC as CYCLE_SPEC

SPEC = {**CYCLE_SPEC, "budget": {"trials": 2}}   # a LogisticRegression on breast_cancer rows, scored by ROC AUC


def _tune_bc(root: Path) -> None:
    shifted_split(root)
    (root / "bc.yaml").write_text(yaml.safe_dump(SPEC))
    store = SQLStore(f"sqlite:///{root / 'tunesmith.db'}")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        run_experiment(load_spec(root / "bc.yaml"), store, RunListener())
    finally:
        os.chdir(cwd)
        store.close()


@pytest.fixture(scope="module")
def tuned_bc(tmp_path_factory: pytest.TempPathFactory) -> BuiltOnce:
    """Tuned once for the module (the set-up, not what is tested); its folder laid anew as built for each test."""
    return build_once(tmp_path_factory, "retune_input", _tune_bc)


@pytest.fixture
def folder(tuned_bc: BuiltOnce) -> Path:
    """The folder of experiment ``bc``, as tuned: bc.yaml, reference.csv, shifted.csv, tunesmith.db."""
    return tuned_bc.fresh()


@pytest.fixture
def tuned(folder: Path) -> Iterator[SQLStore]:
    """Experiment ``bc`` tuned on reference.csv; shifted.csv beside it holds new rows of both classes."""
    store = SQLStore(f"sqlite:///{folder / 'tunesmith.db'}")
    try:
        yield store
    finally:
        store.close()


def test_rows_of_one_class_are_refused_before_a_retune_is_recorded(tuned: SQLStore, folder: Path) -> None:
    """Every trial of such a re-tune failed (exit 1), and the failed re-tune was recorded and linked."""
    header, *rows = (folder / "shifted.csv").read_text().splitlines()
    (folder / "one_class.csv").write_text("\n".join([header, *(r.rsplit(",", 1)[0] + ",1" for r in rows)]) + "\n")
    events_before = len(tuned.events(tuned.experiment("bc").id))
    proc = subprocess.run([sys.executable, "-m", "tunesmith.cli", "retune", "bc", "--data", "one_class.csv", "-q"],
                          cwd=folder, capture_output=True, text=True, timeout=240,
                          env={**os.environ, "TUNESMITH_STORAGE": f"sqlite:///{folder / 'tunesmith.db'}"})
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "--data: every row of one_class.csv has the same value in the label column 'label'" in proc.stderr
    assert "at least two classes" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert [e.name for e in tuned.experiments()] == ["bc"], "nothing recorded"
    parent = tuned.experiment("bc")
    assert "retunes" not in parent.attributes and len(tuned.events(parent.id)) == events_before
    with pytest.raises(UserInputError, match="every row of one.csv has the same value"):
        (folder / "one.csv").write_text("\n".join([header, *(r.rsplit(",", 1)[0] + ",0" for r in rows)]))
        plan_retune(tuned, "bc", "one.csv", cwd=folder)


def test_too_few_rows_of_a_class_for_the_folds_are_refused_before_a_retune_is_recorded(tuned: SQLStore,
                                                                                      folder: Path) -> None:
    """Two classes, but 3 rows of one for stratified folds after the holdout: some folds held none of it, and
    every trial failed on a fold ROC AUC cannot score (scikit-learn only warns); the re-tune was recorded."""
    header, *rows = (folder / "shifted.csv").read_text().splitlines()
    ones, zeros = [r for r in rows if r.endswith(",1")], [r for r in rows if r.endswith(",0")]
    (folder / "few.csv").write_text("\n".join([header, *ones, *zeros[:3]]) + "\n")
    proc = subprocess.run([sys.executable, "-m", "tunesmith.cli", "retune", "bc", "--data", "few.csv", "-q"],
                          cwd=folder, capture_output=True, text=True, timeout=240,
                          env={**os.environ, "TUNESMITH_STORAGE": f"sqlite:///{folder / 'tunesmith.db'}"})
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "the least populated class, '0', has" in proc.stderr and "use fewer folds" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert [e.name for e in tuned.experiments()] == ["bc"], "nothing recorded"


def test_an_old_record_without_fingerprint_columns_pins_the_features_of_its_file(tuned: SQLStore,
                                                                                folder: Path) -> None:
    """Its features are the old file's header but the label (read without loading the old rows); a column the new
    file adds is not a feature."""
    parent = tuned.experiment("bc")
    tuned.set_attributes(parent.id, {"data_fingerprint": {}}, now=1.0)
    header, *rows = (folder / "shifted.csv").read_text().splitlines()
    (folder / "wider.csv").write_text("\n".join([header + ",row_id", *(f"{r},{n}" for n, r in enumerate(rows))]))
    plan = plan_retune(tuned, "bc", "wider.csv", cwd=folder)
    assert plan.spec.task is not None and plan.spec.task.data.features == header.split(",")[:-1]
    assert plan.attributes["lineage"]["ignored_columns"] == ["row_id"]


def test_a_folder_given_as_data_is_named_a_folder_not_a_missing_file(tuned: SQLStore, folder: Path) -> None:
    """`--data data/` (the folder, not the file in it) said "file ... does not exist", for a folder that does."""
    (folder / "rows").mkdir()
    env = {**os.environ, "TUNESMITH_STORAGE": f"sqlite:///{folder / 'tunesmith.db'}"}
    for command in ("drift", "retune", "cycle"):  # drift's refusal a process of its own, the others' in this process
        proc = (subprocess.run([sys.executable, "-m", "tunesmith.cli", command, "bc", "--data", "rows"], cwd=folder,
                               capture_output=True, text=True, timeout=240, env=env) if command == "drift"
                else cli_in_folder(folder, command, "bc", "--data", "rows"))
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, (command, proc.stderr)
        assert "--data: " in proc.stderr and "is a folder, not a file; give the CSV or Parquet file in it" \
            in proc.stderr, (command, proc.stderr)
    assert [e.name for e in tuned.experiments()] == ["bc"], "nothing recorded"


def test_show_counts_only_the_prior_best_a_small_budget_re_evaluated(project) -> None:
    """Five prior best are queued first; a re-tune of 2 trials re-evaluates two of them, and `show` said five. And
    random search takes no prior mean, which `show` said it did."""
    from tunesmith.retune import retune

    # the set-up (`run`, `retune`) in this process, from the project folder: two CLI start-ups fewer
    store = SQLStore(project.storage)
    try:
        run_experiment(load_spec(project.write_spec(project.spec(name="quad", budget={"trials": 6}))), store)
        project.write("rows.csv", "a,b\n1,2\n")  # trial code gets the path in $TUNESMITH_DATA; quadratic ignores it
        retune(store, "quad", "rows.csv", trials=2)
    finally:
        store.close()
    shown = " ".join(project.cli("show", "quad-retune-1", check=True).stdout.split())
    assert "warm-started: 2 of the 5 prior best re-evaluated first" in shown, shown
    assert "no other prior trial used (strategy random takes none here; see drift.retune.prior)" in shown, \
        "it said: 6 prior trials as the model's prior mean"
    assert len(project.show("quad-retune-1")["warm_start"]["first"]) == 5, "the JSON keeps what was queued"


TRIAL_CODE = '''
import os


def loss(config, trial):
    # what a user's trial code does on a re-tune: read the rows the README says it is handed
    path = os.environ.get("TUNESMITH_DATA", "old.csv")
    with open(path) as f:
        rows = len(f.read().splitlines()) - 1
    return {"loss": (config["x"] - 0.5) ** 2, "rows": float(rows)}
'''


@pytest.mark.parametrize("kind", ["process", "inline"])
def test_a_retune_of_trial_code_hands_the_function_its_new_data(tmp_path: Path, kind: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "objective.py").write_text(TRIAL_CODE)
    (tmp_path / "old.csv").write_text("a\n1\n2\n")
    (tmp_path / "new.csv").write_text("a\n1\n2\n3\n4\n5\n")
    (tmp_path / "fn.yaml").write_text(yaml.safe_dump({
        "name": "fn", "objective": {"metric": "loss", "direction": "minimize"},
        "space": {"x": {"type": "float", "low": 0, "high": 1}}, "trial": {"function": "objective.py:loss"},
        "budget": {"trials": 2}, "executor": {"kind": kind}, "seed": 0}))
    env = {**os.environ, "TUNESMITH_STORAGE": f"sqlite:///{tmp_path / 'tunesmith.db'}"}
    env.pop("TUNESMITH_DATA", None)
    monkeypatch.delenv("TUNESMITH_DATA", raising=False)
    tune_in_process(tmp_path / "fn.yaml", tmp_path / "tunesmith.db")   # the set-up: `run fn.yaml`, in this process
    proc = subprocess.run([sys.executable, "-m", "tunesmith.cli", "retune", "fn", "--data", "new.csv", "--trials", "2",
                           "-q"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    store = SQLStore(env["TUNESMITH_STORAGE"])
    try:
        rows = {e.name: [t.metrics.get("rows") for t in store.trials(e.id)] for e in store.experiments()}
    finally:
        store.close()
    assert rows == {"fn": [2.0, 2.0], "fn-retune-1": [5.0, 5.0]}


def test_trial_env_is_set_while_an_inline_function_trial_runs_and_put_back_after(tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import tunesmith

    (tmp_path / "objective.py").write_text(TRIAL_CODE)
    (tmp_path / "new.csv").write_text("a\n1\n2\n3\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TUNESMITH_DATA", raising=False)
    result = tunesmith.run({"name": "env", "objective": {"metric": "loss", "direction": "minimize"},
                            "space": {"x": {"type": "float", "low": 0, "high": 1}},
                            "trial": {"function": "objective.py:loss", "env": {"TUNESMITH_DATA": "new.csv"}},
                            "budget": {"trials": 2}, "executor": {"kind": "inline"}},
                           storage=f"sqlite:///{tmp_path / 'env.db'}")
    assert [t.metrics["rows"] for t in result.trials] == [3.0, 3.0]
    assert "TUNESMITH_DATA" not in os.environ


def test_the_data_path_a_retune_hands_trial_code_is_not_hidden_as_a_secret(tmp_path: Path) -> None:
    # trial.env values are hidden from reasons as secrets; the data path tunesmith itself puts there is not one
    from tunesmith.redaction import secrets_of

    assert secrets_of({"TUNESMITH_DATA": str(tmp_path / "new.csv"), "API_TOKEN": "abcdefgh1234"}, {}) == [
        "abcdefgh1234"]
    # only that one: a user's own TUNESMITH_-named value in trial.env is hidden like any other
    assert secrets_of({"TUNESMITH_TOKEN": "s3cr3t-value"}, {}) == ["s3cr3t-value"]


def _retune_in_process(store: SQLStore, folder: Path, name: str) -> None:
    """`tunesmith retune NAME --data shifted.csv --trials 1` from ``folder``, in this process (a test's set-up)."""
    from tunesmith.retune import retune

    cwd = os.getcwd()
    os.chdir(folder)   # the re-tune's workdir goes here, as the CLI's from this folder does
    try:
        retune(store, name, "shifted.csv", trials=1)
    finally:
        os.chdir(cwd)


def test_a_retune_after_its_predecessor_was_deleted_takes_the_next_name(tuned: SQLStore, folder: Path) -> None:
    """`delete bc-retune-1` left its trial folders; the next retune took the freed name, was refused for those
    folders (exit 2) and, in a cycle, was refused so on every run after recording its drift step."""
    env = {**os.environ, "TUNESMITH_STORAGE": f"sqlite:///{folder / 'tunesmith.db'}"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "tunesmith.cli", *args], cwd=folder, env=env,
                              capture_output=True, text=True, timeout=240)

    # the set-up, a first re-tune and its delete, in this process; the re-tune after the delete is the CLI's, and the
    # refusal of the name it freed, a later command, in this process again (cli_in_folder)
    _retune_in_process(tuned, folder, "bc")
    assert cli_in_folder(folder, "delete", "bc-retune-1", "--yes").returncode == 0
    done = cli("retune", "bc", "--data", "shifted.csv", "--trials", "1", "-q")
    assert done.returncode == 0, done.stderr
    assert [e.name for e in tuned.experiments()] == ["bc", "bc-retune-2"]
    named = cli_in_folder(folder, "retune", "bc", "--data", "shifted.csv", "--trials", "1", "--name", "bc-retune-1",
                          "-q")
    assert named.returncode == 2 and "bc-retune-1 already holds trial folders" in named.stderr


def test_two_specs_sharing_a_workdir_are_told_whose_folders_they_are(tmp_path: Path) -> None:
    base = {"objective": {"metric": "loss", "direction": "minimize"}, "workdir": "runs",
            "space": {"x": {"type": "float", "low": 0, "high": 1}}, "trial": {"function": "objective.py:loss"},
            "budget": {"trials": 1}, "executor": {"kind": "inline"}}
    (tmp_path / "objective.py").write_text(TRIAL_CODE)
    (tmp_path / "old.csv").write_text("a\n1\n")
    for name in ("a", "b"):
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump({"name": name, **base}))
    env = {**os.environ, "TUNESMITH_STORAGE": f"sqlite:///{tmp_path / 'tunesmith.db'}"}
    tune_in_process(tmp_path / "a.yaml", tmp_path / "tunesmith.db")   # the set-up: a's trial folders in runs/
    assert (tmp_path / "runs" / "trial-00000").is_dir()
    refused = subprocess.run([sys.executable, "-m", "tunesmith.cli", "run", "b.yaml", "-q"], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=240)
    assert refused.returncode == 2
    assert "runs already holds trial folders (trial-00000) of experiment 'a', which sets the same workdir" in \
        " ".join(refused.stderr.split())
    assert "rm -r" not in refused.stderr


def test_deleting_a_retune_that_has_retunes_is_refused_and_a_deleted_one_is_unnamed(tuned: SQLStore,
                                                                                   folder: Path) -> None:
    """`delete bc-retune-1` of a middle re-tune went through silently: `show bc` still said "re-tuned as:
    bc-retune-1", bc-retune-2 a "re-tune of bc-retune-1", and the next cycle checked the root."""
    env = {**os.environ, "TUNESMITH_STORAGE": f"sqlite:///{folder / 'tunesmith.db'}", "COLUMNS": "200"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "tunesmith.cli", *args], cwd=folder, env=env,
                              capture_output=True, text=True, timeout=240)

    def shown(name: str) -> str:  # a read-back of the lineage the deletes left, in this process
        code, out, err = cli_in_process("show", name, "--storage", env["TUNESMITH_STORAGE"])
        assert code == 0, err
        return out

    _retune_in_process(tuned, folder, "bc")   # the set-up in this process: two CLI start-ups fewer
    _retune_in_process(tuned, folder, "bc-retune-1")
    refused = cli("delete", "bc-retune-1", "--yes")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
    assert "has re-tune(s) bc-retune-2" in refused.stderr and "tunesmith delete bc-retune-2 --yes" in refused.stderr
    assert [e.name for e in tuned.experiments()] == ["bc", "bc-retune-1", "bc-retune-2"]
    # the deletes that go through, after the refusal, in this process (cli_in_folder)
    assert cli_in_folder(folder, "delete", "bc-retune-2", "--yes").returncode == 0
    assert tuned.experiment("bc-retune-1").attributes["retunes"] == []
    assert "re-tuned as" not in shown("bc-retune-1")
    assert cli_in_folder(folder, "delete", "bc-retune-1", "--yes").returncode == 0
    assert tuned.experiment("bc").attributes["retunes"] == [] and "re-tuned as" not in shown("bc")


def test_labels_the_experiment_never_had_are_refused_by_retune_and_cycle(tuned: SQLStore, folder: Path) -> None:
    """0/1 recoded as malignant/benign: the cycle re-tuned on them and promoted the re-tune, its ROC AUC beating the
    champion's 0.003 (the champion scored labels it never saw). The model's outputs change: a new experiment."""
    from tunesmith.cycle import PromotionVerdict, run_cycle

    header, *rows = (folder / "shifted.csv").read_text().splitlines()
    names = {"0": "malignant", "1": "benign"}
    (folder / "strlabel.csv").write_text("\n".join([header, *(f"{r.rsplit(',', 1)[0]},{names[r.rsplit(',', 1)[1]]}"
                                                                 for r in rows)]) + "\n")
    events_before = len(tuned.events(tuned.experiment("bc").id))
    proc = subprocess.run([sys.executable, "-m", "tunesmith.cli", "retune", "bc", "--data", "strlabel.csv", "-q"],
                          cwd=folder, capture_output=True, text=True, timeout=240,
                          env={**os.environ, "TUNESMITH_STORAGE": f"sqlite:///{folder / 'tunesmith.db'}"})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, (proc.returncode, proc.stderr)
    assert "--data: strlabel.csv's label column 'label' has value(s) benign, malignant the experiment's data never " \
           "had (it had 0, 1)" in proc.stderr, proc.stderr
    assert "`tunesmith run` with a spec of another name" in proc.stderr, proc.stderr
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        with pytest.raises(UserInputError, match="has value\\(s\\) benign, malignant"):
            run_cycle(tuned, "bc", "strlabel.csv", promote=lambda s, e, m: PromotionVerdict(True, {}))
    finally:
        os.chdir(cwd)
    assert [e.name for e in tuned.experiments()] == ["bc"], "nothing recorded"
    parent = tuned.experiment("bc")
    assert "retunes" not in parent.attributes and len(tuned.events(parent.id)) == events_before
    # the same labels written as numbers pass: 1.0 is label 1
    (folder / "floats.csv").write_text("\n".join([header, *(f"{r}.0" for r in rows)]) + "\n")
    assert plan_retune(tuned, "bc", "floats.csv", cwd=folder).spec.name == "bc-retune-1"


def test_a_regression_target_may_take_values_the_old_data_never_had(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)

    def write(name: str, shift: float) -> None:
        x = rng.normal(size=(60, 2))
        y = x @ [1.5, -2.0] + shift
        (tmp_path / name).write_text("a,b,y\n" + "".join(f"{r[0]},{r[1]},{v:.4f}\n" for r, v in zip(x, y, strict=True)))

    write("old.csv", 0.0)
    write("new.csv", 100.0)
    store = SQLStore(f"sqlite:///{tmp_path / 'tunesmith.db'}")
    spec = {"name": "reg", "objective": {"metric": "r2", "direction": "maximize"},
            "task": {"estimator": "sklearn.linear_model.Ridge", "data": {"path": "old.csv", "target": "y"},
                     "cv": {"kind": "kfold", "folds": 3}, "scoring": "r2"},
            "space": {"alpha": {"type": "float", "low": 0.01, "high": 10.0, "log": True}},
            "strategy": "random", "budget": {"trials": 2}, "executor": {"kind": "inline"}, "seed": 0}
    (tmp_path / "reg.yaml").write_text(yaml.safe_dump(spec))
    run_experiment(load_spec(tmp_path / "reg.yaml"), store, RunListener())
    from tunesmith.retune import checked_retune_plan

    plan = checked_retune_plan(store, "reg", "new.csv", cwd=tmp_path)
    assert plan.spec.name == "reg-retune-1"


@pytest.mark.parametrize(("had", "new", "unseen"), [
    (["a", "1", "2"], [1, 2], []),                     # text on one side, numbers on the other: 1 and 2 are shared
    ([0, 1], ["0", "1", "unknown"], ["unknown"]),      # only the new label is named, not 0 and 1 too
    ([0, 1], [1.0, 0.0], []),                          # 1 and 1.0: one label
    ([0, 1], [0, 1, 2], ["2"]),
    (["benign", "malignant"], [0, 1], ["0", "1"]),     # the walk's recoding, the other way round
])
def test_labels_compare_by_one_kind_of_key_on_both_sides(had, new, unseen) -> None:
    """A review: labels were keyed by number on a side all numeric and by text on the other, so every new label
    of a valid re-tune counted as unseen (had a, 1, 2; new 1, 2: refused)."""
    from tunesmith.retune import unseen_labels

    assert unseen_labels(had, new) == unseen


def test_cold_with_top_k_is_refused_as_contradictory(tuned: SQLStore, folder: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """`retune --cold --top-k 3` ran cold without a word: --top-k was ignored."""
    monkeypatch.chdir(folder)
    code, out, err = cli_in_process("retune", "bc", "--data", "shifted.csv", "--trials", "1", "--cold", "--top-k", "3",
                                    "-q", "--storage", f"sqlite:///{folder / 'tunesmith.db'}")
    assert (code, out, err.splitlines()) == (2, "", [
        "error: --top-k and --cold: give one (--top-k re-evaluates the parent's best configurations first, --cold "
        "starts from scratch)"])
    assert tuned.experiment_names() == {"bc"}


def test_retune_q_prints_the_new_experiments_name_and_json_describes_it(folder: Path) -> None:
    """A pipeline wiring drift -> retune -> promote as steps needs the name `promote` takes next: `retune -q`
    printed nothing at all (the walk had to pass --name)."""
    quiet = cli_in_folder(folder, "retune", "bc", "--data", "shifted.csv", "--trials", "1", "-q")
    assert quiet.returncode == 0 and quiet.stdout == "bc-retune-1\n", (quiet.stdout, quiet.stderr)
    as_json = cli_in_folder(folder, "retune", "bc", "--data", "shifted.csv", "--trials", "1", "--json")
    assert as_json.returncode == 0, as_json.stderr
    import json

    said = json.loads(as_json.stdout)
    assert said["experiment"] == "bc-retune-2" and said["parent"] == "bc" and said["root"] == "bc", said
    assert said["data"] == str((folder / "shifted.csv").resolve()) and said["status"] == "completed", said
    assert said["trials"] == 1, said
