"""``bo``: the unit-cube encoding, the numpy Gaussian process, the strategy, its cost guard, and `auto`'s pick."""

from __future__ import annotations

import math
import statistics
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tunesmith
from tunesmith.records import Direction, TrialRecord, TrialState
from tunesmith.space import Categorical, Float, Int, SearchSpace
from tunesmith.strategy import build_strategy, decide
from tunesmith.strategy.bayes import BayesStrategy
from tunesmith.strategy.gaussian_process import (
    Posterior,
    _neg_log_posterior,
    fit_hyperparameters,
    log_expected_improvement,
)
from tunesmith.strategy.unit_cube import UnitCube
from tunesmith.testing.trial_clock import TrialClock

MIXED = SearchSpace.from_domains({
    "lr": Float(1e-5, 10.0, log=True),
    "frac": Float(0.0, 1.0, step=0.25),
    "n": Int(1, 64, log=True),
    "k": Int(0, 10, step=2),
    "flag": Categorical([True, False, None]),
    "kind": Categorical(["a", "b"]),
    "a_val": Float(0.0, 1.0, when={"kind": "a"}),
})


def run_loop(strategy: BayesStrategy, loss, trials: int, clock: TrialClock | None = None) -> list[float]:
    losses = []
    for _ in range(trials):
        p = strategy.ask()
        value = loss(p.params)
        if clock is not None:
            clock.finished += 1
        strategy.tell(p.token, TrialState.COMPLETED, [value])
        losses.append(value)
    return losses


# -- unit cube -------------------------------------------------------------------------------------------------
def test_every_random_point_decodes_to_a_valid_configuration_and_round_trips():
    cube = UnitCube(MIXED)
    rng = np.random.default_rng(0)
    points = cube.random(rng, 300)
    seen_flags = set()
    for x in points:
        params = cube.decode(x)
        assert MIXED.validate_params(params) == params          # in range, on the step, active ones only
        assert np.allclose(cube.encode(params), x)              # snapped points are exactly their configuration
        seen_flags.add(params["flag"])
    assert seen_flags == {True, False, None}                    # every choice reachable, types kept


def test_snap_keeps_log_bounds_exact():
    cube = UnitCube(SearchSpace.from_domains({"lr": Float(1e-5, 10.0, log=True), "n": Int(1, 50, log=True)}))
    corners = cube.snap(np.array([[0.0, 0.0], [1.0, 1.0], [-3.0, 7.0]]))
    assert cube.decode(corners[0]) == {"lr": 1e-5, "n": 1}       # exp(log(1e-5)) would be 9.999999999999997e-06
    assert cube.decode(corners[1]) == {"lr": 10.0, "n": 50}
    assert cube.decode(corners[2]) == {"lr": 1e-5, "n": 50}


# -- Gaussian process ------------------------------------------------------------------------------------------
def test_log_posterior_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    x = rng.random((12, 3))
    z = np.sin(4 * x).sum(1)
    z = (z - z.mean()) / z.std()
    diffs_sq = (x[:, None, :] - x[None, :, :]) ** 2
    v = np.array([-0.5, 0.2, 0.8, 0.1, math.log(1e-2)])
    _, grad = _neg_log_posterior(v, diffs_sq, z)
    for i in range(len(v)):
        step = np.zeros_like(v)
        step[i] = 1e-6
        numeric = (_neg_log_posterior(v + step, diffs_sq, z)[0] - _neg_log_posterior(v - step, diffs_sq, z)[0]) / 2e-6
        assert grad[i] == pytest.approx(numeric, rel=1e-4, abs=1e-6), i


