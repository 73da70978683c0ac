"""Stops from outside: SIGKILL of the coordinator then `resume`, Ctrl-C / SIGTERM / SIGHUP, a second Ctrl-C."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace

import pytest
import tunesmith
from helpers import alive, count_states, start_cli, stop_processes, wait_for, worker_pids

from tunesmith.stop_signals import handlers_restored, install_signal_handlers


@pytest.fixture
def slow_spec(project):
    project.write("sleepy.py", """
        import time
        def objective(config, trial):
            time.sleep(0.4)
            return config["x"]
    """)

    def make(name: str, trials: int = 10, **executor):
        spec = project.spec(name=name, trial={"function": "sleepy:objective"}, budget={"trials": trials},
                            executor={"kind": "process", "workers": 2, **executor})
        return project.write_spec(spec)

    return make


def test_sigkill_then_resume_finishes_every_trial_exactly_once(project, slow_spec):
    spec = slow_spec("killed", trials=10)
    proc = start_cli(project, "run", str(spec), "--quiet")
    wait_for(lambda: count_states(project, "killed").get("completed", 0) >= 3 and
             count_states(project, "killed").get("running", 0) >= 1)
    running_workers = wait_for(lambda: worker_pids(project))
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    # Orphaned workers notice their coordinator died and take their trials with them.
    wait_for(lambda: not any(alive(p) for p in running_workers), timeout=10)
    before = count_states(project, "killed")
    assert before.get("running", 0) >= 1, before

    resumed = project.cli("resume", "killed", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    shown = project.show("killed")
    assert shown["status"] == "completed"
    assert shown["trials"]["completed"] == 10
    assert shown["trials"]["running"] == shown["trials"]["queued"] == shown["trials"]["lost"] == 0
    trials = project.trials("killed")
    assert [t["number"] for t in trials] == list(range(10))
    # the strategy, seeded as in the first run, proposed that run's first configurations again (trials 0, 1, 2 ran
    # twice under new numbers): a resumed run draws from a seed of its own
    xs = [t["params"]["x"] for t in trials]
    assert len(set(xs)) == 10, xs
    rerun = [t for t in trials if t["attempts"] == 2]
    assert len(rerun) == before["running"], "exactly the trials left running were re-run"
    with sqlite3.connect(project.db) as conn:
        lost_events = conn.execute("SELECT COUNT(*) FROM events WHERE kind = 'trial_lost'").fetchone()[0]
    assert lost_events == before["running"]


def test_resume_of_a_finished_experiment_runs_nothing_more(project):
    tunesmith.run(project.spec(name="done"), storage=project.storage)  # set-up, in this process: resume is checked
    before = project.trials("done")
    proc = project.cli("resume", "done", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert project.trials("done") == before


def test_resume_of_a_finished_experiment_shows_its_recorded_best(project):
    """The progress line said `best -` on resuming a run whose history holds a best."""
    tunesmith.run(project.spec(name="done", executor={"kind": "inline"}), storage=project.storage)  # set-up
    best = min(t["values"]["loss"] for t in project.trials("done") if t["state"] == "completed")
    proc = project.cli("resume", "done")
    assert proc.returncode == 0, proc.stderr
    progress = next(line for line in proc.stdout.splitlines() if "best" in line and "failed" in line)
    assert f"best {best:.6g} (#" in progress, proc.stdout


def test_ctrl_c_lets_running_trials_finish_then_exits_130(project, slow_spec, fault_log):
    spec = slow_spec("sigint", trials=8, grace_period=10)
    proc = start_cli(project, "run", str(spec))
    wait_for(lambda: count_states(project, "sigint").get("completed", 0) >= 2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "tunesmith resume sigint" in err
    states = count_states(project, "sigint")
    assert states.get("running", 0) == 0 and states.get("interrupted", 0) == 0, states
    assert project.show("sigint")["status"] == "interrupted"
    assert not worker_pids(project)
    # and it can be continued to the end of its budget
    assert project.cli("resume", "sigint", "--quiet").returncode == 0
    assert project.show("sigint")["trials"]["completed"] == 8
    fault_log(area="coordinator", backend="sqlite", fault="Ctrl-C (SIGINT) during a run",
              outcome="running trials finished in the grace period; exit 130; resume finished the budget",
              reason=err.strip().splitlines()[-1][:90], injected=1, recovered=1, lost=0)


def ctrl_c_twice(proc) -> float:
    """Ctrl-C, and again half a second later; the run must end with exit 130. Returns when the first was sent."""
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == 130
    return started


def test_second_ctrl_c_stops_at_once_and_keeps_the_store_consistent(project, monkeypatch, fault_log):
    monkeypatch.setenv("SLOW_SECONDS", "60")
    spec = project.write_spec(project.spec(name="twice", trial={"function": "objectives:slow"},
                                           executor={"kind": "process", "workers": 2, "grace_period": 120}))
    proc = start_cli(project, "run", str(spec))
    wait_for(lambda: count_states(project, "twice").get("running", 0) == 2)
    started = ctrl_c_twice(proc)
    assert time.monotonic() - started < 10, "the second Ctrl-C does not wait for the grace period"
    assert count_states(project, "twice") == {"interrupted": 2}
    trials = project.trials("twice")
    assert all(t["error"] == "interrupted: interrupted by the user before it finished" for t in trials), trials
    assert not worker_pids(project)
    fault_log(area="coordinator", backend="sqlite", fault="second Ctrl-C during the grace period",
              outcome="stops within seconds; running trials recorded interrupted, re-run by resume",
              reason=trials[0]["error"][:90], injected=1, recovered=2, lost=0)


def test_a_second_ctrl_c_stops_an_inline_trial_at_once(project, monkeypatch):
    """The inline trial runs in the coordinator: the second Ctrl-C raises KeyboardInterrupt inside it, which is the
    user's stop, never the trial's own exception (those fail just the trial)."""
    monkeypatch.setenv("SLOW_SECONDS", "60")
    spec = project.write_spec(project.spec(name="inline-twice", trial={"function": "objectives:slow"},
                                           executor={"kind": "inline"}))
    proc = start_cli(project, "run", str(spec))
    wait_for(lambda: count_states(project, "inline-twice").get("running", 0) == 1)
    started = ctrl_c_twice(proc)
    assert time.monotonic() - started < 10
    assert count_states(project, "inline-twice") == {"interrupted": 1}


def test_a_ctrl_c_the_trial_turns_into_another_exception_still_stops_an_inline_run(project):
    """An event loop cancels its tasks on Ctrl-C: the trial's code turns the KeyboardInterrupt into CancelledError.
    A stop signal arrived, so the run stops; it was taken for the trial's own exception, and the run went on."""
    project.write("cancels.py", """
        import asyncio, time

        def objective(config, trial):
            try:
                time.sleep(60)
            except KeyboardInterrupt:
                raise asyncio.CancelledError("the loop cancelled its tasks")
            return 0.0
    """)
    spec = project.write_spec(project.spec(name="cancels", trial={"function": "cancels:objective"},
                                           executor={"kind": "inline"}, budget={"trials": 3}))
    proc = start_cli(project, "run", str(spec))
    wait_for(lambda: count_states(project, "cancels").get("running", 0) == 1)
    ctrl_c_twice(proc)   # the second Ctrl-C raises KeyboardInterrupt inside the inline trial
    assert count_states(project, "cancels") == {"interrupted": 1}


