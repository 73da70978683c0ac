"""How results are presented: the JSON of `show` and `trials`, and CSV rows. One shape for CLI and Python."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tunesmith.budget import spend_summary
from tunesmith.records import ExperimentRecord, Lineage, ObjectiveSpec, TrialRecord, TrialState
from tunesmith.selection import (Selection, best_eligible, completed, pareto_front, select_trial,
                                 unrecorded_constraint)
from tunesmith.storage.base import Event, TrialStore
from tunesmith.spec.loader import spec_from_dict
from tunesmith.spec.model import ExperimentSpec, Objective
from tunesmith.spec.task_config import TASK_MEASURED
from tunesmith.strategy.warm_start import legacy_mode

if TYPE_CHECKING:
    from tunesmith.constraints import Constraint
    from tunesmith.scheduler.evidence import RestartedChild


def objectives_of(experiment: ExperimentRecord) -> tuple[ObjectiveSpec, ...]:
    """The objectives of a stored spec (validated when it was stored: only this part is read back)."""
    return tuple(Objective.model_validate(o).to_record() for o in experiment.spec["objective"])


def exclude_unstable_of(experiment: ExperimentRecord) -> bool:
    """Whether the stored spec's task keeps configurations flagged unstable out of selection."""
    return bool((experiment.spec.get("task") or {}).get("exclude_unstable", False))


def best_of(experiment: ExperimentRecord, trials: Sequence[TrialRecord]) -> TrialRecord | None:
    """The best trial a stored experiment's selection may pick: within its constraints, and stable where its task
    asks (what `show` calls best; the Python API's, the cycle's and the drift check's too)."""
    spec = spec_from_dict(experiment.spec, recorded=True)
    return best_eligible(trials, spec.objectives, exclude_unstable_of(experiment), spec.constraints)


def selection_of(experiment: ExperimentRecord, trials: Sequence[TrialRecord]) -> Selection | None:
    """The trial a stored experiment's ``select`` policy picks from its feasible Pareto front (what `show`
    reports and promotion ships); None when no completed trial satisfies the constraints."""
    spec = spec_from_dict(experiment.spec, recorded=True)
    return select_trial(trials, spec.objectives, spec.constraints, spec.select, exclude_unstable_of(experiment))


def front_of(trials: Sequence[TrialRecord], objectives: Sequence[ObjectiveSpec], constraints: Sequence[Constraint],
             selection: Selection | None) -> list[TrialRecord]:
    """The Pareto front `show` reports and ``ExperimentResult.pareto`` returns: the one the selection picked from
    (the trials that satisfy the constraints, stable ones for a task), else, with no constraint, every completed
    trial's; with constraints no trial meets, none."""
    if selection is not None:
        return list(selection.front)
    return pareto_front(trials, objectives) if not constraints else []


def status_said(status: str, counts: Mapping[str, int]) -> str:
    """An experiment's status as `show` and `ls` say it: a run that ended with trials, every one of them failed,
    is ``completed (every trial failed)`` (the runner records it completed: it ran to its budget; `run` exits 1
    saying every trial failed), not a plain ``completed`` beside a count of 0 completed. ``counts``: trials by
    state value."""
    ended = sum(counts.get(s.value, 0) for s in (TrialState.COMPLETED, TrialState.PRUNED, TrialState.FAILED))
    if status != "running" and ended and counts.get(TrialState.FAILED.value, 0) == ended:
        return f"{status} (every trial failed)"
    return status


