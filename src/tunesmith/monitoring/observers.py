"""The listeners `run` and `resume` attach from their monitoring flags, and their lifetime around a run."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from tunesmith.clock import Clock, SystemClock
from tunesmith.coordinators import STALE_AFTER, at_work
from tunesmith.errors import StorageError, UserInputError
from tunesmith.events import Listeners, RunListener
from tunesmith.output_file import special_kind, written_path
from tunesmith.records import ExperimentRecord, Failure, TrialRecord

if TYPE_CHECKING:  # prometheus_client loads only when metrics are asked for
    from tunesmith.monitoring.json_log import JsonLogListener
    from tunesmith.monitoring.metrics import TuningMetrics
    from tunesmith.storage.base import Event, TrialStore

TEXTFILE_EVERY = 1.0  # seconds between textfile rewrites during a run: millisecond trials must not pay for a write each
REFRESH_EVERY = 2.0   # seconds between reads of what other coordinators did (as often as the runner reads it)
# a textfile made this recently, saying running, is a live run's (rewritten every REFRESH_EVERY s, even while idle)
WRITTEN_BY_A_LIVE_RUN = 10.0
TEXTFILE_SUFFIX = ".prom"  # the only files node_exporter's textfile collector reads


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

    ``store``: the run's store. The run's start replays what it records of the experiment (as ``tunesmith metrics``
    does); every ``refresh_every`` seconds, from a thread of its own, and at the run's end, this listener reads what
    it recorded since: other coordinators' trials (``resume --join``), which the runner does not tell, and who is
    at work (their workers). Without a store, the history the runner hands over, and this run's own trials. Each
    read writes the textfile, whether or not the store answered: a file that stops changing means a coordinator that
    is gone (the shipped alert TunesmithCoordinatorGone).

    ``notes``: warnings about the textfile, told as the run starts (a run refused before it starts says only why).
    """

    def __init__(self, metrics: TuningMetrics, textfile: str | None = None, clock: Clock | None = None,
                 store: TrialStore | None = None, refresh_every: float | None = None,
                 notes: Sequence[str] = ()) -> None:
        self.metrics = metrics
        self.textfile = textfile
        self.clock = clock or SystemClock()
        self.store = store
        self.refresh_every = refresh_every
        self.notes = notes
        self.warn: Callable[[str], None] | None = None
        self._told: set[str] = set()
        self._untold: list[tuple[str, str]] = []  # what the refreshing thread found, told from the run's thread
        self._written_at: float | None = None
        self._lock = threading.Lock()  # the run's thread and the refreshing one both count and write
        self._experiment_id: int | None = None
        self._seen_event = 0
        self._coordinator_events: list[Event] = []  # those naming a coordinator: who is at work (at_work's rule)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = self._finished = False  # told run_started; left the run (told so in the textfile)

    def warn_through(self, warn: Callable[[str], None]) -> None:
        self.warn = warn

    def run_started(self, experiment: ExperimentRecord, history: list[TrialRecord], resumed: bool,
                    total_trials: int | None) -> None:
        # the runner hands over the record just marked running: its updated_at is the run_running event's time
        self._started = True
        for i, note in enumerate(self.notes):
            self._untell(f"note {i}", note)  # told by the first write, below
        if self.store is None:
            with self._lock:
                self.metrics.replay(experiment, history, running=True, started_at=experiment.updated_at)
                self._write(force=True)
            return
        self._experiment_id = experiment.id
        events = self.store.events(experiment.id)
        trials = self.store.trials(experiment.id)  # after the events (see TuningMetrics.catch_up)
        now = self.clock.now()
        working = self._at_work(events, trials, now)
        with self._lock:
            self._note(events)
            self.metrics.replay(experiment, trials, events, running=True, started_at=experiment.updated_at, now=now,
                                coordinators=len(working))
            self._write(force=True)
        if self.refresh_every is not None:
            self._thread = threading.Thread(target=self._refreshing, name="tunesmith-metrics-refresh", daemon=True)
            self._thread.start()

    def trial_started(self, trial: TrialRecord) -> None:
        with self._lock:
            self.metrics.trial_started(trial)
            self._write()

    def trial_queued(self, trial: TrialRecord) -> None:
        with self._lock:
            self.metrics.trial_queued(trial)
            self._write()

    def trial_retrying(self, trial: TrialRecord, failure: Failure, delay_s: float) -> None:
        with self._lock:
            self.metrics.trial_retrying(trial)
            self._write()

    def trial_finished(self, trial: TrialRecord, best: TrialRecord | None) -> None:
        with self._lock:
            self.metrics.trial_finished(trial)  # (its best: worked out over every trial counted, peers' too)
            self._write()

    def promotion_decided(self, experiment: str, outcome: str) -> None:
        if self.store is not None:
            return  # counted from the store's promotion events, which the promotion recorded
        with self._lock:
            self.metrics.promotion_decided(outcome)
            self._write(force=True)

    def run_finished(self, experiment: ExperimentRecord, trials: list[TrialRecord], stop_reason: str) -> None:
        self.close()
        if self._experiment_id is not None:
            self._refresh()  # its peers' last trials, as far as they are recorded now
        self.left()

    def left(self) -> None:
        """This coordinator is no longer at work on the run, however it ended: a run stopped by an error is never
        told ``run_finished``, and its textfile said running, workers busy, for as long as it stayed. Nothing for a
        run that never started (refused: its name taken), which has no figures to write."""
        with self._lock:
            if self._finished or not self._started:
                return
            self._finished = True
            self.metrics.run_finished()
            self._write(force=True)

    def stopped_watching(self) -> None:
        self.close()

    def close(self) -> None:
        """Stop reading the store (the run ended, or this listener was dropped)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(STALE_AFTER)  # a read stuck in the store: the end's own read is counted once anyway
        self._tell_untold()

    def _refreshing(self) -> None:
        assert self.refresh_every is not None
        while not self._stop.wait(self.refresh_every):
            self._refresh()

    def _refresh(self) -> None:
        """Count what the store recorded since the last read. Never raises: it runs in a thread of its own, and at
        the run's end, whose textfile must still be written. A store that cannot be read now is told once, from the
        run's thread, and read again next time, from the same event (the run finds out about a store that stays
        down)."""
        from tunesmith.monitoring.metrics import FINISHED_EVENTS

        store, exp_id = self.store, self._experiment_id
        assert store is not None and exp_id is not None
        try:
            events = store.events(exp_id, self._seen_event)
            ended = {e.trial_number for e in events if e.kind in FINISHED_EVENTS and e.trial_number is not None}
            trials = [*(store.trials(exp_id, ended) if ended else ()), *store.unfinished_trials(exp_id)]
            now = self.clock.now()
            working = self._at_work(events, trials, now)
            with self._lock:
                self._note(events)
                self.metrics.catch_up(events, trials, now, len(working))
                self._write()
        except Exception as e:  # noqa: BLE001 - see the docstring
            why = str(e) if isinstance(e, StorageError) else f"{type(e).__name__}: {e}"
            self._untell("store", f"the metrics cannot read the other coordinators' trials from the store ({why}); "
                                  "they may miss those until a read succeeds")
            with self._lock:
                self._write()  # the coordinator lives: its textfile says so (its exposition time moves on)

    def _note(self, events: Sequence[Event]) -> None:
        """Take in the events read since the last read, once counted: where the next read starts, and of them
        those naming a coordinator (its start, its leaving), all :meth:`_at_work` needs of the log."""
        if events:
            self._seen_event = max(self._seen_event, events[-1].id)
        self._coordinator_events += _naming_coordinators(events)

    def _at_work(self, events: Sequence[Event], trials: Sequence[TrialRecord], now: float) -> list[str]:
        """The coordinators at work on the experiment, by ``tunesmith metrics``' (and ``show``'s) rule: ``events``
        are those read since the last read, ``trials`` those running or queued (their beats)."""
        assert self.store is not None and self._experiment_id is not None
        return at_work(self.store, self._experiment_id, now, events=[*self._coordinator_events,
                                                                    *_naming_coordinators(events)], trials=trials)

    def _write(self, force: bool = False) -> None:
        """Write the textfile (under the lock), at most once a second unless ``force``."""
        if self.textfile is None:
            return
        mono = self.clock.monotonic()
        if force or self._written_at is None or mono - self._written_at >= TEXTFILE_EVERY:
            self._written_at = mono   # tried: a file that cannot be written is tried again as often, not every event
            try:
                self.metrics.write_textfile(self.textfile)
            except OSError as e:
                self._untell("textfile", f"--metrics-file {self.textfile} cannot be written ({e.strerror or e}); "
                                         f"trying again every {TEXTFILE_EVERY:g} s and at the end of the run")
        if threading.current_thread() is not self._thread:
            self._tell_untold()

    def _untell(self, kind: str, message: str) -> None:
        """Keep ``message`` to tell from the run's thread, unless a trouble of its ``kind`` was told already."""
        if kind not in self._told:
            self._untold.append((kind, message))

    def _tell_untold(self) -> None:
        """Tell each kind of trouble once; from the run's thread only (a trial's log may be taking the refreshing
        thread's output, as for the heartbeat's)."""
        while self._untold:
            kind, message = self._untold.pop(0)
            if kind in self._told or self.warn is None:
                continue
            self._told.add(kind)
            try:
                self.warn(message)
            except (Exception, SystemExit):
                pass  # the display's stream is gone too: raising here would drop the metrics as well


