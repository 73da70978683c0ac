"""The strategy is checked before anything is recorded: with several objectives each strategy runs or is refused up
front; a grid larger than the trial budget warns; `auto` says why it passed over a grid; Optuna's own lines stay
off stderr; a recorded spec whose sampler cannot be built is refused on resume before its record changes.
(Bad option values, each refused with its field: the catalogue in tests/test_cli_input.py.)"""

from __future__ import annotations

import inspect
import sqlite3
import time

import pytest

import tunesmith
from tunesmith.errors import SpecError
from tunesmith.records import RunStatus, TrialState
from tunesmith.storage.sql import SQLStore
from tunesmith.strategy.optuna_adapter import _RESERVED, _SAMPLERS, torch_available

TWO_OBJECTIVES = [{"metric": "f1", "direction": "minimize"}, {"metric": "f2", "direction": "minimize"}]
# options that get each sampler past its start-up within 5 trials, so the multi-objective model itself proposes
PAST_START_UP = {"tpe": {"n_startup_trials": 2}, "gp": {"n_startup_trials": 2}, "nsga2": {"population_size": 2},
                 "cmaes": {"n_startup_trials": 1}}


def _recorded(project) -> list[str]:
    if not project.db.exists():
        return []
    with sqlite3.connect(project.db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return [r[0] for r in conn.execute("SELECT name FROM experiments")] if "experiments" in tables else []


@pytest.mark.parametrize("name", ["random", "grid", "qmc", "tpe", "gp", "nsga2", "auto", "cmaes", "bo"])
def test_each_strategy_with_two_objectives_runs_or_is_refused_before_anything_is_recorded(project, name):
    if name == "gp" and not torch_available():
        pytest.skip("the gp strategy needs torch (pip install 'tunesmith[gp]')")
    strategy = {"name": name, **PAST_START_UP[name]} if name in PAST_START_UP else name
    spec = project.spec(name=f"mo-{name}", objective=TWO_OBJECTIVES, trial={"function": "objectives:two_objectives"},
                        strategy=strategy, budget={"trials": 5}, executor={"kind": "inline"})
    if name in ("cmaes", "bo"):  # each optimises one objective
        with pytest.raises(SpecError) as refused:
            tunesmith.run(spec, storage=project.storage)
        assert str(refused.value) == (f"strategy.name: the {name} strategy optimises one objective; use tpe or nsga2 "
                                      "for several")
        assert _recorded(project) == []
        return
    result = tunesmith.run(spec, storage=project.storage)
    assert [t.state for t in result.trials] == [TrialState.COMPLETED] * 5  # (the grid: its 5 points)
    assert result.pareto


def test_every_option_passed_to_an_optuna_sampler_has_a_rule():
    """An option Optuna adds (a new release's signature) is checked before it reaches a run: a rule is written for
    it here first, or it is reserved."""
    from tunesmith.strategy.options import SAMPLER_OPTIONS

    for name, sampler in _SAMPLERS.items():
        taken = set(inspect.signature(sampler.__init__).parameters) - {"self"} - _RESERVED
        assert taken == set(SAMPLER_OPTIONS.get(name, {})), name


def test_tpe_with_multivariate_false_runs_a_conditional_space(project):
    """tunesmith groups TPE on a conditional space, which Optuna allows only multivariate: a spec's multivariate:
    false failed the run at its first proposal (``group`` option can only be enabled when ``multivariate`` is ...)."""
    space = {"kind": {"type": "categorical", "choices": ["a", "b"]},
             "a_val": {"type": "float", "low": 0.0, "high": 1.0, "when": {"kind": "a"}},
             "b_val": {"type": "float", "low": 0.0, "high": 1.0, "when": {"kind": "b"}}}
    spec = project.spec(name="tpe-univariate", space=space, strategy={"name": "tpe", "multivariate": False},
                        trial={"function": "objectives:conditional"}, budget={"trials": 4},
                        executor={"kind": "inline"})
    result = tunesmith.run(spec, storage=project.storage)
    assert [t.state for t in result.trials] == [TrialState.COMPLETED] * 4


def _validate(project, *specs: dict) -> tuple[int, list[str], list[str]]:
    paths = [str(project.write_spec(s)) for s in specs]
    proc = project.cli("validate", *paths)
    assert "Traceback" not in proc.stderr
    return proc.returncode, proc.stdout.splitlines(), proc.stderr.splitlines()


def _unwrapped(lines: list[str]) -> str:
    """Lines a terminal's width wrapped, as one line."""
    return " ".join(" ".join(lines).split())


GRID_SPACE = {"x": {"type": "float", "low": 0.0, "high": 1.0}, "kind": {"type": "categorical", "choices": ["a", "b"]},
              "n": {"type": "int", "low": 1, "high": 20}}   # 5 x 2 x 20 = 200 configurations


def test_a_grid_larger_than_the_trial_budget_warns_at_validate_and_run(project):
    corner = project.spec(name="corner", space=GRID_SPACE, strategy="grid", budget={"trials": 12},
                          executor={"kind": "inline"})
    warning = ("warning: strategy is grid with 200 configurations, more than budget.trials (12): in the grid's order "
               "those trials leave x and kind at their first values; set shuffle: true to spread them over the grid, "
               "raise budget.trials to 200, or choose another strategy (auto picks one for the budget)")
    code, out, err = _validate(project, corner)
    assert (code, _unwrapped(err)) == (0, warning)  # (one line, wrapped at the terminal's width)
    assert out[0].startswith("valid: corner:")
    # shuffled, or a budget that covers the grid: nothing to say
    shuffled = {**corner, "name": "shuffled", "strategy": {"name": "grid", "shuffle": True}}
    covered = {**corner, "name": "covered", "budget": {"trials": 200}}
    code, out, err = _validate(project, shuffled, covered)
    assert (code, err, len(out)) == (0, [], 2)
    run = project.cli("run", str(project.write_spec(corner)), "--quiet")
    assert run.returncode == 0, run.stderr
    assert _unwrapped(run.stderr.splitlines()) == warning
    assert {t["params"]["x"] for t in project.trials("corner")} == {0.0}  # the corner the warning names


def test_auto_says_why_it_passed_over_a_grid_that_fits_the_budget(project):
    small = project.spec(name="small", space={"x": {"type": "float", "low": 0.0, "high": 1.0},
                                              "kind": {"type": "categorical", "choices": ["a", "b"]}},
                         strategy="auto", budget={"trials": 20})
    code, out, err = _validate(project, small)
    assert (code, err) == (0, [])
    assert ("not the grid: its 10 configurations fit the budget, but x is a float without a step, which a grid "
            "cuts to 5 values (give it a step for auto to run the whole grid)") in _unwrapped(out)
    stepped = {**small, "name": "stepped", "space": {**small["space"],
                                                     "x": {"type": "float", "low": 0.0, "high": 1.0, "step": 0.25}}}
    code, out, err = _validate(project, stepped)
    assert "strategy grid (the whole grid (10 configurations) fits in the budget of 20 trials)" in _unwrapped(out)


def test_auto_does_not_build_an_integer_domain_to_count_its_grid():
    """To say whether the grid fits, auto built the grid of every parameter: for an int of 0..10^9, a list of 10^9
    ints (tens of GB) before saying no. Here 0..10^6, whose list took 36 MB."""
    import tracemalloc

    from tunesmith.space import Int, SearchSpace
    from tunesmith.strategy import decide

    space = SearchSpace.from_domains({"n": Int(0, 10**6)})
    tracemalloc.start()
    try:
        assert decide("auto", {}, space, 50, 1, 1).name == "bo"
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


@pytest.mark.parametrize("name, random", [("cmaes", "k, y"), ("gp", "y"), ("qmc", "y"), ("tpe", None),
                                          ("random", None)])
def test_a_sampler_that_samples_some_parameters_at_random_says_which(name, random):
    """Optuna's warning of it is turned off (a line per parameter per trial): cmaes ran random search on every
    categorical and conditional parameter, gp and qmc on the conditional ones, and nothing said so."""
    from tunesmith.space import Categorical, Float, SearchSpace
    from tunesmith.strategy import decide

    if name == "gp" and not torch_available():
        pytest.skip("the gp strategy needs torch (pip install 'tunesmith[gp]')")
    space = SearchSpace.from_domains({"x": Float(0.0, 1.0), "k": Categorical(["a", "b"]),
                                      "y": Float(0.0, 1.0, when={"k": "a"})})
    said = [w for w in decide(name, {}, space, 20, 1, 1).warnings if "at random" in w]
    assert said == ([] if random is None else [
        f"strategy {name} samples {random} at random, each on its own, not by {name} ({_HOW[name]}); tpe and bo "
        "model categorical and conditional parameters"])
    numeric = SearchSpace.from_domains({"x": Float(0.0, 1.0), "z": Float(0.0, 1.0)})
    assert not [w for w in decide(name, {}, numeric, 20, 1, 1).warnings if "at random" in w]


_HOW = {"cmaes": "CMA-ES models numbers only, in a space every trial has whole",
        "gp": "its Gaussian process models a space every trial has whole",
        "qmc": "where the first trial lacked them: its sequence covers the first trial's parameters"}


def test_a_deprecated_optuna_option_is_one_warning_line_not_a_raw_future_warning(project):
    spec = project.spec(name="sigma", strategy={"name": "cmaes", "sigma0": 0.2}, budget={"trials": 3},
                        executor={"kind": "inline"})
    said = ("warning: strategy.sigma0: Optuna says: `sigma0` has been deprecated in v4.9.0. This feature will be "
            "removed in v6.0.0. See https://github.com/optuna/optuna/releases/tag/v4.9.0.")
    code, _, err = _validate(project, spec)
    assert (code, err) == (0, [said])
    run = project.cli("run", str(project.write_spec(spec)), "--quiet")
    assert (run.returncode, run.stderr.splitlines()) == (0, [said])


@pytest.mark.skipif(not torch_available(), reason="the gp strategy needs torch (pip install 'tunesmith[gp]')")
def test_gp_under_quiet_prints_nothing_on_stderr(project):
    """Optuna's GP logged `[W ...] The 'greenlet' package is unavailable, ...` (where greenlet is not installed)."""
    spec = project.spec(name="gp", strategy={"name": "gp", "n_startup_trials": 1}, budget={"trials": 3},
                        executor={"kind": "inline"})
    run = project.cli("run", str(project.write_spec(spec)), "--quiet")
    assert (run.returncode, run.stderr) == (0, "")


def test_a_recorded_spec_whose_sampler_cannot_be_built_is_refused_on_resume_before_its_record_changes(project):
    """A record an older tunesmith made (its check came after the record): resuming it failed the run again at the
    first proposal. Now the strategy is built before the run writes anything, and the error names the option."""
    from tunesmith.runner import prepare
    from tunesmith.spec.loader import load_spec

    plan = prepare(load_spec(project.write_spec(project.spec(name="q1", strategy={"name": "qmc", "qmc_type": "halton"},
                                                             budget={"trials": 3}, executor={"kind": "inline"}))))
    recorded = plan.spec.to_json()
    recorded["strategy"]["options"]["qmc_type"] = "haltn"
    store = SQLStore(project.storage)
    try:
        exp = store.create_experiment("q1", recorded, "qmc", "chosen in the spec", time.time())
        store.set_status(exp.id, RunStatus.FAILED, time.time())
        before = (store.experiment("q1").status, [e.kind for e in store.events(exp.id)])
    finally:
        store.close()
    proc = project.cli("resume", "q1")
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "error: strategy.qmc_type: the qmc strategy refuses it: The `qmc_type='haltn'` is invalid. Choose either "
        "`halton` or `sobol`."]
    store = SQLStore(project.storage)
    try:
        assert (store.experiment("q1").status, [e.kind for e in store.events(exp.id)]) == before
        assert store.trials(exp.id) == []
    finally:
        store.close()


