"""Optuna's samplers behind tunesmith's Strategy protocol. The only module that imports optuna.

Each experiment gets an in-memory Optuna study used purely as the sampler's working memory: tunesmith's own
store is the record of truth, and on resume the study is rebuilt from it with :meth:`OptunaStrategy.replay`.
Outstanding proposals stay RUNNING in that study, which is what lets TPE's constant liar (and the population
samplers) keep parallel proposals apart.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import math
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState as OptunaState

from tunesmith.constraints import Constraint
from tunesmith.errors import SpaceError, SpecError
from tunesmith.extras import install_extra
from tunesmith.records import Direction, ParamValue, Report, TrialRecord, TrialState
from tunesmith.report_order import ReportOrder
from tunesmith.space import Categorical, Float, Int, SearchSpace
from tunesmith.strategy.base import Proposal
from tunesmith.strategy.options import check_sampler_option_values, reject_unknown_options
from tunesmith.strategy.warm_start import PriorMode
from tunesmith.suggestions import listed

optuna.logging.set_verbosity(logging.WARNING)
# GPSampler's module logs once, as it is imported, that without the greenlet package it optimises its acquisition
# function sequentially (slower, not different): a raw "[W <time>] ..." line on the user's stderr, --quiet or not,
# about nothing the spec can change. tunesmith says its own warnings; this one it leaves unsaid.
logging.getLogger("optuna._gp.batched_lbfgsb").setLevel(logging.ERROR)

_SAMPLERS: dict[str, type[optuna.samplers.BaseSampler]] = {
    "random": optuna.samplers.RandomSampler,
    "tpe": optuna.samplers.TPESampler,
    "qmc": optuna.samplers.QMCSampler,
    "cmaes": optuna.samplers.CmaEsSampler,
    "gp": optuna.samplers.GPSampler,
    "nsga2": optuna.samplers.NSGAIISampler,
}
# Options tunesmith sets itself (seed from the spec) or that cannot come from YAML (callables).
_RESERVED = {"seed", "constraints_func", "gamma", "weights", "independent_sampler", "mutation", "crossover",
             "elite_population_selection_strategy", "child_generation_strategy", "after_trial_strategy",
             "source_trials", "x0"}
MISSING_METRIC_VIOLATION = 1e18  # finite: samplers add violations up
# Optuna's NSGA-II reads a trial's generation from the stamp its sampler left (an internal key; optuna is pinned
# below 6, and tests/test_warm_samplers.py and tests/test_nsga2_resume.py fail if it stops counting the stamps)
_GENERATION_KEY = optuna.samplers.NSGAIISampler._get_generation_key()
# Warm Starting CMA-ES fits its first Gaussian to the parent's best 10%: below 10 parent trials that is no trial.
WARM_CMAES_MIN_TRIALS = 10
_STATE = {TrialState.COMPLETED: OptunaState.COMPLETE, TrialState.PRUNED: OptunaState.PRUNED,
          TrialState.FAILED: OptunaState.FAIL}


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def sampler_options(name: str, options: Mapping[str, Any], space: SearchSpace) -> dict[str, Any]:
    """The sampler's keyword arguments: tunesmith's defaults for it, then the spec's options over them."""
    if name == "tpe":  # grouped TPE is multivariate: a spec's multivariate: false turns the grouping off with it
        grouped = space.is_conditional and options.get("multivariate", True) is not False
        defaults: dict[str, Any] = {"multivariate": True, "group": grouped, "constant_liar": True}
    elif name == "qmc":
        defaults = {"qmc_type": "sobol", "scramble": True, "warn_independent_sampling": False,
                    "warn_asynchronous_seeding": False}
    elif name in ("cmaes", "gp"):
        defaults = {"warn_independent_sampling": False}
    else:
        defaults = {}
    return {**defaults, **options}