def test_ctrl_c_stops_an_inline_run_started_from_python(project, monkeypatch):
    """Without tunesmith's handlers (tunesmith.run from a script, a notebook) Ctrl-C raises KeyboardInterrupt in the
    inline trial: it must stop the run, not be taken for the trial's own exception and go on to the next trial."""
    monkeypatch.setenv("SLOW_SECONDS", "60")
    script = project.write("tune.py", """
        import tunesmith
        tunesmith.run({"name": "from-python", "objective": {"metric": "loss", "direction": "minimize"},
                       "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}}, "budget": {"trials": 3},
                       "executor": {"kind": "inline"}, "trial": {"function": "objectives:slow"}})
    """)
    proc = subprocess.Popen([sys.executable, str(script)], cwd=project.root, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_for(lambda: count_states(project, "from-python").get("running", 0) == 1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)  # not 3 x 60 s: no trial runs after it
    assert "Traceback" not in err, err
    assert count_states(project, "from-python") == {"interrupted": 1}


def test_a_ctrl_c_as_the_heartbeat_starts_leaves_no_beat_holding_the_lease(project):
    """A KeyboardInterrupt landing in the heartbeat's start() (its thread already beating) escaped the run with the
    beat alive: it renewed the lease for the life of the process (a notebook's kernel), and every resume there was
    refused as "being run by another coordinator", the kernel itself."""
    import threading

    from tunesmith.coordinators import Heartbeat

    started = Heartbeat.start

    def start_then_ctrl_c(self: Heartbeat) -> None:
        started(self)
        raise KeyboardInterrupt

    spec = {"name": "ctrl-c-at-start", "objective": {"metric": "loss", "direction": "minimize"},
            "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}}, "budget": {"trials": 2},
            "executor": {"kind": "inline"}, "trial": {"function": "objectives:quadratic"}}
    with pytest.MonkeyPatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(Heartbeat, "start", start_then_ctrl_c)
        tunesmith.run(spec)
    assert not [t for t in threading.enumerate() if t.name == "tunesmith-heartbeat"]
    result = tunesmith.resume("ctrl-c-at-start")  # in this process, at once: no lease is held
    assert result.experiment.status.value == "completed" and len(result.trials) == 2


def test_sigterm_is_a_graceful_stop(project, slow_spec, fault_log):
    spec = slow_spec("term", trials=40)
    proc = start_cli(project, "run", str(spec), "--quiet")
    wait_for(lambda: count_states(project, "term").get("completed", 0) >= 1)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert project.show("term")["status"] == "interrupted"
    fault_log(area="coordinator", backend="sqlite", fault="SIGTERM (a scheduler or `kill`)",
              outcome="same graceful stop as Ctrl-C; exit 130", reason="status interrupted", injected=1,
              recovered=1, lost=0)


def test_sigterm_during_a_retry_backoff_stops_at_once(project):
    """With no trial running and a retry waiting out its backoff, the loop slept the whole backoff in one poll: a
    SIGTERM (a second one too) was acted on only when it ended, 44 s later for a 45 s backoff, past a scheduler's
    30 s kill window."""
    spec = project.write_spec(project.spec(
        "backoff", trial={"function": "objectives:segfault"}, budget={"trials": 1},
        executor={"kind": "process", "workers": 1, "retries": 3, "retry_backoff": "60s"}))
    proc = start_cli(project, "run", str(spec), "--quiet")
    wait_for(lambda: count_states(project, "backoff").get("queued", 0) == 1, timeout=60)  # crashed, waiting to retry
    time.sleep(0.5)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert time.monotonic() - started < 10, "stopped within moments, not at the backoff's end"
    assert project.show("backoff")["status"] == "interrupted"


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="the platform has no SIGHUP")
def test_sighup_is_a_graceful_stop(project, slow_spec, fault_log):
    """The terminal closing (or an ssh logout without nohup) sends SIGHUP: it used to kill the coordinator outright,
    leaving the run 'running' and its trials to be found lost."""
    spec = slow_spec("hangup", trials=40)
    proc = start_cli(project, "run", str(spec), "--quiet")
    wait_for(lambda: count_states(project, "hangup").get("completed", 0) >= 1)
    proc.send_signal(signal.SIGHUP)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "tunesmith resume hangup" in err
    shown = project.show("hangup")
    assert shown["status"] == "interrupted"
    assert shown["trials"]["running"] == 0, shown["trials"]
    assert not worker_pids(project)
    fault_log(area="coordinator", backend="sqlite", fault="SIGHUP (the terminal closed, an ssh logout)",
              outcome="same graceful stop as Ctrl-C; exit 130", reason="status interrupted", injected=1,
              recovered=1, lost=0)


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="the platform has no SIGHUP")
def test_a_run_started_with_sighup_ignored_survives_the_hangup(project, slow_spec):
    """`nohup tunesmith run spec.yaml &` ignores SIGHUP before tunesmith starts, so the end of the ssh session
    leaves the run going; replacing the ignored disposition with the stop handler stopped it (exit 130)."""
    spec = slow_spec("nohup", trials=8)
    env = {**os.environ, "TUNESMITH_STORAGE": project.storage}
    proc = subprocess.Popen([sys.executable, "-m", "tunesmith.cli", "run", str(spec), "--quiet"], cwd=project.root,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))  # what nohup does
    wait_for(lambda: count_states(project, "nohup").get("completed", 0) >= 1)
    proc.send_signal(signal.SIGHUP)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    shown = project.show("nohup")
    assert shown["status"] == "completed", shown
    assert shown["trials"]["completed"] == 8, shown["trials"]


