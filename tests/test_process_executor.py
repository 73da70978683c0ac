"""ProcessExecutor driven directly: real worker processes, real signals, real limits. No mocks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from helpers import alive, settles

from tunesmith.evaluation.job import TrialJob
from tunesmith.executor.base import AttemptEnded, ExecutorEvent, TrialReported
from tunesmith.executor.process import ProcessExecutor
from tunesmith.records import FailureKind, Outcome, Report

REPO = Path(__file__).resolve().parents[1]

TRIALS = '''
import math, os, signal, subprocess, sys, time

def with_metrics(config, trial):
    return {"loss": config["x"] * 2, "accuracy": 0.75, "pid": os.getpid()}

def whoami(config, trial):
    return {"loss": 0.0, "pid": os.getpid()}

def reporting(config, trial):
    for step in range(4):
        trial.report(step, config["x"] + step)
    return config["x"]

def raises(config, trial):
    raise ValueError("bad x " + str(config["x"]))

def interrupts_itself(config, trial):
    print("giving up", flush=True)
    raise KeyboardInterrupt("enough")

def returns(config, trial):
    return {"nan": float("nan"), "inf": float("inf"), "none": None, "string": "0.5",
            "missing": {"accuracy": 0.9}}[config["what"]]

def segfault(config, trial):
    os.kill(os.getpid(), signal.SIGSEGV)

def hard_exit(config, trial):
    os._exit(3)

def calls_sys_exit(config, trial):
    sys.exit(2)

class Big(BaseException):
    pass

class Unreadable(BaseException):
    def __str__(self):
        raise RuntimeError("no str for you")

def raises_base_exception(config, trial):
    raise Big("too big")

def raises_unreadable(config, trial):
    raise Unreadable()

def raises_cancelled(config, trial):
    import asyncio
    raise asyncio.CancelledError("cancelled inside")

def forks_then_segfaults(config, trial):
    import multiprocessing
    child = multiprocessing.get_context("fork").Process(target=time.sleep, args=(1000,))
    child.start()
    (trial.workdir / "child.pid").write_text(str(child.pid))
    os.kill(os.getpid(), signal.SIGSEGV)

def spawns_grandchild(config, trial):
    child = subprocess.Popen(["sleep", "1000"])
    (trial.workdir / "pids").write_text(f"{os.getpid()} {child.pid}")
    time.sleep(1000)

def spawns_regrouped_grandchild(config, trial):
    # a child in a process group of its own: killing the worker's group alone would miss it
    child = subprocess.Popen(["sleep", "1000"], process_group=0)
    (trial.workdir / "pids").write_text(f"{os.getpid()} {child.pid}")
    time.sleep(1000)

def child_in_its_own_session(config, trial):
    # a launcher's child in a session of its own (start_new_session, setsid), holding `megabytes` resident
    code = "import sys, time; block = b'x' * (int(sys.argv[1]) * 2**20); time.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", code, str(config["megabytes"])], start_new_session=True)
    (trial.workdir / "child.pid").write_text(str(child.pid))
    child.wait()
    return 1.0

def hog(config, trial):
    block = b"x" * (400 * 2**20)   # bytes() fills every page: resident, not just reserved
    time.sleep(30)
    return len(block)

def chatty(config, trial):
    for i in range(5):
        print(f"out-{config['tag']}-{i}", flush=True)
        print(f"err-{config['tag']}-{i}", file=sys.stderr)
        time.sleep(0.05)
    print(f"unflushed-{config['tag']}")   # still buffered when the trial returns
    return 0.0

def sleeps(config, trial):
    (trial.workdir / "pid").write_text(str(os.getpid()))
    time.sleep(config["seconds"])
    return config["seconds"]

def raises_in_a_library(config, trial):
    import json
    return json.loads(config["text"])

def waits_for_its_stop(config, trial):
    # a retry attempt stopped before it reported: its earlier attempt's report at step 4 was decided on
    (trial.workdir / "started").write_text("yes")
    while not trial.should_prune():
        time.sleep(0.02)
    return 0.0
'''

# A coordinator of its own, to be SIGKILLed: it starts a ProcessExecutor with a sleeping trial and waits.
COORDINATOR = '''
import sys, time
from tunesmith.evaluation.job import TrialJob
from tunesmith.executor.process import ProcessExecutor

root = sys.argv[1]
ex = ProcessExecutor(1, base_dir=root)
ex.start()
ex.submit(TrialJob("orphans", 0, 1, {}, 0, root, root + "/trial.log", ("loss",),
                   function="ptrials:" + sys.argv[2], base_dir=root))
while True:
    ex.poll(1.0)
'''


def _kill_quietly(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class Harness:
    """Builds jobs in a temporary folder and closes every executor it started."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.executors: list[ProcessExecutor] = []
        self.closed: list[ProcessExecutor] = []
        (root / "ptrials.py").write_text(TRIALS)

    def executor(self, workers: int = 1, **kwargs: Any) -> ProcessExecutor:
        ex = ProcessExecutor(workers, base_dir=str(self.root), **kwargs)
        self.executors.append(ex)
        ex.start()
        return ex

    def close(self, ex: ProcessExecutor, grace: float) -> list[ExecutorEvent]:
        self.closed.append(ex)
        return ex.close(grace)

    def job(self, number: int, function: str, params: dict[str, Any] | None = None,
            metrics: tuple[str, ...] = ("loss",), **kwargs: Any) -> TrialJob:
        workdir = self.root / f"trial-{number}"
        workdir.mkdir(exist_ok=True)
        return TrialJob("exp", number, 1, params or {"x": 1.0}, 7, str(workdir), str(workdir / "trial.log"),
                        metrics, function=f"ptrials:{function}", base_dir=str(self.root), **kwargs)

    def log(self, number: int) -> str:
        return (self.root / f"trial-{number}" / "trial.log").read_text()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path)
    try:
        yield h
    finally:
        for ex in h.executors:
            if ex not in h.closed:
                ex.close(0)


