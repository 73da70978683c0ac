"""A seeded random order of the positions 0..n-1 of a grid, read one position at a time.

Up to :data:`SHUFFLED_IN_MEMORY_UP_TO` positions it is ``random.Random(seed).shuffle`` of them, the order grid
``shuffle: true`` has always had, so a spec and seed give the trials they always gave (a resumed or joined run walks
an order of its own seed, passing over what was run: :func:`tunesmith.seeding.strategy_seed`). It takes an array of
n ints (8 MB at the bound). Past that
bound (a grid no run finishes) the order is a keyed Feistel permutation walked one position at a time: nothing
listed, whatever n.
"""

from __future__ import annotations

import hashlib
import random
from array import array

SHUFFLED_IN_MEMORY_UP_TO = 1_000_000
_ROUNDS = 6


class ShuffledOrder:
    """``order[t]`` (0 <= t < n): the grid position visited t-th; each of 0..n-1 once."""

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self._seed = seed
        self._listed: array[int] | None = None
        if n <= SHUFFLED_IN_MEMORY_UP_TO:
            self._listed = array("q", range(n))
            random.Random(seed).shuffle(self._listed)  # depends on n alone: the order the grid's list was shuffled in
        # a Feistel network permutes 2^(2 * half) values, the least power of 4 from n: under 4n, so a position walks
        # out of range fewer than 3 times on average before it lands in it (cycle walking keeps it a permutation)
        self._half = max(1, ((n - 1).bit_length() + 1) // 2)

    def __getitem__(self, t: int) -> int:
        if not 0 <= t < self.n:
            raise IndexError(f"position {t} is outside 0..{self.n - 1}")
        if self._listed is not None:
            return self._listed[t]
        x = self._permuted(t)
        while x >= self.n:
            x = self._permuted(x)
        return x

    def _permuted(self, x: int) -> int:
        mask = (1 << self._half) - 1
        left, right = x >> self._half, x & mask
        for r in range(_ROUNDS):
            left, right = right, left ^ (self._round(r, right) & mask)
        return (left << self._half) | right

    def _round(self, r: int, value: int) -> int:
        digest = hashlib.blake2b(f"{self._seed}:{r}:{value}".encode(), digest_size=16).digest()
        return int.from_bytes(digest, "big")
