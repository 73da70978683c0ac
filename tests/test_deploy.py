"""The deploy/ examples name only real CLI subcommands and flags, and the Airflow DAG parses (and imports where
Airflow is installed)."""

from __future__ import annotations

import ast
import functools
import json
import importlib.util
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
YAML_FILES = [DEPLOY / "github-actions" / "retune.yml", DEPLOY / "argo" / "cycle-cronworkflow.yaml"]
DAG = DEPLOY / "airflow" / "tunesmith_cycle_dag.py"
MODELS = DEPLOY / "models"


def _strings(node: object) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for v in node.values():
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)


def tunesmith_commands(text: str) -> list[list[str]]:
    """Every `tunesmith ...` command in a shell text, as argument lists (continuations joined, one per command)."""
    commands = []
    # a Jinja expression is rendered before the shell sees the line: one word here (its `|` is a filter, no pipe)
    text = re.sub(r"\{\{.*?\}\}", lambda m: "{{" + re.sub(r"\W+", "_", m.group(0)[2:-2]) + "}}", text)
    for line in text.replace("\\\n", " ").splitlines():
        for part in re.split(r"&&|\|\||;|\|", line):
            try:
                tokens = shlex.split(part)
            except ValueError:
                continue
            if tokens and tokens[0] == "tunesmith":
                commands.append(tokens[1:])
    return commands


@functools.cache
def _help(subcommand: str) -> tuple[int, str]:
    proc = subprocess.run([sys.executable, "-m", "tunesmith.cli", subcommand, "--help"], capture_output=True,
                          text=True, env={**os.environ, "COLUMNS": "250", "NO_COLOR": "1"}, timeout=60)
    return proc.returncode, proc.stdout


def unknown_flags(args: list[str]) -> list[str]:
    """Flags (and the subcommand) in ``args`` that `tunesmith SUBCOMMAND --help` does not list."""
    if not args:
        return ["<no subcommand>"]
    rc, text = _help(args[0])
    if rc != 0:
        return [args[0]]
    listed = set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", text))
    return [a.split("=", 1)[0] for a in args[1:] if a.startswith("-") and a.split("=", 1)[0] not in listed]


def _dag_commands() -> list[list[str]]:
    """The bash_command of each operator in the DAG, f-string placeholders read as one word."""
    commands = []
    for node in ast.walk(ast.parse(DAG.read_text())):
        if isinstance(node, ast.keyword) and node.arg == "bash_command":
            commands += tunesmith_commands(_text(node.value))
    return commands


def _text(node: ast.expr) -> str:
    if isinstance(node, ast.Constant):
        return str(node.value)
    if isinstance(node, ast.JoinedStr):
        return "".join(_text(v) for v in node.values)
    if isinstance(node, ast.FormattedValue):   # a module-level string constant of the DAG (SPEC, DATA...) as written
        return _text(node.value)
    if isinstance(node, ast.Name) and node.id in _dag_constants():
        return _text(_dag_constants()[node.id])
    if isinstance(node, ast.BinOp):
        return _text(node.left) + _text(node.right)
    return "VALUE"


@functools.cache
def _dag_constants() -> dict[str, ast.expr]:
    """The DAG's module-level `NAME = "..."` / f-string assignments."""
    return {t.id: node.value for node in ast.parse(DAG.read_text()).body if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant | ast.JoinedStr) for t in node.targets if isinstance(t, ast.Name)}


@pytest.mark.parametrize("path", YAML_FILES + [DAG], ids=lambda p: p.name)
def test_every_tunesmith_line_names_real_flags(path: Path) -> None:
    if path.suffix == ".py":
        commands = _dag_commands()
    else:
        commands = [c for s in _strings(yaml.safe_load(path.read_text())) for c in tunesmith_commands(s)]
    assert any(c[0] == "cycle" for c in commands), f"{path.name} does not run `tunesmith cycle`"
    for args in commands:
        assert unknown_flags(args) == [], f"{path.name}: tunesmith {' '.join(args)}"


def needs_registry(args: list[str]) -> bool:
    """A command that reads or writes MLflow's model registry: it needs the mlflow extra."""
    return bool(args) and (args[0] in ("promote", "rollback") or (args[0] in ("cycle", "watch") and any(
        a.split("=", 1)[0] == "--model-name" for a in args)))