def test_fitted_gp_interpolates_and_finds_the_relevant_input():
    rng = np.random.default_rng(2)
    x = rng.random((30, 2))
    z = np.sin(6 * x[:, 0])                                    # the second input does not matter
    z = (z - z.mean()) / z.std()
    hyper = fit_hyperparameters(x, z)
    lengths = np.exp(hyper.log_lengths)
    assert lengths[1] > 3 * lengths[0]
    mean, sd = Posterior(x, z, hyper).predict(x)
    assert np.max(np.abs(mean - z)) < 0.05
    assert np.all(sd < 0.2)
    _, far_sd = Posterior(x, z, hyper).predict(np.array([[5.0, 5.0]]))
    assert far_sd[0] > 0.5                                       # unsure far from the data


def test_log_ei_is_the_log_of_ei_and_stays_finite_in_the_tail():
    from scipy.stats import norm

    mean = np.array([0.0, 0.5, -1.0, 3.0])
    sd = np.array([1.0, 0.3, 0.5, 0.2])
    u = (0.0 - mean) / sd
    plain = sd * (u * norm.cdf(u) + norm.pdf(u))
    assert np.allclose(log_expected_improvement(mean, sd, 0.0), np.log(plain), rtol=1e-8)
    tail = log_expected_improvement(np.array([10.0, 40.0, 400.0]), np.array([0.1, 0.1, 0.1]), 0.0)
    assert np.all(np.isfinite(tail)) and tail[0] > tail[1] > tail[2]   # still ranks where plain EI is 0.0


# -- the strategy ----------------------------------------------------------------------------------------------
def _branin(p):
    x, y = p["x"], p["y"]
    return (y - 5.1 / (4 * math.pi**2) * x**2 + 5 / math.pi * x - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x) + 10


BRANIN = SearchSpace.from_domains({"x": Float(-5.0, 10.0), "y": Float(0.0, 15.0)})


def test_bo_beats_random_search_on_branin():
    """Best of 30 trials over 5 seeds: bo near the optimum (0.398), random search well above it."""
    bo, rnd = [], []
    for seed in range(5):
        clock = TrialClock(1.0)
        strategy = BayesStrategy(BRANIN, Direction.MINIMIZE, seed, clock=clock)
        bo.append(min(run_loop(strategy, _branin, 30, clock)))
        rng = np.random.default_rng(seed)
        rnd.append(min(_branin({"x": rng.uniform(-5, 10), "y": rng.uniform(0, 15)}) for _ in range(30)))
    assert statistics.median(bo) < 0.45, bo
    assert statistics.median(rnd) > 0.6, rnd


def test_maximize_and_failures():
    """It climbs to the maximum at 0.7 and learns to avoid the region that crashes. (Once the losses span three
    orders of magnitude it models them on a log scale and goes on seeking relative improvements, so the next
    proposal after 20 trials is not always near 0.7: the best one so far is.)"""
    space = SearchSpace.from_domains({"x": Float(0.0, 1.0)})
    clock = TrialClock(1.0)
    s = BayesStrategy(space, Direction.MAXIMIZE, 0, clock=clock)
    xs = []
    for _ in range(20):
        p = s.ask()
        xs.append(p.params["x"])
        clock.finished += 1
        if p.params["x"] > 0.9:          # a crashing region: the GP takes failures for the worst value seen
            s.tell(p.token, TrialState.FAILED, None)
        else:
            s.tell(p.token, TrialState.COMPLETED, [-(p.params["x"] - 0.7) ** 2])
    assert min(abs(x - 0.7) for x in xs) < 0.01, xs
    assert sum(x > 0.9 for x in xs[s._startup:]) <= 2, xs


def test_losses_spanning_orders_of_magnitude_are_modelled_on_a_log_scale():
    from tunesmith.strategy.bayes import _standardised

    narrow = np.array([0.30, 0.25, 0.40, 0.22, np.nan])
    z = _standardised(narrow)
    assert np.allclose(z, (np.r_[narrow[:4], 0.40] - np.r_[narrow[:4], 0.40].mean()) / np.r_[narrow[:4], 0.40].std())
    wide = np.array([3e-5, 1e-3, 0.2, 5.0, 1e-4])
    z = _standardised(wide)
    logs = np.log(wide)
    assert np.allclose(z, (logs - logs.mean()) / logs.std())
    assert _standardised(np.array([-5.0, -1e-4, 3.0])).argmin() == 0     # not all positive: no log