def _options_refused(name: str, options: dict) -> str | None:
    from tunesmith.space import Float, Int, SearchSpace
    from tunesmith.strategy import decide

    space = SearchSpace.from_domains({"x": Float(0.0, 1.0), "n": Int(0, 5)})
    try:
        decide(name, options, space, 20, 1, 1)
    except SpecError as e:
        return str(e)
    return None


def test_null_is_taken_for_every_option_whose_optuna_default_is_none():
    """Optuna builds and runs each of these with None, its own default (tpe's consider_prior, prior_weight,
    consider_magic_clip, consider_endpoints, warn_independent_sampling; cmaes's sigma0, popsize, restart_strategy;
    nsga2's mutation_prob): the rules refused an explicit null."""
    from tunesmith.strategy.options import SAMPLER_OPTIONS

    nullable = [(name, key) for name, sampler in _SAMPLERS.items()
                for key, p in inspect.signature(sampler.__init__).parameters.items()
                if p.default is None and key not in _RESERVED]
    assert ("tpe", "prior_weight") in nullable and ("nsga2", "mutation_prob") in nullable
    for name, key in nullable:
        assert SAMPLER_OPTIONS[name][key].nullable, (name, key)
        assert _options_refused(name, {key: None}) is None, (name, key)
    # what has another default is no null's
    assert _options_refused("tpe", {"n_ei_candidates": None}) == (
        "strategy.n_ei_candidates: must be an int >= 1 (the candidates TPE scores for each proposal); got None")


