"""The bad-input catalogue, through the real CLI: exit code 2, one message naming the field and the fix, no
traceback, and nothing written, neither a new store nor a change to an existing one.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from _cli_input_setup import cli_quiet, seed_store
from helpers import (CONTRACT_YAML, cli_in_process, completed_in_process, count_states, start_cli, stop_processes,
                     tune_in_process, wait_for)

EXISTS_FIX = ("continue it with `tunesmith resume exp` (which runs the spec recorded then, not this one), or choose "
              "another name (--name)")

OPTUNA_STYLE = """
def objective(trial):
    return trial.suggest_float("x", 0, 1)
"""

MYMODULE = """
def objective(config, trial):
    return config["C"]
"""



# -- helpers -------------------------------------------------------------------------------------------------


def _files(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` and its bytes; Python's own bytecode caches aside."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def _store_files(root: Path) -> dict[str, bytes]:
    """What tunesmith writes: the SQLite store (with any WAL files) and the trial folders."""
    return {k: v for k, v in _files(root).items() if k.startswith(("tunesmith.db", ".tunesmith"))}


def _assert_input_error(proc: subprocess.CompletedProcess[str], message: str) -> None:
    """Exit 2, nothing on stdout, exactly ``error: MESSAGE`` on stderr, and no traceback."""
    where = f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stdout + proc.stderr, where
    assert proc.returncode == 2, where
    assert proc.stdout == "", where
    assert proc.stderr.splitlines() == [f"error: {message}"], where


def _seed_store(project: Any) -> dict[str, Any]:
    """Record and run a small experiment `exp` (2 inline trials); returns `tunesmith show exp --json`. Set-up, not
    what any test here is about: run and read back in this process (tests/_cli_input_setup.py)."""
    seed_store(project)
    shown = project.show("exp")
    assert (shown["status"], shown["total_trials"], shown["trials"]["completed"]) == ("completed", 2, 2)
    return shown


# -- the catalogue -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A bad spec: how to write it (returning the path given to the CLI) and the one message expected."""

    write: Callable[[Any], str]
    message: Callable[[Any], str]


def _spec(**overrides: Any) -> Callable[[Any], str]:
    def write(project: Any) -> str:
        return str(project.write_spec(project.spec(**overrides), "bad.yaml"))

    return write


def _text(text: str) -> Callable[[Any], str]:
    def write(project: Any) -> str:
        return str(project.write("bad.yaml", text))

    return write


def _task_step_module(project: Any, source: str) -> str:
    """A task spec whose pipeline step lives in steps.py beside it, holding ``source``."""
    project.write("steps.py", source)
    task = {"estimator": "sklearn.linear_model.Ridge", "pipeline": ["steps.Scale"], "data": {"sklearn": "diabetes"},
            "scoring": "r2"}
    spec = {"name": "exp", "objective": {"metric": "r2", "direction": "maximize"}, "task": task,
            "space": {"ridge__alpha": {"type": "float", "low": 0.01, "high": 10, "log": True}}}
    return str(project.write_spec(spec, "bad.yaml"))


def _classes_task(project: Any, scoring: Any = None, metric: str = "roc_auc", classes: int = 3,
                  **data: Any) -> str:
    """A LogisticRegression task on rows.csv beside it (90 rows: age, income, a target `tier` of ``classes``
    classes), scored by ``scoring`` (left out: the objective's ``metric``)."""
    rows = "".join(f"{18 + (i * 7) % 60},{40 + (i * 13) % 25}.5,{i % classes}\n" for i in range(90))
    project.write("rows.csv", "age,income,tier\n" + rows)
    task: dict[str, Any] = {"estimator": "sklearn.linear_model.LogisticRegression",
                            "data": {"path": "rows.csv", "target": "tier", **data},
                            "cv": {"kind": "stratified", "folds": 3}}
    if scoring is not None:
        task["scoring"] = scoring
    spec = {"name": "exp", "objective": {"metric": metric, "direction": "maximize"}, "task": task,
            "space": {"logisticregression__C": {"type": "float", "low": 0.01, "high": 100, "log": True}},
            "budget": {"trials": 6}}
    return str(project.write_spec(spec, "bad.yaml"))


def _fixed(message: str) -> Callable[[Any], str]:
    return lambda project: message


CONDITIONAL = {
    "kernel": {"type": "categorical", "choices": ["rbf", "linear"]},
    "x": {"type": "float", "low": 0.0, "high": 1.0},
}

HEAD = "name: exp\nobjective: {metric: loss, direction: minimize}\ntrial: {function: objectives:quadratic}\n"
X = {"x": {"type": "float", "low": 0.0, "high": 1.0}}