@pytest.mark.skipif(sys.platform != "linux", reason="a pseudo-terminal as the controlling terminal (Linux)")
def test_closing_the_terminal_stops_the_run_as_interrupted(project, slow_spec):
    """The real hangup: the run's controlling terminal goes away (its master side closes, as sshd or a terminal
    window does). Writes to it then fail (EIO): with the SIGHUP handler alone, the progress display's line about the
    stop raised, and the run exited 1 leaving the experiment and its trials 'running'."""
    import fcntl
    import pty
    import select
    import termios

    spec = slow_spec("closed", trials=40)
    master, terminal = pty.openpty()

    def take_terminal() -> None:  # in the child, a session leader already: the pty becomes its controlling terminal
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    env = {**os.environ, "TUNESMITH_STORAGE": project.storage, "COLUMNS": "200"}
    proc = subprocess.Popen([sys.executable, "-m", "tunesmith.cli", "run", str(spec)], cwd=project.root, env=env,
                            stdin=terminal, stdout=terminal, stderr=terminal, start_new_session=True,
                            preexec_fn=take_terminal)
    os.close(terminal)
    try:
        shown = b""

        def drawn_two_trials() -> bool:
            nonlocal shown
            if select.select([master], [], [], 0.05)[0]:  # drained, so the display never blocks on a full pty
                shown += os.read(master, 65536)
            return count_states(project, "closed").get("completed", 0) >= 2

        wait_for(drawn_two_trials, timeout=60, interval=0)
        assert b"trials" in shown, shown[-500:]  # the live display was drawing on the terminal
    finally:
        os.close(master)  # the hangup: the kernel sends SIGHUP to the session leader, the coordinator
    assert proc.wait(timeout=60) == 130
    shown_after = project.show("closed")
    assert shown_after["status"] == "interrupted", shown_after
    assert shown_after["trials"]["running"] == 0, shown_after["trials"]
    assert not worker_pids(project)