def experiment_summary(experiment: ExperimentRecord, trials: Sequence[TrialRecord]) -> dict[str, Any]:
    """The JSON of `tunesmith show`: status, counts by state, best trial, Pareto front (several objectives)."""
    spec = spec_from_dict(experiment.spec, recorded=True)
    objectives = spec.objectives
    counts = {s.value: 0 for s in TrialState}
    for t in trials:
        counts[t.state.value] += 1
    ended = counts["completed"] + counts["pruned"] + counts["failed"]
    best = best_of(experiment, trials)
    selection = select_trial(trials, objectives, spec.constraints, spec.select, exclude_unstable_of(experiment))
    durations = [t.duration_s for t in trials if t.duration_s is not None and t.state.is_finished()]
    return {
        "name": experiment.name,
        "status": experiment.status.value,
        **({"status_said": said} if (said := status_said(experiment.status.value, counts)) != experiment.status.value
           else {}),
        "objectives": [{"metric": o.metric, "direction": o.direction.value} for o in objectives],
        "strategy": {"name": experiment.strategy, "reason": experiment.strategy_reason},
        "trials": counts,
        "total_trials": len(trials),
        "failure_rate": round(counts["failed"] / ended, 4) if ended else 0.0,
        "best": _brief(best, objectives) if best else None,
        "pareto": ([_brief(t, objectives) for t in front_of(trials, objectives, spec.constraints, selection)]
                   if len(objectives) > 1 else []),
        **_selection_summary(spec, trials, selection),
        **_cost_summary(experiment, spec, trials),
        "scheduler": _scheduler_summary(spec, trials),
        **_task_summary(experiment, spec, trials, selection),
        "trial_time_s": {"total": round(sum(durations), 3),
                         "mean": round(sum(durations) / len(durations), 4) if durations else None},
        "created_at": experiment.created_at,
        "updated_at": experiment.updated_at,
        "seed": experiment.spec.get("seed"),
        "workdir": experiment.spec.get("workdir"),
        **{k: experiment.attributes[k] for k in ("lineage", "retunes") if k in experiment.attributes},
        **({"warm_start": _warm_start_brief(experiment.attributes["warm_start"], experiment.strategy)}
           if "warm_start" in experiment.attributes else {}),
    }


@dataclass(frozen=True)
class ShownExperiment:
    """What `show` reads of one experiment: ``summary`` is the JSON it prints (`show --json`, and
    ``ExperimentResult.summary()``, one function for both so that they cannot drift apart); ``restarted`` the PBT
    children behind its ``scheduler.restarted_children``, which the text warns about in words."""

    summary: dict[str, Any]
    restarted: tuple[RestartedChild, ...]


def shown_experiment(store: TrialStore, experiment: ExperimentRecord, trials: Sequence[TrialRecord],
                     now: float) -> ShownExperiment:
    """:func:`experiment_summary` and what the experiment's event log and the store add to it: why the run stopped
    (``stop_reason``), each fingerprint of the data its trials ran on (``data_fingerprints``), a run nothing runs
    (``abandoned``, judged at ``now``) or one waiting on a quota slot (``quota_wait``), the reproducibility index,
    and the scheduler's evidence (``ran_past_their_stop``, ``restarted_children``)."""
    from tunesmith.audit import AuditKind
    from tunesmith.coordinators import run_abandoned
    from tunesmith.data_history import data_epochs
    from tunesmith.quotas import open_quota_wait
    from tunesmith.records import RunStatus
    from tunesmith.reproduce import reproducibility_index

    summary = experiment_summary(experiment, trials)
    run_events = store.events(experiment.id)
    matched, reproduced = reproducibility_index(run_events)
    if reproduced:  # `tunesmith reproduce` was run: share of re-runs that matched their record
        summary["reproducibility"] = {"matched": matched, "reproduced": reproduced, "index": matched / reproduced}
    abandoned = run_abandoned(store, experiment, now, events=run_events, trials=trials)
    wait = open_quota_wait(run_events) if experiment.status is RunStatus.RUNNING and not abandoned else None
    if wait is not None:  # a run that starts nothing is waiting, not hanging
        summary["quota_wait"] = {"key": wait.key, "limit": wait.limit, "in_use": wait.in_use, "since": wait.since}
    elif abandoned:
        summary["abandoned"] = True  # recorded as running, and nothing runs it (a killed waiter's wait included)
    if summary["scheduler"] and (past := ran_past_their_stop(trials, run_events)):
        summary["scheduler"]["ran_past_their_stop"] = past  # early stopping that saved nothing says why
    if summary.get("data_fingerprint"):  # each fingerprint its trials ran on: a resume may have found the data changed
        summary["data_fingerprints"] = [e.to_json() for e in data_epochs(experiment.attributes, run_events, trials)]
    restarted = restarted_children(trials, run_events) if summary["scheduler"] else []
    if restarted:  # PBT children that ignored their parent's checkpoint
        summary["scheduler"]["restarted_children"] = [c.to_json() for c in restarted]
    # `run` said it once; a later look says it again. The run's end is told by the status it records, then by
    # run_ended; a run stopped by an error (a workdir that took no folder) records only the status: take the last
    stopped = {AuditKind.RUN_ENDED, AuditKind.RUN_COMPLETED, AuditKind.RUN_INTERRUPTED, AuditKind.RUN_FAILED}
    ended = [e for e in run_events if e.kind in stopped and e.payload.get("reason")]
    if ended and experiment.status is not RunStatus.RUNNING:
        summary["stop_reason"] = ended[-1].payload["reason"]
    return ShownExperiment(summary, tuple(restarted))


