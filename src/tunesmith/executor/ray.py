"""The Ray executor (``executor.kind: ray``): trial attempts run on a Ray cluster, in Ray Core actors.

The only module that imports ray, and only when a Ray executor starts. How it keeps the process executor's promises:

- One actor per worker slot, holding ``resources_per_trial`` for the run, runs attempts one after another in its
  Ray worker process through the same code as the process executor's worker (``worker.run_job``). A direct
  actor call skips Ray's per-task scheduling (a worker lease per task: ~5-16 ms here against ~2.6 ms a call),
  and no interpreter starts per trial.
- Prefetch: while trials are short, each actor also holds the *next* attempt, queued behind the running one (in a
  second thread of the actor, waiting for its turn), so it starts the instant the previous ends instead of a
  coordinator round trip (store writes, the strategy's ask, the call itself) later. ``free_slots`` counts those
  queue places, and ``max_concurrent`` counts a queued attempt, so the cap holds with room to spare. As it begins
  in its actor (as the one ahead answers, or its new actor comes up), ``AttemptStarted`` tells the runner, which
  records it running from then, and queued until then (``next_job_waits`` tells it beforehand): its ``started_at``
  holds no time spent queued (its duration is measured in the actor), and no listener counts it busy before. An
  actor left idle while an attempt waits behind a running one elsewhere (the end of a run) takes it over. See
  ``PREFETCH_BELOW`` and ``executor.prefetch``.
- A small async mailbox actor, one per run, carries what crosses during a trial: its reports (and, for
  ``sync_reports``, the scheduler's decision back), prune and kill orders, a memory-limit breach, what a killed
  priced attempt had spent. Only JSON-able primitives cross; the job and the outcome travel as the same JSON as on
  the process executor's pipes. Nothing crosses per trial that a trial does not need: the start of an attempt is
  known from the actor's order of work (the one before it answered, or the new actor did), orders reach an actor
  through one long poll per actor (not one per attempt).
- A kill (timeout, stop, Ctrl-C) is an order to the attempt: its actor's watcher thread SIGKILLs the trial's child
  processes (a command trial's shell and all it started) and ends its actor's process (by ``ray.kill`` of itself:
  an exit Ray takes for intended, not a crash to report on the driver's terminal). An actor whose call has not
  ended ``KILL_GRACE`` seconds later (stuck in C code holding the GIL) is killed with ``ray.kill``. A dead actor
  is replaced by a new one for its slot; an attempt queued behind the one that died never started, and moves to
  the new actor as it is (no retry is spent on it). A queued attempt that is stopped reads its kill order as it
  starts and ends there, its actor unharmed (or, when the order arrives as it starts, as a running one).
- Nothing is retried by Ray (``max_restarts=0``, ``max_task_retries=0``): the runner retries. An attempt whose
  actor process or node died ends LOST with Ray's reason, and the runner retries it under ``retries``. Ray's
  state is disposable; the store is the truth.
- ``trial_timeout`` counts from the moment the attempt starts in its actor (not while a new actor starts, nor
  while it waits behind another attempt), as the coordinator learns it: within one call's latency.
- With ``cost`` prices, each attempt measures its actor process's CPU time (and its waited-for children's) and
  peak resident memory (the process's high-water mark and its children sampled 4 times a second) around itself.
  Memory, for ``cost`` and ``memory_limit`` alike, is what the trial adds to its actor: the actor's own as it came
  up (Ray's runtime, ~130 MiB) is left out, so a limit a trial meets on the process executor holds here too.
- ``ray.init`` installs SIGTERM handlers of its own (Python's and its C++ core's): the stop signals' handlers are
  put back as it returns, so a scheduler's SIGTERM stops the run gracefully, as on the process executor.
- The cluster itself going away (its head killed, ``ray stop``) is told apart from one worker dying by probing the
  head (``cluster_watch``): within a few seconds the run stops with ``ClusterLost``, its running trials recorded
  INTERRUPTED with the reason (so they re-run on ``resume``, uncounted: a LOST attempt would be retried onto the
  dead cluster), and no Ray call is made on the dead cluster after that, so nothing hangs.
- Checkpoints reach a node that does not share the coordinator's files through Ray (``checkpoint_shipping``): in
  with the job, out with the reports and the answer, into the coordinator's trial folder.
- A trial folder that refuses its log's writes (a full disk) stops the run as on the process executor when it is the
  coordinator's (on this machine, or a disk every node mounts): ``WorkdirError``, the trial recorded interrupted, not
  retried into the same disk. A folder of a node's own is that attempt's crash, retried maybe on another node.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import statistics
import tarfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, NoReturn

from tunesmith.clock import Clock, SystemClock
from tunesmith.cost import priced
from tunesmith.environ_scope import variables_set
from tunesmith.errors import ClusterLost, SpecError, UserInputError, WorkdirError
from tunesmith.evaluation.job import TrialJob
from tunesmith.evaluation.attempt_log import without_header
from tunesmith.evaluation.output_tail import OUTPUT_LABEL, read_tail, with_tail
from tunesmith.evaluation.unwritable_folder import FolderUnwritable, workdir_error
from tunesmith.executor.base import AttemptEnded, AttemptStarted, ExecutorEvent, TrialReported
from tunesmith.executor.checkpoint_shipping import (
    DEFAULT_LIMIT, TRAVELLING, CheckpointTooLarge, NodeLocalFolder, pack, unpack,
)
from tunesmith.executor.cluster_watch import ClusterWatch, HeadAddress, head_answers
from tunesmith.executor.processes import (
    kill_descendants, own_cpu_seconds, own_peak_memory, reset_own_peak_memory, tree_rss,
)
from tunesmith.executor.wire import outcome_from_json, outcome_to_json
from tunesmith.extras import install_extra
from tunesmith.records import Failure, FailureKind, Outcome, Report
from tunesmith.redaction import secrets_of
from tunesmith.spec.units import format_duration
from tunesmith.stop_signals import handlers_restored

if TYPE_CHECKING:
    from tunesmith.spec.model import Executor as ExecutorSpec

KILL_GRACE = 2.0            # seconds an attempt has to end itself after a kill order before its actor is killed
ORDER_WAIT = 1.0            # an actor's watcher long-polls the mailbox this long per call
MEMORY_CHECK_INTERVAL = 0.25
REPORT_DECISION_TIMEOUT = 30.0  # a report waits at most this long for the scheduler's decision, then carries on
KILLED_EXIT = 137
SELF_KILL_WAIT = 1.0        # how long an actor that ray.kill-ed itself waits for it before it exits by itself
LOCAL_OBJECT_STORE = 512 * 2**20  # a private cluster's object store: trials pass JSON, not arrays
# Queue a next attempt behind a running one only while the median of the last attempts is shorter than this: there
# the milliseconds between trials are worth hiding; longer trials gain nothing, and would only have their
# configuration chosen earlier and a time budget overrun by up to one trial per worker.
PREFETCH_BELOW = 5.0
RECENT_ATTEMPTS = 8
LAST_WORDS_TIMEOUT = 5.0    # how long a dead attempt's last mailbox events are waited for
SHUTDOWN_FLUSH = "RAY_task_events_shutdown_flush_timeout_ms"

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TrialResources:
    """What one trial reserves on the cluster (Ray's logical resources: they schedule, they do not confine)."""

    cpu: float = 1.0
    gpu: float = 0.0
    memory: int | None = None
    custom: dict[str, float] = field(default_factory=dict)


def import_ray() -> ModuleType:
    """Ray, or one line of bad input saying why not: not installed, or installed and broken (a version clash, an
    extension that fails to load: any exception from its import, which would otherwise be `validate`'s traceback)."""
    try:
        import ray
    except ImportError:
        raise UserInputError(f"executor.kind: ray needs Ray: {install_extra('ray')}") from None
    except Exception as e:
        raise UserInputError(f"executor.kind: ray: importing Ray failed ({type(e).__name__}: {e}); fix the install: "
                             f"{install_extra('ray', force_reinstall=True)}") from None
    return ray


# -- what runs on the cluster ---------------------------------------------------------------------------------
_STOPS = ("prune", "kill")  # the orders that end an attempt (a "yield" only moves one that has not started)
class Mailbox:
    """The run's async actor: events from attempts to the coordinator, orders from the coordinator to attempts.

    Orders are keyed by (trial number, attempt), so a retry never sees an order meant for the attempt before it,
    and filed under the *lane* (one actor's life) that runs the attempt, which its actor's watcher long-polls.
    """

    def __init__(self) -> None:
        self._events: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()
        self._orders: dict[tuple[int, int], str] = {}
        self._lane_of: dict[tuple[int, int], int] = {}
        self._lane_version: dict[int, int] = {}
        self._lane_changed: dict[int, asyncio.Event] = {}
        self._decided: dict[tuple[int, int], asyncio.Event] = {}

    def _post(self, event: dict[str, Any]) -> None:
        self._events.append(event)
        self._arrived.set()

    async def failed(self, number: int, attempt: int, kind: str, message: str) -> None:
        self._post({"ev": "failed", "number": number, "attempt": attempt, "kind": kind, "message": message})

    async def checkpoint(self, number: int, attempt: int, archive: bytes | None, note: str | None) -> None:
        """A trial on a node without the coordinator's files saved a checkpoint (``note``: why it did not travel)."""
        self._post({"ev": "checkpoint", "number": number, "attempt": attempt, "archive": archive, "note": note})

    async def spent(self, number: int, attempt: int, cpu_s: float, peak_rss: int) -> None:
        """What a priced attempt had used when it was killed (its actor's process ends with it)."""
        self._post({"ev": "spent", "number": number, "attempt": attempt, "cpu_s": cpu_s, "peak_rss": peak_rss})

    async def report(self, number: int, attempt: int, step: int, value: float, wait: bool,
                     restated: bool = False) -> bool:
        """Post a report; with ``wait``, return once the coordinator decided on it. Returns: prune now?
        ``restated``: an earlier attempt's, restated from the checkpoint (recorded, never decided on)."""
        key = (number, attempt)
        decided = self._decided.setdefault(key, asyncio.Event())
        decided.clear()
        self._post({"ev": "report", "number": number, "attempt": attempt, "step": step, "value": value,
                    "restated": restated})
        if wait and self._orders.get(key) not in _STOPS:
            try:
                await asyncio.wait_for(decided.wait(), REPORT_DECISION_TIMEOUT)
            except TimeoutError:
                pass
        return self._orders.get(key) in _STOPS

    async def take(self, wait_s: float) -> list[dict[str, Any]]:
        """The events so far, waiting up to ``wait_s`` for the first one."""
        if not self._events and wait_s > 0:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), wait_s)
            except TimeoutError:
                pass
        events, self._events = self._events, []
        return events

    async def decide(self, number: int, attempt: int, prune: bool) -> None:
        """The coordinator ruled on the attempt's reports so far. The prune travels with the ruling: calls to an
        async actor may run out of order, and a ruling seen before its prune order would let the trial go on."""
        key = (number, attempt)
        if prune and self._orders.get(key) not in _STOPS:
            self._orders[key] = "prune"
        self._decided.setdefault(key, asyncio.Event()).set()

    async def order(self, number: int, attempt: int, what: str, lane: int) -> None:
        """``prune`` or ``kill`` (a kill overrides a prune) for the attempt, which runs (or is queued) on ``lane``;
        or ``yield``: give the queued attempt back, unless it started (see :meth:`yielded`)."""
        key = (number, attempt)
        if what == "yield" and key in self._orders:
            return  # a stopped or pruned attempt is not moved
        if self._orders.get(key) != "kill":
            self._orders[key] = what
        self._lane_of[key] = lane
        self._lane_version[lane] = self._lane_version.get(lane, 0) + 1
        self._lane_changed.setdefault(lane, asyncio.Event()).set()
        self._decided.setdefault(key, asyncio.Event()).set()

    async def orders_for(self, lane: int, seen: int, wait_s: float) -> tuple[int, list[list[Any]]]:
        """``lane``'s orders as (version, [[number, attempt, order], ...]), once the version differs from ``seen``,
        waiting up to ``wait_s``."""
        if self._lane_version.get(lane, 0) == seen and wait_s > 0:
            changed = self._lane_changed.setdefault(lane, asyncio.Event())
            changed.clear()
            try:
                await asyncio.wait_for(changed.wait(), wait_s)
            except TimeoutError:
                pass
        return self._lane_version.get(lane, 0), [[n, a, what] for (n, a), what in self._orders.items()
                                                 if self._lane_of.get((n, a)) == lane]

    async def yielded(self, number: int, attempt: int, given_back: bool) -> None:
        """The actor's answer to a yield order: the attempt will not start there (it moves), or it had started."""
        key = (number, attempt)
        if self._orders.get(key) == "yield":
            del self._orders[key]
            self._lane_of.pop(key, None)
        self._post({"ev": "yielded", "number": number, "attempt": attempt, "given_back": given_back})

    async def forget(self, number: int, attempt: int) -> None:
        key = (number, attempt)
        self._orders.pop(key, None)
        self._lane_of.pop(key, None)
        self._decided.pop(key, None)