@pytest.mark.parametrize("name", ["tpe", "cmaes", "gp"])
def test_a_start_up_count_written_as_a_whole_float_is_that_count(name):
    """Optuna compares the trials done with n_startup_trials (len(trials) < n): 5.0 is 5. A count it uses as one
    (n_ei_candidates, popsize, population_size) fails mid-run as a float, and stays refused."""
    if name == "gp" and not torch_available():
        pytest.skip("the gp strategy needs torch (pip install 'tunesmith[gp]')")
    assert _options_refused(name, {"n_startup_trials": 5.0}) is None
    what = {"tpe": "TPE", "cmaes": "CMA-ES", "gp": "the Gaussian process"}[name]
    assert _options_refused(name, {"n_startup_trials": 5.5}) == (
        f"strategy.n_startup_trials: must be an int >= 0 (the trials drawn at random before {what} models the rest); "
        "got 5.5")
    assert _options_refused(name, {"n_startup_trials": -1.0}) is not None


def test_integral_floats_stay_refused_where_optuna_fails_on_them():
    assert _options_refused("tpe", {"n_ei_candidates": 24.0}) is not None
    assert _options_refused("cmaes", {"popsize": 6.0}) is not None
    assert _options_refused("nsga2", {"population_size": 4.0}) is not None