class _StopRequests:
    """A runner as install_signal_handlers sees it, keeping the stops it is asked for."""

    def __init__(self) -> None:
        self.stops: list[tuple[str, bool]] = []
        self.spec = SimpleNamespace(executor=SimpleNamespace(kind="process"))

    def request_stop(self, reason: str, immediate: bool = False) -> None:
        self.stops.append((reason, immediate))


def _signalled(signum: int) -> None:
    """Send ``signum`` to this process and let its Python handler run."""
    os.kill(os.getpid(), signum)
    time.sleep(0.05)  # the handler runs in the main thread at the next bytecode; this is one


@contextmanager
def _stderr_on(fd: int) -> Iterator[None]:
    """File descriptor 2 is ``fd`` inside the block (as a coordinator's stderr is its terminal)."""
    saved = os.dup(2)
    try:
        os.dup2(fd, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="the platform has no SIGHUP")
def test_a_repeated_sighup_is_one_graceful_stop_not_a_stop_now():
    """The shell and the kernel can each send SIGHUP for one hangup: the second is not a user's second Ctrl-C."""
    runner = _StopRequests()
    with handlers_restored():
        install_signal_handlers(runner)  # type: ignore[arg-type]
        _signalled(signal.SIGHUP)
        _signalled(signal.SIGHUP)
        assert runner.stops == [("interrupted by SIGHUP", False)]
        _signalled(signal.SIGTERM)  # a scheduler's SIGTERM after it still means "now"
    assert runner.stops == [("interrupted by SIGHUP", False), ("interrupted by SIGTERM", True)]


@pytest.mark.skipif(sys.platform != "linux", reason="a pseudo-terminal (Linux)")
def test_sighup_sent_with_the_terminal_still_there_leaves_the_output_on_it():
    """`kill -HUP` of a coordinator whose terminal is alive: the run stops, and its last lines (how to resume) still
    reach the terminal; they went to the null device."""
    import pty

    master, terminal = pty.openpty()
    runner = _StopRequests()
    try:
        with _stderr_on(terminal), handlers_restored():
            install_signal_handlers(runner)  # type: ignore[arg-type]
            _signalled(signal.SIGHUP)
            still_terminal = os.isatty(2)
    finally:
        os.close(terminal)
        os.close(master)
    assert runner.stops == [("interrupted by SIGHUP", False)]
    assert still_terminal, "stderr was sent to the null device though its terminal is alive"


