"""Quotas: executor.max_concurrent (per experiment) and store-wide limits per user or tag, on slot leases."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from _faults_setup import read_json

import tunesmith
from tunesmith.errors import SpecError
from tunesmith.records import QuotaUsage, TrialState
from tunesmith.spec.loader import spec_from_dict

NAPS = """
import time

def nap(config, trial):
    time.sleep(0.3)
    return config["x"]
"""


def _most_at_once(trials) -> int:
    edges = sorted([(t.started_at, 1) for t in trials] + [(t.finished_at, -1) for t in trials])
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


def test_max_concurrent_caps_running_trials_below_the_workers(project):
    project.write("naps.py", NAPS)
    spec = project.spec(name="capped", trial={"function": "naps:nap"}, budget={"trials": 8},
                        executor={"kind": "process", "workers": 3, "max_concurrent": 2})
    result = tunesmith.run(spec, storage=project.storage)
    assert all(t.state is TrialState.COMPLETED for t in result.trials)
    assert _most_at_once(result.trials) == 2


def test_without_a_cap_the_workers_fill(project):
    project.write("naps.py", NAPS)
    spec = project.spec(name="uncapped", trial={"function": "naps:nap"}, budget={"trials": 6},
                        executor={"kind": "process", "workers": 3})
    assert _most_at_once(tunesmith.run(spec, storage=project.storage).trials) == 3


def test_max_concurrent_is_validated(project):
    with pytest.raises(SpecError, match=r"executor.max_concurrent"):
        spec_from_dict(project.spec(executor={"max_concurrent": 0}))


# -- store-wide quotas on slot leases ----------------------------------------------------------------------------

SLEEPERS = """
import os, time

def nap(config, trial):
    gate, waited = os.environ.get("NAP_GATE"), time.monotonic()
    while gate and not os.path.exists(gate) and time.monotonic() - waited < 60:  # held until the test opens it
        time.sleep(0.02)
    time.sleep(float(os.environ.get("NAP_SECONDS", "0.3")))
    return config["x"]