def _record_with_options(project, name: str, strategy: dict, **changed) -> None:
    """Experiment ``name`` recorded with ``strategy``, whose options are then ``changed`` in the record (a record
    made before today's checks)."""
    from tunesmith.runner import prepare
    from tunesmith.spec.loader import load_spec

    plan = prepare(load_spec(project.write_spec(project.spec(name=name, strategy=strategy, budget={"trials": 3},
                                                             executor={"kind": "inline"}))))
    recorded = plan.spec.to_json()
    recorded["strategy"]["options"].update(changed)
    store = SQLStore(project.storage)
    try:
        store.create_experiment(name, recorded, strategy["name"], "chosen in the spec", time.time())
    finally:
        store.close()


def test_a_retune_takes_the_options_its_parent_recorded_before_the_ranges_and_what_optuna_refuses_still_fails(
        project):
    """A re-tune (cycle, drift) inherits its parent's options: the ranges a spec given anew is checked against
    (popsize >= 4, added since) do not refuse a recorded popsize: 3, as they do not on resume; what Optuna refuses
    building the sampler still does, before anything is recorded."""
    from tunesmith.retune import checked_retune_plan

    _record_with_options(project, "pop3", {"name": "cmaes", "popsize": 4}, popsize=3)
    _record_with_options(project, "haltn", {"name": "qmc", "qmc_type": "halton"}, qmc_type="haltn")
    store = SQLStore(project.storage)
    try:
        plan = checked_retune_plan(store, "pop3", None, warm=False)
        assert plan.prepared is not None and plan.prepared.decision.options == {"popsize": 3}
        with pytest.raises(SpecError) as refused:
            checked_retune_plan(store, "haltn", None, warm=False)
        assert str(refused.value) == ("strategy.qmc_type: the qmc strategy refuses it: The `qmc_type='haltn'` is "
                                      "invalid. Choose either `halton` or `sobol`.")
        assert sorted(store.experiment_names()) == ["haltn", "pop3"]
    finally:
        store.close()
    # a spec given anew is still held to the range
    assert _options_refused("cmaes", {"popsize": 3}) is not None