def check_options(name: str, options: dict[str, Any], space: SearchSpace) -> tuple[str, ...]:
    """Refuse, as SpecError naming the option, what the run's sampler would refuse or trip over: an option the
    sampler does not take, a value out of its range (``options.SAMPLER_OPTIONS``; not for options a re-tune
    inherits from its recorded parent: ``options.inherited_options``), and whatever Optuna raises
    building the sampler from them (built here as the run builds it). Returns what Optuna warned building it (a
    deprecated option), as warnings of the spec."""
    accepted = sorted(set(inspect.signature(_SAMPLERS[name].__init__).parameters) - {"self"} - _RESERVED)
    reject_unknown_options(name, options, accepted)
    check_sampler_option_values(name, options)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        build_sampler(name, options, sampler_options(name, options, space), seed=0, deprecations=True)
    return (*(_deprecation(str(w.message), options) for w in said if issubclass(w.category, FutureWarning)),
            *_sampled_at_random(name, space))


def _sampled_at_random(name: str, space: SearchSpace) -> tuple[str, ...]:
    """What the sampler leaves to random sampling in ``space``, said as the spec's warning: Optuna's own warning of
    it is turned off (``warn_independent_sampling``: one line per parameter per trial), and a search that is random
    search on most of its parameters must not look like CMA-ES or a GP at work."""
    conditional = [n for n in space.order if space.domains[n].when is not None]
    categorical = [n for n in space.order if isinstance(space.domains[n], Categorical) and n not in conditional]
    if name == "cmaes":
        left, how = categorical + conditional, "CMA-ES models numbers only, in a space every trial has whole"
    elif name == "gp":
        left, how = conditional, "its Gaussian process models a space every trial has whole"
    elif name == "qmc":
        left, how = conditional, "where the first trial lacked them: its sequence covers the first trial's parameters"
    else:
        return ()
    if not left:
        return ()
    return (f"strategy {name} samples {listed(left)} at random, each on its own, not by {name} ({how}); tpe and bo "
            "model categorical and conditional parameters",)


def build_sampler(name: str, given: Mapping[str, Any], options: Mapping[str, Any], seed: int,
                  design_seed: int | None = None, deprecations: bool = False,
                  source_trials: list[optuna.trial.FrozenTrial] | None = None) -> optuna.samplers.BaseSampler:
    """The Optuna sampler for ``options`` (``sampler_options``), as a run and the spec's check build it: what it
    raises is a SpecError naming the option of ``given`` (the spec's own) that Optuna's message names.
    ``source_trials``: a warm start's (cmaes, see ``OptunaStrategy.transfer_prior``). Optuna's warnings of
    experimental features are left unsaid, and its deprecation warnings unless ``deprecations``
    (``check_options`` says them once, as the spec's warnings, not as Python's raw lines)."""
    if name == "gp" and not torch_available():
        raise SpecError("strategy.name", f"the gp strategy needs torch: {install_extra('gp')}")
    sampler_class: Callable[..., optuna.samplers.BaseSampler] = _SAMPLERS[name]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if not deprecations:
                warnings.simplefilter("ignore", FutureWarning)
            if name == "qmc":  # every sampler here takes seed=; qmc's independent sampler keeps the run's seed
                return sampler_class(seed=seed if design_seed is None else design_seed, **options,
                                     independent_sampler=optuna.samplers.RandomSampler(seed=seed))
            extra = {} if source_trials is None else {"source_trials": source_trials}
            return sampler_class(seed=seed, **options, **extra)
    except Exception as e:  # built from the spec's options alone: whatever it raises is about them
        field = _field(str(e), given)
        if field == "strategy":
            raise SpecError(field, f"invalid options for the {name} strategy: {e}") from None
        raise SpecError(field, f"the {name} strategy refuses it: {e}") from None


def _field(message: str, given: Mapping[str, Any]) -> str:
    """``strategy.<option>`` for the first of the spec's options that ``message`` names, else ``strategy``."""
    key = next((k for k in given if _names(message, k)), None)
    return "strategy" if key is None else f"strategy.{key}"


def _names(message: str, option: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(option)}(?![A-Za-z0-9_])", message) is not None


# Options Optuna deprecates under another's name: CmaEsSampler warns of inc_popsize as of `restart_strategy`
_DEPRECATED_WITH = {"inc_popsize": "restart_strategy"}


