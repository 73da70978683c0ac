"""A coordinator's name says where it runs; a holder is known dead only on this host, in this PID namespace."""

from __future__ import annotations

import os
import subprocess
import sys

from tunesmith.lease_holders import _pid_namespace, holder_alive, lease_owner_id


def _name_of_a_finished_process() -> str:
    done = subprocess.run([sys.executable, "-c", "from tunesmith.lease_holders import lease_owner_id as f; print(f())"],
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_a_finished_coordinator_on_this_host_is_dead_and_a_live_one_alive() -> None:
    gone = _name_of_a_finished_process()
    assert not holder_alive(gone), gone
    assert holder_alive(lease_owner_id())


def test_a_holder_in_another_pid_namespace_is_left_to_its_lease() -> None:
    """Containers sharing the host's network share its name, not its pids: a pid free here may be alive there."""
    gone = _name_of_a_finished_process()
    host, pid, tag = gone.split(":")
    namespace = _pid_namespace()
    if namespace:   # Linux
        assert tag.startswith(namespace + ".")
        assert holder_alive(f"{host}:{pid}:{int(namespace) + 1}.{tag.partition('.')[2]}")
        assert holder_alive(f"{host}:{pid}:abc123"), "a name without a namespace, read where ours is known"
    assert holder_alive(f"elsewhere.invalid:{pid}:{tag}")
    assert holder_alive(f"{host}:{os.getpid()}:{tag}")


def test_who_is_at_work_on_an_experiment_and_the_last_one_out_records_its_status(tmp_path) -> None:
    """On a real store: a joiner between trials is at work (its last trial saved, no trial running); one recorded as
    left, one whose process is gone and one silent for longer than stale_after are not; a lead's lease counts."""
    from dataclasses import replace

    from tunesmith.coordinators import leave, peers_at_work
    from tunesmith.records import RunStatus, TrialState
    from tunesmith.storage import SQLStore

    store = SQLStore(f"sqlite:///{tmp_path / 'tunesmith.db'}")
    exp = store.create_experiment("shared", {"name": "shared"}, "random", "", now=1000.0)
    lead, joiner, dead = lease_owner_id(), lease_owner_id(), _name_of_a_finished_process()
    assert store.acquire_lease(exp.id, lead, 1000.0, 120.0) is None
    for at, owner in ((1000.0, lead), (1001.0, joiner), (1001.0, dead)):
        store.set_status(exp.id, RunStatus.RUNNING, at, {"owner": owner})
    trial = store.new_trial(exp.id, {"x": 0.5}, 0, 1002.0, "{number}.log", owner=joiner)
    assert trial is not None
    store.save_trial(exp.id, replace(trial, state=TrialState.COMPLETED, values=(0.5,)), "trial_completed", 1003.0)
    assert peers_at_work(store, exp.id, lead, 1010.0, 60.0) == [joiner], "between trials, and never the dead one"
    assert peers_at_work(store, exp.id, joiner, 1010.0, 60.0) == [lead], "the lead, by its lease"
    assert peers_at_work(store, exp.id, lead, 1062.0, 60.0) == [joiner], "heard from by its trial, not its start"
    assert peers_at_work(store, exp.id, lead, 1064.0, 60.0) == [], "silent for longer than stale_after"
    assert not leave(store, exp.id, lead, RunStatus.INTERRUPTED, "interrupted by SIGINT", 1010.0, 60.0)
    assert store.experiment("shared").status is RunStatus.RUNNING, "the joiner is still at it"
    assert peers_at_work(store, exp.id, joiner, 1011.0, 60.0) == [], "the lead left (its lease not yet released)"
    assert leave(store, exp.id, joiner, RunStatus.COMPLETED, "trial budget allocated", 1011.0, 60.0)
    assert store.experiment("shared").status is RunStatus.COMPLETED
    kinds = [e.kind for e in store.events(exp.id)][-3:]
    assert kinds == ["coordinator_interrupted", "coordinator_done", "run_completed"], kinds
    store.close()