def _selection_summary(spec: ExperimentSpec, trials: Sequence[TrialRecord],
                       selection: Selection | None) -> dict[str, Any]:
    """The trial the spec's select policy picks from the feasible Pareto front, and why (absent when the spec
    sets neither constraints nor a policy and has one objective: then it is simply ``best``)."""
    if not spec.constraints and spec.select.policy == "best" and len(spec.objective) == 1:
        return {}
    out: dict[str, Any] = {"constraints": [str(c) for c in spec.constraints]}
    if selection is None:  # (select_trial picks none only when no completed trial satisfies the constraints)
        done = completed(trials)
        why = "no completed trial satisfies the constraints" + unrecorded_constraint(done, spec.objectives,
                                                                                      spec.constraints)
        out["selected"] = None if not done else {"number": None, "policy": spec.select.policy, "reason": why}
        out["feasible_trials"] = 0  # present whatever the count: absent said nothing a reader could rely on
        return out
    out["selected"] = selection.to_json()
    out["feasible_trials"] = selection.feasible_trials
    return out


def _cost_summary(experiment: ExperimentRecord, spec: ExperimentSpec, trials: Sequence[TrialRecord]) -> dict[str, Any]:
    """Money: spent, burn rate per hour, projected total at the current rate, and the prices a trial was charged at
    (specs with a cost section)."""
    prices = spec.prices()
    if prices is None:
        return {}
    starts = [t.started_at for t in trials if t.started_at is not None]
    ends = [t.finished_at for t in trials if t.finished_at is not None]
    hours = (max(ends) - min(starts)) / 3600 if starts and ends else 0.0
    finished = experiment.status.value != "running"
    return {"cost": {**spend_summary(trials, spec.budget, hours, finished).to_json(), "prices": prices.to_json()}}


def _warm_start_brief(warm: dict[str, Any], strategy: str | None) -> dict[str, Any]:
    """A re-tune's warm start without its list of prior trials (`show` names their count). ``taken_as``: how its
    strategy took them (``mode`` transfer: bo's prior mean, cmaes's start, tpe's re-based replay, or none); a
    record from before 2026-12-05 did not say, and then only bo took a transfer prior."""
    mode = legacy_mode(warm).value
    taken = warm.get("taken_as") or (mode if mode != "transfer" or strategy == "bo" else "none")
    return {"source": warm.get("source"), "first": warm.get("first", []), "prior": len(warm.get("prior", [])),
            "mode": mode, "taken_as": taken}


def task_summary(experiment: ExperimentRecord, trials: Sequence[TrialRecord]) -> dict[str, Any]:
    """The built-in task's part of :func:`experiment_summary` (``task``, ``holdout``, ``cv_optimism``, ``nested``,
    ``data_fingerprint``; empty without a task): what :func:`holdout_lines` says, for `run`'s end, which needs not
    the rest (the Pareto front, cost, the scheduler's resources over every trial)."""
    spec = spec_from_dict(experiment.spec, recorded=True)
    if spec.task is None:
        return {}
    selection = select_trial(trials, spec.objectives, spec.constraints, spec.select, exclude_unstable_of(experiment))
    return _task_summary(experiment, spec, trials, selection)