def collect(ex: ProcessExecutor, count: int = 1, timeout: float = 15.0) -> tuple[list[ExecutorEvent], dict[int, Outcome]]:
    """Poll until ``count`` attempts ended; every event in order, and each trial's outcome."""
    events: list[ExecutorEvent] = []
    ended: dict[int, Outcome] = {}
    deadline = time.monotonic() + timeout
    while len(ended) < count:
        assert time.monotonic() < deadline, f"only {len(ended)} of {count} attempts ended in {timeout}s: {events}"
        for ev in ex.poll(0.2):
            events.append(ev)
            if isinstance(ev, AttemptEnded):
                ended[ev.number] = ev.outcome
    return events, ended


def run_one(ex: ProcessExecutor, job: TrialJob) -> Outcome:
    assert ex.free_slots() > 0
    ex.submit(job)
    _, ended = collect(ex)
    return ended[job.number]


def wait_for_file(path: Path, timeout: float = 10.0) -> str:
    assert settles(lambda: path.exists() and path.read_text() != "", timeout), f"{path} never appeared"
    return path.read_text()


# -- results ---------------------------------------------------------------------------------------------------

def test_result_with_extra_metrics(harness: Harness) -> None:
    ex = harness.executor()
    outcome = run_one(ex, harness.job(0, "with_metrics", {"x": 0.25}))
    assert outcome.failure is None
    assert outcome.values == (0.5,)
    assert dict(outcome.metrics) == {"accuracy": 0.75, "pid": outcome.metrics["pid"]}
    assert outcome.metrics["pid"] != os.getpid()  # it ran in a worker, not here
    assert outcome.duration_s > 0


def test_reports_arrive_in_order_before_the_end(harness: Harness) -> None:
    ex = harness.executor()
    ex.submit(harness.job(3, "reporting", {"x": 10}))
    events, ended = collect(ex)
    assert events == [TrialReported(3, Report(step, 10.0 + step)) for step in range(4)] + [
        AttemptEnded(3, 1, ended[3])]
    assert ended[3].values == (10.0,)