class _Attempt:
    """The attempt an actor is running: what its watcher acts on."""

    def __init__(self, job: TrialJob, idle_rss: int) -> None:
        self.job = job
        self.key = (job.number, job.attempt)
        self.prune = threading.Event()
        self.sampled = job.memory_limit is not None or job.cost is not None
        self.idle_rss = idle_rss
        self.peak_rss = 0  # the trial's: its actor's tree above ``idle_rss``
        self.cpu_start = own_cpu_seconds() if job.cost is not None else 0.0


class TrialRunner:
    """The actor of one worker slot: runs attempts one after another in its process. An attempt queued behind the
    running one (prefetch) starts the instant it ends. One watcher thread per actor long-polls the mailbox for
    the orders of its lane and, while an attempt needs it, samples the memory of the actor's process tree."""

    def __init__(self, mailbox: Any, lane: int) -> None:
        self._mailbox = mailbox  # given once: an actor handle in every call costs its deserialization each time
        self._lane = lane
        self._lock = threading.Lock()
        self._current: _Attempt | None = None
        self._orders: dict[tuple[int, int], str] = {}  # this lane's orders, as the watcher last read them
        self._begun: deque[tuple[int, int]] = deque(maxlen=16)  # the last attempts that started here
        self._given_back: set[tuple[int, int]] = set() # queued attempts given back (moved to another actor)
        self._sample = False                           # the latest attempt needs memory samples
        self._watcher: threading.Thread | None = None
        # Calls run in two threads (max_concurrency=2), so that the queued attempt waits here, not in Ray's queue,
        # and starts the instant the one ahead releases its turn (~0.1 ms against ~1.2 ms for Ray to reply and
        # start the next queued call). Turns go strictly by the coordinator's sequence numbers.
        self._turn = threading.Condition(self._lock)
        self._served = 0
        # What the actor holds before any trial (Ray's runtime and tunesmith's harness: ~130 MiB here, against ~20 MiB
        # for a process executor's worker). memory_limit and the priced peak count the trial's memory above it: else
        # a limit the trial meets on the process executor (96 MiB) killed every trial on Ray at its first sample.
        from tunesmith.executor.worker import run_job  # loaded before the measurement, as a first attempt has it

        self._run_job = run_job
        self._idle_rss = tree_rss(os.getpid())

    def ready(self) -> str:
        """Answers once the actor is up (an attempt sent to it before starts now) with its node's id."""
        import ray

        return str(ray.get_runtime_context().get_node_id())

    def run(self, job_json: dict[str, Any], seq: int, shipment: dict[str, Any] | None = None) -> dict[str, Any]:
        """Attempt number ``seq`` sent to this actor: once the one before it is done, run it here, relay reports and
        orders through the mailbox; returns the outcome's JSON, or ``{"started": False}`` for an attempt that was
        ordered killed (or given back) before it started. ``shipment``: the coordinator's node and the trial's
        checkpoints, for a node that does not see its files."""
        import ray

        job = TrialJob.from_json(job_json)
        key = (job.number, job.attempt)
        with self._lock:
            self._turn.wait_for(lambda: self._served == seq - 1)
            order = self._orders.get(key)
            given_back = key in self._given_back
            if given_back or order == "kill":
                # A give-back answers this one call. The coordinator may send the attempt here again (this actor
                # is the idle one by the time it moves it): that call runs it. Kept, it was refused again, and
                # moved here again, for ever.
                self._given_back.discard(key)
                self._served = seq
                self._turn.notify_all()
                return {"started": False, "given_back": given_back}
            attempt = _Attempt(job, self._idle_rss)
            if order == "prune":
                attempt.prune.set()
            self._begun.append(key)
            self._current = attempt
            self._sample = attempt.sampled
        if self._watcher is None:
            self._watcher = threading.Thread(target=self._watch, name="tunesmith-orders", daemon=True)
            self._watcher.start()
        sent = 0
        n, a = attempt.key
        mailbox = self._mailbox
        away: NodeLocalFolder | None = None
        if shipment is not None and shipment["origin"] != ray.get_runtime_context().get_node_id() \
                and NodeLocalFolder.applies(Path(job.workdir)):
            away = NodeLocalFolder(Path(job.workdir), shipment["limit"])
            away.receive(shipment["files"])

        def report(r: Report) -> None:
            nonlocal sent
            sent += 1
            if away is not None:  # a checkpoint saved before this report reaches the coordinator before the report
                archive, note = away.changed()
                if archive is not None or note is not None:  # awaited: an async actor need not keep the calls' order
                    ray.get(mailbox.checkpoint.remote(n, a, archive, note))
            if ray.get(mailbox.report.remote(n, a, r.step, r.value, job.sync_reports and not r.restated, r.restated)):
                attempt.prune.set()

        if job.cost is not None:
            reset_own_peak_memory()
        answer: dict[str, Any] = {}
        try:
            outcome: Outcome | None
            try:
                outcome = self._run_job(job, report, attempt.prune.is_set)
            except FolderUnwritable as e:  # (an outcome kept, its log cut short: recorded either way)
                outcome = e.outcome
                if away is None:  # the coordinator's trial folder (its machine, or a disk every node mounts): the
                    answer["unwritable"] = e.reason  # run stops, as on the process executor; a retry meets that disk
                elif outcome is None:  # a folder of this node's own: a crash, retried maybe on another node
                    outcome = Outcome(failure=Failure(
                        FailureKind.CRASHED, f"its folder on its Ray node refused a write of its log: {e.reason}"))
            if outcome is not None:
                answer["outcome"] = outcome_to_json(outcome)
            answer["reports"] = sent
            if job.cost is not None:
                answer["spent"] = _spent(attempt)
            if away is not None:
                answer["checkpoint"], answer["checkpoint_note"] = away.changed()
        finally:
            with self._lock:
                self._current = None
                self._served = seq
                self._turn.notify_all()
        return answer

    def _watch(self) -> None:
        import ray

        mailbox, lane, seen = self._mailbox, self._lane, -1
        while True:
            try:
                seen, orders = ray.get(mailbox.orders_for.remote(lane, seen,
                                                                 MEMORY_CHECK_INTERVAL if self._sample else ORDER_WAIT))
            except Exception:  # noqa: BLE001 - the mailbox is gone with its run; Ray ends this job's actors
                return
            with self._lock:
                self._orders = {(int(n), int(a)): what for n, a, what in orders}
                for key in [k for k, what in self._orders.items() if what == "yield"]:
                    given_back = key not in self._begun  # decided under the lock run() starts attempts under
                    if given_back:
                        self._given_back.add(key)
                    mailbox.yielded.remote(*key, given_back)
                attempt = self._current
                if attempt is None:
                    continue
                order = self._orders.get(attempt.key)
                if order == "kill":
                    self._end_now(attempt)
                elif order == "prune":
                    attempt.prune.set()
                if attempt.sampled:
                    used = max(0, tree_rss(os.getpid()) - attempt.idle_rss)
                    attempt.peak_rss = max(attempt.peak_rss, used)
                    limit = attempt.job.memory_limit
                    if limit is not None and used > limit:
                        self._end_now(attempt, FailureKind.MEMORY.value,
                                      f"memory use {_mib(used)} of the trial (its children, and its Ray worker above "
                                      f"the {_mib(attempt.idle_rss)} it holds idle) exceeded memory_limit "
                                      f"{_mib(limit)}; killed")

    def _end_now(self, attempt: _Attempt, kind: str | None = None, message: str = "") -> None:
        """End the running attempt and this actor's process (with the lock held: no next attempt starts)."""
        import ray

        n, a, mailbox = *attempt.key, self._mailbox
        try:
            if attempt.job.cost is not None:
                spent = _spent(attempt)
                ray.get(mailbox.spent.remote(n, a, spent["cpu_s"], spent["peak_rss"]))
            if kind is not None:
                ray.get(mailbox.failed.remote(n, a, kind, message))
        finally:
            kill_descendants(os.getpid())
            # This actor's process goes (the coordinator starts a new actor for the slot), as an intended exit: ray.kill
            # of itself. A process that just exits is a crash to Ray, and every driver of the job printed its ~900
            # characters of "(raylet) A worker died ... unexpected system error ... OOM killer ..." for a kill that
            # tunesmith ordered and has reported in one line. (Ray has no switch for those messages: its driver
            # prints every error event of its job.) os._exit if ray.kill fails or has not ended it within a second.
            try:
                ray.kill(ray.get_runtime_context().current_actor, no_restart=True)
                time.sleep(SELF_KILL_WAIT)
            finally:
                os._exit(KILLED_EXIT)