# tunesmith installed from a checkout: the checkout itself (`.`, a path ending in tunesmith) or a wheel built there
_FROM_CHECKOUT = r"(?:\.|\S*/tunesmith|\S*/tunesmith-[\w.]+-py3-none-any\.whl)"


def installed_extras(text: str) -> list[set[str]]:
    """The extras of each `pip install` of tunesmith from a checkout (`.[...]`, a wheel's path) in a shell text."""
    return [{e.strip() for e in (m.group(1) or "").split(",") if e.strip()}
            for m in re.finditer(rf"pip install[^\n]*?[\"']?{_FROM_CHECKOUT}(?:\[([\w,\s-]*)\])?[\"']?(?:\s|$)", text)]


def installs_from_an_index(text: str) -> list[str]:
    """Each `pip install` naming tunesmith bare (`tunesmith`, `tunesmith[...]`): that takes a package index's
    tunesmith, and this one is on none (an install finds nothing, or someone else's package)."""
    bare = r"pip install[^\n]*?(?<![\w./-])[\"']?tunesmith(?:\[[\w,\s-]*\])?[\"']?(?=[\s`]|$)"
    return [m.group(0) for m in re.finditer(bare, text)]


@pytest.mark.parametrize("path", sorted(p for p in DEPLOY.rglob("*") if p.is_file()), ids=lambda p: p.name)
def test_no_example_installs_tunesmith_from_a_package_index(path: Path) -> None:
    """The examples ran `pip install "tunesmith[postgres,mlflow]"`, and tunesmith is published nowhere: a platform
    engineer copying them installed nothing, or someone else's package."""
    assert installs_from_an_index(path.read_text()) == [], path.name


def test_the_index_install_check_can_fail() -> None:
    assert installs_from_an_index('pip install --quiet "tunesmith[postgres,mlflow]" || exit 1')
    assert installs_from_an_index("RUN pip install tunesmith")
    assert not installs_from_an_index('pip install ".[postgres,mlflow]"')
    assert not installs_from_an_index("pip install '/tmp/tunesmith-0.1.0-py3-none-any.whl[ray,postgres]'")
    assert installed_extras('pip install ".[postgres,mlflow]"') == [{"postgres", "mlflow"}]


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.name)
def test_an_install_before_a_command_that_promotes_has_the_mlflow_extra(path: Path) -> None:
    """The examples installed `tunesmith[postgres]` and ran `cycle --model-name`, which needs MLflow's registry:
    the cycle was refused (before the fix: it crashed after re-tuning). An install in the command's own shell
    text must have the extra; a command without one relies on the job's separate install step(s)."""
    texts = list(_strings(yaml.safe_load(path.read_text())))
    steps = [t for t in texts if installed_extras(t) and not tunesmith_commands(t)]  # install-only steps
    for text in texts:
        if any(needs_registry(c) for c in tunesmith_commands(text)):
            installs = installed_extras(text) or [e for t in steps for e in installed_extras(t)]
            assert installs and all("mlflow" in extras for extras in installs), (path.name, text)


def test_the_extra_check_can_fail() -> None:
    text = 'pip install --quiet ".[postgres]" && tunesmith cycle x.yaml --data d.csv --model-name m'
    assert needs_registry(tunesmith_commands(text)[0]) and installed_extras(text) == [{"postgres"}]
    assert installed_extras("pip install '/src/tunesmith[postgres, mlflow]'") == [{"postgres", "mlflow"}]
    assert not needs_registry(["cycle", "x.yaml", "--data", "d.csv"])


def test_the_flag_check_can_fail() -> None:
    (args,) = tunesmith_commands('pip install tunesmith && tunesmith cycle x.yaml --data d.csv --no-such-flag -q')
    assert unknown_flags(args) == ["--no-such-flag", "-q"]
    assert unknown_flags(["no-such-command"]) == ["no-such-command"]


def _dag_task_ids() -> set[str]:
    tree = ast.parse(DAG.read_text())
    return {kw.value.value for node in ast.walk(tree) if isinstance(node, ast.Call)
            for kw in node.keywords if kw.arg == "task_id" and isinstance(kw.value, ast.Constant)}


def test_airflow_dag_parses_and_imports_where_airflow_is_installed() -> None:
    task_ids = _dag_task_ids()
    assert task_ids == {"drift_report", "cycle", "show_champion"}
    if importlib.util.find_spec("airflow") is None:
        pytest.skip("Airflow is not installed in this venv: the DAG was parsed, not imported (the throwaway-venv "
                    "test below imports it: `make airflow-check`)")
    spec = importlib.util.spec_from_file_location("tunesmith_cycle_dag", DAG)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.dag.dag_id == "tunesmith_cycle"
    assert {t.task_id for t in module.dag.tasks} == task_ids


