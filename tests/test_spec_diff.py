"""`tunesmith diff OLD NEW` (each a spec file or a recorded experiment), `tunesmith spec NAME` (the recorded spec as
YAML), and `run` on a recorded name saying what differs: against a real SQLite store holding a real run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from helpers import cli_in_process, one_error_line, tune_in_process

COND_SPACE = {
    "kind": {"type": "categorical", "choices": ["a", "b"]},
    "a_val": {"type": "float", "low": 0.0, "high": 1.0, "when": {"kind": "a"}},
    "b_val": {"type": "float", "low": 0.0, "high": 10.0, "when": {"kind": ["b"]}},
}


def _spec(project, **overrides):  # type: ignore[no-untyped-def]
    return project.spec(**{"name": "cond", "space": COND_SPACE, "trial": {"function": "objectives:conditional"},
                           "executor": {"kind": "inline"}, "budget": {"trials": 2, "wall_time": "5m"}, **overrides})


@pytest.fixture
def recorded(project) -> Path:  # type: ignore[no-untyped-def]
    """Experiment ``cond`` recorded in the project's store by a real run, from ``cond.yaml``."""
    path = project.write_spec(_spec(project))
    tune_in_process(path, project.db)
    return path


def _diff(project, *args: str) -> tuple[int, list[str], str]:  # type: ignore[no-untyped-def]
    code, out, err = cli_in_process("diff", *args, "--storage", project.storage)
    return code, out.splitlines(), err


def test_a_spec_file_against_its_recorded_experiment_is_the_same(project, recorded):
    code, lines, err = _diff(project, "cond", "cond.yaml")
    assert (code, lines, err) == (0, ["no differences"], "")
    # what the model normalises is no difference: a duration's unit, a default written out, a `when` value alone
    # or in a list, an objective as a mapping or a list of one
    spec = _spec(project, objective=[{"metric": "loss", "direction": "minimize"}])
    spec["budget"]["wall_time"] = "300s"
    spec["space"] = {**COND_SPACE, "a_val": {**COND_SPACE["a_val"], "log": False, "when": {"kind": ["a"]}}}
    project.write_spec(spec, "written-out.yaml")
    assert _diff(project, "cond", "written-out.yaml")[:2] == (0, ["no differences"])


def test_a_changed_bound_is_one_line_and_old_trials_outside_the_new_space_are_said(project, recorded):
    spec = _spec(project)
    spec["space"] = {**COND_SPACE, "b_val": {**COND_SPACE["b_val"], "high": 5.0}}
    project.write_spec(spec, "narrow.yaml")
    code, lines, _ = _diff(project, "cond", "narrow.yaml")
    assert code == 1
    assert lines == ["space.b_val.high: 10.0 -> 5.0",
                     "the space changed: not every point of cond's space is one of narrow.yaml's, so its trials may "
                     "not be (a point with kind=b, b_val=10.0 is not: b_val: value 10.0 is outside the domain "
                     "[0.0, 5.0])"]
    # the other way round every old point fits
    assert _diff(project, "narrow.yaml", "cond")[1][-1] == "the space grew: trials of narrow.yaml are points of " \
                                                           "cond's space"


def test_an_added_and_a_removed_conditional_parameter_and_a_changed_objective_are_listed_space_first(project,
                                                                                                    recorded):
    space = {k: v for k, v in COND_SPACE.items() if k != "a_val"}
    space["c_val"] = {"type": "int", "low": 1, "high": 3, "when": {"kind": "b"}}
    spec = _spec(project, space=space, objective={"metric": "loss", "direction": "maximize"},
                 budget={"trials": 4, "wall_time": "5m"})
    project.write_spec(spec, "edited.yaml")
    code, lines, _ = _diff(project, "cond", "edited.yaml")
    assert code == 1
    assert lines[:-1] == ["space.a_val: removed",
                          "space.c_val: added {type: int, low: 1, high: 3, log: false, step: 1, when: {kind: [b]}}",
                          "objective.direction: minimize -> maximize",
                          "budget.trials: 2 -> 4"]
    assert lines[-1].startswith("the space changed: not every point of cond's space is one of edited.yaml's"), lines