def _task_summary(experiment: ExperimentRecord, spec: ExperimentSpec, trials: Sequence[TrialRecord],
                  selection: Selection | None) -> dict[str, Any]:
    """For built-in tasks: the selected trial's cross-validation, the holdout score (never seen by the search), the
    nested estimate, the data."""
    if spec.task is None:
        return {}
    attrs = experiment.attributes
    return {
        "task": {"metric": spec.task.metric_name, "direction": spec.task.direction, "cv": spec.task.cv.kind,
                 "unstable_trials": sum(1 for t in trials if t.metrics.get("unstable")),
                 "exclude_unstable": spec.task.exclude_unstable, "unstable_spread": spec.task.unstable_spread,
                 "selected_cv": _selected_cv(spec, trials, selection)},
        "holdout": attrs.get("holdout"),
        "cv_optimism": cv_optimism(spec, trials, attrs.get("holdout")),
        "nested": attrs.get("nested"),
        "data_fingerprint": attrs.get("data_fingerprint"),
    }


def _selected_cv(spec: ExperimentSpec, trials: Sequence[TrialRecord],
                 selection: Selection | None) -> dict[str, Any] | None:
    """The cross-validation of the trial selection picks (what the holdout scores and promote ships): its mean, fold
    spread and fold scores, what the task measured of it (latency, size, fit time) and whether it is flagged
    unstable; then ``stable_pick``, the trial a selection that excludes unstable ones picks (None: no stable trial)."""
    assert spec.task is not None
    if selection is None:
        return None
    trial, metric = selection.trial, spec.task.metric_name
    scores = {**trial.metrics, **(trial.value_map(spec.objectives) or {})}  # latency may be an objective
    folds = sorted((k for k in scores if k.startswith("fold_") and k[5:].isdigit()), key=lambda k: int(k[5:]))
    out: dict[str, Any] = {"trial": trial.number, "mean": scores.get(metric), "std": scores.get(f"{metric}_std"),
                           "folds": [scores[k] for k in folds], "unstable": bool(scores.get("unstable")),
                           **{k: scores[k] for k in (*TASK_MEASURED, "fit_time_s") if k in scores}}
    if out["unstable"]:
        stable = select_trial(trials, spec.objectives, spec.constraints, spec.select, exclude_unstable=True)
        out["stable_pick"] = stable.trial.number if stable is not None else None
    return out


def evaluation_lines(summary: Mapping[str, Any]) -> list[str]:
    """`show`'s and the report's lines on what a task measured of the selected trial (plain text: the caller
    escapes it): its CV mean ± fold spread and fold scores, whether it is flagged unstable and what a stable
    selection would pick, its latency, size and fit time; then how many trials are flagged unstable."""
    task = summary.get("task")
    if not task:
        return []
    lines, cv, metric = [], task.get("selected_cv"), task["metric"]
    if cv and cv["mean"] is not None:
        spread = f" ± {cv['std']:.4f}" if cv["std"] is not None else ""
        lines.append(f"cv ({task['cv']}) of trial {cv['trial']}: {metric} {cv['mean']:.4f}{spread} over "
                     f"{len(cv['folds'])} folds {[round(f, 4) for f in cv['folds']]}")
        if cv["unstable"]:
            lines.append("  " + unstable_text(task, cv))
        if "latency_p50_ms" in cv:  # (each part only where recorded: a trial measured before p95 was has none)
            p95 = f", p95 {cv['latency_p95_ms']:.3f} ms" if "latency_p95_ms" in cv else ""
            size = f"; model size {cv['model_size_bytes'] / 1024:.1f} KiB" if "model_size_bytes" in cv else ""
            fit = f"; fit {cv['fit_time_s']:.3f} s" if "fit_time_s" in cv else ""
            lines.append(f"prediction latency p50 {cv['latency_p50_ms']:.3f} ms{p95} per row{size}{fit}")
    if task["unstable_trials"]:
        lines.append(f"unstable configurations (fold spread over the threshold): {task['unstable_trials']}"
                     f"{', excluded from selection' if task['exclude_unstable'] else ''}")
    return lines