@pytest.mark.skipif(sys.platform != "linux", reason="a pseudo-terminal (Linux)")
def test_a_failure_to_silence_a_hung_up_terminal_does_not_lose_the_stop(monkeypatch):
    """The null device cannot be opened (no file descriptor left): the stop is still requested, and the handler
    raises nothing into the run's loop."""
    import pty

    import tunesmith.stop_signals as stop_signals

    master, terminal = pty.openpty()
    runner = _StopRequests()
    tried: list[object] = []

    def no_descriptor_left(*args: object) -> int:
        tried.append(args[0])
        raise OSError(24, "Too many open files")

    try:
        with _stderr_on(terminal), handlers_restored():
            install_signal_handlers(runner)  # type: ignore[arg-type]
            os.close(master)  # the terminal hangs up (it is not this process's controlling terminal: no signal)
            master = -1
            assert not os.isatty(2), "a hung-up terminal no longer says it is one"
            with monkeypatch.context() as m:
                m.setattr(stop_signals.os, "open", no_descriptor_left)
                _signalled(signal.SIGHUP)
    finally:
        os.close(terminal)
        if master >= 0:
            os.close(master)
    assert runner.stops == [("interrupted by SIGHUP", False)]
    assert tried == [os.devnull], "the handler tried to silence the hung-up terminal, and that failed"


def test_run_and_resume_called_in_process_give_the_stop_signals_back(project):
    """`app(["run", ...])` from Python (a notebook, a test, another tool's process) left tunesmith's handlers
    installed: a later Ctrl-C asked a finished runner to stop instead of interrupting the caller."""
    from tunesmith.cli import app
    from tunesmith.stop_signals import STOP_SIGNALS

    before = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    spec = project.write_spec(project.spec(name="in-process", budget={"trials": 2}))
    with handlers_restored():  # a failure here leaves no handler behind for the tests after it
        for args in (["run", str(spec), "--quiet"], ["resume", "in-process", "--quiet"]):
            assert app(args, standalone_mode=False) in (None, 0), args
            assert {s: signal.getsignal(s) for s in STOP_SIGNALS} == before, args


def test_a_second_coordinator_is_refused_while_the_first_runs(project, fault_log):
    # the first run's trials are held until it is killed: under load the second CLI's start-up could outlast a run
    # of 0.4 s trials, and `resume` of a finished experiment exits 0
    project.write("held.py", """
        import time
        def objective(config, trial):
            time.sleep(120)
            return config["x"]
    """)
    spec = project.write_spec(project.spec(name="leased", trial={"function": "held:objective"}, budget={"trials": 20},
                                           executor={"kind": "process", "workers": 2}))
    first = start_cli(project, "run", str(spec), "--quiet")
    try:
        wait_for(lambda: count_states(project, "leased").get("running", 0) >= 1)
        second = project.cli("resume", "leased", "--quiet")
        assert second.returncode == 2
        assert "being run by another coordinator" in second.stderr
        assert str(first.pid) in second.stderr, "the message names the holder"
        fault_log(area="coordinator", backend="sqlite", fault="a second coordinator on a running experiment",
                  outcome="refused, exit 2, naming the lease holder", reason=second.stderr.strip()[:90],
                  injected=1, recovered=1, lost=0)
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=10)


def test_trials_still_running_when_the_grace_period_ends_are_interrupted(project, monkeypatch):
    monkeypatch.setenv("SLOW_SECONDS", "60")
    spec = project.write_spec(project.spec(name="grace", trial={"function": "objectives:slow"},
                                           executor={"kind": "process", "workers": 1, "grace_period": 0.5}))
    proc = start_cli(project, "run", str(spec), "--quiet")
    wait_for(lambda: count_states(project, "grace").get("running", 0) == 1)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == 130
    [trial] = project.trials("grace")
    assert (trial["state"], trial["error"]) == ("interrupted", "interrupted: still running when the 0.5s grace period ended")