# Airflow is too heavy for the test venv (hundreds of packages, minutes to install): it lives in a throwaway venv,
# made by `make airflow-check` (or named by TUNESMITH_AIRFLOW_PYTHON), and the DAG is loaded there by Airflow's own
# DagBag, which reports import errors and cycles the way the scheduler would.
AIRFLOW_PYTHON = Path(os.environ.get("TUNESMITH_AIRFLOW_PYTHON", DEPLOY.parent / ".airflow-venv" / "bin" / "python"))
_DAGBAG_PROBE = """
import json, sys
from airflow.models.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1], include_examples=False)
dag = bag.dags.get("tunesmith_cycle")
print(json.dumps({"errors": {str(k): str(v) for k, v in bag.import_errors.items()}, "dags": sorted(bag.dags),
                  "edges": sorted([t.task_id, d] for t in (dag.tasks if dag else []) for d in t.downstream_task_ids),
                  "commands": {t.task_id: t.bash_command for t in (dag.tasks if dag else [])},
                  "skip_on_exit_code": {t.task_id: sorted(t.skip_on_exit_code or [])
                                        for t in (dag.tasks if dag else [])},
                  "env": {t.task_id: sorted(t.env or {}) for t in (dag.tasks if dag else [])}}))
"""


def test_airflow_loads_the_dag_in_a_throwaway_venv(tmp_path: Path) -> None:
    if not AIRFLOW_PYTHON.exists():
        pytest.skip(f"no Airflow venv at {AIRFLOW_PYTHON}: `make airflow-check` makes one (pip install apache-airflow, "
                    "a few minutes) and runs this test; or set TUNESMITH_AIRFLOW_PYTHON to an interpreter that has it")
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    done = subprocess.run([str(AIRFLOW_PYTHON), "-c", _DAGBAG_PROBE, str(DAG.parent)], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded["errors"] == {} and loaded["dags"] == ["tunesmith_cycle"], loaded
    assert loaded["edges"] == [["cycle", "drift_report"], ["cycle", "show_champion"]]
    assert loaded["skip_on_exit_code"]["cycle"] == [3], loaded["skip_on_exit_code"]   # a rejected gate: no retry
    assert set(loaded["commands"]) == _dag_task_ids()
    assert all(set(STORES) <= set(env) for env in loaded["env"].values()), loaded["env"]
    for task_id, command in loaded["commands"].items():   # as Airflow will hand them to bash, flags checked too
        for args in tunesmith_commands(command):
            assert unknown_flags(args) == [], f"{task_id}: tunesmith {' '.join(args)}"


# What an SRE walkthrough of the examples found, each checked below: the examples could not start on a fresh store
# (a drift step first, exit 2 on an unknown experiment), overwrote the file a re-tune was tuned on, reported on the
# root experiment rather than on what the cycle checked and left as champion, kept the store and MLflow's registry
# beside a CI runner, retried a rejected gate (another full re-tune), wrote into a folder nobody made, and ran a spec
# that existed nowhere.
STORES = ("TUNESMITH_STORAGE", "MLFLOW_TRACKING_URI")


def _dag_edges(tree: ast.Module) -> set[tuple[str, str]]:
    """`a >> b`, `a >> [b, c]` and chains of them, as (upstream, downstream) task variable names."""
    def names(node: ast.expr) -> list[str]:
        if isinstance(node, ast.Name):
            return [node.id]
        if isinstance(node, ast.List):
            return [n for e in node.elts for n in names(e)]
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.RShift):
            return names(node.right)
        return []

    edges: set[tuple[str, str]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.RShift):
            edges |= {(a, b) for a in names(node.left) for b in names(node.right)}
    return edges


def _operators(tree: ast.Module) -> dict[str, ast.Call]:
    """The DAG's BashOperator calls by task_id."""
    return {kw.value.value: node for node in ast.walk(tree) if isinstance(node, ast.Call)
            for kw in node.keywords if kw.arg == "task_id" and isinstance(kw.value, ast.Constant)}


