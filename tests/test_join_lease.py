"""A joining coordinator holds no lease: asking whether a lead still runs the experiment must not take it."""

from __future__ import annotations

import pytest
from _faults_setup import show_json
from sqlalchemy import create_engine, text


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def storage(request, project):
    if request.param == "sqlite":
        return project.storage
    return request.getfixturevalue("postgres_url")


def _lease(storage: str, name: str) -> tuple[str | None, float | None]:
    engine = create_engine(storage)
    try:
        with engine.connect() as conn:
            row = conn.execute(text("SELECT lease_owner, lease_expires_at FROM experiments WHERE name = :name"),
                               {"name": name}).one()
    finally:
        engine.dispose()
    return row[0], row[1]


def test_a_joiner_that_stops_early_without_a_lead_leaves_the_lease_untouched(project, storage):
    """Every trial fails, so the run and then a `--join` stop early (fail fast); with no lead holding the lease,
    the joiner records the experiment's status itself, and the lease stays as the lead left it (released)."""
    project.write("broken.py", """
        def objective(config, trial):
            raise ValueError("broken")
    """)
    spec = project.write_spec(project.spec(name="alone", trial={"function": "broken:objective"},
                                           budget={"trials": 12}, executor={"kind": "process", "workers": 1}))
    first = project.cli("run", str(spec), "--quiet", "--storage", storage, timeout=120)
    assert first.returncode != 0 and "failed the same way" in first.stderr, first.stderr
    assert _lease(storage, "alone") == (None, None), "the lead released its lease when it stopped"
    joined = project.cli("resume", "alone", "--join", "--quiet", "--storage", storage, timeout=120)
    assert joined.returncode != 0 and "failed the same way" in joined.stderr, joined.stderr
    assert _lease(storage, "alone") == (None, None), "the joiner's question wrote a lease"
    assert show_json("alone", storage)["status"] == "failed", "with no lead, the joiner records the experiment's status"


def test_joiners_at_the_same_trial_count_propose_different_configurations(project):
    """`resume NAME --join` started N times together: every joiner saw the same count of recorded trials (0 before
    the lead recorded one: the lead's own seed), so their strategies drew one sequence and proposed the same
    configurations. A joiner mixes its own identity into the seed."""
    from tunesmith.clock import SystemClock
    from tunesmith.runner import Runner, prepare
    from tunesmith.spec import spec_from_dict
    from tunesmith.storage import SQLStore

    spec = spec_from_dict(project.spec(name="joined", strategy="random", executor={"kind": "inline"},
                                       base_dir=str(project.root)))
    store = SQLStore(project.storage)
    plan = prepare(spec)
    exp = store.create_experiment(spec.name, plan.spec.to_json(), plan.decision.name, "", 0.0)

    def first_proposal(join: bool) -> dict:
        runner = Runner(store, exp, plan, None, SystemClock(), join=join)
        runner._setup(resumed=True)  # what a coordinator does before its first proposal
        proposal = runner._strategy.ask()
        assert proposal is not None
        return dict(proposal.params)

    lead, first, second = first_proposal(False), first_proposal(True), first_proposal(True)
    assert first != second and lead not in (first, second)
    assert first_proposal(False) == lead, "a lead (run, resume) still draws the record's own sequence"
    store.close()



class _Submitted:
    """An executor that takes trials and runs none: the test decides when each one ends."""

    def next_job_waits(self) -> bool:
        return False

    def submit(self, job) -> None:
        pass


EARLIER_TRIALS = 6  # finished by a coordinator gone, before the lead and the joiner start