def unstable_text(task: Mapping[str, Any], cv: Mapping[str, Any]) -> str:
    """Why the selected trial is flagged unstable, and what a selection excluding unstable trials picks instead."""
    spread = f"its fold spread {cv['std']:.4f}" if cv["std"] is not None else "its fold spread"
    over = f" is over unstable_spread {task['unstable_spread']:g}" if task.get("unstable_spread") is not None else ""
    pick = cv.get("stable_pick")
    instead = (f"exclude_unstable: true would select trial {pick}" if pick is not None
               else "no stable trial is left to select")
    return f"the selected trial {cv['trial']} is flagged unstable: {spread}{over}; {instead}"


def holdout_lines(summary: Mapping[str, Any]) -> list[str]:
    """`show`'s, `run`'s and the report's lines on a task's honest estimates (plain text: the caller escapes it):
    the holdout score of the trial promote ships, its gap to the CV score, and the nested estimate with its cost."""
    from tunesmith.cost import money

    task = summary.get("task")
    if not task:
        return []
    lines, metric = [], task["metric"]
    holdout = summary.get("holdout")
    if holdout:
        score, rows = float(holdout.get("holdout_" + metric, float("nan"))), int(holdout.get("holdout_rows", 0))
        why = why_holdout_undefined(holdout, metric)  # a NaN score is no number to print to four places
        on = f"on {rows} row{'' if rows == 1 else 's'}"
        # a promotion of another trial (`promote --trial N`) is what is served: `show` adds it as "served"
        other = next((s for s in summary.get("served", ()) if s.get("trial") != holdout["trial"]), None)
        ships = ("the model promote ships" if other is None else f"the model promote ships without --trial; model "
                 f"{other['model_name']} serves trial {other['trial']}")
        lines.append(f"holdout {metric} of trial {holdout['trial']} ({ships}, scored on rows the "
                     "search never saw): "
                     + (f"{score:.4f} {on}" if why is None else f"undefined ({score}) {on}: {why}"))
        if (o := summary.get("cv_optimism")) is not None:
            against = f"its cv {o['cv']:.4f} against holdout {o['holdout']:.4f}: " if o["gap"] is not None else ""
            lines.append(f"  {against}{gap_text(o)}")
    nested = summary.get("nested")
    if nested and nested.get("unavailable"):
        lines.append(f"nested CV estimate of the whole tuning procedure: not available: {nested['unavailable']}")
    elif nested:
        lines.append("nested CV estimate of the whole tuning procedure: "
                     f"{nested.get('nested_' + metric, float('nan')):.4f} "
                     f"± {nested.get('nested_' + metric + '_std', float('nan')):.4f}")
    if nested and "duration_s" in nested:  # recorded since the estimate was measured; older ones lack it
        priced = f", cost {money(nested['cost'])}" if "cost" in nested else ""
        lines.append(f"  its inner searches took {nested['duration_s']:.1f} s ({nested['cpu_s']:.1f} CPU-s{priced}) "
                     "after the run, in the coordinator: not in the trials' spend")
    lines += [f"  {note}" for note in (nested or {}).get("notes", [])]
    return lines


def cv_optimism(spec: ExperimentSpec, trials: Sequence[TrialRecord],
                holdout: dict[str, Any] | None) -> dict[str, Any] | None:
    """How much better the CV score of the trial scored on the holdout looks than its holdout score: ``gap`` is CV
    minus holdout for a maximised metric and holdout minus CV for a minimised one, so a positive gap always means
    the CV figure was optimistic and a negative one that it was pessimistic. None without a holdout score. A score
    that is undefined (NaN: one class only in the holdout, for ROC AUC) leaves ``gap`` None and ``why_no_gap`` says
    why: every comparison with NaN is false, and its gap read as "CV and holdout agree". ``fold_std``, where the
    trial recorded it: the standard deviation of its fold scores, the yardstick :func:`gap_text` reads the gap by."""
    assert spec.task is not None
    metric = spec.task.metric_name
    if not holdout or f"holdout_{metric}" not in holdout:
        return None
    trial = next((t for t in trials if t.number == holdout.get("trial")), None)
    scores = {**trial.metrics, **(trial.value_map(spec.objectives) or {})} if trial is not None else {}
    if metric not in scores:
        return None
    cv, held = float(scores[metric]), float(holdout[f"holdout_{metric}"])
    out: dict[str, Any] = {"trial": holdout.get("trial"), "metric": metric, "direction": spec.task.direction,
                           "cv": cv, "holdout": held}
    if (why := why_holdout_undefined(holdout, metric)) is not None:
        return {**out, "gap": None, "why_no_gap": f"the holdout {metric} is undefined ({held}): {why}"}
    if not math.isfinite(cv):
        return {**out, "gap": None, "why_no_gap": f"the CV {metric} of trial {out['trial']} is {cv}"}
    # the yardstick a verdict needs: a gap smaller than the folds' own spread says nothing either way
    spread = scores.get(f"{metric}_std")
    if isinstance(spread, int | float) and math.isfinite(spread):
        out["fold_std"] = float(spread)
    return {**out, "gap": cv - held if spec.task.direction == "maximize" else held - cv}


