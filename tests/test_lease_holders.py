"""A coordinator's name says where it runs; a holder is known dead only on this host, in this PID namespace."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any

from tunesmith.lease_holders import _pid_namespace, holder_alive, lease_owner_id


def _name_of_a_finished_process() -> str:
    done = subprocess.run([sys.executable, "-c", "from tunesmith.lease_holders import lease_owner_id as f; print(f())"],
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_a_finished_coordinator_on_this_host_is_dead_and_a_live_one_alive() -> None:
    gone = _name_of_a_finished_process()
    assert not holder_alive(gone), gone
    assert holder_alive(lease_owner_id())


def test_a_coordinator_that_exited_but_was_not_reaped_is_dead() -> None:
    """A SIGKILLed coordinator whose parent has not waited for it yet is a zombie: kill(pid, 0) still finds it, and
    it was taken for alive, so its trials stayed running (seen under a supervisor that reaped late)."""
    with subprocess.Popen([sys.executable, "-c", "from tunesmith.lease_holders import lease_owner_id as f; "
                           "print(f(), flush=True); import time; time.sleep(60)"], stdout=subprocess.PIPE,
                          text=True) as child:  # (closes the pipe, and reaps the child, on the way out)
        assert child.stdout is not None
        name = child.stdout.readline().strip()
        assert holder_alive(name), "alive while it runs"
        os.kill(child.pid, signal.SIGKILL)
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # it has exited; it is not reaped (still a zombie)
        assert not holder_alive(name), "a zombie holds nothing"


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
    remote = "another-host:4242:0a1b2c"   # whether it lives cannot be known from here: only what the store heard
    for at, owner in ((1000.0, lead), (1001.0, joiner), (1001.0, dead), (1001.0, remote)):
        store.set_status(exp.id, RunStatus.RUNNING, at, {"owner": owner})
    trial = store.new_trial(exp.id, {"x": 0.5}, 0, 1002.0, "{number}.log", owner=joiner)
    assert trial is not None
    store.save_trial(exp.id, replace(trial, state=TrialState.COMPLETED, values=(0.5,)), "trial_completed", 1003.0)
    assert peers_at_work(store, exp.id, lead, 1010.0, 60.0) == sorted([joiner, remote]), "never the dead one"
    assert peers_at_work(store, exp.id, joiner, 1010.0, 60.0) == sorted([lead, remote]), "the lead, by its lease"
    assert peers_at_work(store, exp.id, lead, 1062.0, 60.0) == [joiner], "heard from by its trial, not its start"
    assert peers_at_work(store, exp.id, lead, 1064.0, 60.0) == [joiner], "silent, but a live process on this host"
    assert peers_at_work(store, exp.id, joiner, 5000.0, 60.0) == [lead], "its lease lapsed, but it lives here"
    assert not leave(store, exp.id, lead, RunStatus.INTERRUPTED, "interrupted by SIGINT", 1010.0, 60.0)
    assert store.experiment("shared").status is RunStatus.RUNNING, "the joiner is still at it"
    assert peers_at_work(store, exp.id, joiner, 1011.0, 60.0) == [remote], "the lead left (lease not yet released)"
    assert not leave(store, exp.id, joiner, RunStatus.COMPLETED, "trial budget allocated", 1011.0, 60.0)
    assert leave(store, exp.id, remote, RunStatus.COMPLETED, "trial budget allocated", 1080.0, 60.0)
    assert store.experiment("shared").status is RunStatus.COMPLETED
    kinds = [e.kind for e in store.events(exp.id)][-4:]
    assert kinds == ["coordinator_interrupted", "coordinator_done", "coordinator_done", "run_completed"], kinds
    store.close()


def test_show_and_delete_see_a_joiner_between_trials_and_a_lead_past_its_lease(tmp_path):
    """`show` called such runs abandoned and `delete` removed their records: it read only the lease and trials
    running at that moment (a joiner holds no lease; an inline trial longer than the lease stops its renewal)."""
    import time
    from dataclasses import replace

    from tunesmith.coordinators import at_work
    from tunesmith.records import RunStatus, TrialState
    from tunesmith.storage import SQLStore

    store = SQLStore(f"sqlite:///{tmp_path / 'tunesmith.db'}")
    now = time.time()
    joined = store.create_experiment("joined", {"name": "joined"}, "random", "", now=now - 30)
    joiner = lease_owner_id()
    store.set_status(joined.id, RunStatus.RUNNING, now - 30, {"owner": joiner})
    trial = store.new_trial(joined.id, {"x": 0.5}, 0, now - 20, "{number}.log", owner=joiner)
    store.save_trial(joined.id, replace(trial, state=TrialState.COMPLETED, values=(0.5,)), "trial_completed", now - 10)
    assert at_work(store, joined.id, now, 60.0) == [joiner], "between trials"
    inline = store.create_experiment("inline", {"name": "inline"}, "random", "", now=now - 300)
    lead = lease_owner_id()
    assert store.acquire_lease(inline.id, lead, now - 300, 120.0) is None   # lapsed 180 s ago
    assert at_work(store, inline.id, now, 60.0) == [lead], "alive here, its lease lapsed during a long trial"
    gone = store.create_experiment("gone", {"name": "gone"}, "random", "", now=now - 300)
    assert store.acquire_lease(gone.id, _name_of_a_finished_process(), now - 300, 120.0) is None
    assert at_work(store, gone.id, now, 60.0) == [], "its coordinator died: abandoned"
    store.close()


# The product beats every LEASE_RENEW_EVERY (5 s), a constant no spec sets: these tests beat every BEAT instead
# (coordinators.HEARTBEAT_EVERY, the runner's Heartbeat's interval), waiting on the beats, not on seconds.
BEAT = 0.5


def _beat_every(monkeypatch, seconds: float = BEAT) -> None:
    from tunesmith import coordinators

    monkeypatch.setattr(coordinators, "HEARTBEAT_EVERY", seconds)


REMOTE_LEAD = """
import pathlib, socket, sys, time
socket.gethostname = lambda: "elsewhere.invalid"  # its name says another machine: no pid of it can be checked here
import tunesmith
import tunesmith.coordinators as coordinators
coordinators.HEARTBEAT_EVERY = float(sys.argv[3])  # beats every BEAT, not LEASE_RENEW_EVERY
from tunesmith.events import RunListener