def _lead_and_joiner_on_earlier_trials(project, name, loss):
    """A 2-D `bo` experiment with six finished trials of a coordinator gone (past the Sobol start-up, valued by
    ``loss(x, y)``), and two Runners on it, a lead and a joiner, set up as on a resume: (store, exp, lead, joiner)."""
    from dataclasses import replace

    from tunesmith.clock import SystemClock
    from tunesmith.records import TrialState
    from tunesmith.runner import Runner, prepare
    from tunesmith.spec import spec_from_dict
    from tunesmith.storage import SQLStore

    spec = spec_from_dict(project.spec(
        name=name, strategy="bo", space={"x": {"type": "float", "low": 0.0, "high": 1.0},
                                         "y": {"type": "float", "low": 0.0, "high": 1.0}},
        budget={"trials": 20}, executor={"kind": "inline"}, base_dir=str(project.root),
        workdir=str(project.root / "work")))
    store = SQLStore(project.storage)
    plan = prepare(spec)
    exp = store.create_experiment(spec.name, plan.spec.to_json(), plan.decision.name, "", 0.0)
    for x, y in [(0.1, 0.9), (0.8, 0.2), (0.5, 0.5), (0.3, 0.6), (0.9, 0.9), (0.2, 0.1)]:
        rec = store.new_trial(exp.id, {"x": x, "y": y}, 1, 0.0, str(project.root / "t{number}.log"), owner="gone")
        store.save_trial(exp.id, replace(rec, state=TrialState.COMPLETED, values=(loss(x, y),), finished_at=1.0,
                                         duration_s=1.0), "trial_completed", 1.0)
    lead = Runner(store, exp, plan, None, SystemClock(), executor=_Submitted())  # type: ignore[arg-type]
    joiner = Runner(store, exp, plan, None, SystemClock(), executor=_Submitted(), join=True)  # type: ignore[arg-type]
    lead._setup(resumed=True)
    joiner._setup(resumed=True)
    return store, exp, lead, joiner


def test_coordinators_do_not_propose_what_their_peers_are_running(project):
    """`bo` with a lead and a `--join`-er: each coordinator's strategy learnt only its peers' finished trials, and
    bo's proposal is all but deterministic given the history, so the joiner proposed what the lead was running (a
    new user's walk: joiner trials within 1e-6 of lead trials) and the lead what the joiner was. A coordinator tells
    its strategy of its peers' running trials as pending, as of its own, and of their outcome once they end."""
    from dataclasses import replace

    from tunesmith.records import TrialState
    from tunesmith.runner import Runner

    store, exp, lead, joiner = _lead_and_joiner_on_earlier_trials(project, "peers", lambda x, y: (x - 0.3) ** 2 + (y - 0.7) ** 2)

    def start(runner: Runner) -> tuple[float, float]:
        assert runner._start_new_trial()
        newest = store.trials(exp.id)[-1]
        return newest.params["x"], newest.params["y"]

    def apart(a: tuple[float, float], b: tuple[float, float]) -> float:
        return max(abs(a[0] - b[0]), abs(a[1] - b[1]))

    leads = start(lead)
    joins = start(joiner)
    assert apart(leads, joins) > 1e-3, f"the joiner proposed the lead's running trial: {leads} and {joins}"
    second = start(lead)
    assert min(apart(second, leads), apart(second, joins)) > 1e-3, f"the lead proposed the joiner's: {second}"

    lead_trial = store.trials(exp.id, [EARLIER_TRIALS])[0]
    store.save_trial(exp.id, replace(lead_trial, state=TrialState.COMPLETED, values=(0.5,), finished_at=2.0,
                                     duration_s=1.0), "trial_completed", 2.0)
    joiner._sync()  # the lead's trial ended: its outcome, no longer pending (and not a second, replayed copy)
    assert len(joiner._strategy._pending) == 1  # its own (the lead's second began after its last proposal)
    assert len(joiner._strategy._y) == EARLIER_TRIALS + 1
    store.close()