def test_an_executor_failing_in_the_grace_period_still_stops_closes_and_records_the_run(project, monkeypatch):
    """The executor's poll raising during the grace period (a Ray cluster going away while the last trials finish):
    the run is still recorded (interrupted: the user had asked it to stop), its trials interrupted, its executor closed (quota slots given back); the
    error reaches the caller."""
    import threading

    from tunesmith.errors import ClusterLost
    from tunesmith.runner import run_experiment
    from tunesmith.spec.loader import spec_from_dict
    from tunesmith.storage import SQLStore

    monkeypatch.setenv("SLOW_SECONDS", "60")
    monkeypatch.setenv("TUNESMITH_USER", "erin")
    store = SQLStore(project.storage)
    store.set_quota("user:erin", 5, now=time.time())
    spec = spec_from_dict(project.spec(name="lost-in-grace", trial={"function": "objectives:slow"},
                                       executor={"kind": "process", "workers": 1, "grace_period": 30}))

    def sabotage(runner) -> None:
        inner_poll = runner.executor.poll

        def poll(timeout: float):
            if runner._stop_requested:  # in the grace period now
                raise ClusterLost("the cluster went away (test)")
            return inner_poll(timeout)

        runner.executor.poll = poll
        threading.Timer(1.0, runner.request_stop).start()

    with pytest.raises(ClusterLost):
        run_experiment(spec, store, on_runner=sabotage)
    assert store.experiment("lost-in-grace").status.value == "interrupted"  # (a stop was asked for first)
    assert [t["state"] for t in project.trials("lost-in-grace")] == ["interrupted"]
    assert store.quotas(now=time.time())[0].in_use == 0, "the running trial's slot was given back"
    store.close()


def test_a_coordinator_interrupted_while_a_joiner_runs_exits_130_and_says_the_run_goes_on(project):
    """Ctrl-C on the lead while `resume --join` runs trials beside it: the experiment stays the joiner's (status
    running, then completed), and the lead exits 130 saying so. It exited 0 without a word, as if it had finished.
    Trials after the first are held until the test releases them (a file per trial, or all): the lead's own trial
    once it was interrupted, the joiner's once the lead has exited and the status was read."""
    project.write("gated.py", f"""
        import os, time
        ROOT = {str(project.root)!r}
        def objective(config, trial):
            deadline = time.monotonic() + 60
            while trial.number > 0 and time.monotonic() < deadline and not any(
                    os.path.exists(os.path.join(ROOT, name)) for name in (f"release-{{trial.number}}", "release")):
                time.sleep(0.02)
            return config["x"]
    """)
    spec = project.write_spec(project.spec(name="shared", trial={"function": "gated:objective"},
                                           budget={"trials": 6}, executor={"kind": "process", "workers": 1}))
    lead = start_cli(project, "run", str(spec), "--quiet")
    joiner = None
    try:
        wait_for(lambda: count_states(project, "shared").get("completed", 0) >= 1, timeout=60)
        joiner = start_cli(project, "resume", "shared", "--join", "--quiet")
        wait_for(lambda: count_states(project, "shared").get("running", 0) == 2, timeout=60)
        with sqlite3.connect(project.db) as conn:
            [leads] = conn.execute("SELECT number FROM trials WHERE state = 'running' AND owner LIKE ?",
                                   (f"%:{lead.pid}:%",)).fetchall()
        lead.send_signal(signal.SIGINT)
        (project.root / f"release-{leads[0]}").touch()  # the lead's trial ends in its grace period
        _, lead_err = lead.communicate(timeout=60)
        assert lead.returncode == 130, lead_err
        assert "tunesmith resume shared --join" in lead_err, lead_err
        assert project.show("shared")["status"] == "running", "the joiner still runs it"
        (project.root / "release").touch()
        _, joiner_err = joiner.communicate(timeout=120)
    finally:
        stop_processes(lead, joiner)
    assert joiner.returncode == 0, joiner_err
    shown = project.show("shared")
    assert shown["status"] == "completed" and shown["trials"]["completed"] == 6, shown


