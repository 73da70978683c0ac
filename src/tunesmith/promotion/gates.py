"""The promotion gates: each looks at the candidate's evidence and says passed or failed, and why.

Gates are pure: they get numbers (the candidate's recorded metrics, its parameters, the experiment's tags, and
for ``beat_champion`` a finished :class:`ChampionComparison`) and return :class:`GateResult`s. Fetching models and
scoring them is :mod:`tunesmith.promotion.promote`'s job.
"""

from __future__ import annotations

import enum
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tunesmith.records import ParamValue
from tunesmith.spec.promotion_config import PromotionConfig
from tunesmith.suggestions import closest


class Verdict(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"


@dataclass(frozen=True)
class GateResult:
    gate: str                      # "min.holdout_accuracy", "beat_champion", "safe_ranges.C", ...
    verdict: Verdict
    message: str                   # one line a person reads
    evidence: Mapping[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASSED

    def to_json(self) -> dict[str, Any]:
        return {"gate": self.gate, "verdict": self.verdict.value, "message": self.message,
                "evidence": dict(self.evidence)}


@dataclass(frozen=True)
class Candidate:
    """What the gates judge: one trial's recorded facts."""

    experiment: str
    trial: int
    params: Mapping[str, ParamValue]
    metrics: Mapping[str, float]       # trial metrics, objective values, holdout_* when there is a holdout
    tags: Mapping[str, str]            # the spec's tags
    metric: str                        # the (first) objective
    maximize: bool
    space: tuple[str, ...] = ()        # every parameter of the space (params holds the active ones); () unknown


@dataclass(frozen=True)
class ChampionComparison:
    """The candidate against the current champion on one metric (improvement > 0: the candidate is better)."""

    champion_version: str | None       # None: no champion yet
    metric: str = ""
    candidate: float | None = None
    champion: float | None = None
    improvement: float | None = None
    ci_low: float | None = None        # lower end of the one-sided bootstrap interval of the improvement
    ci_high: float | None = None
    method: str = ""                   # "paired bootstrap over N holdout rows" / "recorded values"
    problem: str | None = None         # why no comparison could be made (the gate then fails)
    is_candidate: bool = False         # the champion is the candidate's own model: nothing to compare
    rows: int | None = None            # the holdout rows the bootstrap resampled (None: no bootstrap)


def _passed(gate: str, message: str, **evidence: Any) -> GateResult:
    return GateResult(gate, Verdict.PASSED, message, evidence)


def _failed(gate: str, message: str, **evidence: Any) -> GateResult:
    return GateResult(gate, Verdict.FAILED, message, evidence)


def run_gates(policy: PromotionConfig, candidate: Candidate,
              comparison: ChampionComparison | None) -> list[GateResult]:
    """Every gate of ``policy``, in a fixed order: min, max, max_fold_spread, safe_ranges, require_tags,
    beat_champion."""
    results: list[GateResult] = []
    for name, bound in policy.min.items():
        results.append(_bound(f"min.{name}", candidate.metrics.get(name), bound, True, candidate.metrics))
    for name, bound in policy.max.items():
        results.append(_bound(f"max.{name}", candidate.metrics.get(name), bound, False, candidate.metrics))
    if policy.max_fold_spread is not None:
        results.append(fold_spread_gate(candidate, policy.max_fold_spread))
    for name, allowed in policy.safe_ranges.items():
        value = candidate.params.get(name)
        gate = f"safe_ranges.{name}"
        if candidate.space and name not in candidate.space:  # a typo must not let every configuration through
            results.append(_failed(gate, f"{name} is no parameter of the space{_did_you_mean(name, candidate.space)}",
                                   value=None))
        elif name not in candidate.params:
            results.append(_passed(gate, f"{name} is not active in this configuration", value=None))
        elif allowed.choices is not None:
            ok = value in allowed.choices
            results.append((_passed if ok else _failed)(
                gate, f"{name}={value!r} {'is' if ok else 'is not'} one of {list(allowed.choices)}",
                value=value, choices=list(allowed.choices)))
        else:
            number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
            ok = number is not None and (allowed.low is None or number >= allowed.low) and (
                allowed.high is None or number <= allowed.high)
            results.append((_passed if ok else _failed)(
                gate, f"{name}={value!r} {'is' if ok else 'is not'} within [{allowed.low}, {allowed.high}]",
                value=value, low=allowed.low, high=allowed.high))
    for key, wanted in policy.require_tags.items():
        gate = f"require_tags.{key}"
        have = candidate.tags.get(key)
        if have is None or have == "":
            results.append(_failed(gate, f"tag {key!r} is missing (add it under the spec's tags:)", value=None))
        elif wanted is not None and have != wanted:
            results.append(_failed(gate, f"tag {key!r} is {have!r}, the policy requires {wanted!r}", value=have,
                                   required=wanted))
        else:
            results.append(_passed(gate, f"tag {key!r} is {have!r}", value=have))
    if policy.beat_champion is not None:
        results.append(champion_gate(policy, comparison))
    return results


def _did_you_mean(name: str, names: Iterable[str]) -> str:
    close = closest(name, names)
    return f"; did you mean {close!r}?" if close else ""


def _bound(gate: str, value: float | None, bound: float, at_least: bool, recorded: Mapping[str, float]) -> GateResult:
    word = ">=" if at_least else "<="
    metric = gate.split(".", 1)[1]
    if value is None:
        return _failed(gate, f"{metric} was not recorded for this trial{_did_you_mean(metric, recorded)}",
                       value=value, bound=bound)
    if not math.isfinite(value):  # recorded, and no number (a holdout of one class only): NaN passes no bound
        return _failed(gate, f"{metric} is undefined ({value}) for this trial", value=value, bound=bound)
    ok = value >= bound if at_least else value <= bound
    return (_passed if ok else _failed)(gate, f"{value:.6g} {word if ok else 'is not ' + word} {bound:g}",
                                        value=value, bound=bound)


def fold_spread_gate(candidate: Candidate, limit: float) -> GateResult:
    """The standard deviation of the candidate's fold scores (``{metric}_std``, else from ``fold_i``)."""
    spread = candidate.metrics.get(f"{candidate.metric}_std")
    folds = [v for k, v in sorted(candidate.metrics.items()) if k.startswith("fold_")]
    if spread is None and len(folds) >= 2:
        mean = sum(folds) / len(folds)
        spread = math.sqrt(sum((f - mean) ** 2 for f in folds) / len(folds))
    if spread is None:
        return _failed("max_fold_spread", "no fold scores were recorded for this trial (a task records them)",
                       spread=None, limit=limit)
    ok = spread <= limit
    return (_passed if ok else _failed)("max_fold_spread",
                                        f"fold spread {spread:.4g} {'<=' if ok else 'exceeds'} {limit:g}",
                                        spread=spread, limit=limit, folds=folds)


def champion_gate(policy: PromotionConfig, comparison: ChampionComparison | None) -> GateResult:
    cfg = policy.beat_champion
    assert cfg is not None
    if comparison is None or comparison.champion_version is None:
        return _passed("beat_champion", "no champion yet: nothing to beat", champion_version=None)
    if comparison.is_candidate:
        return _passed("beat_champion", f"the candidate is champion v{comparison.champion_version} already: nothing "
                       "to beat", champion_version=comparison.champion_version)
    evidence = {"champion_version": comparison.champion_version, "metric": comparison.metric,
                "candidate": comparison.candidate, "champion": comparison.champion,
                "improvement": comparison.improvement, "ci_low": comparison.ci_low, "ci_high": comparison.ci_high,
                "confidence": cfg.confidence, "margin": cfg.margin, "method": comparison.method}
    if comparison.problem is not None or comparison.improvement is None:
        return _failed("beat_champion", f"cannot compare with champion v{comparison.champion_version}: "
                       f"{comparison.problem}", **evidence)
    # + 0.0: an improvement of -0.0 (both scored 0) printed as -0
    judged = (comparison.ci_low if comparison.ci_low is not None else comparison.improvement) + 0.0
    ok = judged >= cfg.margin
    what = (f"lower {cfg.confidence:.0%} bound of the improvement {judged:+.4g}" if comparison.ci_low is not None
            else f"improvement {judged:+.4g}")
    return (_passed if ok else _failed)(
        "beat_champion", f"{what} {'>=' if ok else '<'} margin {cfg.margin:g} over champion "
        f"v{comparison.champion_version} ({comparison.metric}: {comparison.candidate:.4g} vs "
        f"{comparison.champion:.4g}){'' if ok else _too_few_rows(comparison, cfg.margin, cfg.confidence)}",
        **evidence, **({"rows": comparison.rows} if comparison.rows is not None else {}))


def _too_few_rows(comparison: ChampionComparison, margin: float, confidence: float) -> str:
    """Why a candidate that scored better than the margin asks was still rejected: the holdout is too small for
    the interval at ``confidence`` to be that narrow (a daily file of ~280 rows leaves 57 holdout rows; every re-tune
    but one facing a broken champion was rejected, one that scored higher too). The interval narrows as one over
    the square root of the rows: about how many would let an improvement this large pass. '' where the point
    estimate itself misses the margin (more rows would not help) or no bootstrap ran."""
    if comparison.rows is None or comparison.ci_low is None or comparison.improvement is None:
        return ""
    room, width = comparison.improvement - margin, comparison.improvement - comparison.ci_low
    if room <= 0 or width <= room:
        return ""
    need = math.ceil(comparison.rows * (width / room) ** 2)
    return (f"; the improvement itself reaches the margin, but on {comparison.rows} holdout rows the {confidence:.0%} "
            f"interval reaches {width:.4g} below it: about {need} holdout rows would let an improvement this large "
            "pass (a larger task.holdout.fraction or more rows per batch; or a lower beat_champion.confidence, a "
            "lower margin)")


@dataclass(frozen=True)
class RolledBack:
    """The candidate's own model (same experiment and trial) as last registered, and rolled back since."""

    model_name: str
    version: str
    reason: str
    at: float | None                   # when (None: a rollback that recorded no time)


def rolled_back_gate(trial: int, rolled_back: RolledBack, override: bool) -> GateResult:
    """A rollback is sticky: the candidate whose model was rolled back fails, unless ``override``
    (``--even-if-rolled-back``) says to ship it again; the gate then passes, naming the rollback."""
    when = (time.strftime("on %Y-%m-%d %H:%M:%S UTC", time.gmtime(rolled_back.at)) if rolled_back.at is not None
            else "at a time not recorded")
    what = (f"trial {trial}'s model ({rolled_back.model_name} version {rolled_back.version}) was rolled back "
            f"{when}, reason: {rolled_back.reason!r}")
    evidence = {"version": rolled_back.version, "reason": rolled_back.reason, "rolled_back_at": rolled_back.at,
                "even_if_rolled_back": override}
    if override:
        return _passed("rolled_back", f"{what}; promoted again as asked (--even-if-rolled-back)", **evidence)
    return _failed("rolled_back", f"{what}; promote another trial, or pass --even-if-rolled-back to ship it again",
                   **evidence)