def test_a_new_choice_with_its_own_conditional_parameter_keeps_old_trials_in_the_space(project, recorded):
    space = {**COND_SPACE, "kind": {"type": "categorical", "choices": ["a", "b", "c"]},
             "c_val": {"type": "float", "low": 0.0, "high": 1.0, "when": {"kind": "c"}}}
    project.write_spec(_spec(project, space=space), "grown.yaml")
    code, lines, _ = _diff(project, "cond", "grown.yaml")
    assert (code, lines[-1]) == (1, "the space grew: trials of cond are points of grown.yaml's space")
    assert lines[:2] == ["space.kind.choices: [a, b] -> [a, b, c]",
                         "space.c_val: added {type: float, low: 0.0, high: 1.0, log: false, when: {kind: [c]}}"]


def test_an_unknown_experiment_exits_2_with_a_did_you_mean(project, recorded):
    code, out, err = cli_in_process("diff", "cnod", "cond.yaml", "--storage", project.storage)
    assert (code, out) == (2, "")
    assert err.startswith("error: cnod: no experiment named 'cnod' in ") and "did you mean 'cond'?" in err, err
    assert "Traceback" not in err and len(err.splitlines()) == 1


def test_an_invalid_spec_file_exits_2_with_validates_message_naming_the_field(project, recorded):
    bad = _spec(project)
    bad["space"] = {**COND_SPACE, "b_val": {**COND_SPACE["b_val"], "low": 20.0}}
    project.write_spec(bad, "bad.yaml")
    said = one_error_line(project.cli("diff", "cond", "bad.yaml"), 2)
    validated = one_error_line(project.cli("validate", "bad.yaml"), 2)
    assert said == f"bad.yaml: {validated}" and validated.startswith("space.b_val: low must be < high"), said


def test_two_spec_files_are_compared_without_opening_or_creating_a_store(project):
    project.write_spec(_spec(project), "one.yaml")
    project.write_spec(_spec(project, seed=2), "two.yaml")
    proc = project.cli("diff", "one.yaml", "two.yaml")
    assert proc.returncode == 1 and proc.stdout.splitlines() == [
        "seed: 1 -> 2", "the space is the same: trials of one.yaml are points of two.yaml's space"], proc
    assert not project.db.exists() and sorted(p.name for p in project.root.iterdir()) == [
        "objectives.py", "one.yaml", "two.yaml"]


def test_json_gives_each_difference_as_path_kind_old_new(project, recorded):
    spec = _spec(project)
    spec["space"] = {k: v for k, v in COND_SPACE.items() if k != "a_val"}
    spec["budget"] = {"trials": 2}
    spec["tags"] = {"team": "x"}
    project.write_spec(spec, "changed.yaml")
    code, out, _ = cli_in_process("diff", "cond", "changed.yaml", "--json", "--storage", project.storage)
    report = json.loads(out)
    assert code == 1 and report["old"] == "cond" and report["new"] == "changed.yaml" and report["same"] is False
    assert report["differences"] == [
        {"path": "space.a_val", "kind": "removed", "new": None,
         "old": {"type": "float", "low": 0.0, "high": 1.0, "log": False, "when": {"kind": ["a"]}}},
        {"path": "budget.wall_time", "kind": "removed", "old": 300.0, "new": None},
        {"path": "tags.team", "kind": "added", "old": None, "new": "x"},
    ]
    assert report["space"]["changed"] is True and report["space"]["old_trials_fit"] is False
    assert report["space"]["witness"] == {"kind": "a", "a_val": 0.0}, report["space"]
    same = json.loads(cli_in_process("diff", "cond", "cond.yaml", "--json", "--storage", project.storage)[1])
    assert same["same"] is True and same["differences"] == [] and same["space"]["old_trials_fit"] is True