def test_same_seed_same_sequence_when_trials_are_long():
    def sequence(seed, trials=14):
        clock = TrialClock(600.0)    # long beside any proposal, even on a loaded machine
        s = BayesStrategy(MIXED, Direction.MINIMIZE, seed, clock=clock)
        out = []
        for _ in range(trials):
            p = s.ask()
            clock.finished += 1
            s.tell(p.token, TrialState.COMPLETED, [p.params["lr"] + p.params["n"] / 64])
            out.append(p.params)
        return out

    first = sequence(3)
    assert first == sequence(3)
    # another seed: its sequence differs already within the Sobol start (at least 5 points; no model fits needed)
    assert sequence(4, 5) != first[:5]


def test_outstanding_proposals_spread_apart():
    """Eight proposals asked for before any is told (eight busy workers) are distinct and spread out. (Trials of
    600 s: with 1 s ones, a loaded machine made a full proposal cost over the 0.1 s allowance and this failed.)"""
    space = SearchSpace.from_domains({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)})
    clock = TrialClock(600.0)
    s = BayesStrategy(space, Direction.MINIMIZE, 0, clock=clock)
    run_loop(s, lambda p: (p["x"] - 0.3) ** 2 + (p["y"] - 0.6) ** 2, 16, clock)
    batch = [s.ask() for _ in range(8)]
    assert s.last_mode == "model"
    points = [(b.params["x"], b.params["y"]) for b in batch]
    nearest = [min(math.dist(a, b) for j, b in enumerate(points) if j != i) for i, a in enumerate(points)]
    assert min(nearest) > 1e-3 and statistics.mean(nearest) > 0.02, nearest


def test_replay_rebuilds_the_model_from_the_record():
    clock = TrialClock(1.0)
    first = BayesStrategy(BRANIN, Direction.MINIMIZE, 0, clock=clock)
    history = []
    for number in range(15):
        p = first.ask()
        value = _branin(p.params)
        first.tell(p.token, TrialState.COMPLETED, [value])
        history.append(TrialRecord(number=number, state=TrialState.COMPLETED, params=p.params, seed=number,
                                   values=(value,)))
    history.append(TrialRecord(number=15, state=TrialState.FAILED, params={"x": 0.0, "y": 0.0}, seed=15))
    resumed = BayesStrategy(BRANIN, Direction.MINIMIZE, 1, clock=TrialClock(1.0))
    fresh = BayesStrategy(BRANIN, Direction.MINIMIZE, 1, clock=TrialClock(1.0))
    resumed.replay(history)
    p = resumed.ask()
    assert fresh.ask() is not None and fresh.last_mode == "sobol"      # with no history: the start-up design
    assert resumed.last_mode == "model"                                 # with it: the model, at once
    assert BRANIN.validate_params(p.params) == p.params
    assert all(p.params != t.params for t in history)                   # nothing already run is proposed again
    # the model holds what the original strategy learnt by ask/tell, plus the failure (as nan: the worst value)
    assert np.allclose(np.vstack(resumed._x[:15]), np.vstack(first._x))
    assert resumed._y[:15] == first._y and math.isnan(resumed._y[15])


