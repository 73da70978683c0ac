"""What the runner tells its listeners (the progress display now; metrics exporters later).

Listeners observe; they never change the run. Every hook has a no-op default, so a listener implements only
what it needs.
"""

from __future__ import annotations

from tunesmith.records import ExperimentRecord, Failure, TrialRecord


class RunListener:
    """Base class with no-op hooks. Call order: run_started, then trial_* in any order, then run_finished."""

    def run_started(self, experiment: ExperimentRecord, history: list[TrialRecord], resumed: bool,
                    total_trials: int | None) -> None:
        pass

    def trial_started(self, trial: TrialRecord) -> None:
        pass

    def warning(self, message: str) -> None:
        """Something the user should know that does not stop the run (the data changed since the last run)."""

    def trial_retrying(self, trial: TrialRecord, failure: Failure, delay_s: float) -> None:
        pass

    def trial_finished(self, trial: TrialRecord, best: TrialRecord | None) -> None:
        pass

    def run_stopping(self, reason: str) -> None:
        pass

    def promotion_decided(self, experiment: str, outcome: str) -> None:
        """A promotion gate decided (``outcome``: promoted, rejected, ...); for the metrics' promotion counts."""

    def run_finished(self, experiment: ExperimentRecord, trials: list[TrialRecord], stop_reason: str) -> None:
        pass


class Listeners(RunListener):
    """Fan a hook out to several listeners."""

    def __init__(self, *listeners: RunListener) -> None:
        self.listeners = listeners

    def run_started(self, *a, **k) -> None:  # type: ignore[no-untyped-def]
        for x in self.listeners:
            x.run_started(*a, **k)

    def warning(self, *a, **k) -> None:  # type: ignore[no-untyped-def]
        for x in self.listeners:
            x.warning(*a, **k)

    def trial_started(self, *a, **k) -> None:  # type: ignore[no-untyped-def]
        for x in self.listeners:
            x.trial_started(*a, **k)

    def trial_retrying(self, *a, **k) -> None:  # type: ignore[no-untyped-def]
        for x in self.listeners:
            x.trial_retrying(*a, **k)

    def trial_finished(self, *a, **k) -> None:  # type: ignore[no-untyped-def]
        for x in self.listeners:
            x.trial_finished(*a, **k)

    def run_stopping(self, *a, **k) -> None:  # type: ignore[no-untyped-def]
        for x in self.listeners:
            x.run_stopping(*a, **k)

    def run_finished(self, *a, **k) -> None:  # type: ignore[no-untyped-def]
        for x in self.listeners:
            x.run_finished(*a, **k)

    def promotion_decided(self, *a, **k) -> None:  # type: ignore[no-untyped-def]
        for x in self.listeners:
            x.promotion_decided(*a, **k)