def _textfile_notes(given: str, textfile: str, now: float) -> list[str]:
    """What to warn of about ``--metrics-file given`` (written at ``textfile``): a name node_exporter's textfile
    collector never reads, another live run writing the same file (two runs of one name, from two stores, on one
    host). Warnings, not refusals: a file may be read otherwise, and the file's last writer may have been killed a
    moment ago."""
    from tunesmith.monitoring.metrics import textfile_in_use

    notes = []
    if not os.path.basename(given).endswith(TEXTFILE_SUFFIX):
        notes.append(f"--metrics-file {given}: node_exporter's textfile collector reads only files whose name ends in "
                     f"{TEXTFILE_SUFFIX}; it will not read this one")
    other = textfile_in_use(textfile, now, WRITTEN_BY_A_LIVE_RUN)
    if other is not None:
        notes.append(f"--metrics-file {given}: a live run of experiment {other!r} writes this file too (it said so "
                     f"within {WRITTEN_BY_A_LIVE_RUN:g} s); the two overwrite each other's figures every second: give "
                     "each run a file of its own (one per store, e.g. NAME-STORE.prom)")
    return notes


def _naming_coordinators(events: Sequence[Event]) -> list[Event]:
    return [e for e in events if isinstance(e.payload.get("owner"), str)]


