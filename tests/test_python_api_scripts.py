"""The README's Python API example as a user saves and runs it: a script holding both the trial function and the
call that starts the run, with the process executor (whose workers import the script to find the function)."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_python_example() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Python API"):]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the README's Python API section has no python block"
    return match.group(1)


def run_script(folder: Path, source: str) -> subprocess.CompletedProcess[str]:
    script = folder / "demo.py"
    script.write_text(source, encoding="utf-8")
    return subprocess.run([sys.executable, str(script)], cwd=folder, capture_output=True, text=True, timeout=240)


def test_the_readme_python_example_runs_as_a_script(tmp_path: Path) -> None:
    source = readme_python_example().replace('"trials": 30', '"trials": 8')
    done = run_script(tmp_path, source)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == "8" and "completed" in lines[-2] and "'x':" in lines[-2]


def test_a_script_that_starts_its_run_at_top_level_is_refused_before_anything_is_recorded(tmp_path: Path) -> None:
    # The example without its __main__ guard: each worker importing it would start the experiment again.
    source = readme_python_example().replace('"trials": 30', '"trials": 8')
    unguarded = re.sub(r"^if __name__ == .__main__.:", "if True:", source, flags=re.M)
    assert unguarded != source
    done = run_script(tmp_path, unguarded)
    assert done.returncode == 1
    assert "error" not in done.stdout
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("tunesmith.errors.SpecError: trial.function: demo.py, line ")
    assert 'if __name__ == "__main__":' in last
    assert not (tmp_path / "tunesmith.db").exists()


def test_a_module_that_starts_a_run_when_imported_fails_its_trials_saying_why(tmp_path: Path) -> None:
    # Not the running script (the CLI runs a YAML spec naming the function): the workers' import is caught.
    (tmp_path / "objectives.py").write_text(textwrap.dedent('''
        import tunesmith

        def loss(config, trial):
            return config["x"] ** 2

        tunesmith.run({"name": "nested", "objective": {"metric": "loss", "direction": "minimize"},
                       "space": {"x": {"type": "float", "low": 0, "high": 1}}, "trial": "objectives.py:loss",
                       "budget": {"trials": 2}}, storage="sqlite:///nested.db")
    '''), encoding="utf-8")
    (tmp_path / "spec.yaml").write_text(textwrap.dedent('''
        name: imported
        objective: {metric: loss, direction: minimize}
        space: {x: {type: float, low: 0, high: 1}}
        trial: {function: "objectives.py:loss"}
        budget: {trials: 4}
    '''), encoding="utf-8")
    tunesmith = Path(sys.executable).with_name("tunesmith")
    done = subprocess.run([str(tunesmith), "run", "spec.yaml"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode != 0
    assert "starts an experiment when it is imported" in done.stdout + done.stderr
    assert not (tmp_path / "nested.db").exists()


@pytest.mark.parametrize("source, line", [
    ("import tunesmith\nr = tunesmith.run(spec)\n", 2),
    ("from tunesmith import run as go\nprint(go(spec))\n", 2),
    ("import tunesmith\nif __name__ == '__main__':\n    tunesmith.run(spec)\n", None),
    ("import tunesmith\ndef main():\n    tunesmith.run(spec)\n", None),
    ("import subprocess\nsubprocess.run(['ls'])\n", None),
])
def test_the_top_level_run_finder(source: str, line: int | None) -> None:
    from tunesmith.evaluation.loading import _unguarded_run_call

    assert _unguarded_run_call(source) == line