def _spent(attempt: _Attempt) -> dict[str, Any]:
    """What the attempt used: CPU time, and its peak memory above its actor's idle memory (the samples of the tree,
    and the process's own high-water mark, which catches a peak between two samples)."""
    return {"cpu_s": max(0.0, own_cpu_seconds() - attempt.cpu_start),
            "peak_rss": max(attempt.peak_rss, own_peak_memory() - attempt.idle_rss, 0)}


# -- the coordinator's side -------------------------------------------------------------------------------------
@dataclass
class _Running:
    job: TrialJob
    ref: Any
    slot: int
    lane: int                           # the lane (actor life) the call went to
    submitted: float
    log_start: int
    started: float | None = None        # when it started in its actor, as far as the coordinator knows
    kill_reason: Failure | None = None
    kill_deadline: float | None = None
    undecided: bool = False
    held: bool = False    # its actor died: concluded once the mailbox answers a poll sent after (the cluster lives),
    held_after: int = 0   # (the last poll sent before it died), or interrupted with the cluster (``ray stop``)
    prune_sent: bool = False
    reports_seen: int = 0
    result: dict[str, Any] | None = None  # the attempt's answer, held until all its reports have arrived
    error: Exception | None = None        # ... or why there is none
    spent: dict[str, Any] | None = None   # a killed priced attempt's last measurement
    yielding: bool = False                # queued, asked back from its actor (to move to an idle one): no answer yet
    stays: bool = False                   # asked back, and its actor had started it: it is not asked again
    unannounced: float | None = None      # (wall clock) when it began, as far as the coordinator knows, while asked
    # back: its actor's answer says whether it began there at all (announced then) or was given back (moved)