def _walked(monkeypatch) -> list[int]:
    """How many configurations of a grid are walked (SearchSpace.iter_grid), counted into the list returned."""
    from tunesmith.space import SearchSpace

    walked = [0]
    iter_grid = SearchSpace.iter_grid

    def counted(self, float_points):  # type: ignore[no-untyped-def]
        for config in iter_grid(self, float_points):
            walked[0] += 1
            yield config

    monkeypatch.setattr(SearchSpace, "iter_grid", counted)
    return walked


def test_auto_counts_a_conditional_grid_of_unstepped_floats_exactly_without_walking_it(monkeypatch):
    """With a float without a step auto runs no grid: the grid is counted only to say that it would have fitted. For
    a conditional space of 9 such floats and 10^6 trials that walked 10^6 configurations (1.9 s of validate, 0.6 s
    before the wording); bounded since, it walked up to 100,000 and said "at most" the product of every parameter's
    values. GridIndex counts the grid exactly without walking it, whatever the budget."""
    from tunesmith.space import Categorical, Float, SearchSpace
    from tunesmith.strategy import decide

    walked = _walked(monkeypatch)
    floats = {f"x{i}": Float(0.0, 1.0, when={"kind": "a"}) for i in range(9)}
    space = SearchSpace.from_domains({"kind": Categorical(["a", "b"]), **floats})  # 5^9 + 1 = 1953126 points
    decision = decide("auto", {}, space, 10**6, 1, 1)
    assert decision.name == "bo" and "not the grid" not in decision.reason and walked == [0]
    decision = decide("auto", {}, space, 10**7, 1, 1)
    assert decision.name == "bo" and walked == [0], walked
    assert "; not the grid: its 1953126 configurations fit the budget, but x0 and" in decision.reason, \
        decision.reason
    assert "not the grid" in decide("auto", {}, space, 5**9 + 1, 1, 1).reason
    assert "not the grid" not in decide("auto", {}, space, 5**9, 1, 1).reason
    assert walked == [0]
    smaller = SearchSpace.from_domains({"kind": Categorical(["a", "b"]),
                                        **{f"x{i}": Float(0.0, 1.0, when={"kind": "a"}) for i in range(3)}})
    assert "; not the grid: its 126 configurations fit the budget, but x0" in decide(
        "auto", {}, smaller, 10**6, 1, 1).reason
    small = SearchSpace.from_domains({"kind": Categorical(["a", "b"]), "x": Float(0.0, 1.0, when={"kind": "a"})})
    assert "; not the grid: its 6 configurations fit the budget, but x is a float" in decide(
        "auto", {}, small, 20, 1, 1).reason


def test_the_grid_warning_counts_a_conditional_grid_exactly_whatever_the_budget(monkeypatch):
    """strategy: grid with 10^6 trials walked a conditional grid up to 10^6 configurations to warn, and said "more
    than 100,000" past that. Now: its exact size, nothing walked. A grid costly to count exactly (one child of 17
    flags) is walked no further than COUNTED_UP_TO, and says so where that passes the budget."""
    from tunesmith.space import Categorical, Float, Int, SearchSpace
    from tunesmith.space.grid_index import COUNTED_UP_TO
    from tunesmith.strategy import decide

    walked = _walked(monkeypatch)
    floats = {f"x{i}": Float(0.0, 1.0, when={"kind": "a"}) for i in range(9)}
    space = SearchSpace.from_domains({"kind": Categorical(["a", "b"]), **floats})  # 5^9 + 1 = 1953126 points
    (warning,) = decide("grid", {}, space, 10**6, 1, 1).warnings
    assert warning.startswith("strategy is grid with 1,953,126 configurations, more than budget.trials (1000000); "
                              "set shuffle: true to spread them over the grid, raise budget.trials to 1,953,126, or "
                              "choose another strategy"), warning
    assert decide("grid", {}, space, 5**9 + 1, 1, 1).warnings == () and walked == [0]
    flags = SearchSpace.from_domains({**{f"f{i}": Categorical([True, False]) for i in range(17)},
                                      "c": Int(0, 2, when={f"f{i}": True for i in range(17)})})  # 2^17 + 2 points
    (warning,) = decide("grid", {}, flags, 1000, 1, 1).warnings
    assert warning.startswith("strategy is grid with more than 100,000 configurations, more than budget.trials "
                              "(1000): in the grid's order those trials leave f0, "), warning
    assert "raise budget.trials to the grid size" in warning and "\n" not in warning
    assert walked[0] <= COUNTED_UP_TO + 1 + 1000, walked
    walked[0] = 0
    assert decide("grid", {}, flags, 10**7, 1, 1).warnings == () and walked[0] <= COUNTED_UP_TO + 1, walked


