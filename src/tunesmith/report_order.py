"""The order of a trial's reports: a step must be above every step the attempt reported before it.

A repeated or earlier step (a loop that reports twice per epoch, a counter reset mid-training) is ignored: the
first value at a step is the one that counts. The schedulers decide on the first report at or past a check step
or rung, and Optuna keeps the first value at a step, so a later one could change neither; recording it would only
make ``intermediate`` disagree with what the scheduler and the strategy used. The first such report of an attempt
is said (by the attempt, once), in the trial log and the run's warnings, naming the step and the rule.

Two layers apply it, so it sits in the kernel beside ``records``: the attempt (``evaluation``), which records,
forwards and says, and the Optuna adapter (``strategy``), whose trial outlives an attempt: a retry that starts its
steps over is in order for its attempt, but Optuna holds the earlier attempt's steps already.
"""

from __future__ import annotations

from tunesmith.records import Report


class ReportOrder:
    """Tells the reports that count (steps increasing) from those ignored: the reports of one attempt, or in the
    Optuna adapter those of a trial's attempts together."""

    def __init__(self) -> None:
        self.last: Report | None = None  # the last accepted report (the Optuna adapter tells a pruned trial's)

    @property
    def last_step(self) -> int | None:
        return None if self.last is None else self.last.step

    def accept(self, report: Report) -> bool:
        """True when ``report``'s step is above the last accepted one (and it becomes the last)."""
        if self.last is not None and report.step <= self.last.step:
            return False
        self.last = report
        return True

    def note(self, report: Report) -> str:
        """What to say of the ignored ``report`` (the first one of an attempt: later ones go unsaid)."""
        return (f"a report at step {report.step} was ignored: a trial's steps must increase, and step {self.last_step} "
                "was reported before it (the first value at a step counts: the scheduler and the strategy used it); "
                "later repeated or earlier steps of this trial are ignored without a word")
