"""Seeds: every random component takes an explicit seed; children derive theirs from the experiment's."""

from __future__ import annotations

import hashlib
import secrets


def derive_seed(parent: int, *path: int | str) -> int:
    """A stable 31-bit seed for a child (a trial number, a component name) of ``parent``."""
    text = ":".join(str(p) for p in (parent, *path))
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "big") & 0x7FFFFFFF


def fresh_seed() -> int:
    """A seed for an experiment that did not declare one; it is recorded, so the run can be replayed."""
    return secrets.randbelow(2**31)


def strategy_seed(experiment_seed: int, trials_recorded: int, joiner: str | None = None) -> int:
    """The search strategy's seed: the experiment's own child for a new run; for one that goes on from recorded
    trials (`resume`, a joining coordinator), a child of that count too. A strategy seeded as the first run was
    draws that run's opening configurations again (random, TPE's and Optuna's start-up samples, bo's Sobol
    design): trials already run would run again under new numbers. The same record still gives the same seed.

    ``joiner``: the identity of a joining coordinator (its lease owner id). Joiners started together see the same
    count (0 when they start before the lead recorded a trial: the lead's own seed), and would propose the same
    configurations; each draws its own instead. A join depends on timing anyway, so nothing replayable is lost."""
    if joiner is not None:
        return derive_seed(experiment_seed, "strategy", "joined", trials_recorded, joiner)
    if trials_recorded == 0:
        return derive_seed(experiment_seed, "strategy")
    return derive_seed(experiment_seed, "strategy", "resumed", trials_recorded)


def design_seed(experiment_seed: int, joining: bool = False) -> int | None:
    """The seed of a strategy's low-discrepancy design (QMC, bo's Sobol start-up design): the first run's, on every
    resume too, so a resumed run goes on with the design past the points its recorded trials took (the strategy
    is told how many trials are on record, lost ones included). A new seed would start another design, whose
    points do not spread around the first one's (and unscrambled Sobol ignores the seed: the first run's points
    again). None for a joining coordinator: joiners at one count would go on to the same points; each draws from
    its strategy seed instead."""
    return None if joining else strategy_seed(experiment_seed, 0)
