"""The Ray executor (``executor.kind: ray``): trial attempts run on a Ray cluster, in Ray Core actors.

The only module that imports ray, and only when a Ray executor starts. How it keeps the process executor's promises:

- One actor per worker slot, holding ``resources_per_trial`` for the run, runs attempts one after another in its
  Ray worker process through the same code as the process executor's worker (``worker.run_job``). A direct
  actor call skips Ray's per-task scheduling (a worker lease per task: ~5-16 ms here against ~2.6 ms a call),
  and no interpreter starts per trial.
- A small async mailbox actor, one per run, carries what crosses during a trial: an attempt's start, its reports
  (and, for ``sync_reports``, the scheduler's decision back), prune and kill orders, a memory-limit breach. Only
  JSON-able primitives cross; the job and the outcome travel as the same JSON as on the process executor's pipes.
- A kill (timeout, stop, Ctrl-C) is an order to the attempt: its watcher thread SIGKILLs the trial's child processes
  (a command trial's shell and all it started) and ends its actor's process. An actor whose call has not ended
  ``KILL_GRACE`` seconds later (stuck in C code holding the GIL) is killed with ``ray.kill``. A dead actor is
  replaced by a new one for its slot.
- Nothing is retried by Ray (``max_restarts=0``, ``max_task_retries=0``): the runner retries. An attempt whose
  actor process or node died ends LOST with Ray's reason, and the runner retries it under ``retries``. Ray's
  state is disposable; the store is the truth.
- ``trial_timeout`` counts from the moment the attempt starts in its actor (not while a new actor starts).
- The cluster itself going away (its head killed, ``ray stop``) is told apart from one worker dying by probing the
  head (``cluster_watch``): within a few seconds the run stops with ``ClusterLost``, its running trials recorded
  INTERRUPTED with the reason (so they re-run on ``resume``, uncounted: a LOST attempt would be retried onto the
  dead cluster), and no Ray call is made on the dead cluster after that, so nothing hangs.
- Checkpoints reach a node that does not share the coordinator's files through Ray (``checkpoint_shipping``): in
  with the job, out with the reports and the answer, into the coordinator's trial folder.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import tarfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from tunesmith.clock import Clock, SystemClock
from tunesmith.errors import ClusterLost, UserInputError
from tunesmith.evaluation.job import TrialJob
from tunesmith.evaluation.output_tail import OUTPUT_LABEL, read_tail, with_tail
from tunesmith.executor.base import AttemptEnded, ExecutorEvent, TrialReported
from tunesmith.executor.checkpoint_shipping import (
    DEFAULT_LIMIT, TRAVELLING, CheckpointTooLarge, NodeLocalFolder, pack, unpack,
)
from tunesmith.executor.cluster_watch import ClusterWatch, HeadAddress, head_answers
from tunesmith.executor.processes import kill_descendants, tree_rss
from tunesmith.executor.wire import outcome_from_json, outcome_to_json
from tunesmith.records import Failure, FailureKind, Outcome, Report
from tunesmith.redaction import secrets_of
from tunesmith.spec.units import format_duration

if TYPE_CHECKING:
    from tunesmith.spec.model import Executor as ExecutorSpec

KILL_GRACE = 2.0            # seconds an attempt has to end itself after a kill order before its actor is killed
ORDER_WAIT = 1.0            # an attempt's watcher long-polls the mailbox this long per call
MEMORY_CHECK_INTERVAL = 0.25
REPORT_DECISION_TIMEOUT = 30.0  # a report waits at most this long for the scheduler's decision, then carries on
KILLED_EXIT = 137
LOCAL_OBJECT_STORE = 512 * 2**20  # a private cluster's object store: trials pass JSON, not arrays
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
    try:
        import ray
    except ImportError:
        raise UserInputError("executor.kind: ray needs Ray: pip install 'tunesmith[ray]'") from None
    return ray


# -- what runs on the cluster ---------------------------------------------------------------------------------
class Mailbox:
    """The run's async actor: events from attempts to the coordinator, orders from the coordinator to attempts.

    Keys are (trial number, attempt), so a retry never sees an order meant for the attempt before it.
    """

    def __init__(self) -> None:
        self._events: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()
        self._orders: dict[tuple[int, int], str] = {}
        self._order_changed: dict[tuple[int, int], asyncio.Event] = {}
        self._decided: dict[tuple[int, int], asyncio.Event] = {}

    def _post(self, event: dict[str, Any]) -> None:
        self._events.append(event)
        self._arrived.set()

    async def started(self, number: int, attempt: int, pid: int, node: str) -> None:
        self._post({"ev": "started", "number": number, "attempt": attempt, "pid": pid, "node": node})

    async def failed(self, number: int, attempt: int, kind: str, message: str) -> None:
        self._post({"ev": "failed", "number": number, "attempt": attempt, "kind": kind, "message": message})

    async def checkpoint(self, number: int, attempt: int, archive: bytes | None, note: str | None) -> None:
        """A trial on a node without the coordinator's files saved a checkpoint (``note``: why it did not travel)."""
        self._post({"ev": "checkpoint", "number": number, "attempt": attempt, "archive": archive, "note": note})

    async def report(self, number: int, attempt: int, step: int, value: float, wait: bool) -> bool:
        """Post a report; with ``wait``, return once the coordinator decided on it. Returns: prune now?"""
        key = (number, attempt)
        decided = self._decided.setdefault(key, asyncio.Event())
        decided.clear()
        self._post({"ev": "report", "number": number, "attempt": attempt, "step": step, "value": value})
        if wait and key not in self._orders:
            try:
                await asyncio.wait_for(decided.wait(), REPORT_DECISION_TIMEOUT)
            except TimeoutError:
                pass
        return key in self._orders

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

    async def decide(self, number: int, attempt: int) -> None:
        self._decided.setdefault((number, attempt), asyncio.Event()).set()

    async def order(self, number: int, attempt: int, what: str) -> None:
        """``prune`` or ``kill`` (a kill overrides a prune)."""
        key = (number, attempt)
        if self._orders.get(key) != "kill":
            self._orders[key] = what
        self._order_changed.setdefault(key, asyncio.Event()).set()
        self._decided.setdefault(key, asyncio.Event()).set()

    async def next_order(self, number: int, attempt: int, seen: str | None, wait_s: float) -> str | None:
        """The attempt's order, once it differs from ``seen``, waiting up to ``wait_s``."""
        key = (number, attempt)
        if self._orders.get(key) == seen:
            changed = self._order_changed.setdefault(key, asyncio.Event())
            changed.clear()
            try:
                await asyncio.wait_for(changed.wait(), wait_s)
            except TimeoutError:
                pass
        return self._orders.get(key)

    async def forget(self, number: int, attempt: int) -> None:
        key = (number, attempt)
        self._orders.pop(key, None)
        self._order_changed.pop(key, None)
        self._decided.pop(key, None)


