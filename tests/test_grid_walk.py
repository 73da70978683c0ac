"""The grid strategy walks its grid by position (GridIndex), never listing it: iter_grid's configurations in
iter_grid's order; shuffled, the order it always had up to a million configurations and a lazy permutation past
that; replayed and adopted configurations passed over; a grid of 10^9 configurations proposes at once."""

from __future__ import annotations

import json
import random
import tracemalloc

import pytest

from tunesmith.records import TrialRecord, TrialState
from tunesmith.space import Categorical, Float, Int, SearchSpace
from tunesmith.space.grid_index import GridIndex
from tunesmith.strategy import shuffled_order
from tunesmith.strategy.grid import GridStrategy
from tunesmith.strategy.shuffled_order import ShuffledOrder


def _spaces() -> dict[str, SearchSpace]:
    from tunesmith.sklearn import _space_of

    return {
        "product": SearchSpace.from_domains({"a": Int(1, 3), "b": Categorical(["x", "y"]), "c": Float(0, 1, step=0.5),
                                             "d": Float(1e-3, 10, log=True), "e": Float(-1, 1)}),
        "svc": SearchSpace.from_domains({
            "C": Float(1e-3, 1e3, log=True), "kernel": Categorical(["rbf", "linear"]),
            "gamma": Float(1e-4, 1.0, log=True, when={"kernel": "rbf"}), "layers": Int(1, 4)}),
        "chain": SearchSpace.from_domains({
            "optimizer": Categorical(["sgd", "adam"]),
            "momentum": Categorical([0.0, 0.9, 0.99], when={"optimizer": "sgd"}),
            "nesterov": Categorical([True, False], when={"momentum": [0.9, 0.99]})}),
        # two parents of one child, a categorical parent whose choices 1, 1.0 and True are three values
        "tangled": SearchSpace.from_domains({
            "n": Int(0, 20, step=2), "flag": Categorical([1, 1.0, True, "no"]),
            "deep": Int(1, 3, when={"n": [4, 12, 20], "flag": [1.0, True]}),
            "width": Float(0, 1, when={"flag": 1}), "late": Categorical(["p", "q"], when={"deep": 2}),
            "tail": Int(0, 2)}),
        # a stored spec may condition on a float (a new one is refused that): values on its stepped and unstepped
        # grids, and ones off them (0.35; 1, an int, which no float value is)
        "float parents": SearchSpace.from_domains({
            "s": Float(0, 1, step=0.1), "u": Float(0.01, 1, log=True),
            "x": Int(0, 1, when={"s": [0.3, 0.7, 0.35, 1]}), "y": Int(0, 1, when={"u": [0.1, 0.01, 1.0]})}),
        # flags declared before the values they switch on, an unlinked parameter among them, and a child of two flags
        # (which links their groups)
        "flags": SearchSpace.from_domains({
            **{f"use{i}": Categorical([True, False]) for i in range(4)}, "free": Int(0, 1),
            **{f"v{i}": Int(0, 2, when={f"use{i}": True}) for i in range(3)},
            "both": Categorical(["x", "y"], when={"use2": False, "use3": True})}),
        # TunedSearchCV's list of grids: a hidden categorical picks the grid, an empty grid among them
        "sklearn grids": SearchSpace.from_domains(_space_of(
            [{"C": [1, 10], "kernel": ["linear"]}, {"C": [1, 100], "gamma": [0.1, 0.01], "kernel": ["rbf"]}, {}],
            "param_grid").domains),
    }


def _exact(configs):
    """Configurations as a list that tells 1 from 1.0 from True, and the parameters' order."""
    return [[(k, type(v).__name__, repr(v)) for k, v in c.items()] for c in configs]


def _all_asked(strategy: GridStrategy) -> list[dict]:
    asked = []
    while (proposal := strategy.ask()) is not None:
        asked.append(proposal.params)
    return asked


