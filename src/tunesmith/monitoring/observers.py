"""The listeners `run` and `resume` attach from their monitoring flags, and their lifetime around a run."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from tunesmith.clock import Clock, SystemClock
from tunesmith.errors import UserInputError
from tunesmith.events import Listeners, RunListener
from tunesmith.records import ExperimentRecord, Failure, TrialRecord

if TYPE_CHECKING:  # prometheus_client loads only when metrics are asked for
    from tunesmith.monitoring.metrics import TuningMetrics
    from tunesmith.storage.base import Event

TEXTFILE_EVERY = 1.0  # seconds between textfile rewrites during a run: millisecond trials must not pay for a write each


@dataclass(frozen=True)
class MonitoringOptions:
    """What the command line asked for. ``metrics_port`` 0 picks a free port."""

    metrics_port: int | None = None
    metrics_addr: str = "127.0.0.1"
    metrics_file: str | None = None
    log_format: str = "human"   # or "json": one JSON object per event on the log stream

    @property
    def wants_metrics(self) -> bool:
        return self.metrics_port is not None or self.metrics_file is not None


class MetricsListener(RunListener):
    """Feeds a run's events into :class:`TuningMetrics`; keeps the textfile (if any) current.

    A textfile write that fails (disk full, permissions) never raises from a hook: the fan-out would drop this
    listener, the served gauges would stop too, and the file would say ``running 1`` after the run ended. The
    error is told once, through the fan-out that calls this listener (see ``warn_through``), and the file is
    written again as often as ever (and at the run's end), so it catches up once it can be written.

    ``events``: the store's events of an experiment (``TrialStore.events``), from which the replay at the run's
    start counts the attempts that began, as ``tunesmith metrics`` does; without it, each record's ``attempts``.
    """

    def __init__(self, metrics: TuningMetrics, textfile: str | None = None, clock: Clock | None = None,
                 events: Callable[[int], Sequence[Event]] | None = None) -> None:
        self.metrics = metrics
        self.events = events
        self.textfile = textfile
        self.clock = clock or SystemClock()
        self.warn: Callable[[str], None] | None = None
        self._warned = False
        self._written_at: float | None = None

    def warn_through(self, warn: Callable[[str], None]) -> None:
        self.warn = warn

    def run_started(self, experiment: ExperimentRecord, history: list[TrialRecord], resumed: bool,
                    total_trials: int | None) -> None:
        # the runner hands over the record just marked running: its updated_at is the run_running event's time
        from tunesmith.monitoring.metrics import attempts_begun

        begun = None if self.events is None else attempts_begun(self.events(experiment.id))
        self.metrics.replay(experiment, history, running=True, started_at=experiment.updated_at, begun=begun)
        self._write(force=True)

    def trial_started(self, trial: TrialRecord) -> None:
        self.metrics.trial_started(trial)
        self._write()

    def trial_queued(self, trial: TrialRecord) -> None:
        self.metrics.trial_queued(trial)
        self._write()

    def trial_retrying(self, trial: TrialRecord, failure: Failure, delay_s: float) -> None:
        self.metrics.trial_retrying(trial)
        self._write()

    def trial_finished(self, trial: TrialRecord, best: TrialRecord | None) -> None:
        self.metrics.trial_finished(trial, best)
        self._write()

    def promotion_decided(self, experiment: str, outcome: str) -> None:
        self.metrics.promotion_decided(outcome)
        self._write(force=True)

    def run_finished(self, experiment: ExperimentRecord, trials: list[TrialRecord], stop_reason: str) -> None:
        self.metrics.run_finished()
        self._write(force=True)

    def _write(self, force: bool = False) -> None:
        if self.textfile is None:
            return
        mono = self.clock.monotonic()
        if force or self._written_at is None or mono - self._written_at >= TEXTFILE_EVERY:
            self._written_at = mono   # tried: a file that cannot be written is tried again as often, not every event
            try:
                self.metrics.write_textfile(self.textfile)
            except OSError as e:
                self._tell(f"--metrics-file {self.textfile} cannot be written ({e.strerror or e}); "
                           f"trying again every {TEXTFILE_EVERY:g} s and at the end of the run")

    def _tell(self, message: str) -> None:
        if self._warned or self.warn is None:
            return
        self._warned = True
        try:
            self.warn(message)
        except (Exception, SystemExit):
            pass  # the display's stream is gone too: raising here would drop the metrics as well


@contextmanager
def observed(display: RunListener, options: MonitoringOptions, log_stream: TextIO, clock: Clock | None = None,
             events: Callable[[int], Sequence[Event]] | None = None) -> Iterator[RunListener]:
    """The listener to hand the runner: ``display`` (or JSON logs instead of it) plus metrics when asked, which
    read the run's history from ``events`` (the store's, see :class:`MetricsListener`).

    The metrics server is listening before this yields (a port in use fails before anything is recorded) and
    is shut down when the block ends.

    Raises:
        UserInputError: the port cannot be bound, the textfile's folder does not exist, prometheus-client is
            missing (naming the extra).
    """
    listeners: list[RunListener] = []
    if options.log_format == "json":
        from tunesmith.monitoring.json_log import JsonLogListener

        listeners.append(JsonLogListener(log_stream, clock))
    else:
        listeners.append(display)
    server = None
    if options.wants_metrics:
        from tunesmith.monitoring.metrics import TuningMetrics

        if options.metrics_file is not None:
            folder = os.path.dirname(os.path.abspath(options.metrics_file))
            if not os.path.isdir(folder):
                raise UserInputError(f"--metrics-file: folder {folder} does not exist (create it, or point "
                                     "--metrics-file at node_exporter's textfile directory)")
        metrics = TuningMetrics()
        if options.metrics_port is not None:
            server = metrics.serve(options.metrics_addr, options.metrics_port)
            url = f"http://{options.metrics_addr}:{server.server_port}/metrics"
            log_stream.write((json.dumps({"event": "metrics_serving", "url": url}, separators=(",", ":"))
                              if options.log_format == "json" else f"metrics: serving {url}") + "\n")
            log_stream.flush()
        listeners.append(MetricsListener(metrics, options.metrics_file, clock, events))
    try:
        yield Listeners(*listeners)
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