class TrialRunner:
    """The actor of one worker slot: runs one attempt at a time in its process."""

    def run(self, job_json: dict[str, Any], mailbox: Any, shipment: dict[str, Any] | None = None) -> dict[str, Any]:
        return run_trial_task(job_json, mailbox, shipment)


def run_trial_task(job_json: dict[str, Any], mailbox: Any, shipment: dict[str, Any] | None = None) -> dict[str, Any]:
    """One attempt: run it here, relay reports and orders through ``mailbox``; returns the outcome's JSON.

    ``shipment``: the coordinator's node and the trial's checkpoints, for a node that does not see its files.
    """
    import ray

    from tunesmith.executor.worker import run_job

    job = TrialJob.from_json(job_json)
    n, a = job.number, job.attempt
    node = ray.get_runtime_context().get_node_id()
    mailbox.started.remote(n, a, os.getpid(), node)
    away: NodeLocalFolder | None = None
    if shipment is not None and shipment["origin"] != node and NodeLocalFolder.applies(Path(job.workdir)):
        away = NodeLocalFolder(Path(job.workdir), shipment["limit"])
        away.receive(shipment["files"])
    prune = threading.Event()
    done = threading.Event()

    def end_now(kind: str | None = None, message: str = "") -> None:
        if done.is_set():
            return
        if kind is not None:
            ray.get(mailbox.failed.remote(n, a, kind, message))
        kill_descendants(os.getpid())
        os._exit(KILLED_EXIT)  # this actor's process goes; the coordinator starts a new actor for the slot

    def watch() -> None:
        seen: str | None = None
        wait = MEMORY_CHECK_INTERVAL if job.memory_limit is not None else ORDER_WAIT
        while not done.is_set():
            try:
                order = ray.get(mailbox.next_order.remote(n, a, seen, wait))
            except Exception:  # noqa: BLE001 - the mailbox is gone with its run; Ray ends this job's actors
                return
            if order == "kill":
                end_now()
            elif order == "prune":
                prune.set()
            seen = order
            if job.memory_limit is not None and not done.is_set():
                rss = tree_rss(os.getpid())
                if rss > job.memory_limit:
                    end_now(FailureKind.MEMORY.value, f"memory use {_mib(rss)} of the trial's Ray worker and its "
                                                      f"children exceeded memory_limit {_mib(job.memory_limit)}; killed")

    sent = 0

    def report(r: Report) -> None:
        nonlocal sent
        sent += 1
        if away is not None:  # a checkpoint saved before this report reaches the coordinator before the report
            archive, note = away.changed()
            if archive is not None or note is not None:  # awaited: an async actor need not keep the calls' order
                ray.get(mailbox.checkpoint.remote(n, a, archive, note))
        if ray.get(mailbox.report.remote(n, a, r.step, r.value, job.sync_reports)):
            prune.set()

    threading.Thread(target=watch, name="tunesmith-orders", daemon=True).start()
    try:
        outcome = run_job(job, report, prune.is_set)
    finally:
        done.set()
    result: dict[str, Any] = {"outcome": outcome_to_json(outcome), "reports": sent}
    if away is not None:
        result["checkpoint"], result["checkpoint_note"] = away.changed()
    return result