def test_exception_names_type_message_and_place_and_logs_traceback(harness: Harness) -> None:
    ex = harness.executor()
    outcome = run_one(ex, harness.job(0, "raises", {"x": 4}))
    assert outcome.failure is not None
    assert outcome.failure.kind is FailureKind.EXCEPTION
    line = TRIALS.splitlines().index('    raise ValueError("bad x " + str(config["x"]))') + 1
    assert outcome.failure.message == f"ValueError: bad x 4 (at ptrials.py:{line} in raises)"
    log = harness.log(0)
    assert "Traceback (most recent call last):" in log
    assert f'ptrials.py", line {line}, in raises' in log
    assert log.rstrip().endswith("ValueError: bad x 4")


def test_an_exception_raised_in_a_library_names_where_and_the_users_line_that_called_it(harness: Harness) -> None:
    """The innermost frame alone (`decoder.py:355 in raw_decode`) is the library's: the same for every failure that
    goes through it, whatever the user's code did. The reason also names the user's line that called it."""
    ex = harness.executor()
    outcome = run_one(ex, harness.job(0, "raises_in_a_library", {"text": "{"}))
    assert outcome.failure is not None and outcome.failure.kind is FailureKind.EXCEPTION
    line = TRIALS.splitlines().index('    return json.loads(config["text"])') + 1
    message = outcome.failure.message
    assert message.startswith("JSONDecodeError: Expecting property name enclosed in double quotes: line 1 column 2 "
                              "(char 1) (at decoder.py:"), message
    assert message.endswith(f" in raw_decode, called from ptrials.py:{line} in raises_in_a_library)"), message


def test_a_keyboard_interrupt_the_trial_raises_is_its_exception_not_a_signal(harness: Harness) -> None:
    """A trial raising KeyboardInterrupt itself (a library's way to give up) took the worker down with it and read
    "worker process killed by signal SIGINT": no signal was sent."""
    ex = harness.executor()
    before = run_one(ex, harness.job(0, "whoami")).metrics["pid"]
    outcome = run_one(ex, harness.job(1, "interrupts_itself"))
    assert outcome.failure is not None
    line = TRIALS.splitlines().index('    raise KeyboardInterrupt("enough")') + 1
    assert (outcome.failure.kind, outcome.failure.message) == (
        FailureKind.EXCEPTION, f"KeyboardInterrupt: enough (at ptrials.py:{line} in interrupts_itself), raised by "
                               "the trial itself, not by a signal; output: giving up")
    log = harness.log(1)
    assert f'ptrials.py", line {line}, in interrupts_itself' in log
    assert log.rstrip().endswith("KeyboardInterrupt: enough")
    assert run_one(ex, harness.job(2, "whoami")).metrics["pid"] == before, "the worker lives on"


def test_a_sigint_sent_to_the_worker_still_reads_as_the_signal(harness: Harness) -> None:
    ex = harness.executor()
    ex.submit(harness.job(0, "sleeps", {"seconds": 30}))
    pid = int(wait_for_file(harness.root / "trial-0" / "pid"))
    os.kill(pid, signal.SIGINT)
    _, ended = collect(ex)
    failure = ended[0].failure
    assert failure is not None
    assert (failure.kind, failure.message) == (FailureKind.CRASHED, "worker process killed by signal SIGINT")


@pytest.mark.parametrize(("what", "message"), [
    ("nan", "returned nan for 'loss'"),
    ("inf", "returned inf for 'loss'"),
    ("none", "returned None; return a number or a dict of metrics"),
    ("string", "returned str '0.5'; return a number or a dict of metrics"),
    ("missing", "the result has no 'loss' (the objective metric); keys returned: 'accuracy'"),
])
def test_invalid_results_say_why(harness: Harness, what: str, message: str) -> None:
    ex = harness.executor()
    outcome = run_one(ex, harness.job(0, "returns", {"what": what}))
    assert outcome.failure is not None
    assert (outcome.failure.kind, outcome.failure.message) == (FailureKind.INVALID_RESULT, message)
    assert outcome.values is None


# -- crashes ---------------------------------------------------------------------------------------------------

def test_segfault_is_a_crash_and_the_worker_is_replaced(harness: Harness) -> None:
    ex = harness.executor()
    before = run_one(ex, harness.job(0, "whoami")).metrics["pid"]
    outcome = run_one(ex, harness.job(1, "segfault"))
    assert outcome.failure is not None
    assert outcome.failure.kind is FailureKind.CRASHED
    assert outcome.failure.message == "worker process killed by signal SIGSEGV"
    after = run_one(ex, harness.job(2, "whoami"))
    assert after.failure is None
    assert after.metrics["pid"] != before
    assert not alive(int(before))


