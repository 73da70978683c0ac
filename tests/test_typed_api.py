"""What a type checker sees of tunesmith: the package ships py.typed, so a user's mypy checks calls into it."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

import tunesmith

_GOOD = '''
    import tunesmith
    from tunesmith import Float, run
    from tunesmith.sklearn import TunedSearchCV


    def objective(config: dict[str, float], trial: tunesmith.TrialContext) -> float:
        return config["x"]


    def tune() -> None:
        spec = tunesmith.ExperimentSpec(name="typed", objective={"metric": "loss", "direction": "minimize"},
                                        space={"x": Float(0, 1)}, trial=objective, budget={"trials": 3})
        result: tunesmith.ExperimentResult = run(spec)
        best = tunesmith.open_experiment(result.name).best
        if best is not None and best.state is tunesmith.TrialState.COMPLETED:
            print(best.params, result.status)


    def fitted(s: TunedSearchCV) -> None:
        params: dict[str, object] = s.best_params_
        score: float = s.best_score_ + s.refit_time_
        index: int = s.best_index_ + s.n_splits_
        name: str = s.experiment_name_
        print(params, score, index, name, [t.number for t in s.trials_], s.feature_names_in_)
'''

_BAD = '''
    import tunesmith

    tunesmith.runn({})
    x: str = tunesmith.run({})
    tunesmith.Float("a", "b")
'''


def _mypy(tmp_path: Path, source: str) -> tuple[str, int]:
    """mypy --strict on ``source`` as a user's file, against this tunesmith (its own code analysed, not judged)."""
    api = pytest.importorskip("mypy.api", reason="mypy is in the dev extra, not the test one: `make lint` runs this "
                              "test (pip install -e '.[dev]')")

    user = tmp_path / "user.py"
    user.write_text(textwrap.dedent(source))
    config = tmp_path / "mypy.ini"
    config.write_text(f"[mypy]\nmypy_path = {Path(tunesmith.__file__).parents[1]}\n")
    out, err, status = api.run([str(user), "--strict", "--follow-imports=silent", "--ignore-missing-imports",
                                "--config-file", str(config), "--cache-dir", str(tmp_path / "cache")])
    return out + err, status


def test_a_users_mypy_sees_the_top_level_api_and_the_fitted_search_typed(tmp_path: Path) -> None:
    """`tunesmith.run` was Any to mypy (a module __getattr__), so a misspelt name passed; TunedSearchCV's best_params_
    and the other attributes fit sets were "Cannot determine type" under --strict."""
    said, status = _mypy(tmp_path, _GOOD)
    assert (status, said.strip()) == (0, "Success: no issues found in 1 source file")
    said, status = _mypy(tmp_path, _BAD)
    assert status == 1
    assert 'user.py:4: error: Module has no attribute "runn"' in said
    assert 'user.py:5: error: Incompatible types in assignment (expression has type "ExperimentResult"' in said
    assert "user.py:6: error: Argument 1 to \"Float\" has incompatible type \"str\"" in said


def test_the_names_a_type_checker_sees_are_the_names_exported_at_run_time() -> None:
    """The TYPE_CHECKING imports of tunesmith/__init__.py and its lazy _EXPORTS list the same names, each from the
    same module: a name added to one only would be Any (or missing) to a user's type checker."""
    tree = ast.parse(Path(tunesmith.__file__).read_text())
    block = next(node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING")
    imported = {alias.name: node.module for node in block.body if isinstance(node, ast.ImportFrom)
                for alias in node.names if alias.asname == alias.name}
    assert imported == tunesmith._EXPORTS
    assert set(tunesmith.__all__) == {*imported, "__version__"}
