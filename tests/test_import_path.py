"""The spec's folder on the Python path: there while its code is imported and while a trial runs (a function may
import its helpers when called), and taken off after, so that a process that checks or runs specs in turn (the
Python API, `cli.main` called in-process, `tunesmith validate A B`) is not left with one spec's folder ahead of the
next one's modules."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest
import yaml

import tunesmith
from tunesmith.evaluation.loading import resolve_function
from tunesmith.import_path import folder_importable
from tunesmith.tasks.pipeline import import_class


@pytest.fixture
def unloaded_after(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Unload the named modules at the test's end (this process imports the test's trial code)."""
    def names(*modules: str) -> None:
        for name in modules:
            monkeypatch.setitem(sys.modules, name, None)  # so that the test's end puts back what was there, or nothing
            del sys.modules[name]
    return names


@pytest.mark.parametrize("ref", ["path_probe_train:objective", "path_probe_pkg.train:objective"],
                         ids=["module-beside-the-spec", "package-beside-the-spec"])
def test_resolve_function_leaves_the_callers_python_path_as_it_was(tmp_path: Path, unloaded_after, ref: str) -> None:
    """It put the spec's folder on sys.path for good: an in-process caller (the Python API, `cli.main`) kept it
    there, ahead of the next spec's modules."""
    unloaded_after("path_probe_pkg", "path_probe_pkg.train")
    (tmp_path / "path_probe_pkg").mkdir()
    for module in ("path_probe_train.py", "path_probe_pkg/train.py"):
        (tmp_path / module).write_text("def objective(config, trial):\n    return 0.0\n")
    before = list(sys.path)
    assert resolve_function(ref, str(tmp_path)).__name__ == "objective"
    assert sys.path == before


def test_a_pipeline_class_import_leaves_the_callers_python_path_as_it_was(tmp_path: Path, unloaded_after) -> None:
    unloaded_after("path_probe_steps")
    (tmp_path / "path_probe_steps.py").write_text(
        "from sklearn.base import BaseEstimator\n\n\nclass Step(BaseEstimator):\n    pass\n")
    before = list(sys.path)
    assert import_class("path_probe_steps.Step", "task.pipeline.0", tmp_path).__name__ == "Step"
    assert sys.path == before


@pytest.mark.parametrize("executor", ["inline", "process"])
def test_a_trial_imports_its_helpers_when_called_and_the_run_leaves_the_python_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unloaded_after, executor: str) -> None:
    """A function that imports a module beside it when called (not at its module's top) finds it in every trial,
    in this process (inline) and in a worker, though the folder is on the path only while trial code runs; the
    run leaves this process's path as it was. The spec's folder is not the working folder, which is on the path
    of `python -m` (pytest's, a worker's)."""
    unloaded_after("path_probe_helpers")
    spec_dir, elsewhere = tmp_path / "spec", tmp_path / "elsewhere"
    spec_dir.mkdir()
    elsewhere.mkdir()
    (spec_dir / "path_probe_helpers.py").write_text("def loss(x):\n    return (x - 0.3) ** 2\n")
    (spec_dir / "lazy.py").write_text(
        "def objective(config, trial):\n    import path_probe_helpers\n\n    return path_probe_helpers.loss(config['x'])\n")
    spec = {"name": "lazy", "objective": {"metric": "loss", "direction": "minimize"},
            "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}}, "trial": {"function": "lazy:objective"},
            "budget": {"trials": 2}, "executor": {"kind": executor, "workers": 1}}
    (spec_dir / "lazy.yaml").write_text(yaml.safe_dump(spec))
    monkeypatch.chdir(elsewhere)
    before = list(sys.path)
    result = tunesmith.run(spec_dir / "lazy.yaml", storage=f"sqlite:///{tmp_path / 't.db'}")
    assert [t.state.value for t in result.trials] == ["completed"] * 2, [t.error for t in result.trials]
    assert sys.path == before


def test_a_folder_stays_on_the_path_until_the_last_block_that_holds_it_ends(tmp_path: Path) -> None:
    """Nested blocks (a trial's import inside its attempt) and blocks of two threads (two runs of one folder
    through the Python API): the first to end must not take the folder away from the other."""
    folder = str(tmp_path)
    before = list(sys.path)
    entered, may_leave = threading.Event(), threading.Event()

    def other_thread() -> None:
        with folder_importable(folder):
            entered.set()
            may_leave.wait(10)

    thread = threading.Thread(target=other_thread)
    with folder_importable(folder):
        assert sys.path == [folder, *before]
        with folder_importable(folder):
            pass
        assert sys.path == [folder, *before]
        thread.start()
        assert entered.wait(10)
    assert sys.path == [folder, *before], "the other thread's block still holds it"
    may_leave.set()
    thread.join(10)
    assert sys.path == before