def _example_commands(path: Path) -> list[list[str]]:
    """The tunesmith commands of an example in the order they run (a YAML file's are in document order)."""
    if path.suffix == ".py":
        return _dag_commands()
    return [c for s in _strings(yaml.safe_load(path.read_text())) for c in tunesmith_commands(s)]


def _option(args: list[str], flag: str) -> str | None:
    return next((args[i + 1] for i, a in enumerate(args[:-1]) if a == flag), None)


def _shell_texts(path: Path) -> list[str]:
    if path.suffix == ".py":
        return [_text(node.value) for node in ast.walk(ast.parse(DAG.read_text()))
                if isinstance(node, ast.keyword) and node.arg == "bash_command"]
    return list(_strings(yaml.safe_load(path.read_text())))


@pytest.mark.parametrize("path", YAML_FILES + [DAG], ids=lambda p: p.name)
def test_cycle_runs_first_so_a_fresh_store_starts(path: Path) -> None:
    """`tunesmith drift` on an experiment not recorded yet exits 2, so a drift step before the cycle stopped every
    run on a fresh store; `cycle SPEC` tunes the spec first."""
    first = _example_commands(path)[0]
    assert first[0] == "cycle" and first[1].endswith(".yaml"), (path.name, first)
    if path.suffix == ".py":
        tree = ast.parse(DAG.read_text())
        edges = _dag_edges(tree)
        assert edges and not any(b == "cycle" for _, b in edges), edges   # nothing upstream of the cycle
        assert {a for a, _ in edges} == {"cycle"}, edges


@pytest.mark.parametrize("path", YAML_FILES + [DAG], ids=lambda p: p.name)
def test_each_day_has_its_own_rows_file(path: Path) -> None:
    """A re-tune records the path given to --data: a file overwritten daily (data/latest.csv) made each later cycle
    compare the new rows with themselves. The path must change per run, and every step reads the same rows."""
    data = {_option(c, "--data") for c in _example_commands(path) if c[0] in ("cycle", "drift")}
    assert len(data) == 1, (path.name, data)
    (value,) = data
    assert value is not None and ("$" in value or "{{" in value), (path.name, value)
    assert not re.search(r"latest\.(csv|parquet)", path.read_text()), path.name


def _json_keys_read(text: str) -> set[str]:
    return set(re.findall(r'\)\)\.get\(\\?"(\w+)\\?"\)', text))


@pytest.mark.parametrize("path", YAML_FILES + [DAG], ids=lambda p: p.name)
def test_reports_name_what_the_cycle_checked_and_left_as_champion(path: Path) -> None:
    """`tunesmith drift churn` compared with the root's first data and `tunesmith show churn` printed the root's
    best, while the cycle compares with, and may promote, a re-tune: the report steps read both names from the
    cycle's JSON (`checked`, `champion`), fields the report has."""
    from tunesmith.cycle import CycleOutcome, CycleReport

    fields = set(CycleReport(root="r", checked="c", champion="c", outcome=CycleOutcome.NO_DRIFT, steps=()).to_json())
    reports = [c for c in _example_commands(path) if c[0] in ("drift", "show")]
    assert {c[0] for c in reports} == {"drift", "show"}, path.name
    for args in reports:
        assert args[1].startswith("$"), (path.name, args)   # a name read from the cycle's report, not a literal
    keys = {k for t in _shell_texts(path) for k in _json_keys_read(t)}
    assert keys == {"checked", "champion"} and keys <= fields, (path.name, keys, fields)


def test_the_json_key_reader_can_fail() -> None:
    assert _json_keys_read("""x=$(python -c 'print(json.load(open(sys.argv[1])).get("champoin") or "")' c.json)""") == {
        "champoin"}


