"""An inline function trial runs in the spec's folder, as a worker process's does (README, *Trials*), and the
caller's working folder is given back after each trial: a notebook that moved on to another folder, or a YAML spec
run from elsewhere, read the trial's relative files from wherever the kernel was (walk U, F2)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import tunesmith

TUNESMITH = Path(sys.executable).with_name("tunesmith")


def python_stdin(folder: Path, source: str) -> subprocess.CompletedProcess[str]:
    """``python - < script.py``: its functions are interactive (``__main__``, no file), as a notebook's are."""
    return subprocess.run([sys.executable, "-"], input=textwrap.dedent(source), cwd=folder, capture_output=True,
                          text=True, timeout=240)


def test_a_resume_from_another_folder_reads_the_experiments_own_data(tmp_path: Path) -> None:
    """The walk's repro: run in A, `os.chdir` to B, resume there. Trials 2 and 3 read B's data.txt, and one
    experiment held trials on two datasets, with no warning."""
    for folder, target in (("A", "0.25"), ("B", "0.75")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "data.txt").write_text(target)
    done = python_stdin(tmp_path, f"""
        import os, tunesmith
        root = {str(tmp_path)!r}
        def f(config, trial):
            t = float(open("data.txt").read())          # data beside the experiment
            return {{"loss": (config["x"] - t) ** 2, "target": t}}
        os.chdir(f"{{root}}/A")
        tunesmith.run({{"name": "rel", "objective": {{"metric": "loss", "direction": "minimize"}},
                       "space": {{"x": {{"type": "float", "low": 0, "high": 1}}}}, "trial": f,
                       "budget": {{"trials": 2}}, "seed": 0}})
        os.chdir(f"{{root}}/B")                            # the notebook moved on
        r = tunesmith.resume("rel", storage=f"sqlite:///{{root}}/A/tunesmith.db", trial=f, trials=4)
        print(os.getcwd())
        print(sorted((t.number, t.metrics["target"]) for t in r.trials))
    """)
    assert done.returncode == 0, done.stderr[-2000:]
    cwd, targets = done.stdout.strip().splitlines()
    assert cwd == str(tmp_path / "B"), "the caller's folder was not given back"
    assert targets == "[(0, 0.25), (1, 0.25), (2, 0.25), (3, 0.25)]", targets


