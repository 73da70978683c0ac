"""The README's Python API example as a user saves and runs it: a script holding both the trial function and the
call that starts the run, with the process executor (whose workers import the script to find the function); and
trial code that starts an experiment when it is imported, which is refused before anything is recorded."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import tunesmith
from tunesmith.evaluation.loading import resolve_function

ROOT = Path(__file__).resolve().parents[1]
TUNESMITH = Path(sys.executable).with_name("tunesmith")


def readme_python_example() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Python API"):]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the README's Python API section has no python block"
    return match.group(1).replace('"trials": 30', '"trials": 8')


def run_script(folder: Path, source: str, *args: str) -> subprocess.CompletedProcess[str]:
    (folder / "demo.py").write_text(source, encoding="utf-8")
    return subprocess.run([sys.executable, *(args or ["demo.py"])], cwd=folder, capture_output=True, text=True,
                          timeout=240)


def test_the_readme_python_example_runs_as_a_script(tmp_path: Path) -> None:
    done = run_script(tmp_path, readme_python_example())
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == "8" and "completed" in lines[-2] and "'x':" in lines[-2]


def _unguarded(source: str) -> str:
    out = re.sub(r"^if __name__ == .__main__.:", "if True:", source, flags=re.M)
    assert out != source
    return out


# The README example without its __main__ guard, written the ways users write it.
UNGUARDED = {
    "plain": lambda s: _unguarded(s),
    "alias": lambda s: _unguarded(s).replace("import tunesmith\n", "import tunesmith as ts\ntunesmith = ts\n", 1),
    "main() at top level": lambda s: s.replace('if __name__ == "__main__":', "def main():", 1) + "\nmain()\n",
    "function by name": lambda s: _unguarded(s).replace("trial=objective,", 'trial="demo:objective",'),
}


@pytest.mark.parametrize("variant", list(UNGUARDED))
def test_a_script_that_starts_its_run_at_import_is_refused_before_anything_is_recorded(tmp_path: Path,
                                                                                       variant: str) -> None:
    # Each worker importing the script to find `objective` would start the experiment again.
    done = run_script(tmp_path, UNGUARDED[variant](readme_python_example()))
    assert done.returncode == 1, done.stdout + done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("tunesmith.errors.SpecError: trial.function: ") and "demo.py" in last
    assert "starts an experiment when it is imported" in last and 'if __name__ == "__main__":' in last
    assert not (tmp_path / "tunesmith.db").exists()


def test_an_unguarded_script_with_inline_trials_runs(tmp_path: Path) -> None:
    # Inline trials call the script's own function: nothing imports the script, so nothing runs twice.
    source = _unguarded(readme_python_example()).replace('{"kind": "process", "workers": 2}', '{"kind": "inline"}')
    done = run_script(tmp_path, source)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "8"


def test_a_python_m_script_that_workers_cannot_import_is_refused(tmp_path: Path) -> None:
    # Run as `python -m pkg.tune`, its relative import works; a worker importing the file on its own fails.
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "helpers.py").write_text("OFFSET = 0.3\n")
    source = readme_python_example().replace("import tunesmith\n", "import tunesmith\nfrom .helpers import OFFSET\n")
    (tmp_path / "pkg" / "tune.py").write_text(source)
    done = subprocess.run([sys.executable, "-m", "pkg.tune"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 1
    assert "ImportError: attempted relative import" in done.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "tunesmith.db").exists()


NESTED = '''
import tunesmith

def loss(config, trial):
    return config["x"] ** 2

tunesmith.run({"name": "nested", "objective": {"metric": "loss", "direction": "minimize"},
               "space": {"x": {"type": "float", "low": 0, "high": 1}}, "trial": "objectives.py:loss",
               "budget": {"trials": 2}}, storage="sqlite:///nested.db")
'''


@pytest.mark.parametrize("ref", ["objectives.py:loss", "mypkg.objectives:loss"])
def test_trial_code_that_starts_a_run_when_imported_is_refused_by_run(tmp_path: Path, ref: str) -> None:
    (tmp_path / "objectives.py").write_text(NESTED, encoding="utf-8")
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "objectives.py").write_text(NESTED, encoding="utf-8")
    (tmp_path / "spec.yaml").write_text(textwrap.dedent(f'''
        name: imported
        objective: {{metric: loss, direction: minimize}}
        space: {{x: {{type: float, low: 0, high: 1}}}}
        trial: {{function: "{ref}"}}
        budget: {{trials: 4}}
    '''), encoding="utf-8")
    done = subprocess.run([str(TUNESMITH), "run", "spec.yaml"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "starts an experiment when it is imported" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "nested.db").exists() and not (tmp_path / "tunesmith.db").exists()


def test_a_run_in_one_thread_is_not_refused_while_another_imports_trial_code(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)   # the run's trial folders
    go = tmp_path / "go"
    (tmp_path / "slow.py").write_text(  # its import lasts until the other thread's run is over
        f"import os, time\nwhile not os.path.exists({str(go)!r}):\n    time.sleep(0.01)\n\n"
        "def loss(config, trial):\n    return 1.0\n")
    (tmp_path / "fast.py").write_text("def loss(config, trial):\n    return config['x']\n")
    importer = threading.Thread(target=resolve_function, args=(str(tmp_path / "slow.py") + ":loss", None))
    importer.start()
    try:
        time.sleep(0.2)
        result = tunesmith.run({"name": "beside", "objective": {"metric": "loss", "direction": "minimize"},
                                "space": {"x": {"type": "float", "low": 0, "high": 1}},
                                "trial": f"{tmp_path / 'fast.py'}:loss", "budget": {"trials": 2},
                                "executor": {"kind": "inline"}}, storage=f"sqlite:///{tmp_path / 'b.db'}")
        assert importer.is_alive(), "the other thread was importing all through the run"
    finally:
        go.touch()
        importer.join(timeout=30)
    assert len(result.trials) == 2


@pytest.mark.parametrize("how", ["-c", "stdin"])
def test_a_function_defined_in_python_c_or_stdin_is_refused_saying_why(tmp_path: Path, how: str) -> None:
    """`python -c` and `python -` give a function whose file is '<string>' or '<stdin>': the spec named a module
    '/abs/folder/<string>' and failed with "No module named '/abs/folder/<string>'", a file no user wrote."""
    source = textwrap.dedent("""
        import tunesmith
        def objective(config, trial):
            return config["x"] ** 2
        try:
            tunesmith.run({"name": "snippet", "objective": {"metric": "loss", "direction": "minimize"},
                           "space": {"x": {"type": "float", "low": -1, "high": 1}}, "trial": objective,
                           "budget": {"trials": 2}})
        except tunesmith.SpecError as e:
            print("refused:", e.path, e.message)
    """)
    args = [sys.executable, "-c", source] if how == "-c" else [sys.executable, "-"]
    done = subprocess.run(args, input=None if how == "-c" else source, cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("refused: trial the trial function 'objective' is defined interactively"), done.stdout
    assert "move it into a .py file" in done.stdout and "No module named" not in done.stdout
    assert not (tmp_path / "tunesmith.db").exists()
