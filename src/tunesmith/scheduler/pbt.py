"""Population-based training (PBT; Jaderberg et al. 2017), as Ray Tune's ``PopulationBasedTraining``, on trials.

Ray Tune pauses and resumes the members of a fixed population; here a member that falls behind is *replaced*:

- **Ranking.** At every ``perturbation_interval`` steps (a trial's first report at or past a multiple of the
  interval; see :meth:`PBTScheduler.on_report`) the trial's value is recorded at that multiple and ranked among
  the *population* there: itself and the ``population_size - 1`` highest-numbered other trials that have a value
  at that multiple (the newest generation; a pure function of the reports, so ``replay`` rebuilds it exactly).
  It is ranked once that population is whole: ``population_size`` values, or no other running trial can still
  report one there; until then it trains on, and is ranked at its first report after. With ``n >= 2`` values,
  the bottom and top quantiles hold ``k = min(ceil(n * quantile_fraction), n // 2)`` trials each (Ray Tune's
  rule); ties go on.
- **Exploit.** A trial in the bottom quantile gets ``STOP`` (it ends PRUNED with its last value), and an
  :class:`~tunesmith.scheduler.base.Exploit` is queued: a random *parent* from the top quantile, among those that
  are still running, not stopped and short of ``max_resource`` (a finished trial's checkpoint is final, so there
  is nothing left to continue). When no top trial qualifies, the bottom trial goes on: PBT stops only to replace.
- **Explore.** The exploit's params are the parent's, perturbed within their domains (:meth:`PBTScheduler.explore`).
- **Hand-out.** ``propose()`` returns the queued exploits once each, first in first out, with the parent's last
  reported step at that moment (its latest checkpoint). An exploit whose parent has since ended or been stopped
  is dropped. Trials at or past ``max_resource`` are never ranked: they complete normally.

Every random draw of a decision comes from a generator seeded with (seed, trial number, step), so decisions do
not depend on the order in which other trials' reports arrived, and a run with the same reports makes the same
choices.

The scheduler needs the parameters of the trials it may copy: the runner calls :meth:`PBTScheduler.on_start`
when it launches an attempt. Trials it has not seen start (those of a cooperating coordinator) are ranked but
never chosen as parents.

**Resume.** ``replay(history)`` rebuilds the values at every multiple from the finished trials' reports. Exploits
queued but not yet handed out when the process died are lost: the stopped trial is recorded PRUNED, and its slot
goes to the strategy's next trial instead.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType

from tunesmith.errors import SpaceError
from tunesmith.records import Direction, ParamValue, Report, TrialRecord, TrialState
from tunesmith.records import diverged
from tunesmith.scheduler.base import Decision, Exploit
from tunesmith.seeding import derive_seed
from tunesmith.space import SearchSpace
from tunesmith.space.domains import Categorical, Float, Int
from tunesmith.spec.scheduler_config import PBTConfig
from tunesmith.suggestions import closest

# As ASHA: a failed trial's numbers describe a broken run; an interrupted or lost one reports again on resume.
_KEPT = (TrialState.COMPLETED, TrialState.PRUNED)


@dataclass(slots=True)
class _Member:
    """A running trial: its params (once started), where it stands, and whether it was told to stop."""

    params: dict[str, ParamValue] | None = None
    last_step: int | None = None
    stopped: bool = False
    awaiting: list[int] = field(default_factory=list)  # multiples it reached before the population there was whole


@dataclass(frozen=True, slots=True)
class _Queued:
    parent: int
    params: dict[str, ParamValue] = field(default_factory=dict)


class PBTScheduler:
    """Population-based training: replace bottom-quantile trials by perturbed copies of top-quantile ones.

    Implements :class:`~tunesmith.scheduler.base.ProposingScheduler`, plus the :meth:`on_start` hook.

    Args:
        config: the spec's ``scheduler: {name: pbt, ...}`` section (validated against ``space`` by
            :func:`check_mutations`, which :func:`~tunesmith.scheduler.build_scheduler` calls).
        direction: whether lower or higher intermediate values are better.
        seed: the scheduler's seed; each decision derives its own from it.
        space: the search space; perturbed params stay in its domains and its active set.
    """

    def __init__(self, config: PBTConfig, direction: Direction, seed: int, space: SearchSpace) -> None:
        self.config = config
        self.direction = direction
        self.seed = seed
        self.space = space

    # -- derived state -------------------------------------------------------------------------------------
    @cached_property
    def _values(self) -> dict[int, dict[int, float]]:
        """Multiple of the interval -> {trial number: its value there}."""
        return {}

    @cached_property
    def _live(self) -> dict[int, _Member]:
        return {}

    @cached_property
    def _queue(self) -> deque[_Queued]:
        return deque()

    # -- the protocol --------------------------------------------------------------------------------------
    def replay(self, history: Sequence[TrialRecord]) -> None:
        """Rebuild the values at every multiple from finished trials (completed and pruned; others are ignored).

        Exploits queued by an earlier process and not handed out are not restored (they are lost).
        """
        for trial in history:
            self.on_finish(trial)

    def on_start(self, trial: TrialRecord) -> None:
        """The runner launched an attempt of ``trial`` (a first attempt, a retry or a re-run) with its params.

        Only started trials can be chosen as parents: their params are what an exploit perturbs.
        """
        self._live[trial.number] = _Member(params=dict(trial.params))

    def on_report(self, number: int, report: Report) -> Decision:
        """Record ``report`` at the multiple of the interval it is the first to reach; stop the trial if it ranks in
        the bottom quantile there and a top-quantile trial can be copied.

        A trial's first report counts only when it lies exactly on a multiple: a trial that continues from its
        parent's checkpoint at step 6 with an interval of 4 is first ranked at step 8, not with its step-7 value
        among others' step-4 values. A stop is final: later reports of the same trial get ``STOP`` again.

        A report that is not a finite number (``records.diverged``) ranks last where it is ranked (the trial is
        stopped at once anyway: :func:`tunesmith.scheduler.base.stops`).
        """
        member = self._live.setdefault(number, _Member())
        if member.stopped:
            return Decision.STOP
        check = self._record(number, member, report)
        unranked = diverged(report)
        if self.config.max_resource is not None and report.step >= self.config.max_resource:
            return Decision.CONTINUE
        for waited in [c for c in member.awaiting if self._whole(c, number)]:  # its population there is whole now
            member.awaiting.remove(waited)
            value = self._values.get(waited, {}).get(number)
            if value is not None and self._ranked_out(number, waited, value, member) is Decision.STOP:
                return Decision.STOP
        if check is None:
            return Decision.CONTINUE
        if not unranked and not self._whole(check, number):
            member.awaiting.append(check)  # ranked at a later report, once the slower trials have a value here
            return Decision.CONTINUE
        return self._ranked_out(number, check, None if unranked else report.value, member)

    def note(self, number: int, report: Report) -> None:
        """Record a restated ``report`` (ruled on when first reported) at the multiple it is the first to reach,
        unranked: after a resume the population there holds the trial's value and its step counts towards
        ``_whole``, as in an uninterrupted run, and its first own report is not taken for its first one."""
        member = self._live.setdefault(number, _Member())
        if not member.stopped:
            self._record(number, member, report)

    def _record(self, number: int, member: _Member, report: Report) -> int | None:
        """Advance the trial's last step and record its value at the multiple it reaches first; returns it."""
        check = self._check_of(report.step, member.last_step)
        member.last_step = report.step if member.last_step is None else max(member.last_step, report.step)
        if check is not None and not diverged(report):
            self._values.setdefault(check, {})[number] = report.value
        return check

    def _ranked_out(self, number: int, check: int, value: float | None, member: _Member) -> Decision:
        """STOP, an exploit queued, when the trial's ``value`` at multiple ``check`` (None: diverged, ranks last)
        is in the bottom quantile of the population there and a top-quantile trial can be copied."""
        unranked = value is None
        window = self._window(check, number)  # without this trial when it diverged: it ranks last
        n = len(window) + (1 if unranked else 0)
        if n < 2:
            return Decision.CONTINUE
        k = min(math.ceil(n * self.config.quantile_fraction), n // 2)
        if value is not None:
            beaten_by = sum(1 for other, v in window.items() if other != number and self.direction.better(v, value))
            if beaten_by < n - k:
                return Decision.CONTINUE
        top = [other for other, v in window.items()
               if sum(1 for w in window.values() if self.direction.better(w, v)) < k]
        parents = sorted(p for p in top if p != number and self._may_parent(p))
        if not parents:
            return Decision.CONTINUE
        rng = random.Random(derive_seed(self.seed, "pbt", number, check))
        parent = rng.choice(parents)
        params = self._live[parent].params
        assert params is not None  # _may_parent checked it
        member.stopped = True
        self._queue.append(_Queued(parent, self.explore(params, rng)))
        return Decision.STOP

    def on_finish(self, trial: TrialRecord) -> None:
        """Settle the trial's values from its recorded reports; drop them unless it completed or was pruned."""
        self._live.pop(trial.number, None)
        for values in self._values.values():
            values.pop(trial.number, None)
        if trial.state not in _KEPT:
            return
        # Re-derived from the record, as ASHA does: a retried trial's record holds its last attempt's reports.
        previous: int | None = None
        for report in trial.intermediate:
            check = self._check_of(report.step, previous)
            previous = report.step if previous is None else max(previous, report.step)
            if check is not None and not diverged(report):
                self._values.setdefault(check, {})[trial.number] = report.value

    def propose(self) -> Exploit | None:
        """The oldest queued exploit whose parent is still running, or None; each is handed out once.

        ``step`` is the parent's last reported step now: the runner copies the parent's latest checkpoint.
        """
        while self._queue:
            queued = self._queue.popleft()
            if not self._may_parent(queued.parent):
                continue  # the parent ended or was stopped since: its checkpoint is final or poor
            step = self._live[queued.parent].last_step
            assert step is not None  # a parent has reported
            return Exploit(queued.parent, step, dict(queued.params))
        return None

    # -- introspection -------------------------------------------------------------------------------------
    def values_at(self, step: int) -> Mapping[int, float]:
        """The values recorded at multiple ``step`` of the interval, by trial number."""
        return MappingProxyType(dict(sorted(self._values.get(step, {}).items())))

    def pending(self) -> int:
        """Exploits queued and not yet handed out."""
        return len(self._queue)

    # -- explore -------------------------------------------------------------------------------------------
    def explore(self, params: Mapping[str, ParamValue], rng: random.Random) -> dict[str, ParamValue]:
        """``params`` perturbed within the space: each active parameter by its mutation (see the config).

        Defaults: a numeric parameter is redrawn from its domain with ``resample_probability``, otherwise moved by a
        factor drawn from ``perturbation_factors``: multiplied on a log scale, shifted by ``(factor - 1) * (high -
        low)`` on a linear one (a multiple of 0 stays 0, and of a negative value moves the wrong way). The result
        is clipped to ``[low, high]`` and rounded to the step (ints to the nearest integer); when the rounding
        would undo the move, it moves one step (one integer) that way instead, so a small int is not stuck. A
        categorical is redrawn with ``resample_probability``, otherwise kept. A parameter that becomes active
        (its parent changed) is drawn from its domain; one that becomes inactive is dropped.
        """
        assigned: dict[str, ParamValue] = {}
        for name in self.space.order:
            if not self.space.is_active(name, assigned):
                continue
            domain = self.space.domains[name]
            value = _coerce(domain, params[name]) if name in params else None
            if value is None or not domain.contains(value):
                assigned[name] = _sample(domain, rng)
            else:
                assigned[name] = self._mutate(name, domain, value, rng)
        return assigned

    def _mutate(self, name: str, domain: Float | Int | Categorical, value: ParamValue,
                rng: random.Random) -> ParamValue:
        mutation = self.config.mutations.get(name)
        p = self.config.resample_probability
        if mutation is not None and mutation.keep:
            return value
        if mutation is not None and mutation.resample:
            return _sample(domain, rng)
        if mutation is not None and mutation.choices is not None:
            choices = [_coerce(domain, c) for c in mutation.choices]
            # Two draws always, so that a decision's later draws do not depend on which branch was taken.
            resample, shift = rng.random() < p, rng.choice((-1, 1))
            index = next((i for i, c in enumerate(choices) if c == value and type(c) is type(value)), None)
            if resample or index is None:
                return rng.choice(choices)
            return choices[min(max(index + shift, 0), len(choices) - 1)]
        resample = rng.random() < p
        if isinstance(domain, Categorical):
            return _sample(domain, rng) if resample else value
        factors = mutation.factors if mutation is not None and mutation.factors is not None \
            else self.config.perturbation_factors
        factor = rng.choice(factors)
        if resample:
            return _sample(domain, rng)
        assert isinstance(value, int | float) and not isinstance(value, bool)  # domain.contains checked it
        return _perturb(domain, value, factor)

    # -- the rule ------------------------------------------------------------------------------------------
    def _check_of(self, step: int, previous: int | None) -> int | None:
        """The multiple of the interval this report is the first at or past, or None."""
        interval = self.config.perturbation_interval
        multiple = step // interval * interval
        if multiple <= 0:
            return None
        if previous is None:
            return multiple if step == multiple else None
        return multiple if previous < multiple else None

    def _window(self, check: int, number: int) -> dict[int, float]:
        """The population at ``check``: ``number`` (if it has a value) and the newest others there."""
        values = self._values.get(check, {})
        others = sorted((n for n in values if n != number), reverse=True)[: self.config.population_size - 1]
        window = {n: values[n] for n in others}
        if number in values:
            window[number] = values[number]
        return window

    def _whole(self, check: int, number: int) -> bool:
        """Whether the population at ``check`` is whole for ranking ``number`` there: ``population_size`` trials
        have a value there, or no other running trial can still report one (each has passed it or was stopped).
        Ranked as soon as two had one, the first to arrive were ranked among each other: where better trials are
        faster, the second and third best of four were stopped and the slow worst ran to the end."""
        values = self._values.get(check, {})  # (the window holds population_size only with the trial's own value)
        if number in values and len(values) >= self.config.population_size:
            return True
        return not any(other != number and not m.stopped and (m.last_step is None or m.last_step < check)
                       for other, m in self._live.items())

    def _may_parent(self, number: int) -> bool:
        member = self._live.get(number)
        if member is None or member.stopped or member.params is None or member.last_step is None:
            return False
        return self.config.max_resource is None or member.last_step < self.config.max_resource


def check_mutations(config: PBTConfig, space: SearchSpace, path: str = "scheduler.mutations") -> None:
    """Check ``config.mutations`` against the space: known parameters, numeric ones for factors, values in domain.

    Raises:
        SpaceError: naming ``scheduler.mutations.<param>`` and the fix.
    """
    for name, mutation in config.mutations.items():
        where = f"{path}.{name}"
        if name not in space.domains:
            close = closest(name, space.names)
            hint = f"did you mean {close!r}? " if close else ""
            raise SpaceError(where, f"names no parameter of the space; {hint}parameters: {', '.join(space.names)}")
        domain = space.domains[name]
        if mutation.factors is not None and isinstance(domain, Categorical):
            raise SpaceError(f"{where}.factors", f"factors apply to float and int parameters, and {name!r} is "
                                                 "categorical; use choices: [...] or resample: true")
        for i, choice in enumerate(mutation.choices or ()):
            if not domain.contains(_coerce(domain, choice)):
                raise SpaceError(f"{where}.choices.{i}",
                                 f"value {choice!r} is outside the domain of {name!r} ({_describe(domain)})")


def _coerce(domain: Float | Int | Categorical, value: ParamValue) -> ParamValue:
    """An int given for a float parameter is that float (as ``SearchSpace.validate_params`` reads it)."""
    if isinstance(domain, Float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _describe(domain: Float | Int | Categorical) -> str:
    if isinstance(domain, Categorical):
        return f"choices {domain.choices}"
    step = f" step {domain.step}" if domain.step not in (None, 1) else ""
    return f"[{domain.low}, {domain.high}]{' log' if domain.log else ''}{step}"


def _sample(domain: Float | Int | Categorical, rng: random.Random) -> ParamValue:
    """A uniform draw from the domain (log-uniform on a log scale, on the grid with a step)."""
    if isinstance(domain, Categorical):
        return rng.choice(domain.choices)
    if isinstance(domain, Int):
        if domain.log:  # the widened range gives the end points their share, as Optuna does
            drawn = math.exp(rng.uniform(math.log(domain.low - 0.5), math.log(domain.high + 0.5)))
            return min(max(round(drawn), domain.low), domain.high)
        return domain.low + rng.randint(0, (domain.high - domain.low) // domain.step) * domain.step
    if domain.step is not None:
        n = round((domain.high - domain.low) / domain.step)
        return domain.on_grid(domain.low + rng.randint(0, n) * domain.step)
    if domain.log:
        return min(max(math.exp(rng.uniform(math.log(domain.low), math.log(domain.high))), domain.low), domain.high)
    return rng.uniform(domain.low, domain.high)


def _perturb(domain: Float | Int, value: float, factor: float) -> float | int:
    """``value`` moved by ``factor`` in the domain's scale, clipped, rounded to its grid, and moved at least a step."""
    moved = value * factor if domain.log else value + (factor - 1.0) * (domain.high - domain.low)
    moved = min(max(moved, domain.low), domain.high)
    if isinstance(domain, Int):
        new: float = domain.low + round((moved - domain.low) / domain.step) * domain.step
        if new == value and factor != 1.0:  # rounding undid the move: take one step that way
            new = value + (domain.step if factor > 1.0 else -domain.step)
        return int(min(max(new, domain.low), domain.high))
    if domain.step is None:
        return float(moved)
    snapped = domain.on_grid(moved)
    if snapped == value and factor != 1.0:
        snapped = domain.on_grid(value + (domain.step if factor > 1.0 else -domain.step))
    return snapped
