"""Stops from outside: SIGKILL of the coordinator then `resume`, Ctrl-C / SIGTERM, a second Ctrl-C."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest


def start_cli(project, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "TUNESMITH_STORAGE": project.storage, "COLUMNS": "200"}
    return subprocess.Popen([sys.executable, "-m", "tunesmith.cli", *args], cwd=project.root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def count_states(project, name: str) -> dict[str, int]:
    if not project.db.exists():
        return {}
    with sqlite3.connect(project.db) as conn:
        rows = conn.execute("SELECT t.state, COUNT(*) FROM trials t JOIN experiments e ON e.id = t.experiment_id "
                            "WHERE e.name = ? GROUP BY t.state", (name,)).fetchall()
    return dict(rows)


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except sqlite3.OperationalError:  # the schema is being created
            value = None
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out waiting")


def worker_pids(project) -> list[int]:
    """Live tunesmith workers whose working directory is this project (trials chdir to the spec folder)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if b"tunesmith.executor.worker" in cmd and cwd == str(project.root):
            pids.append(int(entry))
    return pids


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
    wait_for(lambda: not any(_alive(p) for p in running_workers), timeout=10)
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
    rerun = [t for t in trials if t["attempts"] == 2]
    assert len(rerun) == before["running"], "exactly the trials left running were re-run"
    with sqlite3.connect(project.db) as conn:
        lost_events = conn.execute("SELECT COUNT(*) FROM events WHERE kind = 'trial_lost'").fetchone()[0]
    assert lost_events == before["running"]


def test_resume_of_a_finished_experiment_runs_nothing_more(project):
    project.cli("run", str(project.write_spec(project.spec(name="done"))), "--quiet", check=True)
    before = project.trials("done")
    proc = project.cli("resume", "done", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert project.trials("done") == before


def test_ctrl_c_lets_running_trials_finish_then_exits_130(project, slow_spec):
    spec = slow_spec("sigint", trials=40, grace_period=10)
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
    assert project.show("sigint")["trials"]["completed"] == 40


def test_second_ctrl_c_stops_at_once_and_keeps_the_store_consistent(project, monkeypatch):
    monkeypatch.setenv("SLOW_SECONDS", "60")
    spec = project.write_spec(project.spec(name="twice", trial={"function": "objectives:slow"},
                                           executor={"kind": "process", "workers": 2, "grace_period": 120}))
    proc = start_cli(project, "run", str(spec))
    wait_for(lambda: count_states(project, "twice").get("running", 0) == 2)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert time.monotonic() - started < 10, "the second Ctrl-C does not wait for the grace period"
    assert count_states(project, "twice") == {"interrupted": 2}
    trials = project.trials("twice")
    assert all(t["error"] and "interrupted" in t["error"] for t in trials)
    assert not worker_pids(project)


def test_sigterm_is_a_graceful_stop(project, slow_spec):
    spec = slow_spec("term", trials=40)
    proc = start_cli(project, "run", str(spec), "--quiet")
    wait_for(lambda: count_states(project, "term").get("completed", 0) >= 1)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert project.show("term")["status"] == "interrupted"


def test_a_second_coordinator_is_refused_while_the_first_runs(project, slow_spec):
    spec = slow_spec("leased", trials=20)
    first = start_cli(project, "run", str(spec), "--quiet")
    try:
        wait_for(lambda: count_states(project, "leased").get("running", 0) >= 1)
        second = project.cli("resume", "leased", "--quiet")
        assert second.returncode == 2
        assert "being run by another coordinator" in second.stderr
        assert str(first.pid) in second.stderr, "the message names the holder"
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=10)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False