def test_a_deprecation_warning_names_the_option_given_where_optuna_names_another():
    """Optuna warns of inc_popsize under restart_strategy's name (one warning for the pair, deprecated in 4.4): the
    spec's warning named strategy (no option) for inc_popsize alone, and not inc_popsize beside restart_strategy."""
    from tunesmith.space import Float, SearchSpace
    from tunesmith.strategy import decide

    space = SearchSpace.from_domains({"x": Float(0.0, 1.0)})
    said = ("Optuna says: `restart_strategy` has been deprecated in v4.4.0. This feature will be removed in v6.0.0. "
            "See https://github.com/optuna/optuna/releases/tag/v4.4.0. From v4.4.0 onward, `restart_strategy` "
            "automatically falls back to `None`. `restart_strategy` will be supported in OptunaHub.")

    def warned(options: dict) -> tuple[str, ...]:
        return decide("cmaes", options, space, 20, 1, 1).warnings

    assert warned({"inc_popsize": 2}) == (
        f"strategy.inc_popsize: deprecated with restart_strategy; {said}",)
    assert warned({"inc_popsize": 2, "restart_strategy": "ipop"}) == (
        f"strategy.restart_strategy: inc_popsize deprecated with it; {said}",)
    assert warned({"restart_strategy": "ipop"}) == (f"strategy.restart_strategy: {said}",)
    assert warned({"inc_popsize": -1}) == ()  # Optuna's default: nothing to say


@pytest.mark.parametrize("strategy", ["tpe", pytest.param("gp", marks=pytest.mark.skipif(
    not torch_available(), reason="the gp strategy needs torch (pip install 'tunesmith[gp]')"))])
def test_choices_equal_under_equality_are_told_apart_by_the_optuna_samplers(strategy):
    """[1, True] are two choices of the space (its uniqueness check goes by type), but Optuna holds a choice as
    choices.index(value), and 1 == True: every True trial was told as 1, so TPE and GP converged on True, the worse,
    never seeing it (a walk through the strategies: 20 of the last 20 trials). Live, replayed and adopted trials
    keep their own choice."""
    from tunesmith.records import Direction, TrialRecord, TrialState
    from tunesmith.space import Categorical, Float, SearchSpace
    from tunesmith.strategy.optuna_adapter import OptunaStrategy

    space = SearchSpace.from_domains({"x": Float(0.0, 1.0), "c": Categorical([1, True, 1.0])})
    live = OptunaStrategy(strategy, space, [Direction.MINIMIZE], 3, {})
    recorded = []
    for number in range(30):
        proposal = live.ask()
        assert proposal is not None
        c = proposal.params["c"]
        value = (0.0 if type(c) is int else 1.0) + (proposal.params["x"] - 0.5) ** 2  # 1 is the good choice
        live.tell(proposal.token, TrialState.COMPLETED, (value,))
        recorded.append(TrialRecord(number, TrialState.COMPLETED, proposal.params, seed=0, values=(value,)))
    last = [t.params["c"] for t in recorded[10:]]
    assert sum(1 for c in last if type(c) is int) >= 10, last  # told as 1, True and 1.0 were never tried: 0
    replayed = OptunaStrategy(strategy, space, [Direction.MINIMIZE], 3, {})
    replayed.replay(recorded)
    assert [t.params for t in replayed.study.trials] == [t.params for t in live.study.trials]
    adopted = replayed.adopt({"x": 0.5, "c": True})
    assert adopted.params["c"] is True


