"""One rule for "nothing runs this experiment": `ls`, `show` and the cycle (which resumes an abandoned re-tune or first
tuning) agree, also for a run whose coordinator was waiting on a quota slot. `ls`/`show` never called such a run
abandoned (a coordinator killed during the wait leaves the wait open for ever), while the cycle's check ignored the
wait (a live joiner on another machine, queued for a slot for over a minute, was taken for dead and resumed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest

from tunesmith.coordinators import run_abandoned
from tunesmith.cycle import _stopped
from tunesmith.records import RunStatus
from tunesmith.spec.loader import spec_from_dict
from tunesmith.storage.sql import SQLStore

OCCUPANT = "far-host:1:occupant"   # holds the only slot of the tag, from another machine


def _waiting_run(project: Any, waiter: str) -> SQLStore:
    """Experiment ``w`` recorded as running, its coordinator ``waiter`` queued for a full quota's slot (as the
    executor's lease wrapper leaves it: a ``quota_wait`` event, a ticket in the queue), heard from otherwise only
    by the beat its heartbeat thread stamps now (it beats every 5 s while it waits, as at any time)."""
    store = SQLStore(project.storage)
    stored = spec_from_dict({**project.spec("w"), "base_dir": str(project.root)}).to_json()  # as a run records it
    exp = store.create_experiment("w", stored, "random", "", time.time() - 600)
    store.record_event(exp.id, "run_running", time.time() - 600, detail={"owner": waiter})
    store.set_status(exp.id, RunStatus.RUNNING, time.time() - 600)
    store.set_quota("tag:team=a", 1, time.time())
    keys = {"tag:team=a": None}
    assert store.acquire_slot(OCCUPANT, exp.id, keys, time.time(), ttl=3600.0).granted
    refused = store.acquire_slot(waiter, exp.id, keys, time.time(), ttl=10.0)
    assert not refused.granted
    store.record_event(exp.id, "quota_wait", time.time(), detail={
        "key": refused.full_key, "limit": 1, "in_use": 1, "user": "u", "holder": waiter})
    store.heartbeat(exp.id, [], time.time(), waiter)
    return store


def _ls_and_show(project: Any) -> tuple[bool, dict[str, Any]]:
    listed = json.loads(project.cli("ls", "--json", check=True).stdout)
    return next(r["abandoned"] for r in listed if r["name"] == "w"), project.show("w")


def test_a_coordinator_killed_while_waiting_for_a_quota_slot_is_abandoned_everywhere(project: Any) -> None:
    gone = subprocess.run([sys.executable, "-c", "from tunesmith.lease_holders import lease_owner_id; "
                           "print(lease_owner_id())"], capture_output=True, text=True, check=True,
                          env=os.environ).stdout.strip()  # a coordinator of this host whose process has ended
    store = _waiting_run(project, gone)
    exp = store.experiment("w")
    assert _stopped(store, exp) and run_abandoned(store, exp, time.time())
    in_ls, shown = _ls_and_show(project)
    assert in_ls and shown.get("abandoned") is True and "quota_wait" not in shown, shown


@pytest.mark.parametrize("later", [0.0, 3600.0])
def test_a_live_remote_waiter_is_at_work_and_a_silent_one_abandoned(project: Any, later: float) -> None:
    """A joiner on another machine, its trials done, queued for a slot: it beats every 5 s, and is at work; an hour
    after its last beat, it is abandoned. The cycle and `ls` say the same either way."""
    store = _waiting_run(project, "far-host:2:joiner")
    exp = store.experiment("w")
    now = time.time() + later
    assert run_abandoned(store, exp, now) is bool(later)
    if not later:
        assert not _stopped(store, exp)  # the cycle resumed it next to its live coordinator
        in_ls, shown = _ls_and_show(project)
        assert not in_ls and "abandoned" not in shown and shown["quota_wait"]["key"] == "tag:team=a", shown