"""


def _started(trials) -> list[float]:
    return sorted(t.started_at for t in trials)


def _tagged(project, name: str, **overrides):
    spec = project.spec(name=name, trial={"function": "sleepers:nap"}, tags={"team": "vision"},
                        **{"executor": {"kind": "process", "workers": 3}, **overrides})
    return project.write_spec(spec)


def _store_trials(url: str, *names: str):
    from tunesmith.storage import SQLStore

    store = SQLStore(url, create=False)
    try:
        return {n: store.trials(store.experiment(n).id) for n in names}, \
            {n: store.events(store.experiment(n).id) for n in names}
    finally:
        store.close()


@pytest.mark.postgres
def test_two_coordinators_sharing_a_tag_never_exceed_its_limit(project, postgres_url):
    """Two `tunesmith run` processes, 3 workers each, one tag limited to 2 on a shared PostgreSQL store."""
    from helpers import start_cli

    project.write("sleepers.py", SLEEPERS)
    project.cli("quota", "set", "tag:team=vision", "2", "--storage", postgres_url, check=True)
    specs = [_tagged(project, n, budget={"trials": 6}) for n in ("left", "right")]
    procs = [start_cli(project, "run", str(s), "--quiet", storage=postgres_url) for s in specs]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    trials, events = _store_trials(postgres_url, "left", "right")
    both = trials["left"] + trials["right"]
    assert [len(trials["left"]), len(trials["right"])] == [6, 6], "both finish their budgets"
    assert all(t.state is TrialState.COMPLETED for t in both)
    assert _most_at_once(both) == 2, "at no instant more than 2 trials of the tag run (and the limit is used)"
    waits = [e for n in events for e in events[n] if e.kind == "quota_wait"]
    assert waits and {e.payload["key"] for e in waits} == {"tag:team=vision"}
    assert all(len([e for e in events[n] if e.kind == "quota_wait"]) <= 6 for n in events), "once per wait"
    listed = read_json("quota", "list", storage=postgres_url)
    assert {"key": "tag:team=vision", "limit": 2, "in_use": 0, "waiting": 0} in listed, "every lease was released"


def _start_holder(project, ttl: float) -> subprocess.Popen:
    """`tunesmith run` A, in a session of its own, holding both slots of tag team=vision with 60 s trials."""
    from helpers import wait_for

    from tunesmith.storage import SQLStore

    project.write("sleepers.py", SLEEPERS)
    store = SQLStore(project.storage)  # the quota, set in this process (`quota set` is not what these tests check)
    store.set_quota("tag:team=vision", 2, now=time.time())
    store.close()
    a = subprocess.Popen([sys.executable, "-m", "tunesmith.cli", "run", str(_tagged(
        project, "holder", budget={"trials": 2}, executor={"kind": "process", "workers": 2, "slot_lease_ttl": ttl})),
        "--quiet"], cwd=project.root, env={**os.environ, "NAP_SECONDS": "60"}, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _in_use(project) == 2, timeout=60)
    except BaseException:
        os.killpg(a.pid, signal.SIGKILL)
        raise
    return a


def _start_waiter(project) -> subprocess.Popen:
    """`tunesmith run` B on the same tag, once it waits for a slot."""
    from helpers import start_cli, wait_for

    b = start_cli(project, "run", str(_tagged(project, "waiter", budget={"trials": 2})), "--quiet")
    wait_for(lambda: _has_event(project, "waiter", "quota_wait"), timeout=60)
    return b


def test_a_killed_coordinators_slots_on_another_host_free_after_the_lease_ttl(project):
    """A holds both slots of the tag and is SIGKILLed; B, waiting (and saying so in `show`), gets them after A's
    lease TTL, not before: A's leases are recorded under another host's name, so B cannot check A's pid."""
    ttl = 2.0
    a = _start_holder(project, ttl)
    try:
        b = _start_waiter(project)
        shown = project.cli("show", "waiter", check=True).stdout
        assert "waiting on quota tag:team=vision: 2 of 2 slots in use" in shown, shown
        listed = read_json("quota", "list")
        assert listed == [{"key": "tag:team=vision", "limit": 2, "in_use": 2, "waiting": 1}], listed
        with sqlite3.connect(project.db) as conn:  # A's name as a coordinator on another machine would write it
            moved = conn.execute("UPDATE slot_leases SET holder = 'elsewhere.invalid' || substr(holder, instr("
                                 "holder, ':')) WHERE holder LIKE ?", (f"%:{a.pid}:%",)).rowcount
        assert moved == 2
        os.kill(a.pid, signal.SIGKILL)
        a.wait(timeout=10)
        lapse = _lease_expiry(project, "holder")  # nobody renews them now (A's renewer no longer finds them)
        _, err = b.communicate(timeout=60)
        assert b.returncode == 0, err
    finally:
        with contextlib.suppress(ProcessLookupError):  # A's orphaned workers: A's own session holds nothing else
            os.killpg(a.pid, signal.SIGKILL)
    trials, events = _waiter_completed(project)
    first = _started(trials["waiter"])[0]
    assert lapse <= first < lapse + 5, (first - lapse, "B starts once A's leases lapse, not before, nor much later")
    assert [e.kind for e in events["waiter"] if e.kind.startswith("quota_wait")][:2] == [
        "quota_wait", "quota_wait_ended"]


def test_a_killed_coordinators_slots_on_this_host_free_at_once(project):
    """A (a real `tunesmith run`, TTL 30 s) holds both slots and is SIGKILLed; B, waiting on the same host, sees
    A's process is gone and takes the slots within its next rechecks, not 30 s later."""
    a = _start_holder(project, ttl=30.0)
    try:
        b = _start_waiter(project)
        # read while A lives: once A is reaped, B deletes its leases at its next recheck (within 0.25 s), and a read
        # after the reap found none now and then (a loaded machine delays this process more than that)
        lapse = _lease_expiry(project, "holder")
        os.kill(a.pid, signal.SIGKILL)
        a.wait(timeout=10)  # reaped: a zombie still answers kill(pid, 0)
        killed = time.time()
        _, err = b.communicate(timeout=90)
        assert b.returncode == 0, err
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(a.pid, signal.SIGKILL)
    trials, events = _waiter_completed(project)
    first = _started(trials["waiter"])[0]
    assert lapse - killed > 20, "A's leases were still far from expiry when it died"
    assert first - killed < 10, (first - killed, "B starts within its rechecks of A's death, not at the TTL")
    assert _most_at_once(trials["waiter"]) == 2, "both of A's slots came free"
    assert [e.kind for e in events["waiter"] if e.kind.startswith("quota_wait")][:2] == [
        "quota_wait", "quota_wait_ended"]
    assert _in_use(project) == 0, "A's leases are gone from the store"