def test_os_exit_is_a_crash(harness: Harness) -> None:
    ex = harness.executor()
    outcome = run_one(ex, harness.job(0, "hard_exit"))
    assert outcome.failure is not None
    assert (outcome.failure.kind, outcome.failure.message) == (
        FailureKind.CRASHED, "worker process exited with code 3 during the trial")
    assert run_one(ex, harness.job(1, "whoami")).failure is None


def test_sys_exit_is_the_trials_exception_and_keeps_the_worker(harness: Harness) -> None:
    ex = harness.executor()
    before = run_one(ex, harness.job(0, "whoami")).metrics["pid"]
    outcome = run_one(ex, harness.job(1, "calls_sys_exit"))
    assert outcome.failure is not None
    assert outcome.failure.kind is FailureKind.EXCEPTION
    assert outcome.failure.message.startswith("SystemExit: 2 (at ptrials.py:")
    assert run_one(ex, harness.job(2, "whoami")).metrics["pid"] == before


@pytest.mark.parametrize(("function", "raise_line", "message"), [
    ("raises_base_exception", '    raise Big("too big")', "Big: too big"),
    ("raises_cancelled", '    raise asyncio.CancelledError("cancelled inside")', "CancelledError: cancelled inside"),
    ("raises_unreadable", "    raise Unreadable()",
     "Unreadable (its message could not be read: RuntimeError: no str for you)"),
])
def test_a_base_exception_the_trial_raises_is_its_exception_and_keeps_the_worker(
        harness: Harness, function: str, raise_line: str, message: str) -> None:
    """A BaseException that is not an Exception (a custom one, asyncio.CancelledError, one whose __str__ raises)
    took the worker down: "crashed: worker process exited with code 1", no traceback, retried as a crash."""
    ex = harness.executor()
    before = run_one(ex, harness.job(0, "whoami")).metrics["pid"]
    outcome = run_one(ex, harness.job(1, function))
    assert outcome.failure is not None
    line = TRIALS.splitlines().index(raise_line) + 1
    assert (outcome.failure.kind, outcome.failure.message) == (
        FailureKind.EXCEPTION, f"{message} (at ptrials.py:{line} in {function})")
    assert f'ptrials.py", line {line}, in {function}' in harness.log(1)
    assert run_one(ex, harness.job(2, "whoami")).metrics["pid"] == before, "the worker lives on"


def test_crash_is_seen_although_a_forked_child_lives_on(harness: Harness) -> None:
    # Without a trial_timeout: a crash hidden by the child's copy of the event pipe would hang here.
    ex = harness.executor()
    started = time.monotonic()
    outcome = run_one(ex, harness.job(0, "forks_then_segfaults"))
    assert outcome.failure is not None
    assert (outcome.failure.kind, outcome.failure.message) == (
        FailureKind.CRASHED, "worker process killed by signal SIGSEGV")
    assert time.monotonic() - started < 5
    child = int((harness.root / "trial-0" / "child.pid").read_text())
    assert settles(lambda: not alive(child)), "the forked child outlived its worker"


# -- limits ----------------------------------------------------------------------------------------------------

def test_timeout_kills_the_whole_process_tree(harness: Harness) -> None:
    ex = harness.executor()
    job = harness.job(0, "spawns_grandchild", timeout=1.0)
    ex.submit(job)
    worker, grandchild = map(int, wait_for_file(harness.root / "trial-0" / "pids").split())
    try:
        assert alive(worker) and alive(grandchild)
        _, ended = collect(ex, timeout=10)
        outcome = ended[0]
        assert outcome.failure is not None
        assert (outcome.failure.kind, outcome.failure.message) == (
            FailureKind.TIMEOUT, "exceeded trial_timeout of 1.0s; the trial's whole process tree was killed")
        assert 1.0 <= outcome.duration_s < 3.0
        assert settles(lambda: not alive(worker) and not alive(grandchild)), "part of the tree survived"
        assert run_one(ex, harness.job(1, "whoami")).failure is None  # a fresh worker took over
    finally:
        _kill_quietly(grandchild)