def test_a_resumed_run_after_failed_trials_goes_on_past_every_design_point_they_took():
    """While fewer than two trials have a finite result, bo keeps drawing Sobol points after the start-up size: a
    first run whose first 8 trials failed took 8 design points, and a resumed run (same design seed) fast-forwarded
    past the start-up's 5 only, so it proposed trial 5's configuration again."""
    first = BayesStrategy(BRANIN, Direction.MINIMIZE, 1, clock=TrialClock(1.0), design_seed=7)
    history = []
    for number in range(8):
        p = first.ask()
        assert first.last_mode == "sobol"
        first.tell(p.token, TrialState.FAILED, None)
        history.append(TrialRecord(number=number, state=TrialState.FAILED, params=p.params, seed=number))
    resumed = BayesStrategy(BRANIN, Direction.MINIMIZE, 2, clock=TrialClock(1.0), design_seed=7,
                            trials_recorded=len(history))
    resumed.replay(history)
    proposed = [resumed.ask().params for _ in range(3)]
    assert not [p for p in proposed if p in [t.params for t in history]], "a failed trial's configuration again"


def test_cost_guard_cheapens_proposals_for_instant_trials_and_not_for_long_ones():
    space = SearchSpace.from_domains({f"x{i}": Float(0.0, 1.0) for i in range(4)})

    def loss(p):
        return sum((v - 0.5) ** 2 for v in p.values())

    slow_clock = TrialClock(600.0)
    patient = BayesStrategy(space, Direction.MINIMIZE, 0, clock=slow_clock)
    modes = []
    for _ in range(40):
        p = patient.ask()
        modes.append(patient.last_mode)
        slow_clock.finished += 1
        patient.tell(p.token, TrialState.COMPLETED, [loss(p.params)])
    assert set(modes[10:]) == {"model"}

    # Real time, trials of microseconds, and no floor: the ratio alone (what `overhead_floor: 0` asks for).
    hurried = BayesStrategy(space, Direction.MINIMIZE, 0, overhead_floor=0.0)
    modes = []
    for _ in range(60):
        p = hurried.ask()
        modes.append(hurried.last_mode)
        hurried.tell(p.token, TrialState.COMPLETED, [loss(p.params)])
    assert modes[-20:].count("cheap") >= 15, modes


class SteppingClock:
    """Each reading ``step`` seconds after the last: a proposal costs ``step`` (3 x with a hyperparameter fit, which
    reads the clock twice more), a trial ``step``. Deterministic, whatever the machine's load."""

    def __init__(self, step: float) -> None:
        self.step = step
        self.now = 0.0

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def _modes(step: float | None, **options) -> list[str]:
    """How each of 30 proposals on a 3-d bowl was made; ``step``: a SteppingClock's step, or None for real clocks
    (trials of microseconds, proposals in CPU time)."""
    space = SearchSpace.from_domains({f"x{i}": Float(0.0, 1.0) for i in range(3)})
    if step is not None:
        clock = SteppingClock(step)
        options = {"clock": clock, "cost_clock": clock, **options}
    s = BayesStrategy(space, Direction.MINIMIZE, 0, **options)
    out = []
    for _ in range(30):
        p = s.ask()
        out.append(s.last_mode)
        s.tell(p.token, TrialState.COMPLETED, [sum((v - 0.3) ** 2 for v in p.params.values())])
    return out


def test_proposals_under_the_floor_are_always_full_ones():
    """Trials as short as a proposal (10 ms each): the ratio alone (10%, 1 ms) leaves no full proposal after the
    first few; with the default floor (50 ms) a proposal of 10-30 ms is always a full one."""
    default = _modes(0.01)
    assert set(default[8:]) == {"model"}, default
    ratio_only = _modes(0.01, overhead_floor=0.0)
    assert ratio_only[8:].count("model") <= 2, ratio_only


def test_above_the_floor_the_ratio_credit_acts_again():
    """Real clocks, trials of microseconds: a full proposal costs several ms of CPU (10-30 here; no machine
    makes it as cheap as 2 ms), so against a 2 ms floor the credit pays for a full proposal only now and then
    and quick or cheap ones fill the gaps; a floor of 5 s pays for every one. (CPU time, not wall time: a loaded
    machine does not change which side of the floor a proposal falls.)"""
    hurried = _modes(None, overhead_floor=0.002)
    assert hurried[10:].count("model") <= 10 and {"quick", "cheap"} & set(hurried[10:]), hurried
    assert set(_modes(None, overhead_floor=5.0)[10:]) == {"model"}