def _waiter_completed(project):
    """The waiter's trials and events, its two trials completed."""
    trials, events = _store_trials(project.storage, "waiter")
    assert [t.state for t in trials["waiter"]] == [TrialState.COMPLETED] * 2
    return trials, events


def test_a_wait_ends_in_the_record_when_both_trials_end_in_one_poll(project):
    """The flake of the test above: B took both slots for its two trials, whose ends reached B in one poll; B then
    took a slot it had nothing to start with and stopped, never recording `quota_wait_ended` (`quota_wait` was the
    run's last word on the quota). B is stopped (SIGSTOP) while its trials end, so they reach it together."""
    from helpers import count_states, start_cli, stop_processes, wait_for

    project.write("gated.py", f"""
        import os, time
        def nap(config, trial):
            open({str(project.root)!r} + f"/started-{{trial.number}}", "w").close()
            deadline = time.monotonic() + 60
            while not os.path.exists({str(project.root / "release")!r}) and time.monotonic() < deadline:
                time.sleep(0.02)
            open({str(project.root)!r} + f"/ended-{{trial.number}}", "w").close()
            return config["x"]
    """)
    a = _start_holder(project, ttl=30.0)
    try:
        waiter = project.spec(name="waiter", trial={"function": "gated:nap"}, tags={"team": "vision"},
                              budget={"trials": 2}, executor={"kind": "process", "workers": 3})
        b = start_cli(project, "run", str(project.write_spec(waiter)), "--quiet")
        wait_for(lambda: _has_event(project, "waiter", "quota_wait"), timeout=60)
        os.kill(a.pid, signal.SIGKILL)
        a.wait(timeout=10)
        wait_for(lambda: count_states(project, "waiter").get("running", 0) == 2, timeout=30)
        # both trials begun in their workers, not only recorded as running: B sends a trial to a worker it starts
        # then, and stopped in between, its second trial never began (a loaded machine's flake)
        wait_for(lambda: all((project.root / f"started-{n}").exists() for n in (0, 1)), timeout=30)
        os.kill(b.pid, signal.SIGSTOP)
        try:
            (project.root / "release").touch()
            wait_for(lambda: all((project.root / f"ended-{n}").exists() for n in (0, 1)), timeout=30)
            time.sleep(0.5)  # both results are in B's pipes
        finally:
            os.kill(b.pid, signal.SIGCONT)
        _, err = b.communicate(timeout=60)
        assert b.returncode == 0, err
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(a.pid, signal.SIGKILL)
        if "b" in locals():
            stop_processes(b)  # a failure above must not leave it running into the next test
    trials, events = _waiter_completed(project)
    assert [e.kind for e in events["waiter"] if e.kind.startswith("quota_wait")] == ["quota_wait", "quota_wait_ended"]


def test_a_waiting_run_says_so_once_and_starts_when_the_lease_lapses(project, monkeypatch):
    """In process, inline executor: another holder's lease fills the user's quota for a second and a half."""
    from tunesmith.storage import SQLStore

    store = SQLStore(project.storage)
    store.set_quota("user:carol", 1, now=time.time())
    held = store.acquire_slot("elsewhere:1:abc", 0, {"user:carol": None}, now=time.time(), ttl=1.5)
    assert held.granted
    lapse = time.time() + 1.5
    monkeypatch.setenv("TUNESMITH_USER", "carol")
    result = tunesmith.run(project.spec(name="carols", executor={"kind": "inline"}, budget={"trials": 3}),
                           storage=project.storage)
    assert [t.state for t in result.trials] == [TrialState.COMPLETED] * 3
    assert _started(result.trials)[0] >= lapse - 0.01
    kinds = [e.kind for e in store.events(result.experiment.id) if e.kind.startswith("quota")]
    assert kinds == ["quota_wait", "quota_wait_ended"], kinds
    assert store.experiment("carols").attributes.get("user") == "carol"
    assert store.quotas(now=time.time()) == [QuotaUsage("user:carol", 1, 0)]
    store.close()


