"""Why a scheduler stops a trial early: decided and said by one rule.

A trial stops on a report for one of two reasons: its scheduler's own rule (the ``stop_rule`` of the spec's
scheduler section, in words), or a value that is not a finite number (:func:`tunesmith.records.diverged`), which
every scheduler but ``none`` stops at once, whatever its warm-up or rungs say. :func:`tunesmith.scheduler.stops`
decides by :func:`stop_reason`, and a stopped trial's log says what :func:`stopped_by` makes of the same report, so
the log cannot give a reason the decision did not follow. Outside the scheduler package, which loads the spec's
models: the worker that writes a trial's log imports this alone.
"""

from __future__ import annotations

import enum

from tunesmith.records import Report, diverged


class StopReason(enum.Enum):
    RULE = "rule"            # the scheduler's own rule (a rung, the median)
    DIVERGED = "diverged"    # a value that is not a finite number: never ranked, so it is why, whatever the rule said


def stop_reason(report: Report, rule_stops: bool) -> StopReason | None:
    """Why a trial stops on ``report``, or None where it goes on; ``rule_stops``: its scheduler's rule says stop."""
    if diverged(report):
        return StopReason.DIVERGED
    return StopReason.RULE if rule_stops else None


def stopped_by(scheduler: str | None, rule: str | None, report: Report | None) -> str:
    """Who stopped a trial, and why, as its log says it: ``the asha scheduler (its value at a rung ...)``, or, on a
    diverged report, ``the asha scheduler: its value nan is not a finite number, ...``. ``report``: the one the stop
    was decided on (None: not known, nor reported)."""
    if report is not None and stop_reason(report, rule_stops=True) is StopReason.DIVERGED:
        return (f"the {scheduler} scheduler: its value {report.value} is not a finite number, the training diverged "
                "(a scheduler stops such a trial at once)")
    return f"the {scheduler} scheduler ({rule})"
