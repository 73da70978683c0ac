"""The README's Python API example as a user saves and runs it: a script holding both the trial function and the
call that starts the run, with the process executor (whose workers import the script to find the function); and
trial code that starts an experiment when it is imported, which is refused before anything is recorded."""

from __future__ import annotations

import json
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


NOTEBOOK = """
import os, signal, tunesmith
def objective(config, trial):
    if trial.number == STOP_AT:   # the user's Ctrl-C, mid-run
        os.kill(os.getpid(), signal.SIGINT)
    return (config["x"] - 0.3) ** 2
SPEC = {"name": "nb", "objective": {"metric": "loss", "direction": "minimize"},
        "space": {"x": {"type": "float", "low": 0, "high": 1}}, "trial": objective, "budget": {"trials": 4},
        "seed": 7}
"""


def python_stdin(folder: Path, source: str) -> subprocess.CompletedProcess[str]:
    """``python - < script.py``: the functions it defines are truly interactive (``__main__``, no file)."""
    return subprocess.run([sys.executable, "-"], input=textwrap.dedent(source), cwd=folder, capture_output=True,
                          text=True, timeout=240)


def cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(TUNESMITH), *args], cwd=folder, capture_output=True, text=True, timeout=240)


def test_a_function_defined_on_stdin_runs_inline_and_is_handed_over_again_to_resume(tmp_path: Path) -> None:
    """An Optuna user's notebook: the objective defined in a cell, `tunesmith.run` with no executor section. It
    was refused ("defined interactively ... move it into a .py file") even with kind inline."""
    started = python_stdin(tmp_path, NOTEBOOK.replace("STOP_AT", "2") + """
r = tunesmith.run(SPEC)
print(r.status.value, len(r.trials), r.experiment.spec["trial"]["function"], r.experiment.spec["executor"]["kind"])
""")
    assert started.returncode == 0, started.stderr[-2000:]
    assert started.stdout.split() == ["interrupted", "3", "<interactive>:objective", "inline"], started.stdout

    # The CLI cannot import it: it says how to hand it over, exit 2, and the record is as it was.
    for args in (["resume", "nb"], ["reproduce", "nb", "0"]):
        done = cli(tmp_path, *args)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "defined interactively" in done.stderr and "tunesmith.resume('nb', trial=objective)" in done.stderr
        assert "Traceback" not in done.stderr
    # A re-tune (and a cycle) would record a new experiment, which no Python call can hand the function to.
    for args in (["retune", "nb", "--data", "new.csv"], ["cycle", "nb", "--data", "new.csv"]):
        done = cli(tmp_path, *args)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "defined interactively" in done.stderr and "put the function in a .py file" in done.stderr, done.stderr
        assert "nb-retune" not in done.stderr and "Traceback" not in done.stderr
    from helpers import cli_json_in_process  # a read-back of the record the refusals left as it was

    shown = cli_json_in_process("show", "nb", "--storage", f"sqlite:///{tmp_path / 'tunesmith.db'}")
    assert shown["status"] == "interrupted" and shown["trials"]["completed"] == 2, shown

    resumed = python_stdin(tmp_path, NOTEBOOK.replace("STOP_AT", "-1") + """
def other(config, trial):
    return 0.0
try:
    tunesmith.resume("nb", trial=other)
except tunesmith.SpecError as e:
    print("refused:", e.path, e.message)
r = tunesmith.resume("nb", trial=objective)
print(r.status.value, len(r.trials), sorted(t.state.value for t in r.trials))
print("matched", tunesmith.reproduce_trial("nb", 0, trial=objective).matched)
""")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    refused, finished, reproduced = resumed.stdout.strip().splitlines()
    assert refused.startswith("refused: trial the experiment ran the function 'objective'; got 'other'"), refused
    assert finished.startswith("completed 4 ['completed', 'completed', 'completed', 'completed']"), finished
    assert reproduced == "matched True"


def test_the_readme_notebook_example_runs_from_stdin(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "# a notebook cell" in b)
    done = python_stdin(tmp_path, "import tunesmith\n" + block.replace('"trials": 20', '"trials": 3')
                        + "print(result.status.value, len(result.trials))\n")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["completed", "3"], done.stdout