@pytest.mark.parametrize("args, message", [
    (("set", "foo", "0"), "quota key: must be user:NAME"),
    (("set", "user:alice", "0"), "quota limit: must be a whole number from 1"),
    (("set", "tag:team", "3"), "got 'tag:team'"),
    (("remove", "experiment:3"), "executor.max_concurrent"),
    # Click's own usage text and "Invalid value for 'limit'" (or "No such option: -1") were all these got
    (("set", "user:alice", "abc"), "quota limit: must be a whole number from 1 to 1000000 (the most trials running "
                                   "at once); got 'abc'"),
    (("set", "user:alice", "1.5"), "quota limit: must be a whole number from 1"),
    (("set", "user:alice", "-1"), "No such option: -1: a negative number is read as an option"),
])
def test_bad_quota_input_exits_2_with_one_clear_message(project, args, message):
    proc = project.cli("quota", *args)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("postgres_url")


def test_a_store_at_revision_0002_gains_the_quota_tables(store_url):
    from helpers import migrate_to
    from sqlalchemy import create_engine, text

    from tunesmith.storage import SQLStore

    engine = create_engine(store_url)
    with engine.connect() as conn:
        migrate_to(conn, "0002")
        conn.execute(text("INSERT INTO experiments (name, spec, status, created_at, updated_at, next_number) "
                          "VALUES ('old', '{\"name\": \"old\"}', 'completed', 1.0, 2.0, 0)"))
        conn.commit()
    engine.dispose()
    store = SQLStore(store_url, on_upgrade=lambda said: None)  # (the Python API's warning: test_upgrade_in_place)
    exp = store.experiment("old")
    store.set_quota("tag:team=a", 1, now=5.0)
    assert store.acquire_slot("h:1:a", exp.id, {"tag:team=a": None}, now=5.0, ttl=5.0).granted
    assert not store.acquire_slot("h:2:b", exp.id, {"tag:team=a": None}, now=6.0, ttl=5.0).granted
    assert store.quotas(now=6.0) == [QuotaUsage("tag:team=a", 1, 1, waiting=1)]
    store.close()


def _in_use(project) -> int:
    with sqlite3.connect(project.db) as conn:
        return conn.execute("SELECT COUNT(DISTINCT lease) FROM slot_leases WHERE expires_at > ?",
                            (time.time(),)).fetchone()[0]


def _lease_expiry(project, name: str) -> float:
    with sqlite3.connect(project.db) as conn:
        return conn.execute("SELECT MAX(l.expires_at) FROM slot_leases l JOIN experiments x "
                            "ON x.id = l.experiment_id WHERE x.name = ?", (name,)).fetchone()[0]


def _has_event(project, name: str, kind: str) -> bool:
    with sqlite3.connect(project.db) as conn:
        return bool(conn.execute("SELECT COUNT(*) FROM events e JOIN experiments x ON x.id = e.experiment_id "
                                 "WHERE x.name = ? AND e.kind = ?", (name, kind)).fetchone()[0])