CATALOGUE: dict[str, Case] = {
    "yaml-syntax": Case(
        _text("name: exp\nobjective: {metric: loss, direction: minimize\nspace: {}\n"),
        _fixed("YAML syntax error in bad.yaml at line 3, column 6: expected ',' or '}', but got ':'"),
    ),
    "unknown-nested-key": Case(
        _spec(budget={"trails": 6}), _fixed("budget.trails: unknown key 'trails'; did you mean 'trials'?")
    ),
    "unknown-top-level-key": Case(
        _text(
            "name: exp\nobjective: {metric: loss, direction: minimize}\n"
            "space: {x: {type: float, low: 0, high: 1}}\nstratgy: tpe\ntrial: objectives:quadratic\n"
        ),
        _fixed("stratgy: unknown key 'stratgy'; did you mean 'strategy'?"),
    ),
    "low-not-below-high": Case(
        _spec(space={"x": {"type": "float", "low": 1.0, "high": 1.0}}),
        _fixed("space.x: low must be < high; got low=1.0, high=1.0"),
    ),
    "log-with-low-zero": Case(
        _spec(space={"x": {"type": "float", "low": 0.0, "high": 1.0, "log": True}}),
        _fixed("space.x: low must be > 0 when log is true; got low=0.0 (use log: false or a positive low)"),
    ),
    "empty-choices": Case(
        _spec(
            space={
                "x": {"type": "float", "low": 0.0, "high": 1.0},
                "kind": {"type": "categorical", "choices": []},
            }
        ),
        _fixed("space.kind: choices must not be empty; list at least one value"),
    ),
    "when-unknown-parameter": Case(
        _spec(
            space={
                **CONDITIONAL,
                "gamma": {"type": "float", "low": 0.1, "high": 1.0, "when": {"kernal": "rbf"}},
            }
        ),
        _fixed(
            "space.gamma.when.kernal: names an unknown parameter 'kernal'; known parameters: gamma, kernel, x"
        ),
    ),
    "when-value-not-a-choice": Case(
        _spec(
            space={
                **CONDITIONAL,
                "gamma": {"type": "float", "low": 0.1, "high": 1.0, "when": {"kernel": "poly"}},
            }
        ),
        _fixed(
            "space.gamma.when.kernel: value 'poly' is not in the domain of 'kernel'; "
            "choices are ['rbf', 'linear']"
        ),
    ),
    "when-value-outside-an-int-range": Case(  # it said only: value 4 is not in the domain of 'n'
        _spec(space={"n": {"type": "int", "low": 1, "high": 3},
                     "x": {"type": "float", "low": 0.0, "high": 1.0, "when": {"n": 4}}}),
        _fixed("space.x.when.n: value 4 is not in the domain of 'n'; 'n' is an int in [1, 3]"),
    ),
    "when-yes-unquoted": Case(  # YAML 1.1 reads `yes` as true; the choices were written as the strings
        _text("name: exp\nobjective: {metric: loss, direction: minimize}\ntrial: {function: objectives:quadratic}\n"
              "space:\n  flag: {type: categorical, choices: ['yes', 'no']}\n"
              "  x: {type: float, low: 0, high: 1, when: {flag: yes}}\n"),
        _fixed("space.x.when.flag: value True is not in the domain of 'flag'; choices are ['yes', 'no'] (YAML reads "
               "an unquoted yes, no, on, off, true or false as a boolean: quote it, 'yes')"),
    ),
    "trial-module-missing": Case(
        _spec(trial={"function": "nomodule:objective"}),
        lambda project: (
            f"trial.function: cannot import 'nomodule': No module named 'nomodule' "
            f"(searched the spec's folder {project.root.resolve()} and the Python path)"
        ),
    ),
    "trial-module-misspelt": Case(  # the project has objectives.py; it said only "No module named 'objectivs'"
        _spec(trial={"function": "objectivs:quadratic"}),
        lambda project: (
            f"trial.function: cannot import 'objectivs': No module named 'objectivs' "
            f"(searched the spec's folder {project.root.resolve()} and the Python path); did you mean 'objectives'?"
        ),
    ),
    "trial-file-misspelt": Case(
        _spec(trial={"function": "objectivs.py:quadratic"}),
        lambda project: (f"trial.function: file '{project.root.resolve() / 'objectivs.py'}' does not exist; did you "
                         "mean 'objectives.py'?"),
    ),
    "trial-function-missing": Case(
        _spec(trial={"function": "objectives:nope"}),
        _fixed("trial.function: 'objectives' has no function 'nope'; did you mean 'noop'?"),
    ),
    "trial-function-in-optuna-style": Case(  # validate said valid; run failed 5 trials with a TypeError at attempt.py
        lambda project: (project.write("optuna_style.py", OPTUNA_STYLE),
                         _spec(trial={"function": "optuna_style:objective"})(project))[1],
        _fixed("trial.function: objective(trial) cannot be called as objective(config, trial), which is how tunesmith "
               "calls it: define def objective(config, trial) and read the parameters from config (config['x']), "
               "not trial.suggest_*"),
    ),
    "trial-module-imports-a-missing-package": Case(  # it said: cannot import 'needs': No module named
        lambda project: (project.write("needs.py", "import nonexistent_pkg\n\ndef objective(config, trial):\n"  # 'nonexistent_pkg'
                                       "    return 0.0\n"),                                                      # (searched ...)
                         _spec(trial={"function": "needs:objective"})(project))[1],
        lambda project: (f"trial.function: importing 'needs' failed: it imports 'nonexistent_pkg', which is not "
                         f"installed in the Python tunesmith runs in ({sys.prefix}); install it there"),
    ),
    "task-step-module-raises-at-import": Case(  # it said: spec: no data here (wrapped as the model's own error)
        lambda project: _task_step_module(project, "raise ValueError('no data here')\n"),
        _fixed("task.pipeline.0: importing 'steps' raised ValueError: no data here"),
    ),
    "task-step-module-syntax-error": Case(  # it said: a traceback, exit 1
        lambda project: _task_step_module(project, "def (:\n"),
        _fixed("task.pipeline.0: importing 'steps' raised SyntaxError: invalid syntax (steps.py, line 1)"),
    ),
    "task-step-module-exits-at-import": Case(  # it said nothing, exit 3: sys.exit ended tunesmith
        lambda project: _task_step_module(project, "import sys\nsys.exit(3)\n"),
        _fixed("task.pipeline.0: importing 'steps' called sys.exit(3) at its top level; code that ends the program "
               "belongs under `if __name__ == \"__main__\":`"),
    ),
    "a-number-where-text-goes": Case(  # it said: tags.build: input should be a valid string; got 3
        _spec(tags={"team": "vision", "build": 3}),
        _fixed("tags.build: input should be a valid string; got 3 (quote it: '3')"),
    ),
    "tag-value-a-list": Case(  # it said pydantic's own: tags.team: Input should be a valid string
        _spec(tags={"team": ["vision", "nlp"]}),
        _fixed("tags.team: a tag's value is one string; got ['vision', 'nlp'] (join them in one, 'vision, nlp', or "
               "give each its own tag)"),
    ),
    "tag-value-empty": Case(  # it said: tags.team: input should be a valid string; got None
        _text(HEAD + "space: {x: {type: float, low: 0, high: 1}}\ntags:\n  team:\n"),
        _fixed("tags.team: got no value; give it one, e.g. team: vision, or leave the key out"),
    ),
    "tags-as-a-list": Case(
        _spec(tags=["vision", "nlp"]),
        _fixed("tags: must be a mapping, e.g. tags: {team: vision}; got ['vision', 'nlp']"),
    ),
    "command-unknown-placeholder": Case(
        _spec(trial={"command": "python train.py --x {x} --lr {lr}"}),
        _fixed(
            "trial.command: placeholder {lr} names no parameter; parameters: x; built-ins: args, trial_dir, "
            "spec_dir, seed, number (write {{ and }} for literal braces)"
        ),
    ),
    "negative-budget": Case(
        _spec(budget={"trials": -5}), _fixed("budget.trials: input should be greater than 0; got -5")
    ),
    "unknown-direction": Case(
        _spec(objective={"metric": "loss", "direction": "minimise"}),
        _fixed(
            "objective.direction: must be one of 'minimize' or 'maximize'; got 'minimise' "
            "(did you mean 'minimize'?)"
        ),
    ),
    "objective-as-a-metric-name": Case(  # it said: objective: input should be a valid tuple; got 'loss'
        _spec(objective="loss"),
        _fixed("objective: give the metric and its direction: {metric: loss, direction: minimize} (or maximize); "
               "got 'loss'"),
    ),
    "objectives-as-metric-names": Case(
        _spec(objective=["loss", "latency"]),
        _fixed("objective.0: give the metric and its direction: {metric: loss, direction: minimize} (or maximize); "
               "got 'loss'"),
    ),
    "scheduler-with-two-objectives": Case(  # it ran: ASHA stopped trials of the Pareto front on loss alone, no values
        _spec(objective=[{"metric": "loss", "direction": "minimize"}, {"metric": "size", "direction": "minimize"}],
              strategy="nsga2", scheduler={"name": "asha", "max_resource": 6}),
        _fixed("scheduler: early stopping ranks trials on one objective (loss's intermediate values); with 2 "
               "objectives it would stop trials of the Pareto front for being behind on loss alone, and a stopped "
               "trial has no values: remove the scheduler, or tune loss alone and bound the others with constraints "
               "(constraints: ['size <= ...'])"),
    ),
    "domain-as-a-list": Case(  # it said: Input should be a valid dictionary or object to extract fields from
        _spec(space={"x": ["a", "b"]}),
        _fixed("space.x: give a domain: {type: categorical, choices: [...]} for a list of values, {type: float, low, "
               "high} or {type: int, low, high}; got ['a', 'b']"),
    ),
    "fractional-int": Case(  # it said: Input should be a valid integer, got a number with a fractional part
        _spec(space={"x": {"type": "int", "low": 0.5, "high": 3}}), _fixed("space.x.low: must be a whole number; got 0.5")
    ),
    "unknown-strategy": Case(
        _spec(strategy="tpee"),
        _fixed(
            "strategy.name: unknown strategy 'tpee'; did you mean 'tpe'? "
            "choose one of auto, random, grid, qmc, tpe, cmaes, gp, nsga2, bo (got 'tpee')"
        ),
    ),
    "unknown-strategy-option": Case(
        _spec(strategy={"name": "tpe", "n_startup_trails": 5}),
        _fixed(
            "strategy.n_startup_trails: not an option of the tpe strategy; did you mean 'n_startup_trials'? "
            "accepted: consider_endpoints, consider_magic_clip, consider_prior, constant_liar, group, "
            "multivariate, n_ei_candidates, n_startup_trials, prior_weight, warn_independent_sampling"
        ),
    ),
    # Strategy typos a new user makes (each said something else: "`auto` takes no options", "instance of
    # StrategyChoice", an empty "accepted:", no did-you-mean for grid's and bo's options)
    "strategy-name-misspelt-as-a-key": Case(
        _spec(strategy={"nam": "tpe"}), _fixed("strategy.nam: unknown key 'nam'; did you mean 'name'?")
    ),
    "strategy-named-by-its-key": Case(
        _spec(strategy={"tpe": {"n_startup_trials": 3}}),
        _fixed("strategy.tpe: unknown key 'tpe'; name the strategy with `name` and put its options beside it: "
               "{name: tpe, <option>: ...}"),
    ),
    "strategy-as-a-list": Case(
        _spec(strategy=["tpe"]),
        _fixed("strategy: must be a strategy name (auto, random, grid, qmc, tpe, cmaes, gp, nsga2, bo) or a mapping "
               "with `name`, e.g. {name: tpe, n_startup_trials: 5}; got ['tpe']"),
    ),
    "strategy-in-capitals": Case(
        _spec(strategy="TPE"),
        _fixed("strategy.name: unknown strategy 'TPE'; did you mean 'tpe'? choose one of auto, random, grid, qmc, "
               "tpe, cmaes, gp, nsga2, bo (got 'TPE')"),
    ),
    # Case counted only for strategy names: a scheduler in capitals was offered no name at all
    "scheduler-in-capitals": Case(
        _spec(scheduler="ASHA"),
        _fixed("scheduler: unknown scheduler 'ASHA'; did you mean 'asha'? choose one of none, median, asha, "
               "hyperband, pbt (got 'ASHA')"),
    ),
    "grid-option-misspelt": Case(
        _spec(strategy={"name": "grid", "shufle": True}),
        _fixed("strategy.shufle: not an option of the grid strategy; did you mean 'shuffle'? accepted: points, "
               "shuffle"),
    ),
    # auto's own wording on purpose: the option was meant for a strategy auto would pick, so the fix is to name it
    "option-given-to-auto": Case(
        _spec(strategy={"n_startup_trials": 5}),
        _fixed("strategy.n_startup_trials: `auto` takes no options; name a strategy to set options"),
    ),
    "option-of-a-strategy-without-options": Case(
        _spec(strategy={"name": "random", "n_startup_trials": 3}),
        _fixed("strategy.n_startup_trials: the random strategy takes no options; remove 'n_startup_trials'"),
    ),
    # Option values Optuna refused only when the run built its sampler, the experiment recorded (failed, the name
    # taken), or never (a negative count ran as 0, a negative step size as 1e-8): each is refused with its field
    "qmc-type-misspelt": Case(
        _spec(strategy={"name": "qmc", "qmc_type": "haltn"}),
        _fixed("strategy.qmc_type: must be one of 'sobol' or 'halton'; got 'haltn' (did you mean 'halton'?)"),
    ),
    "nsga2-population-of-one": Case(
        _spec(strategy={"name": "nsga2", "population_size": 1}),
        _fixed("strategy.population_size: must be an int >= 2 (the trials of each NSGA-II generation, bred from "
               "pairs of parents); got 1"),
    ),
    "nsga2-crossover-probability-above-one": Case(
        _spec(strategy={"name": "nsga2", "crossover_prob": 7}),
        _fixed("strategy.crossover_prob: must be a number in [0, 1] (the probability that a child is bred by "
               "crossover); got 7"),
    ),
    "tpe-negative-startup-trials": Case(
        _spec(strategy={"name": "tpe", "n_startup_trials": -3}),
        _fixed("strategy.n_startup_trials: must be an int >= 0 (the trials drawn at random before TPE models the "
               "rest); got -3"),
    ),
    "tpe-startup-trials-in-words": Case(
        _spec(strategy={"name": "tpe", "n_startup_trials": "ten"}),
        _fixed("strategy.n_startup_trials: must be an int >= 0 (the trials drawn at random before TPE models the "
               "rest); got 'ten'"),
    ),
    "tpe-without-candidates": Case(
        _spec(strategy={"name": "tpe", "n_ei_candidates": 0}),
        _fixed("strategy.n_ei_candidates: must be an int >= 1 (the candidates TPE scores for each proposal); got 0"),
    ),
    "cmaes-negative-sigma0": Case(
        _spec(strategy={"name": "cmaes", "sigma0": -5}),
        _fixed("strategy.sigma0: must be a number > 0 (CMA-ES's initial step size, in the space scaled to [0, 1]); "
               "got -5"),
    ),
    "cmaes-population-of-one": Case(  # an AssertionError's traceback from the cmaes library, mid-run
        _spec(strategy={"name": "cmaes", "popsize": 1}),
        _fixed("strategy.popsize: must be an int >= 4 (CMA-ES's population; below 4 the cmaes library's learning "
               "rates divide by zero); got 1"),
    ),
    "cmaes-options-that-exclude-each-other": Case(  # Optuna's own refusal, at the option it names
        _spec(strategy={"name": "cmaes", "lr_adapt": True, "with_margin": True}),
        _fixed("strategy.lr_adapt: the cmaes strategy refuses it: It is prohibited to pass `use_separable_cma` or "
               "`with_margin` argument when using `lr_adapt`."),
    ),
    "cmaes-with-two-objectives": Case(  # a ValueError's traceback at the first proposal, the experiment recorded
        _spec(objective=[{"metric": "f1", "direction": "minimize"}, {"metric": "f2", "direction": "minimize"}],
              trial={"function": "objectives:two_objectives"}, strategy="cmaes"),
        _fixed("strategy.name: the cmaes strategy optimises one objective; use tpe or nsga2 for several"),
    ),
    # A section written as a plain value: it said "input should be a valid dictionary or instance of Budget"
    "budget-as-a-number": Case(
        _spec(budget=50), _fixed("budget: must be a mapping, e.g. budget: {trials: 50}; got 50")
    ),
    "executor-as-a-word": Case(
        _spec(executor="process"),
        _fixed("executor: must be a mapping, e.g. executor: {kind: process, workers: 2}; got 'process'"),
    ),
    "pbt-mutation-as-a-word": Case(
        _spec(scheduler={"name": "pbt", "mutations": {"x": "resample"}}),
        _fixed("scheduler.mutations.x: must be a mapping, e.g. {resample: true}, {factors: [0.8, 1.2]}, "
               "{choices: [...]} or {keep: true}; got 'resample'"),
    ),
    "command-with-a-lone-brace": Case(  # it ran `echo {x` as written: every trial failed with no result line
        _spec(trial={"command": "echo {x"}),
        _fixed("trial.command: a lone '{' at character 6: close the placeholder, as in {x}, or write {{ for a "
               "literal brace; got 'echo {x'"),
    ),
    "transposed-letters-in-a-key": Case(  # it said: did you mean 'low'? (difflib rates lgo as close to both)
        _spec(space={"x": {"type": "float", "low": 0.1, "high": 1.0, "lgo": True}}),
        _fixed("space.x.lgo: unknown key 'lgo'; did you mean 'log'?"),
    ),
    "exponent-for-an-int": Case(  # it said: unable to parse string as an integer; got '1e3'
        _text("name: exp\nobjective: {metric: loss, direction: minimize}\ntrial: objectives:quadratic\n"
              "space: {x: {type: int, low: 1, high: 1e3}}\n"),
        _fixed("space.x.high: must be a whole number; got '1e3', which YAML reads as text: write 1000"),
    ),
    "direction-abbreviated": Case(  # it said: must be one of 'minimize' or 'maximize'; got 'min' (no hint)
        _spec(objective={"metric": "loss", "direction": "min"}),
        _fixed("objective.direction: must be one of 'minimize' or 'maximize'; got 'min' (did you mean 'minimize'?)"),
    ),
    "missing-spec-file": Case(
        lambda project: "missing.yaml",
        lambda project: f"spec file 'missing.yaml' does not exist in {project.root.resolve()}",
    ),
    "spec-file-extension-mistyped": Case(  # it said only: spec file 'c.yml' does not exist
        lambda project: (project.write_spec(project.spec(), "c.yaml"), "c.yml")[1],
        lambda project: f"spec file 'c.yml' does not exist in {project.root.resolve()}; did you mean 'c.yaml'?",
    ),
    "spec-file-missing-beside-unlike-names": Case(  # it said: did you mean 'exp.yaml'? (the .yaml they share)
        lambda project: (project.write_spec(project.spec(), "exp.yaml"), "nothere.yaml")[1],
        lambda project: f"spec file 'nothere.yaml' does not exist in {project.root.resolve()}",
    ),
    "bad-storage-url": Case(
        _spec(storage="notaurl"),
        _fixed(
            "storage: not a database URL; got 'notaurl' (try sqlite:///tunesmith.db or "
            "postgresql://user@host/dbname)"
        ),
    ),
    "storage-path-not-url": Case(  # it suggested sqlite:///tunesmith.db, dropping the folder
        _spec(storage="proj/tunesmith.db"),
        _fixed("storage: not a database URL; got 'proj/tunesmith.db' (try sqlite:///proj/tunesmith.db)"),
    ),
    "unknown-storage-dialect": Case(
        _spec(storage="postgres://u@h/db"),
        _fixed(
            "storage: no database dialect 'postgres'; got 'postgres://u@h/db' (try sqlite:///tunesmith.db or "
            "postgresql://user@host/dbname)"
        ),
    ),
    "bad-duration": Case(  # it never said that 2d is a duration
        _spec(executor={"trial_timeout": "2 days"}),
        _fixed("executor.trial_timeout: expected a duration like 90s, 10m, 1h30m or 2d (units: ms, s, m, h, d; a bare "
               "number is seconds); got '2 days'"),
    ),
    "duration-in-base-60": Case(  # YAML 1.1 read 1:30 as 90: a run meant to last an hour and a half stopped at 90 s
        _text(f"{HEAD}space: {{x: {{type: float, low: 0, high: 1}}}}\nbudget: {{wall_time: 1:30}}\n"),
        _fixed("budget.wall_time: YAML 1.1 reads 1:30 as the base-60 number 90: for a duration write its units (1m30s, "
               "1h30m), for text quote it ('1:30')"),
    ),
    "parameter-written-twice": Case(  # YAML kept the second `x` and dropped the first without a word
        _text(
            "name: exp\nobjective: {metric: loss, direction: minimize}\nspace:\n"
            "  x: {type: float, low: 0, high: 1}\n  y: {type: int, low: 1, high: 3}\n"
            "  x: {type: float, low: 0, high: 2}\ntrial: {function: objectives:quadratic}\n"
        ),
        _fixed("space.x: written twice (lines 4 and 6); YAML would keep only the last: rename or remove one"),
    ),
    "top-level-key-written-twice": Case(
        _text(
            "name: exp\nobjective: {metric: loss, direction: minimize}\nspace: {x: {type: float, low: 0, high: 1}}\n"
            "budget: {trials: 5}\ntrial: {function: objectives:quadratic}\nbudget: {wall_time: 1m}\n"
        ),
        _fixed("budget: written twice (lines 4 and 6); YAML would keep only the last: rename or remove one"),
    ),
    "choice-that-is-a-list": Case(  # it said: space.layers.choices.0.float: Input should be a valid number
        _spec(space={"layers": {"type": "categorical", "choices": [[64, 64], [128]]}}),
        _fixed("space.layers.choices.0: a choice must be a string, a number, a boolean or null; got [64, 64] (write "
               "it as a string, such as '64-64', and split it in the trial code)"),
    ),
    "spec-not-utf8": Case(  # a traceback: UnicodeDecodeError ('utf-8' codec can't decode byte 0xff)
        lambda project: (project.root / "bad.yaml").write_bytes(
            "name: exp\ndescription: réglage\n".encode("utf-16")) and str(project.root / "bad.yaml"),
        _fixed("bad.yaml is not UTF-8 text (byte 0xff at position 0); save it as UTF-8"),
    ),
    # Parameter names: a built-in placeholder's took its place ({seed} was the parameter, {trial_dir} no longer the
    # trial's folder, {args} no longer every parameter); {args} wrote '' as `--`, 'x y' as two words, '--evil' as
    # `----evil`, 'a;b' unquoted (the shell ran `b`). All ran without a word.
    "parameter-named-as-a-built-in-placeholder": Case(
        _spec(space={"seed": {"type": "int", "low": 100, "high": 200}},
              trial={"command": "echo '{{\"loss\": 1}}' seed={seed} {args}"}),
        _fixed("space.seed: {seed} is a built-in placeholder of trial.command (the trial's seed), which a parameter "
               "named 'seed' would silently replace; rename the parameter, such as seed_param, and its placeholder"),
    ),
    "parameter-named-trial-dir": Case(
        _spec(space={**X, "trial_dir": {"type": "categorical", "choices": ["TD"]}},
              trial={"command": "echo {x} > {trial_dir}/x.txt"}),
        _fixed("space.trial_dir: {trial_dir} is a built-in placeholder of trial.command (the trial's own folder), "
               "which a parameter named 'trial_dir' would silently replace; rename the parameter, such as "
               "trial_dir_param, and its placeholder"),
    ),
    "parameter-name-empty": Case(
        _spec(space={**X, "": {"type": "int", "low": 1, "high": 2}}),
        _fixed("space: a parameter's name is empty (''): name it, such as lr"),
    ),
    "parameter-name-with-a-space": Case(
        _spec(space={**X, "x y": {"type": "int", "low": 1, "high": 2}}, trial={"command": "python train.py {args}"}),
        _fixed("space.x y: a parameter's name must not hold whitespace ({args} would pass it as --x y, several "
               "words); write 'x_y'"),
    ),
    "parameter-name-starting-with-a-dash": Case(
        _spec(space={**X, "--evil": {"type": "int", "low": 1, "high": 2}},
              trial={"command": "python train.py {args}"}),
        _fixed("space.--evil: a parameter's name must not start with '-' ({args} would pass it as ----evil); write "
               "'evil'"),
    ),
    "parameter-name-the-shell-reads": Case(
        _spec(space={**X, "a;b": {"type": "int", "low": 1, "high": 2}}, trial={"command": "python train.py {args}"}),
        _fixed("space.a;b: {args} writes a parameter's name unquoted (--a;b), and the shell reads ';' in it; write "
               "'a_b'"),
    ),
    # YAML 1.1 booleans where text was meant: the trial got True for `yes`, and False for Norway
    "choice-written-yes": Case(
        _text(f"{HEAD}space:\n  x: {{type: float, low: 0, high: 1}}\n"
              "  answer: {type: categorical, choices: [yes, no, maybe]}\n"),
        _fixed("space.answer.choices.0: YAML 1.1 reads an unquoted yes as the boolean true: quote it for the text "
               "('yes'), or write true for the boolean"),
    ),
    "choice-written-as-a-country-code": Case(
        _text(f"{HEAD}space:\n  x: {{type: float, low: 0, high: 1}}\n"
              "  country: {type: categorical, choices: [SE, NO, DK]}\n"),
        _fixed("space.country.choices.1: YAML 1.1 reads an unquoted NO as the boolean false: quote it for the text "
               "('NO'), or write false for the boolean"),
    ),
    "when-value-written-on": Case(
        _text(f"{HEAD}space:\n  flag: {{type: categorical, choices: [true, false]}}\n"
              "  x: {type: float, low: 0, high: 1, when: {flag: [on]}}\n"),
        _fixed("space.x.when.flag.0: YAML 1.1 reads an unquoted on as the boolean true: quote it for the text ('on'), "
               "or write true for the boolean"),
    ),
    "parameter-named-on": Case(  # the path said `space.1`
        _text(f"{HEAD}space:\n  x: {{type: float, low: 0, high: 1}}\n  on: {{type: categorical, choices: [a, b]}}\n"),
        _fixed("space.on: a key must be text; got on, which YAML read as a boolean (quote it as you wrote it: 'on')"),
    ),
    "top-level-key-yes": Case(  # a traceback: TypeError: keywords must be strings
        _text(f"{HEAD}space: {{x: {{type: float, low: 0, high: 1}}}}\nyes: 1\n"),
        _fixed("yes: a key must be text; got yes, which YAML read as a boolean (quote it as you wrote it: 'yes')"),
    ),
    "when-an-empty-list": Case(  # accepted: 'x' was never active
        _spec(space={"kernel": {"type": "categorical", "choices": ["rbf", "linear"]},
                     "x": {"type": "float", "low": 0.0, "high": 1.0, "when": {"kernel": []}}}),
        _fixed("space.x.when.kernel: an empty list of values, which no value of 'kernel' is one of: 'x' would never "
               "be active; list the values that activate it (e.g. kernel: [rbf]) or drop the condition"),
    ),
    "float-step-larger-than-the-range": Case(  # it said: (try high=0), which is refused too
        _spec(space={"x": {"type": "float", "low": 0, "high": 1, "step": 2}}),
        _fixed("space.x: high - low must be a multiple of step; got low=0.0, high=1.0, step=2.0 (step is larger than "
               "high - low: try step=1, or high=2)"),
    ),
    "int-log-with-low-zero": Case(  # no fix was given (the float case has one)
        _spec(space={"n": {"type": "int", "low": 0, "high": 10, "log": True}}),
        _fixed("space.n: low must be >= 1 when log is true; got low=0 (use log: false or low: 1)"),
    ),
    "name-with-unicode-letters": Case(  # it said "use letters": these are letters
        _spec(name="实验-α"),
        _fixed("name: use ASCII letters, digits, '_', '.' or '-' (starting with a letter or digit, at most 128); "
               "got '实验-α'"),
    ),
    "objective-an-empty-list": Case(  # pydantic's own: Tuple should have at least 1 item after validation, not 0
        _spec(objective=[]),
        _fixed("objective: give the metric to optimise and its direction, e.g. objective: {metric: loss, direction: "
               "minimize} (or a list of them); got []"),
    ),
    # YAML syntax errors said the parser's words alone
    "yaml-tab": Case(
        _text(f"{HEAD}space:\n\tx: {{type: float, low: 0, high: 1}}\n"),
        _fixed("YAML syntax error in bad.yaml at line 5, column 1: found character '\\t' that cannot start any "
               "token; YAML indents with spaces only: replace the tab with spaces"),
    ),
    "yaml-indented-as-no-key-above": Case(
        _text(f"{HEAD}space:\n  x: {{type: float, low: 0, high: 1}}\n   y: {{type: int, low: 1, high: 3}}\n"),
        _fixed("YAML syntax error in bad.yaml at line 6, column 4: expected <block end>, but found '<block mapping "
               "start>'; line 6 is indented 3 spaces, which lines up with no key above it: line it up with the keys "
               "it belongs beside"),
    ),
    "yaml-value-holding-a-colon": Case(
        _text(f"{HEAD}description: tuned: on the new data\nspace: {{x: {{type: float, low: 0, high: 1}}}}\n"),
        _fixed("YAML syntax error in bad.yaml at line 4, column 19: mapping values are not allowed here; quote a value "
               "holding ': ', as in description: 'tuned: on the new data'"),
    ),
    "yaml-indented-under-a-key-with-a-value": Case(
        _text(f"{HEAD}space: {{x: {{type: float, low: 0, high: 1}}}}\nbudget:\n  trials: 5\n    wall_time: 1m\n"),
        _fixed("YAML syntax error in bad.yaml at line 7, column 14: mapping values are not allowed here; line 7 is "
               "indented further than line 6 (trials: 5), whose key already has a value: line it up with that key"),
    ),
    "parameters-not-indented-under-space": Case(  # it said: x: unknown key 'x'; accepted keys: ...
        _text(f"{HEAD}space:\nx: {{type: float, low: 0, high: 1}}\n"),
        _fixed("x: unknown key 'x', written below space: (line 4), which is empty: indent it under space:, by two "
               "spaces"),
    ),
    "boolean-trial-count": Case(  # it ran 1 trial: pydantic's lax int read true as 1
        _spec(budget={"trials": True}),
        _fixed("budget.trials: input should be a valid integer; got True (YAML reads true, false, yes, no, on and "
               "off as booleans: write a number)"),
    ),
    "boolean-domain-bounds": Case(  # it searched [0, 1]: low: false, high: true
        _text(f"{HEAD}space: {{x: {{type: float, low: false, high: true}}}}\n"),
        _fixed("space.x.low: input should be a valid number; got False (YAML reads true, false, yes, no, on and off "
               "as booleans: write a number)"),
    ),
    "quoted-number": Case(  # it took '5' as 5
        _text(f"{HEAD}space: {{x: {{type: int, low: 1, high: 9}}}}\nbudget: {{patience: '5'}}\n"),
        _fixed("budget.patience: input should be a valid integer; got '5' (write the number without quotes: 5)"),
    ),
    "boolean-worker-count": Case(
        _spec(executor={"kind": "process", "workers": True}),
        _fixed("executor.workers: input should be a valid integer; got True (YAML reads true, false, yes, no, on and "
               "off as booleans: write a number)"),
    ),
    "quoted-seed": Case(
        _spec(seed="7"),
        _fixed("seed: input should be a valid integer; got '7' (write the number without quotes: 7)"),
    ),
    "retry-on-one-kind-misspelt": Case(  # one kind alone is a list of one; its error names no item 0
        _spec(executor={"retry_on": "crash"}),
        _fixed("executor.retry_on: must be one of 'exception', 'invalid_result', 'exit_code', 'crashed', 'timeout', "
               "'memory', 'lost' or 'interrupted'; got 'crash' (did you mean 'crashed'?)"),
    ),
    "retry-on-a-number": Case(  # it said: input should be a valid tuple
        _spec(executor={"retry_on": 5}),
        _fixed("executor.retry_on: must be a list, written [a, b]; got 5"),
    ),
    "feature-listed-twice": Case(  # it was taken silently: the estimator got the column twice
        lambda project: _classes_task(project, classes=2, features=["age", "income", "age"]),
        _fixed("task.data.features.2: repeats 'age' (item 0); list each feature column once: remove this one"),
    ),
    "binary-scorer-on-three-classes": Case(  # it said valid; every trial failed, the run exited 1
        lambda project: _classes_task(project),
        _fixed("task.scoring: roc_auc cannot score the target 'tier', which has 3 classes (0, 1, 2): every trial "
               "would fail (scikit-learn: multi_class must be in ('ovo', 'ovr')); use one of roc_auc_ovo, "
               "roc_auc_ovr, roc_auc_ovo_weighted or roc_auc_ovr_weighted (objective.metric the same), or a binary "
               "target"),
    ),
    "binary-average-on-three-classes": Case(
        lambda project: _classes_task(project, "f1", "f1"),
        _fixed("task.scoring: f1 cannot score the target 'tier', which has 3 classes (0, 1, 2): every trial would "
               "fail (scikit-learn: Target is multiclass but average='binary'. Please choose another average "
               "setting, one of [None, 'micro', 'macro', 'weighted'].); use one of f1_macro, f1_micro or f1_weighted "
               "(objective.metric the same), or a binary target"),
    ),
    "business-threshold-on-three-classes": Case(
        lambda project: _classes_task(project, {"precision_at_recall": 0.8}, "precision_at_recall"),
        _fixed("task.scoring: precision_at_recall needs a binary target (a positive class and the rest), but the "
               "target 'tier' has 3 classes (0, 1, 2): use a scorer for several classes (accuracy, balanced_accuracy, "
               "f1_macro, roc_auc_ovr or neg_log_loss; objective.metric the same), or a binary target"),
    ),
    "pos-label-not-a-class": Case(
        lambda project: _classes_task(project, {"recall_at_precision": 0.5, "pos_label": 2}, "recall_at_precision",
                                      classes=2),
        _fixed("task.scoring.pos_label: 2 is not a class of the target; the target 'tier' has 2 classes (0, 1): "
               "give one of them"),
    ),
    "markup-in-user-text": Case(  # rich must print the name as written, not read `[/]` as a closing tag
        _spec(name="exp[/]"),
        _fixed(
            "name: use ASCII letters, digits, '_', '.' or '-' (starting with a letter or digit, at most 128); "
            "got 'exp[/]'"
        ),
    ),
}


