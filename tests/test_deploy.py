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
        return "".join(_text(v) if isinstance(v, ast.Constant) else "VALUE" for v in node.values)
    if isinstance(node, ast.BinOp):
        return _text(node.left) + _text(node.right)
    return "VALUE"


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


def installed_extras(text: str) -> list[set[str]]:
    """The extras of each `pip install tunesmith[...]` in a shell text."""
    return [{e.strip() for e in (m.group(1) or "").split(",") if e.strip()}
            for m in re.finditer(r"pip install[^\n]*?[\"']?tunesmith(?:\[([\w,\s-]*)\])?", text)]


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
    text = 'pip install --quiet "tunesmith[postgres]" && tunesmith cycle x.yaml --data d.csv --model-name m'
    assert needs_registry(tunesmith_commands(text)[0]) and installed_extras(text) == [{"postgres"}]
    assert installed_extras("pip install 'tunesmith[postgres, mlflow]'") == [{"postgres", "mlflow"}]
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
                  "commands": {t.task_id: t.bash_command for t in (dag.tasks if dag else [])}}))
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
    assert loaded["edges"] == [["cycle", "show_champion"], ["drift_report", "cycle"]]
    assert set(loaded["commands"]) == _dag_task_ids()
    for task_id, command in loaded["commands"].items():   # as Airflow will hand them to bash, flags checked too
        for args in tunesmith_commands(command):
            assert unknown_flags(args) == [], f"{task_id}: tunesmith {' '.join(args)}"