def best_text(best: Mapping[str, Any], first: str = "") -> str:
    """`show`'s and the report's best line, from the summary's ``best``: values as the table prints them, params as
    ``name=value`` (a Python dict's repr printed ``{'loss': 1.0}`` beside the table's ``1``)."""
    values = ", ".join(f"{k} {v:.6g}" for k, v in best["values"].items())
    params = ", ".join(f"{k}={v}" for k, v in best["params"].items())
    return f"best{first}: trial {best['number']} ({values}) with {params or 'no parameters'}"


def why_holdout_undefined(holdout: Mapping[str, Any] | None, metric: str) -> str | None:
    """Why the recorded holdout score is no number (NaN: one class only in the holdout, for ROC AUC): the library's
    warnings as the run recorded them (``why_undefined``; a run before they were recorded gives none); None when
    it is a number, or there is none."""
    score = (holdout or {}).get(f"holdout_{metric}")
    if score is None or math.isfinite(float(score)):
        return None
    return "; ".join((holdout or {}).get("why_undefined") or ["no reason was recorded"])


def gap_text(optimism: dict[str, Any]) -> str:
    """The gap in words, its sign read for the metric's direction (`show` and the report say the same); no verdict
    when there is no gap (a score undefined)."""
    gap = optimism["gap"]
    if gap is None:
        return f"no CV/holdout gap: {optimism['why_no_gap']}"
    better = "higher" if optimism["direction"] == "maximize" else "lower"
    spread = optimism.get("fold_std")
    if spread is not None and 0 < abs(gap) <= spread:
        how = (f"within the spread of the fold scores (std {spread:.4f}): no sign that the CV figure was "
               f"{'optimistic' if gap > 0 else 'pessimistic'}")
    else:
        how = ("the CV figure was optimistic" if gap > 0 else "the CV figure was pessimistic" if gap < 0
               else "CV and holdout agree")
        if spread and gap:
            how += f" ({abs(gap) / spread:.1f} times the std of the fold scores, {spread:.4f})"
    return (f"gap {gap:+.4f} ({optimism['metric']}, {better} is better; positive: CV looked better than the "
            f"holdout): {how}")


def _scheduler_summary(spec: ExperimentSpec, trials: Sequence[TrialRecord]) -> dict[str, Any] | None:
    """Which scheduler ran and the resources it saved against running every trial to the end (``max_resource``, or
    the completed trials' length past it: see scheduler.resources); ``length_warning`` when ``max_resource`` does
    not fit the trials (:meth:`~tunesmith.scheduler.resources.ResourceTally.mismatch`)."""
    if spec.scheduler.name == "none":
        return None
    from tunesmith.scheduler import resource_summary
    from tunesmith.scheduler.resources import length_parameters

    max_resource = getattr(spec.scheduler, "max_resource", None)
    resources = resource_summary(trials, max_resource, length_parameters(spec.space, max_resource))
    out: dict[str, Any] = {"name": spec.scheduler.name, "resources": resources.to_json()}
    if (warning := resources.length_warning(spec.scheduler.name)) is not None:
        out["length_warning"] = warning
    return out