def test_the_recorded_spec_prints_as_yaml_that_validate_and_diff_read_back(project, recorded):
    code, out, err = cli_in_process("spec", "cond", "--storage", project.storage)
    assert code == 0, err
    header = " ".join(line.removeprefix("# ") for line in out.splitlines() if line.startswith("#"))
    assert f"Its run read it from {project.root}: trial.function 'objectives:conditional' is found from the spec " \
           "file's folder" in header, header
    stored = yaml.safe_load(out)
    assert stored["seed"] == 1 and stored["workdir"] == str(project.root / ".tunesmith" / "cond")
    assert "base_dir" not in stored  # taken from the file's folder, as for any spec file
    # `run recorded.yaml --name NEW` is refused: that workdir holds cond's trial folders; the header says so
    assert "to run this file as a new experiment (`run --name NEW`, or a new name: line), delete the workdir: " \
           "line" in header, header
    (project.root / "recorded.yaml").write_text(out)
    assert project.cli("validate", "recorded.yaml").returncode == 0
    assert _diff(project, "cond", "recorded.yaml")[:2] == (0, ["no differences"])
    # between two files, what one writes and the other leaves out differs, though a run from this folder would fill
    # in the same workdir: a file's fill-ins are taken as the run made them only against a recorded experiment
    assert _diff(project, "recorded.yaml", "cond.yaml")[:2] == (1, [
        f"workdir: removed (was {project.root / '.tunesmith' / 'cond'})",
        "the space is the same: trials of recorded.yaml are points of cond.yaml's space"])


def test_run_on_a_recorded_name_says_what_differs_and_stays_one_error(project, recorded):
    same = one_error_line(project.cli("run", "cond.yaml"), 2)
    assert "already exists" in same and "differs" not in same, same
    spec = _spec(project, budget={"trials": 5, "wall_time": "5m"})
    spec["space"] = {**COND_SPACE, "b_val": {**COND_SPACE["b_val"], "high": 5.0}}
    project.write_spec(spec, "cond.yaml")
    said = one_error_line(project.cli("run", "cond.yaml"), 2)
    assert said.startswith(same) and said.endswith(
        ". Its recorded spec differs from this one: space.b_val.high: 10.0 -> 5.0; budget.trials: 2 -> 5 "
        "(`tunesmith diff cond SPEC` lists every difference)"), said


def test_neither_the_package_nor_the_cli_imports_the_diff_at_start_up():
    """`import tunesmith` and the CLI's start-up stay as light as they were: the diff is imported by its commands."""
    import subprocess
    import sys

    code = ("import sys, tunesmith, tunesmith.cli; "
            "loaded = [m for m in ('tunesmith.spec.diff', 'tunesmith.spec.writer', 'tunesmith.space.containment') "
            "if m in sys.modules]; assert not loaded, loaded")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_the_python_api_says_what_differs_too(project, recorded):
    import tunesmith
    from tunesmith.errors import ExperimentExists

    with pytest.raises(ExperimentExists) as exists:
        tunesmith.run(_spec(project, budget={"trials": 3, "wall_time": "5m"}), storage=project.storage)
    said = str(exists.value)
    assert said.endswith("(its `name`). Its recorded spec differs from this one: budget.trials: 2 -> 3"), said
    assert exists.value.differences == "budget.trials: 2 -> 3"