def test_an_inline_yaml_spec_run_from_another_folder_finds_its_files(tmp_path: Path) -> None:
    """`tunesmith run proj/inline.yaml` failed every trial (FileNotFoundError: 'data.txt') where the process
    executor's found the file beside the spec."""
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "data.txt").write_text("0.25")
    (proj / "obj.py").write_text("def objective(config, trial):\n    return float(open('data.txt').read())\n")
    for kind in ("inline", "process"):
        (proj / f"{kind}.yaml").write_text(
            f"name: cwd-{kind}\nobjective: {{metric: loss, direction: minimize}}\n"
            f"space: {{x: {{type: float, low: 0, high: 1}}}}\nbudget: {{trials: 2}}\nexecutor: {{kind: {kind}}}\n"
            "trial: {function: 'obj:objective'}\n")
        done = subprocess.run([str(TUNESMITH), "run", f"proj/{kind}.yaml", "--quiet"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, (kind, done.stdout + done.stderr)
        trials = tunesmith.open_experiment(f"cwd-{kind}", storage=f"sqlite:///{tmp_path / 'tunesmith.db'}").trials
        assert [t.values for t in trials] == [(0.25,), (0.25,)], (kind, [t.error for t in trials])
    assert not (proj / "tunesmith.db").exists(), "the store followed the trial into the spec's folder"


def _spec(name: str, trial: object, trials: int = 3) -> dict[str, object]:
    return {"name": name, "objective": {"metric": "loss", "direction": "minimize"},
            "space": {"x": {"type": "float", "low": 0, "high": 1}}, "trial": trial, "budget": {"trials": trials},
            "executor": {"kind": "inline", "retries": 0}, "seed": 0}


def test_the_callers_folder_is_given_back_after_a_trial_that_raised_or_moved_elsewhere(tmp_path: Path,
                                                                                   monkeypatch) -> None:
    """A trial that fails, one that changes folder itself, and the store (a relative SQLite path, opened before
    the trial and written to while it runs) all leave the notebook's folder as it was."""
    spec_dir, notebook = tmp_path / "spec", tmp_path / "notebook"
    spec_dir.mkdir()
    notebook.mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(notebook)
    seen: list[str] = []

    def objective(config: dict[str, float], trial: object) -> float:
        seen.append(os.getcwd())
        if trial.number == 0:  # type: ignore[attr-defined]
            raise ValueError("first one fails")
        os.chdir(tmp_path / "elsewhere")
        trial.report(0, config["x"])  # type: ignore[attr-defined]  # (the store writes while the trial runs)
        return config["x"]

    result = tunesmith.run({**_spec("back", objective), "base_dir": str(spec_dir)}, storage="sqlite:///nb.db")
    assert os.getcwd() == str(notebook)
    assert seen == [str(spec_dir)] * 3
    assert [t.state.value for t in sorted(result.trials, key=lambda t: t.number)] == ["failed", "completed",
                                                                                      "completed"]
    assert (notebook / "nb.db").exists() and not (spec_dir / "nb.db").exists()
    assert result.experiment.spec["base_dir"] == str(spec_dir)


def test_the_callers_folder_is_given_back_after_an_interrupt(tmp_path: Path, monkeypatch) -> None:
    """Ctrl-C in an inline trial: the run returns interrupted, in the folder it was called from."""
    import signal

    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    monkeypatch.chdir(tmp_path)

    def objective(config: dict[str, float], trial: object) -> float:
        if trial.number == 1:  # type: ignore[attr-defined]
            os.kill(os.getpid(), signal.SIGINT)
        return config["x"]

    result = tunesmith.run({**_spec("ctrl-c", objective), "base_dir": str(spec_dir)}, storage="sqlite:///nb.db")
    assert result.status.value == "interrupted"
    assert os.getcwd() == str(tmp_path)


def test_inline_runs_in_two_threads_each_run_in_their_own_folder(tmp_path: Path, monkeypatch) -> None:
    """The working folder is the process's: two inline runs in threads, from two spec folders, take turns with it
    rather than each running its trials in whichever folder the other entered last; the caller's comes back."""
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "which.txt").write_text(folder)
    monkeypatch.chdir(tmp_path)
    both_in = threading.Barrier(2, timeout=30)
    results: dict[str, list[str]] = {}

    def run(folder: str) -> None:
        def objective(config: dict[str, float], trial: object) -> dict[str, float]:
            if trial.number == 0:  # type: ignore[attr-defined]
                try:
                    both_in.wait(timeout=2)  # the other run's trial waits for this one's folder: no meeting
                except threading.BrokenBarrierError:
                    pass
            results.setdefault(folder, []).append(Path("which.txt").read_text())
            return {"loss": config["x"]}

        tunesmith.run({**_spec(f"thread-{folder}", objective), "base_dir": str(tmp_path / folder)},
                      storage=f"sqlite:///{tmp_path / (folder + '.db')}")

    threads = [threading.Thread(target=run, args=(f,)) for f in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert results == {"a": ["a"] * 3, "b": ["b"] * 3}, results
    assert os.getcwd() == str(tmp_path)


def test_a_run_nested_in_an_inline_trial_runs_in_its_own_folder_and_gives_the_outer_one_back(tmp_path: Path,
                                                                                            monkeypatch) -> None:
    """An inline trial that runs a search of its own (a TunedSearchCV fit, a nested tunesmith.run) in the same
    thread: the inner run's trials are in its folder, the outer trial's folder comes back after."""
    outer_dir, inner_dir = tmp_path / "outer", tmp_path / "inner"
    outer_dir.mkdir()
    inner_dir.mkdir()
    monkeypatch.chdir(tmp_path)
    seen: list[tuple[str, str]] = []

    def inner(config: dict[str, float], trial: object) -> float:
        seen.append(("inner", os.getcwd()))
        return config["x"]

    def outer(config: dict[str, float], trial: object) -> float:
        n = trial.number  # type: ignore[attr-defined]
        tunesmith.run({**_spec(f"inner-{n}", inner, trials=1), "base_dir": str(inner_dir)},
                      storage=f"sqlite:///{tmp_path / 'inner.db'}")
        seen.append(("outer", os.getcwd()))
        return config["x"]

    tunesmith.run({**_spec("outer", outer, trials=2), "base_dir": str(outer_dir)}, storage="sqlite:///outer.db")
    assert seen == [("inner", str(inner_dir)), ("outer", str(outer_dir))] * 2
    assert os.getcwd() == str(tmp_path)


def test_a_relative_metrics_file_is_written_where_the_command_was_started_while_an_inline_trial_runs(
        tmp_path: Path) -> None:
    """The metrics' refresh thread rewrites the textfile every 2 s, while the trial runs in the spec's folder: a
    relative --metrics-file was written there then."""
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "slow.py").write_text("import time\ndef objective(config, trial):\n    time.sleep(4.5)\n    return 1.0\n")
    (proj / "slow.yaml").write_text(
        "name: slow\nobjective: {metric: loss, direction: minimize}\nspace: {x: {type: float, low: 0, high: 1}}\n"
        "budget: {trials: 1}\nexecutor: {kind: inline}\ntrial: {function: 'slow:objective'}\n")
    done = subprocess.run([str(TUNESMITH), "run", "proj/slow.yaml", "--quiet", "--metrics-file", "m.prom"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "m.prom").exists()
    assert not (proj / "m.prom").exists()


def test_two_threads_each_nesting_a_run_in_another_folder_do_not_wait_for_each_other(tmp_path: Path,
                                                                                      monkeypatch) -> None:
    """Review Y: two threads each holding folder a, each entering folder b for a nested run, each waited for the
    other to leave a: for ever. A thread that holds a folder already enters the nested one at once."""
    from tunesmith.executor.working_folder import in_spec_folder

    monkeypatch.chdir(tmp_path)
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    both_in_a = threading.Barrier(2, timeout=10)
    nested: list[bool] = []

    def trial() -> None:
        with in_spec_folder(str(a)):
            both_in_a.wait()
            with in_spec_folder(str(b)):
                nested.append(True)

    threads = [threading.Thread(target=trial, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert nested == [True, True], "the two nested runs waited for each other"
    assert Path.cwd() == tmp_path