def reads_curves(experiment: ExperimentRecord) -> bool:
    """Whether `show`'s summary (and `metrics`' figures) of ``experiment`` need its trials' learning curves: only
    early stopping's figures read them (steps used and saved, pruned trials that ran past their stop, PBT children
    that restarted, no report at all), so only under a scheduler. Else the trials are read without their reports,
    most of what a long run stores (100 a trial: `show` of 6,705 trials spent 4 s and 270 MB reading them)."""
    return (experiment.spec.get("scheduler") or {}).get("name", "none") != "none"


def scheduler_without_reports(experiment: ExperimentRecord, trials: Sequence[TrialRecord]) -> str | None:
    """Why early stopping did nothing, when a scheduler is set and no finished trial reported a single intermediate
    value (a command's step lines without the objective's metric, or a float step, are not reports); else None."""
    scheduler = experiment.spec.get("scheduler") or {}
    ended = [t for t in trials if t.state in (TrialState.COMPLETED, TrialState.PRUNED)]
    if scheduler.get("name", "none") == "none" or not ended or any(t.intermediate for t in ended):
        return None
    metric = objectives_of(experiment)[0].metric
    return (f"no trial reported an intermediate value, so the {scheduler['name']} scheduler had nothing to stop trials "
            f"on: a function trial calls trial.report(step, value); a command prints a JSON line with an integer "
            f"\"step\" and \"{metric}\" (or \"value\"), e.g. {{\"step\": 3, \"{metric}\": 0.42}}")


def ran_past_their_stop(trials: Sequence[TrialRecord], events: Sequence[Event]) -> list[int]:
    """Pruned trials that went on reporting after the step the scheduler stopped them at: their function does not
    return when ``trial.should_prune()`` turns true (a function trial cannot be stopped from outside), so stopping
    them saved nothing. Read from the ``trial_prune_requested`` events (the step of the stop)."""
    stopped_at: dict[int, int] = {}
    for e in events:
        if e.kind == "trial_prune_requested" and e.trial_number is not None and "step" in e.payload:
            stopped_at[e.trial_number] = e.payload["step"]
    return [t.number for t in trials if t.state is TrialState.PRUNED and t.number in stopped_at and t.intermediate
            and t.intermediate[-1].step > stopped_at[t.number]]


def restarted_children(trials: Sequence[TrialRecord], events: Sequence[Event]) -> list[RestartedChild]:
    """PBT children that trained from scratch: their first report is well below the step their parent had reached
    (their code does not resume from ``trial.load_checkpoint()``). Read from the ``trial_exploited`` events."""
    from tunesmith.scheduler.evidence import restarted_child

    lineage = {e.trial_number: Lineage.from_json(e.payload) for e in events
               if e.kind == "trial_exploited" and e.trial_number is not None}
    if not lineage:
        return []
    found = (restarted_child(t, lineage.get(t.number)) for t in trials)
    return [c for c in found if c is not None]


def _brief(t: TrialRecord, objectives: Sequence[ObjectiveSpec]) -> dict[str, Any]:
    return {"number": t.number, "params": dict(t.params), "values": t.value_map(tuple(objectives)),
            "metrics": dict(t.metrics), "duration_s": t.duration_s}


def trials_json(experiment: ExperimentRecord, trials: Sequence[TrialRecord],
                events: Sequence[Event] = ()) -> list[dict[str, Any]]:
    """One JSON object per trial. Given the event log, each also carries ``earlier_attempts`` (why each earlier
    attempt ended: a retried crash, a coordinator that died, a stop that interrupted it before `resume` re-ran it)
    and, for a trial PBT started from another, ``lineage``.
    """
    objectives = objectives_of(experiment)
    rows = [t.to_json(objectives) for t in trials]
    lineage = lineage_from_events(events)
    attempts = {t.number: t.attempts for t in trials}
    history: dict[int, list[dict[str, Any]]] = {}
    for e in events:
        if e.trial_number is None or not _ended_an_earlier_attempt(e, attempts.get(e.trial_number, 0)):
            continue
        told = history.setdefault(e.trial_number, [])
        if all(a["attempt"] != e.payload.get("attempt") for a in told):  # a retry waiting, then interrupted: once
            told.append({"attempt": e.payload.get("attempt"), "error": e.payload.get("error"), "at": e.at})
    for row in rows:
        row["earlier_attempts"] = history.get(row["number"], [])
        if row["number"] in lineage:
            row["lineage"] = dict(lineage[row["number"]])
    return rows


