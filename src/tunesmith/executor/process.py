"""The process executor: each trial runs in a worker process of its own session.

Workers start as trials are sent (at most ``workers``), are reused from trial to trial (a fresh interpreter per
trial would re-import the user's libraries every time) and replaced when one crashes, is killed for its timeout or
memory limit, or has run ``max_trials_per_worker`` trials. A crash, a leak or a hang in user code therefore costs
one trial, never the run.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from typing import Any

from tunesmith.clock import Clock, SystemClock
from tunesmith.cost import priced
from tunesmith.errors import WorkdirError
from tunesmith.evaluation.attempt_log import without_header, write_ending
from tunesmith.evaluation.job import TrialJob
from tunesmith.evaluation.output_tail import OUTPUT_LABEL, read_tail, with_tail
from tunesmith.evaluation.unwritable_folder import workdir_error
from tunesmith.executor.base import AttemptEnded, ExecutorEvent, TrialReported
from tunesmith.executor.devices import GpuSlot, slot_env, slot_metrics, worker_slots
from tunesmith.executor.processes import ended, kill_session, kill_signalled, session_usage, terminate_session
from tunesmith.executor.thread_share import thread_share_env, usable_cpus
from tunesmith.executor.wire import outcome_from_json
from tunesmith.executor.worker_import_path import worker_env
from tunesmith.records import Failure, FailureKind, Outcome, Report
from tunesmith.spec.units import format_duration
from tunesmith.redaction import secrets_of

MEMORY_CHECK_INTERVAL = 0.25
# A command trial stopped for its timeout or at the end of the grace period gets SIGTERM (a training script saves a
# checkpoint then, as Lightning and the HF Trainer do), and its processes SIGKILL this long after, as a pruned one.
TERM_GRACE_S = 5.0


@dataclass
class _Worker:
    proc: subprocess.Popen[bytes]
    commands: int                      # fd we write commands to
    events: int                        # fd we read events from
    buffer: bytes = b""
    job: TrialJob | None = None
    started: float = 0.0
    kill_reason: Failure | None = None
    trials_run: int = 0
    retiring: bool = False
    last_seen: float = 0.0             # monotonic time of the worker's last message (heartbeat or other)
    undecided: int = 0                 # reports returned by poll() that the worker waits to hear about
    prune_sent: bool = False
    log_start: int = 0                 # size of the job's log when it was submitted: this attempt's output follows
    cpu_start: float = 0.0             # the session's CPU seconds when the job started (jobs that are priced)
    cpu_last: float = 0.0              # ... at the last sample
    peak_rss: int = 0                  # highest resident memory sampled during the job
    gpus: GpuSlot = ()                 # the devices this worker owns for life (its CUDA_VISIBLE_DEVICES)
    kill_at: float | None = None       # monotonic time to SIGKILL what a SIGTERM (term_first) left of the trial


class ProcessExecutor:
    """Args:
        workers: how many trials run at once.
        max_trials_per_worker: replace a worker after this many trials (guards against leaks); None: never.
        preload: a trial function reference to import in each new worker before its first job.
        base_dir: the folder ``preload`` resolves from.
        clock: the clock for deadlines.
        heartbeat_timeout: a busy worker silent this long (stopped, deadlocked, stuck holding the GIL) is
            killed and its trial ends LOST; workers send a heartbeat every quarter of it (at most every 5 s).
        gpus: local GPU indices to share out among the workers, ``"all"`` for every GPU here, None: no assignment.
        gpu_per_trial: GPUs each worker (so each trial) owns; a fraction shares a GPU between workers.
        threads_shared_among: the worker count whose share of the CPUs each worker's numeric libraries get
            (:mod:`~tunesmith.executor.thread_share`); default ``workers``. A trial run again alone takes the
            share its run's workers had: its floating-point sums then add in the same order.
    """

    def __init__(self, workers: int, max_trials_per_worker: int | None = None, preload: str | None = None,
                 base_dir: str | None = None, clock: Clock | None = None, heartbeat_timeout: float = 60.0,
                 gpus: list[int] | str | None = None, gpu_per_trial: float = 1.0,
                 threads_shared_among: int | None = None) -> None:
        self.workers = workers
        self.threads_shared_among = threads_shared_among or workers
        self.max_trials_per_worker = max_trials_per_worker
        self.preload = preload
        self.base_dir = base_dir
        self.clock = clock or SystemClock()
        self.heartbeat_timeout = heartbeat_timeout
        self.gpus = gpus
        self.gpu_per_trial = gpu_per_trial
        self._pool: list[_Worker] = []
        self._unstarted: list[GpuSlot] = []   # the slots of workers not started yet (or replaced), their devices
        self._selector = selectors.DefaultSelector()
        self._events: list[ExecutorEvent] = []
        self._last_memory_check = 0.0
        self._closing = False
        self._unwritable: WorkdirError | None = None  # a trial's folder refused its log: the next poll raises it
        # what each SIGTERM (term_first) signalled, to SIGKILL at its time whatever became of the worker: a child
        # that left the trial's session outlives the command, and the worker retires before that time comes
        self._termed: list[tuple[float, list[tuple[int, int | None]]]] = []

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        # Workers start as trials are sent, not all at once: each is an interpreter start-up plus the preload's
        # imports (scikit-learn, torch: seconds of CPU), and a run of 2 trials with 8 workers needs 2.
        self._unstarted = list(worker_slots(self.gpus, self.gpu_per_trial, self.workers))

    def _spawn(self, gpus: GpuSlot = ()) -> _Worker:
        cmd_r, cmd_w = os.pipe()
        evt_r, evt_w = os.pipe()
        proc = subprocess.Popen(
            [sys.executable, "-m", "tunesmith.executor.worker", str(cmd_r), str(evt_w),
             str(min(5.0, self.heartbeat_timeout / 4))],
            pass_fds=(cmd_r, evt_w), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True,
            env={**worker_env(os.environ, sys.path),
                 **thread_share_env(self.threads_shared_among, os.environ, usable_cpus()),
                 **(slot_env(gpus) if gpus else {})},
        )
        os.close(cmd_r)
        os.close(evt_w)
        os.set_blocking(evt_r, False)
        worker = _Worker(proc=proc, commands=cmd_w, events=evt_r, gpus=gpus)
        self._pool.append(worker)
        self._selector.register(evt_r, selectors.EVENT_READ, worker)
        if self.preload:
            self._send(worker, {"op": "preload", "function": self.preload, "base_dir": self.base_dir})
        return worker

    def free_slots(self) -> int:
        idle = sum(1 for w in self._pool if w.job is None and not w.retiring)
        return 0 if self._closing else idle + len(self._unstarted)

    def next_job_waits(self) -> bool:
        return False  # a free worker process begins it as it is sent

    def submit(self, job: TrialJob) -> None:
        worker = next((w for w in self._pool if w.job is None and not w.retiring), None) or \
            self._spawn(self._unstarted.pop(0))  # (an idle worker first: its imports are done)
        worker.job = job
        worker.started = worker.last_seen = self.clock.monotonic()
        worker.kill_reason = None
        worker.undecided = 0
        worker.prune_sent = False
        worker.log_start = _size(job.log_path)
        if job.cost is not None:
            worker.peak_rss, worker.cpu_start = session_usage(worker.proc.pid)
            worker.cpu_last = worker.cpu_start
        self._send(worker, {"op": "run", "job": job.to_json()})

    def prune(self, number: int, step: int | None = None) -> None:
        for w in self._pool:
            if w.job is not None and w.job.number == number and not w.prune_sent:
                w.prune_sent = True
                self._send(w, {"op": "prune", "step": step})

    def stop(self, number: int, kind: FailureKind, reason: str | None = None) -> None:
        for w in self._pool:
            if w.job is not None and w.job.number == number:
                default = "interrupted by the user" if kind is FailureKind.INTERRUPTED else "stopped by the coordinator"
                self._kill(w, Failure(kind, reason or default))

    def close(self, grace: float) -> list[ExecutorEvent]:
        self._closing = True
        events, self._events = self._events, []  # (those a poll that raised left)
        deadline = self.clock.monotonic() + grace
        for w in self._pool:
            if w.job is None:
                self._send(w, {"op": "exit"})
        while any(w.job is not None for w in self._pool) and self.clock.monotonic() < deadline:
            events += self.poll(min(0.2, max(0.0, deadline - self.clock.monotonic())))
        for w in self._pool:
            if w.job is not None:
                self._kill(w, Failure(FailureKind.INTERRUPTED,
                                      f"still running after the {format_duration(grace)} grace period"),
                           term_first=True)
        while any(w.job is not None for w in self._pool):
            events += self.poll(0.2)
        for w in list(self._pool):
            self._retire(w)
        if self._termed:  # a SIGTERM keeps its time to save, as in a run (real seconds: the clock may be a test's)
            until = time.monotonic() + max(0.0, max(at for at, _ in self._termed) - self.clock.monotonic())
            while time.monotonic() < until and not all(ended(termed) for _, termed in self._termed):
                time.sleep(0.05)
        self._kill_termed()
        self._selector.close()
        return events

    # -- events ------------------------------------------------------------------------------------------------
    def poll(self, timeout: float) -> list[ExecutorEvent]:
        # Every report returned by the previous poll has been decided on by now (prune() was called for those
        # to stop): release the trials waiting on them.
        for w in self._pool:
            if w.undecided:
                w.undecided = 0
                self._send(w, {"op": "ack", "prune": w.prune_sent})
        wait = timeout
        now = self.clock.monotonic()
        for w in self._pool:
            if w.job is not None and w.job.timeout is not None and w.kill_reason is None:
                wait = min(wait, max(0.0, w.started + w.job.timeout - now))
            if w.job is not None and (w.job.memory_limit is not None or w.job.cost is not None):
                wait = min(wait, MEMORY_CHECK_INTERVAL)
            if w.job is not None and w.kill_reason is None:
                wait = min(wait, max(0.0, w.last_seen + self.heartbeat_timeout - now))
            if w.kill_at is not None:
                wait = min(wait, max(0.0, w.kill_at - now))
        for at, _ in self._termed:
            wait = min(wait, max(0.0, at - now))
        if not self._events:
            for key, _ in self._selector.select(wait):
                self._read(key.data)
        self._enforce_limits()
        if self._unwritable is not None:  # the run stops: the events wait for close(), which the stop calls
            error, self._unwritable = self._unwritable, None
            raise error
        events, self._events = self._events, []
        return events

    def _read(self, w: _Worker) -> None:
        try:
            chunk = os.read(w.events, 1 << 16)
        except BlockingIOError:
            return
        if not chunk:
            self._worker_gone(w)
            return
        w.last_seen = self.clock.monotonic()
        w.buffer += chunk
        *lines, w.buffer = w.buffer.split(b"\n")
        for line in lines:
            if line:
                self._handle(w, json.loads(line))

    def _handle(self, w: _Worker, msg: dict[str, Any]) -> None:
        ev = msg.get("ev")
        if ev == "report" and w.job is not None and msg["number"] == w.job.number and w.kill_reason is None:
            report = Report(int(msg["step"]), float(msg["value"]), restated=bool(msg.get("restated")))
            if w.job.sync_reports and not report.restated:  # (a restated one waits for no ack)
                w.undecided += 1
            self._events.append(TrialReported(w.job.number, report))
        elif (ev == "unwritable" and w.job is not None and msg["number"] == w.job.number and w.kill_reason is None
              and not self._closing):
            # no AttemptEnded: the trial stays running for the runner, whose stop records it interrupted
            self._unwritable = self._unwritable or workdir_error(w.job.number, w.job.workdir, msg["reason"])
            w.job = None
        elif ev in ("result", "unwritable") and w.job is not None and msg["number"] == w.job.number:
            job = w.job  # (unwritable: one we were killing, which the kill decides, or one ending as we close)
            outcome = (outcome_from_json(msg["outcome"]) if ev == "result" else
                       Outcome(failure=Failure(FailureKind.INTERRUPTED, msg["reason"])))
            if w.kill_reason is not None:  # it finished as we were killing it: the kill decides
                outcome = Outcome(failure=_with_output(w.kill_reason, job, w.log_start), duration_s=outcome.duration_s,
                                  notes=outcome.notes)
            if job.cost is not None and w.kill_reason is None:
                self._sample(w)  # the worker is alive and idle: its CPU time now is the whole trial's
                w.peak_rss = max(w.peak_rss, int(msg.get("peak_rss", 0)))
            outcome = _priced(w, job, outcome)
            w.job = None
            w.trials_run += 1
            self._ended(w, job, outcome)
            if msg.get("unwritable") and w.kill_reason is None and not self._closing:  # kept, its log cut short
                self._unwritable = self._unwritable or workdir_error(job.number, job.workdir, msg["unwritable"])
            # A worker we are killing is dying, not free: a job submitted to it would be reported as its crash.
            if w.kill_reason is not None or (self.max_trials_per_worker and w.trials_run >= self.max_trials_per_worker):
                self._send(w, {"op": "exit"})
                w.retiring = True
                if not self._closing:
                    self._unstarted.append(w.gpus)  # its replacement starts with the next trial sent

    def _worker_gone(self, w: _Worker) -> None:
        """The worker's event pipe closed: it exited, crashed, or we killed it."""
        code = w.proc.wait()
        kill_session(w.proc.pid)  # whatever it started dies with it
        if w.job is not None:
            job = w.job
            failure = _with_output(w.kill_reason or _crash_reason(code), job, w.log_start)
            ended = Outcome(failure=failure, duration_s=self.clock.monotonic() - w.started)
            self._ended(w, job, _priced(w, job, ended))
            w.job = None
        self._retire(w)
        if not self._closing and not w.retiring:
            self._unstarted.append(w.gpus)  # its replacement starts with the next trial sent

    def _ended(self, w: _Worker, job: TrialJob, outcome: Outcome) -> None:
        if w.gpus:  # which devices the trial had, recorded with it
            outcome = replace(outcome, metrics={**outcome.metrics, **slot_metrics(w.gpus, self.gpu_per_trial)})
        if outcome.failure is not None and outcome.failure.kind is not FailureKind.EXCEPTION:
            # how the attempt ended, last (the worker is done with the log, or dead); an exception's traceback says it
            write_ending(job.log_path, job.attempt, outcome.failure)
        self._events.append(AttemptEnded(job.number, job.attempt, outcome))

    def _enforce_limits(self) -> None:
        for w in list(self._pool):
            # A dead worker whose event pipe a surviving child still holds open sends no EOF: ask the kernel.
            if w.job is not None and w.proc.poll() is not None:
                self._read(w)
                if w in self._pool and w.job is not None:
                    self._worker_gone(w)
        now = self.clock.monotonic()
        check_memory = now - self._last_memory_check >= MEMORY_CHECK_INTERVAL
        if check_memory:
            self._last_memory_check = now
        self._kill_termed(now)
        for w in self._pool:
            if w.kill_at is not None and now >= w.kill_at:  # what the SIGTERM left
                w.kill_at = None
                kill_session(w.proc.pid)
            job = w.job
            if job is None or w.kill_reason is not None:
                continue
            if job.timeout is not None and now - w.started >= job.timeout:
                timeout = format_duration(job.timeout)
                self._kill(w, Failure(FailureKind.TIMEOUT, f"exceeded trial_timeout of {timeout}; the trial's whole "
                                                           "process tree was killed"), term_first=True)
            elif now - w.last_seen >= self.heartbeat_timeout:
                self._kill(w, Failure(FailureKind.LOST, f"no heartbeat from the worker for "
                                                        f"{format_duration(now - w.last_seen)}; presumed hung and "
                                                        "killed"))
            elif check_memory and (job.memory_limit is not None or job.cost is not None):
                rss = self._sample(w)
                if job.memory_limit is not None and rss > job.memory_limit:
                    self._kill(w, Failure(FailureKind.MEMORY, f"memory use {_mib(rss)} exceeded memory_limit "
                                                              f"{_mib(job.memory_limit)}; killed"))

    def _sample(self, w: _Worker) -> int:
        """Read the trial's resident memory and CPU time from /proc; keep the peak and the latest."""
        rss, cpu = session_usage(w.proc.pid)
        w.peak_rss = max(w.peak_rss, rss)
        w.cpu_last = max(w.cpu_last, cpu)  # a child that exits unwaited takes its time along: never go back
        return rss

    def _kill(self, w: _Worker, reason: Failure, term_first: bool = False) -> None:
        """End ``w``'s trial for ``reason``: SIGKILL its processes; ``term_first``, a command's get SIGTERM, and
        SIGKILL TERM_GRACE_S later (a function trial is the worker itself: it is killed at once)."""
        if w.kill_reason is None:
            w.kill_reason = reason
        if term_first and w.job is not None and w.job.command is not None:
            if w.kill_at is None:  # (else a SIGTERM was sent already: its SIGKILL is on its way)
                w.kill_at = self.clock.monotonic() + TERM_GRACE_S
                self._termed.append((w.kill_at, terminate_session(w.proc.pid)))
            return
        kill_session(w.proc.pid)

    def _kill_termed(self, now: float | None = None) -> None:
        """SIGKILL what each SIGTERM whose time has come (``now``; None: every one) signalled and is still there."""
        due = [(at, termed) for at, termed in self._termed if now is None or now >= at]
        self._termed = [entry for entry in self._termed if entry not in due]
        for _, termed in due:
            kill_signalled(termed)

    def _retire(self, w: _Worker) -> None:
        if w in self._pool:
            self._pool.remove(w)
            try:
                self._selector.unregister(w.events)
            except (KeyError, ValueError):
                pass
            for fd in (w.commands, w.events):
                try:
                    os.close(fd)
                except OSError:
                    pass
            if w.proc.poll() is None and w.job is None and not w.retiring:
                kill_session(w.proc.pid)
            try:
                w.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                kill_session(w.proc.pid)
                w.proc.wait()

    def _send(self, w: _Worker, message: dict[str, object]) -> None:
        try:
            os.write(w.commands, (json.dumps(message) + "\n").encode())
        except (BrokenPipeError, OSError):
            pass  # the worker is gone; its closed event pipe reports that


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _with_output(failure: Failure, job: TrialJob, log_start: int) -> Failure:
    """A failure the coordinator decided (timeout, memory, crash, lost) ends with the trial's last output."""
    if failure.kind is FailureKind.INTERRUPTED:
        return failure  # the user stopped it: the reason is that, not what it printed
    output = without_header(read_tail(job.log_path, log_start), job.attempt)
    return with_tail(failure, OUTPUT_LABEL, output, secrets_of(job.env, os.environ))


def _crash_reason(code: int) -> Failure:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        hint = " (the OOM killer sends SIGKILL)" if -code == signal.SIGKILL else ""
        return Failure(FailureKind.CRASHED, f"worker process killed by signal {name}{hint}")
    return Failure(FailureKind.CRASHED, f"worker process exited with code {code} during the trial")


def _priced(w: _Worker, job: TrialJob, outcome: Outcome) -> Outcome:
    """The outcome with the attempt's measured resources and its cost as metrics (jobs with prices only).

    A killed or crashed trial is charged up to its last sample (at most MEMORY_CHECK_INTERVAL old).
    """
    return priced(job, outcome, w.cpu_last - w.cpu_start, w.peak_rss)


def _mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB"
