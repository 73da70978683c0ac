"""Several coordinators on one experiment: one holds the lease; others `--join` and share the budget."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from _faults_setup import show_json, trials_json
from helpers import count_states, settles, start_cli, stop_processes, wait_for
from tunesmith.storage import SQLStore

# The product beats every LEASE_RENEW_EVERY (5 s), a constant no spec sets; a lead started by _start_beating_cli
# (the real CLI, in its own process) beats every BEAT: coordinators.HEARTBEAT_EVERY set before the CLI runs.
BEAT = 0.5
_BEATING_CLI = ("import runpy, sys; import tunesmith.coordinators as coordinators; "
                "coordinators.HEARTBEAT_EVERY = float(sys.argv.pop(1)); "
                "runpy.run_module('tunesmith.cli', run_name='__main__', alter_sys=True)")


def _start_beating_cli(project, *args: str, storage: str) -> subprocess.Popen[str]:
    """start_cli's `python -m tunesmith.cli ARGS`, beating every BEAT."""
    env = {**os.environ, "TUNESMITH_STORAGE": storage, "COLUMNS": "200"}
    return subprocess.Popen([sys.executable, "-c", _BEATING_CLI, str(BEAT), *args], cwd=project.root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_joined_coordinators_share_one_budget(project, storage, fault_log):
    # From trial 2 on, a trial waits (at most 60 s) until the test sees both coordinators holding one: a joiner that
    # starts slowly on a loaded machine still finds most of the budget left, so the share asserted below is no race.
    project.write("sleepy.py", f"""
        import os, time
        RELEASE = {str(project.root / "release")!r}
        def objective(config, trial):
            deadline = time.monotonic() + 60
            while trial.number >= 2 and not os.path.exists(RELEASE) and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.1)
            return (config["x"] - 0.3) ** 2
    """)
    spec = project.write_spec(project.spec(name="shared", strategy="tpe", trial={"function": "sleepy:objective"},
                                           budget={"trials": 24}, executor={"kind": "process", "workers": 1}))
    first = start_cli(project, "run", str(spec), "--quiet", storage=storage)
    second = None
    try:
        wait_for(lambda: count_states(project, "shared", storage).get("completed", 0) >= 2, timeout=60)
        second = start_cli(project, "resume", "shared", "--join", "--quiet", storage=storage)
        wait_for(lambda: len(_owners(storage)) == 2, timeout=60)  # the joiner holds a trial of its own
        (project.root / "release").touch()
        _, err = first.communicate(timeout=120)
        _, joined_err = second.communicate(timeout=120)
    finally:
        stop_processes(first, second)
    assert first.returncode == 0, err
    assert second.returncode == 0, joined_err
    trials = trials_json("shared", storage)
    assert [t["number"] for t in trials] == list(range(24)), "one budget, unique numbers, nothing beyond it"
    assert all(t["state"] == "completed" and t["attempts"] == 1 for t in trials), "nobody re-ran a live trial"
    owners = _owners(storage)
    assert len(owners) == 2 and min(owners.values()) >= 3, owners
    shown = show_json("shared", storage)
    assert shown["status"] == "completed"
    fault_log(area="coordinator", backend=storage.split(":")[0].split("+")[0],
              fault="a second coordinator joins a running experiment (--join)",
              outcome=f"24 trials shared {sorted(owners.values())}, unique numbers, none re-run",
              reason="cooperative mode: no lease, atomic numbers within the budget", injected=1, recovered=1, lost=0)


def test_a_join_does_not_steal_trials_from_a_live_coordinator(project, storage):
    """`resume` (joined or not) must leave alone trials whose coordinator is alive."""
    _write_gated(project, "slow.py")  # trials run until the test releases them (or 30 s pass)
    spec = project.write_spec(project.spec(name="live", trial={"function": "slow:objective"},
                                           budget={"trials": 2}, executor={"kind": "process", "workers": 2}))
    first = start_cli(project, "run", str(spec), "--quiet", storage=storage)
    wait_for(lambda: count_states(project, "live", storage).get("running", 0) == 2, timeout=60)
    joined = project.cli("resume", "live", "--join", "--quiet", "--storage", storage, timeout=60)
    assert joined.returncode == 0, joined.stderr
    # the joiner had nothing to do and left at once: the live coordinator's trials, held until released, are still
    # running (judged by the store, not by a stopwatch, which a loaded machine makes flaky); a joiner that waited
    # for them returns only once they end on their own after 30 s
    assert count_states(project, "live", storage).get("running", 0) == 2, "the joiner waited for others' trials"
    (project.root / "release").touch()
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    trials = trials_json("live", storage)
    assert [(t["state"], t["attempts"]) for t in trials] == [("completed", 1), ("completed", 1)]


def test_a_joiner_leaves_alone_an_inline_trial_longer_than_the_staleness_limit(project, storage):
    """An inline trial runs in the lead's own thread, which beat for it only between trials: one longer than 60 s
    looked abandoned, and a joiner starting then marked it lost and ran it again beside the lead. Its heartbeat is
    set an hour back here (an hour of running, as the store sees it); the lead must beat for it while it runs.
    The trial is held up to 180 s, not 30: its first beat comes after LEASE_RENEW_EVERY (5 s; BEAT here) and the
    joiner's whole run must fit after it, which a 30 s hold left about 10 s for on a loaded machine."""
    _write_gated(project, "held.py", hold=180)
    spec = project.write_spec(project.spec(name="inline-long", trial={"function": "held:objective"},
                                           budget={"trials": 1}, executor={"kind": "inline"}))
    lead = _start_beating_cli(project, "run", str(spec), "--quiet", storage=storage)
    joiner = None
    try:
        wait_for(lambda: count_states(project, "inline-long", storage).get("running", 0) == 1, timeout=60)
        backdated = _set_heartbeats_back(storage, 3600)
        beaten = settles(lambda: _heartbeat(storage) > backdated + 1800, timeout=BEAT + 15)
        joiner = start_cli(project, "resume", "inline-long", "--join", "--quiet", storage=storage)
        _, joined_err = joiner.communicate(timeout=60)  # nothing of its own to run: it leaves at once
        assert joiner.returncode == 0, joined_err
        assert count_states(project, "inline-long", storage) == {"running": 1}, "the joiner took the lead's trial"
        assert beaten, "the lead did not beat for its inline trial while it ran"
        (project.root / "release").touch()
        _, err = lead.communicate(timeout=60)
    finally:
        stop_processes(lead, joiner)
    assert lead.returncode == 0, err
    trials = trials_json("inline-long", storage)
    assert [(t["state"], t["attempts"]) for t in trials] == [("completed", 1)]


def _set_heartbeats_back(storage: str, seconds: float) -> float:
    from sqlalchemy import create_engine, text

    engine = create_engine(storage)
    with engine.begin() as conn:
        conn.execute(text("UPDATE trials SET heartbeat_at = heartbeat_at - :s"), {"s": seconds})
    engine.dispose()
    return _heartbeat(storage)


def _heartbeat(storage: str) -> float:
    from sqlalchemy import create_engine, text

    engine = create_engine(storage)
    with engine.connect() as conn:
        at = conn.execute(text("SELECT MAX(heartbeat_at) FROM trials")).scalar_one()
    engine.dispose()
    return float(at)


def _write_gated(project, filename: str, hold: float = 30) -> None:
    """``objective`` that runs until a file ``release`` appears in the project folder (at most ``hold`` seconds):
    the test decides when the coordinator's trials end, so a slow CLI start on a loaded machine cannot outlast
    them."""
    project.write(filename, f"""
        import os, time
        def objective(config, trial):
            deadline = time.monotonic() + {hold!r}
            while not os.path.exists({str(project.root / "release")!r}) and time.monotonic() < deadline:
                time.sleep(0.05)
            return config["x"]
    """)


def _owners(storage: str) -> dict[str, int]:
    from sqlalchemy import create_engine, text

    engine = create_engine(storage)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT owner, COUNT(*) FROM trials GROUP BY owner")).all()
    engine.dispose()
    return {str(o): int(n) for o, n in rows}


def test_a_joiner_that_cannot_start_leaves_the_experiment_to_its_coordinator(project, storage, tmp_path, monkeypatch):
    """The lead coordinator's machine has a GPU (a stand-in `nvidia-smi` on its PATH); the joiner's has none, so
    its process executor fails at start (`gpus: all`). The experiment the lead still runs must not turn `failed`:
    the joiner's failure is an event, and the lead marks the experiment completed when it ends."""
    if os.path.isdir("/proc/driver/nvidia/gpus"):
        pytest.skip("this machine has an NVIDIA GPU: the joiner's executor would start")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)  # gpus: all would take an inherited allocation
    fake_bin = tmp_path / "gpu-bin"
    fake_bin.mkdir()
    (fake_bin / "nvidia-smi").write_text("#!/bin/sh\necho 'GPU 0: Stand-in (UUID: GPU-0)'\n")
    (fake_bin / "nvidia-smi").chmod(0o755)
    _write_gated(project, "slowish.py")  # the lead's trials run until the test releases them
    spec = project.write_spec(project.spec(name="gpu-lead", trial={"function": "slowish:objective"},
                                           budget={"trials": 3}, executor={"kind": "process", "workers": 1,
                                                                            "gpus": "all"}))
    env = {**os.environ, "TUNESMITH_STORAGE": storage, "COLUMNS": "200",
           "PATH": f"{fake_bin}{os.pathsep}{os.environ['PATH']}"}
    lead = subprocess.Popen([sys.executable, "-m", "tunesmith.cli", "run", str(spec), "--quiet"], cwd=project.root,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: count_states(project, "gpu-lead", storage).get("running", 0) == 1, timeout=60)
        joined = project.cli("resume", "gpu-lead", "--join", "--quiet", "--storage", storage, timeout=60)
        assert joined.returncode != 0, joined.stdout
        assert "this machine shows no NVIDIA GPU" in joined.stderr, joined.stderr
        mid = show_json("gpu-lead", storage)
        assert count_states(project, "gpu-lead", storage).get("running", 0) == 1, "the lead was still running"
        assert mid["status"] == "running", "a joiner's failed start marked the lead's experiment"
        (project.root / "release").touch()
        out, err = lead.communicate(timeout=120)
    finally:
        if lead.poll() is None:
            lead.kill()
            lead.wait()
    assert lead.returncode == 0, err
    shown = show_json("gpu-lead", storage)
    assert shown["status"] == "completed"
    store = SQLStore(storage)
    try:
        events = store.events(store.experiment("gpu-lead").id)
    finally:
        store.close()
    stopped = [e for e in events if e.kind == "coordinator_failed"]
    assert len(stopped) == 1 and "no NVIDIA GPU" in stopped[0].payload["reason"], [(e.kind, e.payload) for e in events]
    assert "run_failed" not in [e.kind for e in events]