@dataclass(frozen=True)
class CatalogueValidated:
    """Every catalogue case's spec, each written in a folder of its own (a project: objectives.py beside it), and
    one `tunesmith validate` over all of them, run from the folder holding those folders."""

    projects: dict[str, Any]               # the case's project (its folder), by case
    paths: dict[str, str]                  # the spec given to validate, by case, in the order given
    before: dict[str, dict[str, bytes]]    # each case's folder before validate ran
    proc: subprocess.CompletedProcess[str]
    wrote: bool                            # whether anything under the folders' folder changed (a store, a file)

    def line_of(self, name: str) -> str:
        """The one stderr line of case ``name``: validate says one line per spec, in the order given, so its is
        the line at its place (the count of lines is checked too: none lost, none extra)."""
        return self.proc.stderr.splitlines()[list(self.paths).index(name)]


def _relative(path: str) -> bool:
    """A spec named relative to its project folder, where `tunesmith` runs (a test of the name as typed): one
    validate run from elsewhere cannot give it as typed."""
    return not os.path.isabs(path)


@pytest.fixture(scope="module")
def catalogue_validated(tmp_path_factory: pytest.TempPathFactory) -> CatalogueValidated:
    """`tunesmith validate` once over every catalogue spec (a subprocess costs ~0.6 s of CPU, mostly start-up,
    where the catalogue has 52 cases), each in its own folder: each path names its case, so a line cannot be
    credited to another case, and no message that names the project folder names another case's. Cases whose
    spec is named relative to the folder the command runs in are left out: they keep a validate of their own."""
    from conftest import OBJECTIVES, Project

    root = tmp_path_factory.mktemp("catalogue")
    projects, paths, before = {}, {}, {}
    for name, case in CATALOGUE.items():
        projects[name] = Project(root / name)
        projects[name].root.mkdir()
        (projects[name].root / "objectives.py").write_text(OBJECTIVES)
        path = case.write(projects[name])
        if not _relative(path):
            paths[name] = path
            before[name] = _files(projects[name].root)
    store = root / "tunesmith.db"
    everything = _files(root)
    proc = subprocess.run([sys.executable, "-m", "tunesmith.cli", "validate", *paths.values()], cwd=root,
                          env={**os.environ, "TUNESMITH_STORAGE": f"sqlite:///{store}", "COLUMNS": "200"},
                          capture_output=True, text=True, timeout=300)
    return CatalogueValidated(projects, paths, before, proc, wrote=store.exists() or _files(root) != everything)