def test_memory_limit(harness: Harness) -> None:
    ex = harness.executor()
    outcome = run_one(ex, harness.job(0, "hog", memory_limit=150 * 2**20))
    assert outcome.failure is not None
    assert outcome.failure.kind is FailureKind.MEMORY
    assert outcome.failure.message.startswith("memory use ")
    assert outcome.failure.message.endswith(" exceeded memory_limit 150 MiB; killed")
    used = int(outcome.failure.message.removeprefix("memory use ").split(" MiB")[0])
    assert used > 150
    assert outcome.duration_s < 10


def test_memory_limit_counts_a_child_in_a_session_of_its_own_and_kills_it(harness: Harness) -> None:
    """A child started with start_new_session (or setsid) left the worker's session: its 600 MiB went unmeasured
    under memory_limit, and it outlived the trial's kill. It is found through its parent links."""
    ex = harness.executor()
    outcome = run_one(ex, harness.job(0, "child_in_its_own_session", {"megabytes": 200}, memory_limit=120 * 2**20,
                                      timeout=60))
    assert outcome.failure is not None and outcome.failure.kind is FailureKind.MEMORY, outcome
    child = int((harness.root / "trial-0" / "child.pid").read_text())
    try:
        assert settles(lambda: not alive(child)), "the child in its own session outlived the trial"
    finally:
        _kill_quietly(child)


def test_a_stopped_trial_takes_its_child_in_a_session_of_its_own_along(harness: Harness) -> None:
    ex = harness.executor()
    ex.submit(harness.job(0, "child_in_its_own_session", {"megabytes": 1}))
    child = int(wait_for_file(harness.root / "trial-0" / "child.pid"))
    try:
        assert alive(child) and os.getsid(child) == child
        ex.stop(0, FailureKind.TIMEOUT)
        _, ended = collect(ex, timeout=10)
        assert ended[0].failure is not None and ended[0].failure.kind is FailureKind.TIMEOUT
        assert settles(lambda: not alive(child)), "the child in its own session outlived the trial"
    finally:
        _kill_quietly(child)


# A command that saves its state on SIGTERM, as a training script under Lightning, the HF Trainer or SLURM does; its
# `ready` file says the trap is set. (`sleep` gets the SIGTERM too and ends, and the trap runs.)
SAVES_ON_SIGTERM = "trap 'echo got SIGTERM; exit 143' TERM; echo yes > ready; while :; do sleep 0.1; done"


def _command_job(harness: Harness, command: str, **kwargs: Any) -> TrialJob:
    job = harness.job(0, "whoami", **kwargs)
    return replace(job, function=None, command=command, command_cwd=job.workdir)


def test_a_command_past_its_timeout_gets_sigterm_first(harness: Harness) -> None:
    """A command past trial_timeout got SIGKILL at once: a script that saves a checkpoint on SIGTERM never could."""
    ex = harness.executor()
    outcome = run_one(ex, _command_job(harness, SAVES_ON_SIGTERM, timeout=3.0))
    assert outcome.failure is not None
    assert (outcome.failure.kind, outcome.failure.message.split("; output:")[0]) == (
        FailureKind.TIMEOUT, "exceeded trial_timeout of 3.0s; the trial's whole process tree was killed")
    assert (harness.root / "trial-0" / "ready").exists()
    assert "got SIGTERM" in harness.log(0)


def test_a_command_still_running_when_the_grace_period_ends_gets_sigterm_first(harness: Harness) -> None:
    ex = harness.executor()
    ex.submit(_command_job(harness, SAVES_ON_SIGTERM))
    wait_for_file(harness.root / "trial-0" / "ready")
    (ended,) = [e for e in harness.close(ex, 0.2) if isinstance(e, AttemptEnded)]
    assert ended.outcome.failure is not None
    assert ended.outcome.failure.kind is FailureKind.INTERRUPTED
    assert "got SIGTERM" in harness.log(0)