def test_a_lead_whose_lease_was_taken_over_goes_on_as_a_joiner_and_says_so(project, monkeypatch):
    """A lead's lease lapsed (its store stalled past the lease's length) and another coordinator took it: at its
    next renewal the lead sees the lease is not its own, warns, and goes on as a joiner (numbers within the
    budget, no lease), instead of going on as a second lead."""
    import tunesmith
    from tunesmith import coordinators
    from tunesmith.events import RunListener
    from tunesmith.storage import SQLStore

    # the runner's heartbeat renews the lease every 0.25 s, not LEASE_RENEW_EVERY (5 s, a constant no spec sets):
    # 10 trials of 0.25 s see about ten renewals after the takeover, as 30 saw one or two
    monkeypatch.setattr(coordinators, "HEARTBEAT_EVERY", 0.25)
    project.write("takeover.py", f"""
        import time
        from pathlib import Path

        from tunesmith.storage import SQLStore

        def objective(config, trial):
            marker = Path("taken")
            if not marker.exists():
                marker.write_text("")
                store = SQLStore({project.storage!r}, create=False)
                exp = store.experiment("usurped")
                # the lead's lease counts as lapsed at a time far ahead: the usurper's lease runs from there
                assert store.acquire_lease(exp.id, "usurper@elsewhere", time.time() + 1000, 1000) is None
            time.sleep(0.25)
            return config["x"]
    """)

    class Warnings(RunListener):
        said: list[str] = []

        def warning(self, message: str) -> None:
            self.said.append(message)

    spec = project.write_spec(project.spec(name="usurped", trial={"function": "takeover:objective"},
                                           budget={"trials": 10}, executor={"kind": "inline"}))
    result = tunesmith.run(spec, storage=project.storage, listener=Warnings())
    assert [m for m in Warnings.said if "took this experiment's lease over" in m and "as a joiner" in m], Warnings.said
    assert len(result.trials) == 10
    store = SQLStore(project.storage, create=False)
    assert store.lease_holder(store.experiment("usurped").id, 0.0) == "usurper@elsewhere", "it never took it back"
    store.close()


def test_a_beat_after_the_lead_released_its_lease_does_not_take_it_back(project, storage):
    """The lead's heartbeat thread renews the lease; a beat stuck in a locked store past the run's end (its stop
    waits for it only so long) came out after the release and, as a renewal was a take, held the lease again: a
    `resume` was refused until it lapsed. A renewal now extends only a lease its holder still holds."""
    from tunesmith.runner import Runner, run_experiment
    from tunesmith.spec import spec_from_dict
    from tunesmith.storage import SQLStore

    spec = spec_from_dict(project.spec(name="released", executor={"kind": "inline"}, budget={"trials": 2},
                                       base_dir=str(project.root)))
    store = SQLStore(storage)
    runners: list[Runner] = []
    try:
        run_experiment(spec, store, on_runner=runners.append)
        assert _lease(storage, "released") == (None, None), "the lead released its lease when it stopped"
        runners[0]._keep_alive()   # the beat that was stuck in the store, late: what its thread calls
        assert _lease(storage, "released") == (None, None), "a late beat took the released lease back"
        assert store.lease_holder(store.experiment("released").id, 0.0) is None
    finally:
        store.close()


def test_a_joiner_that_finds_the_trial_budget_taken_says_it_was_reached(project, monkeypatch):
    """A `--join`-er whose lead still ran the last trial stopped with "trial budget allocated", where the run that
    finished that trial said "trial budget of 3 reached": two wordings for one limit. The joiner says the run's
    words, and what is left: the trial still running with the other coordinator."""
    from tests.helpers import count_states, start_cli, stop_processes, wait_for

    project.write("held.py", """
        import os, time

        def objective(config, trial):
            gate = os.environ.get("HOLD_UNTIL")  # the lead's trials wait for the test; the joiner's do not
            while gate and not os.path.exists(gate):
                time.sleep(0.05)
            return config["x"]
    """)
    gate = project.root / "release"
    spec = project.write_spec(project.spec(name="shared", trial={"function": "held:objective"}, budget={"trials": 3},
                                           executor={"kind": "process", "workers": 1}))
    monkeypatch.setenv("HOLD_UNTIL", str(gate))
    lead = start_cli(project, "run", str(spec), "--quiet")
    monkeypatch.delenv("HOLD_UNTIL")
    try:
        wait_for(lambda: count_states(project, "shared").get("running", 0) >= 1, timeout=60)
        joined = project.cli("resume", "shared", "--join", timeout=120)
        assert joined.returncode == 0, joined.stderr
        said = " ".join(joined.stdout.split())
        assert "Stopped: trial budget of 3 reached: every trial is taken, 1 still running with other coordinators." \
            in said, said
        gate.write_text("")
        _, lead_err = lead.communicate(timeout=120)
        assert lead.returncode == 0, lead_err
    finally:
        stop_processes(lead)
    assert count_states(project, "shared") == {"completed": 3}