# -- the coordinator's side -------------------------------------------------------------------------------------
@dataclass
class _Running:
    job: TrialJob
    ref: Any
    slot: int
    submitted: float
    log_start: int
    started: float | None = None
    kill_reason: Failure | None = None
    kill_deadline: float | None = None
    undecided: bool = False
    held: bool = False    # its actor died while the cluster's head did not answer: concluded once the watch decides
    prune_sent: bool = False
    reports_seen: int = 0
    result: dict[str, Any] | None = None  # the attempt's answer, held until all its reports have arrived


class RayExecutor:
    """Args:
        workers: how many trials run at once.
        address: ``local`` starts a private cluster for the run and stops it after; ``auto``, ``host:port`` or
            ``ray://host:10001`` joins a running cluster and leaves it running. A Ray already initialized in this
            process (the Python API) is used as it is, and left as it is.
        resources: what each trial reserves.
        clock: the clock for deadlines.
        temp_dir: a private cluster's session folder (short: it holds unix sockets); None: Ray's default.
        checkpoint_limit: the most bytes of checkpoint files that travel to or from a node that does not share the
            coordinator's files.
    """

    def __init__(self, workers: int, address: str = "local", resources: TrialResources | None = None,
                 clock: Clock | None = None, temp_dir: str | None = None,
                 checkpoint_limit: int = DEFAULT_LIMIT) -> None:
        self.workers = workers
        self.address = address
        self.resources = resources or TrialResources()
        self.clock = clock or SystemClock()
        self.temp_dir = temp_dir
        self.checkpoint_limit = checkpoint_limit
        self._ray: Any = None
        self._runner_class: Any = None
        self._slots: list[Any] = []       # one actor per worker slot
        self._busy: set[int] = set()
        self._mailbox: Any = None
        self._take: Any = None
        self._running: dict[int, _Running] = {}
        self._events: list[ExecutorEvent] = []
        self._connected_here = False
        self._closing = False
        self._watch: ClusterWatch | None = None
        self._lost: str | None = None     # why the cluster counts as gone; no Ray call is made after that
        self._origin: str | None = None   # this process's node: its actors see the trial folders
        self._slot_nodes: dict[int, str] = {}

    @classmethod
    def from_spec(cls, spec: ExecutorSpec, clock: Clock | None = None) -> RayExecutor:
        r = spec.resources_per_trial
        resources = TrialResources(r.cpu, r.gpu, r.memory, dict(r.custom)) if r is not None else TrialResources()
        return cls(spec.workers, spec.address or "local", resources, clock)

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        ray = self._ray = import_ray()
        if not ray.is_initialized():
            self._connect(ray)
        res = self.resources
        options: dict[str, Any] = {"num_cpus": res.cpu, "num_gpus": res.gpu, "max_restarts": 0,
                                   "max_task_retries": 0}
        if res.memory:
            options["memory"] = res.memory
        if res.custom:
            options["resources"] = dict(res.custom)
        self._runner_class = ray.remote(TrialRunner).options(**options)
        self._mailbox = ray.remote(Mailbox).options(num_cpus=0, max_concurrency=1000).remote()
        self._slots = [self._runner_class.remote() for _ in range(self.workers)]
        head = _head_of(ray, self.address)
        self._origin = None if self.address.startswith("ray://") else ray.get_runtime_context().get_node_id()
        self._watch = ClusterWatch(head, self.clock) if head is not None else None

    def _connect(self, ray: Any) -> None:
        quiet = {"log_to_driver": False, "logging_level": "ERROR"}
        # Read by Ray as this driver starts. ray.shutdown() waits up to this long to flush task events to a cluster
        # (Ray's default 5 s, all of it when the cluster went away); a live cluster takes milliseconds.
        env = {SHUTDOWN_FLUSH: os.environ.get(SHUTDOWN_FLUSH, "1000")}
        if self.address == "local":
            # a private cluster: token auth off for it alone (it binds this machine and lives as long as the run)
            env.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
        named = HeadAddress.parse(self.address)
        if named is not None and not head_answers(named):  # ray.init would wait minutes for it
            raise ClusterLost(f"no Ray cluster answers at {self.address} (executor.address): start one there "
                              "(`ray start --head --port=PORT`), or change the address")
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            if self.address != "local":
                ray.init(address=self.address, **quiet)
            else:
                cpus = max(os.cpu_count() or 1, math.ceil(self.workers * self.resources.cpu))
                ray.init(address="local", num_cpus=cpus, include_dashboard=False,
                         object_store_memory=LOCAL_OBJECT_STORE, _temp_dir=self.temp_dir, **quiet)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        self._connected_here = True

    def free_slots(self) -> int:
        return 0 if self._closing else max(0, self.workers - len(self._busy))

    def submit(self, job: TrialJob) -> None:
        slot = next(i for i in range(self.workers) if i not in self._busy)
        self._busy.add(slot)
        ref = self._slots[slot].run.remote(job.to_json(), self._mailbox, self._shipment(job, slot))
        self._running[job.number] = _Running(job, ref, slot, self.clock.monotonic(), _size(job.log_path))

    def _shipment(self, job: TrialJob, slot: int) -> dict[str, Any] | None:
        """The trial's checkpoints, for an actor that may be on a node without this machine's files."""
        if self._origin is not None and self._slot_nodes.get(slot) == self._origin:
            return None  # the actor runs beside the coordinator
        try:
            files = pack(Path(job.workdir), TRAVELLING, self.checkpoint_limit)
        except CheckpointTooLarge as e:
            files = None
            _log.warning("trial %d: %s; if it runs on a node without this machine's files, it starts without its "
                         "checkpoint", job.number, e)
        return {"origin": self._origin, "files": files, "limit": self.checkpoint_limit}

    def prune(self, number: int) -> None:
        run = self._running.get(number)
        if run is not None and not run.prune_sent and self._lost is None:
            run.prune_sent = True
            self._mailbox.order.remote(number, run.job.attempt, "prune")

    def stop(self, number: int, kind: FailureKind, reason: str | None = None) -> None:
        run = self._running.get(number)
        if run is not None:
            default = "interrupted by the user" if kind is FailureKind.INTERRUPTED else "stopped by the coordinator"
            self._kill(run, Failure(kind, reason or default))

    def close(self, grace: float) -> list[ExecutorEvent]:
        self._closing = True
        events: list[ExecutorEvent] = []
        if self._ray is None:
            return events
        try:
            deadline = self.clock.monotonic() + grace
            while self._running and self.clock.monotonic() < deadline:
                events += self.poll(min(0.2, max(0.0, deadline - self.clock.monotonic())))
            for run in list(self._running.values()):
                self._kill(run, Failure(FailureKind.INTERRUPTED, f"still running after the {format_duration(grace)} "
                                                                 "grace period"))
            give_up = self.clock.monotonic() + KILL_GRACE + 10.0
            while self._running and self.clock.monotonic() < give_up:
                events += self.poll(0.2)
        except ClusterLost:
            pass  # every running attempt now carries the cluster's loss as its reason
        for run in list(self._running.values()):  # the cluster does not answer: say so rather than hang
            self._end(run, Outcome(failure=run.kill_reason or Failure(FailureKind.LOST, "no answer from the Ray cluster")))
        events += self._flush()
        for actor in [*self._slots, self._mailbox] if self._lost is None else []:
            try:
                self._ray.kill(actor)
            except Exception:  # noqa: BLE001 - the cluster may be gone already; nothing of ours is left on it then
                pass
        if self._connected_here:
            self._ray.shutdown()  # a private cluster stops; a joined one keeps running, we only disconnect
        return events

    # -- events ------------------------------------------------------------------------------------------------
    def poll(self, timeout: float) -> list[ExecutorEvent]:
        ray = self._ray
        if self._lost is not None:
            raise ClusterLost(self._lost)
        for run in self._running.values():
            if run.undecided:  # the runner ruled on the reports the last poll returned (prune() came first)
                run.undecided = False
                self._mailbox.decide.remote(run.job.number, run.job.attempt)
        if not self._events:
            if self._take is None:
                self._take = self._mailbox.take.remote(ORDER_WAIT)
            refs = [self._take, *(r.ref for r in self._running.values() if not r.held)]
            ready, _ = ray.wait(refs, num_returns=1, timeout=self._wait(timeout))
            if ready:
                ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
            if self._take in ready:
                self._handle(self._taken())
            for run in [r for r in self._running.values() if r.ref in ready and r.result is None]:
                self._finish(run)
        self._watch_cluster()
        self._enforce_limits()
        return self._flush()

    def _taken(self) -> list[dict[str, Any]]:
        """The mailbox's answer to its long poll: news that the cluster is alive."""
        take, self._take = self._take, None
        try:
            events: list[dict[str, Any]] = self._ray.get(take)
        except self._ray.exceptions.RayError:
            if self._watch is None or self._watch.reachable_now():
                raise  # the mailbox died on a live cluster: the run cannot go on
            self._watch.suspect()
            return []
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
        if watch.unreachable_for() == 0.0:
            for run in [r for r in self._running.values() if r.held]:
                run.held = False
                self._finish(run)

    def _lose_cluster(self, reason: str) -> None:
        self._lost = reason
        self._closing = True
        for run in self._running.values():
            run.kill_reason = Failure(FailureKind.INTERRUPTED, f"{self._lost} while the trial ran (it runs again "
                                                               "on resume)")
        raise ClusterLost(self._lost)

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
            if kind == "started":
                run.started = self.clock.monotonic()
                self._slot_nodes[run.slot] = ev["node"]
            elif kind == "checkpoint":
                self._arrived(run.job, ev["archive"], ev["note"])
            elif kind == "report" and run.kill_reason is None:
                run.reports_seen += 1
                if run.job.sync_reports:
                    run.undecided = True
                self._events.append(TrialReported(run.job.number, Report(int(ev["step"]), float(ev["value"]))))
                if run.result is not None and run.reports_seen >= run.result.get("reports", 0):
                    self._conclude(run, self.clock.monotonic() - (run.started or run.submitted))
            elif kind == "failed" and run.kill_reason is None:
                run.kill_reason = Failure(FailureKind(ev["kind"]), ev["message"])

    def _finish(self, run: _Running) -> None:
        """Its actor answered. An attempt ends after everything it posted: reports still on their way are awaited."""
        ray = self._ray
        duration = self.clock.monotonic() - (run.started or run.submitted)
        try:
            run.result = ray.get(run.ref)
        except ray.exceptions.RayError:
            if self._watch is not None:
                self._watch.suspect()
                if not self._watch.reachable_now():  # the whole cluster may be going: the watch decides
                    run.held = True
                    return
            run.result = {}
            self._replace(run.slot)
        self._arrived(run.job, run.result.get("checkpoint"), run.result.get("checkpoint_note"))
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
        ray = self._ray
        if not run.result:  # it died: whatever it posted last (a memory breach) may still be in the mailbox
            try:
                if self._take is not None:
                    self._handle(ray.get(self._take, timeout=LAST_WORDS_TIMEOUT))
                    self._take = None
                self._handle(ray.get(self._mailbox.take.remote(0), timeout=LAST_WORDS_TIMEOUT))
            except ray.exceptions.RayError:
                self._take = None  # the mailbox is gone or slow: the attempt ends with what is known
        try:
            outcome = outcome_from_json(ray.get(run.ref)["outcome"])
            if run.kill_reason is not None:  # it finished as we were killing it: the kill decides
                outcome = Outcome(failure=run.kill_reason, duration_s=outcome.duration_s)
        except ray.exceptions.RayTaskError as e:  # our harness raised (an unwritable log folder, say)
            outcome = Outcome(failure=run.kill_reason or Failure(FailureKind.CRASHED, "the trial's Ray actor call failed: "
                                                                 + _first_line(e)), duration_s=duration)
        except ray.exceptions.RayError as e:  # its worker process or node died, or we cancelled it
            outcome = Outcome(failure=run.kill_reason or Failure(
                FailureKind.LOST, f"the Ray worker running the trial was lost ({type(e).__name__}): {_first_line(e)}"),
                duration_s=duration)
        self._end(run, outcome)

    def _end(self, run: _Running, outcome: Outcome) -> None:
        job = run.job
        if outcome.failure is not None and outcome.failure.kind is not FailureKind.INTERRUPTED and (
                run.kill_reason is not None or outcome.failure.kind is FailureKind.LOST):
            failure = with_tail(outcome.failure, OUTPUT_LABEL, read_tail(job.log_path, run.log_start),
                                secrets_of(job.env, os.environ))
            outcome = Outcome(failure=failure, duration_s=outcome.duration_s)
        del self._running[job.number]
        self._busy.discard(run.slot)
        if self._lost is None:
            self._mailbox.forget.remote(job.number, job.attempt)
        self._events.append(AttemptEnded(job.number, job.attempt, outcome))

    def _enforce_limits(self) -> None:
        now = self.clock.monotonic()
        for run in list(self._running.values()):
            timeout = run.job.timeout
            if run.kill_deadline is not None:
                if now >= run.kill_deadline:
                    run.kill_deadline = math.inf  # once
                    self._ray.kill(self._slots[run.slot])
            elif timeout is not None and run.started is not None and now - run.started >= timeout:
                self._kill(run, Failure(FailureKind.TIMEOUT, f"exceeded trial_timeout of {format_duration(timeout)}; "
                                                             "the trial's Ray worker and its children were killed"))

    def _replace(self, slot: int) -> None:
        """The slot's actor died (or we killed it): a new one takes the slot, unless the run is ending."""
        try:
            self._ray.kill(self._slots[slot])  # a harness error leaves it alive, holding the slot's resources
        except Exception:  # noqa: BLE001 - dead already
            pass
        self._slot_nodes.pop(slot, None)  # its successor may start on another node
        if not self._closing:
            self._slots[slot] = self._runner_class.remote()

    def _kill(self, run: _Running, reason: Failure) -> None:
        if run.kill_reason is None:
            run.kill_reason = reason
        if run.kill_deadline is None and self._lost is None:
            run.kill_deadline = self.clock.monotonic() + KILL_GRACE
            self._mailbox.order.remote(run.job.number, run.job.attempt, "kill")


def _head_of(ray: Any, address: str) -> HeadAddress | None:
    """Where the cluster's head answers: the Ray client server of a ``ray://`` address, else the GCS."""
    if address.startswith("ray://"):
        return HeadAddress.parse(address)
    try:
        return HeadAddress.parse(ray.get_runtime_context().gcs_address or "")
    except Exception:  # noqa: BLE001 - no GCS address to watch (an unusual connection): Ray's own errors then
        return None


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