def test_a_value_not_among_the_choices_given_by_position_is_refused_not_read_as_a_position():
    """Choices equal under == reach Optuna as positions; a value matching none of them (by value and type) went to
    Optuna as it was, read there as a position: 2 adopted as the choice "a", 0.0 replayed as the choice 1, a trial
    recorded with a configuration that is not in the space. Refused, naming the parameter and its choices."""
    from tunesmith.errors import SpaceError
    from tunesmith.records import Direction, TrialRecord, TrialState
    from tunesmith.space import Categorical, Float, SearchSpace
    from tunesmith.strategy.optuna_adapter import OptunaStrategy

    space = SearchSpace.from_domains({"x": Float(0.0, 1.0), "c": Categorical([1, True, "a"])})
    strategy = OptunaStrategy("tpe", space, [Direction.MINIMIZE], 3, {})
    with pytest.raises(SpaceError, match=r"value 2 is not one of its choices \[1, True, 'a'\]") as refused:
        strategy.adopt({"x": 0.5, "c": 2})
    assert refused.value.path == "params.c"
    with pytest.raises(SpaceError, match=r"value 0.0 is not one of its choices") as refused:
        strategy.replay([TrialRecord(0, TrialState.COMPLETED, {"x": 0.5, "c": 0.0}, seed=0, values=(1.0,))])
    assert refused.value.path == "params.c" and strategy.study.trials == []
    assert strategy.adopt({"x": 0.5, "c": "a"}).params["c"] == "a"


def test_optuna_is_told_a_pruned_trials_last_report_only():
    """Optuna's samplers read a trial's intermediate values only where it ended pruned, and only the last step's
    (TPE and CMA-ES score it by that); its in-memory storage copied the whole dict at every report, so a trial of
    20,000 reports cost seconds in the coordinator, growing with their square."""
    from tunesmith.records import Direction, Report, TrialState
    from tunesmith.space import Float, SearchSpace
    from tunesmith.strategy.optuna_adapter import OptunaStrategy

    strategy = OptunaStrategy("tpe", SearchSpace.from_domains({"x": Float(0.0, 1.0)}), [Direction.MINIMIZE], 0, {})
    pruned, completed = strategy.ask(), strategy.ask()
    assert pruned is not None and completed is not None
    for step in range(1000):
        strategy.report(pruned.token, Report(step, 1.0 / (step + 1)))
        strategy.report(completed.token, Report(step, 0.5))
    strategy.report(pruned.token, Report(3, 9.0))  # a step going back (a retry starting over): not the last
    strategy.tell(pruned.token, TrialState.PRUNED, None)
    strategy.tell(completed.token, TrialState.COMPLETED, (0.25,))
    first, second = strategy.study.trials
    assert first.state.name == "PRUNED" and first.intermediate_values == {999: 1.0 / 1000}
    assert second.state.name == "COMPLETE" and second.intermediate_values == {}
    # a resumed study, replayed from the record of every report, holds what the live one held
    from tunesmith.records import TrialRecord

    reports = tuple(Report(step, 1.0 / (step + 1)) for step in range(1000))
    replayed = OptunaStrategy("tpe", SearchSpace.from_domains({"x": Float(0.0, 1.0)}), [Direction.MINIMIZE], 0, {})
    replayed.replay([TrialRecord(0, TrialState.PRUNED, pruned.params, seed=0, intermediate=reports),
                     TrialRecord(1, TrialState.COMPLETED, completed.params, seed=0, values=(0.25,),
                                 intermediate=reports)])
    assert [t.intermediate_values for t in replayed.study.trials] == [{999: 1.0 / 1000}, {}]


@pytest.mark.parametrize("name", ["tpe", "random", "auto", "grid", "bo"])
def test_a_seed_under_the_strategy_points_at_the_experiments_seed(name):
    """Optuna's TPESampler(seed=3), ported as `strategy: {name: tpe, seed: 3}`, got "not an option of the tpe
    strategy" and the list of the sampler's options; under auto, "`auto` takes no options"."""
    from tunesmith.space import Float, SearchSpace
    from tunesmith.strategy import decide

    with pytest.raises(SpecError) as e:
        decide(name, {"seed": 3}, SearchSpace.from_domains({"x": Float(0.0, 1.0)}), 10, 1, 1)
    assert str(e.value) == ("strategy.seed: the experiment's seed seeds its strategy: write it at the top level, "
                            "seed: 3, not under strategy")