def test_stores_outlive_the_runner() -> None:
    """Without them the store and MLflow's registry were SQLite files beside the spec, thrown away with a CI runner
    or a pod: both are named, from a secret (or Airflow Variables), in every example."""
    gha = yaml.safe_load(YAML_FILES[0].read_text())
    env = gha["jobs"]["cycle"]["env"]
    assert all(name in env and "secrets." in env[name] for name in STORES), env
    argo = yaml.safe_load(YAML_FILES[1].read_text())
    containers = [t["container"] for t in argo["spec"]["workflowSpec"]["templates"] if "container" in t]
    assert containers, "the Argo workflow runs no container"
    for container in containers:
        names = {e["name"]: e for e in container["env"]}
        assert all(name in names and "secretKeyRef" in names[name]["valueFrom"] for name in STORES), names
    tree = ast.parse(DAG.read_text())
    stores = next(n.value for n in ast.walk(tree) if isinstance(n, ast.Assign)
                  and any(isinstance(t, ast.Name) and t.id == "STORES" for t in n.targets))
    assert isinstance(stores, ast.Dict) and {k.value for k in stores.keys if isinstance(k, ast.Constant)} == set(STORES)
    default_args = next(kw.value for n in ast.walk(tree) if isinstance(n, ast.Call) for kw in n.keywords
                        if kw.arg == "default_args")
    keys = [k.value for k in default_args.keys if isinstance(k, ast.Constant)]
    given = dict(zip(keys, default_args.values, strict=True))
    assert isinstance(given.get("env"), ast.Name) and given["env"].id == "STORES", ast.dump(default_args)
    assert isinstance(given.get("append_env"), ast.Constant) and given["append_env"].value is True  # keep PATH
    # `cycle` registers at the spec's tracking.mlflow.uri (before $MLFLOW_TRACKING_URI): not a local file
    uri = yaml.safe_load((MODELS / "churn.yaml").read_text())["tracking"]["mlflow"]["uri"]
    assert not uri.startswith("sqlite:") and not uri.startswith("file:"), uri


def test_airflow_does_not_retry_a_rejected_gate_and_makes_its_report_folder() -> None:
    """Exit 3 is a verdict: with `retries: 1` it ran another full re-tune 10 minutes later. And --json-out refuses
    a folder that does not exist (exit 2)."""
    operators = _operators(ast.parse(DAG.read_text()))
    skip = {kw.arg: kw.value for kw in operators["cycle"].keywords}.get("skip_on_exit_code")
    assert isinstance(skip, ast.Constant) and skip.value == 3, ast.dump(operators["cycle"])
    for task_id in ("drift_report", "show_champion"):   # they still run after a rejected (skipped) cycle
        rule = {kw.arg: kw.value for kw in operators[task_id].keywords}.get("trigger_rule")
        assert isinstance(rule, ast.Constant) and rule.value == "none_failed", task_id
    command = next(_text(kw.value) for kw in operators["cycle"].keywords if kw.arg == "bash_command")
    assert command.startswith("mkdir -p /opt/tunesmith/reports && tunesmith cycle"), command


@pytest.mark.parametrize("path", YAML_FILES + [DAG], ids=lambda p: p.name)
def test_examples_run_the_shipped_spec(path: Path) -> None:
    """The examples ran models/churn.yaml, which existed nowhere (the README's churn spec is named churn-lr):
    deploy/models/ ships it, valid, and its name: is what the examples promote under."""
    from tunesmith.spec.loader import load_spec

    for args in (c for c in _example_commands(path) if c[0] == "cycle"):
        shipped = MODELS / Path(args[1]).name
        assert shipped.is_file(), (path.name, args[1])
        spec = load_spec(shipped)
        assert spec.name == shipped.stem == _option(args, "--model-name"), (path.name, spec.name, args)


def test_the_report_steps_skip_a_cycle_that_refused_its_input(tmp_path: Path) -> None:
    """On bad input the cycle's JSON has `checked: null`: the report steps ran `tunesmith drift None`. Each GitHub
    Actions report step, run by bash against such a cycle.json, exits 0 without calling tunesmith."""
    from tunesmith.cycle import CycleOutcome, CycleReport

    refused = CycleReport.refused("models/churn.yaml", CycleOutcome.BAD_INPUT, "--data: no file")
    (tmp_path / "cycle.json").write_text(json.dumps(refused.to_json()))
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "tunesmith").write_text("#!/bin/sh\necho called >> \"$(dirname \"$0\")/calls\"\nexit 99\n")
    (fake / "tunesmith").chmod(0o755)
    python = Path(sys.executable).parent
    steps = [s for s in yaml.safe_load(YAML_FILES[0].read_text())["jobs"]["cycle"]["steps"]
             if "cycle.json" in str(s.get("run", "")) and "tunesmith cycle" not in s["run"]]
    assert len(steps) == 2, steps
    for step in steps:
        proc = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=tmp_path, capture_output=True, text=True,
                              env={"PATH": f"{fake}:{python}:/usr/bin:/bin", "DATA": "data/x.csv"}, timeout=60)
        assert proc.returncode == 0, (step["name"], proc.stdout, proc.stderr)
    assert not (fake / "calls").exists(), "tunesmith was called on a refused cycle's report"
