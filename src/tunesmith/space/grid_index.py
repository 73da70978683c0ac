"""A search space's grid addressed by position: the k-th configuration of :meth:`SearchSpace.iter_grid`'s order,
computed alone, and the grid's exact size, without listing the grid or any parameter's values (a grid of 10^9
configurations, or an int of 0..10^9, is never a list).

The order is iter_grid's: parameters in the space's order, the last one changing fastest, an inactive parameter
skipped. Unconditional, that is mixed radix. Conditional, how many configurations follow a choice depends on the
values given so far, but only on those of parameters that condition a later one, and of those only on which
``when`` value they are (one matching none deactivates its children as an absent parent does): so the counts are
kept per (position, those values), a handful of entries.
"""

from __future__ import annotations

from collections.abc import Mapping

from tunesmith.records import ParamValue
from tunesmith.space.search_space import SearchSpace, is_one_of, values_in_grid

# A parent's slot in a state: the grid position of its value where that value is one a `when` names, else None
# (absent, inactive, not yet given, no longer needed, or a value no condition names: to a child all are one).
_State = tuple[int | None, ...]


class GridIndex:
    """The grid of ``space`` with ``float_points`` values per float without a step.

    Attributes:
        size: how many configurations the grid holds (exact, whatever its size).
    """

    def __init__(self, space: SearchSpace, float_points: int) -> None:
        self._space = space
        self._points = float_points
        order = space.order
        self._counts = [values_in_grid(space.domains[n], float_points) for n in order]
        parents = sorted({p for n in order for p in space.domains[n].when or {}}, key=order.index)
        self._slot = {p: i for i, p in enumerate(parents)}
        # the parents a parameter at this position or after is conditioned on: the state's slots still needed there
        self._needed: list[frozenset[str]] = [frozenset(p for n in order[i:] for p in space.domains[n].when or {})
                                              for i in range(len(order) + 1)]
        # a parent's grid positions whose value some `when` names, ascending; and for each (child, parent) those of
        # them that activate the child
        self._named: dict[str, list[int]] = {}
        self._activating: dict[tuple[str, str], frozenset[int]] = {}
        for parent in parents:
            domain = space.domains[parent]
            conditions = {n: space.domains[n].when[parent] for n in order  # type: ignore[index]
                          if parent in (space.domains[n].when or {})}
            named = {k for allowed in conditions.values() for v in (allowed if isinstance(allowed, list) else [allowed])
                     if (k := domain.grid_position(v, float_points)) is not None}
            self._named[parent] = sorted(named)
            for child, allowed in conditions.items():
                self._activating[child, parent] = frozenset(
                    k for k in named if is_one_of(domain.grid_point(k, float_points), allowed))
        self._memo: dict[tuple[int, _State], int] = {}
        self.size = self._following(0, (None,) * len(parents))

    def point(self, k: int) -> dict[str, ParamValue]:
        """The grid's configuration at position ``k`` (0 <= k < size) of iter_grid's order."""
        if not 0 <= k < self.size:
            raise IndexError(f"grid position {k} is outside 0..{self.size - 1}")
        space, order = self._space, self._space.order
        config: dict[str, ParamValue] = {}
        state: _State = (None,) * len(self._slot)
        for i, name in enumerate(order):
            if not self._active(name, state):
                state = self._kept(state, i + 1)
                continue
            position, k, state = self._choose(i, name, state, k)
            config[name] = space.domains[name].grid_point(position, self._points)
        return config

    def _choose(self, i: int, name: str, state: _State, k: int) -> tuple[int, int, _State]:
        """(the value's grid position, what is left of ``k`` past it, the state after it) for the active parameter
        at position ``i``: the values' blocks of following configurations, in grid order, passed over whole."""
        if name not in self._needed[i + 1]:  # every value is followed by as many configurations
            each = self._following(i + 1, self._kept(state, i + 1))
            return k // each, k % each, self._kept(state, i + 1)
        unnamed = self._kept(self._given(state, name, None), i + 1)
        each = self._following(i + 1, unnamed)  # after each value no condition names
        start = 0
        for position in [*self._named[name], self._counts[i]]:
            run = (position - start) * each
            if k < run:
                return start + k // each, k % each, unnamed
            k -= run
            if position == self._counts[i]:
                break
            named = self._kept(self._given(state, name, position), i + 1)
            after = self._following(i + 1, named)
            if k < after:
                return position, k, named
            k -= after
            start = position + 1
        raise AssertionError("a grid position within size always falls in one value's block")  # pragma: no cover

    def _following(self, i: int, state: _State) -> int:
        """How many configurations complete one whose parameters before position ``i`` left ``state``."""
        if i == len(self._counts):
            return 1
        memo = self._memo.get((i, state))
        if memo is not None:
            return memo
        name = self._space.order[i]
        if not self._active(name, state):
            count = self._following(i + 1, self._kept(state, i + 1))
        elif name not in self._needed[i + 1]:
            count = self._counts[i] * self._following(i + 1, self._kept(state, i + 1))
        else:
            named = self._named[name]
            count = (self._counts[i] - len(named)) * self._following(i + 1, self._kept(self._given(state, name, None),
                                                                                        i + 1))
            count += sum(self._following(i + 1, self._kept(self._given(state, name, k), i + 1)) for k in named)
        self._memo[i, state] = count
        return count

    def _active(self, name: str, state: _State) -> bool:
        when: Mapping[str, object] = self._space.domains[name].when or {}
        return all((k := state[self._slot[p]]) is not None and k in self._activating[name, p] for p in when)

    def _given(self, state: _State, name: str, position: int | None) -> _State:
        slot = self._slot[name]
        return (*state[:slot], position, *state[slot + 1:])

    def _kept(self, state: _State, i: int) -> _State:
        """``state`` with the slots of parents no parameter from position ``i`` on is conditioned on cleared: two
        states that differ only there are followed by the same configurations (one memo entry)."""
        needed = self._needed[i]
        return tuple(k if k is not None and p in needed else None for p, k in zip(self._slot, state, strict=True))