def test_a_command_that_ignores_sigterm_is_killed_after_the_grace(harness: Harness,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from tunesmith.executor import process

    monkeypatch.setattr(process, "TERM_GRACE_S", 0.5)
    ex = harness.executor()
    ex.submit(_command_job(harness, "trap '' TERM; echo $$ > ready; while :; do sleep 0.1; done"))
    shell = int(wait_for_file(harness.root / "trial-0" / "ready"))
    (ended,) = [e for e in harness.close(ex, 0) if isinstance(e, AttemptEnded)]
    assert ended.outcome.failure is not None and ended.outcome.failure.kind is FailureKind.INTERRUPTED
    assert settles(lambda: not alive(shell)), "the command that ignored SIGTERM outlived the SIGKILL after it"


# A command whose child left its session and ignores SIGTERM: the command itself ends on its SIGTERM, so the child
# is the init process's by the time the SIGKILL after the grace is due (its worker retired meanwhile).
LEAVES_A_CHILD_IGNORING_SIGTERM = (
    "setsid sh -c 'trap \"\" TERM; echo $$ > child.pid; while :; do sleep 0.1; done' & "
    "while [ ! -s child.pid ]; do sleep 0.05; done; echo yes > ready; wait")


@pytest.mark.parametrize("ended_by", ["timeout", "grace"])
def test_a_child_that_left_the_session_and_ignores_sigterm_is_killed_after_the_grace(
        harness: Harness, monkeypatch: pytest.MonkeyPatch, ended_by: str) -> None:
    """Review Y: SIGTERM ended the command, its child in a session of its own became init's, and the worker
    retired before the SIGKILL was due: the child ran on for good, though the failure said the whole tree was
    killed (the SIGKILL at once had killed it)."""
    from tunesmith.executor import process

    monkeypatch.setattr(process, "TERM_GRACE_S", 0.5)
    ex = harness.executor()
    job = _command_job(harness, LEAVES_A_CHILD_IGNORING_SIGTERM, timeout=2.0 if ended_by == "timeout" else None)
    ex.submit(job)
    wait_for_file(harness.root / "trial-0" / "ready")
    child = int((harness.root / "trial-0" / "child.pid").read_text())
    try:
        if ended_by == "timeout":
            _, ended = collect(ex)
            assert ended[0].failure is not None and ended[0].failure.kind is FailureKind.TIMEOUT
            assert settles(lambda: ex.poll(0.1) is not None and not alive(child)), "the child outlived its trial"
        else:
            (done,) = [e for e in harness.close(ex, 0) if isinstance(e, AttemptEnded)]
            assert done.outcome.failure is not None and done.outcome.failure.kind is FailureKind.INTERRUPTED
            assert settles(lambda: not alive(child)), "the child outlived the executor's close"
    finally:
        _kill_quietly(child)


def test_the_log_marks_each_retry_and_says_how_an_attempt_the_coordinator_ended_ended(harness: Harness) -> None:
    """A trial log just stopped at the trial's last line on a timeout, a memory kill, a crash or the grace period's
    end, and a retry's output ran on after the first attempt's with no mark between them."""
    ex = harness.executor()
    first = run_one(ex, harness.job(0, "hog", memory_limit=150 * 2**20))
    assert first.failure is not None and first.failure.kind is FailureKind.MEMORY
    second = run_one(ex, replace(harness.job(0, "chatty", {"tag": "A"}, timeout=60), attempt=2))
    assert second.failure is None
    third = run_one(ex, replace(harness.job(0, "sleeps", {"seconds": 30}, timeout=1.0), attempt=3))
    assert third.failure is not None and third.failure.kind is FailureKind.TIMEOUT
    assert "--- attempt" not in third.failure.message, "the mark is tunesmith's, not the trial's output"
    lines = [line for line in harness.log(0).splitlines() if line.startswith("tunesmith:")]
    assert lines == [
        f"tunesmith: attempt 1 ended: memory: {first.failure.message}",
        "tunesmith: --- attempt 2 ---",
        "tunesmith: --- attempt 3 ---",
        "tunesmith: attempt 3 ended: timeout: exceeded trial_timeout of 1.0s; the trial's whole process tree was "
        "killed",
    ], harness.log(0)
    assert harness.log(0).index("out-A-0") > harness.log(0).index("--- attempt 2 ---")


# -- output and workers ----------------------------------------------------------------------------------------

def test_each_trial_output_lands_in_its_own_log(harness: Harness) -> None:
    ex = harness.executor(workers=2)
    ex.submit(harness.job(0, "chatty", {"tag": "A"}))
    ex.submit(harness.job(1, "chatty", {"tag": "B"}))
    _, ended = collect(ex, count=2)
    assert all(o.failure is None for o in ended.values())
    ex.submit(harness.job(2, "chatty", {"tag": "C"}))  # reuses a worker that ran A or B
    collect(ex)
    for number, tag in enumerate("ABC"):
        log = harness.log(number)
        for i in range(5):
            assert f"out-{tag}-{i}" in log and f"err-{tag}-{i}" in log
        assert f"unflushed-{tag}" in log
        others = [t for t in "ABC" if t != tag]
        assert not any(f"-{t}-" in log for t in others), f"trial {number}'s log holds another trial's output:\n{log}"


def test_workers_are_reused(harness: Harness) -> None:
    ex = harness.executor()
    pids = [run_one(ex, harness.job(n, "whoami")).metrics["pid"] for n in range(3)]
    assert pids[0] == pids[1] == pids[2]


def test_workers_start_as_trials_are_sent_not_all_at_once(harness: Harness) -> None:
    """Every one of ``workers`` started with the executor, each an interpreter plus the preload's imports (seconds of
    CPU with scikit-learn): a 1-trial run with 4 workers started 4. A worker starts when a trial is sent and no idle
    one is left, up to ``workers``; the slots not started yet count as free."""
    (harness.root / "counted.py").write_text(textwrap.dedent("""
        import os
        with open(os.path.join(os.path.dirname(__file__), "started.txt"), "a") as f:
            f.write(f"{os.getpid()}\\n")

        def f(config, trial):
            return {"loss": 0.0, "pid": os.getpid()}
    """))
    ex = harness.executor(workers=4, preload="counted:f")
    assert ex.free_slots() == 4
    pids = [run_one(ex, TrialJob("exp", n, 1, {"x": 1.0}, 7, str(harness.root), str(harness.root / f"t{n}.log"),
                                 ("loss",), function="counted:f", base_dir=str(harness.root))).metrics["pid"]
            for n in range(2)]
    assert pids[0] == pids[1]
    assert (harness.root / "started.txt").read_text().split() == [str(int(pids[0]))]  # one worker: one import
    for n in range(2, 5):  # three at once: the idle worker, and two started for them
        ex.submit(TrialJob("exp", n, 1, {"x": 1.0}, 7, str(harness.root), str(harness.root / f"t{n}.log"), ("loss",),
                           function="counted:f", base_dir=str(harness.root)))
    _, ended = collect(ex, 3)
    assert len({o.metrics["pid"] for o in ended.values()}) == 3
    assert len((harness.root / "started.txt").read_text().split()) == 3
    assert ex.free_slots() == 4  # three idle, one not started


def test_max_trials_per_worker_recycles(harness: Harness) -> None:
    ex = harness.executor(max_trials_per_worker=2)
    pids = [run_one(ex, harness.job(n, "whoami")).metrics["pid"] for n in range(5)]
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]
    assert settles(lambda: not alive(int(pids[0])))