def test_a_peers_trial_that_ends_without_an_outcome_is_no_longer_pending(project):
    """A coordinator tells its strategy of its peers' running trials as pending, and of their outcome once they
    finish; a peer's trial that ended interrupted (its coordinator stopped) or lost stayed pending for the rest of
    the run, steering every later proposal away from a configuration nobody runs. It leaves the pending set, and
    the strategy learns nothing of it (it is no result: it runs again on a resume)."""
    from dataclasses import replace

    from tunesmith.records import TrialState

    store, exp, lead, joiner = _lead_and_joiner_on_earlier_trials(project, "ended", lambda x, y: x + y)
    assert lead._start_new_trial() and lead._start_new_trial()
    assert joiner._start_new_trial()
    assert len(joiner._strategy._pending) == 3, "its own, and the lead's two"
    interrupted, lost = store.trials(exp.id, [EARLIER_TRIALS, EARLIER_TRIALS + 1])
    store.save_trial(exp.id, replace(interrupted, state=TrialState.INTERRUPTED), "trial_interrupted", 2.0)
    store.save_trial(exp.id, replace(lost, state=TrialState.LOST), "trial_lost", 2.0)
    joiner._sync()
    assert len(joiner._strategy._pending) == 1, "the lead's trials ended without an outcome: no longer pending"
    assert len(joiner._strategy._y) == EARLIER_TRIALS, "and nothing was learnt of them"
    store.close()


def test_a_stalled_coordinator_does_not_write_over_the_re_run_a_peer_made_of_its_trial(project, monkeypatch):
    """A coordinator stalled past the staleness limit (suspended, cut off from the store) has its running trial
    found abandoned by a peer, re-run as attempt 2 and finished. Woken, it wrote its own attempt 1 over that record:
    a finished trial changed after it was finished (two trial_completed events; seen 7 of 7 times with a paused
    coordinator on another host). Its write is now refused and said; the peer's record stands. Here the inline trial
    plays the peer while its coordinator waits on it, through a second connection to the same store."""
    import tunesmith
    from tunesmith.storage.sql import SQLStore

    monkeypatch.setenv("PEER_STORE", project.storage)
    project.write("taken_over.py", """
        import os, time
        from dataclasses import replace
        from tunesmith.records import TrialState
        from tunesmith.storage.sql import SQLStore

        def objective(config, trial):
            peer = SQLStore(os.environ["PEER_STORE"], create=False)
            exp = peer.experiment("stalled")
            mine = peer.trials(exp.id)[trial.number]
            assert peer.mark_lost(exp.id, mine, time.time())
            lost = peer.trials(exp.id)[trial.number]
            again = replace(lost, state=TrialState.RUNNING, attempts=2, owner="peer@elsewhere")
            assert peer.take_for_rerun(exp.id, lost, again, "trial_rerun", time.time())
            peer.save_trial(exp.id, replace(again, state=TrialState.COMPLETED, values=(42.0,)), "trial_completed",
                            time.time())
            peer.close()
            return 7.0
    """)
    spec = project.spec("stalled", executor={"kind": "inline"}, budget={"trials": 1},
                        trial={"function": "taken_over:objective"})
    warnings: list[str] = []
    monkeypatch.setattr("tunesmith.events.RunListener.warning", lambda self, message: warnings.append(message))
    tunesmith.run(spec, storage=project.storage)
    store = SQLStore(project.storage, create=False)
    try:
        exp = store.experiment("stalled")
        [trial] = store.trials(exp.id)
        assert (trial.state.value, trial.values, trial.attempts, trial.owner) == (
            "completed", (42.0,), 2, "peer@elsewhere"), trial
        completed = [e for e in store.events(exp.id) if e.kind == "trial_completed"]
        assert len(completed) == 1, [e.payload for e in completed]
    finally:
        store.close()
    assert any("trial 0: another coordinator re-ran it" in w for w in warnings), warnings