def test_a_folder_on_the_path_already_is_left_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`PYTHONPATH=.`, `python -m`: the folder was the caller's to begin with."""
    monkeypatch.syspath_prepend(str(tmp_path))
    before = list(sys.path)
    with folder_importable(str(tmp_path)):
        assert sys.path == before
    assert sys.path == before


def test_a_pipeline_step_that_imports_beside_it_as_it_fits_is_refit_for_the_holdout(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unloaded_after) -> None:
    """A step of the spec's folder whose fit imports a module beside it: the trials fit it (in a worker), and so
    does the holdout refit after them, in this process, outside any trial."""
    unloaded_after("path_probe_lazy_steps", "path_probe_scale")
    spec_dir, elsewhere = tmp_path / "spec", tmp_path / "elsewhere"
    spec_dir.mkdir()
    elsewhere.mkdir()
    (spec_dir / "path_probe_scale.py").write_text("FACTOR = 2.0\n")
    (spec_dir / "path_probe_lazy_steps.py").write_text(
        "from sklearn.base import BaseEstimator, TransformerMixin\n\n\n"
        "class Scale(TransformerMixin, BaseEstimator):\n"
        "    def fit(self, X, y=None):\n"
        "        import path_probe_scale\n\n"
        "        self.factor_ = path_probe_scale.FACTOR\n"
        "        return self\n\n"
        "    def transform(self, X):\n"
        "        return X * self.factor_\n")
    spec = {"name": "lazyfit", "objective": {"metric": "accuracy", "direction": "maximize"},
            "task": {"estimator": {"sklearn.linear_model.LogisticRegression": {"max_iter": 2000}},
                     "data": {"sklearn": "iris"},
                     "pipeline": ["path_probe_lazy_steps.Scale"], "holdout": {"fraction": 0.25},
                     "cv": {"folds": 2}},
            "space": {"C": {"type": "float", "low": 0.1, "high": 10, "log": True}}, "budget": {"trials": 1},
            "executor": {"kind": "process", "workers": 1}, "seed": 0}
    (spec_dir / "lazyfit.yaml").write_text(yaml.safe_dump(spec))
    monkeypatch.chdir(elsewhere)
    before = list(sys.path)
    result = tunesmith.run(spec_dir / "lazyfit.yaml", storage=f"sqlite:///{tmp_path / 't.db'}")
    assert [t.state.value for t in result.trials] == ["completed"], [t.error for t in result.trials]
    assert 0 < result.attributes["holdout"]["holdout_accuracy"] <= 1, result.attributes
    assert sys.path == before


def test_validate_in_process_leaves_the_path_and_unloads_what_each_spec_imported(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unloaded_after) -> None:
    """`cli.main(["validate", A, B])` called in-process: the first spec's trial code comes from the folder its
    `base_dir:` names, not its own, and imports a helper there; the helper is unloaded after its check all the
    same (the second spec's train.py imports a helper of that name that its folder lacks: bad input), and the
    caller's path is as it was."""
    from helpers import cli_in_process

    unloaded_after("path_probe_helper")
    train = "import path_probe_helper\n\n\ndef objective(config, trial):\n    return config['x']\n"
    for folder in ("code", "one", "two"):
        (tmp_path / folder).mkdir()
    (tmp_path / "code" / "path_probe_helper.py").write_text("")
    for folder in ("code", "two"):
        (tmp_path / folder / "train.py").write_text(train)
    for folder, base_dir in (("one", {"base_dir": str(tmp_path / "code")}), ("two", {})):
        spec = {"name": folder, "objective": {"metric": "loss", "direction": "minimize"},
                "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}}, "trial": {"function": "train:objective"},
                "executor": {"kind": "inline"}, **base_dir}
        (tmp_path / folder / "exp.yaml").write_text(yaml.safe_dump(spec))
    monkeypatch.chdir(tmp_path)
    before = list(sys.path)
    code, out, err = cli_in_process("validate", "one/exp.yaml", "two/exp.yaml")
    assert code == 2, err
    assert out.startswith("valid: one/exp.yaml: one:"), out
    assert err.startswith("error: two/exp.yaml: trial.function: importing 'train' failed: it imports "
                          "'path_probe_helper', which is not installed"), err
    assert sys.path == before and "path_probe_helper" not in sys.modules