@pytest.mark.parametrize(("kind", "message"), [
    (FailureKind.TIMEOUT, "stopped by the coordinator"),
    (FailureKind.INTERRUPTED, "interrupted by the user"),
])
def test_stop_ends_a_running_trial_with_that_kind(harness: Harness, kind: FailureKind, message: str) -> None:
    ex = harness.executor()
    ex.submit(harness.job(0, "sleeps", {"seconds": 30}))
    pid = int(wait_for_file(harness.root / "trial-0" / "pid"))
    ex.stop(0, kind)
    _, ended = collect(ex, timeout=5)
    assert ended[0].failure is not None
    assert (ended[0].failure.kind, ended[0].failure.message) == (kind, message)
    assert ended[0].state.value == ("interrupted" if kind is FailureKind.INTERRUPTED else "failed")
    assert settles(lambda: not alive(pid))
    assert run_one(ex, harness.job(1, "whoami")).failure is None


def test_a_stopped_worker_that_already_finished_takes_no_new_job(harness: Harness) -> None:
    # The result is in the pipe when the stop kills the worker: the stop decides, and the dying worker must not
    # be handed the next job (it would be reported as that job's crash).
    ex = harness.executor()
    ex.submit(harness.job(0, "whoami"))
    time.sleep(0.5)
    ex.stop(0, FailureKind.TIMEOUT)
    _, ended = collect(ex)
    assert ended[0].failure is not None and ended[0].failure.kind is FailureKind.TIMEOUT
    outcome = run_one(ex, harness.job(1, "whoami"))
    assert outcome.failure is None, outcome.failure