def _deprecation(message: str, given: Mapping[str, Any]) -> str:
    """A deprecation Optuna warned of building the sampler, as a warning of the spec at the option given that it
    names (``strategy.sigma0: Optuna says: ...``), or that it deprecates under another's name, which is then said."""
    named = [k for k in given if _names(message, k)]
    under = [k for k in given if k not in named and k in _DEPRECATED_WITH and _names(message, _DEPRECATED_WITH[k])]
    if named and under:
        return f"strategy.{named[0]}: {' and '.join(under)} deprecated with it; Optuna says: {message}"
    if under:
        return f"strategy.{under[0]}: deprecated with {_DEPRECATED_WITH[under[0]]}; Optuna says: {message}"
    return f"{_field(message, given)}: Optuna says: {message}"


def _fast_forward_qmc(study: optuna.Study, drawn: int) -> bool:
    """Count ``drawn`` points of the QMC sequence as drawn, so the next trial takes the point after them; False
    while the study cannot say which sequence that is (no trial yet: QMC's search space is inferred from them).

    QMCSampler keeps no public position: it counts the points it drew in the study's system attributes, keyed by
    its sequence (Optuna 5's ``qmc:<hash>``, the last point's index), and ``_find_sample_id`` reads the counter and
    stores it plus one. A resumed run's study is new and would draw from point 0 again: with ``scramble: false``
    (the seed unused) the first run's very configurations, under new numbers. Moving the counter through the
    sampler's own method keeps its key. These are Optuna internals (optuna is pinned below 6): a renamed method
    fails a resume loudly, and the loop is bounded whatever the key; the resume tests in tests/test_runner.py
    compare with an uninterrupted run. Idempotent: the counter only moves up to ``drawn``."""
    trials = study.get_trials(deepcopy=False)
    if not trials:
        return False
    sampler: Any = study.sampler
    space = sampler.infer_relative_search_space(study, trials[0])
    if not space:
        return False

    def last_drawn() -> int:
        attrs = study._storage.get_study_system_attrs(study._study_id)
        return max((v for k, v in attrs.items() if k.startswith("qmc:")), default=-1)

    for _ in range(drawn):
        if last_drawn() >= drawn - 1:
            break
        sampler._find_sample_id(study, space)
    return True