@pytest.mark.parametrize("name", list(_spaces()))
def test_positions_are_iter_grids_configurations_in_its_order(name):
    space = _spaces()[name]
    for points in (1, 2, 3, 4):
        listed = list(space.iter_grid(points))
        grid = GridIndex(space, points)
        assert grid.size == len(listed)
        assert _exact(grid.point(k) for k in range(grid.size)) == _exact(listed), points
        with pytest.raises(IndexError):
            grid.point(grid.size)
        assert len(grid._memo) <= grid.counts_bound, points  # what grid_size reads to bound its cost
        assert _exact(_all_asked(GridStrategy(space, points=points))) == _exact(listed), points


@pytest.mark.parametrize("name", list(_spaces()))
def test_shuffled_is_the_order_it_always_was_up_to_a_million_configurations(name):
    """random.Random(seed).shuffle of the listed grid, as grid shuffle: true drew it before the grid was walked by
    position: a seed gives the configurations it gave."""
    space = _spaces()[name]
    for points, seed in ((2, 0), (3, 7), (4, 12345)):
        listed = list(space.iter_grid(points))
        random.Random(seed).shuffle(listed)
        assert _exact(_all_asked(GridStrategy(space, points=points, shuffle=True, seed=seed))) == _exact(listed)


@pytest.mark.parametrize("name", list(_spaces()))
def test_shuffled_past_the_bound_is_each_configuration_once_in_a_seeded_order(name, monkeypatch):
    monkeypatch.setattr(shuffled_order, "SHUFFLED_IN_MEMORY_UP_TO", 0)  # every grid takes the lazy permutation
    space = _spaces()[name]
    listed = list(space.iter_grid(3))
    first = _all_asked(GridStrategy(space, points=3, shuffle=True, seed=5))
    assert sorted(json.dumps(c, sort_keys=True) for c in first) == sorted(json.dumps(c, sort_keys=True)
                                                                         for c in listed)
    assert _exact(_all_asked(GridStrategy(space, points=3, shuffle=True, seed=5))) == _exact(first)
    if len(listed) > 20:
        assert _exact(first) != _exact(listed)
        assert _exact(_all_asked(GridStrategy(space, points=3, shuffle=True, seed=6))) != _exact(first)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 16, 17, 100, 1000, 4097])
def test_the_lazy_permutation_takes_each_position_once(n, monkeypatch):
    monkeypatch.setattr(shuffled_order, "SHUFFLED_IN_MEMORY_UP_TO", 0)
    order = ShuffledOrder(n, seed=42)
    assert sorted(order[t] for t in range(n)) == list(range(n))
    with pytest.raises(IndexError):
        order[n]


@pytest.mark.parametrize("shuffle", [False, True], ids=["declared", "shuffled"])
@pytest.mark.parametrize("lazy", [False, True], ids=["listed-order", "lazy-order"])
def test_replayed_and_adopted_configurations_are_passed_over(shuffle, lazy, monkeypatch):
    """A resumed run (replay of what its record holds, then again as peers finish) and a peer's trial (adopt) are
    not proposed again, whatever the order; the rest of the grid is, once each."""
    if lazy:
        monkeypatch.setattr(shuffled_order, "SHUFFLED_IN_MEMORY_UP_TO", 0)
    space = _spaces()["svc"]
    listed = [json.dumps(c, sort_keys=True) for c in space.iter_grid(3)]
    first = GridStrategy(space, points=3, shuffle=shuffle, seed=1)
    ran = [first.ask().params for _ in range(10)]
    resumed = GridStrategy(space, points=3, shuffle=shuffle, seed=2)  # a resumed run's strategy seed is a new one
    resumed.replay([TrialRecord(number=i, state=TrialState.COMPLETED, params=p, seed=0) for i, p in enumerate(ran)])
    peer = list(space.iter_grid(3))[-1]
    resumed.adopt(dict(peer))
    after = [resumed.ask().params for _ in range(5)]
    resumed.replay([TrialRecord(number=99, state=TrialState.FAILED, params=p, seed=0) for p in ran[:3]])  # again
    after += _all_asked(resumed)
    keys = [json.dumps(c, sort_keys=True) for c in [*ran, peer, *after]]
    assert len(keys) == len(set(keys)) == len(listed)
    assert set(keys) == set(listed)