def test_close_lets_short_trials_finish_and_interrupts_long_ones(harness: Harness) -> None:
    ex = harness.executor(workers=2)
    ex.submit(harness.job(0, "sleeps", {"seconds": 0.3}))
    ex.submit(harness.job(1, "sleeps", {"seconds": 30}))
    long_pid = int(wait_for_file(harness.root / "trial-1" / "pid"))
    started = time.monotonic()
    events = harness.close(ex, 1.0)
    assert time.monotonic() - started < 3
    ended = {ev.number: ev.outcome for ev in events if isinstance(ev, AttemptEnded)}
    assert set(ended) == {0, 1}
    assert ended[0].failure is None and ended[0].values == (0.3,)
    assert ended[1].failure is not None
    assert (ended[1].failure.kind, ended[1].failure.message) == (
        FailureKind.INTERRUPTED, "still running after the 1.0s grace period")
    assert not alive(long_pid)
    assert ex.free_slots() == 0


@pytest.mark.parametrize("trial_function", ["spawns_grandchild", "spawns_regrouped_grandchild"])
def test_workers_die_with_their_coordinator(tmp_path: Path, trial_function: str) -> None:
    (tmp_path / "ptrials.py").write_text(TRIALS)
    script = tmp_path / "coordinator.py"
    script.write_text(textwrap.dedent(COORDINATOR))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), *sys.path])}
    coordinator = subprocess.Popen([sys.executable, str(script), str(tmp_path), trial_function], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    pids: list[int] = []
    try:
        assert settles(lambda: (tmp_path / "pids").exists() and (tmp_path / "pids").read_text() != "", 15), (
            coordinator.stderr.read().decode() if coordinator.poll() is not None and coordinator.stderr else "")
        pids = [int(p) for p in (tmp_path / "pids").read_text().split()]
        assert all(alive(p) for p in pids)
        coordinator.send_signal(signal.SIGKILL)
        coordinator.wait()
        assert settles(lambda: not any(alive(p) for p in pids), 5), "a worker or its child outlived the coordinator"
    finally:
        _kill_quietly(coordinator.pid)
        coordinator.wait()
        if coordinator.stderr:
            coordinator.stderr.close()
        for p in pids:
            _kill_quietly(p)


def test_a_stopped_trial_log_names_the_step_the_stop_was_decided_at(harness: Harness, tmp_path: Path) -> None:
    """The stopped line named the attempt's own last report: a retry attempt stopped before it reported said
    `before it reported`, though the scheduler decided on an earlier attempt's report at step 4."""
    from tunesmith.executor.inline import InlineExecutor

    job = harness.job(0, "waits_for_its_stop", scheduler="asha", stop_rule="its rule")
    ex = harness.executor(1)
    ex.submit(job)
    wait_for_file(tmp_path / "trial-0" / "started")
    ex.prune(0, 4)
    _, ended = collect(ex)
    assert ended[0].pruned
    line = "tunesmith: stopped early after its report at step 4 by the asha scheduler (its rule)"
    assert harness.log(0).splitlines()[-1].startswith(line), harness.log(0)

    inline = InlineExecutor()
    inline.submit(harness.job(1, "reporting", scheduler="asha", stop_rule="its rule"))
    inline.prune(1, 2)  # decided on report 2 of this attempt; it reported on to its end
    assert [e for e in inline.poll(0) if isinstance(e, AttemptEnded)][0].outcome.pruned
    assert harness.log(1).splitlines()[-1].startswith(line.replace("step 4", "step 2")), harness.log(1)
