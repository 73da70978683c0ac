"""Nested cross-validation of a task: an estimate of the whole tuning procedure, the run's own selection included."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from tunesmith.cost import executor_added
from tunesmith.errors import SpecError
from tunesmith.records import Direction, ObjectiveSpec, ParamValue, TrialRecord, TrialState
from tunesmith.spec.task_config import TaskConfig
from tunesmith.tasks.evaluate import BaseDir, cross_validate, prepare, summarize
from tunesmith.tasks.pipeline import build_pipeline
from tunesmith.tasks.splits import cv_splits

if TYPE_CHECKING:
    from tunesmith.constraints import Constraint
    from tunesmith.selection import SelectionRule
    from tunesmith.space.search_space import SearchSpace
    from tunesmith.strategy import StrategyDecision


def nested_estimate(task: TaskConfig, space: Any, strategy_name: str = "tpe", trials_per_fold: int = 10,
                    seed: int = 0, base_dir: BaseDir = None, *, selection: SelectionRule | None = None,
                    enqueue: Sequence[Mapping[str, ParamValue]] = ()) -> dict[str, Any]:
    """Nested cross-validation: an unbiased estimate of the whole tuning procedure.

    The development rows are split into ``task.nested.outer_folds`` outer folds (3 without ``task.nested``) of
    the task's CV kind. On each outer training part, a fresh tunesmith strategy runs ``trials_per_fold`` trials,
    each cross-validated with the task's CV on that part only and measured as a run's trial is; ``selection`` picks
    one of them as the run picks its trial (its constraints, ``select`` policy and ``exclude_unstable``; the
    strategy searches its objectives and is told its constraints, as the run's is; it evaluates the run's
    ``enqueue`` first, as the run's does, each counted in ``trials_per_fold``). The pick is refit on the outer
    training part and scored once on the outer test part. The holdout is not used.

    Args:
        space: a :class:`~tunesmith.space.SearchSpace` or a mapping of parameter name -> domain.
        selection: the run's :class:`~tunesmith.selection.SelectionRule`; without it, the task's metric alone,
            the best value picked (trials flagged unstable excluded when the task says so).
        enqueue: the run's known configurations (the spec's ``enqueue``), each inner search's first trials.

    Returns:
        ``nested_{metric}`` (mean of the outer scores), ``nested_{metric}_std``, ``outer_scores``,
        ``outer_best_params``, ``inner_best_scores`` (each pick's task metric), ``inner_picks`` (each pick's
        ``trial`` number, ``metrics`` and why it was picked), ``outer_folds``, ``trials_per_fold``, ``strategy`` (what
        the inner searches ran) and ``notes``, what they did unlike the run: ``ignored_constraints``, constraints on a
        metric only the executor adds (``cost``, ``cpu_s``, ``gpu_share``, ...), which inner trials cannot have, are
        left out; ``strategy_fallback``, a recorded strategy that cannot take the objectives is replaced by the one
        ``auto`` picks. When an outer fold's inner search has no selectable trial (none satisfies the constraints,
        or all are flagged unstable and excluded), the procedure ships nothing there, so there is no estimate:
        ``unavailable`` says why, and ``nested_{metric}`` is absent.

    Raises:
        SpecError: at ``task.nested``, when every inner trial of an outer fold failed.
    """
    from tunesmith.seeding import derive_seed
    from tunesmith.selection import SelectionRule, trial_metrics
    from tunesmith.space.search_space import SearchSpace
    from tunesmith.strategy import build_strategy
    from tunesmith.strategy.enqueued import enqueued_first

    rule = selection or SelectionRule((ObjectiveSpec(task.metric_name, Direction(task.direction)),),
                                      exclude_unstable=task.exclude_unstable)
    rule, ignored = _inner_rule(rule)
    search_space = space if isinstance(space, SearchSpace) else SearchSpace.from_domains(space)
    prep = prepare(task, base_dir)
    dev = prep.dev
    outer_cv = task.cv.model_copy(update={"folds": task.nested.outer_folds if task.nested else 3})
    if outer_cv.kind == "repeated":
        outer_cv = outer_cv.model_copy(update={"kind": None})
    outer = cv_splits(task, dev, prep.classification, outer_cv, path="task.nested")
    name = task.metric_name
    out: dict[str, Any] = {"outer_scores": [], "outer_best_params": [], "inner_best_scores": [], "inner_picks": [],
                           "outer_folds": len(outer), "trials_per_fold": trials_per_fold, "notes": []}
    if ignored:
        out["ignored_constraints"] = [str(c) for c in ignored]
        out["notes"].append(f"constraint(s) {', '.join(map(str, ignored))} not applied to the inner trials: the "
                            "executor measures their metric, and inner trials run in this process, unmeasured")
    decision = _inner_decision(strategy_name, search_space, trials_per_fold, rule, out)
    for k, (o_train, o_test) in enumerate(outer):
        part = dev.subset(o_train)
        inner = cv_splits(task, part, prep.classification, path="task.cv")
        strategy = enqueued_first(build_strategy(decision, search_space, [o.direction for o in rule.objectives],
                                                 derive_seed(seed, "nested", k), 1, constraints=rule.constraints,
                                                 objective_metrics=[o.metric for o in rule.objectives]), enqueue)
        strategy.replay([])
        trials: list[TrialRecord] = []
        for t in range(trials_per_fold):
            proposal = strategy.ask()
            if proposal is None:
                break
            trial_seed = derive_seed(seed, "nested", k, t)
            try:
                folds = cross_validate(task, part, inner, proposal.params, trial_seed, prep.scorer, base_dir=base_dir)
                metrics = summarize(task, folds, part)
            except Exception:  # noqa: BLE001 - a configuration that cannot fit fails that trial, as in the search
                strategy.tell(proposal.token, TrialState.FAILED, None)
                continue
            values = tuple(metrics.get(o.metric, math.nan) for o in rule.objectives)
            if not all(math.isfinite(v) for v in values):
                strategy.tell(proposal.token, TrialState.FAILED, None)
                continue
            record = TrialRecord(t, TrialState.COMPLETED, dict(proposal.params), trial_seed, values, metrics)
            trials.append(record)
            strategy.tell(proposal.token, TrialState.COMPLETED, values, trial_metrics(record, rule.objectives))
        if not trials:
            raise SpecError("task.nested", f"every inner trial of outer fold {k} failed; check the task on its own")
        picked = rule.pick(trials)
        if picked is None:
            out["unavailable"] = (f"outer fold {k}: none of its {len(trials)} completed inner trials is selectable "
                                  f"under the run's selection ({_rule_text(rule)}), so the procedure ships nothing "
                                  "there; raise task.nested.trials or loosen the constraints")
            return out
        best = picked.trial
        model = build_pipeline(task, dict(best.params), derive_seed(seed, "nested", k, "refit"), base_dir, data=part)
        model.fit(part.X, part.y)
        out["outer_scores"].append(float(prep.scorer(model, dev.X[o_test], dev.y[o_test])))
        out["outer_best_params"].append(dict(best.params))
        out["inner_best_scores"].append(float(best.metrics[name]))
        out["inner_picks"].append({"trial": best.number, "metrics": dict(best.metrics), "reason": picked.reason})
    return {f"nested_{name}": float(np.mean(out["outer_scores"])),
            f"nested_{name}_std": float(np.std(out["outer_scores"])), **out}


def _inner_rule(rule: SelectionRule) -> tuple[SelectionRule, tuple[Constraint, ...]]:
    """The run's rule less the constraints on a metric only the executor measures (``cost``, ``cpu_s``, ...): an
    inner trial is cross-validated here, never run by an executor, so it has no such metric and no inner trial
    would be selectable. Those constraints are left out (and said so), the others kept."""
    ignored = tuple(c for c in rule.constraints if executor_added(c.metric))
    if not ignored:
        return rule, ()
    kept = tuple(c for c in rule.constraints if not executor_added(c.metric))
    return replace(rule, constraints=kept), ignored


def _inner_decision(strategy_name: str, space: SearchSpace, trials: int, rule: SelectionRule,
                    out: dict[str, Any]) -> StrategyDecision:
    """The inner searches' strategy. A spec given anew is refused one that cannot take the run's objectives
    (``check_nested_strategy``), but an experiment recorded before that check (``bo`` with two objectives) still
    resumes: its inner searches then run the strategy ``auto`` picks, said in ``strategy_fallback``, rather than
    failing the run at its end and losing the holdout recorded with the estimate."""
    from tunesmith.strategy import decide

    try:
        decision = decide(strategy_name, {}, space, trials, len(rule.objectives), 1, constrained=bool(rule.constraints))
    except SpecError as e:
        decision = decide("auto", {}, space, trials, len(rule.objectives), 1, constrained=bool(rule.constraints))
        out["strategy_fallback"] = (f"task.nested.strategy {strategy_name!r} cannot run the inner searches "
                                    f"({e.message}); they ran {decision.name}, the strategy auto picks")
        out["notes"].append(out["strategy_fallback"])
    out["strategy"] = decision.name
    return decision


def _rule_text(rule: SelectionRule) -> str:
    said = [f"constraints {', '.join(map(str, rule.constraints))}"] if rule.constraints else []
    if rule.exclude_unstable:
        said.append("trials flagged unstable excluded")
    return "; ".join(said) or "no constraints"