@pytest.mark.parametrize("how", ["-c", "stdin"])
def test_a_lambda_runs_inline(tmp_path: Path, how: str) -> None:
    source = textwrap.dedent("""
        import tunesmith
        r = tunesmith.run({"name": "lam", "objective": {"metric": "loss", "direction": "minimize"},
                           "space": {"x": {"type": "float", "low": -1, "high": 1}},
                           "trial": lambda config, trial: config["x"] ** 2, "budget": {"trials": 3}})
        print(r.status.value, len(r.trials), r.experiment.spec["trial"]["function"])
    """)
    args = [sys.executable, "-c", source] if how == "-c" else [sys.executable, "-"]
    done = subprocess.run(args, input=None if how == "-c" else source, cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["completed", "3", "<interactive>:<lambda>"], done.stdout


@pytest.mark.parametrize("executor", [{"kind": "process"}, {"workers": 2}, {"trial_timeout": 60}],
                         ids=["kind process", "workers", "timeout"])
def test_an_interactive_function_with_worker_processes_is_refused_naming_both_fixes(tmp_path: Path,
                                                                                    executor: dict[str, object]) -> None:
    """Worker processes cannot import it; a spec that asks for them (a kind, or what only they do) is not moved
    inline unasked. `python -` gives a function whose file is '<stdin>': the spec once named a module
    '/abs/folder/<stdin>' and failed with "No module named", a file no user wrote."""
    done = python_stdin(tmp_path, NOTEBOOK.replace("STOP_AT", "-1") + f"""
try:
    tunesmith.run({{**SPEC, "executor": {executor!r}}})
except tunesmith.SpecError as e:
    print("refused:", e.path, e.message)
""")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("refused: trial the trial function 'objective' is defined interactively"), done.stdout
    assert "executor: {kind: inline}" in done.stdout and "move it into a .py file" in done.stdout
    assert "No module named" not in done.stdout
    assert not (tmp_path / "tunesmith.db").exists()


@pytest.mark.parametrize("ref", ["obj:objective", "obj.py:objective"], ids=["module", "file"])
def test_an_edited_objective_file_is_read_again_in_the_same_process(tmp_path: Path, monkeypatch, ref: str) -> None:
    """A notebook: run, edit the objective file, run again. The second run (and a `validate` after a third edit)
    used the function found the first time: resolve_function's cache was keyed by the reference alone, and the
    module it was read from stayed in sys.modules. Written twice at once, the file keeps its size and may keep its
    mtime (the kernel's clock ticks coarser than nanoseconds): only its content tells the edit."""
    from helpers import cli_in_process

    monkeypatch.chdir(tmp_path)
    objective = tmp_path / "obj.py"

    def spec(name: str) -> str:
        path = tmp_path / f"{name}.yaml"
        path.write_text(json.dumps({"name": name, "objective": {"metric": "loss", "direction": "minimize"},
                                    "space": {"x": {"type": "float", "low": 0, "high": 1}}, "trial": {"function": ref},
                                    "budget": {"trials": 1}, "executor": {"kind": "inline"}}))
        return str(path)

    storage = f"sqlite:///{tmp_path / 'tunesmith.db'}"
    objective.write_text("def objective(config, trial):\n    return 1.0\n")
    assert [t.values for t in tunesmith.run(spec("first"), storage=storage).trials] == [(1.0,)]
    objective.write_text("def objective(config, trial):\n    return 2.0\n")
    assert [t.values for t in tunesmith.run(spec("second"), storage=storage).trials] == [(2.0,)]
    objective.write_text("def objective(config):\n    return 3.0\n")
    code, out, err = cli_in_process("validate", spec("third"))
    assert (code, out) == (2, ""), err
    assert err.startswith("error: trial.function: objective(config) cannot be called as objective(config, trial)"), err


class Shifted:
    """Data held on self, the objective a method: the usual Optuna pattern, study.optimize(obj.objective)."""

    def __init__(self, shift: float) -> None:
        self.shift = shift

    def objective(self, config: dict[str, float], trial: object) -> float:
        return (config["x"] - self.shift) ** 2

    @classmethod
    def by_class(cls, config: dict[str, float], trial: object) -> float:
        return config["x"]


def test_a_method_bound_to_an_object_runs_inline_and_is_refused_worker_processes(tmp_path: Path,
                                                                                  monkeypatch) -> None:
    """A worker could import the class, never the object: its method was stored as 'module:Shifted.objective',
    whose unbound signature (self, config, trial) was refused as 'cannot be called as objective(config, trial)',
    with kind inline too, though the bound method is called so."""
    monkeypatch.chdir(tmp_path)
    spec = {"name": "bound", "objective": {"metric": "loss", "direction": "minimize"},
            "space": {"x": {"type": "float", "low": 0, "high": 1}}, "trial": Shifted(0.9).objective,
            "budget": {"trials": 3}, "seed": 0}
    for executor in ({}, {"executor": {"kind": "inline"}}):
        result = tunesmith.run({**spec, **executor, "name": f"bound{len(executor)}"},
                               storage=f"sqlite:///{tmp_path / 'b.db'}")
        assert result.experiment.spec["trial"]["function"] == "<interactive>:objective"
        assert [t.values for t in result.trials] == [((t.params["x"] - 0.9) ** 2,) for t in result.trials]
    with pytest.raises(tunesmith.SpecError) as info:
        tunesmith.run({**spec, "name": "bound-process", "executor": {"kind": "process"}},
                      storage=f"sqlite:///{tmp_path / 'b.db'}")
    assert info.value.path == "trial" and "is defined interactively" in info.value.message, info.value.message
    assert "cannot be called as" not in info.value.message
    # bound to the class, a worker imports it as this process finds it
    made = tunesmith.ExperimentSpec.model_validate({**spec, "trial": Shifted.by_class, "executor": {"kind": "process"}})
    assert made.trial is not None and made.trial.function == f"{__name__}:Shifted.by_class"


def test_a_spec_rebuilt_from_its_model_dump_is_told_to_pass_the_function_itself(tmp_path: Path,
                                                                                  monkeypatch) -> None:
    """model_dump() keeps an interactive function's name only (<interactive>:objective). Run anew, that spec was
    told to `tunesmith.resume('dumped', trial=objective)`, an experiment never recorded (ExperimentNotFound)."""
    from helpers import cli_in_process

    monkeypatch.chdir(tmp_path)

    def objective(config: dict[str, float], trial: object) -> float:
        return config["x"]

    spec = tunesmith.ExperimentSpec(name="base", objective={"metric": "loss", "direction": "minimize"},
                                    space={"x": tunesmith.Float(0, 1)}, trial=objective, budget={"trials": 2})
    dumped = {**spec.model_dump(), "name": "dumped"}
    storage = f"sqlite:///{tmp_path / 'd.db'}"
    with pytest.raises(tunesmith.SpecError) as info:
        tunesmith.run(dumped, storage=storage)
    assert info.value.path == "trial.function", info.value
    assert "pass the function itself, trial=objective" in info.value.message, info.value.message
    assert "resume" not in info.value.message
    assert not (tmp_path / "d.db").exists()
    assert tunesmith.run({**dumped, "trial": objective}, storage=storage).status.value == "completed"

    # A spec file cannot hand it over: it is told to name a function that a process can import.
    (tmp_path / "s.yaml").write_text(json.dumps({**spec.to_json(), "name": "from-file"}))
    code, out, err = cli_in_process("run", str(tmp_path / "s.yaml"), "--storage", storage)
    assert code == 2 and "'module:function'" in err and "resume" not in err, err


def test_the_exists_hint_of_an_interactive_experiment_hands_the_function_over(tmp_path: Path, monkeypatch) -> None:
    """The same notebook cell run twice: the hint said tunesmith.resume('nb-twice'), which was then refused for
    want of trial=objective. It names the function the record ran, and following it works."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TUNESMITH_STORAGE", f"sqlite:///{tmp_path / 'tunesmith.db'}")

    def objective(config: dict[str, float], trial: object) -> float:
        return config["x"]

    def spec(fn: object) -> dict[str, object]:
        return {"name": "nb-twice", "objective": {"metric": "loss", "direction": "minimize"},
                "space": {"x": {"type": "float", "low": 0, "high": 1}}, "trial": fn, "budget": {"trials": 2}}

    tunesmith.run(spec(objective))
    for fn in (objective, lambda config, trial: 0.0):  # the record's name, whatever this cell's function is
        with pytest.raises(tunesmith.ExperimentExists) as exists:
            tunesmith.run(spec(fn))
        assert "continue it with tunesmith.resume('nb-twice', trial=objective) (which runs" in str(exists.value)
    assert tunesmith.resume("nb-twice", trial=objective).status.value == "completed"


def _shifted_loss(config: dict[str, float], trial: object, shift: float) -> float:
    return (config["x"] - shift) ** 2


def test_a_partial_trial_function_is_refused_worker_processes_as_a_partial_not_as_interactive(tmp_path: Path,
                                                                                               monkeypatch) -> None:
    """`trial=functools.partial(objective, X=X)` (Optuna's way to pass data into study.optimize) of a module-level
    function in a .py file was refused as "defined interactively (a notebook, python -c, ...)": the wrong diagnosis,
    and no word of how to hand the function its data. It runs inline, as before."""
    import functools

    monkeypatch.chdir(tmp_path)
    spec = {"name": "partial", "objective": {"metric": "loss", "direction": "minimize"},
            "space": {"x": {"type": "float", "low": 0, "high": 1}},
            "trial": functools.partial(_shifted_loss, shift=0.3),
            "budget": {"trials": 2}, "seed": 0}
    with pytest.raises(tunesmith.SpecError) as info:
        tunesmith.run({**spec, "executor": {"kind": "process", "workers": 2}}, storage=f"sqlite:///{tmp_path / 'p.db'}")
    assert info.value.path == "trial"
    assert info.value.message.startswith(
        "the trial function is a functools.partial of '_shifted_loss', an object worker processes cannot import by "
        "name (executor.kind process); run it in this process with executor: {kind: inline}"), info.value.message
    assert ("or pass the module-level function itself and give it its data another way: load the data at the "
            "module's top level, or read a path set in trial.env") in info.value.message
    assert "defined interactively" not in info.value.message
    result = tunesmith.run({**spec, "executor": {"kind": "inline"}}, storage=f"sqlite:///{tmp_path / 'p.db'}")
    assert [t.values for t in result.trials] == [((t.params["x"] - 0.3) ** 2,) for t in result.trials]


MYTRIAL = """
print("mytrial: top-level code runs", flush=True)
TARGET = 0.5          # a default; the notebook sets the real value
def objective(config, trial):
    return {"loss": (config["x"] - TARGET) ** 2, "target_seen": TARGET}
"""


def test_inline_calls_the_function_object_handed_over_from_a_module_beside_the_spec(tmp_path: Path) -> None:
    """A notebook imports its trial module, sets something on it, and runs inline: the run exec'd a fresh copy of
    the module under another name (its top-level code ran twice, the notebook's setting was ignored, and the search
    optimised toward the default). The object handed over is called; the record keeps `mytrial:objective`, by which
    a resume without the object (a worker, the CLI) finds it afresh."""
    (tmp_path / "mytrial.py").write_text(MYTRIAL)
    done = python_stdin(tmp_path, """
        import sys, tunesmith, mytrial
        mytrial.TARGET = 0.25
        spec = {"name": "handed", "objective": {"metric": "loss", "direction": "minimize"},
                "space": {"x": {"type": "float", "low": 0, "high": 1}}, "trial": mytrial.objective,
                "budget": {"trials": 3}, "executor": {"kind": "inline"}, "seed": 0}
        r = tunesmith.run(spec)
        print(sorted({t.metrics["target_seen"] for t in r.trials}), r.experiment.spec["trial"]["function"])
        print([name for name in sys.modules if name.startswith("tunesmith_user_")])
        r = tunesmith.resume("handed", trial=mytrial.objective, trials=4)
        print(sorted(t.metrics["target_seen"] for t in r.trials))
        try:
            tunesmith.resume("handed", trial=print, trials=5)
        except tunesmith.SpecError as e:
            print("refused:", e.message)
    """)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert lines[0] == "mytrial: top-level code runs", lines
    assert lines[1] == "[0.25] mytrial:objective", lines
    assert lines[2] == "[]", "the module was executed again under another name"
    assert lines[3] == "[0.25, 0.25, 0.25, 0.25]", lines
    assert lines[4].startswith("refused: the experiment runs 'mytrial:objective'"), lines
    assert len(lines) == 5, lines

    # A resume with nothing handed over (the CLI, another kernel) finds the function by its reference: the module's
    # file, read afresh, with its own TARGET
    resumed = subprocess.run([str(TUNESMITH), "resume", "handed", "--trials", "5", "--quiet"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    trials = tunesmith.open_experiment("handed", storage=f"sqlite:///{tmp_path / 'tunesmith.db'}").trials
    assert sorted(t.metrics["target_seen"] for t in trials) == [0.25, 0.25, 0.25, 0.25, 0.5]


def test_the_api_says_storage_and_the_absolute_path_where_no_store_or_experiment_is_found(tmp_path: Path,
                                                                                         monkeypatch) -> None:
    """From Python the errors named the CLI's `--storage` / TUNESMITH_STORAGE and the relative 'tunesmith.db': a
    notebook that had changed folder could not tell which folder was searched, nor that the fix is `storage=`."""
    from tunesmith.errors import StoreNotFound

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TUNESMITH_STORAGE", raising=False)
    for call in (lambda: tunesmith.open_experiment("anything"), lambda: tunesmith.resume("anything"),
                 lambda: tunesmith.reproduce_trial("anything", 0)):
        with pytest.raises(StoreNotFound) as missing:
            call()
        said = str(missing.value)
        assert said.startswith(f"no store at '{tmp_path / 'tunesmith.db'}' (nothing has run here yet); "), said
        assert "pass storage=" in said and "--storage" not in said, said
    tunesmith.run({"name": "other", "objective": {"metric": "loss", "direction": "minimize"},
                   "space": {"x": {"type": "float", "low": 0, "high": 1}}, "trial": lambda config, trial: 0.0,
                   "budget": {"trials": 1}})
    with pytest.raises(tunesmith.ExperimentNotFound) as unknown:
        tunesmith.open_experiment("rel")
    assert str(unknown.value) == (f"no experiment named 'rel' in sqlite:///tunesmith.db ({tmp_path / 'tunesmith.db'}); "
                                  "experiments here: other; pass storage= to read another store")


def test_a_throwaway_in_memory_run_can_be_run_again_under_its_name(tmp_path: Path, monkeypatch) -> None:
    """The README offers storage='sqlite://' for a throwaway notebook run; running the same cell again was refused:
    the first run's trial folders were left in .tunesmith/NAME, of an experiment no store has. An in-memory run's
    trial folders go in a temporary folder of its own."""
    monkeypatch.chdir(tmp_path)
    spec = {"name": "scratch", "objective": {"metric": "loss", "direction": "minimize"},
            "space": {"x": {"type": "float", "low": 0, "high": 1}}, "trial": lambda config, trial: config["x"],
            "budget": {"trials": 2}}
    first = tunesmith.run(spec, storage="sqlite://")
    second = tunesmith.run(spec, storage="sqlite://")
    assert [len(r.trials) for r in (first, second)] == [2, 2]
    folders = [r.experiment.spec["workdir"] for r in (first, second)]
    assert folders[0] != folders[1] and not (tmp_path / ".tunesmith").exists(), folders
    assert all(Path(str(t.log_path)).is_file() for t in second.trials)  # (its logs, to read after the run)


def test_the_readme_notebook_report_command_writes_the_report(tmp_path: Path, monkeypatch) -> None:
    """The README's way to the HTML report from a notebook: the CLI through the kernel's own Python (`!tunesmith`
    is no command where the kernel's environment is not activated)."""
    monkeypatch.chdir(tmp_path)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = re.search(r"`!\{sys\.executable\} (-m tunesmith report NAME -o report\.html)`", readme)
    assert command, "the README's Python API section lost its notebook report line"
    tunesmith.run({"name": "nb-report", "objective": {"metric": "loss", "direction": "minimize"},
                   "space": {"x": {"type": "float", "low": 0, "high": 1}}, "trial": lambda config, trial: config["x"],
                   "budget": {"trials": 2}}, storage=f"sqlite:///{tmp_path / 'tunesmith.db'}")
    args = command.group(1).replace("NAME", "nb-report").split()
    done = subprocess.run([sys.executable, *args], cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "<html" in (tmp_path / "report.html").read_text(encoding="utf-8")[:2000].lower()