def _ended_an_earlier_attempt(event: Event, attempts: int) -> bool:
    """Whether ``event`` tells why an attempt before the trial's latest (of ``attempts``) ended: a retry or a lost
    attempt, whatever came after; an interrupted one once a later attempt ran (the latest, interrupted, is the
    trial's own state and error). Not a lost attempt that never began (queued for a worker as its coordinator
    died): it was taken back, and its re-run is that attempt."""
    if event.kind == "trial_retry":
        return True
    if event.kind == "trial_lost":
        return event.payload.get("began", True) is not False
    return event.kind == "trial_interrupted" and (event.payload.get("attempt") or attempts) < attempts


def lineage_from_events(events: Sequence[Event]) -> dict[int, dict[str, Any]]:
    """Trial number -> {parent, step, params_before, params_after} for trials a scheduler started from another."""
    return {e.trial_number: {k: e.payload.get(k) for k in ("parent", "step", "params_before", "params_after")}
            for e in events if e.kind == "trial_exploited" and e.trial_number is not None}


CSV_TAIL = ("attempts", "duration_s", "error", "intermediate", "failure_kind", "seed", "log_path")


def trials_csv(experiment: ExperimentRecord, trials: Sequence[TrialRecord]) -> str:
    """One row per trial: number, state, one column per objective, per parameter, per metric; then the rest, as
    ``trials --json`` has them (new columns go last: a reader by position keeps its columns)."""
    objectives = objectives_of(experiment)
    rows = trials_json(experiment, trials)
    params = list(dict.fromkeys(k for r in rows for k in r["params"]))
    metrics = list(dict.fromkeys(k for r in rows for k in r["metrics"]))
    out = io.StringIO()
    w = csv.writer(out)
    others = ["number", "state", *[f"param.{p}" for p in params], *[f"metric.{m}" for m in metrics], *CSV_TAIL]
    # an objective named as another column (`error`, a classifier's) is `value.error`: two `error` columns lost the
    # objective's to every reader by name (csv.DictReader kept the last one; pandas renamed it `error.1`)
    w.writerow([*others[:2], *[f"value.{o.metric}" if o.metric in others else o.metric for o in objectives],
                *others[2:]])
    for r in rows:
        values = r["values"] or {}
        w.writerow([r["number"], r["state"], *[values.get(o.metric, "") for o in objectives],
                    *[_cell(r["params"][p]) if p in r["params"] else "" for p in params],
                    *[r["metrics"].get(m, "") for m in metrics],
                    r["attempts"], r["duration_s"] if r["duration_s"] is not None else "", r["error"] or "",
                    json.dumps(r["intermediate"]) if r["intermediate"] else "", r["failure_kind"] or "",
                    "" if r["seed"] is None else r["seed"], r["log_path"] or ""])
    return out.getvalue()


def _cell(v: Any) -> Any:
    """A parameter's value as its CSV cell: a boolean and null as the JSON literals ``true``, ``false``, ``null``
    (Python's ``True`` beside JSON's ``null`` was neither; pandas' read_csv reads ``true``/``false`` as booleans and
    ``null`` as missing), anything else as it is. An inactive parameter is an empty cell: null is a choice made.
    A string that reads as one of those literals (the choice ``"null"``) is a JSON string, ``"null"`` with its
    quotes, or it was the cell of null itself; so is the empty string (``""``; an empty cell is inactive), and a
    string quoted already (or ``"null"`` would be its cell too)."""
    if isinstance(v, bool) or v is None:
        return json.dumps(v)
    if isinstance(v, str) and (v in ("", "true", "false", "null") or (len(v) > 1 and v[0] == v[-1] == '"')):
        return json.dumps(v)
    return v
