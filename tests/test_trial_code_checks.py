"""Checks on trial code and spec text that must refuse what fails and pass what works (review of the walkthrough's
fixes): a decorated trial function, a module beside the trial file, YAML merge keys, quoted-value hints."""

from __future__ import annotations

import functools
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tunesmith.errors import SpecError
from tunesmith.evaluation.loading import _check_call
from tunesmith.selection import unrecorded_constraint
from tunesmith.spec.loader import load_spec


def _with_data(fn):  # a decorator that supplies an argument: called as (config, trial), like the trial functions
    @functools.wraps(fn)
    def wrapper(config, trial):
        return fn(config, trial, data=[1, 2])
    return wrapper


@_with_data
def _decorated(config, trial, data):
    return 0.0


class _Callable:
    def __call__(self, config, trial):
        return 0.0


def _defaults(config, trial, extra=3):
    return 0.0


@pytest.mark.parametrize("fn", [_decorated, functools.partial(_defaults, extra=1), _Callable(), _defaults,
                                lambda *args: 0.0], ids=["wraps decorator", "partial", "__call__", "defaults", "*args"])
def test_callables_that_take_config_and_trial_pass_the_signature_check(fn):
    _check_call(fn, "objective")


def test_an_optuna_style_objective_is_refused_by_the_signature_check():
    def objective(trial):
        return 0.0
    with pytest.raises(SpecError, match=r"objective\(trial\) cannot be called as objective\(config, trial\)"):
        _check_call(objective, "objective")


def _validate(folder: Path, spec: str) -> subprocess.CompletedProcess[str]:
    (folder / "s.yaml").write_text(textwrap.dedent(spec))
    tunesmith = Path(sys.executable).with_name("tunesmith")
    return subprocess.run([str(tunesmith), "validate", "s.yaml"], cwd=folder, capture_output=True, text=True,
                          timeout=120)


def test_a_module_beside_the_trial_file_is_not_called_a_package_to_install(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text("import helpers\n\ndef objective(config, trial):\n    return 1.0\n")
    (tmp_path / "src" / "helpers.py").write_text("X = 1\n")
    done = _validate(tmp_path, """
        name: mp
        objective: {metric: loss, direction: minimize}
        space: {x: {type: float, low: 0, high: 1}}
        trial: {function: "src/train.py:objective"}
        budget: {trials: 2}
    """)
    assert done.returncode == 2
    assert "it imports 'helpers', which lies beside it" in done.stderr and "install it" not in done.stderr


def test_yaml_merge_keys_are_not_keys_written_twice(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(textwrap.dedent("""
        name: merged
        objective: {metric: loss, direction: minimize}
        space:
          x: {<<: {low: 0, high: 1}, <<: {type: float}}
        trial: {function: "m:f"}
        budget: {trials: 2}
    """))
    assert load_spec(tmp_path / "s.yaml").space["x"].high == 1


def _spec_with_space(tmp_path: Path, space: str) -> Path:
    """A spec file whose ``space:`` holds ``space`` (YAML, indented under it), on line 4 onwards."""
    path = tmp_path / "s.yaml"
    path.write_text("name: merged\nobjective: {metric: loss, direction: minimize}\nspace:\n"
                    + textwrap.indent(textwrap.dedent(space).lstrip("\n"), "  ")
                    + 'trial: {function: "m:f"}\nbudget: {trials: 2}\n')
    return path


def test_a_key_merged_in_and_written_again_is_an_override_not_a_key_written_twice(tmp_path: Path) -> None:
    """`<<: *c` then `high: 10` was refused as `high` written twice (PyYAML flattens the merge into the node the
    check read after): YAML keeps the explicit key, and of several merges the earlier one."""
    space = load_spec(_spec_with_space(tmp_path, """
        C: &c {type: float, low: 0.001, high: 1000, log: true}
        C3:
          <<: *c
          high: 10
        C4:
          <<: [{high: 100}, *c]
    """)).space
    assert (space["C"].high, space["C3"].high, space["C4"].high, space["C4"].low) == (1000, 10, 100, 0.001)


def test_a_key_written_twice_after_a_merge_is_still_refused(tmp_path: Path) -> None:
    path = _spec_with_space(tmp_path, """
        C: &c {type: float, low: 0.001, high: 1000, log: true}
        C3:
          <<: *c
          high: 10
          high: 20
    """)
    with pytest.raises(SpecError) as e:
        load_spec(path)
    assert (e.value.path, e.value.message) == (
        "space.C3.high", "written twice (lines 7 and 8); YAML would keep only the last: rename or remove one")


def test_keys_are_compared_as_yaml_reads_them(tmp_path: Path) -> None:
    base = "name: k\nobjective: {metric: loss, direction: minimize}\nspace: {x: {type: float, low: 0, high: 1}}\n" \
           "trial: {function: 'm:f'}\nbudget: {trials: 2}\n"
    (tmp_path / "one.yaml").write_text(base + "tags: {yes: a, true: b}\n")
    with pytest.raises(SpecError, match="written twice"):
        load_spec(tmp_path / "one.yaml")
    (tmp_path / "two.yaml").write_text(base + "tags: {1: a, '1': b}\n")   # two keys for YAML: not a repeat
    with pytest.raises(SpecError) as e:
        load_spec(tmp_path / "two.yaml")
    assert "written twice" not in e.value.message


@pytest.mark.parametrize(("value", "said"), [("1.10", "YAML read it as a number"), ("yes", "YAML read it as a boolean")])
def test_a_value_yaml_did_not_read_as_text_is_told_to_quote_it_as_written(tmp_path: Path, value: str, said: str):
    (tmp_path / "s.yaml").write_text("name: q\nobjective: {metric: loss, direction: minimize}\n"
                                     "space: {x: {type: float, low: 0, high: 1}}\ntrial: {function: 'm:f'}\n"
                                     f"budget: {{trials: 2}}\ntags: {{release: {value}}}\n")
    with pytest.raises(SpecError) as e:
        load_spec(tmp_path / "s.yaml")
    assert f"quote it as you wrote it: {said}" in e.value.message and "'1.1'" not in e.value.message


def test_no_completed_trial_blames_no_constraint() -> None:
    from tunesmith.constraints import Constraint

    assert unrecorded_constraint([], [], [Constraint.parse("loss <= 10")]) == ""


def test_a_trial_module_whose_package_fails_to_import_is_bad_input(tmp_path: Path) -> None:
    """Looking for whether ``badpkg.mod`` is the running script imported ``badpkg`` unguarded, before the import
    that turns errors into a SpecError: its __init__'s RuntimeError escaped as a traceback."""
    (tmp_path / "badpkg").mkdir()
    (tmp_path / "badpkg" / "__init__.py").write_text("raise RuntimeError('package set-up failed')\n")
    (tmp_path / "badpkg" / "mod.py").write_text("def objective(config, trial):\n    return 1.0\n")
    done = _validate(tmp_path, """
        name: bp
        objective: {metric: loss, direction: minimize}
        space: {x: {type: float, low: 0, high: 1}}
        trial: {function: "badpkg.mod:objective"}
        budget: {trials: 2}
    """)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "package set-up failed" in done.stderr, done.stderr