# The catalogue's cases whose `run` is a subprocess of its own too (each ~0.7-2 s of CPU): one of each kind of
# refusal (YAML, schema, space, strategy, trial code found or imported, a task's pipeline, the spec file itself),
# and those where run and validate parted ways before (validate said valid, or the import ended tunesmith). Every
# case's refusal is checked through the real CLI subprocess by the catalogue's one `validate`; the others' `run` is
# the command's own code in this process (helpers.cli_in_process: main's handling, exit code, stderr; a traceback
# there is an exception that fails the test).
RUN_SUBPROCESS_CASES = {"yaml-syntax", "unknown-top-level-key", "low-not-below-high", "unknown-strategy-option",
                        "trial-module-misspelt", "trial-function-in-optuna-style",
                        "trial-module-imports-a-missing-package", "task-step-module-exits-at-import",
                        "spec-not-utf8", "markup-in-user-text", "missing-spec-file", "binary-scorer-on-three-classes"}


def _run_in_process(project: Any, spec: str) -> subprocess.CompletedProcess[str]:
    """`tunesmith run SPEC` in this process (helpers.cli_in_process), as a CompletedProcess; the modules its check
    imported from the project folder are unloaded after, as a new process would not have them."""
    known = set(sys.modules)
    try:
        code, out, err = cli_in_process("run", spec)
    finally:
        root = str(project.root.resolve())
        for module in set(sys.modules) - known:
            if str(getattr(sys.modules[module], "__file__", None) or "").startswith(root):
                del sys.modules[module]
    return subprocess.CompletedProcess(["tunesmith", "run", spec], code, out, err)


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_bad_input_exits_2_with_one_message_and_writes_nothing(project, catalogue_validated, name):
    """`run` and `validate` each refuse the spec: exit 2, one line, no traceback, nothing written. `validate` is
    the one run over the whole catalogue (its line for this case names the case's spec, as one of several), but
    for a spec named relative to the project folder: a validate of its own. `run` is a subprocess of its own for
    RUN_SUBPROCESS_CASES, the command's code in this process for the others."""
    case = CATALOGUE[name]
    spec = case.write(project)
    before = _files(project.root)
    if _relative(spec):
        validate = project.cli("validate", spec)
        _assert_input_error(validate, case.message(project))
    else:
        _assert_validated_as_one_of_several(catalogue_validated, name)
    run = project.cli("run", spec) if name in RUN_SUBPROCESS_CASES else _run_in_process(project, spec)
    _assert_input_error(run, case.message(project))
    assert not project.db.exists()
    assert _files(project.root) == before


# single-spec `validate` (the common form) says its error unprefixed: the catalogue's one run over every spec prefixes
# each line with its file, so a few cases of different kinds keep a validate of their own (each a ~0.6 s subprocess)
SINGLE_SPEC_CASES = ["yaml-syntax", "unknown-top-level-key", "low-not-below-high", "trial-module-misspelt",
                     "trial-module-imports-a-missing-package"]


@pytest.mark.parametrize("name", SINGLE_SPEC_CASES)
def test_validate_of_one_bad_spec_says_its_message_unprefixed_and_exits_2(project, name):
    case = CATALOGUE[name]
    spec = case.write(project)
    assert not _relative(spec)  # those have their own validate in the catalogue test already
    before = _files(project.root)
    _assert_input_error(project.cli("validate", spec), case.message(project))
    assert not project.db.exists()
    assert _files(project.root) == before


def _assert_validated_as_one_of_several(validated: CatalogueValidated, name: str) -> None:
    """Case ``name``'s line in the catalogue's one validate: exactly `error: ITS SPEC: ITS MESSAGE`, the one line at
    its place among one line per spec, exit 2, nothing on stdout, no traceback; its folder as it was before."""
    proc = validated.proc
    where = f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stdout + proc.stderr, where
    assert proc.returncode == 2, where
    assert proc.stdout == "", where
    assert len(proc.stderr.splitlines()) == len(validated.paths), where
    message = CATALOGUE[name].message(validated.projects[name])
    assert validated.line_of(name) == f"error: {validated.paths[name]}: {message}", where
    assert _files(validated.projects[name].root) == validated.before[name]
    assert not validated.wrote  # anywhere else either: no case can be told apart there, so none may write


def test_bad_specs_leave_an_existing_store_byte_for_byte_unchanged(project):
    shown = _seed_store(project)
    before = _store_files(project.root)
    assert "tunesmith.db" in before
    # bad specs for the very experiment that exists: none of them may touch its record. The first `run` is a
    # subprocess; the others, refusals of other kinds, run the command's code in this process (_run_in_process)
    for name in (
        "unknown-nested-key",
        "when-unknown-parameter",
        "trial-function-missing",
        "unknown-strategy-option",
        "qmc-type-misspelt",
    ):
        spec = CATALOGUE[name].write(project)
        run = project.cli("run", spec) if name == "unknown-nested-key" else _run_in_process(project, spec)
        _assert_input_error(run, CATALOGUE[name].message(project))
        assert _store_files(project.root) == before, name
    assert project.show("exp") == shown


def test_run_on_an_existing_name_points_at_resume_and_leaves_the_record(project):
    shown = _seed_store(project)
    recorded = project.trials("exp")
    before = _store_files(project.root)
    changed = project.write_spec(
        project.spec(executor={"kind": "inline"}, budget={"trials": 5}, seed=2), "again.yaml"
    )
    proc = project.cli("run", str(changed))
    _assert_input_error(proc, f"an experiment named 'exp' already exists in {project.storage}; {EXISTS_FIX}. Its "
                              "recorded spec differs from this one: budget.trials: 2 -> 5; seed: 1 -> 2 (`tunesmith "
                              "diff exp SPEC` lists every difference)")
    assert _store_files(project.root) == before
    assert project.show("exp") == shown
    assert project.trials("exp") == recorded


def test_run_name_overrides_the_spec_and_unknown_names_list_what_exists(project):
    spec = project.write_spec(project.spec(executor={"kind": "inline"}, budget={"trials": 2}), "exp.yaml")
    project.cli("run", str(spec), "--name", "other", "--quiet", check=True)
    shown = project.show("other")
    assert (shown["name"], shown["status"], shown["total_trials"]) == ("other", "completed", 2)
    before = _store_files(project.root)
    missing = f"no experiment named 'exp' in {project.storage}; experiments here: other"
    # `resume` a subprocess; `show`, whose refusal of an unknown name a subprocess proves in
    # test_a_reader_of_stdout_that_left_changes_no_exit_code_of_any_command, the command's code in this process
    _assert_input_error(_in_process("show", "exp"), missing)
    _assert_input_error(project.cli("resume", "exp"), missing)
    assert _store_files(project.root) == before
    # a misspelt name is matched, wherever it falls in the list (which stops at ten)
    _assert_input_error(_in_process("show", "othr"), f"no experiment named 'othr' in {project.storage}; did you mean "
                                                     "'other'? Experiments here: other")


def _cli_or_here(project: Any, args: tuple[str, ...], process: bool) -> subprocess.CompletedProcess[str]:
    """`tunesmith ARGS` as a process (Project.cli) or, where a process for a case of the same kind is in the same
    test, the command's code in this process from the project folder at the process's COLUMNS
    (helpers.completed_in_process): a process costs ~0.3-0.8 s of CPU, mostly start-up."""
    if process:
        return project.cli(*args)
    return completed_in_process(project.root, *args, env={"COLUMNS": "200"})


def _in_process(*args: str) -> subprocess.CompletedProcess[str]:
    """`tunesmith ARGS` in this process (helpers.cli_in_process), as a CompletedProcess."""
    return subprocess.CompletedProcess(["tunesmith", *args], *cli_in_process(*args))


def test_validate_on_the_contract_spec_exits_0_and_writes_nothing(project):
    project.write("mymodule.py", MYMODULE)
    spec = project.write("svc-wine.yaml", CONTRACT_YAML)
    before = _files(project.root)
    proc = project.cli("validate", str(spec))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.splitlines() == [
        (
            "valid: svc-wine: 4 parameters (conditional), 1 objective(s), strategy tpe (chosen in the spec), "
            "executor process x2"
        )
    ]
    assert not project.db.exists()
    assert _files(project.root) == before


VALID_LINE = ("valid: {path}: {name}: 1 parameters, 1 objective(s), strategy random (chosen in the spec), executor "
              "process x2")


def test_validate_of_several_valid_specs_exits_0_with_one_line_each_in_the_order_given(project):
    """`tunesmith validate specs/*.yaml` (a CI job, a pre-commit hook): one `valid:` line per spec, naming its file,
    in the order given; a warning names its spec's file too."""
    (project.root / "specs").mkdir()
    specs = [project.write_spec(project.spec(name=n), f"specs/{n}.yaml") for n in ("b", "a")]
    warned = project.write_spec(project.spec(name="w", trial={"command": "python trian.py {x}"}), "specs/w.yaml")
    given = ["specs/b.yaml", "specs/a.yaml", "specs/w.yaml"]
    assert [str(p) for p in (*specs, warned)] == [str(project.root / g) for g in given]
    before = _files(project.root)
    proc = project.cli("validate", *given)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [VALID_LINE.format(path=g, name=n) for g, n in zip(given, "baw", strict=True)]
    assert proc.stderr.splitlines() == [f"warning: specs/w.yaml: trial.command names 'trian.py', which is not in the "
                                        f"spec's folder {project.root / 'specs'}, where commands run"]
    assert not project.db.exists() and _files(project.root) == before


def test_validate_of_several_specs_says_each_one_bad_or_missing_and_exits_2(project):
    """One spec bad and one missing among valid ones: each gets its own line, in the order given, naming its file
    (valid ones on stdout, errors on stderr, as main says them), the specs after a bad one are still checked, and
    the command exits 2; no traceback, nothing written."""
    project.write_spec(project.spec(name="a"), "a.yaml")
    project.write_spec(project.spec(name="bad", budget={"trials": -5}), "bad.yaml")
    project.write_spec(project.spec(name="c"), "c.yaml")
    before = _files(project.root)
    proc = project.cli("validate", "a.yaml", "bad.yaml", "missing.yaml", "c.yaml")
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout.splitlines() == [VALID_LINE.format(path="a.yaml", name="a"),
                                        VALID_LINE.format(path="c.yaml", name="c")]
    missing = f"spec file 'missing.yaml' does not exist in {project.root.resolve()}"
    assert proc.stderr.splitlines() == ["error: bad.yaml: budget.trials: input should be greater than 0; got -5",
                                        f"error: missing.yaml: {missing}"]
    assert not project.db.exists() and _files(project.root) == before


def test_validate_of_several_counts_a_spec_nested_too_deeply_as_that_specs_error(project):
    """A spec nested 500 levels deep ended `validate a.yaml deep.yaml c.yaml` with a RecursionError traceback and
    exit 1 after a.yaml: c.yaml was never checked."""
    project.write_spec(project.spec(name="a"), "a.yaml")
    project.write("deep.yaml", "name: deep\ntags: {x: " + "[" * 500 + "]" * 500 + "}\n")
    project.write_spec(project.spec(name="c"), "c.yaml")
    proc = completed_in_process(project.root, "validate", "a.yaml", "deep.yaml", "c.yaml", env={"COLUMNS": "200"})
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout.splitlines() == [VALID_LINE.format(path="a.yaml", name="a"),
                                        VALID_LINE.format(path="c.yaml", name="c")]
    [line] = proc.stderr.splitlines()
    assert line.startswith("error: deep.yaml: deep.yaml is nested too deeply at line 2, column "), line