@dataclass
class _Lane:
    """One worker slot's actor, and the attempts sent to it in the order it runs them: the first is running (or
    waits for the actor to come up), the one behind it is queued."""

    actor: Any
    id: int
    ready: Any                          # its ready() call until it answered, then None
    node: str | None = None             # its node, once ready() answered
    runs: list[_Running] = field(default_factory=list)
    sent: int = 0                       # calls sent to it: each run call carries its sequence number


class RayExecutor:
    """Args:
        workers: how many trials run at once.
        address: ``local`` starts a private cluster for the run and stops it after; ``auto``, ``host:port`` or
            ``ray://host:10001`` joins a running cluster and leaves it running. A Ray already initialized in this
            process (the Python API) is used as it is, and left as it is.
        resources: what each trial reserves.
        clock: the clock for deadlines.
        temp_dir: a private cluster's session folder (short: it holds unix sockets); None: Ray's default.
        prefetch: queue one more attempt per actor while trials are short (see ``PREFETCH_BELOW``).
        checkpoint_limit: the most bytes of checkpoint files that travel to or from a node that does not share the
            coordinator's files.
    """

    def __init__(self, workers: int, address: str = "local", resources: TrialResources | None = None,
                 clock: Clock | None = None, temp_dir: str | None = None, prefetch: bool = True,
                 checkpoint_limit: int = DEFAULT_LIMIT) -> None:
        self.workers = workers
        self.address = address
        self.resources = resources or TrialResources()
        self.clock = clock or SystemClock()
        self.temp_dir = temp_dir
        self.prefetch = prefetch
        self.checkpoint_limit = checkpoint_limit
        self._ray: Any = None
        self._runner_class: Any = None
        self._lanes: list[_Lane] = []     # one per worker slot
        self._lane_ids = 0
        self._mailbox: Any = None
        self._take: Any = None
        self._takes_sent = self._take_number = 0  # the mailbox's long polls sent so far, the one in flight ...
        self._heard = 0                   # ... and the number of the last one that answered
        self._running: dict[int, _Running] = {}
        self._events: list[ExecutorEvent] = []
        self._recent: deque[float] = deque(maxlen=RECENT_ATTEMPTS)  # durations of the last attempts that ran
        self._connected_here = False
        self._closing = False
        self._watch: ClusterWatch | None = None
        self._lost: str | None = None     # why the cluster counts as gone; no Ray call is made after that
        self._origin: str | None = None   # this process's node: its actors see the trial folders
        self._chosen: int | None = None   # the slot next_job_waits chose, for the submit it is about
        self._unwritable: WorkdirError | None = None  # a trial's folder refused its log: the poll raises it

    @classmethod
    def from_spec(cls, spec: ExecutorSpec, clock: Clock | None = None, prefetch: bool = True) -> RayExecutor:
        r = spec.resources_per_trial
        resources = TrialResources(r.cpu, r.gpu, r.memory, dict(r.custom)) if r is not None else TrialResources()
        return cls(spec.workers, spec.address or "local", resources, clock, prefetch=prefetch)

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        ray = self._ray = import_ray()
        if not ray.is_initialized():
            self._connect(ray)
        res = self.resources
        options: dict[str, Any] = {"num_cpus": res.cpu, "num_gpus": res.gpu, "max_restarts": 0,
                                   "max_task_retries": 0, "max_concurrency": 2}
        if res.memory:
            options["memory"] = res.memory
        if res.custom:
            options["resources"] = dict(res.custom)
        with self._ray_failing():
            self._check_feasible(ray)
            self._runner_class = ray.remote(TrialRunner).options(**options)
            self._mailbox = ray.remote(Mailbox).options(num_cpus=0, max_concurrency=1000).remote()
            self._lanes = [self._new_lane() for _ in range(self.workers)]
            head = _head_of(ray, self.address)
            self._origin = None if self.address.startswith("ray://") else ray.get_runtime_context().get_node_id()
        self._watch = ClusterWatch(head, self.clock) if head is not None else None

    def _check_feasible(self, ray: Any) -> None:
        """Refuse (exit 2, before any trial) resources no node of the cluster can give one trial: its actors would
        wait for ever, silently (Ray's "infeasible" warning goes to the driver's log, which a run hides). A cluster
        that adds nodes on demand may yet give them: a joined cluster whose autoscaler declares a kind of node that
        could (``get_cluster_config``: the autoscaler's node groups, which Ray Data reads for the same question) is
        let be, and so, with a warning, is one whose autoscaler, if any, says nothing of its nodes."""
        need = _ray_resources(self.resources)
        nodes = [node.get("Resources") or {} for node in ray.nodes() if node.get("Alive")]
        if any(_holds(node, need) for node in nodes):
            return
        offered = "; ".join(sorted({_offer(node) for node in nodes})) or "no alive node"
        private = self.address == "local" and self._connected_here  # (else joined, or the caller's own ray.init)
        if not private:
            try:
                from ray._private.state import state

                config = state.get_cluster_config()
                grows = config is not None and any(group.max_count != 0 and _holds(dict(group.resources), need)
                                                   for group in config.node_group_configs)
            except Exception:  # noqa: BLE001 - a private API that moved: the question stays open, as below
                config, grows = None, False
            if grows:
                return  # its autoscaler adds such a node when the trials ask
            if config is None:
                _log.warning("executor.resources_per_trial: no node of the Ray cluster (%s) can hold one trial "
                             "(%s; the nodes offer: %s); the trials wait until a node that can joins it (an "
                             "autoscaler's)", self.address, _offer(need), offered)
                return
        fields = {**{key: name for name, key in _FIELD_OF.items()},
                  **{key: f"custom.{key}" for key in self.resources.custom}}
        short = [fields[key] for key, value in need.items()
                 if value > max((node.get(key, 0.0) for node in nodes), default=0.0) + 1e-9]
        path = "executor.resources_per_trial" + (f".{short[0]}" if short else "")  # (else: never all on one node)
        where = "the run's private Ray cluster (address: local, this machine)" if private \
            else f"the Ray cluster ({self.address})"
        raise SpecError(path, f"no node of {where} can ever hold one trial ({_offer(need)}), so no trial would "
                              f"start: its nodes offer {offered}; ask for what a node has, or run on a cluster "
                              "with such nodes")

    @contextmanager
    def _ray_failing(self) -> Iterator[None]:
        """What Ray raises that the executor does not handle itself stops the run as a lost cluster does (exit 75,
        its running trials interrupted, to re-run on resume), with Ray's reason: never a raw Ray exception, a
        traceback and an experiment left `running`. (The executor's state may no longer match the cluster's: going
        on is not safe.)"""
        try:
            yield
        except ClusterLost:
            raise
        except Exception as e:
            if self._ray is None or not isinstance(e, self._ray.exceptions.RayError):
                raise
            self._lose_cluster(f"the Ray cluster failed: {type(e).__name__}: {_first_line(e)}")

    def _new_lane(self) -> _Lane:
        self._lane_ids += 1
        actor = self._runner_class.remote(self._mailbox, self._lane_ids)
        return _Lane(actor, self._lane_ids, actor.ready.remote())

    def _connect(self, ray: Any) -> None:
        quiet = {"log_to_driver": False, "logging_level": "ERROR"}
        # Read by Ray as this driver starts. ray.shutdown() waits up to this long to flush task events to a cluster
        # (Ray's default 5 s, all of it when the cluster went away); a live cluster takes milliseconds.
        env = {SHUTDOWN_FLUSH: os.environ.get(SHUTDOWN_FLUSH, "1000")}
        if self.address == "local":
            # a private cluster: token auth off for it alone (it binds this machine and lives as long as the run)
            env.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
        # `auto` is RAY_ADDRESS where that is set (Ray reads it so), else the cluster Ray finds on this machine
        from_env = os.environ.get("RAY_ADDRESS") if self.address == "auto" else None
        target, named_in = (from_env, "RAY_ADDRESS, for executor.address: auto") if from_env else (
            self.address, "executor.address")
        named = HeadAddress.parse(target)
        if named is not None and not head_answers(named):  # ray.init would wait minutes for it
            self._refuse(f"no Ray cluster answers at {target} ({named_in}): start one there "
                         "(`ray start --head --port=PORT`), or change the address")
        try:
            # handlers_restored: ray.init sets its own SIGTERM handler (sys.exit) and its core worker a C++ one that
            # logs and may abort; the coordinator's (a graceful stop, exit 130) are put back as they were.
            with variables_set(env), handlers_restored():
                if self.address != "local":
                    ray.init(address=self.address, **quiet)
                else:
                    cpus = max(os.cpu_count() or 1, math.ceil(self.workers * self.resources.cpu))
                    ray.init(address="local", num_cpus=cpus, include_dashboard=False,
                             object_store_memory=LOCAL_OBJECT_STORE, _temp_dir=self.temp_dir, **quiet)
        except ConnectionError as e:  # (the builtin, not a RayError) `auto` found no cluster, or a client failed
            if self.address == "auto" and not from_env:
                self._refuse("no Ray cluster answers at auto (executor.address): none runs on this machine and "
                             "RAY_ADDRESS is not set; start one (`ray start --head --port=PORT`), or name its "
                             "address (host:port, ray://host:10001)")
            self._refuse(f"no Ray cluster answers at {target} ({named_in}): {_first_line(e)}")
        self._connected_here = True

    def _refuse(self, reason: str) -> NoReturn:
        """No cluster to run on: the run stops before any trial (exit 75), and close() calls no Ray (a call on an
        uninitialised Ray starts a local cluster of its own)."""
        self._lost = reason
        raise ClusterLost(reason)

    def free_slots(self) -> int:
        if self._closing:
            return 0
        idle = sum(1 for lane in self._lanes if not lane.runs)
        if not self._prefetching():
            return idle
        return idle + sum(1 for lane in self._lanes
                          if len(lane.runs) == 1 and lane.runs[0].kill_reason is None and not lane.runs[0].held)

    def _prefetching(self) -> bool:
        return self.prefetch and bool(self._recent) and statistics.median(self._recent) < PREFETCH_BELOW

    def next_job_waits(self) -> bool:
        """It waits behind a running attempt (prefetch), or for its actor to come up (the first attempts of a run,
        or a slot whose actor was replaced): it begins as the one ahead ends, or the actor answers, announced then
        by ``AttemptStarted``; until then the runner records it queued. The slot it looked at is the one the
        submit it is about sends the attempt to (nothing changes in between: the protocol's promise)."""
        self._chosen = slot = self._next_slot()
        lane = self._lanes[slot]
        return bool(lane.runs) or lane.ready is not None

    def submit(self, job: TrialJob) -> None:
        now = self.clock.monotonic()
        slot = self._chosen if self._chosen is not None else self._next_slot()  # (a caller that did not ask)
        self._chosen = None
        run = _Running(job, None, slot, 0, now, _size(job.log_path))
        self._running[job.number] = run  # (first: a failing call below leaves it to be ended with the others)
        with self._ray_failing():
            self._send(run, submitted=True)

    def _next_slot(self) -> int:
        """To an idle actor if there is one (one that is up first), else behind the running attempt that started
        first."""
        slot = min((i for i, lane in enumerate(self._lanes) if not lane.runs),
                   key=lambda i: self._lanes[i].ready is not None, default=None)
        if slot is None:  # (free_slots offered no place behind an attempt being killed: its actor is dying)
            slot = min((i for i, lane in enumerate(self._lanes) if len(lane.runs) == 1),
                       key=lambda i: (self._lanes[i].runs[0].held, self._lanes[i].runs[0].kill_reason is not None,
                                      self._lanes[i].runs[0].started or math.inf))
        return slot

    def _send(self, run: _Running, submitted: bool = False) -> None:
        """Call the slot's actor with the attempt; it starts now when nothing is ahead of it on a live actor.
        ``submitted``: sent as the runner submits it (a start then is the one the runner records itself)."""
        lane = self._lanes[run.slot]
        lane.sent += 1
        run.ref = lane.actor.run.remote(run.job.to_json(), lane.sent, self._shipment(run.job, lane))
        run.lane = lane.id
        if not lane.runs and lane.ready is None:
            self._begin(run, announce=not submitted)
        lane.runs.append(run)

    def _shipment(self, job: TrialJob, lane: _Lane) -> dict[str, Any] | None:
        """The trial's checkpoints, for an actor that may be on a node without this machine's files."""
        if self.address == "local" or (self._origin is not None and lane.node == self._origin):
            return None  # the actor runs beside the coordinator (a private cluster is all on this machine)
        try:
            files = pack(Path(job.workdir), TRAVELLING, self.checkpoint_limit)
        except CheckpointTooLarge as e:
            files = None
            _log.warning("trial %d: %s; if it runs on a node without this machine's files, it starts without its "
                         "checkpoint", job.number, e)
        return {"origin": self._origin, "files": files, "limit": self.checkpoint_limit}

    def prune(self, number: int, step: int | None = None) -> None:
        # the step does not travel to a Ray task: its log names the attempt's last report
        run = self._running.get(number)
        if run is not None and not run.prune_sent and self._lost is None:
            run.prune_sent = True
            with self._ray_failing():
                self._mailbox.order.remote(number, run.job.attempt, "prune", run.lane)

    def stop(self, number: int, kind: FailureKind, reason: str | None = None) -> None:
        self._chosen = None  # a kill may free or replace an actor: a submit after this chooses again
        run = self._running.get(number)
        if run is not None:
            default = "interrupted by the user" if kind is FailureKind.INTERRUPTED else "stopped by the coordinator"
            with self._ray_failing():
                self._kill(run, Failure(kind, reason or default))

    def close(self, grace: float) -> list[ExecutorEvent]:
        self._closing = True
        events: list[ExecutorEvent] = []
        if self._ray is None or not self._ray.is_initialized():
            # never connected: nothing of ours is on a cluster, and any Ray call (ray.kill) on an uninitialised Ray
            # starts a local cluster of its own, writing a token file into $HOME
            return events
        try:
            deadline = self.clock.monotonic() + grace
            while self._running and self.clock.monotonic() < deadline:
                events += self.poll(min(0.2, max(0.0, deadline - self.clock.monotonic())))
            for run in list(self._running.values()):
                with self._ray_failing():
                    self._kill(run, Failure(FailureKind.INTERRUPTED, "still running after the "
                                                                     f"{format_duration(grace)} grace period"))
            give_up = self.clock.monotonic() + KILL_GRACE + 10.0
            while self._running and self.clock.monotonic() < give_up:
                events += self.poll(0.2)
        except ClusterLost:
            pass  # every running attempt now carries the cluster's loss as its reason
        for run in list(self._running.values()):  # the cluster does not answer: say so rather than hang
            silent = Failure(FailureKind.LOST, "no answer from the Ray cluster")
            self._end(run, Outcome(failure=run.kill_reason or silent))
        events += self._flush()
        ours = [actor for actor in (*(lane.actor for lane in self._lanes), self._mailbox) if actor is not None]
        for actor in ours if self._lost is None else []:
            try:
                self._ray.kill(actor)
            except Exception:  # noqa: BLE001 - the cluster may be gone already; nothing of ours is left on it then
                pass
        if self._connected_here:
            try:
                self._ray.shutdown()  # a private cluster stops; a joined one keeps running, we only disconnect
            except Exception as e:  # noqa: BLE001 - what the run recorded stands; a shutdown half done is Ray's
                _log.warning("stopping Ray failed: %s: %s", type(e).__name__, _first_line(e))
        return events

    # -- events ------------------------------------------------------------------------------------------------
    def poll(self, timeout: float) -> list[ExecutorEvent]:
        self._chosen = None  # what the lanes hold changes here: a slot chosen before it is chosen again
        if self._lost is not None:
            raise ClusterLost(self._lost)
        with self._ray_failing():
            return self._poll(timeout)

    def _poll(self, timeout: float) -> list[ExecutorEvent]:
        ray = self._ray
        self._rebalance()  # here: the runner has submitted what it had since the last poll
        for run in self._running.values():
            if run.undecided:  # the runner ruled on the reports the last poll returned (prune() came first)
                run.undecided = False
                self._mailbox.decide.remote(run.job.number, run.job.attempt, run.prune_sent)
        if not self._events:
            if self._take is None:
                self._ask_mailbox(ORDER_WAIT)
            # Only each actor's first attempt is awaited: answers are taken in the actor's order of work (a queued
            # call that failed first, its actor dead, waits for the failure of the one ahead, which moves it).
            refs = [self._take, *(lane.ready for lane in self._lanes if lane.ready is not None),
                    *(lane.runs[0].ref for lane in self._lanes if lane.runs and not lane.runs[0].held)]
            ready, _ = ray.wait(refs, num_returns=1, timeout=self._wait(timeout))
            if ready:
                ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
            if self._take in ready:
                self._handle(self._taken())
            self._answered(set(ready))
        self._watch_cluster()
        self._enforce_limits()
        if self._unwritable is not None:  # the run stops: the events wait for close(), which the stop calls
            error, self._unwritable = self._unwritable, None
            raise error
        return self._flush()

    def _ask_mailbox(self, wait_s: float) -> None:
        self._takes_sent += 1
        self._take, self._take_number = self._mailbox.take.remote(wait_s), self._takes_sent

    def _taken(self) -> list[dict[str, Any]]:
        """The mailbox's answer to its long poll: news that the cluster is alive."""
        take, self._take = self._take, None
        try:
            events: list[dict[str, Any]] = self._ray.get(take)
        except self._ray.exceptions.RayError as e:
            if self._watch is not None and not self._watch.reachable_now():
                self._watch.suspect()  # its head does not answer either: the watch decides within its grace
                return []
            # Its head answers, yet the run's mailbox died: `ray stop` (which ends the raylets, the actors with them,
            # before the GCS), or the mailbox's node lost. Either way the run cannot go on without it: it stops as
            # for a lost cluster, its running trials interrupted (they re-run on resume).
            self._lose_cluster(f"the Ray cluster went away: the run's mailbox actor on it died "
                               f"({type(e).__name__}: {_first_line(e)})")
        self._heard = self._take_number
        if self._watch is not None:
            self._watch.heard()
        return events

    def _watch_cluster(self) -> None:
        """Stop the run (``ClusterLost``) once the cluster's head has stopped answering; else conclude the attempts
        held while it was in doubt (their actors died on their own)."""
        watch = self._watch
        if watch is None:
            return
        reason = watch.gone()
        if reason is not None:
            self._lose_cluster(reason)
        for run in [r for r in self._running.values() if r.held and self._heard > r.held_after]:
            run.held = False
            self._finish(run, confirmed=True)

    def _lose_cluster(self, reason: str) -> NoReturn:
        self._lost = reason
        self._closing = True
        for run in self._running.values():
            run.kill_reason = Failure(FailureKind.INTERRUPTED, f"{self._lost} while the trial ran (it runs again "
                                                               "on resume)")
        raise ClusterLost(self._lost)

    def _answered(self, ready: set[Any]) -> None:
        """Take the answers in each actor's order of work: as one attempt ends, the next one on its actor starts."""
        for slot in range(len(self._lanes)):
            lane = self._lanes[slot]
            if lane.ready is not None and lane.ready in ready:
                try:
                    lane.node = self._ray.get(lane.ready)
                except self._ray.exceptions.RayError:
                    lane.node = None  # it died coming up: its first attempt's answer says how
                lane.ready = None
                self._started(lane)
            if lane.runs and lane.runs[0].ref in ready:
                self._finish(lane.runs.pop(0))
                self._started(self._lanes[slot])  # the next one started as it ended (or waits for a new actor)

    def _rebalance(self) -> None:
        """An actor with nothing to do while another holds a queued attempt (the end of a run, mostly): ask that
        attempt back, so that it starts now on the idle actor rather than after the running one ends. (The actor
        gives it back only if it has not started it, deciding under the lock it starts attempts under: an attempt
        never runs twice.)"""
        if self._closing:
            return
        idle = sum(1 for lane in self._lanes if not lane.runs and lane.ready is None)
        for lane in self._lanes:
            if idle <= 0:
                return
            if lane.runs and lane.runs[0].held:
                continue  # its actor is dead: what waits behind it moves when the watch decides
            for run in lane.runs[1:]:
                if not run.yielding and not run.stays and run.kill_reason is None and idle > 0:
                    run.yielding = True
                    idle -= 1
                    self._mailbox.order.remote(run.job.number, run.job.attempt, "yield", run.lane)

    def _move(self, run: _Running) -> None:
        """A queued attempt its actor gave back: to an idle actor (or the best place in a queue), another than the
        one that gave it back where one is as good. (Its own actor may be idle by now too: the one ahead ended as it
        gave it back. Sent back there, the ask and the answer were a round trip for nothing, and the actor that
        was idle, the reason it was asked back, stays idle.) An idle actor that is up comes first: one coming up
        starts it only seconds later."""
        run.yielding, run.unannounced = False, None
        lane = self._lanes[run.slot]
        if run in lane.runs:
            lane.runs.remove(run)
        slot = min((i for i, other in enumerate(self._lanes) if not other.runs), default=None,
                   key=lambda i: (self._lanes[i].ready is not None, i == run.slot))
        if slot is None:
            slot = min(range(len(self._lanes)), key=lambda i: (any(r.held for r in self._lanes[i].runs),
                                                               len(self._lanes[i].runs), i == run.slot))
        run.slot, run.started = slot, None
        self._send(run)

    def _started(self, lane: _Lane) -> None:
        if lane.runs and lane.ready is None and lane.runs[0].started is None:
            self._begin(lane.runs[0])

    def _begin(self, run: _Running, announce: bool = True) -> None:
        """The attempt begins in its actor now (as the coordinator learns it: within one call's latency). One that
        begins after its submission (queued, moved, or waiting for its actor to come up) is reported, so that the
        runner records it running from now, not from its submission."""
        run.started = self.clock.monotonic()
        if run.kill_reason is not None:  # stopped while queued: it ends as it starts, or as a running one
            run.kill_deadline = run.started + KILL_GRACE
        elif announce and run.yielding:  # asked back: it began now only if its actor had not given it back yet
            run.unannounced = self.clock.now()
        elif announce:
            self._events.append(AttemptStarted(run.job.number, run.job.attempt, self.clock.now()))

    def _wait(self, timeout: float) -> float:
        now = self.clock.monotonic()
        wait = timeout
        for run in self._running.values():
            if run.kill_deadline is not None:
                wait = min(wait, max(0.0, run.kill_deadline - now))
            elif run.started is not None and run.job.timeout is not None:
                wait = min(wait, max(0.0, run.started + run.job.timeout - now))
        return wait

    def _flush(self) -> list[ExecutorEvent]:
        events, self._events = self._events, []
        return events

    def _handle(self, events: list[dict[str, Any]]) -> None:
        for ev in events:
            run = self._running.get(ev["number"])
            if run is None or run.job.attempt != ev["attempt"]:
                continue
            kind = ev["ev"]
            if kind == "checkpoint":
                self._arrived(run.job, ev["archive"], ev["note"])
            elif kind == "report" and run.kill_reason is None:
                run.reports_seen += 1
                restated = bool(ev.get("restated"))
                if run.job.sync_reports and not restated:
                    run.undecided = True
                self._events.append(TrialReported(run.job.number, Report(int(ev["step"]), float(ev["value"]),
                                                                         restated=restated)))
                if run.result is not None and run.reports_seen >= run.result.get("reports", 0):
                    self._conclude(run, self.clock.monotonic() - (run.started or run.submitted))
            elif kind == "failed" and run.kill_reason is None:
                run.kill_reason = Failure(FailureKind(ev["kind"]), ev["message"])
            elif kind == "yielded" and run.yielding:  # (else moved already: its answer came first)
                run.yielding = False
                if ev["given_back"] and run.kill_reason is None:
                    self._move(run)
                elif not ev["given_back"]:  # it had begun there: it stays, and is not asked again
                    run.stays = True
                    if run.unannounced is not None:
                        self._events.append(AttemptStarted(run.job.number, run.job.attempt, run.unannounced))
                        run.unannounced = None
            elif kind == "spent":
                run.spent = {"cpu_s": float(ev["cpu_s"]), "peak_rss": int(ev["peak_rss"])}

    def _finish(self, run: _Running, confirmed: bool = False) -> None:
        """Its actor answered. An attempt ends after everything it posted: reports still on their way are awaited.
        ``confirmed``: its actor died, and the mailbox answered since: the cluster lives, the attempt was lost."""
        ray = self._ray
        duration = self.clock.monotonic() - (run.started or run.submitted)
        try:
            run.result = ray.get(run.ref)
        except ray.exceptions.RayError as e:
            lane = self._lanes[run.slot]
            if self._watch is not None and not confirmed and run.kill_reason is None:
                # An actor that died unbidden: the whole cluster may be going (`ray stop` ends the actors before the
                # head): the attempt is LOST (and retried) only once the mailbox answers a poll sent after this;
                # else the watch, or the mailbox's death, stops the run and it is interrupted (it re-runs on resume).
                # (One we killed, a timeout or a stop, ended as we bade it: concluded now, as before.)
                self._watch.suspect()
                run.held, run.held_after = True, self._takes_sent
                if run.lane == lane.id and run not in lane.runs:
                    lane.runs.insert(0, run)  # its lane stays taken, its actor dead, until then
                return
            if run in lane.runs:  # (a held run, concluded now)
                lane.runs.remove(run)
            run.result, run.error = {}, e
            if run.lane == lane.id:
                self._replace(run.slot)  # what was queued behind it moves to the new actor
        self._arrived(run.job, run.result.get("checkpoint"), run.result.get("checkpoint_note"))
        if run.result.get("given_back") and run.kill_reason is None:  # its answer came before the "yielded" event
            run.result = None
            self._move(run)
            return
        if run.reports_seen < run.result.get("reports", 0) and run.kill_reason is None:
            return  # _handle ends it when the last report arrives
        self._conclude(run, duration)

    def _arrived(self, job: TrialJob, archive: bytes | None, note: str | None) -> None:
        """A checkpoint from a node without this machine's files: into the trial folder, where PBT's children, a
        retry and a resume look for it."""
        if archive is not None:
            try:
                unpack(archive, Path(job.workdir))
            except (OSError, ValueError, EOFError, tarfile.TarError) as e:
                _log.warning("trial %d: its checkpoint from another node could not be unpacked: %s", job.number, e)
        if note is not None:
            _log.warning("trial %d: its checkpoint stayed on its node (%s); a trial continuing from it on another "
                         "node starts without it", job.number, note)

    def _conclude(self, run: _Running, duration: float) -> None:
        ray, result = self._ray, run.result or {}
        if not result:  # it died: whatever it posted last (a memory breach, what it spent) may be in the mailbox
            self._read_last_words()
        unwritable = result.get("unwritable")  # its folder, the coordinator's, refused its log (a full disk)
        if "outcome" in result:
            outcome = outcome_from_json(result["outcome"])
            if run.kill_reason is not None:  # it finished as we were killing it: the kill decides
                outcome = Outcome(failure=run.kill_reason, duration_s=outcome.duration_s, notes=outcome.notes)
            elif outcome.failure is None:
                self._recent.append(outcome.duration_s)
        elif unwritable is not None:  # (one we were killing, which the kill decides, or one ending as we close)
            outcome = Outcome(failure=run.kill_reason or Failure(FailureKind.INTERRUPTED, unwritable),
                              duration_s=duration)
        elif result.get("started") is False:  # stopped before it started
            outcome = Outcome(failure=run.kill_reason or Failure(FailureKind.INTERRUPTED, "stopped before it started"))
        elif isinstance(run.error, ray.exceptions.RayTaskError):  # our harness raised
            harness = Failure(FailureKind.CRASHED, "the trial's Ray actor call failed: " + _first_line(run.error))
            outcome = Outcome(failure=run.kill_reason or harness, duration_s=duration)
        else:  # its worker process or node died, or we killed it
            outcome = Outcome(failure=run.kill_reason or Failure(
                FailureKind.LOST, f"the Ray worker running the trial was lost ({type(run.error).__name__}): "
                                  f"{_first_line(run.error or RuntimeError('no answer'))}"), duration_s=duration)
        if result.get("started") is not False:  # (an attempt killed by an order is charged what it had used then;
            # one whose actor died unannounced, or whose last word came too late, was not measured: unknown, not 0)
            spent = result.get("spent") or run.spent
            outcome = priced(run.job, outcome, None if spent is None else float(spent["cpu_s"]),
                             None if spent is None else int(spent["peak_rss"]))
        if unwritable is not None and run.kill_reason is None and not self._closing:
            self._unwritable = self._unwritable or workdir_error(run.job.number, run.job.workdir, unwritable)
            if "outcome" not in result:  # no AttemptEnded: the trial stays running for the runner, whose stop
                self._let_go(run)        # records it interrupted
                return
        self._end(run, outcome)

    def _read_last_words(self) -> None:
        """Read the mailbox up to now: the long poll in flight (what came before its answer), then what came after.
        An answer slower than ``LAST_WORDS_TIMEOUT`` is kept for the next poll, not dropped: it holds the other
        attempts' events too (a report lost there leaves its attempt waiting for it for ever). The attempt ending
        now ends with what is known."""
        ray = self._ray
        for _ in range(2 if self._take is not None else 1):
            if self._take is None:
                self._ask_mailbox(0)
            try:
                events = ray.get(self._take, timeout=LAST_WORDS_TIMEOUT)
            except ray.exceptions.GetTimeoutError:
                return  # the mailbox is slow: poll reads the answer when it comes
            except ray.exceptions.RayError:
                self._take = None  # the mailbox is gone: the next poll says so, or the watch does
                return
            self._take = None
            self._heard = self._take_number
            self._handle(events)

    def _end(self, run: _Running, outcome: Outcome) -> None:
        job = run.job
        if outcome.failure is not None and outcome.failure.kind is not FailureKind.INTERRUPTED and (
                run.kill_reason is not None or outcome.failure.kind is FailureKind.LOST):
            failure = with_tail(outcome.failure, OUTPUT_LABEL,
                                without_header(read_tail(job.log_path, run.log_start), job.attempt),
                                secrets_of(job.env, os.environ))
            outcome = Outcome(failure=failure, duration_s=outcome.duration_s, metrics=outcome.metrics,
                              notes=outcome.notes)
        self._let_go(run)
        self._events.append(AttemptEnded(job.number, job.attempt, outcome))

    def _let_go(self, run: _Running) -> None:
        """The attempt is no longer this executor's: its lane and the mailbox forget it."""
        job = run.job
        if run.unannounced is not None:  # it ran, its answer ahead of its actor's to the yield: it began as thought
            self._events.append(AttemptStarted(job.number, job.attempt, run.unannounced))
        del self._running[job.number]
        lane = self._lanes[run.slot]
        if run in lane.runs:
            lane.runs.remove(run)
        if self._lost is None and (run.reports_seen or run.prune_sent or run.kill_reason is not None):  # it left
            # something in the mailbox
            self._mailbox.forget.remote(job.number, job.attempt)

    def _enforce_limits(self) -> None:
        now = self.clock.monotonic()
        for run in list(self._running.values()):
            timeout = run.job.timeout
            if run.kill_deadline is not None:
                if now >= run.kill_deadline:
                    run.kill_deadline = math.inf  # once
                    if run.lane == self._lanes[run.slot].id:
                        self._ray.kill(self._lanes[run.slot].actor)
            elif timeout is not None and run.started is not None and now - run.started >= timeout:
                self._kill(run, Failure(FailureKind.TIMEOUT, f"exceeded trial_timeout of {format_duration(timeout)}; "
                                                             "the trial's Ray worker and its children were killed"))

    def _replace(self, slot: int) -> None:
        """The slot's actor died (or we killed it): a new one takes the slot, unless the run is ending. The attempts
        queued behind the one that died never started: they go to the new actor as they are."""
        old = self._lanes[slot]
        try:
            self._ray.kill(old.actor)  # a harness error leaves it alive, holding the slot's resources
        except Exception:  # noqa: BLE001 - dead already
            pass
        if self._closing:
            return
        self._lanes[slot] = self._new_lane()
        queued, old.runs = old.runs, []
        for run in queued:
            if run.kill_reason is None:
                run.started, run.kill_deadline, run.yielding, run.unannounced = None, None, False, None
                self._send(run)
            else:  # stopped while queued: it never started, and now it never will
                self._end(run, Outcome(failure=run.kill_reason))

    def _kill(self, run: _Running, reason: Failure) -> None:
        if run.kill_reason is None:
            run.kill_reason = reason
        if run.kill_deadline is not None or self._lost is not None:
            return  # ordered already, or nobody is left to order
        # A queued attempt reads the order as it starts, and ends there. (Not ray.cancel: cancelling a queued actor
        # call leaves a gap in the actor's sequence of calls, and the next call waits ~30 s, then fails.)
        run.kill_deadline = math.inf if run.started is None else self.clock.monotonic() + KILL_GRACE
        self._mailbox.order.remote(run.job.number, run.job.attempt, "kill", run.lane)