def test_the_run_is_told_once_when_the_cost_guard_makes_the_sequence_depend_on_timing():
    """Same seed, same sequence holds while the guard does not act; when it did (a 10-parameter conditional space at
    14+ trials), four runs of one spec gave four sequences and nothing said why."""
    said: list[str] = []
    modes = _modes(0.01, overhead_floor=0.0, say=said.append)  # trials as short as a proposal: the ratio acts
    assert {"quick", "cheap"} & set(modes), modes
    assert len(said) == 1, said
    assert said[0].startswith("bo's cost guard acted after ") and "not on the seed alone" in said[0], said
    # the way back to a seed-reproducible run is said (review R12: only "lets each cost more" was)
    assert ("raise strategy.overhead_floor (strategy: {name: bo, overhead_floor: 5}) or choose strategy: tpe to keep "
            "the run reproducible from the seed" in said[0]), said[0]
    quiet: list[str] = []
    assert set(_modes(0.01, say=quiet.append)[8:]) == {"model"} and quiet == [], "under the floor: nothing to say"


# -- auto ------------------------------------------------------------------------------------------------------
def test_auto_picks_bo_for_one_objective_and_tpe_with_early_stopping_or_several():
    plain = SearchSpace.from_domains({"lr": Float(1e-4, 1.0, log=True), "n": Int(1, 100)})
    assert decide("auto", {}, plain, 100, 1, 1).name == "bo"
    assert "constant liar" in decide("auto", {}, plain, 100, 1, 4).reason
    assert decide("auto", {}, MIXED, 100, 1, 1).name == "bo"                      # conditional too
    assert decide("auto", {}, plain, 100, 1, 1, early_stopping=True).name == "tpe"
    assert decide("auto", {}, plain, 100, 2, 1).name == "tpe"                     # two objectives
    # constraints: TPE models which configurations satisfy them; bo, blind to them, searched the infeasible region
    # (benchmarks/RESULTS.md, "Constrained search")
    constrained = decide("auto", {}, plain, 100, 1, 1, constrained=True)
    assert constrained.name == "tpe" and "satisfy the constraints (bo would not)" in constrained.reason


def test_bo_options_are_checked():
    with pytest.raises(tunesmith.SpecError, match="strategy.overhead"):
        decide("bo", {"overhead": -1}, BRANIN, 10, 1, 1)
    with pytest.raises(tunesmith.SpecError, match="strategy.budget"):
        decide("bo", {"budget": 3}, BRANIN, 10, 1, 1)
    with pytest.raises(tunesmith.SpecError, match="one objective"):
        decide("bo", {}, BRANIN, 10, 2, 1)
    strategy = build_strategy(decide("bo", {"overhead": 0.5}, BRANIN, 10, 1, 1), BRANIN, [Direction.MINIMIZE], 0, 1)
    assert isinstance(strategy, BayesStrategy) and strategy.overhead == 0.5 and strategy.overhead_floor == 0.05
    for bad in (-0.01, 61, "50ms", True):
        with pytest.raises(tunesmith.SpecError, match="strategy.overhead_floor"):
            decide("bo", {"overhead_floor": bad}, BRANIN, 10, 1, 1)
    chosen = decide("bo", {"overhead_floor": 0}, BRANIN, 10, 1, 1)
    strategy = build_strategy(chosen, BRANIN, [Direction.MINIMIZE], 0, 1)
    assert isinstance(strategy, BayesStrategy) and strategy.overhead_floor == 0.0


