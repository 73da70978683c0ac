"""Grid search: every configuration of a finite grid, conditions respected, each proposed once."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from itertools import islice

from tunesmith.records import ParamValue, Report, TrialRecord, TrialState
from tunesmith.space import SearchSpace
from tunesmith.space.grid_index import COUNTED_UP_TO, GridIndex, grid_size
from tunesmith.space.search_space import values_in_grid
from tunesmith.strategy.base import Proposal
from tunesmith.strategy.shuffled_order import ShuffledOrder
from tunesmith.warning_kinds import GridLargerThanBudget


class GridStrategy:
    """Args:
        space: the search space.
        points: values per float parameter without a step (ints and categoricals use all their values).
        shuffle: visit the grid in a seeded random order (better when the budget is smaller than the grid).
        seed: seed for ``shuffle``.

    The grid is walked by position (:class:`GridIndex`), never listed: a grid of 10^9 configurations proposes its
    first at once. What was run before (``replay``) or elsewhere (``adopt``) is remembered by key and passed over.
    """

    def __init__(self, space: SearchSpace, points: int = 5, shuffle: bool = False, seed: int = 0) -> None:
        self.space = space
        self.points = points
        self.shuffle = shuffle
        self.seed = seed
        self._walk: tuple[GridIndex, ShuffledOrder | None] | None = None  # built at the first proposal
        self._next = 0  # the walk's next step
        self._taken: set[str] = set()  # the keys of configurations replayed or adopted
        self._tokens = 0

    def _grid(self) -> tuple[GridIndex, ShuffledOrder | None]:
        if self._walk is None:
            grid = GridIndex(self.space, self.points)
            self._walk = grid, ShuffledOrder(grid.size, self.seed) if self.shuffle else None
        return self._walk

    @property
    def size(self) -> int:
        """How many configurations the grid holds: no more trials than these can be proposed."""
        return self._grid()[0].size

    def replay(self, history: Sequence[TrialRecord]) -> None:
        self._taken.update(_key(t.params) for t in history)

    def ask(self) -> Proposal | None:
        grid, order = self._grid()
        while self._next < grid.size:
            params = grid.point(self._next if order is None else order[self._next])
            self._next += 1
            if _key(params) not in self._taken:  # each configuration is one position: no need to remember it
                self._tokens += 1
                return Proposal(self._tokens, params)
        return None

    def adopt(self, params: dict[str, ParamValue]) -> Proposal:
        self._taken.add(_key(params))
        self._tokens += 1
        return Proposal(self._tokens, dict(params))

    def report(self, token: int, report: Report) -> None:
        pass

    def tell(self, token: int, state: TrialState, values: Sequence[float] | None,
             metrics: Mapping[str, float] | None = None) -> None:
        pass


def _key(params: dict[str, ParamValue] | object) -> str:
    return json.dumps(params, sort_keys=True, default=str)


def grid_warnings(space: SearchSpace, points: int, shuffle: bool, trials: int | None) -> tuple[str, ...]:
    """What a grid larger than the trial budget and walked in order warns: its trials fill one corner of it. The
    grid's size is exact (:func:`grid_size`); where counting it would be costly (a parameter conditioned on many
    parents), it is known only to pass ``COUNTED_UP_TO``, which says nothing of a larger budget."""
    if shuffle or trials is None:
        return ()
    size = grid_size(space, points)
    if size is None:  # more than COUNTED_UP_TO configurations: more than the budget, unless that is larger
        if trials > COUNTED_UP_TO:
            return ()
        counted, raised = f"more than {COUNTED_UP_TO:,}", "the grid size"
    elif size <= trials:
        return ()
    else:
        counted = raised = f"{size:,}"
    fixed = _first_values_kept(space, points, trials)
    return (GridLargerThanBudget(
        f"strategy is grid with {counted} configurations, more than budget.trials ({trials}){_kept(fixed)}; set "
        f"shuffle: true to spread them over the grid, raise budget.trials to {raised}, or choose another strategy "
        f"(auto picks one for the budget)"),)


def _first_values_kept(space: SearchSpace, points: int, trials: int) -> list[str]:
    """The parameters that keep their first value over the grid's first ``trials`` configurations (the last one
    declared changes fastest)."""
    counts = [values_in_grid(space.domains[n], points) for n in space.order]
    if not space.is_conditional:  # a parameter changes once the ones after it have gone through their product
        return [n for i, n in enumerate(space.order) if math.prod(counts[i + 1:]) >= trials]
    if max(counts, default=1) > COUNTED_UP_TO or trials > COUNTED_UP_TO:
        return []
    first = list(islice(space.iter_grid(points), trials))
    return [n for n in space.order if all(n in c and c[n] == first[0].get(n) for c in first)]


def _kept(names: list[str]) -> str:
    if not names:
        return ""
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    return (f": in the grid's order those trials leave {listed} at "
            f"{'its first value' if len(names) == 1 else 'their first values'}")