class OptunaStrategy:
    """Args:
        name: random | tpe | qmc | cmaes | gp | nsga2.
        space: the search space.
        directions: one per objective.
        seed: the sampler's seed.
        design_seed: qmc's sequence's seed instead of ``seed`` (the first run's on a resume, see
            ``seeding.design_seed``). Its independent sampler (trial 0, parameters outside the QMC search space:
            all of them while no trial completed) keeps ``seed``: seeded as the first run's, it would draw that
            run's configurations again.
        trials_recorded: trial numbers taken before this strategy (on a resume, every trial on record: lost and
            running ones too). qmc's trial 0 came from its independent sampler and trial ``n`` from at most point
            ``n - 1``, so the sequence goes on past ``trials_recorded - 1`` points (a lost trial is re-run with its
            own configuration, and its point must not go to a new trial as well). Other samplers ignore it.
        options: keyword arguments for the Optuna sampler (tunesmith's defaults filled in).
        constraints: set on each finished trial with Optuna's ``Trial.set_constraint`` (violation > 0:
            infeasible; a missing metric is a large violation); TPE, NSGA-II and GP search the feasible region.
    """

    def __init__(self, name: str, space: SearchSpace, directions: Sequence[Direction], seed: int,
                 options: dict[str, Any], constraints: Sequence[Constraint] = (),
                 objective_metrics: Sequence[str] = (), design_seed: int | None = None,
                 trials_recorded: int = 0) -> None:
        self.constraints = tuple(constraints)
        self.objective_metrics = tuple(objective_metrics)  # constraints may name an objective
        self.name = name
        self.space = space
        self.directions = tuple(directions)
        self.seed = seed
        self.design_seed = design_seed
        self._design_to_skip = max(0, trials_recorded - 1) if name == "qmc" else 0  # until the study can skip them
        self.options = options
        self._study: optuna.Study | None = None
        self._live: dict[int, optuna.Trial] = {}
        self._orders: dict[int, ReportOrder] = {}  # a live trial's steps, across attempts; its last report held
        self._distributions = {n: to_distribution(d) for n, d in space.domains.items()}
        # categoricals whose choices are equal under == (1, True, 1.0): Optuna gets their positions (to_distribution)
        self._by_position = {n: tuple(d.choices) for n, d in space.domains.items()
                             if isinstance(d, Categorical) and _equal_choices(d.choices)}
        self._source_trials: list[optuna.trial.FrozenTrial] | None = None   # cmaes's warm start, if any
        self._prior_is_first_population = False   # nsga2's warm start: the parent's trials are its generation 0
        self._asked = False                        # this study asked for a trial (replays are no longer the run's)
        self._generation_filled = (0, 0)          # nsga2's replay: the latest generation, its completed trials

    def transfer_prior(self, history: Sequence[TrialRecord]) -> PriorMode:
        """A re-tune's parent trials, on the old data (``drift.retune.prior: transfer``). Called once, before the
        first proposal; says how they were taken (measured in ``benchmarks/retune_samplers.py``):

        * ``cmaes``: TRANSFER. Warm Starting CMA-ES (Nomura, Watanabe, Akimoto, Ozaki and Onishi 2021; Optuna's
          ``source_trials``) draws the first generation from a Gaussian fitted to the parent's best 10% instead of
          the centre of the space with a sixth of its width; the new trials then move it as any generation's.
          NONE, and cmaes starts as usual, where that cannot apply: fewer than ``WARM_CMAES_MIN_TRIALS`` usable
          parent trials, a conditional space (CMA-ES's parameters are then whichever the new trials share,
          unknown before they run), or a user's ``sigma0`` or ``use_separable_cma`` (Optuna refuses either with it).
        * ``tpe`` with one objective and no constraints: REBASED. TPE has no prior to put them into; as
          observations shifted by the re-evaluated configurations' median change they took it to 99% of a cold
          run sooner than the re-evaluations alone. Constraints are left out because the parent's records hold no
          constraint metrics (every old trial would count as infeasible). Several objectives: measured and, by
          the rule declared before the run, not adopted (a rebased replay per objective was sooner to 99% of a
          cold run's hypervolume than the re-evaluations alone in 55 seeds and later in 10, but its median was
          half a trial later on the strongest move; benchmarks/RESULTS.md).
        * ``nsga2`` without constraints: REBASED, and the replayed trials (numbered below zero) are stamped
          NSGA-II's generation 0, so its first parent population is selected from them (with the first new trials
          while they are fewer than ``population_size``). Unstamped, Optuna's NSGA-II would leave them out of every
          population. Measured with two objectives (with one, not measured): sooner to 99% of a cold run's
          hypervolume than the re-evaluations alone in 22 seeds, later in 14, its median never above theirs
          (benchmarks/RESULTS.md; on the two larger moves still later in median than a cold run).
        * the others: NONE (the re-evaluations only)."""
        if self._study is None and self.name == "nsga2" and not self.constraints:
            self._prior_is_first_population = True
            return PriorMode.REBASED
        if self._study is not None or len(self.directions) != 1:
            return PriorMode.NONE
        if self.name == "tpe":
            return PriorMode.NONE if self.constraints else PriorMode.REBASED
        numeric: dict[str, BaseDistribution] = {
            n: d for n, d in self._distributions.items()
            if isinstance(d, FloatDistribution | IntDistribution) and not d.single()}
        if (self.name != "cmaes" or not numeric or self.space.is_conditional or "sigma0" in self.options
                or self.options.get("use_separable_cma")):
            return PriorMode.NONE
        source = [optuna.trial.create_trial(params={n: t.params[n] for n in numeric}, distributions=numeric,
                                            value=float(t.values[0]))
                  for t in history
                  if t.state is TrialState.COMPLETED and t.values and math.isfinite(t.values[0])
                  and all(n in t.params and self.space.domains[n].contains(t.params[n]) for n in numeric)]
        if len(source) < WARM_CMAES_MIN_TRIALS:
            return PriorMode.NONE
        self._source_trials = source
        return PriorMode.TRANSFER

    @property
    def study(self) -> optuna.Study:
        if self._study is None:
            sampler = build_sampler(self.name, self.options, self.options, self.seed, self.design_seed,
                                    source_trials=self._source_trials)
            self._study = optuna.create_study(
                sampler=sampler, directions=[d.value for d in self.directions],
                storage=optuna.storages.InMemoryStorage(),
            )
        return self._study

    def replay(self, history: Sequence[TrialRecord]) -> None:
        trials = []
        for t in history:
            if t.state not in _STATE or (t.state is TrialState.COMPLETED and t.values is None):
                continue
            generation = self._replayed_generation(t) if self.name == "nsga2" else None
            dists = {k: self._distributions[k] for k in t.params if k in self._distributions}
            trials.append(optuna.trial.create_trial(
                params={k: _as_sampled(dists[k], self._optuna_value(k, v)) if k in dists else v
                        for k, v in t.params.items()},
                distributions=dists, state=_STATE[t.state],
                values=list(t.values) if t.state is TrialState.COMPLETED and t.values else None,
                intermediate_values=_told_intermediate(t),
                constraints=(self._violations({**t.metrics,
                                               **dict(zip(self.objective_metrics, t.values or (), strict=False))})
                             if self.constraints and t.state is not TrialState.FAILED else None),
                system_attrs=None if generation is None else {_GENERATION_KEY: generation},
            ))
        if trials:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                self.study.add_trials(trials)

    def _replayed_generation(self, t: TrialRecord) -> int | None:
        """NSGA-II's generation for a replayed trial (None: in none of its populations). The parent experiment's
        trials (numbered below zero) are its generation 0 in a warm start. The run's own, replayed on a resume
        before this study asked for any: as Optuna stamped them when it asked for them (the latest generation, or
        the next once ``population_size`` trials of the latest have completed); unstamped, they were in no
        population and the resumed run started again at generation 0, drawn at random. Replayed in trial order
        as if each was asked once those before it had finished: exact for one worker; with several, Optuna put
        into a generation the trials asked while it filled, which the record does not say. A trial replayed later
        (another coordinator's, beside this study's own asks) stays unstamped."""
        if t.number < 0:
            generation = 0 if self._prior_is_first_population else None
        elif self._live or self._asked:
            generation = None
        else:
            latest, completed = self._generation_filled
            sampler = self.study.sampler
            assert isinstance(sampler, optuna.samplers.NSGAIISampler) and sampler.population_size is not None
            generation = latest + 1 if completed >= sampler.population_size else latest
        if generation is not None and t.state is TrialState.COMPLETED:
            latest, completed = self._generation_filled
            if generation > latest:
                self._generation_filled = (generation, 1)
            elif generation == latest:
                self._generation_filled = (latest, completed + 1)
        return generation

    def ask(self) -> Proposal | None:
        self._asked = True
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if self._design_to_skip and _fast_forward_qmc(self.study, self._design_to_skip):
                self._design_to_skip = 0
            trial = self.study.ask()
            params = self.space.sample_active(lambda name, dom: self._suggest(trial, name))
        self._live[trial.number] = trial
        return Proposal(trial.number, params)

    def adopt(self, params: dict[str, ParamValue]) -> Proposal:
        self.study.enqueue_trial({k: self._optuna_value(k, v) for k, v in params.items()}, skip_if_exists=False)
        proposal = self.ask()
        assert proposal is not None  # an enqueued trial is always returned
        return proposal

    def report(self, token: int, report: Report) -> None:
        trial = self._live.get(token)
        if trial is None or len(self.directions) > 1:  # Optuna keeps no intermediate values for several
            return
        # A step must increase (tunesmith.report_order, which the attempt applies and says), and here across the
        # trial's attempts: a retry starting over repeats steps Optuna has. Optuna would ignore a repeated one too,
        # but with a raw UserWarning on the user's stderr for each, --quiet or not.
        # The last accepted report is held (ReportOrder.last), and told Optuna only for a trial ending pruned: its
        # samplers read a trial's intermediate values only there, and only the last step's (TPE and CMA-ES score a
        # pruned trial by it). Optuna's in-memory storage copied the trial's whole dict of values at each report:
        # 20,000 reports cost seconds, growing with their square
        self._orders.setdefault(token, ReportOrder()).accept(report)

    def tell(self, token: int, state: TrialState, values: Sequence[float] | None,
             metrics: Mapping[str, float] | None = None) -> None:
        trial = self._live.pop(token, None)
        order = self._orders.pop(token, None)
        latest = order.last if order is not None else None
        if trial is None:
            return
        if state is TrialState.PRUNED and latest is not None:
            trial.report(latest.value, latest.step)
        if self.constraints and state is not TrialState.FAILED:
            for key, violation in self._violations(metrics or {}).items():
                trial.set_constraint(key, violation)
        if state is TrialState.COMPLETED and values is not None:
            self.study.tell(trial, list(values) if len(values) > 1 else values[0])
        elif state is TrialState.PRUNED:
            self.study.tell(trial, state=OptunaState.PRUNED)
        else:
            self.study.tell(trial, state=OptunaState.FAIL)


    def _violations(self, metrics: Mapping[str, float]) -> dict[str, float]:
        return {str(c): min(c.violation(metrics), MISSING_METRIC_VIOLATION) for c in self.constraints}

    def _suggest(self, trial: optuna.Trial, name: str) -> ParamValue:
        value = _suggest(trial, name, self._distributions[name])
        choices = self._by_position.get(name)
        return value if choices is None else choices[value]  # type: ignore[index]

    def _optuna_value(self, name: str, value: ParamValue) -> ParamValue:
        """``value`` as this study's distribution of ``name`` holds it: a categorical given by position, its
        position (the choice of the same type and value: True is not 1).

        Raises:
            SpaceError: at ``params.<name>``, a value of a categorical given by position that is none of its
                choices: passed on as it was, Optuna read it as a position (2 as the third choice).
        """
        choices = self._by_position.get(name)
        if choices is None:
            return value
        position = self.space.domains[name].grid_position(value, len(choices))
        if position is None:
            raise SpaceError(f"params.{name}", f"value {value!r} is not one of its choices {list(choices)!r} "
                                               "(a choice matches by value and type: True is not 1)")
        return position


