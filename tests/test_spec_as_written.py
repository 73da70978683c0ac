"""What a spec given anew must say plainly, beside the bad-input catalogue (tests/test_cli_input.py), which holds
the refusals as the CLI says them: the names real users give stay valid, and the refusals apply to specs given
anew only (a recorded experiment resumes)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

import tunesmith
from tunesmith.errors import SpecError
from tunesmith.evaluation.command import BUILTIN_PLACEHOLDERS
from tunesmith.spec.loader import spec_from_dict
from tunesmith.spec.model import check_new_spec

# a command that writes its arguments to argv.json in the trial's folder and reports a loss
ECHO = (f"{sys.executable} -c 'import json, sys; json.dump(sys.argv[1:], open(sys.argv[1] + \"/argv.json\", \"w\")); "
        "print(json.dumps({{\"loss\": 1.0}}))' {trial_dir} {args}")


def _spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": "exp", "objective": {"metric": "loss", "direction": "minimize"},
                            "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
                            "trial": {"function": "objectives:quadratic"}}
    return {**spec, **overrides}


def _refusal(spec: dict[str, Any]) -> SpecError:
    """The error of ``spec`` given anew (a mapping to the Python API is checked as a spec file is)."""
    with pytest.raises(SpecError) as info:
        check_new_spec(spec_from_dict(spec))
    return info.value


# -- parameter names ---------------------------------------------------------------------------------------------


def test_the_names_real_users_give_run_a_command_and_reach_it_through_args(tmp_path: Path) -> None:
    """scikit-learn's step__param, a dotted name, unicode letters, TunedSearchCV's hidden `__grid` and `C@grid1`:
    none is refused, and {args} passes each as one option with its value."""
    names = ["clf__C", "model.lr", "学习率", "α", "__grid", "C@grid1"]
    space = {n: {"type": "categorical", "choices": [i]} for i, n in enumerate(names)}
    # in a worker process: run_command leaves its pipes to the garbage collector (ResourceWarning in this one)
    spec = _spec(space=space, trial={"command": ECHO}, executor={"kind": "process"}, budget={"trials": 1},
                 strategy="random", base_dir=str(tmp_path), workdir=str(tmp_path / "work"))
    result = tunesmith.run(spec, storage=f"sqlite:///{tmp_path}/t.db")
    (trial,) = result.trials
    assert trial.state.value == "completed"
    argv = json.loads((Path(trial.log_path).parent / "argv.json").read_text())
    assert argv[1:] == [w for i, n in enumerate(names) for w in (f"--{n}", str(i))]


@pytest.mark.parametrize("name", BUILTIN_PLACEHOLDERS)
def test_a_built_in_placeholders_name_is_refused_for_a_command_and_kept_for_a_function(name: str) -> None:
    """{seed} rendered the parameter, not the trial's seed, {trial_dir} no longer the trial's folder (checkpoints
    went to the spec's folder), {args} no longer every parameter: each built-in, refused where a command runs. A
    function trial reads config[name] beside trial.seed, trial.workdir: nothing is replaced, nothing refused."""
    space = {name: {"type": "int", "low": 1, "high": 3}}
    e = _refusal(_spec(space=space, trial={"command": f"echo {{{name}}} {{args}}"}))
    assert e.path == f"space.{name}" and f"rename the parameter, such as {name}_param" in e.message, e.message
    check_new_spec(spec_from_dict(_spec(space=space)))


def test_a_recorded_experiment_whose_names_are_refused_now_still_resumes(project: Any) -> None:
    """A command experiment recorded with a parameter named `seed`, one named 'x y' and a `when` on an empty list,
    before those were refused: resume reads the stored spec and runs it as it ran ({seed}: the parameter)."""
    from tunesmith.runner import prepare, resume_experiment
    from tunesmith.storage import SQLStore

    space = {"seed": {"type": "categorical", "choices": [7]}, "x y": {"type": "int", "low": 1, "high": 2},
             "z": {"type": "int", "low": 1, "high": 2, "when": {"seed": []}}}
    spec = spec_from_dict(project.spec(name="old", space=space, budget={"trials": 2}, executor={"workers": 1},
                                       trial={"command": "echo '{{\"loss\": {seed}}}'"}, base_dir=str(project.root)))
    with pytest.raises(SpecError):
        check_new_spec(spec)
    store = SQLStore(project.storage)
    store.create_experiment("old", prepare(spec).spec.to_json(), "random", "", 0.0)
    result = resume_experiment("old", store)
    assert [(t.state.value, t.values) for t in result.trials] == [("completed", (7.0,)), ("completed", (7.0,))]
    store.close()
