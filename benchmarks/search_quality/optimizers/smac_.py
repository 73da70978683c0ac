"""SMAC3 (HPO facade). Listed so the report says why it did not run: SMAC3 2.x installs from source only here
(smac and its pynisher dependency are sdists, and pyrfr has no wheel and needs SWIG + a C++ build)."""

from __future__ import annotations

from typing import Any

from tunesmith.space import SearchSpace


def make(space: SearchSpace, seed: int, budget: int, batch: int) -> Any:
    raise NotImplementedError("SMAC3 adapter not written: SMAC3 does not install from wheels on this machine")
