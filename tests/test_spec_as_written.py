"""What a spec given anew must say plainly, beside the bad-input catalogue (tests/test_cli_input.py), which holds
the refusals as the CLI says them: the names real users give stay valid, the refusals apply to specs given anew
only (a recorded experiment resumes, a recorded experiment's spec file still reads), and the YAML text is read for
what its values no longer show (a choice written `yes`, a duration written `1:30`, a syntax error's fix)."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import tunesmith
from tunesmith.errors import SpecError
from tunesmith.evaluation.command import BUILTIN_PLACEHOLDERS
from tunesmith.spec.loader import load_spec, read_spec_file, spec_from_dict
from tunesmith.spec.model import check_new_spec

HEAD = "name: exp\nobjective: {metric: loss, direction: minimize}\ntrial: {function: objectives:quadratic}\n"
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


def _load_error(tmp_path: Path, text: str) -> SpecError:
    (tmp_path / "s.yaml").write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "s.yaml")
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


@pytest.mark.parametrize("name", ["learning rate", "-x"])
def test_a_name_args_cannot_pass_is_refused_for_a_command_and_kept_for_a_function(name: str) -> None:
    """Whitespace and a leading '-' break a command's {args} (--learning rate: two words) but nothing of a function
    trial's, which reads config["learning rate"]: they were refused for every trial, a function's valid spec too."""
    space = {name: {"type": "int", "low": 1, "high": 3}}
    e = _refusal(_spec(space=space, trial={"command": "python train.py {args}"}))
    assert e.path == f"space.{name}" and "{args} would pass it as" in e.message, e.message
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


def test_a_boolean_key_in_a_python_mapping_is_a_spec_error_naming_it() -> None:
    """From Python (no YAML spelling to name): the top-level key gave a TypeError (keywords must be strings), the
    space's was said at `space.1`. Every key at any depth, a mapping to spec_from_dict or keywords to ExperimentSpec,
    is said in the one wording of a YAML file's `on:` (which names the spelling: test_cli_input), where a nested
    key's said "input should be a valid string; got True (quote it as you wrote it: YAML read it as a boolean)"."""
    from tunesmith.spec.model import ExperimentSpec

    said = "a key must be text; got True, which YAML read as a boolean (quote it as you wrote it)"
    with pytest.raises(SpecError) as info:
        spec_from_dict({**_spec(), True: 1})
    assert (info.value.path, info.value.message) == ("True", said)
    for given in (spec_from_dict, lambda data: ExperimentSpec(**data)):
        with pytest.raises(SpecError) as info:
            given(_spec(space={True: {"type": "categorical", "choices": ["a"]}}))
        assert (info.value.path, info.value.message) == ("space.True", said)
        with pytest.raises(SpecError) as info:
            given(_spec(tags={"team": "a", False: "b"}))
        assert (info.value.path, info.value.message) == ("tags.False", said.replace("True", "False"))


# -- YAML 1.1 spellings --------------------------------------------------------------------------------------------


def test_choices_written_as_text_stay_text(tmp_path: Path) -> None:
    """Only what YAML 1.1 changed is refused: y and n are text to PyYAML, quoted yes is text, true is meant."""
    (tmp_path / "s.yaml").write_text(HEAD + "space:\n  a: {type: categorical, choices: ['yes', \"no\", y, n, true]}\n"
                                            "  b: {type: categorical, choices: ['1:30', 2], when: {a: [y, true]}}\n")
    spec = load_spec(tmp_path / "s.yaml")
    assert spec.space["a"].choices == ["yes", "no", "y", "n", True]  # type: ignore[union-attr]
    assert spec.space["b"].choices == ["1:30", 2]  # type: ignore[union-attr]


def test_a_yaml_11_spelling_is_refused_anew_but_a_recorded_experiments_file_still_reads(tmp_path: Path) -> None:
    """`tunesmith cycle spec.yaml` reads the file of an experiment that may be recorded (read_spec_file) and runs
    the checks for a new spec only when it is not: recorded with `choices: [yes, no]` ([True, False], as it ran),
    it stays usable. Its stored spec holds no YAML, so nothing is refused from it either."""
    text = HEAD + "space:\n  flag: {type: categorical, choices: [yes, no]}\nbudget: {wall_time: 1:30}\n"
    (tmp_path / "s.yaml").write_text(text)
    read = read_spec_file(tmp_path / "s.yaml")
    assert read.space["flag"].choices == [True, False]  # type: ignore[union-attr]
    assert read.budget.wall_time == 90
    with pytest.raises(SpecError, match=r"^space\.flag\.choices\.0: YAML 1\.1 reads an unquoted yes"):
        check_new_spec(read)
    check_new_spec(spec_from_dict(read.to_json()))  # as recorded


def test_a_base_60_number_is_refused_wherever_it_is_written(tmp_path: Path) -> None:
    e = _load_error(tmp_path, HEAD + "space: {x: {type: categorical, choices: [1:30:00]}}\n")
    assert e.path == "space.x.choices.0" and "reads 1:30:00 as the base-60 number 5400" in e.message, e
    e = _load_error(tmp_path, HEAD + "space: {x: {type: float, low: 0, high: 1}}\nexecutor: {grace_period: 2:30}\n")
    assert e.path == "executor.grace_period" and "base-60 number 150" in e.message, e


# -- where a section lost its indentation, and YAML syntax errors -------------------------------------------------


def test_domain_keys_not_indented_under_their_parameter_say_so(tmp_path: Path) -> None:
    e = _load_error(tmp_path, HEAD + "space:\n  x:\n  type: float\n  low: 0\n  high: 1\n")
    assert (e.path, e.message) == ("space.type", "unknown key 'type', written below x: (line 5), which is empty: "
                                                 "indent it under x:, by two spaces")


def test_an_empty_section_followed_by_known_keys_is_not_blamed(tmp_path: Path) -> None:
    """`description:` left empty (valid) before a misspelt key: the key's own did-you-mean, no indentation."""
    e = _load_error(tmp_path, HEAD + "space: {x: {type: float, low: 0, high: 1}}\ndescription:\nstratgy: tpe\n")
    assert e.message.startswith("unknown key 'stratgy'; did you mean 'strategy'?"), e


@pytest.mark.parametrize(("text", "said"), [
    ("name:exp\nspace: {}\n", "mapping values are not allowed here; line 1 needs a space after its colon: name: exp"),
    ("  name: exp\nspace: {}\n", "expected '<document start>', but found '<block mapping start>'; the first key is "
                                 "indented: start each top-level key at the start of its line"),
    ("name: exp\n objective: {metric: loss, direction: minimize}\n",
     "mapping values are not allowed here; line 2 is indented further than line 1 (name: exp), whose key already "
     "has a value: line it up with that key"),
    ("name: exp\nspace: {x: {type: float,\tlow: 0, high: 1}}\n",
     "found character '\\t' that cannot start any token; YAML indents with spaces only: replace the tab with spaces"),
    # a list item where a key belongs, lined up with the keys: no indentation to fix, so no fix is guessed
    ("name: exp\n- a\n", "expected <block end>, but found '-'"),
], ids=["colon-without-space", "first-key-indented", "key-indented-under-a-value", "tab-in-a-flow-mapping",
        "list-item-where-a-key-belongs"])
def test_a_yaml_syntax_error_says_the_fix_where_the_text_shows_it(tmp_path: Path, text: str, said: str) -> None:
    e = _load_error(tmp_path, textwrap.dedent(text))
    assert e.message.split(": ", 1)[1] == said, e.message