def test_a_misspelt_strategy_option_is_never_hinted_as_one_written_beside_it():
    """`overhead_` beside `overhead` suggested 'overhead' (already given), where every other unknown-key hint
    leaves out the keys written beside it: the one meant is `overhead_floor`."""
    with pytest.raises(tunesmith.SpecError) as e:
        decide("bo", {"overhead": 0.2, "overhead_": 0.01}, BRANIN, 10, 1, 1)
    assert str(e.value) == ("strategy.overhead_: not an option of the bo strategy; did you mean 'overhead_floor'? "
                            "accepted: overhead, overhead_floor, cost_aware, cost_budget, cooling_trials")
    with pytest.raises(tunesmith.SpecError, match="did you mean 'overhead'[?]"):  # alone, it is the nearest
        decide("bo", {"overhead_": 0.2}, BRANIN, 10, 1, 1)


def test_auto_runs_bo_end_to_end_with_process_workers(project):
    spec = project.spec(name="bo", strategy="auto", budget={"trials": 14}, executor={"kind": "process", "workers": 2})
    result = tunesmith.run(spec, storage=project.storage)
    assert result.experiment.strategy == "bo"
    assert "Gaussian-process" in result.experiment.strategy_reason
    assert [t.state for t in result.trials] == [TrialState.COMPLETED] * 14
    assert min(t.values[0] for t in result.trials) < 0.01        # (x - 0.3)^2 on [0, 1]