def test_the_readmes_example_is_what_diff_prints(tmp_path, monkeypatch):
    """The README's `tunesmith diff quickstart v2.yaml`, on the quickstart recorded (its spec: no trial needs to run)
    and v2.yaml edited as its comment says."""
    import re
    import shutil

    from tunesmith.runner import prepare
    from tunesmith.spec.loader import load_spec
    from tunesmith.storage.sql import SQLStore

    root = Path(__file__).resolve().parents[1]
    [block] = [b for b in re.findall(r"```[a-z]*\n(.*?)```", (root / "README.md").read_text(), flags=re.S)
               if b.startswith("$ tunesmith diff quickstart v2.yaml")]
    for name in ("quickstart.yaml", "quickstart_objective.py"):
        shutil.copy(root / "examples" / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    store = SQLStore(f"sqlite:///{tmp_path / 'tunesmith.db'}", create=True)
    plan = prepare(load_spec(tmp_path / "quickstart.yaml"))
    store.create_experiment("quickstart", plan.spec.to_json(), plan.decision.name, plan.decision.reason, 0.0)
    store.close()
    text = (tmp_path / "quickstart.yaml").read_text()
    for old, new in (("name: quickstart", "name: quickstart-v2"), ("high: 1000,", "high: 100,"),
                     ("  degree: {type: int, low: 2, high: 4, when: {kernel: poly}}",
                      "  tol: {type: float, low: 0.00001, high: 0.01, log: true, when: {kernel: linear}}"),
                     ("trials: 40", "trials: 80")):
        assert old in text, old
        text = text.replace(old, new)
    (tmp_path / "v2.yaml").write_text(text)
    code, out, err = cli_in_process("diff", "quickstart", "v2.yaml", "--storage", f"sqlite:///{tmp_path}/tunesmith.db")
    assert code == 1, err
    assert out.splitlines() == block.splitlines()[1:]


def test_an_experiment_recorded_before_the_new_spec_checks_diffs_against_its_own_spec_file(project):
    """`diff` compares what specs declare: a file is read as `cycle` reads one of a recorded experiment (the schema,
    not the checks a spec given anew passes), so the spec of an experiment recorded before those checks, as
    `tunesmith spec` prints it or as its user wrote it (unquoted yes/no choices), diffs against it."""
    from tunesmith.spec.loader import spec_from_dict
    from tunesmith.storage.sql import SQLStore

    legacy = _spec(project, name="legacy", trial={"command": "python train.py {args}"}, space={
        "n": {"type": "float", "low": 0.0, "high": 4.0},
        "seed": {"type": "int", "low": 1, "high": 3},  # a command's parameter named as the {seed} placeholder
        "c": {"type": "categorical", "choices": ["a", "b"], "when": {"n": 2.0}},  # a `when` on a float
        "d": {"type": "categorical", "choices": [True, False], "when": {"seed": []}},  # a `when` that never holds
    })
    store = SQLStore(project.storage, create=True)
    store.create_experiment("legacy", spec_from_dict(legacy).to_json(), "random", "", 0.0)
    store.close()
    code, out, err = cli_in_process("spec", "legacy", "--storage", project.storage)
    assert code == 0, err
    (project.root / "legacy.yaml").write_text(out)
    assert _diff(project, "legacy", "legacy.yaml") == (0, ["no differences"], "")
    written = out.replace("choices: [true, false]", "choices: [yes, no]")  # YAML 1.1's booleans, as first written
    assert written != out
    (project.root / "written.yaml").write_text(written)
    assert _diff(project, "legacy", "written.yaml") == (0, ["no differences"], "")
    assert _diff(project, "written.yaml", "legacy.yaml")[:2] == (0, ["no differences"])
    # a schema error is still one: exit 2, naming the field
    (project.root / "broken.yaml").write_text(out.replace("high: 4.0", "high: -1.0"))
    code, lines, err = _diff(project, "legacy", "broken.yaml")
    assert (code, lines) == (2, []) and err.startswith("error: broken.yaml: space.n: low must be < high"), err


def test_the_store_keeps_no_storage_password_and_spec_hides_the_trial_env_unless_asked(project):
    """The spec was recorded as written and `spec NAME` (and --json) printed it: the storage URL's password and the
    trial.env values in clear (walk-q Q3). The password is not recorded (the store holding the record is the one
    already reached); trial.env is (a resume runs the recorded spec), printed as *** unless --show-secrets."""
    import re
    import sqlite3

    env = {"API_TOKEN": "Env-S3cret-1", "PLAIN": "Plain-S3cret-2"}
    path = project.write_spec(_spec(project, name="sec", storage="postgresql+psycopg://bob:Pg-S3cret-3@db.internal/x",
                                    description="a copy of postgresql://amy:Desc-S3cret-4@db.internal/y",
                                    trial={"function": "objectives:conditional", "env": env}))
    tune_in_process(path, project.db)
    secret = re.compile(r"[A-Za-z]+-S3cret-\d")
    with sqlite3.connect(project.db) as db:
        recorded = sorted(set(secret.findall("\n".join(db.iterdump()))))
    assert recorded == ["Desc-S3cret-4", "Env-S3cret-1", "Plain-S3cret-2"], "the storage password is not recorded"
    code, out, err = cli_in_process("spec", "sec", "--storage", project.storage)
    assert code == 0 and secret.findall(out) == ["Plain-S3cret-2"], out
    printed = yaml.safe_load(out.replace("Plain-S3cret-2", "plain-value"))
    assert printed["storage"] == "postgresql+psycopg://bob:***@db.internal/x"
    # a variable whose name says secret is hidden (as redact_env hides one); the others are shown, so that the
    # printed spec runs again (a *** left in it is refused, see below)
    assert printed["trial"]["env"] == {"API_TOKEN": "***", "PLAIN": "plain-value"}
    assert printed["description"] == "a copy of postgresql://amy:***@db.internal/y"
    assert "--show-secrets" in " ".join(line for line in out.splitlines() if line.startswith("#")), out
    code, out, err = cli_in_process("spec", "sec", "--json", "--storage", project.storage)
    assert code == 0 and json.loads(out)["trial"]["env"] == {"API_TOKEN": "***", "PLAIN": "Plain-S3cret-2"}, out
    code, out, err = cli_in_process("spec", "sec", "--show-secrets", "--storage", project.storage)
    assert code == 0 and yaml.safe_load(out)["trial"]["env"] == env, out
    assert "Pg-S3cret-3" not in out and "Desc-S3cret-4" in out
    # a spec file naming the store with its password is the recorded experiment: the password is no difference
    assert _diff(project, "sec", "sec.yaml")[:2] == (0, ["no differences"])


def test_diff_says_a_hidden_trial_env_value_or_url_password_changed_without_showing_it(project):
    """`diff` printed what differs as recorded: a trial.env value and a URL's password, which `spec` hides. Hidden,
    the line read `'***' -> '***'`, a difference nobody could read: it says the value changed, hidden."""
    path = project.write_spec(_spec(project, name="sec", description="copy of postgresql://amy:Desc-S3cret-1@db/y",
                                    trial={"function": "objectives:conditional", "env": {"API_TOKEN": "Env-S3cret-2"}}))
    tune_in_process(path, project.db)
    project.write_spec(_spec(project, name="sec", description="copy of postgresql://amy:Desc-S3cret-3@db/y",
                             trial={"function": "objectives:conditional", "env": {"API_TOKEN": "Env-S3cret-4"}}),
                       "edited.yaml")
    code, lines, err = _diff(project, "sec", "edited.yaml")
    assert code == 1 and lines[:2] == ["description: changed (value hidden)",
                                       "trial.env.API_TOKEN: changed (value hidden)"], lines
    said = cli_in_process("diff", "sec", "edited.yaml", "--json", "--storage", project.storage)[1]
    assert "S3cret" not in said and '"trial.env.API_TOKEN"' in said, said


@pytest.mark.parametrize(("command", "extra"), [("run", ()), ("validate", ()), ("cycle", ("--data", "none.csv"))])
def test_a_spec_printed_with_hidden_values_is_refused_naming_the_field_and_the_fix(project, command, extra):
    """`tunesmith spec NAME > f.yaml; tunesmith run f.yaml` ran the trial with API_TOKEN='***' (the placeholder the
    printout puts in), and connected with *** as the storage password: each is refused, naming the field and the
    fix, before anything runs."""
    path = project.write_spec(_spec(project, name="sec",
                                    trial={"function": "objectives:conditional", "env": {"API_TOKEN": "Env-S3cret-1"}}))
    tune_in_process(path, project.db)
    code, out, err = cli_in_process("spec", "sec", "--storage", project.storage)
    assert code == 0 and "Env-S3cret-1" not in out
    printed = project.root / "printed.yaml"
    printed.write_text("\n".join(line for line in out.replace("name: sec", "name: again").splitlines()
                                  if not line.startswith("workdir:")))  # as its header says, for a new experiment
    proc = project.cli(command, str(printed), *extra)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "trial.env.API_TOKEN" in proc.stderr and "tunesmith spec NAME --show-secrets" in proc.stderr, proc.stderr
    no_env = _spec(project, name="again", storage=f"sqlite:///{project.db}")
    no_env["storage"] = "postgresql+psycopg://bob:***@127.0.0.1:5432/x"
    hidden_password = project.write_spec(no_env, "password.yaml")
    proc = project.cli(command, str(hidden_password), *extra)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "storage:" in proc.stderr and "put the password back" in proc.stderr, proc.stderr
    assert [t["state"] for t in project.trials("sec")] == ["completed"] * 2 and "again" not in project.cli(
        "list").stdout


def test_spec_of_a_record_holding_its_storage_password_says_to_put_it_back(project):
    """A store written before the password was left out of the record still holds it: `spec` prints it as ***,
    but the line saying to put it back was missing (it looked for *** in the record, not in what it printed)."""
    from tunesmith.spec.loader import load_spec
    from tunesmith.storage import SQLStore

    path = project.write_spec(_spec(project, name="old"))
    stored = {**load_spec(path).to_json(), "storage": "postgresql+psycopg://bob:Pg-S3cret-1@db.internal/x"}
    store = SQLStore(project.storage)
    store.create_experiment("old", stored, "random", "", now=1.0)  # as an earlier tunesmith recorded it
    store.close()
    code, out, err = cli_in_process("spec", "old", "--storage", project.storage)
    assert code == 0 and "Pg-S3cret-1" not in out, out
    assert "Its storage: is recorded without its password: put it back" in out, out


def test_a_hidden_value_in_a_command_a_tracking_uri_or_a_data_path_is_refused_at_its_field(project):
    """`spec` hides `--api-key sk-...` in a command trial as ***; run again, the shell globbed the unquoted *** into
    the folder's file names and the trial ran with them as its key, recorded as a good trial. A *** in the fields
    that are run or connected to is refused, naming the field and the fix; one in free text (description) is not."""
    project.write("show.py", """
        import json, sys
        print(json.dumps({"loss": 1.0}))
    """)
    path = project.write_spec(project.spec(name="cmd", executor={"kind": "inline"}, budget={"trials": 1},
                                           trial={"command": "python3 show.py --x {x} --api-key sk-live-abcdef123456"}))
    project.cli("run", str(path), check=True)
    code, out, err = cli_in_process("spec", "cmd", "--storage", project.storage)
    assert code == 0 and "--api-key ***" in out and "sk-live" not in out, out
    printed = project.root / "printed.yaml"
    printed.write_text("\n".join(line for line in out.replace("name: cmd", "name: again").splitlines()
                                 if not line.startswith("workdir:")))
    for command in ("validate", "run"):
        proc = project.cli(command, str(printed))
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert "trial.command" in proc.stderr and "--show-secrets" in proc.stderr, proc.stderr
    assert "again" not in project.cli("list").stdout
    for field, overrides in (
            ("tracking.mlflow.uri", {"tracking": {"mlflow": {"uri": "postgresql://bob:***@127.0.0.1/mlflow"}}}),
            ("task.data.path", {"trial": None, "objective": {"metric": "accuracy", "direction": "maximize"},
                                "task": {"estimator": "sklearn.linear_model.LogisticRegression",
                                         "data": {"path": "data/***/x.csv", "target": "y"}},
                                "space": {"C": {"type": "float", "low": 0.1, "high": 1.0}}})):
        spec = {k: v for k, v in project.spec(name="again", **overrides).items() if v is not None}
        proc = project.cli("validate", str(project.write_spec(spec, "hidden.yaml")), "--schema-only")
        assert proc.returncode == 2 and f"{field}:" in proc.stderr and "--show-secrets" in proc.stderr, proc.stderr
    described = project.write_spec(project.spec(name="again", description="a key like *** goes in trial.env"),
                                   "described.yaml")
    assert project.cli("validate", str(described)).returncode == 0