class ServingAnnouncement(RunListener):
    """Says where the metrics server listens, as the run starts: a run refused before it starts (its name taken,
    no such experiment to resume) is one line of error, not a server announced for a run that never ran. The
    server itself listens from before (a port in use is refused before anything is recorded)."""

    def __init__(self, log_stream: TextIO) -> None:
        self.log_stream = log_stream
        self.url: str | None = None
        self.json_log: JsonLogListener | None = None

    def run_started(self, experiment: ExperimentRecord, history: list[TrialRecord], resumed: bool,
                    total_trials: int | None) -> None:
        if self.url is None:
            return
        if self.json_log is not None:
            self.json_log.metrics_serving(self.url)
        else:
            self.log_stream.write(f"metrics: serving {self.url}\n")
            self.log_stream.flush()


@contextmanager
def observed(display: RunListener, options: MonitoringOptions, log_stream: TextIO, clock: Clock | None = None,
             store: TrialStore | None = None, experiment: str = "") -> Iterator[RunListener]:
    """The listener to hand the runner: ``display`` (or JSON logs instead of it) plus metrics when asked, which
    read the experiment's history, and what other coordinators do, from ``store`` (see :class:`MetricsListener`).
    ``experiment``: its name, which the JSON lines written before the run starts carry as every other does.

    The metrics server is listening before this yields (a port in use fails before anything is recorded) and
    is shut down when the block ends, as the metrics' reads of the store are stopped.

    Raises:
        UserInputError: the port cannot be bound, the textfile's folder does not exist, prometheus-client is
            missing (naming the extra).
    """
    announcement = ServingAnnouncement(log_stream)  # first: its line comes before the run's first one
    listeners: list[RunListener] = [announcement]
    if options.log_format == "json":
        from tunesmith.monitoring.json_log import JsonLogListener

        announcement.json_log = JsonLogListener(log_stream, clock, experiment)
        listeners.append(announcement.json_log)
    else:
        listeners.append(display)
    server, watching = None, None
    if options.wants_metrics:
        from tunesmith.monitoring.metrics import TuningMetrics

        clock = clock or SystemClock()
        textfile = None if options.metrics_file is None else written_path(options.metrics_file)
        if textfile is not None:
            folder = os.path.dirname(os.path.abspath(textfile))
            if not os.path.isdir(folder):
                raise UserInputError(f"--metrics-file: folder {folder} does not exist (create it, or point "
                                     "--metrics-file at node_exporter's textfile directory)")
            if os.path.isdir(textfile):
                raise UserInputError(f"--metrics-file: {options.metrics_file} is a folder; name the file to keep "
                                     f"in it, e.g. {os.path.join(textfile, 'NAME.prom')}")
            special = special_kind(textfile)
            if special is not None:  # renamed over every second, it would be replaced by a plain file
                raise UserInputError(f"--metrics-file: {options.metrics_file} is {special}, not a file: the textfile "
                                     "is rewritten whole every second, for node_exporter's textfile collector to "
                                     "read; name a .prom file in its textfile directory")
        metrics = TuningMetrics(now=clock.now)
        if options.metrics_port is not None:
            server = metrics.serve(options.metrics_addr, options.metrics_port)
            announcement.url = f"http://{options.metrics_addr}:{server.server_port}/metrics"
        notes = [] if textfile is None else _textfile_notes(str(options.metrics_file), textfile, clock.now())
        # absolute: an inline trial runs in its spec's folder, where the refresh thread rewrites the file meanwhile
        watching = MetricsListener(metrics, textfile and os.path.abspath(textfile), clock, store,
                                   REFRESH_EVERY if store is not None else None, notes)
        listeners.append(watching)
    try:
        yield Listeners(*listeners)
    finally:
        if watching is not None:
            watching.close()
            watching.left()  # a run that raised was never told run_finished: it left all the same
        if server is not None:
            server.shutdown()
            server.server_close()
