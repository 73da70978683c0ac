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