def test_concurrent_acquires_never_overshoot_a_limit(store_url):
    """Eight coordinators (threads with connections of their own) race for 2 slots, all at once, round after round;
    each winner counts the live leases once every acquire of the round has returned and before any slot is given
    back, so an acquire that overshot the limit always shows as 3 or more."""
    import threading

    from tunesmith.storage import SQLStore

    setup = SQLStore(store_url)
    setup.set_quota("tag:race=1", 2, now=1.0)
    setup.close()
    coordinators, rounds = 8, 12
    barriers = [threading.Barrier(coordinators, timeout=60) for _ in range(3)]
    start_together, all_asked, all_counted = barriers
    seen: list[int] = []
    errors: list[BaseException] = []

    def coordinator(i: int) -> None:
        store = SQLStore(store_url)
        try:
            for _ in range(rounds):
                start_together.wait()
                grant = store.acquire_slot(f"h:{i}:x", 1, {"tag:race=1": None}, now=time.time(), ttl=60.0)
                all_asked.wait()
                if grant.granted:
                    seen.append(store.quotas(now=time.time())[0].in_use)
                all_counted.wait()
                store.hold_slots(f"h:{i}:x", [], now=time.time(), ttl=60.0)
        except BaseException as e:  # noqa: BLE001  (reported below, in the test's thread)
            errors.append(e)
            for b in barriers:  # the others stop too, rather than wait for this one
                b.abort()
        finally:
            store.close()

    threads = [threading.Thread(target=coordinator, args=(i,)) for i in range(coordinators)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[:3]
    assert len(seen) >= rounds, "every round granted at least one slot"
    assert max(seen) == 2, sorted(seen)[-5:]


def test_max_concurrent_holds_across_a_joined_coordinator(project, monkeypatch):
    """`run` and `resume --join` of one experiment, 3 workers each, max_concurrent 2: never 3 at once, and the
    joiner gets slots too (a waiting coordinator is served before the one whose trial just ended)."""
    from helpers import count_states, start_cli, wait_for

    project.write("sleepers.py", SLEEPERS)
    gate = project.root / "gate"
    monkeypatch.setenv("NAP_SECONDS", "0.5")
    monkeypatch.setenv("NAP_GATE", str(gate))
    spec = _tagged(project, "joined", budget={"trials": 12},
                   executor={"kind": "process", "workers": 3, "max_concurrent": 2})
    first = start_cli(project, "run", str(spec), "--quiet")
    wait_for(lambda: count_states(project, "joined").get("running", 0) >= 1, timeout=60)
    second = start_cli(project, "resume", "joined", "--join", "--quiet")

    def waiting_holders() -> set[str]:
        _, events = _store_trials(project.storage, "joined")
        return {e.payload["holder"] for e in events["joined"] if e.kind == "quota_wait"}

    # The first run's trials are held at the gate until the joiner waits for a slot too: on a loaded machine the
    # joiner's start-up could otherwise outlast the whole run, and it would never be served.
    wait_for(lambda: len(waiting_holders()) == 2, timeout=90)
    gate.touch()
    _, err = first.communicate(timeout=120)
    _, err2 = second.communicate(timeout=120)
    assert first.returncode == 0 and second.returncode == 0, (err, err2)
    trials, _ = _store_trials(project.storage, "joined")
    assert [t.state for t in trials["joined"]] == [TrialState.COMPLETED] * 12
    assert len({t.owner for t in trials["joined"]}) == 2, "both coordinators ran trials"
    assert _most_at_once(trials["joined"]) == 2


def test_the_renewer_running_during_a_submit_keeps_the_new_trials_slot(project):
    """The renewer's step (renew what is in use, release the rest) run while the executor is still submitting the
    trial must not release the slot that trial is about to use."""
    from types import SimpleNamespace

    from tunesmith.clock import SystemClock
    from tunesmith.executor.leases import LeasedSlots, QuotaScope
    from tunesmith.storage import SQLStore

    store = SQLStore(project.storage)
    store.set_quota("user:dave", 1, now=time.time())

    class SlowToSubmit:
        def free_slots(self) -> int:
            return 1

        def submit(self, job) -> None:
            leased._hold()  # the renewer's thread, in the middle of a slow submit (a process spawn, a Ray call)

    leased = LeasedSlots(SlowToSubmit(), QuotaScope(store, 0, "here:1:abc", "dave"),  # type: ignore[arg-type]
                         {"user:dave": None}, SystemClock())
    assert leased.free_slots() == 1
    leased.submit(SimpleNamespace(number=0))
    assert store.quotas(now=time.time()) == [QuotaUsage("user:dave", 1, 1)], "the running trial lost its slot"
    store.close()


class _Idle:
    """An executor with ``free`` workers that runs nothing: what `LeasedSlots` asks of it, and no more."""

    def __init__(self, free: int) -> None:
        self.free = free

    def free_slots(self) -> int:
        return self.free

    def submit(self, job) -> None:
        pass

    def close(self, grace: float) -> list:
        return []


def _run_waiting_for_a_slot(project, user: str, limit: int):  # type: ignore[no-untyped-def]
    """Quota ``user:USER`` of ``limit`` slots, one held by another coordinator, the rest by a run of ``limit``
    idle workers (`LeasedSlots`) that asks for one more and waits (its ticket queued); the store and the run."""
    from types import SimpleNamespace

    from tunesmith.clock import SystemClock
    from tunesmith.executor.leases import LeasedSlots, QuotaScope
    from tunesmith.storage import SQLStore

    store = SQLStore(project.storage)
    store.set_quota(f"user:{user}", limit, now=time.time())
    exp = store.create_experiment(f"waits for {user}", {}, "random", "test", time.time())
    assert store.acquire_slot("there:9:xyz", exp.id, {f"user:{user}": None}, time.time(), ttl=30.0).granted
    leased = LeasedSlots(_Idle(limit), QuotaScope(store, exp.id, "here:1:abc", user),  # type: ignore[arg-type]
                         {f"user:{user}": None}, SystemClock())
    for number in range(limit - 1):
        assert leased.free_slots() == 1
        leased.submit(SimpleNamespace(number=number))
    assert leased.free_slots() == 0, "the other holder has the last slot"
    assert store.quotas(now=time.time()) == [QuotaUsage(f"user:{user}", limit, limit, 1)]
    return store, leased


def test_a_run_that_ends_while_waiting_leaves_the_queue(project):
    """The flake of the two-coordinator test: a run refused a slot (its ticket queued) whose budget then finished on
    its other workers ended with its ticket still in the store; `quota list` said one run waited (for a slot it
    would never take) until the ticket lapsed, and the next run to ask was refused for it meanwhile."""
    store, leased = _run_waiting_for_a_slot(project, "dave", 1)
    leased.close(grace=1.0)
    assert store.quotas(now=time.time()) == [QuotaUsage("user:dave", 1, 1, 0)], "the ended run still waits"
    store.close()


def test_a_closing_run_gives_back_its_slots_and_its_place_in_the_queue_in_one_transaction(project, monkeypatch):
    """`LeasedSlots.close` released its leases (``hold_slots`` keeping none) and then its tickets, in two
    transactions, where ``release_slots`` does both in one (review engine, item 4)."""
    store, leased = _run_waiting_for_a_slot(project, "erin", 2)
    writes: list[str] = []
    transaction = store._tx
    monkeypatch.setattr(store, "_tx", lambda what, *a, **k: (writes.append(what), transaction(what, *a, **k))[1])
    leased.close(grace=1.0)
    slot_writes = [w for w in writes if w in ("renew quota slots", "leave the quota queue",
                                              "release a coordinator's slots")]
    assert slot_writes == ["release a coordinator's slots"], writes
    assert store.quotas(now=time.time()) == [QuotaUsage("user:erin", 2, 1, 0)], "its slot and its ticket are back"
    store.close()


@pytest.mark.parametrize("args, message", [
    # "must be user:NAME ...; got 'user:ålice b'": the user had written user:NAME
    (("set", "user:ålice b", "3"), "quota key: the NAME of user:NAME holds whitespace (' '); a NAME or KEY may hold "
                                   "any character but whitespace and '=', and ':' only inside it (e.g. user:ålice, "
                                   "tag:team=vision); got 'user:ålice b'"),
    (("set", "tag:my team=vision", "3"), "quota key: the KEY of tag:KEY=VALUE holds whitespace (' '); a NAME or KEY "
                                         "may hold any character but whitespace and '=', and ':' only inside it (e.g. "
                                         "user:ålice, tag:team=vision); got 'tag:my team=vision'"),
    (("set", "user:alice:", "3"), "quota key: the NAME of user:NAME ends with ':'; a NAME or KEY may hold"),
    # it exited 0 with " holds no slot on this store" (no name at all)
    (("release", ""), "holder: empty; give the coordinator as a refusal names it (HOST:PID:TAG)"),
    (("release", "  "), "holder: empty; give the coordinator as a refusal names it (HOST:PID:TAG)"),
])
def test_a_quota_name_that_cannot_be_used_says_why(project, args, message):
    from helpers import cli_in_process

    code, out, err = cli_in_process("quota", *args, "--storage", project.storage)
    assert (code, out) == (2, ""), err
    [line] = err.splitlines()
    assert line.startswith(f"error: {message}"), line