def _memory_capped(gib: int) -> Callable[[], None]:
    """A preexec_fn capping the child's address space: a regression then fails with a MemoryError, not by eating the
    machine's memory."""
    import resource

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (gib << 30, gib << 30))
    return cap


@pytest.mark.parametrize("section", ["tags: {{a: {bomb}}}", "strategy: {{name: tpe, n_startup_trials: {bomb}}}"],
                         ids=["tag-value", "strategy-option"])
def test_validate_refuses_a_yaml_alias_bomb_at_once(project, section):
    """Nine aliases of nine aliases ... (600 bytes, shared once loaded): the message quoting the bad value wrote out
    387 million strings, 3.4 GB and 90 s, then a MemoryError traceback, exit 1 (walk q, Q1). Run in 2 GiB."""
    parts = ['&x0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    parts += [f"&x{k} [" + ",".join([f"*x{k - 1}"] * 9) + "]" for k in range(1, 9)]
    spec = yaml.safe_dump(project.spec(name="bomb"), sort_keys=False)
    project.write("bomb.yaml", spec + section.format(bomb="[" + ", ".join(parts) + "]") + "\n")
    env = {**os.environ, "TUNESMITH_STORAGE": project.storage, "COLUMNS": "400"}
    proc = subprocess.run([sys.executable, "-m", "tunesmith.cli", "validate", "bomb.yaml"], cwd=project.root, env=env,
                          capture_output=True, text=True, timeout=120, preexec_fn=_memory_capped(2))
    assert proc.returncode == 2, proc.stderr[-2000:]
    [line] = proc.stderr.splitlines()
    assert re.fullmatch(r"error: bomb\.yaml repeats too much through aliases at line \d+, column \d+: its aliases "
                        r"\(\*name\) repeat more than 1,000,000 values and characters in all \(aliases of aliases "
                        r"multiply\); a spec repeats a few small parts: write the values out, or alias each part once",
                        line), line
    assert not project.db.exists()


def test_validate_refuses_a_control_character_in_a_tag(project):
    """A NUL in a tag value was valid; on PostgreSQL every run and resume then failed on the store's quota keys
    (walk q, Q5)."""
    project.write("nul.yaml", yaml.safe_dump(project.spec(name="nul", tags={"t": "v\x00w"})))
    proc = project.cli("validate", "nul.yaml")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == ["error: tags.t: holds the control character '\\x00' at position 1 "
                                        "('v\\x00w'); a tag is plain text: remove it"]


TOUCHES_AT_IMPORT = """
open("IMPORTED", "w").write("validate ran my code")

def objective(config, trial):
    return 0.0
"""


def test_validate_schema_only_imports_no_trial_code(project):
    """`validate` imports the trial module (its top-level code runs): --schema-only checks a spec under review
    without running it, and still refuses bad input (walk q, Q9)."""
    project.write("touches.py", TOUCHES_AT_IMPORT)
    project.write_spec(project.spec(name="v", trial={"function": "touches:objective"}), "v.yaml")
    project.write_spec(project.spec(name="bad", trial={"function": "touches:objective"}, budget={"trials": -1}),
                       "bad.yaml")
    proc = project.cli("validate", "--schema-only", "v.yaml", "bad.yaml")
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout.splitlines() == [VALID_LINE.format(path="v.yaml", name="v").replace("valid:",
                                                                                         "valid (schema only):")]
    assert proc.stderr.splitlines() == ["error: bad.yaml: budget.trials: input should be greater than 0; got -1"]
    assert not (project.root / "IMPORTED").exists()
    assert project.cli("validate", "v.yaml").returncode == 0  # a full check runs it
    assert (project.root / "IMPORTED").exists()


def test_validate_schema_only_runs_the_checks_that_import_no_code(project):
    """--schema-only copied `prepare`'s strategy decision and left out its other checks, which import no code: a
    command naming ${y}, no parameter of the space, was "valid (schema only)" while `validate` refused it. Both refuse
    it now; a function spec's module is still not imported (review surface, item 1)."""
    project.write_spec(project.spec(name="cmd", trial={"command": "python3 t.py --x {x} --y ${y}"}), "cmd.yaml")
    project.write("touches.py", TOUCHES_AT_IMPORT)
    project.write_spec(project.spec(name="v", trial={"function": "touches:objective"}), "v.yaml")
    full, schema_only = project.cli("validate", "cmd.yaml"), project.cli("validate", "--schema-only", "cmd.yaml")
    assert full.returncode == 2 and "Traceback" not in full.stderr, full.stderr
    assert schema_only.returncode == 2, schema_only.stdout + schema_only.stderr
    assert schema_only.stderr == full.stderr and "placeholder {y}" in schema_only.stderr, schema_only.stderr
    proc = project.cli("validate", "--schema-only", "v.yaml")
    assert proc.returncode == 0 and "valid (schema only)" in proc.stdout, proc.stderr
    assert not (project.root / "IMPORTED").exists()


@pytest.mark.parametrize("code", ["'no data here'", "0"], ids=["with-a-message", "zero"])
def test_validate_of_several_reports_trial_code_that_exits_at_import_and_goes_on(project, code):
    """Trial code calling sys.exit() at its top level ended `validate a.yaml b.yaml` at a.yaml, with the code's own
    exit (sys.exit(0): exit 0, as if all were valid) and b.yaml never checked. It is a.yaml's error; b.yaml's turn
    follows."""
    project.write("exits.py", f"import sys\nsys.exit({code})\n\ndef objective(config, trial):\n    return 1.0\n")
    project.write_spec(project.spec(name="a", trial={"function": "exits:objective"}), "a.yaml")
    project.write_spec(project.spec(name="b"), "b.yaml")
    proc = project.cli("validate", "a.yaml", "b.yaml")
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout.splitlines() == [VALID_LINE.format(path="b.yaml", name="b")], proc.stderr
    assert proc.stderr.splitlines() == [
        f"error: a.yaml: trial.function: importing '{project.root.resolve() / 'exits.py'}' called sys.exit({code}) "
        "at its top level; code that ends the program belongs under `if __name__ == \"__main__\":`"]


def test_validate_checks_each_of_several_specs_as_if_alone(project):
    """A spec naming `train:objective` with no train.py in its folder is bad input, also when checked after one
    whose folder has a train.py (whose import put that folder on the Python path)."""
    project.write("one/train.py", MYMODULE.replace("config[\"C\"]", "config[\"x\"]"))
    (project.root / "two").mkdir()
    for folder in ("one", "two"):
        project.write_spec(project.spec(name=folder, trial={"function": "train:objective"}), f"{folder}/exp.yaml")
    proc = project.cli("validate", "one/exp.yaml", "two/exp.yaml")
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout.splitlines() == [VALID_LINE.format(path="one/exp.yaml", name="one")]
    assert proc.stderr.splitlines() == [
        f"error: two/exp.yaml: trial.function: cannot import 'train': No module named 'train' (searched the spec's "
        f"folder {project.root.resolve() / 'two'} and the Python path)"], proc.stderr


def _python_path(*first: str) -> dict[str, str]:
    """The environment's PYTHONPATH with ``first`` ahead of it (the worktree's own source stays on it)."""
    return {"PYTHONPATH": os.pathsep.join([*first, *filter(None, [os.environ.get("PYTHONPATH")])])}


def test_validate_of_several_keeps_installed_packages_that_cannot_load_twice(project):
    """A spec whose folder holds the Python environment (uv's in-project .venv, an env under ~): the packages its
    trial code imports stayed unloaded after it was checked, and numpy refuses a second load in one process, so
    the next spec importing numpy was bad input (`cannot load module more than once per process`), though valid
    alone. `guarded` stands in for numpy: it raises on a second import in one process."""
    site = project.write("proj/.venv/lib/python3.11/site-packages/guarded/__init__.py", """
        import sys
        if getattr(sys, "_guarded_loaded", False):
            raise ImportError("cannot load module more than once per process")
        sys._guarded_loaded = True
    """).parent.parent
    for spec, folder in (("a", "proj"), ("c", "proj/models")):
        project.write(f"{folder}/train.py", "import guarded\n" + MYMODULE.replace('config["C"]', 'config["x"]'))
        project.write_spec(project.spec(name=spec, trial={"function": "train:objective"}), f"{folder}/{spec}.yaml")
    proc = project.cli("validate", "proj/a.yaml", "proj/models/c.yaml", env=_python_path(str(site)))
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr
    assert proc.stdout.splitlines() == [VALID_LINE.format(path="proj/a.yaml", name="a"),
                                        VALID_LINE.format(path="proj/models/c.yaml", name="c")]


@pytest.mark.parametrize("python_path", [False, True], ids=["plain", "pythonpath-dot"])
@pytest.mark.parametrize("has_build", [True, False], ids=["own-helpers-fit", "own-helpers-lack-build"])
def test_validate_of_several_imports_each_specs_own_helpers(project, python_path, has_build):
    """Each folder's train.py imports its own helpers.py: the one of the spec checked first (the folder tunesmith
    runs in, already on the Python path under `python -m` or `PYTHONPATH=.`) stood in for the second spec's, which
    was bad input (`cannot import name 'build' from 'helpers'`, naming the other folder's file) though valid alone.
    Where the second spec's own helpers.py lacks `build`, that is the error, naming its file."""
    project.write("helpers.py", "SCALE = 1.0\n")
    project.write("train.py", "import helpers\n\ndef objective(config, trial):\n    return helpers.SCALE\n")
    project.write("sub/helpers.py", "def build():\n    return 1.0\n" if has_build else "SCALE = 2.0\n")
    project.write("sub/train.py", "from helpers import build\n\ndef objective(config, trial):\n    return build()\n")
    for folder, name in (("", "exp"), ("sub/", "sub")):
        project.write_spec(project.spec(name=name, trial={"function": "train:objective"}), f"{folder}exp.yaml")
    proc = project.cli("validate", "exp.yaml", "sub/exp.yaml", env=_python_path(".") if python_path else None)
    assert proc.stdout.splitlines()[:1] == [VALID_LINE.format(path="exp.yaml", name="exp")], proc.stderr
    if has_build:
        assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr
        assert proc.stdout.splitlines()[1:] == [VALID_LINE.format(path="sub/exp.yaml", name="sub")]
    else:
        sub = project.root.resolve() / "sub"
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.splitlines() == [
            f"error: sub/exp.yaml: trial.function: importing '{sub / 'train.py'}' raised ImportError: cannot import "
            f"name 'build' from 'helpers' ({sub / 'helpers.py'})"], proc.stderr


@pytest.mark.parametrize(("failures", "code"), [
    ({"t.yaml": "temporary"}, 75),
    ({"t.yaml": "temporary", "s.yaml": "storage"}, 1),
    ({"t.yaml": "temporary", "s.yaml": "storage", "b.yaml": "input"}, 2),
], ids=["retry-later", "failed-before-retry-later", "bad-input-first"])
def test_validate_of_several_exits_with_the_worst_code_met(project, monkeypatch, failures, code):
    """Of several specs, the exit code is the worst met: bad input (2; it must change before anything else helps),
    then a failure that is not the input's (1), then retry later (75), then 0. Each failure is said as main says it
    for one spec, naming its file. Validate meets no store: the failures are made, in this process."""
    import tunesmith.validation
    from helpers import cli_in_process
    from tunesmith.errors import StorageError, TemporaryFailure, UserInputError

    made = {"temporary": TemporaryFailure("no server answers"), "storage": StorageError("cannot write"),
            "input": UserInputError("bad")}
    check = tunesmith.validation.check_spec

    def failing(path: str):  # type: ignore[no-untyped-def]
        if path in failures:
            raise made[failures[path]]
        return check(path)

    monkeypatch.setattr(tunesmith.validation, "check_spec", failing)
    project.write_spec(project.spec(name="ok"), "ok.yaml")
    exit_code, out, err = cli_in_process("validate", "ok.yaml", *failures)
    said = {"temporary": "error: t.yaml: no server answers", "storage": "storage error: s.yaml: cannot write",
            "input": "error: b.yaml: bad"}
    assert (exit_code, out.splitlines()) == (code, [VALID_LINE.format(path="ok.yaml", name="ok")]), err
    assert err.splitlines() == [said[kind] for kind in failures.values()]


def test_validate_exits_75_where_the_code_it_checks_finds_no_store_server(project):
    """Validate opens no store, but it imports a task's pipeline classes, the user's code: a step's module that
    reads an earlier experiment when imported, from a store whose server does not answer, is a retry later (75),
    not bad input, for one spec and among several; no monkeypatching (why `validate` still ranks 1 and 75)."""
    pytest.importorskip("psycopg")
    import socket

    from helpers import cli_in_process

    with socket.socket() as s:  # a port nothing listens on: bound, then let go
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    project.write("steps.py", f"""
        import tunesmith
        from sklearn.preprocessing import StandardScaler as Scale

        BASE = tunesmith.open_experiment("base", storage="postgresql+psycopg://postgres@127.0.0.1:{port}/tunesmith")
        """)
    task = {"estimator": {"sklearn.linear_model.LogisticRegression": {"max_iter": 2000}},
            "data": {"sklearn": "iris"}, "pipeline": ["steps.Scale"]}
    spec = {"name": "t", "objective": {"metric": "accuracy", "direction": "maximize"}, "task": task,
            "space": {"C": {"type": "float", "low": 0.1, "high": 10, "log": True}}, "executor": {"kind": "inline"}}
    project.write_spec(spec, "t.yaml")
    project.write_spec(project.spec(name="ok"), "ok.yaml")
    said = f"storage: postgresql+psycopg://postgres@127.0.0.1:{port}/tunesmith: no database server answers"
    exit_code, out, err = cli_in_process("validate", "t.yaml")
    assert (exit_code, out) == (75, ""), err
    assert err.startswith(f"error: {said}") and len(err.splitlines()) == 1, err
    exit_code, out, err = cli_in_process("validate", "ok.yaml", "t.yaml")
    assert (exit_code, out.splitlines()) == (75, [VALID_LINE.format(path="ok.yaml", name="ok")]), err
    assert err.startswith(f"error: t.yaml: {said}") and len(err.splitlines()) == 1, err


@pytest.mark.parametrize(
    "args",
    [("validate",), ("run", "spec.yaml", "--bogus"), ("launch", "spec.yaml")],
    ids=["missing-argument", "unknown-option", "unknown-command"],
)
def test_usage_errors_exit_2_without_a_traceback(project, args):
    proc = project.cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("Error: ")
    assert not project.db.exists()


@pytest.mark.parametrize(("args", "error"), [
    (("show", "exp", "--JSON"), "No such option: --JSON; did you mean '--json'?"),
    (("trials", "exp", "--Json"), "No such option: --Json; did you mean '--json'?"),
    (("run", "spec.yaml", "-Q"), "No such option: -Q; did you mean '-q'?"),
    (("run", "spec.yaml", "--quite"), "No such option: --quite; did you mean '--quiet'?"),
    (("run", "spec.yaml", "--JSON"), "No such option: --JSON; did you mean '--log-format json'?"),
    (("--Version",), "No such option: --Version; did you mean '--version'?"),
    (("run", "spec.yaml", "--bogus"), "No such option: --bogus"),
], ids=["show-case", "trials-case", "short-case", "transposed", "a-choice-of-an-option", "app-option", "nothing-close"])
def test_an_unknown_option_gets_the_did_you_mean_of_every_unknown_name(project, args, error):
    """`run spec.yaml --JSON`, `show exp --JSON`: no hint (Click's own is difflib's, which tells case apart), where
    every other misspelt name gets suggestions.closest's. A process for a case of each kind (an app option, a choice
    of an option, nothing close, a command's option); the other misspellings of a command's option in this process
    (_cli_or_here)."""
    proc = _cli_or_here(project, args, process=args in {("--Version",), ("run", "spec.yaml", "--JSON"),
                                                          ("run", "spec.yaml", "--bogus"), ("show", "exp", "--JSON")})
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stderr.splitlines()[-1] == f"Error: {error}"
    assert not project.db.exists()


def test_a_bad_storage_option_is_an_input_error(project):
    spec = project.write_spec(project.spec())
    proc = project.cli("run", str(spec), "--storage", "notaurl")
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.returncode == 2, proc.stderr


@pytest.mark.parametrize("command", [("ls",), ("run", "good.yaml")])
def test_a_storage_option_that_is_a_file_path_suggests_its_own_sqlite_url(project, command):
    """`--storage proj/tunesmith.db` was answered "(try sqlite:///tunesmith.db)": the folder dropped. `run` as a
    process, `ls` in this process (_cli_or_here)."""
    project.write_spec(project.spec(), "good.yaml")
    before = _files(project.root)
    proc = _cli_or_here(project, (*command, "--storage", "proj/tunesmith.db"), process=command[0] == "run")
    _assert_input_error(proc, "--storage: 'proj/tunesmith.db' is not a database URL (try sqlite:///proj/tunesmith.db)")
    assert _files(project.root) == before


@pytest.mark.parametrize("command", [("show", "exp"), ("ls",), ("run", "good.yaml")])
def test_a_storage_option_with_an_unknown_dialect_says_which_url_to_write(project, command):
    """The spec's `storage: postgres://...` said what to write instead; the same URL in --storage (or
    $TUNESMITH_STORAGE) said only: storage: no SQLAlchemy dialect for 'postgres'."""
    project.write_spec(project.spec(), "good.yaml")
    before = _files(project.root)
    proc = _cli_or_here(project, (*command, "--storage", "postgres://me:s3cret@db.example/tuning"),
                        process=command[0] == "run")  # `run` as a process, `show` and `ls` in this process
    _assert_input_error(proc, "--storage: no database dialect 'postgres'; got 'postgres://me:***@db.example/tuning' "
                              "(try sqlite:///tunesmith.db or postgresql://user@host/dbname)")
    assert _files(project.root) == before


def test_an_invalid_name_option_is_labelled_name_option(project):
    """`run --name "bad name"` was labelled `name:`, the spec's field, which the user never wrote."""
    spec = project.write_spec(project.spec())
    before = _files(project.root)
    proc = project.cli("run", str(spec), "--name", "bad name")
    _assert_input_error(proc, "--name: use ASCII letters, digits, '_', '.' or '-' (starting with a letter or digit, "
                              "at most 128); got 'bad name'")
    assert _files(project.root) == before


def test_show_of_an_unknown_name_creates_no_store(project):
    proc = project.cli("show", "exp")
    _assert_input_error(
        proc, f"no store at '{project.db}' (nothing has run here yet); run an experiment first, "
        "or point --storage / TUNESMITH_STORAGE at the store"
    )
    assert not project.db.exists()


def test_delete_without_yes_where_nothing_can_answer_says_to_add_yes(project):
    """In a script (stdin not a terminal) `delete NAME` printed its question, met end-of-input and exited 130, as
    if interrupted, without a word."""
    shown = _seed_store(project)
    before = _store_files(project.root)
    proc = subprocess.run([sys.executable, "-m", "tunesmith.cli", "delete", "exp"], cwd=project.root,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "TUNESMITH_STORAGE": project.storage, "COLUMNS": "200"})
    _assert_input_error(proc, "--yes: deleting 'exp' asks first, and nothing can answer here (stdin is not a "
                              "terminal); add --yes")
    assert _store_files(project.root) == before and project.show("exp") == shown
    assert cli_quiet(project, "delete", "exp", "--yes") == "deleted exp\n"  # (in this process: the refusal is the subject)
    # its audit trail is kept: the error says where to read it (in this process too, as the delete before it)
    gone = completed_in_process(project.root, "show", "exp", env={"COLUMNS": "200"})
    assert gone.returncode == 2 and re.fullmatch(
        r"error: no experiment named 'exp' in \S+ \(deleted \d{4}-\d\d-\d\d \d\d:\d\d UTC; its audit trail: "
        r"tunesmith audit exp\)\n", gone.stderr), gone.stdout + gone.stderr