class Stall(RunListener):
    def trial_started(self, trial):  # holds the run's loop (as a slow proposal or a slow store write would)
        if trial.number == 1:
            pathlib.Path("stalled").write_text("")
            time.sleep(float(sys.argv[2]))
            pathlib.Path("stall-over").write_text("")

tunesmith.run(sys.argv[1], listener=Stall())
"""



def _beats(store: Any, name: str) -> dict[int, float | None]:
    return {t.number: t.heartbeat_at for t in store.trials(store.experiment(name).id)}


def _remote_lead(project, name: str, stall_s: int) -> subprocess.Popen[str]:
    """A lead on "another machine" (REMOTE_LEAD: its host name faked) running experiment ``name``, two trials that
    sleep 120 s, its loop held up for ``stall_s`` once it writes the file ``stalled``."""
    project.write("naps.py", "import time\ndef nap(config, trial):\n    time.sleep(120)\n    return config['x']\n")
    project.write("lead.py", REMOTE_LEAD)
    spec = project.write_spec(project.spec(name=name, trial={"function": "naps:nap"}, budget={"trials": 2}))
    return subprocess.Popen([sys.executable, "lead.py", str(spec), str(stall_s), str(BEAT)], cwd=project.root,
                            start_new_session=True, stderr=subprocess.PIPE, text=True)


def _stop_lead(lead: subprocess.Popen[str], store: Any) -> None:
    """Kill a remote lead still running; close its stderr, and the test's store if it opened one."""
    if lead.poll() is None:
        os.killpg(lead.pid, signal.SIGKILL)
        lead.wait(timeout=10)
    if lead.stderr:
        lead.stderr.close()
    if store is not None:
        store.close()


def test_a_lead_beats_for_its_trials_while_its_loop_is_held_up(project):
    """A lead on "another machine" (its host name faked: only its beats say it lives) beats from a thread of its
    own: with its loop held up, its running trials' beats still move on."""
    import time

    from tunesmith.storage import SQLStore

    lead = _remote_lead(project, "remote", 60)
    store: SQLStore | None = None
    try:
        deadline = time.monotonic() + 60
        while not (project.root / "stalled").exists():
            assert lead.poll() is None and time.monotonic() < deadline, lead.stderr.read() if lead.stderr else ""
            time.sleep(0.2)
        store = SQLStore(project.storage, create=False)
        first = _beats(store, "remote")
        deadline = time.monotonic() + 60 * BEAT   # the loop is held up for 60 s: any beat meanwhile is the thread's
        while True:
            later = _beats(store, "remote")
            if len(later) == 2 and all(later[n] is not None and (first[n] is None or later[n] > first[n])
                                       for n in later):
                break
            assert time.monotonic() < deadline and lead.poll() is None, (first, later)
            time.sleep(0.1)
        assert not (project.root / "stall-over").exists(), "the beats moved on while the loop was held up"
    finally:
        _stop_lead(lead, store)


