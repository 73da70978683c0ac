"""A reusable trial worker process: ``python -m tunesmith.executor.worker CMD_FD EVENT_FD [HEARTBEAT_S]``.

It runs jobs one after another, each with stdout/stderr pointed at the trial's own log. When the coordinator
goes away (its end of the command pipe closes) the worker kills its whole session, so no trial outlives it.
Kept free of heavy imports: it starts in tens of milliseconds.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from tunesmith.evaluation.attempt import run_attempt
from tunesmith.evaluation.job import TrialJob
from tunesmith.evaluation.loading import resolve_function
from tunesmith.evaluation.unwritable_folder import FolderUnwritable, refused_writes
from tunesmith.executor.processes import kill_session, own_peak_memory, reset_own_peak_memory
from tunesmith.executor.wire import outcome_to_json
from tunesmith.executor.worker_import_path import restore_users_pythonpath
from tunesmith.records import Outcome, Report

# A report waits at most this long for the coordinator's decision, then carries on (never deadlock a trial).
REPORT_DECISION_TIMEOUT = 30.0


def main(cmd_fd: int, event_fd: int, heartbeat_interval: float = 5.0) -> None:
    restore_users_pythonpath(os.environ)  # the coordinator's import path is this worker's, not its trials'
    commands = os.fdopen(cmd_fd, "r", encoding="utf-8")
    events = os.fdopen(event_fd, "w", encoding="utf-8", buffering=1)
    send_lock = threading.Lock()
    jobs: queue.Queue[dict[str, Any] | None] = queue.Queue()
    prune = threading.Event()
    decided_at: dict[str, int | None] = {"step": None}  # the report the coordinator's stop was decided on
    decided = threading.Event()  # the coordinator has ruled on this trial's reports so far

    def send(message: dict[str, Any]) -> None:
        line = json.dumps(message) + "\n"
        with send_lock:
            events.write(line)
            events.flush()

    def read_commands() -> None:
        for line in commands:
            msg = json.loads(line)
            op = msg.get("op")
            if op == "run":
                jobs.put(msg["job"])
            elif op == "prune":
                decided_at["step"] = msg.get("step")
                prune.set()
            elif op == "ack":
                if msg.get("prune"):
                    prune.set()
                decided.set()
            elif op == "preload":
                jobs.put({"preload": msg["function"], "base_dir": msg.get("base_dir")})
            elif op == "exit":
                jobs.put(None)
                return
        # The coordinator is gone: nothing may outlive it.
        kill_session(os.getsid(0))

    def beat() -> None:
        # From a thread of its own: a worker stopped (SIGSTOP), deadlocked or stuck in C code holding the GIL
        # falls silent, and the coordinator declares its trial lost.
        while True:
            time.sleep(heartbeat_interval)
            send({"ev": "hb"})

    threading.Thread(target=read_commands, name="tunesmith-commands", daemon=True).start()
    threading.Thread(target=beat, name="tunesmith-heartbeat", daemon=True).start()
    devnull = os.open(os.devnull, os.O_WRONLY)
    # The trial's children must not hold the event pipe: one that outlives a crashed worker (a forked
    # multiprocessing child, a `cmd &` started by os.system) would keep it open and hide the crash.
    for fd in (cmd_fd, event_fd):
        os.set_inheritable(fd, False)
    os.register_at_fork(after_in_child=lambda: os.dup2(devnull, event_fd, inheritable=False))
    send({"ev": "ready", "pid": os.getpid()})
    while True:
        item = jobs.get()
        if item is None:
            break
        if "preload" in item:
            _preload(item["preload"], item.get("base_dir"), devnull)
            continue
        job = TrialJob.from_json(item)
        prune.clear()
        decided_at["step"] = None

        def report(r: Report, n: int = job.number, wait: bool = job.sync_reports) -> None:
            if r.restated:  # recorded, not ruled on: no decision to wait for
                return send({"ev": "report", "number": n, "step": r.step, "value": r.value, "restated": True})
            decided.clear()
            send({"ev": "report", "number": n, "step": r.step, "value": r.value})
            if wait:  # so that should_prune() right after report() answers about this very report
                decided.wait(REPORT_DECISION_TIMEOUT)

        if job.cost is not None:
            reset_own_peak_memory()  # the coordinator samples the tree; this catches a peak between its samples
        try:
            outcome = run_job(job, report, prune.is_set, lambda: decided_at["step"])
        except FolderUnwritable as e:  # the coordinator stops the run, once it has recorded an outcome kept
            if e.outcome is None:
                send({"ev": "unwritable", "number": job.number, "attempt": job.attempt, "reason": e.reason})
                continue
            outcome, unwritable = e.outcome, {"unwritable": e.reason}
        else:
            unwritable = {}
        peak = {"peak_rss": own_peak_memory()} if job.cost is not None else {}
        send({"ev": "result", "number": job.number, "attempt": job.attempt, "outcome": outcome_to_json(outcome),
              **peak, **unwritable})


def run_job(job: TrialJob, on_report: Callable[[Report], None], prune_requested: Callable[[], bool],
            decided_step: Callable[[], int | None] | None = None) -> Outcome:
    """Run one attempt of ``job`` in this process with stdout/stderr pointed at the trial's log, then restore them.

    Shared by this worker and the Ray executor's task, which runs trials the same way inside a Ray worker.

    Raises:
        FolderUnwritable: the trial's folder refused a write of its log (a full disk): the coordinator stops the
            run, which its retries would only spend on the same disk; with the attempt's outcome where only the
            log's last flush failed, after the trial's function returned (see ``refused_writes``).
    """
    if job.base_dir and job.function is not None:
        os.chdir(job.base_dir)
    saved = os.dup(1), os.dup(2)
    try:
        with refused_writes(job.log_path) as ending:
            os.makedirs(os.path.dirname(job.log_path) or ".", exist_ok=True)  # a node without the coordinator's
            try:
                with open(job.log_path, "a", encoding="utf-8") as log:
                    _point_output_at(log.fileno())
                    outcome = ending.outcome = run_attempt(job, log, on_report, prune_requested,
                                                           decided_step=decided_step)
            finally:
                sys.stdout.flush()  # (what the log refuses stays buffered: the next flush sends it to fd 1's own)
                sys.stderr.flush()
        return outcome
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def _point_output_at(fd: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)


def _preload(function: str, base_dir: str | None, devnull: int) -> None:
    """Import the trial's module before the first job arrives; a failure here surfaces in the trial."""
    _point_output_at(devnull)
    try:
        if base_dir:
            os.chdir(base_dir)
        resolve_function(function, base_dir)
    except Exception:  # noqa: BLE001 - the trial reports it properly
        pass


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 5.0)