def test_delete_missing_ok_of_a_name_not_in_the_store_says_nothing_was_deleted(project):
    """`delete exq --yes --missing-ok` (a typo) exited 0 without a word: a cleanup script never learnt it had deleted
    nothing. Still exit 0, with one line and the did-you-mean a plain `delete` gives."""
    _seed_store(project)
    said = cli_quiet(project, "delete", "exq", "--yes", "--missing-ok")
    assert re.fullmatch(r"nothing deleted: no experiment named 'exq' in \S+; did you mean 'exp'\? Experiments here: "
                        r"exp\n", said), said
    assert "exp" in cli_quiet(project, "ls")
    # no store yet (a first `make demo`): what is wrong, without the fix a plain delete gives ("run an experiment first")
    code, out, _ = cli_in_process("delete", "exp", "--yes", "--missing-ok", "--storage", "sqlite:///none.db")
    assert (code, out) == (0, "nothing deleted: no store at 'none.db' (nothing has run here yet)\n")


HELD = """
import os, time

def objective(config, trial):
    # held until the test has tried its delete (a 1 s sleep let a loaded machine finish the run before `delete`
    # had started, and the delete then rightly succeeded)
    deadline = time.monotonic() + 120
    while not os.path.exists(os.environ["RELEASE_FILE"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return 1.0
"""


def test_delete_of_a_running_experiment_is_refused_and_the_run_goes_on(project, monkeypatch):
    """`delete NAME --yes` removed the records under a live coordinator, which then died on its next write with
    SQLAlchemy's traceback (NOT NULL constraint failed: trial_reports.trial_id), exit 1."""
    release = project.root / "release"
    monkeypatch.setenv("RELEASE_FILE", str(release))
    project.write("held.py", HELD)
    project.write_spec(project.spec(trial={"function": "held:objective"}, budget={"trials": 4},
                                    executor={"kind": "process", "workers": 2}))
    run = start_cli(project, "run", "exp.yaml", "-q")
    try:
        wait_for(lambda: count_states(project, "exp").get("running", 0) >= 1, timeout=60)
        proc = project.cli("delete", "exp", "--yes")
        release.touch()
        holder = proc.stderr.split("coordinator(s) (")[-1].split(")")[0]
        _assert_input_error(proc, f"experiment 'exp' is being run by 1 coordinator(s) ({holder}); stop them first "
                                  "(Ctrl-C, or SIGTERM to those processes), then delete it")
        assert holder.split(":")[1] == str(run.pid)
        out, err = run.communicate(timeout=120)
    finally:
        stop_processes(run)
    assert run.returncode == 0, err
    assert project.show("exp")["trials"]["completed"] == 4


def test_storage_help_mentions_the_spec_only_where_a_spec_is_read(project, monkeypatch):
    """Every command's --storage said 'default: the spec's storage:', also on show/resume/report..., which read no
    spec: a user with storage: in the spec got 'no experiment named ...' from `show NAME`."""
    monkeypatch.setenv("COLUMNS", "200")  # as project.cli sets it: no phrase wrapped across a panel's border

    def helped(command: str) -> str:  # the help text is what is tested: read in this process, not 12 start-ups
        return " ".join(cli_quiet(project, command, "--help").split())

    for command in ("run", "cycle", "watch"):
        assert "the spec's storage:" in helped(command), command
    for command in ("show", "resume", "trials", "report", "metrics", "promote", "reproduce", "delete", "audit"):
        text = helped(command)
        assert "storage:" not in text and "$TUNESMITH_STORAGE, or sqlite:///tunesmith.db in this folder" in text, command


CHECKPOINTING = """
def objective(config, trial):
    state = trial.load_checkpoint()
    start = state["step"] + 1 if state else 0
    for step in range(start, 3):
        trial.save_checkpoint({"step": step})
    return {"loss": config["x"], "first_step": float(start)}
"""


def test_a_new_experiment_refuses_a_workdir_holding_another_ones_trial_folders(project):
    """`delete ck` then `run ck.yaml` again (starting over): every new trial loaded the deleted experiment's trial
    checkpoint of the same number as its own, skipped its training and reported what it was never trained for."""
    project.write("ck.py", CHECKPOINTING)
    project.write_spec(project.spec("ck", trial={"function": "ck:objective"}, budget={"trials": 2}))
    cli_quiet(project, "run", "ck.yaml", "-q")  # set-up and read-back in this process: `run` refusing is the subject
    cli_quiet(project, "delete", "ck", "--yes")
    workdir = project.root / ".tunesmith" / "ck"
    before = _files(project.root)
    proc = project.cli("run", "ck.yaml", "-q")
    _assert_input_error(proc, f"workdir: {workdir} already holds trial folders (trial-00000, trial-00001) of an "
                              "experiment this store does not have (deleted, or recorded in another store); new trials "
                              "would take their checkpoints and logs as their own: remove them (rm -r "
                              f"{workdir}/trial-*) or set workdir: to a folder of this experiment's own")
    assert _files(project.root) == before and "ck" not in cli_quiet(project, "ls")
    cli_quiet(project, "run", "ck.yaml", "--name", "ck2", "-q")  # its own folder: .tunesmith/ck2
    assert [t["metrics"]["first_step"] for t in project.trials("ck2")] == [0.0, 0.0], "trained from the start"


def test_show_and_ls_say_when_no_coordinator_runs_a_running_experiment(project, monkeypatch):
    """A coordinator SIGKILLed (or lost with its terminal, or OOM-killed) left `show` saying 'running' with trials
    running, and nothing said that nothing was running them or what to do; `ls` went on saying `running` after
    `show --json` had learnt to say `abandoned`."""
    monkeypatch.setenv("SLOW_SECONDS", "30")
    project.write_spec(project.spec(trial={"function": "objectives:slow"}, budget={"trials": 4}))
    run = start_cli(project, "run", "exp.yaml", "-q")
    try:
        wait_for(lambda: count_states(project, "exp").get("running", 0) >= 1, timeout=60)
        live = project.show("exp")
        assert live["status"] == "running" and "abandoned" not in live
        # while it runs, what ls says is read in this process (the command's code: a process asks the same store
        # and finds the same live lease); the words after the kill are the processes below
        listed = json.loads(cli_quiet(project, "ls", "--json"))
        assert [(r["status"], r["abandoned"]) for r in listed] == [("running", False)]
        assert "abandoned" not in cli_quiet(project, "ls")
        run.kill()
        run.wait(timeout=30)
    finally:
        stop_processes(run)
    shown = project.show("exp")
    assert shown["status"] == "running" and shown["abandoned"] is True
    text = " ".join(project.cli("show", "exp", check=True).stdout.split())
    assert ("no live coordinator runs exp (it was killed, or its machine went away); continue it with: tunesmith "
            "resume exp") in text
    listed = json.loads(cli_quiet(project, "ls", "--json"))  # (as show --json, read back in this process)
    assert [(r["status"], r["abandoned"]) for r in listed] == [("running", True)]
    text = " ".join(project.cli("ls", check=True).stdout.split())
    assert "running (abandoned)" in text and "continue with tunesmith resume exp" in text