def _head_of(ray: Any, address: str) -> HeadAddress | None:
    """Where the cluster's head answers: the Ray client server of a ``ray://`` address, else the GCS."""
    if address.startswith("ray://"):
        return HeadAddress.parse(address)
    try:
        return HeadAddress.parse(ray.get_runtime_context().gcs_address or "")
    except Exception:  # noqa: BLE001 - no GCS address to watch (an unusual connection): Ray's own errors then
        return None


_FIELD_OF = {"cpu": "CPU", "gpu": "GPU", "memory": "memory"}  # resources_per_trial's fields: Ray's names


def _ray_resources(res: TrialResources) -> dict[str, float]:
    """What one trial asks of a node, in Ray's names (only what it asks: 0 asks nothing)."""
    need = {"CPU": res.cpu, "GPU": res.gpu, "memory": float(res.memory or 0), **res.custom}
    return {key: float(value) for key, value in need.items() if value}


def _holds(node: dict[str, float], need: dict[str, float]) -> bool:
    return all(node.get(key, 0.0) + 1e-9 >= value for key, value in need.items())


def _offer(resources: dict[str, float]) -> str:
    shown = {key: (_mib(int(v)) if key == "memory" else f"{v:g}") for key, v in sorted(resources.items())
             if key in ("CPU", "GPU", "memory") or not (key.startswith("node:") or key.endswith("object_store_memory")
                                                        or key.startswith("accelerator_type:"))}
    return ", ".join(f"{key} {value}" for key, value in shown.items()) or "nothing"


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines() or [type(e).__name__])[0][:300]


def _mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB"