def test_auto_needs_no_torch(tmp_path):
    """`auto` (bo) runs where torch cannot be imported: the default install has no torch."""
    (tmp_path / "torch.py").write_text("raise ImportError('torch is not installed here')\n")
    script = textwrap.dedent("""
        import sys
        sys.path.insert(0, ".")              # ./torch.py: any `import torch` now raises ImportError
        from tunesmith.records import Direction, TrialState
        from tunesmith.space import Float, Int, SearchSpace
        from tunesmith.strategy import build_strategy, decide
        space = SearchSpace.from_domains({"x": Float(0.0, 1.0), "n": Int(1, 20)})
        decision = decide("auto", {}, space, 30, 1, 1)
        s = build_strategy(decision, space, [Direction.MINIMIZE], 0, 1)
        for _ in range(15):
            p = s.ask()
            s.tell(p.token, TrialState.COMPLETED, [(p.params["x"] - 0.5) ** 2 + p.params["n"]])
        print(decision.name, s.last_mode, "torch" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    name, mode, torch_loaded = out.stdout.split()
    assert (name, torch_loaded) == ("bo", "False")
    assert mode in ("model", "quick", "cheap")


def test_mean_proposal_cost_stays_within_the_allowance_for_short_trials():
    """Trials of 20 ms: proposals may cost 10% of that on average (2 ms); a full one costs 10-50 ms, so most
    proposals are quick or cheap, and the mean over the last 40 stays near the allowance. (Not exactly within it:
    a full proposal may cost more than the last one, whose cost the credit was checked against.) Costs are CPU
    time, what the rule counts: wall time on a loaded machine is several times more."""
    import time

    space = SearchSpace.from_domains({f"x{i}": Float(0.0, 1.0) for i in range(3)})
    s = BayesStrategy(space, Direction.MINIMIZE, 0, overhead_floor=0.0)   # the ratio alone
    costs, modes = [], []
    for _ in range(80):
        t0 = time.process_time()
        p = s.ask()
        costs.append(time.process_time() - t0)
        modes.append(s.last_mode)
        time.sleep(0.02)
        s.tell(p.token, TrialState.COMPLETED, [sum((v - 0.5) ** 2 for v in p.params.values())])
    assert statistics.mean(costs[-40:]) < 4 * 0.1 * 0.02, costs[-40:]
    assert "model" in modes[5:] and modes[-40:].count("model") < 15, modes


def test_quick_proposals_fill_the_gaps_between_full_ones_and_still_converge():
    """Trials of 50 ms (a TrialClock: no sleeping): a full proposal costs several allowances (5 ms), so many
    proposals are quick ones (the GP under its last hyperparameters, about 1 ms), which still home in on the
    minimum; random search reaches a loss below 0.01 on this 4-d sphere within 50 trials about 2% of the time.
    (How many are quick depends on this machine's speed and load: the bound is loose.)"""
    space = SearchSpace.from_domains({f"x{i}": Float(0.0, 1.0) for i in range(4)})
    clock = TrialClock(0.05)
    s = BayesStrategy(space, Direction.MINIMIZE, 3, clock=clock, overhead_floor=0.0)   # the ratio alone
    modes: list[str] = []
    losses = []
    for _ in range(50):
        p = s.ask()
        modes.append(s.last_mode)
        losses.append(sum((v - 0.5) ** 2 for v in p.params.values()))
        clock.finished += 1
        s.tell(p.token, TrialState.COMPLETED, [losses[-1]])
    assert modes.count("quick") >= 3 and "model" in modes[5:], modes
    assert min(losses) < 0.01, (min(losses), modes)


def test_a_quick_proposal_conditions_on_the_newest_results_without_refitting():
    """After a full fit on a bowl at 0.2, three much better results around 0.8 arrive: a quick proposal (the last
    hyperparameters, the data as it is now) goes after them at once, and the hyperparameters stay as they were.
    A strategy proposing from stale data would stay near 0.2."""
    space = SearchSpace.from_domains({"x": Float(0.0, 1.0)})
    clock = TrialClock(600.0)
    s = BayesStrategy(space, Direction.MINIMIZE, 0, clock=clock)
    run_loop(s, lambda p: (p["x"] - 0.2) ** 2 + 0.1, 12, clock)
    fitted = s._hyper
    for x in (0.75, 0.8, 0.85):
        surprise = s.adopt({"x": x})
        s.tell(surprise.token, TrialState.COMPLETED, [-0.5])
    x = s._propose("quick")
    assert s.last_mode == "quick" and s._hyper is fitted
    assert abs(float(s.cube.decode(x)["x"]) - 0.8) < 0.15, s.cube.decode(x)


def test_proposals_are_made_with_one_blas_thread():
    """The GP's small matrices gain nothing from BLAS threads, and on a busy machine OpenBLAS's default threads
    made a full proposal several times dearer: every proposal runs with one, and the setting is restored after."""
    from threadpoolctl import ThreadpoolController

    controller = ThreadpoolController()
    s = BayesStrategy(BRANIN, Direction.MINIMIZE, 0, clock=TrialClock(600.0))
    seen: list[int] = []
    propose = s._propose

    def spying(mode: str) -> np.ndarray:
        seen.extend(p["num_threads"] for p in ThreadpoolController().select(user_api="blas").info())
        return propose(mode)

    s._propose = spying  # type: ignore[method-assign]
    with controller.limit(limits=2, user_api="blas"):       # as a user's numpy may run, whatever this machine's env
        run_loop(s, _branin, 8, None)
        after = [p["num_threads"] for p in controller.select(user_api="blas").info()]
    assert seen and set(seen) == {1}
    assert after and set(after) == {2}


def test_a_proposal_keeps_its_own_point_not_the_candidate_array_it_was_picked_from():
    """Each finished trial's encoded point was a view into the candidate array it was picked from, and kept that
    whole array alive: the coordinator grew 85 KB a trial (600 MB at 5,000 trials; a walk at scale)."""
    strategy = BayesStrategy(BRANIN, Direction.MINIMIZE, 0, overhead_floor=60.0)  # every proposal a full model one
    for _ in range(16):
        proposal = strategy.ask()
        assert proposal is not None
        x, y = float(proposal.params["x"]), float(proposal.params["y"])  # type: ignore[arg-type]
        strategy.tell(proposal.token, TrialState.COMPLETED, ((x - 1) ** 2 + (y - 2) ** 2,))
    kept = [x.base.nbytes if x.base is not None else x.nbytes for x in strategy._x]
    assert max(kept) <= 8 * 8, f"a point holds {max(kept)} bytes alive"