def test_a_trial_waiting_out_its_retry_back_off_keeps_beating(project, monkeypatch):
    """A trial that failed and waits for its retry is not running, but it is still this coordinator's: beats go on
    for it, so a joiner does not take it for abandoned and run it too."""
    import threading
    import time

    import tunesmith
    from tunesmith.storage import SQLStore

    _beat_every(monkeypatch)
    backoff = 8 * BEAT   # 4 s: less a margin of 1 s at each end, a window of 2 s, four beats' worth

    project.write("flaky.py", "def boom(config, trial):\n    raise RuntimeError('flaky')\n")
    spec = project.write_spec(project.spec(name="waits", trial={"function": "flaky:boom"}, budget={"trials": 1},
                                           executor={"kind": "process", "workers": 1, "retries": 1,
                                                     "retry_on": ["exception"],
                                                     "retry_backoff": backoff}))
    seen: list[dict[int, float | None]] = []

    def watch() -> None:
        store = None
        while not done.is_set():
            try:
                store = store or SQLStore(project.storage, create=False)
                events = store.events(store.experiment("waits").id)
            except Exception:  # noqa: BLE001 - the store or the experiment is not there yet
                time.sleep(0.2)
                continue
            retry = next((e.at for e in events if e.kind == "trial_retry"), None)
            if retry is not None:
                seen.append((retry, _beats(store, "waits")))
            time.sleep(0.1)
        if store is not None:
            store.close()

    made = SQLStore(project.storage)   # the store's tables made here, not raced by the run and the watcher
    assert made.engine is not None
    made.close()
    done = threading.Event()
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        tunesmith.run(spec, storage=project.storage)
    finally:
        done.set()
        watcher.join()
    # a beat strictly inside the back-off: saving the retry's start also stamps heartbeat_at, at its very end
    inside = [b[0] for retry, b in seen if b.get(0) is not None and retry + 1 < b[0] < retry + backoff - 1]
    assert inside, seen


def test_an_in_memory_store_hears_the_beats_of_the_run_s_own_threads(project, monkeypatch):
    """With ``sqlite://`` each connection was a database of its own: the lease renewals and trial beats sent from
    the run's threads went to empty ones and failed unseen, and a quota slot (taken on an engine of its own) could
    not be had at all. Here an inline trial, holding the run's loop, waits to see its beat move on."""
    import time

    from tunesmith.events import RunListener
    from tunesmith.runner import run_experiment
    from tunesmith.spec import spec_from_dict
    from tunesmith.storage import SQLStore

    _beat_every(monkeypatch)
    store = SQLStore("sqlite://")
    moved: list[tuple[Any, Any]] = []

    def wait_for_a_beat(config: dict[str, float], trial: Any) -> float:
        # a beat renews the lease first (one that failed would raise before it): one landed, both did
        first = _beats(store, "inmemory")[0]
        deadline = time.monotonic() + 60 * BEAT
        while time.monotonic() < deadline and not moved:
            now = _beats(store, "inmemory")[0]
            if first is not None and now is not None and now > first:
                moved.append((first, now))
            time.sleep(0.2)
        return config["x"]

    class Warnings(RunListener):
        said: list[str] = []

        def warning(self, message: str) -> None:
            self.said.append(message)

    spec = spec_from_dict(project.spec(name="inmemory", trial=wait_for_a_beat, budget={"trials": 1},
                                       executor={"kind": "inline", "max_concurrent": 1}, base_dir=str(project.root)))
    try:
        result = run_experiment(spec, store, Warnings())
        assert [t.state.value for t in result.trials] == ["completed"], result.stop_reason
        assert moved, "no beat reached the store while the trial ran"
        assert not [m for m in Warnings.said if "beat" in m], Warnings.said
    finally:
        store.close()


def test_the_heartbeat_tells_each_streak_of_failed_beats_once_and_each_line_its_beats_return() -> None:
    """The heartbeat thread is the only one that renews a lead's lease and beats for its trials (the loop and the
    inline executor no longer do): what would go unseen on it is told by the run's loop, once each."""
    import queue
    import threading
    import time

    from tunesmith.coordinators import Heartbeat
    from tunesmith.errors import StorageError

    started: queue.Queue[None] = queue.Queue()
    actions: queue.Queue[str] = queue.Queue()
    ended: list[bool] = []

    stuck_ends = threading.Event()

    def beat() -> str | None:
        started.put(None)
        action = "" if ended else actions.get(timeout=60)
        if action == "end":
            ended.append(True)
        elif action == "fail":
            raise StorageError("database is locked")
        elif action == "stuck":
            stuck_ends.wait(60)
            return None
        return action if action not in ("", "end") else None

    def beats(*what: str) -> None:
        for action in what:
            actions.put(action)
            started.get(timeout=60)  # the next beat began: this one's outcome is recorded

    heartbeat = Heartbeat(beat, every=0.01)
    heartbeat.start()
    try:
        started.get(timeout=60)
        beats("fail", "fail")
        [told] = heartbeat.untold()
        assert told.startswith("2 heartbeat(s)") and "StorageError: database is locked" in told, told
        beats("fail")
        assert heartbeat.untold() == [], "one streak, told once"
        beats("", "fail")
        assert [line[:15] for line in heartbeat.untold()] == ["1 heartbeat(s) "], "a new streak after a success"
        beats("another coordinator took the lease")
        assert heartbeat.untold() == ["another coordinator took the lease"]
        assert heartbeat.untold() == []
        beats("fail", "fail", "fail", "")   # a store down for a while, answering again before the loop asked
        [told] = heartbeat.untold()
        assert told.startswith("3 heartbeat(s)"), "a streak that ended before it was told is still told"
        actions.put("stuck")   # the beat under way waits on the store (a lock another process holds)
        deadline = time.monotonic() + 60
        while not (told := heartbeat.untold()) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(told) == 1 and told[0].startswith("a heartbeat of this coordinator has waited"), told
        assert heartbeat.untold() == [], "told once while it waits"
        stuck_ends.set()
    finally:
        stuck_ends.set()
        actions.put("end")  # beats block no more: stop() need not wait one out
        heartbeat.stop()