def test_show_reads_the_quota_wait_from_the_events_once(project, monkeypatch, capsys):
    """`show` of a running experiment scanned its events for an open quota wait, then again inside run_abandoned
    (which checks for a wait before it looks for a coordinator at work); what it says is unchanged. Run by a live
    coordinator (this process holds the lease), so show does look for a wait: once, and not for an abandoned run."""
    import time

    import tunesmith.coordinators
    import tunesmith.quotas
    from tunesmith.cli import main
    from tunesmith.coordinators import LEASE_TTL
    from tunesmith.lease_holders import lease_owner_id
    from tunesmith.records import RunStatus
    from tunesmith.storage.sql import SQLStore

    _seed_store(project)
    scans = []
    scan = tunesmith.quotas.open_quota_wait

    def counted(events):  # type: ignore[no-untyped-def]
        scans.append(len(events))
        return scan(events)

    monkeypatch.setattr(tunesmith.quotas, "open_quota_wait", counted)
    assert not hasattr(tunesmith.coordinators, "open_quota_wait"), "the rule for abandoned reads no wait"
    store = SQLStore(project.storage)
    exp_id = store.experiment("exp").id
    for live, counts in ((False, []), (True, [1])):  # nothing runs it: no scan; a live lead: one
        store.set_status(exp_id, RunStatus.RUNNING, time.time())
        if live:
            assert store.acquire_lease(exp_id, lease_owner_id(), time.time(), LEASE_TTL) is None
        scans.clear()
        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            main(["show", "exp", "--json", "--storage", project.storage])
        assert exited.value.code == 0
        shown = json.loads(capsys.readouterr().out)
        assert (shown["status"], shown.get("abandoned", False), "quota_wait" in shown) == ("running", not live, False)
        assert [len(counts)] == [len(scans)], (live, scans)
    store.close()


def test_a_postgres_database_that_does_not_exist_is_bad_input_naming_the_fix(project, postgres_server):
    """It was `storage error: cannot open the store ...: FATAL: database "x" does not exist`, exit 1, as for a store
    failing mid-run; the address is the user's to fix, like a SQLite file in a missing folder (exit 2)."""
    from sqlalchemy.engine import make_url

    url = make_url(postgres_server).set(database="tunesmith_never_created")
    spec = project.write_spec(project.spec(), "exp.yaml")
    for args in (("show", "exp"), ("run", str(spec))):
        proc = project.cli(*args, "--storage", url.render_as_string(hide_password=False))
        _assert_input_error(proc, f"--storage: database 'tunesmith_never_created' does not exist on {url.host}:"
                                  f"{url.port or 5432}; create it first (CREATE DATABASE tunesmith_never_created; or "
                                  f"createdb -h {url.host} -p {url.port or 5432} -U {url.username} "
                                  "tunesmith_never_created)")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux), where every write fails")
def test_a_stdout_that_cannot_be_written_is_one_error_and_exit_1_without_a_traceback(project):
    """`show NAME --json > /dev/full`: stdout on a full disk. Large output fails inside print, small output only
    when Python flushes stdout at exit, Rich's output inside its console: each is one line naming the cause."""
    _seed_store(project)
    env = {**os.environ, "TUNESMITH_STORAGE": project.storage, "COLUMNS": "200"}
    for args in (("show", "exp", "--json"), ("trials", "exp", "--json"), ("ls", "--json"), ("show", "exp")):
        with open("/dev/full", "w") as full:
            proc = subprocess.run([sys.executable, "-m", "tunesmith.cli", *args], cwd=project.root, env=env,
                                  stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
        assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, (args, proc.stderr)
        assert proc.returncode == 1, (args, proc.stderr)
        assert proc.stderr.splitlines() == ["error: cannot write the output to stdout: No space left on device"], \
            (args, proc.stderr)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux), where every write fails")
@pytest.mark.parametrize("quiet", [False, True], ids=["display", "quiet"])
def test_a_run_whose_stdout_cannot_be_written_records_every_trial_and_exits_1(project, quiet):
    """`run spec.yaml > /dev/full` exited 0 with a warning that the progress display stopped, where `show NAME >
    /dev/full` exits 1: a script could not tell that the output it asked for was lost. The run itself loses nothing:
    every trial is recorded; only the exit code and one line on stderr say the output is gone."""
    spec = project.write_spec(project.spec(executor={"kind": "inline"}, budget={"trials": 3}))
    env = {**os.environ, "TUNESMITH_STORAGE": project.storage, "COLUMNS": "200"}
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "tunesmith.cli", "run", str(spec), *(["-q"] if quiet else [])],
                              cwd=project.root, env=env, stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    lost = (1, ["error: cannot write the output to stdout: No space left on device"])
    assert (proc.returncode, proc.stderr.splitlines()) == ((0, []) if quiet else lost), proc.stderr  # -q: no output
    shown = project.show("exp")
    assert (shown["status"], shown["total_trials"], shown["trials"]["completed"]) == ("completed", 3, 3)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux), where every write fails")
def test_main_in_process_gives_back_the_stdout_descriptor_it_found_after_a_failed_write(project):
    """After a write to stdout failed, main pointed descriptor 1 at the null device for good: a program that called
    it in-process (`tunesmith.cli.main([...])`) lost its own later output there, with no error to tell it."""
    _seed_store(project)
    program = textwrap.dedent("""
        import os, sys
        from tunesmith.cli import main

        def where():
            s = os.fstat(1)
            return s.st_rdev, s.st_ino

        before = where()
        for args in (["ls", "--json"], ["show", "exp"]):
            sys.argv = ["tunesmith", *args]
            try:
                main()
            except SystemExit as e:
                print(args, e.code, where() == before, file=sys.stderr)
        try:
            main(["ls"])  # argv given by the caller
        except SystemExit as e:
            print(["ls"], e.code, where() == before, file=sys.stderr)
    """)
    env = {**os.environ, "TUNESMITH_STORAGE": project.storage, "COLUMNS": "200"}
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-c", program], cwd=project.root, env=env, stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    told = [line for line in proc.stderr.splitlines() if not line.startswith("error: cannot write")]
    assert told == ["['ls', '--json'] 1 True", "['show', 'exp'] 1 True", "['ls'] 1 True"], proc.stderr
    assert proc.returncode == 0, proc.stderr


def test_a_reader_of_stdout_that_left_changes_no_exit_code_of_any_command(project):
    """`show NAME | head -1` exited 1 (Rich's default on a broken pipe) where `run spec.yaml | head -1` exited 0 (its
    display was dropped): one rule now, for every command. A reader that leaves took what it wanted; the exit code
    says how the command's work went, so under `set -o pipefail` `show NAME | grep -q completed` is not a failure
    when grep finds it (nor one only when show was still writing as grep left). The reader here left before the
    first line (the pipe's read end is closed), so every command meets the broken pipe, not just some, by timing."""
    _seed_store(project)
    project.write("broken.py", """
        def broken(config, trial):
            raise ValueError("always")
    """)
    good = project.write_spec(project.spec(executor={"kind": "inline"}, budget={"trials": 2}, name="again"),
                              "again.yaml")
    bad = project.write_spec(project.spec(executor={"kind": "inline"}, budget={"trials": 2}, name="bad",
                                          trial={"function": "broken:broken"}), "bad.yaml")
    env = {**os.environ, "TUNESMITH_STORAGE": project.storage, "COLUMNS": "200"}
    cases = [(("show", "exp"), 0), (("show", "exp", "--json"), 0), (("trials", "exp", "--json"), 0), (("ls",), 0),
             (("ls", "--json"), 0), (("metrics", "exp"), 0), (("run", str(good)), 0),
             (("run", str(bad)), 1),         # every trial failed: its own code, and its reason on stderr
             (("show", "nope"), 2)]          # bad input: the same
    for args, code in cases:
        read, write = os.pipe()
        os.close(read)  # the reader left
        try:
            proc = subprocess.run([sys.executable, "-m", "tunesmith.cli", *args], cwd=project.root, env=env,
                                  stdout=write, stderr=subprocess.PIPE, text=True, timeout=120)
        finally:
            os.close(write)
        assert proc.returncode == code, (args, proc.stderr)
        assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, (args, proc.stderr)
        if code == 0:
            assert proc.stderr == "", (args, proc.stderr)  # quietly: the reader's leaving is no news
    assert project.show("again")["status"] == "completed" and project.show("again")["trials"]["completed"] == 2
    assert "no experiment named 'nope'" in proc.stderr


def test_a_reader_of_stderr_that_left_changes_no_exit_code_of_bad_input(project):
    """Click's usage errors (an unknown command, a missing argument) are written by click, not by a Rich console:
    with stderr's reader gone they raised BrokenPipeError out of main, exit 1, where bad input is 2."""
    env = {**os.environ, "TUNESMITH_STORAGE": project.storage, "COLUMNS": "200"}
    for args in (("bogus",), ("show",), ("show", "nope"), ("run", "--JSON", "x.yaml")):
        read, write = os.pipe()
        os.close(read)  # the reader left
        try:
            proc = subprocess.run([sys.executable, "-m", "tunesmith.cli", *args], cwd=project.root, env=env,
                                  stdout=subprocess.PIPE, stderr=write, text=True, timeout=120)
        finally:
            os.close(write)
        assert proc.returncode == 2, (args, proc.stdout)


def test_main_in_process_gives_back_the_stderr_descriptor_and_its_voice_after_its_reader_left(project):
    """After stderr's reader left, main pointed descriptor 2 at the null device for good (descriptor 1 it gave
    back) and left its stderr console silenced: a program calling it in-process lost its own later diagnostics,
    and main's next error message, without an error."""
    program = textwrap.dedent("""
        import os, sys
        from tunesmith import cli

        def where(fd):
            s = os.fstat(fd)
            return s.st_dev, s.st_ino

        saved = os.dup(2)
        read, write = os.pipe()
        os.close(read)  # a stderr whose reader left
        os.dup2(write, 2)
        os.close(write)
        before = where(2)
        try:
            cli.main(["show", "nope"])  # its error meets the broken pipe
        except SystemExit as e:
            code = e.code
        given_back = where(2) == before
        os.dup2(saved, 2)
        try:
            cli.main(["show", "nope"])  # stderr works again: the message is told
        except SystemExit as e:
            again = e.code
        print(code, given_back, again)
    """)
    env = {**os.environ, "TUNESMITH_STORAGE": project.storage, "COLUMNS": "200"}
    _seed_store(project)
    proc = subprocess.run([sys.executable, "-c", program], cwd=project.root, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.stdout.split() == ["2", "True", "2"], proc.stderr
    assert proc.stderr.count("error: no experiment named 'nope'") == 1, proc.stderr


def test_a_closed_stdout_runs_the_command_as_before(project):
    """`tunesmith ls >&-` (cron, a daemon): Python's sys.stdout is None. main() wrapped None to guard it and its
    flush failed: AttributeError, exit 120. The output goes nowhere; the command runs as it did before the guard."""
    _seed_store(project)
    spec = project.write_spec(project.spec(executor={"kind": "inline"}, budget={"trials": 1}, name="again"),
                              "again.yaml")
    env = {**os.environ, "TUNESMITH_STORAGE": project.storage, "COLUMNS": "200"}
    for args in (("ls",), ("show", "exp", "--json"), ("show", "exp"), ("run", str(spec), "--quiet")):
        proc = subprocess.run(["sh", "-c", 'exec "$@" >&-', "sh", sys.executable, "-m", "tunesmith.cli", *args],
                              cwd=project.root, env=env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True, timeout=120)
        assert (proc.returncode, proc.stderr) == (0, ""), args
    assert project.show("again")["status"] == "completed"


def test_main_called_twice_in_process_leaves_sys_stdout_as_it_found_it(project, monkeypatch):
    """main() left its guard in sys.stdout: an in-process caller kept the wrapper, and each call stacked one more."""
    from tunesmith.cli import main

    _seed_store(project)
    original = sys.stdout
    for _ in range(2):
        monkeypatch.setattr(sys, "argv", ["tunesmith", "ls", "--storage", project.storage])
        with pytest.raises(SystemExit) as exited:
            main()
        assert exited.value.code == 0
        assert sys.stdout is original


@pytest.mark.parametrize("import_fails_with,message", [
    ('ImportError("no module named ray")',
     "executor.kind: ray needs Ray: pip install -e '.[ray]' in tunesmith's checkout (the ray extra)"),
    ("AttributeError(\"module 'grpc' has no attribute 'aio'\")",
     "executor.kind: ray: importing Ray failed (AttributeError: module 'grpc' has no attribute 'aio'); fix the "
     "install: pip install --force-reinstall -e '.[ray]' in tunesmith's checkout (the ray extra)"),
], ids=["not-installed", "broken-install"])
def test_a_ray_spec_without_a_working_ray_is_bad_input_before_anything_is_recorded(project, tmp_path_factory,
                                                                                   import_fails_with, message):
    """`validate` said valid and `run` recorded the experiment (failed, its name taken) before the executor found
    Ray missing; a broken Ray (an import raising anything but ImportError: a version clash, a bad extension) gave
    both a traceback. Ray is made unimportable for the subprocess, as on a machine without the extra."""
    blocker = tmp_path_factory.mktemp("no-ray")
    (blocker / "ray").mkdir()
    (blocker / "ray" / "__init__.py").write_text(f"raise {import_fails_with}\n")
    env = {"PYTHONPATH": os.pathsep.join(p for p in (str(blocker), os.environ.get("PYTHONPATH")) if p)}
    spec = project.write_spec(project.spec(executor={"kind": "ray"}, budget={"trials": 1}))
    for command in ("validate", "run"):
        _assert_input_error(project.cli(command, str(spec), env=env), message)
    assert not project.db.exists()



def _cli_options():
    import typer.main

    from tunesmith.cli import app

    def walk(command, path):
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, (*path, name))
        if not hasattr(command, "commands"):
            yield " ".join(path), command

    return [(path, p) for path, command in walk(typer.main.get_command(app), ()) for p in command.params
            if p.param_type_name == "option"]