def _told_intermediate(trial: TrialRecord) -> dict[int, float]:
    """What a replayed trial tells Optuna of its reports, as a live one does (OptunaStrategy.report): a pruned
    trial's last, the only one its samplers read; none of a trial that did not end pruned."""
    if trial.state is not TrialState.PRUNED or not trial.intermediate:
        return {}
    last = max(trial.intermediate, key=lambda r: r.step)
    return {last.step: last.value}


def to_distribution(dom: Float | Int | Categorical) -> BaseDistribution:
    if isinstance(dom, Float):
        return FloatDistribution(dom.low, dom.high, log=dom.log, step=dom.step)
    if isinstance(dom, Int):
        return IntDistribution(dom.low, dom.high, log=dom.log, step=dom.step)
    if _equal_choices(dom.choices):
        # Optuna holds a choice as its index, found with choices.index(value): with [1, True] every True was told
        # as 1, and TPE and GP converged on the worse of the two without ever seeing it. Given positions, they
        # tell each choice apart; the adapter maps them back (OptunaStrategy._suggest, _optuna_value)
        return CategoricalDistribution(tuple(range(len(dom.choices))))
    return CategoricalDistribution(dom.choices)


def _equal_choices(choices: Sequence[ParamValue]) -> bool:
    """Whether some choices are equal under == (1, True and 1.0; 0 and False): the space's own uniqueness check
    tells them apart by type, and keeps them as distinct choices."""
    return len(set(choices)) < len(choices)


def _as_sampled(dist: BaseDistribution, value: ParamValue) -> ParamValue:
    """A recorded stepped float as Optuna's samplers hold it: ``k * step + low`` unrounded (the record has the
    declared 0.3, the study had 0.30000000000000004), so a replayed study is the one the live run built."""
    if isinstance(dist, FloatDistribution) and dist.step is not None and isinstance(value, int | float) \
            and not isinstance(value, bool):
        return min(max(round((value - dist.low) / dist.step) * dist.step + dist.low, dist.low), dist.high)
    return value


def _suggest(trial: optuna.Trial, name: str, dist: BaseDistribution) -> ParamValue:
    if isinstance(dist, FloatDistribution):
        return float(trial.suggest_float(name, dist.low, dist.high, log=dist.log, step=dist.step))
    if isinstance(dist, IntDistribution):
        return int(trial.suggest_int(name, dist.low, dist.high, log=dist.log, step=dist.step))
    assert isinstance(dist, CategoricalDistribution)
    return trial.suggest_categorical(name, dist.choices)  # type: ignore[arg-type]