def test_a_coordinator_paused_by_sigstop_says_it_was_paused_not_that_the_store_was_locked() -> None:
    """A coordinator stopped (SIGSTOP, a suspended machine) renews nothing meanwhile, and its peers may take its
    trials: told, once, as a pause of its own process (it had warned of a lock held by another process)."""
    import time

    child = subprocess.Popen([sys.executable, "-c", """
import sys, time
from tunesmith.coordinators import Heartbeat
beat = Heartbeat(lambda: None, every=0.05)
beat.start()
print("beating", flush=True)
told = []
while not any("paused" in line for line in told):
    time.sleep(0.05)
    told += beat.untold()
time.sleep(0.3)
told += beat.untold()
print(*told, sep="\\n", flush=True)
"""], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "beating\n"
        time.sleep(0.3)
        os.kill(child.pid, signal.SIGSTOP)
        time.sleep(4.5)
        os.kill(child.pid, signal.SIGCONT)
        out, _ = child.communicate(timeout=60)
    finally:
        child.kill()
    [told] = out.splitlines()
    assert told.startswith("this coordinator's process was paused for 4 s") or \
        told.startswith("this coordinator's process was paused for 5 s"), told
    assert "lock" not in told and "a joining coordinator takes its trials for abandoned" in told, told


def test_a_lead_killed_on_another_machine_is_at_work_until_its_lease_lapses(project):
    """A SIGKILLed lead on another host (its host name faked) beats for itself no more; it stays at work until its
    lease lapses, not STALE_AFTER after its last beat: silence alone cannot tell it from a live lead whose beats
    stalled (suspended, a C call holding the GIL), and `delete` or a cycle's resume then acted under a live run.
    `show` calls the run abandoned once the lease has lapsed, when `resume` may take it."""
    import signal
    import time

    from tunesmith.coordinators import LEASE_TTL, STALE_AFTER, at_work, run_abandoned
    from tunesmith.storage import SQLStore

    lead = _remote_lead(project, "killed", 300)
    store: SQLStore | None = None
    try:
        deadline = time.monotonic() + 90
        holder, beats = None, {}
        while not (holder and holder in beats):   # its lease taken and its first beat of its own in
            assert lead.poll() is None and time.monotonic() < deadline, lead.stderr.read() if lead.stderr else ""
            time.sleep(0.2)
            if (project.root / "stalled").exists():
                store = store or SQLStore(project.storage, create=False)
                exp_id = store.experiment("killed").id
                holder, beats = store.lease_holder(exp_id, time.time()), store.coordinator_beats(exp_id)
        assert holder is not None and holder.startswith("elsewhere.invalid:")
        os.killpg(lead.pid, signal.SIGKILL)
        lead.wait(timeout=30)
        assert store is not None
        last_beat = max(store.coordinator_beats(exp_id).values())
        assert at_work(store, exp_id, last_beat + 1) == [holder]
        silent = last_beat + STALE_AFTER + 1
        assert store.lease_holder(exp_id, silent) == holder, "its lease has not lapsed by then"
        assert at_work(store, exp_id, silent) == [holder], "a lead holding an unexpired lease is at work"
        assert not run_abandoned(store, store.experiment("killed"), silent)
        lapsed = last_beat + LEASE_TTL + 1   # its last beat renewed its lease: it lapses LEASE_TTL after
        assert store.lease_holder(exp_id, lapsed) is None
        assert at_work(store, exp_id, lapsed) == []
        assert run_abandoned(store, store.experiment("killed"), lapsed)
    finally:
        _stop_lead(lead, store)