def test_every_option_has_a_help_text_and_one_short_form_across_commands():
    """`retune --help` listed --quiet with no description, and `cycle -m clf` said "No such option: -m" where
    `promote -m clf` worked: an option taken by several commands is spelt the same in each."""
    options = _cli_options()
    assert [(path, p.opts) for path, p in options if not p.help] == []
    shorts: dict[str, dict[str, str]] = {}
    for path, p in options:
        shorts.setdefault(p.opts[0], {})[path] = " ".join(o for o in p.opts if not o.startswith("--"))
    assert {long: by for long, by in shorts.items() if len(set(by.values())) > 1} == {}
    assert {shorts["--model-name"][c] for c in ("promote", "cycle", "watch")} == {"-m"}


def test_cycle_takes_m_for_its_model_name(project):
    proc = project.cli("cycle", "nosuch", "--data", "new.csv", "-m", "clf")
    assert proc.returncode == 2 and "No such option" not in proc.stderr and "no store at" in proc.stderr, proc.stderr


def test_trials_refuses_csv_and_json_together(project):
    """`trials X --csv --json` printed JSON and dropped --csv without a word."""
    project.write_spec(project.spec(budget={"trials": 1}, executor={"kind": "inline"}))
    cli_quiet(project, "run", "exp.yaml", "-q")
    _assert_input_error(project.cli("trials", "exp", "--csv", "--json"),
                        "--csv and --json: give one (each prints every trial in its own format)")


def test_trials_csv_writes_booleans_and_null_as_json_literals(project):
    """`trials --csv` wrote a boolean choice as Python's `True` beside JSON's `null`; now `true`, `false` and
    `null` throughout, as pandas reads them (booleans, missing), and an inactive parameter stays an empty cell."""
    import csv
    import io

    project.write("flags.py", """
        def objective(config, trial):
            return 0.0 if config["flag"] else 1.0
    """)
    spec = project.spec(name="flags", strategy="grid", budget={"trials": 6}, executor={"kind": "inline"},
                        trial={"function": "flags:objective"},
                        space={"flag": {"type": "categorical", "choices": [True, False]},
                               "mode": {"type": "categorical", "choices": [None, "a"]},
                               "extra": {"type": "categorical", "choices": [1], "when": {"mode": "a"}}})
    cli_quiet(project, "run", str(project.write_spec(spec)), "-q")
    rows = list(csv.DictReader(io.StringIO(project.cli("trials", "flags", "--csv", check=True).stdout)))
    assert sorted((r["param.flag"], r["param.mode"], r["param.extra"]) for r in rows) == [
        ("false", "a", "1"), ("false", "null", ""), ("true", "a", "1"), ("true", "null", "")], rows
    # README: "--csv gives the same as a table" as --json: the log path, seed and failure kind were only there
    listed = {t["number"]: t for t in project.trials("flags")}  # read back in this process: --csv is the subject
    for r in rows:
        t = listed[int(r["number"])]
        assert (r["log_path"], r["seed"], r["failure_kind"]) == (t["log_path"], str(t["seed"]), ""), r
        assert r["log_path"].endswith("trial.log")


def test_trials_csv_names_an_objective_called_as_another_column_apart(project):
    """An objective `error` (a classifier's) beside the `error` column (a failed trial's reason): two `error`
    headers, and csv.DictReader kept the last, so a completed trial's objective read as empty."""
    import csv
    import io

    project.write("errors.py", """
        def objective(config, trial):
            if trial.number == 1:
                raise ValueError("boom")
            return {"error": config["x"]}
    """)
    spec = project.spec(name="errs", objective={"metric": "error", "direction": "minimize"}, strategy="random",
                        budget={"trials": 3}, executor={"kind": "inline"}, trial={"function": "errors:objective"})
    cli_quiet(project, "run", str(project.write_spec(spec)), "-q")
    text = project.cli("trials", "errs", "--csv", check=True).stdout
    header = text.splitlines()[0].split(",")
    assert header[:3] == ["number", "state", "value.error"] and len(header) == len(set(header)), header
    rows = {int(r["number"]): r for r in csv.DictReader(io.StringIO(text))}
    assert float(rows[0]["value.error"]) == project.trials("errs")[0]["values"]["error"]
    assert rows[1]["value.error"] == "" and "boom" in rows[1]["error"], rows[1]


def test_trials_csv_tells_the_string_null_from_null(project):
    """A choice "null" (the string) and the choice null were both the cell `null`, as were "true" and true: a reader
    could not tell them apart (nor the string "" from an inactive parameter's empty cell). A string that reads as
    one of those literals is written as a JSON string (`"null"`, quotes and all), and so are "" and a string that
    starts and ends with a quote already; every other string is as it was."""
    import csv
    import io

    project.write("words.py", """
        def objective(config, trial):
            return 0.0
    """)
    choices = [None, "null", '"null"', True, "true", "", "plain"]
    spec = project.spec(name="words", strategy="grid", budget={"trials": len(choices)}, executor={"kind": "inline"},
                        trial={"function": "words:objective"},
                        space={"word": {"type": "categorical", "choices": choices}})
    cli_quiet(project, "run", str(project.write_spec(spec)), "-q")
    rows = list(csv.DictReader(io.StringIO(project.cli("trials", "words", "--csv", check=True).stdout)))
    listed = {t["number"]: t["params"]["word"] for t in project.trials("words")}  # (read back in this process)
    cells = {listed[int(r["number"])]: r["param.word"] for r in rows}
    assert cells == {None: "null", "null": '"null"', '"null"': '"\\"null\\""', True: "true", "true": '"true"',
                     "": '""', "plain": "plain"}, cells


def test_an_empty_spec_a_python_file_and_an_unknown_key_say_so_plainly(project):
    """The walkthrough: an empty spec said "must hold a mapping ... got NoneType"; a `.py` given as the spec listed
    the internal key `base_dir` among the accepted ones (the loader sets it; a writer never should)."""
    # the three in one validate (a subprocess each cost ~0.6 s of CPU): each spec's one line names it
    (project.root / "empty.yaml").write_text("# nothing yet\n")
    project.write_spec({**project.spec(name="k"), "zzzz": 1}, "k.yaml")
    proc = project.cli("validate", "empty.yaml", "objectives.py", "k.yaml")
    assert proc.returncode == 2 and proc.stdout == "" and "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert [line.split(": ", 2)[1] for line in lines] == ["empty.yaml", "objectives.py", "k.yaml"], proc.stderr
    empty, code, unknown = lines
    assert "empty.yaml is empty (or holds only comments)" in empty and "NoneType" not in empty, empty
    assert "objectives.py is Python code, not a spec" in code, code
    assert "trial: {function: 'objectives:objective'}" in code, code
    assert "unknown key 'zzzz'; accepted keys: budget, constraints" in unknown, unknown
    assert "base_dir" not in unknown


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux), where every write fails")
def test_a_stderr_that_cannot_be_written_keeps_every_exit_code(project):
    """`tunesmith validate missing.yaml 2>/dev/full` exited 1, not 2: writing the error's message failed, and that
    failure (a traceback nobody could read either) replaced the error's own exit code. A script cannot read the
    message then, but the exit code still says what went wrong, as it does with a full stdout."""
    _seed_store(project)
    warned = project.write_spec(project.spec(name="warned", trial={"command": "python trian.py {x}"}), "warned.yaml")
    env = {**os.environ, "TUNESMITH_STORAGE": project.storage, "COLUMNS": "200"}
    cases = {("validate", "missing.yaml"): 2, ("show", "unknown"): 2, ("run", "--bogus"): 2,
             ("show", "exp", "--storage", f"sqlite:///{project.root}/no/such/folder.db"): 2,
             ("validate", str(warned)): 0}
    for args, code in cases.items():
        if args[0] == "validate" and code == 0:  # output on stdout to compare, at the width the process below has
            said = completed_in_process(project.root, *args, env={"COLUMNS": "200"})
        else:  # the same command with a working stderr, for reference: in this process (its stdout is empty)
            said = subprocess.CompletedProcess(args, *cli_in_process(*args))
            assert said.stdout == "", (args, said.stdout)
        assert said.returncode == code and said.stderr, (args, said.stderr)  # each says something on stderr
        with open("/dev/full", "w") as full:
            lost = subprocess.run([sys.executable, "-m", "tunesmith.cli", *args], cwd=project.root, env=env,
                                  stdout=subprocess.PIPE, stderr=full, text=True, timeout=120, check=False)
        assert (args, lost.returncode) == (args, code)
        assert lost.stdout == said.stdout, args


@pytest.mark.parametrize(("words", "told", "not_told"), [
    # 'select' is 0.67 like 'delete' by difflib: "Did you mean 'delete'?" for a read-only look at the selection
    (["select", "exp"], ["`select:`", "tunesmith show"], ["delete"]),
    (["status", "exp"], ["Did you mean 'show'?"], []),
    (["list"], ["Did you mean 'ls'?"], []),
    (["shwo", "exp"], ["Did you mean 'show'?"], []),
    (["frobnicate"], ["No such command 'frobnicate'"], ["Did you mean"]),
])
def test_a_mistyped_command_is_pointed_only_at_a_command_it_means(project, words, told, not_told):
    # a process for the pointer away from a command's look-alike and for no pointer; the others in this process
    proc = _cli_or_here(project, tuple(words), process=words[0] in ("select", "frobnicate"))
    said = " ".join(proc.stderr.split())
    assert proc.returncode == 2 and "Traceback" not in said, said
    assert all(t in said for t in told) and not any(t in said for t in not_told), said


def test_validate_of_an_inline_executor_names_no_worker_count(project):
    """`executor: {kind: inline, workers: 2}` warned that workers is ignored, then the valid line said `executor
    inline x2`: the summary contradicted the warning above it."""
    project.write("mymodule.py", MYMODULE)
    spec = project.write("inline.yaml", CONTRACT_YAML.replace(
        "executor: {kind: process, workers: 2, trial_timeout: 60s, memory_limit: 2GiB, retries: 1}",
        "executor: {kind: inline, workers: 2}"))
    proc = project.cli("validate", str(spec))
    assert proc.returncode == 0, proc.stderr
    assert "workers" in proc.stderr
    assert proc.stdout.rstrip().endswith("executor inline"), proc.stdout


def test_a_table_read_through_a_pipe_is_laid_out_wider_than_80_columns(project):
    """Without a terminal (a cron or CI log, `> file`) and without COLUMNS, Rich laid tables out for 80 columns: a
    drift table read `stati…` and `1.07e-…`; here `show`'s params column was cut the same way."""
    long_names = {f"a_rather_long_parameter_name_{i}": {"type": "float", "low": 0.0, "high": 1.0} for i in range(3)}
    project.write("objectives_wide.py", "def f(config, trial):\n    return sum(config.values())\n")
    spec = project.spec("wide", space=long_names, trial={"function": "objectives_wide:f"},
                        executor={"kind": "inline"}, budget={"trials": 2})
    spec["objective"] = {"metric": "value", "direction": "minimize"}
    project.write_spec(spec)
    tune_in_process(project.root / "wide.yaml", project.db)  # set-up: the table is what is checked
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env["TUNESMITH_STORAGE"] = project.storage
    shown = subprocess.run([sys.executable, "-m", "tunesmith.cli", "show", "wide"], cwd=project.root, env=env,
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "…" not in shown.stdout, shown.stdout
    assert max(len(line) for line in shown.stdout.splitlines()) > 80
    assert all(f"a_rather_long_parameter_name_{i}=" in shown.stdout for i in range(3)), shown.stdout


def test_a_sqlite_file_given_as_the_spec_is_said_to_be_a_database_not_text_to_re_encode(project):
    """`tunesmith validate tunesmith.db` (the store, given by mistake) said `tunesmith.db is not UTF-8 text (byte
    0xfb ...); save it as UTF-8`."""
    from tunesmith.storage.sql import SQLStore

    store = SQLStore(project.storage)
    assert store.experiments() == []  # (made: an empty store)
    store.close()
    code, out, err = cli_in_process("validate", project.db.name)
    assert code == 2 and out == "" and "Traceback" not in err, err
    assert err.startswith("error: tunesmith.db is a SQLite database (a tunesmith store?), not a spec"), err
    assert "UTF-8" not in err and "tunesmith ls --storage sqlite:///tunesmith.db" in err, err