def test_a_grid_of_a_billion_configurations_proposes_without_listing_it():
    """Five ints of 0..62 (63^5 = 992 436 543 configurations), and a conditional space with an int of 0..10^9: the
    first proposals, in either order, take kilobytes, where the grid's list took hundreds of gigabytes."""
    product = SearchSpace.from_domains({f"n{i}": Int(0, 62) for i in range(5)})
    conditional = SearchSpace.from_domains({"k": Categorical(["a", "b"]), "n": Int(0, 10**9, when={"k": "a"}),
                                            "m": Float(0, 1, when={"k": "b"})})
    for space, size in ((product, 63**5), (conditional, 10**9 + 1 + 100)):
        for shuffle in (False, True):
            tracemalloc.start()
            try:
                strategy = GridStrategy(space, points=100, shuffle=shuffle, seed=3)
                asked = [strategy.ask() for _ in range(5)]
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            assert all(a is not None for a in asked)
            assert GridIndex(space, 100).size == size
            assert peak < 2_000_000, (space.order, shuffle, peak)


def test_a_resumed_shuffled_grid_runs_the_rest_of_the_grid_once(project, monkeypatch):
    """A run stopped part way and resumed (its record in SQLite; the resumed strategy's seed is another one, so its
    permutation is another): the rest of the grid runs, no configuration twice, and the run stops when it is done."""
    from tunesmith.events import RunListener
    from tunesmith.runner import resume_experiment, run_experiment
    from tunesmith.spec import spec_from_dict
    from tunesmith.storage import SQLStore

    monkeypatch.setattr(shuffled_order, "SHUFFLED_IN_MEMORY_UP_TO", 0)
    space = {"kind": {"type": "categorical", "choices": ["a", "b"]},
             "a_val": {"type": "float", "low": 0.0, "high": 1.0, "step": 0.25, "when": {"kind": "a"}},
             "b_val": {"type": "int", "low": 1, "high": 4, "when": {"kind": "b"}},
             "c": {"type": "int", "low": 0, "high": 1}}
    spec = spec_from_dict(project.spec(name="cut", space=space, strategy={"name": "grid", "shuffle": True},
                                       trial={"function": "objectives:conditional"}, budget={"trials": 100},
                                       executor={"kind": "inline"}, base_dir=str(project.root)))
    runners = []

    class StopAfterFour(RunListener):
        def trial_finished(self, trial, best):
            if trial.number == 3:
                runners[0].request_stop()

    store = SQLStore(project.storage)
    try:
        assert len(run_experiment(spec, store, StopAfterFour(), on_runner=runners.append).trials) == 4
        result = resume_experiment("cut", store)
    finally:
        store.close()
    ran = [json.dumps(dict(t.params), sort_keys=True) for t in result.trials]
    assert len(ran) == len(set(ran)) == (5 + 4) * 2
    assert set(ran) == {json.dumps(c, sort_keys=True) for c in spec.search_space.iter_grid(5)}
    assert "every configuration" in result.stop_reason


def test_independent_conditions_are_counted_apart():
    """Sixteen flags declared before the ints they switch on: the counts go per flag and its int (a few entries
    each), not per combination of the flags given so far (2^16 of them, tens of megabytes)."""
    flags = {f"use{i}": Categorical([True, False]) for i in range(16)}
    space = SearchSpace.from_domains({**flags, **{f"v{i}": Int(0, 2, when={f"use{i}": True}) for i in range(16)}})
    tracemalloc.start()
    try:
        grid = GridIndex(space, 5)
        last = grid.point(grid.size - 1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert grid.size == 4**16
    assert last == {f"use{i}": False for i in range(16)}
    assert grid.point(0) == {**{f"use{i}": True for i in range(16)}, **{f"v{i}": 0 for i in range(16)}}
    assert peak < 1_000_000, peak