def test_a_lead_interrupted_while_a_joiner_is_between_trials_leaves_the_experiment_to_it(project):
    """The lead counted only others' running trials: stopped while the joiner was between two trials (seen 1 in 3
    with 50 ms trials) it marked the experiment interrupted and said `tunesmith resume` though the joiner ran on.
    Here the joiner is held between trials: its trial crashes and waits out the retry back-off, queued."""
    project.write("held.py", f"""
        import os, signal, time
        RELEASE = {str(project.root / "release")!r}
        def objective(config, trial):
            if trial.number == 0:  # the lead's: held until the test has the joiner waiting
                deadline = time.monotonic() + 60
                while not os.path.exists(RELEASE) and time.monotonic() < deadline:
                    time.sleep(0.05)
            elif trial.attempt == 1:  # the joiner's first attempt crashes: retried after the back-off
                os.kill(os.getpid(), signal.SIGKILL)
            return config["x"]
    """)
    spec = project.write_spec(project.spec(name="between", trial={"function": "held:objective"}, budget={"trials": 2},
                                           executor={"kind": "process", "workers": 1, "retry_backoff": "8s"}))
    lead = start_cli(project, "run", str(spec), "--quiet")
    joiner = None
    try:
        wait_for(lambda: count_states(project, "between").get("running", 0) == 1, timeout=60)
        joiner = start_cli(project, "resume", "between", "--join", "--quiet")
        wait_for(lambda: count_states(project, "between").get("queued", 0) == 1, timeout=60)
        lead.send_signal(signal.SIGINT)
        (project.root / "release").touch()
        _, lead_err = lead.communicate(timeout=60)
        assert lead.returncode == 130, lead_err
        assert count_states(project, "between") == {"completed": 1, "queued": 1}, "the joiner waits out its back-off"
        assert project.show("between")["status"] == "running", "the joiner still runs it"
        assert "Other coordinators still run between" in lead_err, lead_err
        _, joiner_err = joiner.communicate(timeout=120)
    finally:
        stop_processes(lead, joiner)
    assert joiner.returncode == 0, joiner_err
    shown = project.show("between")
    assert shown["status"] == "completed" and shown["trials"]["completed"] == 2, shown


def test_a_ctrl_c_landing_after_the_trial_function_returned_is_the_signals_not_the_trials(project):
    """A SIGINT arriving after the function returned, past the watch (in prune_requested, or as the handlers were
    put back), was read as the trial's own KeyboardInterrupt: the trial failed and the run went on, Ctrl-C lost."""
    from tunesmith.evaluation.attempt import run_attempt
    from tunesmith.evaluation.job import TrialJob

    project.write("quick.py", """
        def objective(config, trial):
            return {"loss": 1.0}
    """)
    workdir = project.root / "trial-0"
    workdir.mkdir()
    job = TrialJob("exp", 0, 1, {"x": 0.5}, 7, str(workdir), str(workdir / "trial.log"), ("loss",),
                   function="quick:objective", base_dir=str(project.root))

    def prune_requested() -> bool:  # asked once the function returned: a real Ctrl-C lands here
        os.kill(os.getpid(), signal.SIGINT)
        return False

    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with open(job.log_path, "a") as log, pytest.raises(KeyboardInterrupt):
        run_attempt(job, log, lambda r: None, prune_requested)


def test_a_ctrl_c_while_the_run_sets_up_returns_an_interrupted_result(project, monkeypatch):
    """A notebook's Interrupt in the first second of tunesmith.run(), while the strategy was being built (scipy's
    import, for bo), raised KeyboardInterrupt with a long traceback and left the experiment `created`: the README
    promises a call that returns, `status == "interrupted"`, as it does once trials run."""
    import tunesmith.runner as runner_module

    build = runner_module.build_strategy

    def ctrl_c_while_building(*args: object, **kwargs: object) -> object:
        os.kill(os.getpid(), signal.SIGINT)  # the user's Ctrl-C: Python's own handler raises it in this thread
        return build(*args, **kwargs)

    spec = {"name": "early", "objective": {"metric": "loss", "direction": "minimize"},
            "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}}, "budget": {"trials": 2},
            "executor": {"kind": "inline"}, "trial": {"function": "objectives:quadratic"}}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runner_module, "build_strategy", ctrl_c_while_building)
        result = tunesmith.run(spec)
    assert (result.status.value, result.stop_reason, result.trials) == ("interrupted", "interrupted", [])
    assert tunesmith.open_experiment("early").status.value == "interrupted"
    resumed = tunesmith.resume("early")
    assert resumed.status.value == "completed" and len(resumed.trials) == 2
